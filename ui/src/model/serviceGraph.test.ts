import { describe, expect, it } from "vitest";
import type { GraphDoc, GraphNode } from "../serviceApi";
import { EDGE_LABEL, NODE, PEER, edgeQuery, formatPercent, formatRate, layoutGraph, layoutInput, nodeQuery } from "./serviceGraph";

const figures = { requests: 1, requestRate: 0.1, errors: 0, errorRate: 0, p50Seconds: 0.01, p95Seconds: 0.02, p99Seconds: 0.03 };
const node = (id: string, virtual = false): GraphNode => ({ id, virtual, ...figures });

const doc: GraphDoc = {
  start: 0,
  end: 10,
  nodes: [node("cart"), node("checkout"), node("frontend"), node("payment"), node("postgresql", true)],
  edges: [
    { source: "frontend", target: "checkout", ...figures },
    { source: "frontend", target: "cart", ...figures },
    { source: "checkout", target: "payment", ...figures },
    { source: "checkout", target: "postgresql", ...figures },
    { source: "checkout", target: "checkout", ...figures }, // never drawn
    { source: "checkout", target: "gone", ...figures }, // no such node
  ],
};

describe("layoutInput", () => {
  it("sizes nodes by kind and keeps only edges between two different nodes", () => {
    const input = layoutInput(doc);
    expect(input.nodes.find((n) => n.id === "postgresql")).toEqual({ id: "postgresql", ...PEER });
    expect(input.nodes.find((n) => n.id === "cart")).toEqual({ id: "cart", ...NODE });
    expect(input.edges.map((e) => `${e.source}>${e.target}`)).toEqual([
      "frontend>checkout",
      "frontend>cart",
      "checkout>payment",
      "checkout>postgresql",
    ]);
    expect(input.edges[0]).toMatchObject(EDGE_LABEL);
  });
});

describe("layoutGraph", () => {
  it("places callers left of callees, without overlaps, inside the drawing", () => {
    const g = layoutGraph(doc);
    const at = Object.fromEntries(g.nodes.map((n) => [n.node.id, n]));
    expect(at.frontend.x).toBeLessThan(at.checkout.x);
    expect(at.checkout.x).toBeLessThan(at.payment.x);
    expect(at.checkout.x).toBeLessThan(at.postgresql.x);
    for (const a of g.nodes)
      for (const b of g.nodes) {
        if (a === b) continue;
        const apart = Math.abs(a.x - b.x) >= (a.width + b.width) / 2 || Math.abs(a.y - b.y) >= (a.height + b.height) / 2;
        expect(apart).toBe(true);
      }
    for (const n of g.nodes) {
      expect(n.x - n.width / 2).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width / 2).toBeLessThanOrEqual(g.width);
      expect(n.y + n.height / 2).toBeLessThanOrEqual(g.height);
    }
    expect(g.edges).toHaveLength(4);
    for (const e of g.edges) expect(e.points.length).toBeGreaterThanOrEqual(2);
    expect(g.edges[0].edge.target).toBe("checkout");
  });

  it("lays out an empty graph", () => {
    expect(layoutGraph({ start: 0, end: 1, nodes: [], edges: [] }).nodes).toEqual([]);
  });
});

describe("queries", () => {
  it("finds a service's spans, a peer's callers, and an edge's calls", () => {
    expect(nodeQuery({ id: "cart", virtual: false })).toBe('{ resource.service.name = "cart" }');
    expect(nodeQuery({ id: 'we"ird', virtual: false })).toBe('{ resource.service.name = "we\\"ird" }');
    expect(nodeQuery({ id: "redis", virtual: true })).toBe(
      '{ (kind = client || kind = producer) && (span.peer.service = "redis" || span.db.name = "redis" || span.db.system = "redis" || span.db.system.name = "redis") }',
    );
    expect(edgeQuery({ source: "checkout", target: "payment" }, false)).toBe(
      '{ resource.service.name = "checkout" } > { resource.service.name = "payment" }',
    );
    expect(edgeQuery({ source: "checkout", target: "redis" }, true)).toMatch(
      /^\{ resource\.service\.name = "checkout" && \(kind = client \|\| kind = producer\) && \(span\.peer\.service = "redis"/,
    );
  });
});

describe("figures", () => {
  it("words rates and percentages", () => {
    expect(formatRate(0)).toBe("0 req/s");
    expect(formatRate(12 / 900)).toBe("0.013 req/s");
    expect(formatRate(0.0004)).toBe("<0.001 req/s");
    expect(formatRate(2.345)).toBe("2.35 req/s");
    expect(formatRate(12.34)).toBe("12.3 req/s");
    expect(formatRate(1234.5)).toBe("1235 req/s");
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(0.25)).toBe("25.0%");
    expect(formatPercent(0.0004)).toBe("<0.1%");
  });
});
