/** Two traces compared: their span trees merged by path (the chain of service + operation names
 * from a root), each node with the spans of A and of B found there, what changed, and a summary. */

import { duration } from "../format";
import { Span, Trace } from "./trace";

/** The spans of one trace at one node. */
export interface DiffSide {
  spans: Span[];
  count: number;
  /** the spans' durations added up, ms */
  total: number;
  /** the mean span duration, ms (0 when there are none) */
  mean: number;
  errors: number;
}

export type Presence = "both" | "only-a" | "only-b";
export type CountChange = "same" | "more-a" | "more-b";
export type Timing = "same" | "slower" | "faster";

export interface DiffNode {
  /** the path: service and operation of each span from the root down to this node */
  key: string;
  service: string;
  name: string;
  depth: number;
  parent: DiffNode | null;
  children: DiffNode[];
  a: DiffSide;
  b: DiffSide;
  presence: Presence;
  count: CountChange;
  /** B's mean duration against A's (only for nodes in both) */
  timing: Timing | null;
  /** B's mean minus A's, ms (0 unless in both) */
  delta: number;
  /** ``delta`` as a fraction of A's mean; null when A's mean is 0 or the node is not in both */
  ratio: number | null;
  /** where the node's first span starts in its trace, ms from the trace's start (for ordering) */
  offset: number;
}

export interface DiffSummary {
  spansA: number;
  spansB: number;
  durationA: number;
  durationB: number;
  nodes: number;
  /** only in B */
  added: number;
  /** only in A */
  removed: number;
  /** in both, with a different count or duration */
  changed: number;
  unchanged: number;
  moreA: number;
  moreB: number;
  slower: number;
  faster: number;
}

export interface TraceDiff {
  roots: DiffNode[];
  /** depth-first, children by where they start */
  nodes: DiffNode[];
  byKey: Map<string, DiffNode>;
  summary: DiffSummary;
}

export interface DiffOptions {
  /** a mean duration counts as slower or faster when it moved by at least this fraction of A's */
  ratio?: number;
  /** ... and by at least this many ms */
  ms?: number;
}

const FIELD = "\u001f";
const LEVEL = "\u001e";

/** A node's key from its parent's key and its span's service and operation. */
export function pathKey(parent: string | null, service: string, name: string): string {
  const own = service + FIELD + name;
  return parent === null ? own : parent + LEVEL + own;
}

/** The (service, operation) pairs a key is made of, root first. */
export function pathOf(key: string): [string, string][] {
  return key.split(LEVEL).map((part) => {
    const [service, name] = part.split(FIELD);
    return [service, name ?? ""];
  });
}

const emptySide = (): DiffSide => ({ spans: [], count: 0, total: 0, mean: 0, errors: 0 });

/** Trace duration: first start to last end (0 for an empty trace). */
export function traceDuration(trace: Trace): number {
  return trace.spans.length ? trace.end - trace.start : 0;
}

/** The merged tree of ``a`` and ``b``. */
export function diffTraces(a: Trace, b: Trace, options: DiffOptions = {}): TraceDiff {
  const minRatio = options.ratio ?? 0.1;
  const minMs = options.ms ?? 0;
  const byKey = new Map<string, DiffNode>();
  const roots: DiffNode[] = [];

  const add = (trace: Trace, side: "a" | "b") => {
    // from each root down, each span under the node of its parent's path
    const stack: [Span, DiffNode | null][] = [...trace.roots].reverse().map((s) => [s, null]);
    while (stack.length) {
      const [span, parentNode] = stack.pop()!;
      const key = pathKey(parentNode?.key ?? null, span.service, span.name);
      const offset = span.start - trace.start;
      let node = byKey.get(key);
      if (!node) {
        node = {
          key,
          service: span.service,
          name: span.name,
          depth: parentNode ? parentNode.depth + 1 : 0,
          parent: parentNode,
          children: [],
          a: emptySide(),
          b: emptySide(),
          presence: "both",
          count: "same",
          timing: null,
          delta: 0,
          ratio: null,
          offset,
        };
        byKey.set(key, node);
        if (parentNode) parentNode.children.push(node);
        else roots.push(node);
      }
      const s = node[side];
      // where A has the node, A's earliest start orders it; otherwise B's
      if (side === "a" || node.a.count === 0) node.offset = s.count === 0 ? offset : Math.min(node.offset, offset);
      s.spans.push(span);
      s.count += 1;
      s.total += span.duration;
      if (span.error) s.errors += 1;
      for (let i = span.children.length - 1; i >= 0; i--) stack.push([span.children[i], node]);
    }
  };
  add(a, "a");
  add(b, "b");

  const summary: DiffSummary = {
    spansA: a.spans.length,
    spansB: b.spans.length,
    durationA: traceDuration(a),
    durationB: traceDuration(b),
    nodes: byKey.size,
    added: 0,
    removed: 0,
    changed: 0,
    unchanged: 0,
    moreA: 0,
    moreB: 0,
    slower: 0,
    faster: 0,
  };
  for (const node of byKey.values()) {
    for (const s of [node.a, node.b]) s.mean = s.count ? s.total / s.count : 0;
    node.count = node.a.count > node.b.count ? "more-a" : node.a.count < node.b.count ? "more-b" : "same";
    if (node.b.count === 0) {
      node.presence = "only-a";
      summary.removed += 1;
      continue;
    }
    if (node.a.count === 0) {
      node.presence = "only-b";
      summary.added += 1;
      continue;
    }
    node.delta = node.b.mean - node.a.mean;
    node.ratio = node.a.mean > 0 ? node.delta / node.a.mean : null;
    const moved = Math.abs(node.delta) > 0 && Math.abs(node.delta) >= minMs && (node.ratio === null || Math.abs(node.ratio) >= minRatio);
    node.timing = !moved ? "same" : node.delta > 0 ? "slower" : "faster";
    if (node.count === "more-a") summary.moreA += 1;
    if (node.count === "more-b") summary.moreB += 1;
    if (node.timing === "slower") summary.slower += 1;
    if (node.timing === "faster") summary.faster += 1;
    if (node.count !== "same" || node.timing !== "same") summary.changed += 1;
    else summary.unchanged += 1;
  }

  const nodes: DiffNode[] = [];
  const byOffset = (x: DiffNode, y: DiffNode) => x.offset - y.offset || x.key.localeCompare(y.key);
  roots.sort(byOffset);
  const visit = (node: DiffNode) => {
    nodes.push(node);
    node.children.sort(byOffset);
    node.children.forEach(visit);
  };
  roots.forEach(visit);
  return { roots, nodes, byKey, summary };
}

/** Whether a node differs between A and B in any way. */
export function isChanged(node: DiffNode): boolean {
  return node.presence !== "both" || node.count !== "same" || node.timing !== "same";
}

/** A signed duration: "+12.0ms", "−3.00ms", "±0µs" for none. */
export function signedDuration(ms: number): string {
  if (ms === 0) return "±0µs";
  return (ms > 0 ? "+" : "−") + duration(Math.abs(ms));
}

/** A signed percentage of a fraction: "+40%", "−8.5%". */
export function signedPercent(ratio: number): string {
  const pct = Math.abs(ratio * 100);
  const text = pct < 10 ? pct.toFixed(1).replace(/\.0$/, "") : String(Math.round(pct));
  return (ratio > 0 ? "+" : ratio < 0 ? "−" : "±") + text + "%";
}

/** A node's duration change as people read it: "+12.0ms (+40%)". */
export function deltaText(node: DiffNode): string {
  if (node.presence !== "both") return "";
  return node.ratio === null ? signedDuration(node.delta) : `${signedDuration(node.delta)} (${signedPercent(node.ratio)})`;
}

/** The words for what changed at a node: "only in A", "more in B", "slower in B", … */
export function changeLabels(node: DiffNode): string[] {
  if (node.presence === "only-a") return ["only in A"];
  if (node.presence === "only-b") return ["only in B"];
  const labels: string[] = [];
  if (node.count === "more-a") labels.push("more in A");
  if (node.count === "more-b") labels.push("more in B");
  if (node.timing === "slower") labels.push("slower in B");
  if (node.timing === "faster") labels.push("faster in B");
  return labels;
}

/** The trace id in what someone typed or pasted: a hex id, or a link to a trace ("…/trace/<id>");
 * lower case; null when there is none. */
export function traceIdOf(text: string): string | null {
  const t = text.trim();
  const m = /\/trace\/([0-9a-fA-F]{1,32})(?:[/?#]|$)/.exec(t) ?? /^([0-9a-fA-F]{1,32})$/.exec(t);
  return m ? m[1].toLowerCase() : null;
}

/** The comparison page's address for ids A and B (either may be missing). */
export function compareUrl(a: string | null, b: string | null): string {
  if (a && b) return `/compare/${a}/${b}`;
  if (a) return `/compare/${a}`;
  if (b) return `/compare/?b=${b}`;
  return "/compare/";
}

/** The nodes (in order) that changed or lead to one that did: the tree pruned of unchanged subtrees. */
export function changedPaths(nodes: DiffNode[]): DiffNode[] {
  const keep = new Set<DiffNode>();
  for (const n of nodes) {
    if (!isChanged(n)) continue;
    for (let p: DiffNode | null = n; p && !keep.has(p); p = p.parent) keep.add(p);
  }
  return nodes.filter((n) => keep.has(n));
}
