/** Two traces compared at /compare/<a>/<b> (and /compare/ to pick them): inputs for A and B that
 * the URL follows, the summary, and the merged span tree as a graph or an indented table. */

import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, fetchTrace } from "../api";
import { navigate } from "../App";
import { DiffNodeSpans } from "../components/DiffNodeSpans";
import { TraceDiffGraph } from "../components/TraceDiffGraph";
import { TraceDiffSummary } from "../components/TraceDiffSummary";
import { TraceDiffTree } from "../components/TraceDiffTree";
import { Trace, parseTrace } from "../model/trace";
import { changedPaths, compareUrl, diffTraces, traceIdOf } from "../model/traceDiff";
import "../components/compare.css";

/** More paths than this are shown as the table (a graph that big is no help, and slow to lay out). */
const GRAPH_LIMIT = 300;
const THRESHOLDS: [string, number][] = [
  ["any change", 0],
  ["≥ 5%", 0.05],
  ["≥ 10%", 0.1],
  ["≥ 25%", 0.25],
  ["≥ 50%", 0.5],
];

type Loaded = { id: string; trace: Trace | null; error: string | null };

/** The trace ``id`` (none while it loads, or for no id) and why it could not be had. */
function useTrace(id: string | undefined): Loaded {
  const [state, setState] = useState<Loaded>({ id: "", trace: null, error: null });
  useEffect(() => {
    if (!id) return;
    let current = true;
    setState({ id, trace: null, error: null });
    fetchTrace(id)
      .then((doc) => current && setState({ id, trace: parseTrace(doc), error: null }))
      .catch((e) => current && setState({ id, trace: null, error: e instanceof ApiError ? e.message : String(e) }));
    return () => {
      current = false;
    };
  }, [id]);
  return id && state.id === id ? state : { id: id ?? "", trace: null, error: null };
}

function TraceIdInputs({ a, b }: { a?: string; b?: string }) {
  const [textA, setTextA] = useState(a ?? "");
  const [textB, setTextB] = useState(b ?? "");
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => setTextA(a ?? ""), [a]);
  useEffect(() => setTextB(b ?? ""), [b]);

  function go(ta = textA, tb = textB) {
    const ida = ta.trim() ? traceIdOf(ta) : null;
    const idb = tb.trim() ? traceIdOf(tb) : null;
    const bad = [ta.trim() && !ida ? "A" : "", tb.trim() && !idb ? "B" : ""].filter(Boolean);
    if (bad.length) {
      setProblem(`${bad.join(" and ")}: a trace id is up to 32 hex digits (or a link to a trace)`);
      return;
    }
    setProblem(null);
    const url = compareUrl(ida, idb);
    if (url !== location.pathname + location.search) navigate(url);
  }

  const input = (side: "a" | "b", value: string, set: (v: string) => void) => (
    <label class={`trace-input trace-input-${side}`}>
      <b class={`side-label side-${side}`}>{side.toUpperCase()}</b>
      <input
        data-testid={`compare-${side}`}
        value={value}
        placeholder={`trace ${side.toUpperCase()}: id or link`}
        spellcheck={false}
        autocomplete="off"
        onInput={(e) => set((e.target as HTMLInputElement).value)}
      />
    </label>
  );
  return (
    <form
      class="compare-inputs"
      onSubmit={(e) => {
        e.preventDefault();
        go();
      }}
    >
      {input("a", textA, setTextA)}
      <button
        type="button"
        class="swap"
        title="Swap A and B"
        data-testid="compare-swap"
        onClick={() => {
          setTextA(textB);
          setTextB(textA);
          go(textB, textA);
        }}
      >
        ⇄
      </button>
      {input("b", textB, setTextB)}
      <button type="submit" class="primary" data-testid="compare-submit">
        Compare
      </button>
      {problem && (
        <p class="error" data-testid="compare-input-error">
          {problem}
        </p>
      )}
    </form>
  );
}

function TraceComparison({ a, b }: { a: Trace; b: Trace }) {
  const [threshold, setThreshold] = useState(0.1);
  const [onlyChanges, setOnlyChanges] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const diff = useMemo(() => diffTraces(a, b, { ratio: threshold }), [a, b, threshold]);
  const [view, setView] = useState<"graph" | "tree">(diff.nodes.length > GRAPH_LIMIT ? "tree" : "graph");
  const nodes = useMemo(() => (onlyChanges ? changedPaths(diff.nodes) : diff.nodes), [diff, onlyChanges]);
  const tooBig = nodes.length > GRAPH_LIMIT;
  const shown = tooBig ? "tree" : view;
  const node = selected ? diff.byKey.get(selected) : undefined;

  return (
    <>
      <TraceDiffSummary a={a} b={b} summary={diff.summary} />
      <div class="compare-tools">
        <div class="view-switch" role="group">
          <button class={shown === "graph" ? "on" : ""} data-testid="view-graph" disabled={tooBig} onClick={() => setView("graph")}>
            Graph
          </button>
          <button class={shown === "tree" ? "on" : ""} data-testid="view-tree" onClick={() => setView("tree")}>
            Tree
          </button>
        </div>
        <label>
          <input
            type="checkbox"
            data-testid="only-changes"
            checked={onlyChanges}
            onChange={(e) => setOnlyChanges((e.target as HTMLInputElement).checked)}
          />{" "}
          changes only
        </label>
        <label>
          slower / faster when B's mean moved{" "}
          <select data-testid="threshold" value={String(threshold)} onChange={(e) => setThreshold(Number((e.target as HTMLSelectElement).value))}>
            {THRESHOLDS.map(([label, value]) => (
              <option value={String(value)}>{label}</option>
            ))}
          </select>
        </label>
        <span class="legend">
          <span class="change-badge only-in-A">only in A</span>
          <span class="change-badge only-in-B">only in B</span>
          <span class="delta slower">slower in B</span>
          <span class="delta faster">faster in B</span>
        </span>
        {tooBig && <span class="muted">{nodes.length} paths: too many for the graph</span>}
      </div>
      <div class="compare-body">
        {nodes.length === 0 ? (
          <p class="muted" data-testid="no-changes">
            {diff.nodes.length ? "No differences." : "Both traces are empty."}
          </p>
        ) : shown === "graph" ? (
          <TraceDiffGraph nodes={nodes} selected={selected} onSelect={setSelected} />
        ) : (
          <TraceDiffTree nodes={nodes} selected={selected} onSelect={setSelected} />
        )}
        {node && <DiffNodeSpans node={node} a={a} b={b} onClose={() => setSelected(null)} />}
      </div>
    </>
  );
}

export function ComparePage({ a, b }: { a?: string; b?: string }) {
  const ta = useTrace(a);
  const tb = useTrace(b);
  const missing = !a || !b;
  return (
    <section class="compare" data-testid="compare">
      <header class="compare-head">
        <h1>Compare traces</h1>
        <TraceIdInputs a={a} b={b} />
      </header>
      {missing && (
        <p class="muted" data-testid="compare-hint">
          {a || b ? `Enter trace ${a ? "B" : "A"} to compare with.` : "Enter two trace ids: A, the baseline, and B, the trace to compare with it."}
        </p>
      )}
      {[ta, tb].map(
        (t, i) =>
          t.error && (
            <p class="error" data-testid={`compare-error-${i ? "b" : "a"}`}>
              Trace {i ? "B" : "A"} ({t.id}): {t.error}
            </p>
          ),
      )}
      {!missing && !ta.error && !tb.error && (!ta.trace || !tb.trace) && <p class="muted">Loading traces…</p>}
      {ta.trace && tb.trace && <TraceComparison key={`${ta.id} ${tb.id}`} a={ta.trace} b={tb.trace} />}
    </section>
  );
}
