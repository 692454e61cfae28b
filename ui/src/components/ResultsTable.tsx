/** The traces a search found: root service and name, start, duration, matched spans. */

import { SearchHit } from "../api";
import { dateTime, duration } from "../format";

export function ResultsTable({ hits, onOpen }: { hits: SearchHit[]; onOpen: (id: string) => void }) {
  if (!hits.length) return <p class="muted" data-testid="no-results">No traces found in this time range.</p>;
  return (
    <table class="results" data-testid="results">
      <thead>
        <tr>
          <th>Trace</th>
          <th>Start</th>
          <th class="num">Duration</th>
          <th class="num">Matched spans</th>
        </tr>
      </thead>
      <tbody>
        {hits.map((h) => {
          const matched = (h.spanSets ?? []).reduce((n, s) => n + s.matched, 0);
          return (
            <tr key={h.traceID} data-trace-id={h.traceID}>
              <td>
                <a
                  href={`/trace/${h.traceID}`}
                  onClick={(e) => {
                    e.preventDefault();
                    onOpen(h.traceID);
                  }}
                >
                  <span class="service">{h.rootServiceName}</span>{" "}
                  <span class="op">{h.rootTraceName ?? ""}</span>
                </a>
                <div class="trace-id">{h.traceID}</div>
              </td>
              <td>{dateTime(Number(BigInt(h.startTimeUnixNano) / 1000000n))}</td>
              <td class="num">{h.durationMs !== undefined ? duration(h.durationMs) : "<1ms"}</td>
              <td class="num">{matched}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
