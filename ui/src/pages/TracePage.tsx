/** One trace at /trace/<id>: a summary header (copy id, download the OTLP JSON), the views as
 * tabs (?view= timeline, flame, table, stats, graph, logs), search within the trace, and the
 * selected span's details. Owns what the views share: the folded subtrees, the selected span
 * and whether its details are open, the search and its current match. */

import { useEffect, useMemo, useState } from "preact/hooks";
import { navigate } from "../App";
import { ApiError, LogLine, fetchTrace, fetchTraceLogs } from "../api";
import { FlameGraph } from "../components/FlameGraph";
import { CopyButton, SpanDetails } from "../components/SpanDetails";
import { SpanTable } from "../components/SpanTable";
import { TraceGraph } from "../components/TraceGraph";
import { TraceLogs } from "../components/TraceLogs";
import { TraceSearch } from "../components/TraceSearch";
import { TraceStatistics } from "../components/TraceStatistics";
import { Waterfall } from "../components/Waterfall";
import { pinServiceColors, serviceColor } from "../components/colors";
import "../components/trace.css";
import { dateTime, duration } from "../format";
import { criticalPath, sectionsBySpan } from "../model/criticalPath";
import { Span, Trace, ancestors, parseTrace, visibleSpans } from "../model/trace";
import { searchSpans } from "../model/traceSearch";

const VIEWS = [
  ["timeline", "Timeline"],
  ["flame", "Flame graph"],
  ["table", "Span table"],
  ["stats", "Statistics"],
  ["graph", "Graph"],
  ["logs", "Logs"],
] as const;
type View = (typeof VIEWS)[number][0];

function currentView(): View {
  const v = new URLSearchParams(window.location.search).get("view");
  return VIEWS.find(([key]) => key === v)?.[0] ?? "timeline";
}

function download(doc: unknown, traceId: string) {
  const blob = new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `trace-${traceId}.json`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** The trace's log lines by span, for the marks on the waterfall's rows. */
function logMarksOf(lines: LogLine[] | null | undefined): Map<string, { time: number; severity: number }[]> {
  const out = new Map<string, { time: number; severity: number }[]>();
  for (const l of lines ?? []) {
    if (!l.spanId) continue;
    const mark = { time: Number(BigInt(l.timeUnixNano) / 1000n) / 1000, severity: l.severityNumber };
    out.set(l.spanId, [...(out.get(l.spanId) ?? []), mark]);
  }
  return out;
}

export function TracePage({ id }: { id: string }) {
  const [loaded, setLoaded] = useState<{ doc: unknown; trace: Trace } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [view, setView] = useState<View>(currentView);
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(new Set());
  const [cursor, setCursor] = useState<Span | null>(null);
  const [open, setOpen] = useState(false);
  const [query, setQuery] = useState("");
  const [matchAt, setMatchAt] = useState(-1);
  const [showCritical, setShowCritical] = useState(true);
  // undefined: loading; null: the server keeps no logs
  const [logLines, setLogLines] = useState<LogLine[] | null | undefined>(undefined);
  const [logError, setLogError] = useState<string | null>(null);
  const logMarks = useMemo(() => logMarksOf(logLines), [logLines]);

  useEffect(() => {
    const update = () => setView(currentView());
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);

  // Escape closes the details wherever the focus is (but a search box keeps it for itself)
  useEffect(() => {
    const close = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !(e.target instanceof HTMLInputElement)) setOpen(false);
    };
    addEventListener("keydown", close);
    return () => removeEventListener("keydown", close);
  }, []);

  useEffect(() => {
    setLoaded(null);
    setError(null);
    setCollapsed(new Set());
    setCursor(null);
    setOpen(false);
    setQuery("");
    setMatchAt(-1);
    let live = true;
    fetchTrace(id)
      .then((doc) => {
        if (!live) return;
        const trace = parseTrace(doc);
        pinServiceColors(trace.services);
        setLoaded({ doc, trace });
      })
      .catch((e) => live && setError(e instanceof ApiError ? e.message : String(e)));
    setLogLines(undefined);
    setLogError(null);
    fetchTraceLogs(id)
      .then((lines) => live && setLogLines(lines))
      .catch((e) => live && setLogError(e instanceof ApiError ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [id]);

  const trace = loaded?.trace ?? null;
  const rows = useMemo(() => (trace ? visibleSpans(trace, collapsed) : []), [trace, collapsed]);
  const critical = useMemo(() => (trace ? sectionsBySpan(criticalPath(trace)) : new Map()), [trace]);
  const matches = useMemo(() => (trace ? searchSpans(trace, query) : []), [trace, query]);
  const matchSet = useMemo(() => new Set(matches), [matches]);

  if (error) return <p class="error" data-testid="trace-error">{error}</p>;
  if (!trace || !loaded) return <p class="muted">Loading trace {id}…</p>;

  /** Select a span, unfolding whatever hides it. */
  function reveal(span: Span) {
    const hiding = ancestors(span).filter((a) => collapsed.has(a.spanId));
    if (hiding.length) {
      const next = new Set(collapsed);
      for (const a of hiding) next.delete(a.spanId);
      setCollapsed(next);
    }
    setCursor(span);
  }

  function toggle(span: Span) {
    const next = new Set(collapsed);
    if (next.has(span.spanId)) next.delete(span.spanId);
    else next.add(span.spanId);
    setCollapsed(next);
  }

  function onQuery(q: string) {
    setQuery(q);
    const found = trace ? searchSpans(trace, q) : [];
    setMatchAt(found.length ? 0 : -1);
    if (found.length) reveal(found[0]);
  }

  function step(delta: 1 | -1) {
    if (!matches.length) return;
    const i = (matchAt + delta + matches.length) % matches.length;
    setMatchAt(i);
    reveal(matches[i]);
  }

  function select(span: Span) {
    reveal(span);
    setOpen(true);
  }

  function switchView(v: View) {
    const params = new URLSearchParams(window.location.search);
    if (v === "timeline") params.delete("view");
    else params.set("view", v);
    const qs = params.toString();
    navigate(`/trace/${id}${qs ? `?${qs}` : ""}`);
  }

  const roots = trace.spans.filter((s) => !s.parentId);
  const root = roots[0] ?? trace.roots[0];
  const errors = trace.spans.filter((s) => s.error).length;
  const orphans = trace.spans.filter((s) => s.orphan).length;
  const depth = trace.spans.reduce((m, s) => Math.max(m, s.depth + 1), 0);
  const current = matchAt >= 0 ? matches[matchAt] ?? null : null;
  const details = open && cursor && view !== "stats" && view !== "graph";

  return (
    <section class="trace" data-testid="trace">
      <header class="trace-head">
        <div class="trace-title">
          <h1>
            <span class="service">{root?.service}</span> <span class="op">{root?.name}</span>
            {roots.length === 0 && (
              <span class="badge orphan" data-testid="no-root" title="every span names a parent: the root span was never received">
                no root span
              </span>
            )}
          </h1>
          <div class="trace-actions">
            <CopyButton text={trace.traceId} label="Copy trace ID" testid="copy-trace-id" />
            <button class="small" data-testid="download-trace" onClick={() => download(loaded.doc, trace.traceId)}>
              Download JSON
            </button>
          </div>
        </div>
        <dl class="facts">
          <dt>Trace</dt>
          <dd class="trace-id">{trace.traceId}</dd>
          <dt>Start</dt>
          <dd>{dateTime(trace.start)}</dd>
          <dt>Duration</dt>
          <dd data-testid="trace-duration">{duration(trace.end - trace.start)}</dd>
          <dt>Spans</dt>
          <dd data-testid="span-count">{trace.spans.length}</dd>
          <dt>Depth</dt>
          <dd>{depth}</dd>
          <dt>Services</dt>
          <dd data-testid="service-count">{trace.services.length}</dd>
          {errors > 0 && (
            <>
              <dt>Errors</dt>
              <dd class="error-count" data-testid="error-count">
                {errors}
              </dd>
            </>
          )}
          {orphans > 0 && (
            <>
              <dt>Missing parents</dt>
              <dd class="orphan-count" data-testid="orphan-count" title="spans whose parent was never received head subtrees of their own">
                {orphans}
              </dd>
            </>
          )}
        </dl>
        <div class="service-chips" aria-label="services">
          {trace.services.slice(0, 24).map((s) => (
            <span class="chip">
              <span class="swatch" style={{ background: serviceColor(s) }} />
              {s}
            </span>
          ))}
          {trace.services.length > 24 && <span class="muted">+{trace.services.length - 24} more</span>}
        </div>
      </header>
      <div class="trace-toolbar">
        <nav class="trace-tabs" role="tablist">
          {VIEWS.map(([key, label]) => (
            <button role="tab" aria-selected={view === key} class={view === key ? "on" : ""} data-testid={`tab-${key}`} onClick={() => switchView(key)}>
              {label}
            </button>
          ))}
        </nav>
        {view === "timeline" && (
          <label class="toggle-label" title="the spans on the longest blocking chain, as Jaeger computes it">
            <input type="checkbox" data-testid="critical-toggle" checked={showCritical} onChange={() => setShowCritical(!showCritical)} />
            <span class="cp-sample" /> Critical path
          </label>
        )}
        <TraceSearch query={query} count={matches.length} current={matchAt} onQuery={onQuery} onStep={step} />
      </div>
      <div class="trace-body">
        <div class="trace-view" data-testid={`view-${view}`}>
          {view === "timeline" && (
            <Waterfall
              trace={trace}
              rows={rows}
              collapsed={collapsed}
              onToggle={toggle}
              onFoldAll={(fold) => setCollapsed(fold ? new Set(trace.roots.filter((s) => s.children.length).map((s) => s.spanId)) : new Set())}
              cursor={cursor}
              onCursor={reveal}
              onOpen={() => setOpen(true)}
              onClose={() => setOpen(false)}
              critical={showCritical ? critical : null}
              matches={matchSet}
              currentMatch={current}
              logs={logMarks}
            />
          )}
          {view === "flame" && <FlameGraph trace={trace} selected={cursor} matches={matchSet} onSelect={select} />}
          {view === "table" && <SpanTable trace={trace} selected={cursor} matches={matchSet} onSelect={select} />}
          {view === "stats" && <TraceStatistics trace={trace} />}
          {view === "graph" && <TraceGraph trace={trace} />}
          {view === "logs" && <TraceLogs trace={trace} lines={logLines} error={logError} onSelect={select} />}
        </div>
        {details && <SpanDetails span={cursor} trace={trace} onClose={() => setOpen(false)} onSelect={select} />}
      </div>
    </section>
  );
}
