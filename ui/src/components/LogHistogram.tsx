/** Lines over time as stacked bars by level (uPlot), above the Logs page's lines. */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";
import type { LogRow } from "../pages/LogsPage";

const BUCKETS = 60;
const LEVELS: [string, string][] = [
  ["error", "--error"],
  ["warn", "--hl-number"],
  ["info", "--accent"],
  ["other", "--muted"],
];

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Per bucket of the window, how many lines of each level, stacked (each level's bar drawn from
 * the levels after it up), null where the level has none. */
export function histogram(rows: LogRow[], start: number, end: number): (number | null)[][] {
  const width = Math.max((end - start) / BUCKETS, 1e-9);
  const counts = LEVELS.map(() => new Array<number>(BUCKETS).fill(0));
  for (const r of rows) {
    const s = Number(r.ns / 1000000n) / 1000;
    const i = Math.min(BUCKETS - 1, Math.max(0, Math.floor((s - start) / width)));
    const level = r.labels.level ?? "";
    const k = LEVELS.findIndex(([name]) => name === level || (name === "error" && level === "fatal"));
    counts[k < 0 ? LEVELS.length - 1 : k][i] += 1;
  }
  const stacked = counts.map((c) => [...c]);
  for (let k = LEVELS.length - 2; k >= 0; k--) for (let i = 0; i < BUCKETS; i++) stacked[k][i] += stacked[k + 1][i];
  return stacked.map((c, k) => c.map((v, i) => (counts[k][i] ? v : null)));
}

export function LogHistogram({ rows, start, end }: { rows: LogRow[]; start: number; end: number }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current!;
    const width = (end - start) / BUCKETS;
    const xs = Array.from({ length: BUCKETS }, (_, i) => start + (i + 0.5) * width);
    const bars = uPlot.paths.bars!({ size: [0.9, 40] });
    const text = cssVar("--muted");
    const grid = cssVar("--line");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const plot = new uPlot(
      {
        width: el.clientWidth || 800,
        height: 120,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true, range: [start, end] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{ ...axis, space: 90 }, { ...axis, size: 40 }],
        series: [{}, ...LEVELS.map(([label, color]) => ({ label, fill: cssVar(color), stroke: cssVar(color), paths: bars, points: { show: false } }))],
      },
      [xs, ...histogram(rows, start, end)] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: 120 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [rows, start, end]);
  return <div class="log-histogram" data-testid="log-histogram" ref={host} />;
}
