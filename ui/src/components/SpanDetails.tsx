/** A span's details: timing, status, attributes by span and resource, events. */

import { duration } from "../format";
import { Attr, Span, Trace } from "../model/trace";

function Attrs({ title, attrs }: { title: string; attrs: Attr[] }) {
  if (!attrs.length) return null;
  return (
    <div class="attrs">
      <h3>{title}</h3>
      <table>
        {attrs.map((a) => (
          <tr>
            <th>{a.key}</th>
            <td>{typeof a.value === "string" ? a.value : JSON.stringify(a.value)}</td>
          </tr>
        ))}
      </table>
    </div>
  );
}

export function SpanDetails({ span, trace, onClose }: { span: Span; trace: Trace; onClose: () => void }) {
  return (
    <aside class="details" data-testid="span-details">
      <header>
        <h2>
          <span class="service">{span.service}</span> <span class="op">{span.name}</span>
        </h2>
        <button onClick={onClose} aria-label="close">
          ×
        </button>
      </header>
      <dl class="facts">
        <dt>Span</dt>
        <dd class="trace-id">{span.spanId}</dd>
        <dt>Starts at</dt>
        <dd>+{duration(span.start - trace.start)}</dd>
        <dt>Duration</dt>
        <dd>{duration(span.duration)}</dd>
        <dt>Status</dt>
        <dd class={span.error ? "error-count" : ""}>{span.error ? `error ${span.statusMessage}` : "ok"}</dd>
      </dl>
      <Attrs title="Span attributes" attrs={span.attributes} />
      <Attrs title="Resource" attrs={span.resource} />
      {span.events.length > 0 && (
        <div class="attrs">
          <h3>Events</h3>
          {span.events.map((e) => (
            <div class="event-detail">
              <strong>{e.name}</strong> <span class="muted">+{duration(e.time - trace.start)}</span>
              <Attrs title="" attrs={e.attributes} />
            </div>
          ))}
        </div>
      )}
    </aside>
  );
}
