/** What is different (/differences?q=<baseline TraceQL>&selection=<TraceQL filter>&range=<s>):
 * the attribute values over-represented in a selection of spans against the rest of a
 * baseline, editable here; the URL holds both, so the search can link to it. */

import { useState } from "preact/hooks";
import { DifferencesPanel } from "../components/DifferencesPanel";
import "../components/services.css";
import { rangeFromUrl } from "../serviceApi";
import { RangeSelect } from "./ServicesPage";

function readUrl(location: string) {
  const params = new URLSearchParams(location.split("?")[1] ?? "");
  return {
    q: params.get("q") ?? "{ }",
    selection: params.get("selection") ?? "{ status = error }",
    range: rangeFromUrl(location),
  };
}

export function DifferencesPage({ location }: { location: string }) {
  const initial = readUrl(location);
  const [shown, setShown] = useState(initial);
  const [q, setQ] = useState(initial.q);
  const [selection, setSelection] = useState(initial.selection);
  const [range, setRange] = useState(initial.range);

  function run() {
    const next = { q: q.trim() || "{ }", selection: selection.trim() || "{ }", range };
    history.replaceState(null, "", `/differences?${new URLSearchParams({ ...next, range: String(range) })}`);
    setShown(next);
  }

  return (
    <section class="differences">
      <div class="svc-head">
        <h1>What is different</h1>
      </div>
      <form
        class="diff-form"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <label for="diff-baseline">Baseline</label>
        <input id="diff-baseline" data-testid="baseline-input" value={q} spellcheck={false} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        <label for="diff-selection">Selection</label>
        <input
          id="diff-selection"
          data-testid="selection-input"
          value={selection}
          spellcheck={false}
          onInput={(e) => setSelection((e.target as HTMLInputElement).value)}
        />
        <div class="actions">
          <RangeSelect range={range} onChange={setRange} />
          <button class="primary" type="submit" data-testid="compare">
            Compare
          </button>
        </div>
      </form>
      <p class="svc-note" style={{ marginBottom: "8px" }}>
        The baseline is a TraceQL spanset; the selection, a filter picking some of its spans. Listed: the attribute values
        more frequent among the selected spans than among the baseline's other spans, biggest difference first. Click one for
        its traces.
      </p>
      <DifferencesPanel
        key={`${shown.q}\u0000${shown.selection}\u0000${shown.range}`}
        selections={[{ label: "Selection", baseline: shown.q, selection: shown.selection, baselineName: "baseline's spans" }]}
        range={shown.range}
      />
    </section>
  );
}
