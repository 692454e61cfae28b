/** Search: a TraceQL editor, a time range, and the traces found, newest first. The URL holds
 * the query and the range, so a search can be shared and reloaded. */

import { useEffect, useState } from "preact/hooks";
import { ApiError, SearchHit, search } from "../api";
import { navigate } from "../App";
import { QueryEditor } from "../components/QueryEditor";
import { ResultsTable } from "../components/ResultsTable";

const RANGES: [string, number][] = [
  ["Last 15 minutes", 900],
  ["Last hour", 3600],
  ["Last 6 hours", 6 * 3600],
  ["Last 24 hours", 86400],
  ["Last 7 days", 7 * 86400],
];

function readUrl(location: string) {
  const params = new URLSearchParams(location.split("?")[1] ?? "");
  return {
    q: params.get("q") ?? "{ }",
    range: Number(params.get("range") ?? 3600),
    limit: Number(params.get("limit") ?? 20),
  };
}

export function SearchPage({ location }: { location: string }) {
  const initial = readUrl(location);
  const [query, setQuery] = useState(initial.q);
  const [range, setRange] = useState(initial.range);
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(q = query, r = range, record = true) {
    if (record) {
      const params = new URLSearchParams({ q, range: String(r) });
      history.replaceState(null, "", `/search?${params}`);
    }
    setBusy(true);
    setError(null);
    try {
      const end = Math.ceil(Date.now() / 1000) + 1;
      setHits(await search(q, initial.limit, end - r, end));
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      setHits(null);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    void run(initial.q, initial.range, false);
  }, []);

  return (
    <section class="search">
      <div class="search-bar">
        <QueryEditor initial={initial.q} error={error} onChange={setQuery} onRun={() => run()} />
        <select
          data-testid="range"
          value={String(range)}
          onChange={(e) => setRange(Number((e.target as HTMLSelectElement).value))}
        >
          {RANGES.map(([label, seconds]) => (
            <option value={String(seconds)}>{label}</option>
          ))}
        </select>
        <button class="primary" data-testid="run" disabled={busy} onClick={() => run()}>
          {busy ? "Searching…" : "Run query"}
        </button>
      </div>
      {error && (
        <p class="error" data-testid="search-error">
          {error}
        </p>
      )}
      {hits && <ResultsTable hits={hits} onOpen={(id) => navigate(`/trace/${id}`)} />}
    </section>
  );
}
