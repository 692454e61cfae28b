/** A search's time range: relative ("the last hour", moving with the clock) or absolute (two
 * instants), as it is kept in the URL and sent to the server (unix seconds). */

export type TimeRange =
  | { kind: "relative"; seconds: number }
  | { kind: "absolute"; start: number; end: number };

export const PRESETS: [string, number][] = [
  ["Last 5 minutes", 300],
  ["Last 15 minutes", 900],
  ["Last hour", 3600],
  ["Last 3 hours", 3 * 3600],
  ["Last 6 hours", 6 * 3600],
  ["Last 24 hours", 86400],
  ["Last 2 days", 2 * 86400],
  ["Last 7 days", 7 * 86400],
];

export const DEFAULT_RANGE: TimeRange = { kind: "relative", seconds: 3600 };

/** The range from the URL's ``range`` (seconds back from now) or ``start`` and ``end``. */
export function rangeFromParams(params: URLSearchParams): TimeRange {
  const start = Number(params.get("start"));
  const end = Number(params.get("end"));
  if (params.has("start") && params.has("end") && Number.isFinite(start) && Number.isFinite(end) && end > start) {
    return { kind: "absolute", start, end };
  }
  const seconds = Number(params.get("range"));
  if (params.has("range") && Number.isFinite(seconds) && seconds > 0) return { kind: "relative", seconds };
  return DEFAULT_RANGE;
}

export function rangeToParams(range: TimeRange): Record<string, string> {
  return range.kind === "relative"
    ? { range: String(range.seconds) }
    : { start: String(range.start), end: String(range.end) };
}

/** The range's instants at ``nowSeconds``: whole seconds that cover it (the API takes seconds). */
export function resolveRange(range: TimeRange, nowSeconds: number): { start: number; end: number } {
  if (range.kind === "absolute") return { start: Math.floor(range.start), end: Math.ceil(range.end) };
  const end = Math.ceil(nowSeconds) + 1;
  return { start: end - 1 - range.seconds, end };
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** ``seconds`` as a ``datetime-local`` input's value, in local time. */
export function toLocalInput(seconds: number): string {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A ``datetime-local`` value (local time) as unix seconds, or null if it is not one. */
export function fromLocalInput(text: string): number | null {
  const ms = new Date(text).getTime();
  return text && Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

export function rangeLabel(range: TimeRange): string {
  if (range.kind === "relative") {
    const preset = PRESETS.find(([, s]) => s === range.seconds);
    if (preset) return preset[0];
    const s = range.seconds;
    return s % 86400 === 0 ? `Last ${s / 86400} days` : s % 3600 === 0 ? `Last ${s / 3600} hours` : `Last ${Math.round(s / 60)} minutes`;
  }
  const from = toLocalInput(range.start).replace("T", " ");
  const to = toLocalInput(range.end).replace("T", " ");
  return from.slice(0, 10) === to.slice(0, 10) ? `${from} – ${to.slice(11)}` : `${from} – ${to}`;
}
