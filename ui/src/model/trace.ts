/** A trace as the views use it: spans from OTLP/JSON (Jaeger api_v3's, hex ids), in a tree
 * (built in O(n log n)), and the tree's walks the views share (visible rows, ancestors). */

export interface Attr {
  key: string;
  value: unknown;
}

/** The instrumentation scope that wrote a span. */
export interface Scope {
  name: string;
  version: string;
  attributes: Attr[];
}

/** A span's link to another span (often in another trace). */
export interface SpanLink {
  traceId: string;
  spanId: string;
  attributes: Attr[];
}

export const SPAN_KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];
export const KIND_PRODUCER = 4;
export const KIND_CONSUMER = 5;

export interface Span {
  spanId: string;
  parentId: string | null;
  traceId: string;
  name: string;
  service: string;
  kind: number;
  start: number; // unix ms (fractional)
  duration: number; // ms
  error: boolean;
  statusMessage: string;
  attributes: Attr[];
  resource: Attr[];
  events: { name: string; time: number; attributes: Attr[] }[];
  children: Span[];
  depth: number;
  /** the parent id names a span this trace does not hold */
  orphan: boolean;
  /** set by parseTrace (optional so spans made by hand still type-check) */
  scope?: Scope;
  links?: SpanLink[];
  /** set by buildTree: the parent span in this trace (null for roots and orphans) */
  parent?: Span | null;
}

export interface Trace {
  traceId: string;
  spans: Span[]; // depth-first, children by start time
  roots: Span[];
  start: number;
  end: number;
  services: string[];
  byId: Map<string, Span>;
}

type Json = Record<string, any>;

/** An OTLP JSON AnyValue as a plain value. */
export function plain(value: Json | undefined): unknown {
  if (!value) return null;
  if ("stringValue" in value) return value.stringValue;
  if ("intValue" in value) return Number(value.intValue);
  if ("doubleValue" in value) return value.doubleValue;
  if ("boolValue" in value) return value.boolValue;
  if ("arrayValue" in value) return (value.arrayValue.values ?? []).map(plain);
  if ("kvlistValue" in value)
    return Object.fromEntries((value.kvlistValue.values ?? []).map((kv: Json) => [kv.key, plain(kv.value)]));
  if ("bytesValue" in value) return value.bytesValue;
  return null;
}

function attrs(list: Json[] | undefined): Attr[] {
  return (list ?? []).map((kv) => ({ key: kv.key, value: plain(kv.value) }));
}

const ns = (text: string | undefined): number => (text ? Number(BigInt(text) / 1000n) / 1000 : 0);

/** The trace of an OTLP/JSON document (``{"resourceSpans": [...]}``). */
export function parseTrace(doc: Json): Trace {
  const spans: Span[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    const service = String(resource.find((a) => a.key === "service.name")?.value ?? "unknown");
    for (const ss of rs.scopeSpans ?? []) {
      const scope: Scope = {
        name: ss.scope?.name ?? "",
        version: ss.scope?.version ?? "",
        attributes: attrs(ss.scope?.attributes),
      };
      for (const s of ss.spans ?? []) {
        const start = ns(s.startTimeUnixNano);
        spans.push({
          spanId: s.spanId,
          parentId: s.parentSpanId || null,
          traceId: s.traceId,
          name: s.name ?? "",
          service,
          kind: s.kind ?? 0,
          start,
          duration: ns(s.endTimeUnixNano) - start,
          error: s.status?.code === 2,
          statusMessage: s.status?.message ?? "",
          attributes: attrs(s.attributes),
          resource,
          events: (s.events ?? []).map((e: Json) => ({
            name: e.name ?? "",
            time: ns(e.timeUnixNano),
            attributes: attrs(e.attributes),
          })),
          children: [],
          depth: 0,
          orphan: false,
          scope,
          links: (s.links ?? []).map((l: Json) => ({
            traceId: l.traceId ?? "",
            spanId: l.spanId ?? "",
            attributes: attrs(l.attributes),
          })),
          parent: null,
        });
      }
    }
  }
  return buildTree(spans);
}

/** Spans into a tree: a span whose parent is missing heads a subtree of its own (marked). */
export function buildTree(spans: Span[]): Trace {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const roots: Span[] = [];
  for (const s of spans) {
    const parent = s.parentId ? byId.get(s.parentId) : undefined;
    s.orphan = s.parentId !== null && (parent === undefined || parent === s);
    if (parent && parent !== s) {
      parent.children.push(s);
      s.parent = parent;
    } else {
      s.parent = null;
      roots.push(s);
    }
  }
  const byStart = (a: Span, b: Span) => a.start - b.start || a.spanId.localeCompare(b.spanId);
  roots.sort(byStart);
  const ordered: Span[] = [];
  const stack: [Span, number][] = [...roots].reverse().map((s) => [s, 0]);
  while (stack.length) {
    const [span, depth] = stack.pop()!;
    span.depth = depth;
    ordered.push(span);
    span.children.sort(byStart);
    for (let i = span.children.length - 1; i >= 0; i--) stack.push([span.children[i], depth + 1]);
  }
  const start = spans.reduce((m, s) => Math.min(m, s.start), Infinity);
  const end = spans.reduce((m, s) => Math.max(m, s.start + s.duration), -Infinity);
  const services = [...new Set(spans.map((s) => s.service))].sort();
  // a parent cycle (a->b->a) has no root: its spans are never reached above; show them as roots
  if (ordered.length < spans.length) {
    const seen = new Set(ordered);
    for (const s of spans) {
      if (seen.has(s)) continue;
      s.depth = 0;
      s.parent = null;
      s.orphan = true;
      s.children = [];
      roots.push(s);
      ordered.push(s);
    }
  }
  return { traceId: spans[0]?.traceId ?? "", spans: ordered, roots, start, end, services, byId };
}

/** The spans a tree shows when the subtrees under ``collapsed`` span ids are folded away. */
export function visibleSpans(trace: Trace, collapsed: ReadonlySet<string>): Span[] {
  if (collapsed.size === 0) return trace.spans;
  const out: Span[] = [];
  let skipBelow = -1; // while >= 0, spans deeper than this depth are inside a folded subtree
  for (const s of trace.spans) {
    if (skipBelow >= 0) {
      if (s.depth > skipBelow) continue;
      skipBelow = -1;
    }
    out.push(s);
    if (collapsed.has(s.spanId) && s.children.length) skipBelow = s.depth;
  }
  return out;
}

/** A span's ancestors in this trace, nearest first. */
export function ancestors(span: Span): Span[] {
  const out: Span[] = [];
  const seen = new Set<Span>([span]);
  for (let p = span.parent; p && !seen.has(p); p = p.parent) {
    out.push(p);
    seen.add(p);
  }
  return out;
}

/** Per service and operation: count, total, self time (not covered by children), min, max. */
export function statistics(trace: Trace) {
  const rows = new Map<string, { service: string; name: string; count: number; total: number; self: number; min: number; max: number }>();
  for (const s of trace.spans) {
    const key = `${s.service}\u0000${s.name}`;
    const row = rows.get(key) ?? { service: s.service, name: s.name, count: 0, total: 0, self: 0, min: Infinity, max: 0 };
    row.count += 1;
    row.total += s.duration;
    row.self += selfTime(s);
    row.min = Math.min(row.min, s.duration);
    row.max = Math.max(row.max, s.duration);
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => b.total - a.total);
}

/** The part of a span's time that none of its children covers. */
export function selfTime(span: Span): number {
  const end = span.start + span.duration;
  const parts = span.children
    .map((c) => [Math.max(c.start, span.start), Math.min(c.start + c.duration, end)] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let until = span.start;
  for (const [a, b] of parts) {
    if (b <= until) continue;
    covered += b - Math.max(a, until);
    until = b;
  }
  return span.duration - covered;
}
