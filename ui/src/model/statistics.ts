/** A trace's statistics: per service or per service and operation, how many spans, their total
 * and self time, min/avg/max duration and errors; and sorting such rows. */

import { Span, Trace, selfTime } from "./trace";

export type StatGroup = "service" | "operation";

export interface StatRow {
  key: string;
  service: string;
  /** null when grouped by service only */
  operation: string | null;
  count: number;
  total: number;
  self: number;
  min: number;
  avg: number;
  max: number;
  errors: number;
}

/** Self time of every span: its duration less the union of its children's intervals clipped
 * to it. */
export function selfTimes(trace: Trace): Map<Span, number> {
  return new Map(trace.spans.map((s) => [s, selfTime(s)]));
}

export function traceStatistics(trace: Trace, group: StatGroup, self = selfTimes(trace)): StatRow[] {
  const rows = new Map<string, StatRow>();
  for (const s of trace.spans) {
    const operation = group === "operation" ? s.name : null;
    const key = operation === null ? s.service : `${s.service}\u0000${operation}`;
    let row = rows.get(key);
    if (!row) {
      row = { key, service: s.service, operation, count: 0, total: 0, self: 0, min: Infinity, avg: 0, max: -Infinity, errors: 0 };
      rows.set(key, row);
    }
    row.count += 1;
    row.total += s.duration;
    row.self += self.get(s) ?? 0;
    row.min = Math.min(row.min, s.duration);
    row.max = Math.max(row.max, s.duration);
    if (s.error) row.errors += 1;
  }
  const out = [...rows.values()];
  for (const row of out) row.avg = row.total / row.count;
  return sortRows(out, "total", "desc", "key");
}

export type SortDir = "asc" | "desc";

/** Rows sorted by one of their fields (strings by locale, numbers numerically); ties keep a
 * stable order by key. */
export function sortRows<T extends object, K extends keyof T>(rows: T[], field: K, dir: SortDir, tie?: keyof T): T[] {
  const sign = dir === "asc" ? 1 : -1;
  const cmp = (a: unknown, b: unknown): number =>
    typeof a === "number" && typeof b === "number" ? a - b : String(a ?? "").localeCompare(String(b ?? ""));
  return [...rows].sort((a, b) => sign * cmp(a[field], b[field]) || (tie ? cmp(a[tie], b[tie]) : 0));
}
