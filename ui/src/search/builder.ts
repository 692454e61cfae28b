/** The search builder's state and the TraceQL it writes: service, span name, status, duration
 * range and attribute filters, joined with && in one spanset filter. */

export type Status = "" | "error" | "ok" | "unset";

export interface AttributeFilter {
  /** A scoped attribute (``span.http.method``, ``resource.k8s.namespace.name``) or ``.name``. */
  key: string;
  op: "=" | "!=" | "=~" | "!~" | ">" | ">=" | "<" | "<=";
  value: string;
}

export interface BuilderState {
  service: string;
  name: string;
  status: Status;
  minDuration: string;
  maxDuration: string;
  filters: AttributeFilter[];
}

export const EMPTY_BUILDER: BuilderState = {
  service: "",
  name: "",
  status: "",
  minDuration: "",
  maxDuration: "",
  filters: [],
};

const DURATION = /^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)$/;

export function isDuration(text: string): boolean {
  return DURATION.test(text.trim());
}

/** A TraceQL string literal (backslashes and quotes escaped). */
export function quote(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A filter's value as TraceQL: numbers, booleans and durations bare, everything else quoted
 * (a regex is always a string). */
function literal(filter: AttributeFilter): string {
  const v = filter.value.trim();
  if (filter.op === "=~" || filter.op === "!~") return quote(filter.value);
  if (/^-?\d+(\.\d+)?$/.test(v) || v === "true" || v === "false" || isDuration(v)) return v;
  return quote(filter.value);
}

/** Problems that keep the state from being a query (shown next to the inputs). */
export function builderProblems(state: BuilderState): string[] {
  const out: string[] = [];
  for (const [label, value] of [
    ["minimum duration", state.minDuration],
    ["maximum duration", state.maxDuration],
  ] as const) {
    if (value.trim() && !isDuration(value)) out.push(`${label} "${value}" is not a duration such as 250ms, 1.5s or 2m`);
  }
  for (const f of state.filters) {
    if (f.key.trim() && !/^(\.|span\.|resource\.|event\.|link\.|instrumentation\.)\S+$/.test(f.key.trim())) {
      out.push(`"${f.key}" is not an attribute: name it with its scope (span., resource.) or a leading dot`);
    }
  }
  return out;
}

export function buildTraceQL(state: BuilderState): string {
  const parts: string[] = [];
  if (state.service) parts.push(`resource.service.name = ${quote(state.service)}`);
  if (state.name) parts.push(`name = ${quote(state.name)}`);
  if (state.status) parts.push(`status = ${state.status}`);
  if (isDuration(state.minDuration)) parts.push(`duration >= ${state.minDuration.trim()}`);
  if (isDuration(state.maxDuration)) parts.push(`duration <= ${state.maxDuration.trim()}`);
  for (const f of state.filters) {
    if (f.key.trim() && f.value.trim()) parts.push(`${f.key.trim()} ${f.op} ${literal(f)}`);
  }
  return parts.length ? `{ ${parts.join(" && ")} }` : "{ }";
}
