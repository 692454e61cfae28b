/** A trace as the views use it: spans from OTLP/JSON (Jaeger api_v3's, hex ids), in a tree. */

export interface Attr {
  key: string;
  value: unknown;
}

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
}

export interface Trace {
  traceId: string;
  spans: Span[]; // depth-first, children by start time
  roots: Span[];
  start: number;
  end: number;
  services: string[];
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
    s.orphan = s.parentId !== null && parent === undefined;
    if (parent && parent !== s) parent.children.push(s);
    else roots.push(s);
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
  return { traceId: spans[0]?.traceId ?? "", spans: ordered, roots, start, end, services };
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
