/** Every span of the trace as a table sortable by service, operation, duration, self time and
 * start offset; rows virtualised; a click selects the span (its details open alongside). */

import { useMemo, useState } from "preact/hooks";
import { duration } from "../format";
import { SortDir, selfTimes, sortRows } from "../model/statistics";
import { Span, Trace } from "../model/trace";
import { serviceColor } from "./colors";
import { useVirtualRows } from "./useVirtualRows";
import "./trace.css";

const ROW_H = 28;
const HEAD_H = 30;

interface Row {
  span: Span;
  service: string;
  operation: string;
  duration: number;
  self: number;
  offset: number;
  order: number;
}

type Column = "service" | "operation" | "duration" | "self" | "offset";

const COLUMNS: [Column, string, boolean][] = [
  ["service", "Service", false],
  ["operation", "Operation", false],
  ["duration", "Duration", true],
  ["self", "Self time", true],
  ["offset", "Start offset", true],
];

interface Props {
  trace: Trace;
  selected: Span | null;
  matches: ReadonlySet<Span>;
  onSelect: (span: Span) => void;
}

export function SpanTable({ trace, selected, matches, onSelect }: Props) {
  const [sort, setSort] = useState<[Column, SortDir]>(["offset", "asc"]);
  const base = useMemo(() => {
    const self = selfTimes(trace);
    return trace.spans.map((s, order): Row => ({
      span: s,
      service: s.service,
      operation: s.name,
      duration: s.duration,
      self: self.get(s) ?? 0,
      offset: s.start - trace.start,
      order,
    }));
  }, [trace]);
  const rows = useMemo(() => sortRows(base, sort[0], sort[1], "order"), [base, sort]);
  const { scrollRef, virtualizer } = useVirtualRows(rows.length, ROW_H, HEAD_H);

  return (
    <div class="span-table" data-testid="span-table" ref={scrollRef}>
      <div class="st-row st-head" style={{ height: `${HEAD_H}px` }} role="row">
        {COLUMNS.map(([key, label, numeric]) => (
          <button
            class={`st-cell st-${key}${numeric ? " num" : ""}${sort[0] === key ? " sorted" : ""}`}
            data-testid={`sort-${key}`}
            aria-sort={sort[0] === key ? (sort[1] === "asc" ? "ascending" : "descending") : undefined}
            onClick={() => setSort([key, sort[0] === key ? (sort[1] === "asc" ? "desc" : "asc") : numeric ? "desc" : "asc"])}
          >
            {label} {sort[0] === key ? (sort[1] === "asc" ? "▲" : "▼") : ""}
          </button>
        ))}
      </div>
      <div style={{ height: `${rows.length * ROW_H}px`, position: "relative" }}>
        {virtualizer.getVirtualItems().map((item) => {
          const r = rows[item.index];
          const classes = ["st-row"];
          if (r.span === selected) classes.push("selected");
          if (r.span.error) classes.push("failed");
          if (matches.has(r.span)) classes.push("match");
          return (
            <div
              key={r.span.spanId + item.index}
              class={classes.join(" ")}
              data-testid="table-row"
              data-span-id={r.span.spanId}
              style={{ transform: `translateY(${item.start - HEAD_H}px)`, height: `${ROW_H}px` }}
              onClick={() => onSelect(r.span)}
            >
              <span class="st-cell st-service">
                <span class="swatch" style={{ background: serviceColor(r.service) }} /> {r.service}
              </span>
              <span class="st-cell st-operation op">
                {r.operation}
                {r.span.error && <span class="badge error">!</span>}
              </span>
              <span class="st-cell num">{duration(r.duration)}</span>
              <span class="st-cell num">{duration(r.self)}</span>
              <span class="st-cell num">+{duration(r.offset)}</span>
            </div>
          );
        })}
      </div>
    </div>
  );
}
