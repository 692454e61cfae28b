/** Logs (/logs): a LogQL editor (Grafana's LogQL grammar), a time range, a histogram of lines
 * over time by level, and the lines, newest first; a line that carries a trace id opens its
 * trace. The URL holds the query and the range. */

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, get } from "../api";
import { Link } from "../App";
import { LogHistogram } from "../components/LogHistogram";
import { Dialect, QueryEditor } from "../components/QueryEditor";
import { TimeRangePicker } from "../components/TimeRangePicker";
import "../components/logs.css";
import { dateTime } from "../format";
import { completeLogql, logql } from "../logs/language";
import { TimeRange, rangeFromParams, rangeToParams, resolveRange } from "../search/timeRange";

const LOGQL: Dialect = { language: logql(), complete: completeLogql, placeholder: '{service_name="checkout"} |= "timeout"' };
const LIMIT = 500;

export interface LogRow {
  ns: bigint;
  line: string;
  labels: Record<string, string>;
}

interface Stream {
  stream: Record<string, string>;
  values: [string, string][];
}

function readUrl(location: string) {
  const params = new URLSearchParams(location.split("?")[1] ?? "");
  return { q: params.get("q") ?? '{service_name=~".+"}', range: rangeFromParams(params) };
}

export function LogsPage({ location }: { location: string }) {
  const initial = readUrl(location);
  const query = useRef(initial.q);
  const [range, setRange] = useState<TimeRange>(initial.range);
  const [rows, setRows] = useState<LogRow[] | null>(null);
  const [window, setWindow] = useState<{ start: number; end: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(q = query.current, r = range, record = true) {
    const url = `/logs?${new URLSearchParams({ q, ...rangeToParams(r) })}`;
    if (record) history.pushState(null, "", url);
    const win = resolveRange(r, Date.now() / 1000);
    setBusy(true);
    setError(null);
    try {
      const params = new URLSearchParams({
        query: q,
        start: String(win.start * 1e9),
        end: String(win.end * 1e9),
        limit: String(LIMIT),
        direction: "backward",
      });
      const doc = await get(`/loki/api/v1/query_range?${params}`);
      if (doc.data.resultType !== "streams") throw new ApiError("the Logs page shows log queries: use a selector and filters, not a metric query");
      const found: LogRow[] = (doc.data.result as Stream[]).flatMap((s) =>
        s.values.map(([ns, line]) => ({ ns: BigInt(ns), line, labels: s.stream })),
      );
      found.sort((a, b) => (a.ns < b.ns ? 1 : a.ns > b.ns ? -1 : 0));
      setRows(found);
      setWindow(win);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      setRows(null);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    void run(initial.q, initial.range, false);
  }, []);

  return (
    <section class="logs-page">
      <div class="search-bar">
        <QueryEditor initial={initial.q} error={error} dialect={LOGQL} onChange={(t) => (query.current = t)} onRun={() => run()} />
        <TimeRangePicker range={range} onChange={(r) => (setRange(r), void run(query.current, r))} />
        <button class="primary" data-testid="run" disabled={busy} onClick={() => run()}>
          {busy ? "Querying…" : "Run query"}
        </button>
      </div>
      {error && (
        <p class="error" data-testid="logs-error">
          {error}
        </p>
      )}
      {rows && window && <LogHistogram rows={rows} start={window.start} end={window.end} />}
      {rows && (
        <>
          <p class="muted small" data-testid="line-count">
            {rows.length === LIMIT ? `the newest ${LIMIT} lines` : `${rows.length} line${rows.length === 1 ? "" : "s"}`}
          </p>
          <table class="log-lines" data-testid="log-lines">
            <tbody>
              {rows.map((r) => (
                <tr data-testid="log-row" class={`lvl-${r.labels.level ?? "unknown"}`}>
                  <td class="when">{dateTime(Number(r.ns / 1000000n))}</td>
                  <td class="level">{r.labels.level ?? ""}</td>
                  <td class="service">{r.labels.service_name ?? ""}</td>
                  <td class="line">{r.line}</td>
                  <td class="trace">
                    {r.labels.trace_id && (
                      <Link href={`/trace/${r.labels.trace_id}`} data-testid="log-trace">
                        trace ›
                      </Link>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
