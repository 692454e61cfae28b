/** Finding spans within a trace: a case-insensitive substring of the span's name, service,
 * id, or any attribute key or value (span, resource, scope, events). */

import { Attr, Span, Trace } from "./trace";

function text(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value) ?? "";
}

function attrsMatch(attrs: Attr[], needle: string): boolean {
  return attrs.some((a) => a.key.toLowerCase().includes(needle) || text(a.value).toLowerCase().includes(needle));
}

export function spanMatches(span: Span, needle: string): boolean {
  return (
    span.name.toLowerCase().includes(needle) ||
    span.service.toLowerCase().includes(needle) ||
    span.spanId.toLowerCase() === needle ||
    attrsMatch(span.attributes, needle) ||
    attrsMatch(span.resource, needle) ||
    attrsMatch(span.scope?.attributes ?? [], needle) ||
    span.events.some((e) => e.name.toLowerCase().includes(needle) || attrsMatch(e.attributes, needle))
  );
}

/** The spans matching ``query`` in the trace's (depth-first) order; none for a blank query. */
export function searchSpans(trace: Trace, query: string): Span[] {
  const needle = query.trim().toLowerCase();
  if (!needle) return [];
  return trace.spans.filter((s) => spanMatches(s, needle));
}
