/** A time series chart (uPlot): series over shared timestamps, values in one unit, and
 * exemplar points (a span of a trace each) that open their trace when clicked. */

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { navigate } from "../App";
import "./services.css";

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: string; // a CSS custom property of services.css, e.g. "--chart-1"
}

export interface ChartExemplar {
  t: number; // unix seconds
  y: number; // in the chart's unit
  traceId: string;
  title: string;
}

interface Props {
  title: string;
  unit: string;
  format: (v: number) => string;
  x: number[]; // unix seconds
  series: ChartSeries[];
  exemplars?: ChartExemplar[];
  note?: string; // a line under the chart
  testid?: string;
  height?: number;
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export function TimeSeriesChart({ title, unit, format, x, series, exemplars = [], note, testid, height = 200 }: Props) {
  const plot = useRef<HTMLDivElement>(null);
  const empty = x.length === 0 || series.every((s) => s.values.every((v) => v === null));

  useEffect(() => {
    const el = plot.current;
    if (!el || empty) return;
    let top = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > top) top = v;
    for (const e of exemplars) if (e.y > top) top = e.y;
    const muted = cssVar("--muted");
    const grid = cssVar("--line");
    const axis = (values: uPlot.Axis["values"]): uPlot.Axis => ({
      stroke: muted,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      values,
    });
    // exemplars are buttons over the plot, placed again at every redraw
    const placeExemplars = (u: uPlot) => {
      u.over.querySelectorAll(".exemplar").forEach((b) => b.remove());
      const [lo, hi] = [u.scales.x.min ?? -Infinity, u.scales.x.max ?? Infinity];
      for (const e of exemplars) {
        if (e.t < lo || e.t > hi) continue;
        const b = document.createElement("button");
        b.className = "exemplar";
        b.title = e.title;
        b.dataset.testid = "exemplar";
        b.dataset.traceId = e.traceId;
        b.style.left = `${u.valToPos(e.t, "x")}px`;
        b.style.top = `${u.valToPos(e.y, "y")}px`;
        b.addEventListener("click", () => navigate(`/trace/${e.traceId}`));
        u.over.appendChild(b);
      }
    };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      series: [
        { value: (_u, v) => (v == null ? "–" : new Date(v * 1000).toLocaleString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: cssVar(s.color),
          width: 1.75,
          spanGaps: true,
          // a sparse series is drawn as points too (a lone sample has no line)
          points: { show: s.values.filter((v) => v !== null).length <= 40, size: 6 },
          value: (_u: uPlot, v: number | null) => (v == null ? "–" : format(v)),
        })),
      ],
      scales: { y: { range: () => [0, top > 0 ? top * 1.12 : 1] } },
      axes: [axis(undefined), { ...axis((_u, splits) => splits.map((v) => (v === 0 ? "0" : format(v)))), size: 64 }],
      legend: { live: true },
      hooks: { draw: [placeExemplars] },
    };
    const u = new uPlot(opts, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth);
      if (width !== u.width) u.setSize({ width, height });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
    };
  }, [x, series, exemplars, empty]);

  return (
    <figure class="chart" data-testid={testid} data-series={series.length} style={{ margin: 0 }}>
      <h3>
        {title} <span class="unit">({unit})</span>
      </h3>
      {empty ? <p class="no-data muted">No data in this range</p> : <div class="plot" ref={plot} />}
      {note && !empty && <figcaption class="svc-note">{note}</figcaption>}
    </figure>
  );
}
