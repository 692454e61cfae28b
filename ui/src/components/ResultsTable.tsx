/** The traces a search found, newest first: root service and name, start, duration, span and
 * error counts (filled in when they arrive), matched spans. */

import { SearchHit } from "../api";
import { Link } from "../App";
import { dateTime, duration } from "../format";
import { TraceCounts } from "../search/searchApi";

interface Props {
  hits: SearchHit[];
  counts: Map<string, TraceCounts>;
  /** trace ids ticked for comparing (two at most) */
  picked: string[];
  onPick: (traceId: string, on: boolean) => void;
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function ResultsTable({ hits, counts, picked, onPick }: Props) {
  if (!hits.length) return <p class="muted" data-testid="no-results">No traces found in this time range.</p>;
  const now = Date.now();
  return (
    <table class="results" data-testid="results">
      <thead>
        <tr>
          <th class="pick" title="tick two traces to compare them" />
          <th>Trace</th>
          <th>Start</th>
          <th class="num">Duration</th>
          <th class="num">Spans</th>
          <th class="num">Errors</th>
          <th class="num">Matched</th>
        </tr>
      </thead>
      <tbody>
        {hits.map((h) => {
          const matched = (h.spanSets ?? []).reduce((n, s) => n + s.matched, 0);
          const c = counts.get(h.traceID);
          const startMs = Number(BigInt(h.startTimeUnixNano) / 1000000n);
          return (
            <tr key={h.traceID} data-trace-id={h.traceID} class={c && c.errors ? "failed" : undefined}>
              <td class="pick">
                <input
                  type="checkbox"
                  aria-label="compare this trace"
                  checked={picked.includes(h.traceID)}
                  disabled={!picked.includes(h.traceID) && picked.length >= 2}
                  onChange={(e) => onPick(h.traceID, e.currentTarget.checked)}
                />
              </td>
              <td>
                <Link href={`/trace/${h.traceID}`}>
                  <span class="service">{h.rootServiceName}</span> <span class="op">{h.rootTraceName ?? ""}</span>
                </Link>
                <div class="trace-id">{h.traceID}</div>
              </td>
              <td>
                {dateTime(startMs)}
                <div class="muted small">{ago(startMs, now)}</div>
              </td>
              <td class="num">{h.durationMs !== undefined ? duration(h.durationMs) : "<1ms"}</td>
              <td class="num" data-testid="trace-spans">
                {c ? c.spans : <span class="muted">…</span>}
              </td>
              <td class="num" data-testid="trace-errors">
                {c ? c.errors ? <span class="badge error" title={`${c.errors} error spans`}>{c.errors}</span> : <span class="muted">–</span> : null}
              </td>
              <td class="num">{matched}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
