/** A span's details: ids (copyable), kind, timing, status and its message; attributes grouped
 * by span, resource and scope; events with their attributes; links that open the linked trace. */

import { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { Link } from "../App";
import { duration } from "../format";
import { Attr, SPAN_KINDS, Span, Trace, selfTime } from "../model/trace";
import { serviceColor } from "./colors";
import "./trace.css";

function show(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function Attrs({ attrs, testid }: { attrs: Attr[]; testid?: string }) {
  if (!attrs.length) return <p class="muted none">none</p>;
  return (
    <table data-testid={testid}>
      <tbody>
        {attrs.map((a) => (
          <tr>
            <th>{a.key}</th>
            <td>{show(a.value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Group({ title, testid, children }: { title: ComponentChildren; testid: string; children: ComponentChildren }) {
  return (
    <section class="attrs" data-testid={testid}>
      <h3>{title}</h3>
      {children}
    </section>
  );
}

/** A button that copies ``text`` to the clipboard and says so. */
export function CopyButton({ text, label, testid }: { text: string; label: string; testid: string }) {
  const [done, setDone] = useState<"copied" | "failed" | null>(null);
  return (
    <button
      class="small"
      data-testid={testid}
      title={`Copy ${text}`}
      onClick={(e) => {
        e.stopPropagation();
        navigator.clipboard.writeText(text).then(
          () => setDone("copied"),
          () => setDone("failed"),
        );
        setTimeout(() => setDone(null), 1500);
      }}
    >
      {done === "copied" ? "Copied" : done === "failed" ? "Copy failed" : label}
    </button>
  );
}

interface Props {
  span: Span;
  trace: Trace;
  onClose: () => void;
  onSelect: (span: Span) => void;
}

export function SpanDetails({ span, trace, onClose, onSelect }: Props) {
  const parent = span.parentId ? trace.byId.get(span.parentId) : undefined;
  const links = span.links ?? [];
  const scope = span.scope;
  return (
    <aside class="details" data-testid="span-details" aria-label="span details">
      <header>
        <h2>
          <span class="swatch" style={{ background: serviceColor(span.service) }} />
          <span>
            <span class="service">{span.service}</span> <span class="op">{span.name}</span>
          </span>
        </h2>
        <button class="small" onClick={onClose} aria-label="close" title="Close (Escape)">
          ×
        </button>
      </header>
      <dl class="kv">
        <dt>Span ID</dt>
        <dd>
          <code data-testid="detail-span-id">{span.spanId}</code> <CopyButton text={span.spanId} label="Copy" testid="copy-span-id" />
        </dd>
        <dt>Parent</dt>
        <dd>
          {parent ? (
            <button class="link-button" onClick={() => onSelect(parent)}>
              {parent.service} {parent.name}
            </button>
          ) : span.parentId ? (
            <span class="badge orphan">missing parent {span.parentId}</span>
          ) : (
            <span class="muted">none (root)</span>
          )}
        </dd>
        <dt>Kind</dt>
        <dd>{SPAN_KINDS[span.kind] ?? span.kind}</dd>
        <dt>Start</dt>
        <dd>+{duration(span.start - trace.start)}</dd>
        <dt>Duration</dt>
        <dd data-testid="detail-duration">{duration(span.duration)}</dd>
        <dt>Self time</dt>
        <dd>{duration(selfTime(span))}</dd>
        <dt>Status</dt>
        <dd data-testid="detail-status" class={span.error ? "error-count" : ""}>
          {span.error ? "error" : "ok"}
          {span.statusMessage && <span class="status-message">: {span.statusMessage}</span>}
        </dd>
      </dl>
      <Group title="Span attributes" testid="span-attributes">
        <Attrs attrs={span.attributes} />
      </Group>
      <Group title="Resource" testid="resource-attributes">
        <Attrs attrs={span.resource} />
      </Group>
      {scope && (
        <Group
          title={
            <>
              Scope <span class="scope-name">{scope.name || "(unnamed)"}{scope.version && ` ${scope.version}`}</span>
            </>
          }
          testid="scope-attributes"
        >
          {scope.attributes.length > 0 && <Attrs attrs={scope.attributes} />}
        </Group>
      )}
      {span.events.length > 0 && (
        <Group title={`Events (${span.events.length})`} testid="span-events">
          {span.events.map((e) => (
            <div class="event-detail">
              <div>
                <strong>{e.name}</strong> <span class="muted">+{duration(e.time - span.start)} into the span</span>
              </div>
              {e.attributes.length > 0 && <Attrs attrs={e.attributes} />}
            </div>
          ))}
        </Group>
      )}
      {links.length > 0 && (
        <Group title={`Links (${links.length})`} testid="span-links">
          {links.map((l) => (
            <div class="event-detail">
              <div>
                {l.traceId === trace.traceId && trace.byId.has(l.spanId) ? (
                  <button class="link-button" onClick={() => onSelect(trace.byId.get(l.spanId)!)}>
                    span {l.spanId} in this trace
                  </button>
                ) : (
                  <Link href={`/trace/${l.traceId}`} data-testid="link-trace">
                    trace {l.traceId}
                  </Link>
                )}
                {!(l.traceId === trace.traceId) && <span class="muted"> span {l.spanId}</span>}
              </div>
              {l.attributes.length > 0 && <Attrs attrs={l.attributes} />}
            </div>
          ))}
        </Group>
      )}
    </aside>
  );
}
