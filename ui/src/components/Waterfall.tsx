/** The span tree against time: one row per span (collapsible subtrees), a bar at its offset
 * and length, coloured by service, error spans marked. */

import { useMemo, useState } from "preact/hooks";
import { duration } from "../format";
import { Span, Trace } from "../model/trace";
import { serviceColor } from "./colors";

const KINDS = ["", "internal", "server", "client", "producer", "consumer"];

interface Props {
  trace: Trace;
  selected: Span | null;
  onSelect: (span: Span) => void;
}

export function Waterfall({ trace, selected, onSelect }: Props) {
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const total = Math.max(trace.end - trace.start, 1e-6);
  const rows = useMemo(() => {
    const out: Span[] = [];
    const hidden = new Set<string>();
    for (const s of trace.spans) {
      if (s.parentId && hidden.has(s.parentId)) {
        hidden.add(s.spanId);
        continue;
      }
      out.push(s);
      if (collapsed.has(s.spanId)) hidden.add(s.spanId);
    }
    return out;
  }, [trace, collapsed]);

  function toggle(span: Span) {
    const next = new Set(collapsed);
    if (next.has(span.spanId)) next.delete(span.spanId);
    else next.add(span.spanId);
    setCollapsed(next);
  }

  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div class="waterfall" data-testid="waterfall">
      <div class="wf-row wf-ruler">
        <div class="wf-label">Service &amp; operation</div>
        <div class="wf-timeline">
          {ticks.map((f) => (
            <span class="tick" style={{ left: `${f * 100}%` }}>
              {duration(f * total)}
            </span>
          ))}
        </div>
      </div>
      {rows.map((s) => {
        const left = ((s.start - trace.start) / total) * 100;
        const width = Math.max((s.duration / total) * 100, 0.2);
        return (
          <div
            class={`wf-row${selected === s ? " selected" : ""}${s.error ? " failed" : ""}`}
            data-testid="span-row"
            data-span-id={s.spanId}
            onClick={() => onSelect(s)}
          >
            <div class="wf-label" style={{ paddingLeft: `${s.depth * 14 + 4}px` }}>
              {s.children.length > 0 ? (
                <button
                  class="toggle"
                  aria-label={collapsed.has(s.spanId) ? "expand" : "collapse"}
                  onClick={(e) => {
                    e.stopPropagation();
                    toggle(s);
                  }}
                >
                  {collapsed.has(s.spanId) ? "▸" : "▾"}
                </button>
              ) : (
                <span class="toggle-space" />
              )}
              <span class="swatch" style={{ background: serviceColor(s.service) }} />
              <span class="service">{s.service}</span> <span class="op">{s.name}</span>
              {s.error && <span class="badge error" title={s.statusMessage || "error"}>!</span>}
              {s.orphan && <span class="badge" title="its parent span was never received">orphan</span>}
              {KINDS[s.kind] && <span class="kind">{KINDS[s.kind]}</span>}
            </div>
            <div class="wf-timeline">
              <div
                class="bar"
                style={{ left: `${left}%`, width: `${width}%`, background: serviceColor(s.service) }}
              />
              {s.events.map((e) => (
                <span
                  class="event"
                  title={e.name}
                  style={{ left: `${((e.time - trace.start) / total) * 100}%` }}
                />
              ))}
              <span class="bar-label" style={{ left: `${Math.min(left + width, 92)}%` }}>
                {duration(s.duration)}
              </span>
            </div>
          </div>
        );
      })}
    </div>
  );
}
