/** The server's APIs the UI reads: Tempo's search, Jaeger api_v3's OTLP/JSON trace. */

import { TENANT_NEEDED, asksForTenant, tenant } from "./tenant";

export interface SearchHit {
  traceID: string;
  rootServiceName: string;
  rootTraceName?: string;
  startTimeUnixNano: string;
  durationMs?: number;
  spanSets?: { matched: number; spans: { spanID: string; name?: string }[] }[];
}

export class ApiError extends Error {}

/** GET ``path`` as JSON, as the chosen tenant; an error answer raises ``ApiError`` with the
 * server's message (and one that asks for a tenant tells the tenant picker). */
export async function get(path: string): Promise<any> {
  const name = tenant();
  const r = await fetch(path, name ? { headers: { "X-Scope-OrgID": name } } : undefined);
  const text = await r.text();
  if (!r.ok) {
    let message = text.trim();
    try {
      message = JSON.parse(text).error?.message ?? message;
    } catch {
      // plain text answer
    }
    if (asksForTenant(message)) dispatchEvent(new Event(TENANT_NEEDED));
    throw new ApiError(message || `${r.status} ${r.statusText}`);
  }
  return JSON.parse(text);
}

export async function search(
  q: string,
  limit: number,
  start: number,
  end: number,
  spss = 3,
): Promise<SearchHit[]> {
  const params = new URLSearchParams({ q, limit: String(limit), spss: String(spss), start: String(start), end: String(end) });
  const doc = await get(`/api/search?${params}`);
  return doc.traces ?? [];
}

export async function fetchTrace(id: string): Promise<any> {
  const doc = await get(`/jaeger/api/v3/traces/${encodeURIComponent(id)}`);
  return doc.result;
}

/** A log line of a trace, as ``/api/traces/<id>/logs`` answers it. */
export interface LogLine {
  timeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: string;
  serviceName: string;
  traceId?: string;
  spanId?: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** The trace's log lines in time order; null when the server keeps no logs. */
export async function fetchTraceLogs(id: string): Promise<LogLine[] | null> {
  try {
    return (await get(`/api/traces/${encodeURIComponent(id)}/logs`)).logs ?? [];
  } catch (e) {
    if (e instanceof ApiError && /not found/i.test(e.message)) return null;
    throw e;
  }
}
