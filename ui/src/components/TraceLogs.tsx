/** The trace's log lines (the Logs tab; the trace page fetches them once for this and the
 * waterfall's marks): time from the trace's start, level, service, the span (a click selects
 * it) and the line; filtered by lowest level and by text. */

import { useState } from "preact/hooks";
import { LogLine } from "../api";
import { duration } from "../format";
import { Span, Trace } from "../model/trace";
import { serviceColor } from "./colors";

const LEVELS: [string, number][] = [
  ["all levels", 0],
  ["debug and up", 5],
  ["info and up", 9],
  ["warn and up", 13],
  ["error and up", 17],
];

function level(line: LogLine): string {
  if (line.severityText) return line.severityText.toUpperCase();
  const n = line.severityNumber;
  return n >= 21 ? "FATAL" : n >= 17 ? "ERROR" : n >= 13 ? "WARN" : n >= 9 ? "INFO" : n >= 5 ? "DEBUG" : n ? "TRACE" : "";
}

function levelClass(n: number): string {
  return n >= 17 ? "lvl-error" : n >= 13 ? "lvl-warn" : n >= 9 ? "lvl-info" : "lvl-debug";
}

interface Props {
  trace: Trace;
  /** undefined while loading, null when the server keeps no logs */
  lines: LogLine[] | null | undefined;
  error: string | null;
  onSelect: (span: Span) => void;
}

export function TraceLogs({ trace, lines, error, onSelect }: Props) {
  const [min, setMin] = useState(0);
  const [text, setText] = useState("");

  if (error) return <p class="error">{error}</p>;
  if (lines === undefined) return <p class="muted">Loading log lines…</p>;
  if (lines === null) return <p class="muted" data-testid="no-logs">This server keeps no logs.</p>;
  const needle = text.toLowerCase();
  const shown = lines.filter((l) => l.severityNumber >= min && (!needle || l.body.toLowerCase().includes(needle)));
  return (
    <div class="trace-logs" data-testid="trace-logs">
      <div class="logs-tools">
        <select aria-label="lowest level" value={String(min)} onChange={(e) => setMin(Number(e.currentTarget.value))}>
          {LEVELS.map(([label, n]) => (
            <option value={String(n)}>{label}</option>
          ))}
        </select>
        <input placeholder="Filter lines" aria-label="filter lines" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        <span class="muted" data-testid="log-count">
          {shown.length} of {lines.length} line{lines.length === 1 ? "" : "s"}
        </span>
      </div>
      {lines.length === 0 ? (
        <p class="muted">No log lines carry this trace's id.</p>
      ) : (
        <table class="logs">
          <thead>
            <tr>
              <th class="num">Time</th>
              <th>Level</th>
              <th>Service</th>
              <th>Span</th>
              <th>Line</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((l) => {
              const span = l.spanId ? trace.byId.get(l.spanId) : undefined;
              const ms = Number(BigInt(l.timeUnixNano) / 1000n) / 1000 - trace.start;
              return (
                <tr data-testid="log-line" class={levelClass(l.severityNumber)}>
                  <td class="num">{ms >= 0 ? "+" : "−"}{duration(Math.abs(ms))}</td>
                  <td class="level">{level(l)}</td>
                  <td>
                    <span class="swatch" style={{ background: serviceColor(l.serviceName) }} /> {l.serviceName}
                  </td>
                  <td>
                    {span ? (
                      <button class="link-button" onClick={() => onSelect(span)}>
                        {span.name}
                      </button>
                    ) : (
                      <span class="muted">{l.spanId ?? "–"}</span>
                    )}
                  </td>
                  <td class="body">{l.body}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
