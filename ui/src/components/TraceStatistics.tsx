/** The trace's statistics table: per service, or per service and operation, the span count,
 * total and self time, min/avg/max duration and errors; sortable by any column. */

import { useMemo, useState } from "preact/hooks";
import { duration } from "../format";
import { SortDir, StatGroup, StatRow, selfTimes, sortRows, traceStatistics } from "../model/statistics";
import { Trace } from "../model/trace";
import { serviceColor } from "./colors";
import "./trace.css";

type Column = keyof Pick<StatRow, "service" | "operation" | "count" | "total" | "self" | "min" | "avg" | "max" | "errors">;

const COLUMNS: [Column, string, "text" | "count" | "ms"][] = [
  ["service", "Service", "text"],
  ["operation", "Operation", "text"],
  ["count", "Spans", "count"],
  ["total", "Total", "ms"],
  ["self", "Self time", "ms"],
  ["min", "Min", "ms"],
  ["avg", "Avg", "ms"],
  ["max", "Max", "ms"],
  ["errors", "Errors", "count"],
];

export function TraceStatistics({ trace }: { trace: Trace }) {
  const [group, setGroup] = useState<StatGroup>("service");
  const [sort, setSort] = useState<[Column, SortDir]>(["total", "desc"]);
  const self = useMemo(() => selfTimes(trace), [trace]);
  const all = useMemo(() => traceStatistics(trace, group, self), [trace, group, self]);
  const rows = sortRows(all, sort[0], sort[1], "key");
  const columns = COLUMNS.filter(([key]) => key !== "operation" || group === "operation");
  return (
    <div class="trace-stats" data-testid="trace-stats">
      <div class="segmented" role="group" aria-label="group by">
        {(["service", "operation"] as StatGroup[]).map((g) => (
          <button class={g === group ? "on" : ""} data-testid={`group-${g}`} aria-pressed={g === group} onClick={() => setGroup(g)}>
            {g === "service" ? "Per service" : "Per operation"}
          </button>
        ))}
      </div>
      <table class="results stats">
        <thead>
          <tr>
            {columns.map(([key, label, type]) => (
              <th
                class={`${type !== "text" ? "num" : ""} sortable${sort[0] === key ? " sorted" : ""}`}
                data-testid={`stat-sort-${key}`}
                aria-sort={sort[0] === key ? (sort[1] === "asc" ? "ascending" : "descending") : undefined}
                onClick={() => setSort([key, sort[0] === key ? (sort[1] === "asc" ? "desc" : "asc") : type === "text" ? "asc" : "desc"])}
              >
                {label} {sort[0] === key ? (sort[1] === "asc" ? "▲" : "▼") : ""}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr data-testid="stats-row" data-key={r.key}>
              {columns.map(([key, , type]) => {
                const v = r[key];
                if (key === "service")
                  return (
                    <td>
                      <span class="swatch inline" style={{ background: serviceColor(r.service) }} /> {r.service}
                    </td>
                  );
                if (type === "text") return <td class="op">{String(v ?? "")}</td>;
                if (type === "count")
                  return <td class={`num${key === "errors" && r.errors ? " error-count" : ""}`}>{String(v)}</td>;
                return <td class="num">{duration(v as number)}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
