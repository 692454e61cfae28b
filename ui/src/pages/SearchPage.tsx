/** Search: a TraceQL editor (or the builder writing into it), a time range, a duration-over-time
 * plot and the traces found, newest first, with "load more" paging back in time. The URL holds
 * the query and the range, so a search can be shared and reloaded. */

import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, SearchHit } from "../api";
import { Link, navigate } from "../App";
import { DurationScatter } from "../components/DurationScatter";
import { QueryBuilder } from "../components/QueryBuilder";
import { QueryEditor, Replacement } from "../components/QueryEditor";
import { ResultsTable } from "../components/ResultsTable";
import { TimeRangePicker } from "../components/TimeRangePicker";
import "../components/search.css";
import { BuilderState, EMPTY_BUILDER } from "../search/builder";
import { TraceCounts, search, traceCounts } from "../search/searchApi";
import { TimeRange, rangeFromParams, rangeToParams, resolveRange } from "../search/timeRange";

const DEFAULT_LIMIT = 20;

function readUrl(location: string) {
  const params = new URLSearchParams(location.split("?")[1] ?? "");
  const limit = Number(params.get("limit"));
  return {
    q: params.get("q") ?? "{ }",
    range: rangeFromParams(params),
    limit: Number.isInteger(limit) && limit > 0 && limit <= 1000 ? limit : DEFAULT_LIMIT,
  };
}

export function searchUrl(q: string, range: TimeRange, limit = DEFAULT_LIMIT): string {
  const params = new URLSearchParams({ q, ...rangeToParams(range) });
  if (limit !== DEFAULT_LIMIT) params.set("limit", String(limit));
  return `/search?${params}`;
}

/** The differences page for the errors among what ``q`` finds (its ranges are relative). */
function differencesUrl(q: string, range: TimeRange): string {
  const seconds = range.kind === "relative" ? range.seconds : range.end - range.start;
  return `/differences?${new URLSearchParams({ q, selection: "{ status = error }", range: String(seconds) })}`;
}

interface Window {
  start: number;
  end: number;
}

export function SearchPage({ location }: { location: string }) {
  const initial = readUrl(location);
  const query = useRef(initial.q);
  const [range, setRange] = useState<TimeRange>(initial.range);
  const [replacement, setReplacement] = useState<Replacement | undefined>(undefined);
  const [builder, setBuilder] = useState<BuilderState>(EMPTY_BUILDER);
  const [showBuilder, setShowBuilder] = useState(false);
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [counts, setCounts] = useState<Map<string, TraceCounts>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [paging, setPaging] = useState<"more" | "loading" | "end">("more");
  const [picked, setPicked] = useState<string[]>([]);
  // the query and window the shown results answer (load more pages on from them)
  const shown = useRef<{ q: string; window: Window } | null>(null);
  const generation = useRef(0);

  async function addCounts(found: SearchHit[], gen: number) {
    try {
      const more = await traceCounts(found);
      if (gen === generation.current) setCounts((old) => new Map([...old, ...more]));
    } catch {
      // counts are a nicety: the table says "…" where they are missing
    }
  }

  async function run(q = query.current, r = range, record = true) {
    const gen = ++generation.current;
    const url = searchUrl(q, r, initial.limit);
    if (record && url !== window.location.pathname + window.location.search) history.pushState(null, "", url);
    const win = resolveRange(r, Date.now() / 1000);
    setBusy(true);
    setError(null);
    try {
      const found = await search(q, initial.limit, win.start, win.end);
      if (gen !== generation.current) return;
      shown.current = { q, window: win };
      setHits(found);
      setPicked([]);
      setCounts(new Map());
      setPaging(found.length < initial.limit ? "end" : "more");
      void addCounts(found, gen);
    } catch (e) {
      if (gen !== generation.current) return;
      setError(e instanceof ApiError ? e.message : String(e));
      setHits(null);
    } finally {
      if (gen === generation.current) setBusy(false);
    }
  }

  async function loadMore() {
    const current = shown.current;
    if (!current || !hits?.length) return;
    const gen = generation.current;
    setPaging("loading");
    const seen = new Set(hits.map((h) => h.traceID));
    const oldestNs = hits.reduce((m, h) => (BigInt(h.startTimeUnixNano) < m ? BigInt(h.startTimeUnixNano) : m), BigInt(hits[0].startTimeUnixNano));
    // the API takes whole seconds: ask up to the end of the oldest trace's second, for a page
    // more than the traces already shown from that second (they come again and are left out)
    const end = Number((oldestNs + 999_999_999n) / 1_000_000_000n);
    const again = hits.filter((h) => BigInt(h.startTimeUnixNano) >= BigInt(end - 1) * 1_000_000_000n).length;
    try {
      const found = await search(current.q, initial.limit + again, current.window.start, end);
      if (gen !== generation.current) return;
      const fresh = found.filter((h) => !seen.has(h.traceID));
      setHits([...hits, ...fresh]);
      setPaging(found.length < initial.limit + again || !fresh.length ? "end" : "more");
      void addCounts(fresh, gen);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      setPaging("more");
    }
  }

  useEffect(() => {
    void run(initial.q, initial.range, false);
  }, []);

  const failed = new Set([...counts].filter(([, c]) => c.errors > 0).map(([id]) => id));
  return (
    <section class="search">
      <div class="search-bar">
        <QueryEditor
          initial={initial.q}
          replacement={replacement}
          error={error}
          onChange={(text) => (query.current = text)}
          onRun={() => run()}
        />
        <TimeRangePicker
          range={range}
          onChange={(r) => {
            setRange(r);
            void run(query.current, r);
          }}
        />
        <button class="primary" data-testid="run" disabled={busy} onClick={() => run()}>
          {busy ? "Searching…" : "Run query"}
        </button>
      </div>
      <div class="search-tools">
        <button data-testid="builder-toggle" aria-expanded={showBuilder} onClick={() => setShowBuilder(!showBuilder)}>
          {showBuilder ? "Hide builder" : "Builder"}
        </button>
        <span class="muted small">Ctrl+Enter runs the query · the URL holds it</span>
        <span class="spacer" />
        {picked.length === 2 ? (
          <Link class="button" data-testid="compare-picked" href={`/compare/${picked[0]}/${picked[1]}`}>
            Compare the 2 ticked traces
          </Link>
        ) : (
          <span class="muted small">tick two traces to compare them</span>
        )}
        <button data-testid="what-is-different" onClick={() => navigate(differencesUrl(query.current, range))}>
          What is different about errors?
        </button>
      </div>
      {showBuilder && (
        <QueryBuilder
          state={builder}
          onChange={(next, traceql) => {
            setBuilder(next);
            query.current = traceql;
            setReplacement({ text: traceql, seq: (replacement?.seq ?? 0) + 1 });
          }}
        />
      )}
      {error && (
        <p class="error" data-testid="search-error">
          {error}
        </p>
      )}
      {hits && hits.length > 0 && <DurationScatter hits={hits} failed={failed} onOpen={(id) => navigate(`/trace/${id}`)} />}
      {hits && (
        <ResultsTable
          hits={hits}
          counts={counts}
          picked={picked}
          onPick={(id, on) => setPicked(on ? [...picked, id].slice(-2) : picked.filter((p) => p !== id))}
        />
      )}
      {hits && hits.length > 0 && (
        <div class="paging">
          <span class="muted" data-testid="result-count">
            {hits.length} trace{hits.length === 1 ? "" : "s"}
          </span>
          {paging === "end" ? (
            <span class="muted" data-testid="no-more">
              No older traces in this range
            </span>
          ) : (
            <button data-testid="load-more" disabled={paging === "loading"} onClick={() => loadMore()}>
              {paging === "loading" ? "Loading…" : "Load older traces"}
            </button>
          )}
        </div>
      )}
    </section>
  );
}
