import { describe, expect, it } from "vitest";
import { traceGraph } from "./traceGraph";
import { makeTrace } from "./testTrace";

describe("traceGraph", () => {
  it("counts calls between services, and errors", () => {
    const graph = traceGraph(
      makeTrace([
        { id: "r", start: 0, end: 100, service: "web" },
        { id: "w", parent: "r", start: 1, end: 2, service: "web" }, // same service: no edge
        { id: "a", parent: "w", start: 1, end: 2, service: "db" },
        { id: "b", parent: "r", start: 3, end: 4, service: "db", error: true },
        { id: "c", parent: "b", start: 3, end: 4, service: "cache" },
        { id: "o", parent: "gone", start: 3, end: 4, service: "cache" }, // no caller known
      ]),
    );
    expect(graph.nodes).toEqual([
      { service: "cache", spans: 2, errors: 0 },
      { service: "db", spans: 2, errors: 1 },
      { service: "web", spans: 2, errors: 0 },
    ]);
    expect(graph.edges).toEqual([
      { from: "db", to: "cache", calls: 1, errors: 0 },
      { from: "web", to: "db", calls: 2, errors: 1 },
    ]);
  });
});
