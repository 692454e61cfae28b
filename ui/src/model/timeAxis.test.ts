import { describe, expect, it } from "vitest";
import { labelPlace, niceTicks } from "./timeAxis";

describe("niceTicks", () => {
  it("picks round steps from the origin", () => {
    expect(niceTicks(0, 0, 100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(1000, 1000, 1003.7, 4)).toEqual([0, 1, 2, 3]);
    expect(niceTicks(0, 0, 1, 4)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it("starts at the first round tick inside a zoomed window", () => {
    expect(niceTicks(0, 33, 77, 5)).toEqual([40, 50, 60, 70]);
  });

  it("gives one tick for an empty window", () => {
    expect(niceTicks(5, 5, 5, 4)).toEqual([0]);
  });
});

describe("labelPlace", () => {
  it("puts the label after the bar, before it near the right edge, inside when neither fits", () => {
    expect(labelPlace(10, 100, 50, 400)).toBe("after");
    expect(labelPlace(200, 390, 50, 400)).toBe("before");
    expect(labelPlace(20, 395, 50, 400)).toBe("inside");
  });
});
