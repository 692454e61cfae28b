import { describe, expect, it } from "vitest";
import { criticalPath, sectionsBySpan } from "./criticalPath";
import { KIND_CONSUMER, KIND_PRODUCER } from "./trace";
import { SpanSpec, makeTrace } from "./testTrace";

const path = (specs: SpanSpec[]) =>
  criticalPath(makeTrace(specs)).map((s) => [s.spanId, s.start, s.end]);

describe("criticalPath", () => {
  it("is the whole of a single span", () => {
    expect(path([{ id: "r", start: 0, end: 10 }])).toEqual([["r", 0, 10]]);
  });

  it("walks sequential children back from the end", () => {
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 40 },
        { id: "b", parent: "r", start: 50, end: 90 },
      ]),
    ).toEqual([
      ["r", 90, 100],
      ["b", 50, 90],
      ["r", 40, 50],
      ["a", 10, 40],
      ["r", 0, 10],
    ]);
  });

  it("skips overlapping children that did not finish before the later one started", () => {
    // c finishes last; a and b both end after c starts, so neither blocks it
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 70 },
        { id: "b", parent: "r", start: 20, end: 60 },
        { id: "c", parent: "r", start: 50, end: 90 },
      ]),
    ).toEqual([
      ["r", 90, 100],
      ["c", 50, 90],
      ["r", 0, 50],
    ]);
    // here a ends before c starts: a is on the path, b (overlapping c) is not
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 45 },
        { id: "b", parent: "r", start: 20, end: 60 },
        { id: "c", parent: "r", start: 50, end: 90 },
      ]),
    ).toEqual([
      ["r", 90, 100],
      ["c", 50, 90],
      ["r", 45, 50],
      ["a", 10, 45],
      ["r", 0, 10],
    ]);
  });

  it("descends into grandchildren", () => {
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 80 },
        { id: "a1", parent: "a", start: 20, end: 30 },
        { id: "a2", parent: "a", start: 40, end: 70 },
      ]),
    ).toEqual([
      ["r", 80, 100],
      ["a", 70, 80],
      ["a2", 40, 70],
      ["a", 30, 40],
      ["a1", 20, 30],
      ["a", 10, 20],
      ["r", 0, 10],
    ]);
  });

  it("clips a child outliving its parent and drops what lies outside it", () => {
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 50 },
        { id: "b", parent: "r", start: 60, end: 150 }, // clipped to 60..100
        { id: "b1", parent: "b", start: 120, end: 140 }, // after b's clipped end: dropped
        { id: "early", parent: "r", start: -20, end: -5 }, // before the parent: dropped
      ]),
    ).toEqual([
      ["b", 60, 100],
      ["r", 50, 60],
      ["a", 10, 50],
      ["r", 0, 10],
    ]);
  });

  it("clips a child that starts before its parent", () => {
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: -10, end: 40 },
      ]),
    ).toEqual([
      ["r", 40, 100],
      ["a", 0, 40],
    ]);
  });

  it("does not follow a consumer under a producer (not blocking)", () => {
    expect(
      path([
        { id: "r", start: 0, end: 100, kind: KIND_PRODUCER },
        { id: "c", parent: "r", start: 10, end: 90, kind: KIND_CONSUMER },
      ]),
    ).toEqual([["r", 0, 100]]);
  });

  it("prefers the earlier child when two finish at the same time", () => {
    expect(
      path([
        { id: "r", start: 0, end: 100 },
        { id: "a", parent: "r", start: 10, end: 90 },
        { id: "b", parent: "r", start: 20, end: 90 },
      ]),
    ).toEqual([
      ["r", 90, 100],
      ["a", 10, 90],
      ["r", 0, 10],
    ]);
  });

  it("walks every root, orphans included", () => {
    const sections = criticalPath(
      makeTrace([
        { id: "r", start: 0, end: 10 },
        { id: "o", parent: "gone", start: 20, end: 30 },
        { id: "o1", parent: "o", start: 22, end: 25 },
      ]),
    );
    expect([...sectionsBySpan(sections).keys()]).toEqual(["r", "o", "o1"]);
  });

  it("handles a long chain and a wide fan-out quickly", () => {
    const specs: SpanSpec[] = [{ id: "r", start: 0, end: 1e6 }];
    for (let i = 0; i < 20000; i++) specs.push({ id: `c${i}`, parent: "r", start: i * 10, end: i * 10 + 5 });
    const t0 = performance.now();
    const sections = criticalPath(makeTrace(specs));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(sections.filter((s) => s.spanId !== "r")).toHaveLength(20000);
    const chain: SpanSpec[] = [{ id: "s0", start: 0, end: 30000 }];
    for (let i = 1; i < 10000; i++) chain.push({ id: `s${i}`, parent: `s${i - 1}`, start: i, end: 30000 - i });
    expect(criticalPath(makeTrace(chain))).toHaveLength(2 * 10000 - 1);
  });
});
