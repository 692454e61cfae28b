/** Duration over time of the traces found, one dot per trace (red when it holds an error);
 * clicking a dot opens its trace. Drawn by uPlot. */

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";
import { SearchHit } from "../api";
import { duration } from "../format";

interface Props {
  hits: SearchHit[];
  /** trace ids known to hold an error span */
  failed: Set<string>;
  onOpen: (traceId: string) => void;
}

const HEIGHT = 170;
const HIT_PX = 12;

/** ``[min, max]`` widened by ``share`` of its span on each side; a single value (span 0) is
 * centred in ``alone`` (seconds on x, ms on y). */
function pad(min: number, max: number, share: number, alone: number): uPlot.Range.MinMax {
  const span = max - min;
  if (span <= 0) return [min - alone / 2, max + alone / 2];
  return [min - span * share, max + span * share];
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** x (unix seconds) ascending, and y (ms) of ok and failed traces as two series (Tempo gives
 * whole milliseconds: a trace under 1 ms sits at 0). */
function columns(hits: SearchHit[], failed: Set<string>) {
  const rows = hits
    .map((h) => ({ id: h.traceID, x: Number(BigInt(h.startTimeUnixNano) / 1000n) / 1e6, y: h.durationMs ?? 0 }))
    .sort((a, b) => a.x - b.x);
  return {
    ids: rows.map((r) => r.id),
    data: [
      rows.map((r) => r.x),
      rows.map((r) => (failed.has(r.id) ? null : r.y)),
      rows.map((r) => (failed.has(r.id) ? r.y : null)),
    ] as uPlot.AlignedData,
  };
}

export function DurationScatter({ hits, failed, onOpen }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const open = useRef(onOpen);
  open.current = onOpen;

  useEffect(() => {
    const el = host.current!;
    const { ids, data } = columns(hits, failed);
    const xs = data[0] as number[];
    const dot = (color: string): uPlot.Series => ({
      stroke: color,
      fill: color,
      paths: () => null,
      points: { show: true, size: 7, stroke: color, fill: color },
    });
    const text = cssVar("--muted");
    const grid = cssVar("--line");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const plot = new uPlot(
      {
        width: el.clientWidth || 800,
        height: HEIGHT,
        legend: { show: false },
        cursor: { points: { show: false }, drag: { x: false, y: false } },
        // padded so that dots at the extremes (a trace under 1 ms sits at 0) are drawn whole
        scales: {
          x: { time: true, auto: false, range: pad(Math.min(...xs), Math.max(...xs), 0.03, 60) },
          y: { range: (_u, _min, max) => pad(0, max > 0 ? max : 1, 0.08, 1) },
        },
        axes: [axis, { ...axis, size: 64, values: (_u, splits) => splits.map((v) => duration(v)) }],
        series: [{}, { label: "traces", ...dot(cssVar("--accent")) }, { label: "with errors", ...dot(cssVar("--error")) }],
        hooks: {
          // where each dot is drawn (CSS px in the plot area), for tests and tools to aim at
          draw: [
            (u) => {
              u.over.dataset.points = JSON.stringify(
                xs.map((x, i) => [ids[i], Math.round(u.valToPos(x, "x")), Math.round(u.valToPos((data[1][i] ?? data[2][i]) as number, "y"))]),
              );
            },
          ],
        },
      },
      data,
      el,
    );
    const nearest = (e: MouseEvent): string | null => {
      const rect = plot.over.getBoundingClientRect();
      const px = e.clientX - rect.left;
      const py = e.clientY - rect.top;
      let best: string | null = null;
      let bestD = HIT_PX;
      xs.forEach((x, i) => {
        const y = (data[1][i] ?? data[2][i]) as number;
        const d = Math.hypot(plot.valToPos(x, "x") - px, plot.valToPos(y, "y") - py);
        if (d <= bestD) {
          bestD = d;
          best = ids[i];
        }
      });
      return best;
    };
    const click = (e: MouseEvent) => {
      const id = nearest(e);
      if (id) open.current(id);
    };
    const hover = (e: MouseEvent) => {
      plot.over.style.cursor = nearest(e) ? "pointer" : "default";
    };
    plot.over.addEventListener("click", click);
    plot.over.addEventListener("mousemove", hover);
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height: HEIGHT }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [hits, failed]);

  return <div class="duration-scatter" data-testid="scatter" ref={host} />;
}
