import { describe, expect, it } from "vitest";
import { searchSpans } from "./traceSearch";
import { makeSpan } from "./testTrace";
import { buildTree } from "./trace";

const spans = [
  makeSpan({ id: "r", start: 0, end: 10, service: "frontend", name: "GET /cart" }),
  makeSpan({ id: "a", parent: "r", start: 1, end: 2, service: "cart", name: "load" }),
  makeSpan({ id: "b", parent: "r", start: 3, end: 4, service: "db", name: "SELECT" }),
];
spans[2].attributes = [{ key: "db.statement", value: "select * from carts" }];
spans[1].attributes = [{ key: "http.status_code", value: 503 }];
const trace = buildTree(spans);
const ids = (q: string) => searchSpans(trace, q).map((s) => s.spanId);

describe("searchSpans", () => {
  it("matches names, services, attribute keys and values, case-insensitively", () => {
    expect(ids("cart")).toEqual(["r", "a", "b"]); // name, service, attribute value
    expect(ids("SELECT")).toEqual(["b"]);
    expect(ids("db.stat")).toEqual(["b"]);
    expect(ids("503")).toEqual(["a"]);
    expect(ids("frontend")).toEqual(["r"]);
  });

  it("finds nothing for a blank query or no match", () => {
    expect(ids("  ")).toEqual([]);
    expect(ids("nothing-like-this")).toEqual([]);
  });
});
