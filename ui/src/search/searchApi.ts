/** The search page's server calls: Tempo's search (pages of it, newest first), the tag APIs
 * that feed the builder and autocompletion, and span and error counts of the traces found. */

import { SearchHit, get, search } from "../api";
import { quote } from "./builder";

export { search };

const cache = new Map<string, Promise<unknown>>();

/** ``get`` remembered for the page's life (tag names and values do not need to be fresh). */
function cached<T>(path: string, pick: (doc: any) => T): Promise<T> {
  let hit = cache.get(path) as Promise<T> | undefined;
  if (!hit) {
    hit = get(path).then(pick);
    hit.catch(() => cache.delete(path));
    cache.set(path, hit);
  }
  return hit;
}

/** Attribute names by scope (``resource``, ``span``, ``event``, ``link``, ``instrumentation``). */
export function tagNames(scope?: string): Promise<Record<string, string[]>> {
  const q = scope ? `?scope=${encodeURIComponent(scope)}` : "";
  return cached(`/api/v2/search/tags${q}`, (doc) =>
    Object.fromEntries((doc.scopes ?? []).map((s: { name: string; tags: string[] }) => [s.name, s.tags ?? []])),
  );
}

export interface TagValue {
  type: string;
  value: string;
}

/** The values a tag (``resource.service.name``, ``name``, ``status`` ...) holds; ``q`` narrows
 * them to the spans a TraceQL filter matches. */
export function tagValues(tag: string, q?: string): Promise<TagValue[]> {
  const params = q ? `?q=${encodeURIComponent(q)}` : "";
  return cached(`/api/v2/search/tag/${encodeURIComponent(tag)}/values${params}`, (doc) => doc.tagValues ?? []);
}

export interface TraceCounts {
  spans: number;
  errors: number;
}

/** Span and error-span counts of ``hits`` (two searches for just those traces). */
export async function traceCounts(hits: SearchHit[]): Promise<Map<string, TraceCounts>> {
  const out = new Map<string, TraceCounts>();
  if (!hits.length) return out;
  const ids = hits.map((h) => `trace:id = ${quote(h.traceID)}`).join(" || ");
  const startsNs = hits.map((h) => BigInt(h.startTimeUnixNano));
  const minStart = startsNs.reduce((a, b) => (a < b ? a : b));
  const maxEnd = hits.reduce((m, h) => Math.max(m, Number(BigInt(h.startTimeUnixNano) / 1000000n) + (h.durationMs ?? 0)), 0);
  const start = Number(minStart / 1000000000n) - 1;
  const end = Math.ceil(maxEnd / 1000) + 1;
  const [all, failed] = await Promise.all([
    search(`{ ${ids} }`, hits.length, start, end, 1),
    search(`{ (${ids}) && status = error }`, hits.length, start, end, 1),
  ]);
  const matched = (h: SearchHit) => (h.spanSets ?? []).reduce((n, s) => n + s.matched, 0);
  for (const h of all) out.set(h.traceID, { spans: matched(h), errors: 0 });
  for (const h of failed) {
    const counts = out.get(h.traceID);
    if (counts) counts.errors = matched(h);
  }
  return out;
}
