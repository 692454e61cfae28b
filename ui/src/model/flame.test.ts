import { describe, expect, it } from "vitest";
import { flameLayout } from "./flame";
import { makeTrace } from "./testTrace";

const trace = makeTrace([
  { id: "r", start: 0, end: 100 },
  { id: "a", parent: "r", start: 0, end: 50 },
  { id: "a1", parent: "a", start: 25, end: 75 }, // outlives a: drawn up to a's end
  { id: "b", parent: "r", start: 50, end: 100 },
  { id: "late", parent: "b", start: 120, end: 130 }, // outside b: not drawn
  { id: "o", parent: "gone", start: 100, end: 200 }, // an orphan is a root of its own
]);
const row = (n: { span: { spanId: string }; level: number; x: number; width: number }) => [n.span.spanId, n.level, n.x, n.width];

describe("flameLayout", () => {
  it("stacks the whole trace by depth, x and width relative to the trace", () => {
    const layout = flameLayout(trace, null);
    expect(layout.levels).toBe(3);
    expect(layout.nodes.map(row)).toEqual([
      ["r", 0, 0, 0.5],
      ["a", 1, 0, 0.25],
      ["a1", 2, 0.125, 0.125],
      ["b", 1, 0.25, 0.25],
      ["o", 0, 0.5, 0.5],
    ]);
  });

  it("zooms into one span's subtree", () => {
    const layout = flameLayout(trace, trace.byId.get("a")!);
    expect(layout.start).toBe(0);
    expect(layout.end).toBe(50);
    expect(layout.nodes.map(row)).toEqual([
      ["a", 0, 0, 1],
      ["a1", 1, 0.5, 0.5],
    ]);
  });

  it("puts overlapping siblings into lanes of their own, their subtrees below them", () => {
    const t = makeTrace([
      { id: "r", start: 0, end: 100 },
      { id: "a", parent: "r", start: 0, end: 60 },
      { id: "a1", parent: "a", start: 10, end: 50 },
      { id: "b", parent: "r", start: 40, end: 90 }, // overlaps a: a second lane
      { id: "b1", parent: "b", start: 50, end: 80 },
      { id: "c", parent: "r", start: 70, end: 100 }, // after a ended: a's lane again
    ]);
    const layout = flameLayout(t, null);
    expect(layout.nodes.map((n) => [n.span.spanId, n.level])).toEqual([
      ["r", 0],
      ["a", 1],
      ["a1", 2],
      ["b", 3],
      ["b1", 4],
      ["c", 1],
    ]);
    expect(layout.levels).toBe(5);
  });
});
