/** What is different about a selection of spans: TraceQL compare()'s answer (an instant query:
 * per attribute, span counts of each value in the selection and in the baseline, and totals)
 * ranked by how much more often a value occurs in the selection than in the baseline; and the
 * TraceQL text that finds a value's traces. */

import type { InstantSeries, Scalar } from "../serviceApi";
import { labelOf, scalar } from "../serviceApi";

export interface Difference {
  attribute: string; // as compare() names it: span.x, resource.x, name, status ...
  value: Scalar;
  selection: number; // selected spans with the value
  baseline: number; // baseline spans with the value
  selectionShare: number; // of all selected spans, 0..1
  baselineShare: number; // of all baseline spans, 0..1
}

export interface Ranking {
  selectionSpans: number;
  baselineSpans: number;
  differences: Difference[]; // over-represented values, most first
}

/** Rank the values of compare()'s series. A share is of all spans of its group (the most any
 * attribute's ``*_total`` counts: every span has a name), so that values of attributes only
 * some spans carry compare fairly. Only values more frequent in the selection are kept;
 * attributes in ``exclude`` (those the selection is defined by) are left out. */
export function rankDifferences(series: InstantSeries[], exclude: string[] = [], limit = 20): Ranking {
  const counts = new Map<string, { attribute: string; value: Scalar; selection: number; baseline: number }>();
  let selectionSpans = 0;
  let baselineSpans = 0;
  for (const s of series) {
    const type = labelOf(s.labels, "__meta_type");
    const attr = s.labels.find((l) => !l.key.startsWith("__"));
    if (typeof type !== "string" || !attr || !Number.isFinite(s.value)) continue;
    if (type === "selection_total") selectionSpans = Math.max(selectionSpans, s.value);
    else if (type === "baseline_total") baselineSpans = Math.max(baselineSpans, s.value);
    else if (type === "selection" || type === "baseline") {
      const value = scalar(attr.value);
      if (value === undefined) continue;
      const key = JSON.stringify([attr.key, value]);
      const c = counts.get(key) ?? { attribute: attr.key, value, selection: 0, baseline: 0 };
      c[type] += s.value;
      counts.set(key, c);
    }
  }
  const differences: Difference[] = [];
  for (const c of counts.values()) {
    if (exclude.includes(c.attribute) || c.selection <= 0) continue;
    const selectionShare = selectionSpans ? c.selection / selectionSpans : 0;
    const baselineShare = baselineSpans ? c.baseline / baselineSpans : 0;
    if (selectionShare > baselineShare) differences.push({ ...c, selectionShare, baselineShare });
  }
  differences.sort(
    (a, b) =>
      b.selectionShare - b.baselineShare - (a.selectionShare - a.baselineShare) ||
      b.selection - a.selection ||
      a.attribute.localeCompare(b.attribute) ||
      String(a.value).localeCompare(String(b.value)),
  );
  return { selectionSpans, baselineSpans, differences: differences.slice(0, limit) };
}

/** The compare() attributes a TraceQL filter mentions (span.x also as .x, the way it may be
 * written unscoped). */
export function attributesIn(filter: string, attributes: string[]): string[] {
  const text = filter.replace(/"(?:[^"\\]|\\.)*"/g, '""'); // not inside string literals
  return attributes.filter((a) => {
    const names = [a];
    const scoped = /^(span|resource)\.(.+)$/.exec(a);
    if (scoped) names.push("." + scoped[2]);
    return names.some((n) => new RegExp(`(^|[^\\w.:])${escapeRegExp(n)}(?![\\w.])`).test(text));
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function traceqlString(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
}

const ENUMS = new Set(["status", "kind"]); // intrinsics whose values are keywords, not strings

/** ``attribute = value`` in TraceQL, for an attribute as compare() names it. */
export function attributeCondition(attribute: string, value: Scalar): string {
  let name = attribute;
  const scoped = /^(span|resource|instrumentation)\.(.+)$/.exec(attribute);
  if (scoped && !/^[A-Za-z_][\w.\-/]*$/.test(scoped[2])) name = `${scoped[1]}.${traceqlString(scoped[2])}`;
  const literal =
    typeof value === "string" ? (ENUMS.has(attribute) ? value : traceqlString(value)) : String(value);
  return `${name} = ${literal}`;
}

/** The inside of a lone spanset filter ``{ ... }`` ("" for ``{ }``), or null for anything
 * else (a pipeline, structural operators). */
export function filterBody(q: string): string | null {
  const m = /^\s*\{([\s\S]*)\}\s*$/.exec(q);
  if (!m) return null;
  const bare = m[1].replace(/"(?:[^"\\]|\\.)*"/g, '""');
  if (/[{}|]/.test(bare.replace(/\|\|/g, ""))) return null;
  return m[1].trim() === "true" ? "" : m[1].trim();
}

/** One TraceQL search finding the spans that match all of ``filters`` (TraceQL filters);
 * ``conditions`` are added to the last. */
export function combineFilters(filters: string[], conditions: string[] = []): string {
  const bodies = filters.map(filterBody);
  if (bodies.every((b) => b !== null)) {
    const parts = [...(bodies as string[]), ...conditions].filter((p) => p !== "");
    if (parts.length === 0) return "{ }";
    if (parts.length === 1) return `{ ${parts[0]} }`;
    // && binds tighter than ||: only a part with || needs brackets
    return `{ ${parts.map((p) => (p.includes("||") ? `(${p})` : p)).join(" && ")} }`;
  }
  // not all lone filters: spansets of one trace (the conditions on the last one's spans)
  const last = filters[filters.length - 1];
  const lastBody = filterBody(last);
  const withConditions =
    conditions.length && lastBody !== null ? combineFilters([last], conditions) : last;
  return [...filters.slice(0, -1), withConditions].join(" && ");
}

/** The compare() metrics query: the selection's values against the rest of the baseline's. */
export function compareQuery(baseline: string, selection: string, topN = 50): string {
  return `${baseline.trim()} | compare(${selection.trim()}, ${topN})`;
}
