import { describe, expect, it } from "vitest";
import { ancestors, parseTrace, selfTime, statistics, visibleSpans } from "./trace";

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

describe("scopes, links, and walking the tree", () => {
  const withLinks = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: "service.name", value: { stringValue: "queue" } }] },
        scopeSpans: [
          {
            scope: { name: "io.queue", version: "2.0", attributes: [{ key: "lib", value: { boolValue: true } }] },
            spans: [
              {
                ...span("p", null, "publish", 0, 10),
                links: [{ traceId: "cd".repeat(16), spanId: "ef".repeat(8), attributes: [{ key: "why", value: { stringValue: "batch" } }] }],
              },
            ],
          },
        ],
      },
    ],
  };

  it("reads the scope and links of a span", () => {
    const s = parseTrace(withLinks).spans[0];
    expect(s.scope).toEqual({ name: "io.queue", version: "2.0", attributes: [{ key: "lib", value: true }] });
    expect(s.links).toEqual([{ traceId: "cd".repeat(16), spanId: "ef".repeat(8), attributes: [{ key: "why", value: "batch" }] }]);
  });

  it("folds collapsed subtrees away and lists ancestors", () => {
    const trace = parseTrace(doc);
    const names = (ids: string[]) => visibleSpans(trace, new Set(ids)).map((s) => s.name);
    expect(names([])).toEqual(["root", "child early", "grandchild", "child late", "orphan"]);
    expect(names(["c"])).toEqual(["root", "child early", "child late", "orphan"]);
    expect(names(["a"])).toEqual(["root", "orphan"]);
    expect(names(["d"])).toHaveLength(5); // a leaf has nothing to fold
    expect(ancestors(trace.byId.get("d")!).map((s) => s.spanId)).toEqual(["c", "a"]);
    expect(ancestors(trace.byId.get("x")!)).toEqual([]);
  });

  it("builds a 20,000-span tree quickly", () => {
    const spans = [span("0", null, "root", 0, 100000)];
    for (let i = 1; i < 20000; i++) spans.push(span(String(i), String(Math.floor((i - 1) / 10)), `op ${i % 7}`, i, i + 3));
    const big = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] };
    const t0 = performance.now();
    const trace = parseTrace(big);
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(trace.spans).toHaveLength(20000);
    expect(trace.roots).toHaveLength(1);
    expect(Math.max(...trace.spans.map((s) => s.depth))).toBe(5);
  });
});
