/** The top of a comparison: trace A and trace B side by side (root, start, duration, spans) and
 * how many paths were added, removed, changed or kept. */

import { Link } from "../App";
import { dateTime, duration } from "../format";
import { Trace } from "../model/trace";
import { DiffSummary, signedDuration, signedPercent } from "../model/traceDiff";
import "./compare.css";

function TraceCard({ label, trace, spans, took }: { label: "A" | "B"; trace: Trace; spans: number; took: number }) {
  const root = trace.roots[0];
  const side = label.toLowerCase();
  return (
    <div class={`trace-card trace-card-${side}`} data-testid={`trace-card-${side}`}>
      <div class="trace-card-head">
        <b class={`side-label side-${side}`}>{label}</b>
        <span class="service">{root?.service ?? "—"}</span> <span class="op">{root?.name ?? ""}</span>
      </div>
      <dl class="facts">
        <dt>Trace</dt>
        <dd>
          <Link class="trace-id" href={`/trace/${trace.traceId}`}>
            {trace.traceId}
          </Link>
        </dd>
        <dt>Start</dt>
        <dd>{trace.spans.length ? dateTime(trace.start) : "—"}</dd>
        <dt>Duration</dt>
        <dd data-testid={`duration-${side}`}>{duration(took)}</dd>
        <dt>Spans</dt>
        <dd data-testid={`spans-${side}`}>{spans}</dd>
      </dl>
    </div>
  );
}

function Change({ a, b, format }: { a: number; b: number; format: (n: number) => string }) {
  if (a === b) return <span class="muted">no change</span>;
  const ratio = a ? ` (${signedPercent((b - a) / a)})` : "";
  return (
    <span class={b > a ? "grew" : "shrank"}>
      {format(b - a)}
      {ratio}
    </span>
  );
}

export function TraceDiffSummary({ a, b, summary }: { a: Trace; b: Trace; summary: DiffSummary }) {
  const s = summary;
  const count = (n: number) => (n > 0 ? `+${n}` : `−${-n}`);
  return (
    <section class="diff-summary" data-testid="diff-summary">
      <TraceCard label="A" trace={a} spans={s.spansA} took={s.durationA} />
      <div class="diff-totals">
        <dl>
          <dt>Spans in B</dt>
          <dd data-testid="spans-change">
            <Change a={s.spansA} b={s.spansB} format={count} />
          </dd>
          <dt>Duration of B</dt>
          <dd data-testid="duration-change">
            <Change a={s.durationA} b={s.durationB} format={signedDuration} />
          </dd>
        </dl>
        <ul class="node-counts" data-testid="node-counts">
          <li class="only-b">
            <b data-testid="count-added">{s.added}</b> only in B
          </li>
          <li class="only-a">
            <b data-testid="count-removed">{s.removed}</b> only in A
          </li>
          <li class="changed">
            <b data-testid="count-changed">{s.changed}</b> changed
            {s.changed > 0 && (
              <div class="muted breakdown" data-testid="count-breakdown">
                {[
                  s.slower && `${s.slower} slower`,
                  s.faster && `${s.faster} faster`,
                  s.moreA && `${s.moreA} more in A`,
                  s.moreB && `${s.moreB} more in B`,
                ]
                  .filter(Boolean)
                  .join(", ")}
              </div>
            )}
          </li>
          <li class="same">
            <b data-testid="count-unchanged">{s.unchanged}</b> unchanged
          </li>
        </ul>
      </div>
      <TraceCard label="B" trace={b} spans={s.spansB} took={s.durationB} />
    </section>
  );
}
