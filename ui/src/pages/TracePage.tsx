/** One trace: a summary header, the waterfall, and the selected span's details. */

import { useEffect, useState } from "preact/hooks";
import { ApiError, fetchTrace } from "../api";
import { SpanDetails } from "../components/SpanDetails";
import { Waterfall } from "../components/Waterfall";
import { dateTime, duration } from "../format";
import { Span, Trace, parseTrace } from "../model/trace";

export function TracePage({ id }: { id: string }) {
  const [trace, setTrace] = useState<Trace | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<Span | null>(null);

  useEffect(() => {
    setTrace(null);
    setError(null);
    fetchTrace(id)
      .then((doc) => setTrace(parseTrace(doc)))
      .catch((e) => setError(e instanceof ApiError ? e.message : String(e)));
  }, [id]);

  if (error) return <p class="error" data-testid="trace-error">{error}</p>;
  if (!trace) return <p class="muted">Loading trace {id}…</p>;
  const root = trace.roots[0];
  const errors = trace.spans.filter((s) => s.error).length;
  const orphans = trace.spans.filter((s) => s.orphan).length;
  return (
    <section class="trace" data-testid="trace">
      <header class="trace-head">
        <h1>
          <span class="service">{root?.service}</span> <span class="op">{root?.name}</span>
        </h1>
        <dl class="facts">
          <dt>Trace</dt>
          <dd class="trace-id">{trace.traceId}</dd>
          <dt>Start</dt>
          <dd>{dateTime(trace.start)}</dd>
          <dt>Duration</dt>
          <dd data-testid="trace-duration">{duration(trace.end - trace.start)}</dd>
          <dt>Spans</dt>
          <dd data-testid="span-count">{trace.spans.length}</dd>
          <dt>Services</dt>
          <dd>{trace.services.length}</dd>
          {errors > 0 && (
            <>
              <dt>Errors</dt>
              <dd class="error-count">{errors}</dd>
            </>
          )}
          {orphans > 0 && (
            <>
              <dt>Missing parents</dt>
              <dd title="spans whose parent was never received head subtrees of their own">{orphans}</dd>
            </>
          )}
        </dl>
      </header>
      <div class="trace-body">
        <Waterfall trace={trace} selected={selected} onSelect={setSelected} />
        {selected && <SpanDetails span={selected} trace={trace} onClose={() => setSelected(null)} />}
      </div>
    </section>
  );
}
