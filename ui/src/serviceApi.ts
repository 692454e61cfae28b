/** The server APIs the service views read: /api/service-graph and Tempo's TraceQL metrics
 * (/api/metrics/query_range and /api/metrics/query), with helpers to read their labels. */

import { get } from "./api";

export interface Figures {
  requests: number;
  requestRate: number; // per second over the window
  errors: number;
  errorRate: number; // fraction of requests, 0..1
  p50Seconds: number | null;
  p95Seconds: number | null;
  p99Seconds: number | null;
}

/** A service; ``virtual`` when it sends no spans (a database that client spans name). */
export interface GraphNode extends Figures {
  id: string;
  virtual: boolean;
}

export interface GraphEdge extends Figures {
  source: string;
  target: string;
}

export interface GraphDoc {
  start: number;
  end: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

export interface AnyValue {
  stringValue?: string;
  intValue?: string;
  doubleValue?: number;
  boolValue?: boolean;
}

export interface Label {
  key: string;
  value: AnyValue;
}

export interface Exemplar {
  labels: Label[];
  value: number;
  timestampMs: string;
}

export interface RangeSeries {
  labels: Label[];
  samples: { timestampMs: string; value: number }[];
  exemplars?: Exemplar[];
}

export interface InstantSeries {
  labels: Label[];
  value: number;
}

export function fetchServiceGraph(start: number, end: number): Promise<GraphDoc> {
  return get(`/api/service-graph?start=${start}&end=${end}`);
}

export async function queryRange(q: string, start: number, end: number, step: number): Promise<RangeSeries[]> {
  const params = new URLSearchParams({ q, start: String(start), end: String(end), step: `${step}s` });
  return (await get(`/api/metrics/query_range?${params}`)).series ?? [];
}

export async function queryInstant(q: string, start: number, end: number): Promise<InstantSeries[]> {
  const params = new URLSearchParams({ q, start: String(start), end: String(end) });
  return (await get(`/api/metrics/query?${params}`)).series ?? [];
}

export type Scalar = string | number | boolean;

export function scalar(v: AnyValue | undefined): Scalar | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue;
}

export function labelOf(labels: Label[], key: string): Scalar | undefined {
  return scalar(labels.find((l) => l.key === key)?.value);
}

/** The window ``[now - range, now]`` in unix seconds (the end a second ahead, so that spans
 * that just arrived are in). */
export function windowOf(range: number): { start: number; end: number } {
  const end = Math.ceil(Date.now() / 1000) + 1;
  return { start: end - range, end };
}

export const RANGES: [string, number][] = [
  ["Last 15 minutes", 900],
  ["Last hour", 3600],
  ["Last 6 hours", 6 * 3600],
  ["Last 24 hours", 86400],
  ["Last 7 days", 7 * 86400],
];

/** A chart step giving about 60–120 points over ``range`` seconds. */
export function stepFor(range: number): number {
  const steps = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800];
  return steps.find((s) => range / s <= 120) ?? 21600;
}

export function rangeFromUrl(location: string, fallback = 3600): number {
  const raw = Number(new URLSearchParams(location.split("?")[1] ?? "").get("range"));
  return Number.isFinite(raw) && raw > 0 ? raw : fallback;
}
