/** traceDiff: merging two span trees by path, counts, only-in-A/B, duration deltas, summary. */

import { describe, expect, it } from "vitest";
import { Span, buildTree } from "./trace";
import {
  changeLabels,
  changedPaths,
  compareUrl,
  deltaText,
  diffTraces,
  isChanged,
  pathKey,
  pathOf,
  signedDuration,
  signedPercent,
  traceIdOf,
} from "./traceDiff";

/** A span at ``start`` ms lasting ``dur`` ms, under ``parent`` (an id) if given. */
function span(id: string, service: string, name: string, start: number, dur: number, parent: string | null = null, error = false): Span {
  return {
    spanId: id,
    parentId: parent,
    traceId: "t",
    name,
    service,
    kind: 0,
    start,
    duration: dur,
    error,
    statusMessage: "",
    attributes: [],
    resource: [],
    events: [],
    children: [],
    depth: 0,
    orphan: false,
  };
}

const key = (...parts: [string, string][]) => parts.reduce<string | null>((k, [s, n]) => pathKey(k, s, n), null)!;

/** checkout's GET /checkout calling cart twice and the db once. */
function traceA() {
  return buildTree([
    span("1", "checkout", "GET /checkout", 0, 100),
    span("2", "cart", "get cart", 5, 20, "1"),
    span("3", "cart", "get cart", 30, 20, "1"),
    span("4", "db", "query", 60, 30, "1"),
    span("5", "cache", "lookup", 8, 2, "2"),
  ]);
}

describe("diffTraces", () => {
  it("a trace against itself: every node the same", () => {
    const d = diffTraces(traceA(), traceA());
    expect(d.nodes.map((n) => [n.service, n.name, n.depth, n.a.count, n.b.count])).toEqual([
      ["checkout", "GET /checkout", 0, 1, 1],
      ["cart", "get cart", 1, 2, 2],
      ["cache", "lookup", 2, 1, 1],
      ["db", "query", 1, 1, 1],
    ]);
    expect(d.nodes.every((n) => !isChanged(n))).toBe(true);
    expect(d.summary).toMatchObject({ spansA: 5, spansB: 5, durationA: 100, durationB: 100, nodes: 4, added: 0, removed: 0, changed: 0, unchanged: 4 });
  });

  it("merges spans by path: the same operation under another parent is another node", () => {
    const a = buildTree([
      span("1", "web", "GET /", 0, 50),
      span("2", "api", "call", 1, 10, "1"),
      span("3", "db", "query", 2, 5, "2"),
      span("4", "db", "query", 20, 5, "1"),
    ]);
    const d = diffTraces(a, a);
    const paths = d.nodes.map((n) => pathOf(n.key).map(([s, o]) => `${s}:${o}`).join(" > "));
    expect(paths).toEqual(["web:GET /", "web:GET / > api:call", "web:GET / > api:call > db:query", "web:GET / > db:query"]);
    expect(d.byKey.get(key(["web", "GET /"], ["db", "query"]))!.parent!.name).toBe("GET /");
  });

  it("counts several spans at one path, with total and mean durations", () => {
    const b = buildTree([
      span("1", "checkout", "GET /checkout", 0, 120),
      span("2", "cart", "get cart", 5, 20, "1"),
      span("3", "cart", "get cart", 30, 30, "1"),
      span("6", "cart", "get cart", 65, 40, "1"),
      span("4", "db", "query", 60, 30, "1"),
    ]);
    const d = diffTraces(traceA(), b);
    const cart = d.byKey.get(key(["checkout", "GET /checkout"], ["cart", "get cart"]))!;
    expect([cart.a.count, cart.a.total, cart.a.mean]).toEqual([2, 40, 20]);
    expect([cart.b.count, cart.b.total, cart.b.mean]).toEqual([3, 90, 30]);
    expect(cart.count).toBe("more-b");
    expect(cart.timing).toBe("slower");
    expect(changeLabels(cart)).toEqual(["more in B", "slower in B"]);
    expect(d.summary.moreB).toBe(1);
  });

  it("marks nodes only in A and only in B, and their subtrees", () => {
    const b = buildTree([
      span("1", "checkout", "GET /checkout", 0, 100),
      span("2", "cart", "get cart", 5, 20, "1"),
      span("3", "cart", "get cart", 30, 20, "1"),
      span("7", "payments", "charge", 60, 30, "1"),
      span("8", "bank", "authorize", 61, 20, "7"),
      span("5", "cache", "lookup", 8, 2, "2"),
    ]);
    const d = diffTraces(traceA(), b);
    const only = (p: string) => d.nodes.filter((n) => n.presence === p).map((n) => n.name);
    expect(only("only-a")).toEqual(["query"]);
    expect(only("only-b")).toEqual(["charge", "authorize"]);
    const q = d.byKey.get(key(["checkout", "GET /checkout"], ["db", "query"]))!;
    expect([q.a.count, q.b.count, q.count, q.timing]).toEqual([1, 0, "more-a", null]);
    expect(changeLabels(q)).toEqual(["only in A"]);
    expect(deltaText(q)).toBe("");
    expect(d.summary).toMatchObject({ nodes: 6, added: 2, removed: 1, changed: 0, unchanged: 3 });
    // B's nodes are placed among A's siblings by where they start
    expect(d.nodes.map((n) => n.name)).toEqual(["GET /checkout", "get cart", "lookup", "query", "charge", "authorize"]);
  });

  it("slower and faster in B by mean duration, with absolute and relative change", () => {
    const b = buildTree([
      span("1", "checkout", "GET /checkout", 0, 150),
      span("2", "cart", "get cart", 5, 10, "1"),
      span("3", "cart", "get cart", 30, 10, "1"),
      span("4", "db", "query", 60, 75, "1"),
      span("5", "cache", "lookup", 8, 2.1, "2"),
    ]);
    const d = diffTraces(traceA(), b);
    const byName = (name: string) => d.nodes.find((n) => n.name === name)!;
    const db = byName("query");
    expect([db.timing, db.delta, db.ratio]).toEqual(["slower", 45, 1.5]);
    expect(deltaText(db)).toBe("+45.0ms (+150%)");
    const cart = byName("get cart");
    expect([cart.timing, cart.delta, cart.ratio, cart.count]).toEqual(["faster", -10, -0.5, "same"]);
    expect(deltaText(cart)).toBe("−10.0ms (−50%)");
    expect(changeLabels(cart)).toEqual(["faster in B"]);
    // 5% is under the default threshold of 10%
    const lookup = byName("lookup");
    expect(lookup.timing).toBe("same");
    expect(isChanged(lookup)).toBe(false);
    expect(diffTraces(traceA(), b, { ratio: 0.01 }).byKey.get(lookup.key)!.timing).toBe("slower");
    expect(d.summary).toMatchObject({ durationA: 100, durationB: 150, slower: 2, faster: 1, changed: 3, unchanged: 1 });
  });

  it("pruned to the paths that lead to a change", () => {
    const b = buildTree([
      span("1", "checkout", "GET /checkout", 0, 100),
      span("2", "cart", "get cart", 5, 20, "1"),
      span("3", "cart", "get cart", 30, 20, "1"),
      span("4", "db", "query", 60, 30, "1"),
      span("5", "cache", "lookup", 8, 9, "2"),
    ]);
    const d = diffTraces(traceA(), b);
    expect(changedPaths(d.nodes).map((n) => n.name)).toEqual(["GET /checkout", "get cart", "lookup"]);
    expect(changedPaths(diffTraces(traceA(), traceA()).nodes)).toEqual([]);
  });

  it("a zero-length span in A that takes time in B is slower, without a percentage", () => {
    const a = buildTree([span("1", "s", "op", 0, 0)]);
    const b = buildTree([span("1", "s", "op", 0, 2)]);
    const n = diffTraces(a, b).nodes[0];
    expect([n.timing, n.ratio]).toEqual(["slower", null]);
    expect(deltaText(n)).toBe("+2.00ms");
  });

  it("spans whose parent is missing head roots of their own; different roots do not merge", () => {
    const a = buildTree([span("1", "web", "GET /", 0, 10), span("2", "api", "call", 20, 5, "missing")]);
    const b = buildTree([span("1", "web", "POST /", 0, 10)]);
    const d = diffTraces(a, b);
    expect(d.roots.map((n) => [n.name, n.presence])).toEqual([
      ["GET /", "only-a"],
      ["POST /", "only-b"],
      ["call", "only-a"],
    ]);
  });

  it("empty traces", () => {
    const d = diffTraces(buildTree([]), buildTree([]));
    expect(d.nodes).toEqual([]);
    expect(d.summary).toMatchObject({ spansA: 0, spansB: 0, durationA: 0, durationB: 0, nodes: 0 });
  });
});

describe("formatting", () => {
  it("signed durations and percentages", () => {
    expect(signedDuration(0)).toBe("±0µs");
    expect(signedDuration(1500)).toBe("+1.50s");
    expect(signedDuration(-0.25)).toBe("−250µs");
    expect(signedPercent(0.085)).toBe("+8.5%");
    expect(signedPercent(-0.05)).toBe("−5%");
    expect(signedPercent(2)).toBe("+200%");
  });
});

describe("trace ids and addresses", () => {
  it("reads an id from what was typed or pasted", () => {
    expect(traceIdOf("  ABCdef0123 ")).toBe("abcdef0123");
    expect(traceIdOf("http://localhost:3200/trace/00ff11?x=1")).toBe("00ff11");
    expect(traceIdOf("/trace/beef")).toBe("beef");
    expect(traceIdOf("")).toBeNull();
    expect(traceIdOf("not an id")).toBeNull();
    expect(traceIdOf("a".repeat(33))).toBeNull();
  });

  it("the page's address for A and B", () => {
    expect(compareUrl("aa", "bb")).toBe("/compare/aa/bb");
    expect(compareUrl("aa", null)).toBe("/compare/aa");
    expect(compareUrl(null, "bb")).toBe("/compare/?b=bb");
    expect(compareUrl(null, null)).toBe("/compare/");
  });
});
