import { describe, expect, it } from "vitest";
import { selfTimes, sortRows, traceStatistics } from "./statistics";
import { makeTrace } from "./testTrace";

const trace = makeTrace([
  { id: "r", start: 0, end: 100, service: "web", name: "GET /" },
  { id: "a", parent: "r", start: 10, end: 40, service: "db", name: "query" },
  { id: "b", parent: "r", start: 30, end: 60, service: "db", name: "query", error: true },
  { id: "c", parent: "r", start: 90, end: 130, service: "cache", name: "get" }, // outlives r
  { id: "c1", parent: "c", start: 95, end: 100, service: "cache", name: "decode" },
]);
const byId = (id: string) => trace.byId.get(id)!;

describe("self time", () => {
  it("is the duration less the union of the children's intervals clipped to the span", () => {
    const self = selfTimes(trace);
    // children cover 10..60 (a and b overlap) and 90..100 (c clipped to r)
    expect(self.get(byId("r"))).toBe(100 - 50 - 10);
    expect(self.get(byId("a"))).toBe(30);
    expect(self.get(byId("c"))).toBe(40 - 5);
  });
});

describe("traceStatistics", () => {
  it("groups by service", () => {
    const rows = traceStatistics(trace, "service");
    expect(rows.map((r) => [r.service, r.count, r.total, r.self, r.min, r.avg, r.max, r.errors])).toEqual([
      ["web", 1, 100, 40, 100, 100, 100, 0],
      ["db", 2, 60, 60, 30, 30, 30, 1],
      ["cache", 2, 45, 40, 5, 22.5, 40, 0],
    ]);
    expect(rows.every((r) => r.operation === null)).toBe(true);
  });

  it("groups by service and operation", () => {
    const rows = traceStatistics(trace, "operation");
    expect(rows.map((r) => `${r.service}/${r.operation}:${r.count}`)).toEqual([
      "web/GET /:1",
      "db/query:2",
      "cache/get:1",
      "cache/decode:1",
    ]);
  });

  it("sorts by any column either way", () => {
    const rows = traceStatistics(trace, "service");
    expect(sortRows(rows, "service", "asc").map((r) => r.service)).toEqual(["cache", "db", "web"]);
    expect(sortRows(rows, "errors", "desc", "key").map((r) => r.service)).toEqual(["db", "cache", "web"]);
    expect(sortRows(rows, "min", "asc").map((r) => r.service)).toEqual(["cache", "db", "web"]);
  });
});
