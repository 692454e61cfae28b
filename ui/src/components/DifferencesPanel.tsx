/** What is different about a selection of spans: the attribute values over-represented in it
 * against the rest of a baseline (TraceQL compare()), ranked, each with its share of the
 * selected spans and of the baseline's, and a click away from the matching traces. */

import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../api";
import { navigate } from "../App";
import { Ranking, attributeCondition, attributesIn, combineFilters, compareQuery, rankDifferences } from "../model/differences";
import { formatPercent, searchUrl } from "../model/serviceGraph";
import { queryInstant, windowOf } from "../serviceApi";
import "./services.css";

export interface Selection {
  label: string; // the tab's
  baseline: string; // a TraceQL spanset: the spans compared
  selection: string; // a TraceQL filter picking some of them
  baselineName: string; // how the baseline is called in sentences ("spans of cart")
}

function Share({ kind, share, count, total }: { kind: string; share: number; count: number; total: number }) {
  return (
    <div class={`share ${kind}`} title={`${count} of ${total} ${kind === "selection" ? "selected" : "baseline"} spans`}>
      <span class="track">
        <span style={{ width: `${Math.min(100, share * 100)}%` }} />
      </span>
      <span class="pct">{formatPercent(share)}</span>
      <span class="muted" style={{ fontSize: "12px", minWidth: "64px" }}>
        {count} of {total}
      </span>
    </div>
  );
}

/** ``initial``: the selection shown first. */
export function DifferencesPanel({ selections, range, initial = 0 }: { selections: Selection[]; range: number; initial?: number }) {
  const [active, setActive] = useState(initial);
  const [ranking, setRanking] = useState<Ranking | null>(null);
  const [error, setError] = useState<string | null>(null);
  const chosen = selections[Math.min(active, selections.length - 1)];

  useEffect(() => {
    if (!chosen) return;
    let live = true;
    setRanking(null);
    setError(null);
    const { start, end } = windowOf(range);
    queryInstant(compareQuery(chosen.baseline, chosen.selection), start, end)
      .then((series) => {
        if (!live) return;
        const attributes = [...new Set(series.flatMap((s) => s.labels.map((l) => l.key)))];
        setRanking(rankDifferences(series, attributesIn(chosen.selection, attributes)));
      })
      .catch((e) => live && setError(e instanceof ApiError ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [chosen?.baseline, chosen?.selection, range]);

  if (!chosen) return null;
  return (
    <div class="diff-panel" data-testid="differences">
      {selections.length > 1 && (
        <div class="diff-tabs" role="tablist">
          {selections.map((s, i) => (
            <button role="tab" aria-selected={i === active} class={i === active ? "active" : undefined} data-testid="difference-tab" onClick={() => setActive(i)}>
              {s.label}
            </button>
          ))}
        </div>
      )}
      <p class="diff-what">
        Selection: <code>{chosen.selection}</code> among the {chosen.baselineName} (<code>{chosen.baseline}</code>)
        {ranking && (
          <>
            {" "}
            — <b data-testid="selection-spans">{ranking.selectionSpans}</b> selected spans against the other{" "}
            <b data-testid="baseline-spans">{ranking.baselineSpans}</b>.
          </>
        )}
      </p>
      {error && (
        <p class="error" data-testid="differences-error">
          {error}
        </p>
      )}
      {!ranking && !error && <p class="muted">Comparing…</p>}
      {ranking && ranking.selectionSpans === 0 && <p class="muted">No spans match the selection in this range.</p>}
      {ranking && ranking.selectionSpans > 0 && ranking.differences.length === 0 && (
        <p class="muted">No attribute value is more frequent in the selection than in the baseline.</p>
      )}
      {ranking && ranking.differences.length > 0 && (
        <table class="svc-table" data-testid="differences-table">
          <thead>
            <tr>
              <th>Attribute</th>
              <th>Value</th>
              <th>Share of selected spans</th>
              <th>Share of baseline spans</th>
              <th class="num">Difference</th>
            </tr>
          </thead>
          <tbody>
            {ranking.differences.map((d) => {
              const q = combineFilters([chosen.baseline, chosen.selection], [attributeCondition(d.attribute, d.value)]);
              return (
                <tr data-testid="difference" data-attribute={d.attribute} data-value={String(d.value)} title={`Traces: ${q}`} onClick={() => navigate(searchUrl(q, range))}>
                  <td class="diff-attr">{d.attribute}</td>
                  <td class="diff-value">{String(d.value)}</td>
                  <td>
                    <Share kind="selection" share={d.selectionShare} count={d.selection} total={ranking.selectionSpans} />
                  </td>
                  <td>
                    <Share kind="baseline" share={d.baselineShare} count={d.baseline} total={ranking.baselineSpans} />
                  </td>
                  <td class="num">+{Math.round((d.selectionShare - d.baselineShare) * 100)} pts</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
