import { describe, expect, it } from "vitest";
import { parseTrace, selfTime, statistics } from "./trace";

const ms = (n: number) => String(BigInt(1_700_000_000_000 + n) * 1_000_000n);

function span(id: string, parent: string | null, name: string, start: number, end: number, error = false) {
  return {
    traceId: "ab".repeat(16),
    spanId: id,
    ...(parent ? { parentSpanId: parent } : {}),
    name,
    kind: 2,
    startTimeUnixNano: ms(start),
    endTimeUnixNano: ms(end),
    status: error ? { code: 2, message: "boom" } : {},
  };
}

const doc = {
  resourceSpans: [
    {
      resource: { attributes: [{ key: "service.name", value: { stringValue: "web" } }] },
      scopeSpans: [
        {
          spans: [
            span("b", "a", "child late", 60, 90),
            span("a", null, "root", 0, 100),
            span("c", "a", "child early", 10, 50, true),
            span("d", "c", "grandchild", 20, 30),
            span("x", "missing", "orphan", 5, 15),
          ],
        },
      ],
    },
  ],
};

describe("parseTrace", () => {
  it("orders spans depth first, children by start, orphans as roots", () => {
    const trace = parseTrace(doc);
    expect(trace.spans.map((s) => [s.name, s.depth])).toEqual([
      ["root", 0],
      ["child early", 1],
      ["grandchild", 2],
      ["child late", 1],
      ["orphan", 0],
    ]);
    expect(trace.spans.find((s) => s.name === "orphan")!.orphan).toBe(true);
    expect(trace.end - trace.start).toBe(100);
    expect(trace.spans.filter((s) => s.error).map((s) => s.name)).toEqual(["child early"]);
  });

  it("computes self time and statistics", () => {
    const trace = parseTrace(doc);
    const root = trace.roots[0];
    expect(selfTime(root)).toBe(100 - 40 - 30);
    const rows = statistics(trace);
    expect(rows[0]).toMatchObject({ name: "root", count: 1, total: 100, self: 30 });
  });
});
