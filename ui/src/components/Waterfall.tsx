/** The timeline: the span tree against time, one row per visible span (collapsible subtrees,
 * rows virtualised so only those on screen are in the DOM), a time ruler, the minimap that
 * frames and moves the visible window, bars coloured by service with error, kind, event and
 * missing-parent marks, the critical path drawn over the bars, search matches highlighted, and
 * keyboard navigation (up/down select, left/right fold, Enter opens details, Escape closes). */

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { duration } from "../format";
import { CriticalSection } from "../model/criticalPath";
import { labelPlace, niceTicks } from "../model/timeAxis";
import { SPAN_KINDS, Span, Trace } from "../model/trace";
import { serviceColor } from "./colors";
import { Minimap } from "./Minimap";
import { useVirtualRows } from "./useVirtualRows";
import "./trace.css";

const ROW_H = 26;
const RULER_H = 26;

interface Props {
  trace: Trace;
  /** the spans shown, in tree order (collapsed subtrees left out) */
  rows: Span[];
  collapsed: ReadonlySet<string>;
  onToggle: (span: Span) => void;
  /** fold every root's subtree (true) or unfold everything (false) */
  onFoldAll: (fold: boolean) => void;
  cursor: Span | null;
  onCursor: (span: Span) => void;
  onOpen: (span: Span) => void;
  onClose: () => void;
  critical: Map<string, CriticalSection[]> | null;
  matches: ReadonlySet<Span>;
  currentMatch: Span | null;
  /** the trace's log lines by span id (time in unix ms, OTLP severity number) */
  logs?: ReadonlyMap<string, { time: number; severity: number }[]>;
}

export function Waterfall(props: Props) {
  const { trace, rows, collapsed, cursor, critical } = props;
  const [win, setWin] = useState<[number, number]>([trace.start, trace.end]);
  useEffect(() => setWin([trace.start, trace.end]), [trace]);
  const { scrollRef, virtualizer } = useVirtualRows(rows.length, ROW_H, RULER_H);
  const rowIndex = useMemo(() => new Map(rows.map((s, i) => [s, i])), [rows]);

  // the timeline column's width, for ticks and for placing duration labels
  const ruler = useRef<HTMLDivElement>(null);
  const [tlWidth, setTlWidth] = useState(600);
  useLayoutEffect(() => {
    const el = ruler.current!;
    const observer = new ResizeObserver(() => setTlWidth(el.clientWidth || 600));
    observer.observe(el);
    setTlWidth(el.clientWidth || 600);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const i = cursor ? rowIndex.get(cursor) : undefined;
    if (i !== undefined) virtualizer.scrollToIndex(i, { align: "auto" });
  }, [cursor, rowIndex]);

  const [w0, w1] = win;
  const span = Math.max(w1 - w0, 1e-6);
  const pct = (t: number) => ((t - w0) / span) * 100;
  const ticks = niceTicks(trace.start, w0, w1, Math.max(2, Math.floor(tlWidth / 110)));
  const zoomed = w0 > trace.start || w1 < trace.end;

  function keyDown(e: KeyboardEvent) {
    if (e.target instanceof HTMLInputElement || e.altKey || e.ctrlKey || e.metaKey) return;
    const i = cursor ? rowIndex.get(cursor) ?? -1 : -1;
    const go = (j: number) => rows.length && props.onCursor(rows[Math.min(Math.max(j, 0), rows.length - 1)]);
    const page = Math.max(1, Math.floor((scrollRef.current!.clientHeight - RULER_H) / ROW_H) - 1);
    switch (e.key) {
      case "ArrowDown":
        go(i + 1);
        break;
      case "ArrowUp":
        go(i < 0 ? 0 : i - 1);
        break;
      case "PageDown":
        go(i + page);
        break;
      case "PageUp":
        go(i - page);
        break;
      case "Home":
        go(0);
        break;
      case "End":
        go(rows.length - 1);
        break;
      case "ArrowLeft":
        if (!cursor) return;
        if (cursor.children.length && !collapsed.has(cursor.spanId)) props.onToggle(cursor);
        else if (cursor.parent) props.onCursor(cursor.parent);
        break;
      case "ArrowRight":
        if (!cursor || !cursor.children.length) return;
        if (collapsed.has(cursor.spanId)) props.onToggle(cursor);
        else props.onCursor(cursor.children[0]);
        break;
      case "Enter":
        if (cursor) props.onOpen(cursor);
        break;
      case "Escape":
        props.onClose();
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  // the ruler is sticky: at scrollTop k * ROW_H, row k is the first under it
  const offset = Math.max(virtualizer.scrollOffset ?? 0, 0);
  const viewH = scrollRef.current ? scrollRef.current.clientHeight - RULER_H : 0;
  return (
    <div class="waterfall" data-testid="waterfall">
      <div class="wf-overview">
        <Minimap
          rows={rows}
          start={trace.start}
          end={trace.end}
          window={win}
          firstRow={offset / ROW_H}
          rowsShown={viewH / ROW_H}
          onWindow={([a, b]) => setWin(b - a > 1e-6 ? [a, b] : [trace.start, trace.end])}
          onScrollRow={(row) => {
            scrollRef.current!.scrollTop = Math.max(row, 0) * ROW_H;
          }}
        />
        {zoomed && (
          <button class="link-button" data-testid="reset-zoom" onClick={() => setWin([trace.start, trace.end])}>
            Reset zoom
          </button>
        )}
      </div>
      <div class="wf-scroll" ref={scrollRef} tabIndex={0} data-testid="waterfall-rows" onKeyDown={keyDown}>
        <div class="wf-row wf-ruler" style={{ height: `${RULER_H}px` }}>
          <div class="wf-label">
            Service &amp; operation
            <span class="fold-buttons">
              <button class="link-button" data-testid="expand-all" title="Expand all" onClick={() => props.onFoldAll(false)}>
                ▾ all
              </button>
              <button class="link-button" data-testid="collapse-all" title="Collapse all" onClick={() => props.onFoldAll(true)}>
                ▸ all
              </button>
            </span>
          </div>
          <div class="wf-timeline" ref={ruler} data-testid="ruler">
            {ticks.map((t) => {
              const at = pct(trace.start + t);
              const align = at < 4 ? "start" : at > 96 ? "end" : "mid";
              return (
                <span class={`tick ${align}`} style={{ left: `${at}%` }}>
                  {duration(t)}
                </span>
              );
            })}
          </div>
        </div>
        <div class="wf-body" style={{ height: `${rows.length * ROW_H}px` }}>
          {virtualizer.getVirtualItems().map((item) => {
            const s = rows[item.index];
            return (
              <SpanRow
                key={s.spanId + item.index}
                span={s}
                top={item.start - RULER_H}
                props={props}
                pct={pct}
                ticks={ticks.map((t) => pct(trace.start + t))}
                tlWidth={tlWidth}
                sections={critical?.get(s.spanId)}
              />
            );
          })}
        </div>
      </div>
    </div>
  );
}

interface RowProps {
  span: Span;
  top: number;
  props: Props;
  pct: (t: number) => number;
  ticks: number[];
  tlWidth: number;
  sections: CriticalSection[] | undefined;
}

const clamp = (v: number) => Math.min(Math.max(v, 0), 100);

function SpanRow({ span: s, top, props, pct, ticks, tlWidth, sections }: RowProps) {
  const folded = props.collapsed.has(s.spanId);
  const color = serviceColor(s.service);
  const a = pct(s.start);
  const b = pct(s.start + s.duration);
  const left = clamp(a);
  const right = clamp(b);
  const inView = b >= 0 && a <= 100;
  const label = duration(s.duration);
  const place = labelPlace((left / 100) * tlWidth, (right / 100) * tlWidth + 2, label.length * 6.5 + 10, tlWidth);
  const labelStyle =
    place === "after"
      ? { left: `calc(${right}% + 5px)` }
      : place === "before"
        ? { right: `calc(${100 - left}% + 5px)` }
        : { right: `calc(${100 - right}% + 4px)` };
  const classes = ["wf-row"];
  if (props.cursor === s) classes.push("selected");
  if (s.error) classes.push("failed");
  if (props.matches.has(s)) classes.push("match");
  if (props.currentMatch === s) classes.push("current-match");
  return (
    <div
      class={classes.join(" ")}
      style={{ transform: `translateY(${top}px)`, height: `${ROW_H}px` }}
      data-testid="span-row"
      data-span-id={s.spanId}
      data-critical={sections ? "true" : undefined}
      onClick={() => {
        props.onCursor(s);
        props.onOpen(s);
      }}
    >
      <div class="wf-label" style={{ paddingLeft: `${Math.min(s.depth, 30) * 14 + 4}px` }} title={`${s.service} ${s.name}`}>
        {s.children.length > 0 ? (
          <button
            class="toggle"
            aria-label={folded ? "expand" : "collapse"}
            aria-expanded={!folded}
            onClick={(e) => {
              e.stopPropagation();
              props.onToggle(s);
            }}
          >
            {folded ? "▸" : "▾"}
          </button>
        ) : (
          <span class="toggle-space" />
        )}
        <span class="swatch" style={{ background: color }} />
        <span class="service">{s.service}</span> <span class="op">{s.name}</span>
        {folded && <span class="badge" title="spans in this folded subtree">+{s.children.length}</span>}
        {s.error && (
          <span class="badge error" title={s.statusMessage || "error"}>
            !
          </span>
        )}
        {s.orphan && (
          <span class="badge orphan" data-testid="missing-parent" title={`parent ${s.parentId} is not in this trace`}>
            missing parent
          </span>
        )}
        {s.kind > 0 && <span class="kind">{SPAN_KINDS[s.kind]}</span>}
      </div>
      <div class="wf-timeline">
        {ticks.map((t) => (
          <span class="grid" style={{ left: `${t}%` }} />
        ))}
        {inView && (
          <>
            <div class="bar" style={{ left: `${left}%`, width: `${right - left}%`, background: color }} />
            {sections?.map((c) => {
              const ca = clamp(pct(c.start));
              const cb = clamp(pct(c.end));
              return cb > ca ? <div class="cp" style={{ left: `${ca}%`, width: `${cb - ca}%` }} /> : null;
            })}
            {s.events.map((e) => {
              const at = pct(e.time);
              return at >= 0 && at <= 100 ? <span class="event" title={`${e.name} at +${duration(e.time - s.start)}`} style={{ left: `${at}%` }} /> : null;
            })}
            {props.logs?.get(s.spanId)?.map((l) => {
              const at = pct(l.time);
              const level = l.severity >= 17 ? "error" : l.severity >= 13 ? "warn" : "info";
              return at >= 0 && at <= 100 ? (
                <span class={`log-mark ${level}`} data-testid="log-mark" title={`log line at +${duration(l.time - s.start)}`} style={{ left: `${at}%` }} />
              ) : null;
            })}
            <span class={`bar-label ${place}`} style={labelStyle}>
              {label}
            </span>
          </>
        )}
      </div>
    </div>
  );
}
