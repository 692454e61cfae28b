/** The waterfall's minimap: every visible row of the whole trace drawn small (time across, rows
 * down), with the part the waterfall shows framed. Drag the frame to move it (time and rows),
 * drag elsewhere to zoom into that time range, click to jump there, double-click to zoom out. */

import { useEffect, useRef, useState } from "preact/hooks";
import { Span } from "../model/trace";
import { serviceColor } from "./colors";
import "./trace.css";

const MAX_HEIGHT = 56;
const ROW_MAX = 6; // a row's height in the minimap when there are few

interface Props {
  rows: Span[];
  start: number;
  end: number;
  /** the time window the waterfall shows (unix ms) */
  window: [number, number];
  firstRow: number;
  rowsShown: number;
  onWindow: (window: [number, number]) => void;
  onScrollRow: (row: number) => void;
}

type Drag =
  | { mode: "move"; x0: number; y0: number; window: [number, number]; row: number }
  | { mode: "select"; x0: number; y0: number; x: number };

export function Minimap({ rows, start, end, window: [w0, w1], firstRow, rowsShown, onWindow, onScrollRow }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [drag, setDrag] = useState<Drag | null>(null);
  const total = Math.max(end - start, 1e-9);
  const HEIGHT = Math.min(MAX_HEIGHT, Math.max(24, rows.length * ROW_MAX));
  const rowH = rows.length ? Math.min(HEIGHT / rows.length, ROW_MAX) : HEIGHT;

  useEffect(() => {
    const el = box.current!;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    setWidth(el.clientWidth);
    return () => observer.disconnect();
  }, []);

  useEffect(() => {
    const c = canvas.current;
    if (!c || !width) return;
    const dpr = globalThis.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(HEIGHT * dpr);
    const ctx = c.getContext("2d");
    if (!ctx) return;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, width, HEIGHT);
    const h = Math.max(rowH - (rowH > 3 ? 1 : 0), 0.5);
    rows.forEach((s, i) => {
      ctx.fillStyle = serviceColor(s.service);
      const x = ((s.start - start) / total) * width;
      ctx.fillRect(x, i * rowH, Math.max((s.duration / total) * width, 1), h);
    });
  }, [rows, width, start, total, rowH, HEIGHT]);

  const fx = (t: number) => ((t - start) / total) * width;
  const frame = {
    left: fx(w0),
    width: Math.max(fx(w1) - fx(w0), 2),
    top: Math.min(firstRow * rowH, HEIGHT - 2),
    height: Math.max(Math.min(rowsShown, rows.length - firstRow) * rowH, 3),
  };

  function local(e: PointerEvent): [number, number] {
    const r = box.current!.getBoundingClientRect();
    return [Math.min(Math.max(e.clientX - r.left, 0), width), Math.min(Math.max(e.clientY - r.top, 0), HEIGHT)];
  }

  function down(e: PointerEvent) {
    if (e.button !== 0) return;
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    const [x, y] = local(e);
    const inFrame = x >= frame.left && x <= frame.left + frame.width && y >= frame.top && y <= frame.top + frame.height;
    // a frame over the whole trace is not worth moving: a drag there zooms instead
    const whole = w0 <= start && w1 >= end && rowsShown >= rows.length;
    setDrag(inFrame && !whole ? { mode: "move", x0: x, y0: y, window: [w0, w1], row: firstRow } : { mode: "select", x0: x, y0: y, x });
  }

  function move(e: PointerEvent) {
    if (!drag) return;
    const [x, y] = local(e);
    if (drag.mode === "select") {
      setDrag({ ...drag, x });
      return;
    }
    const [a, b] = drag.window;
    const shift = Math.min(Math.max(((x - drag.x0) / width) * total, start - a), end - b);
    if (shift) onWindow([a + shift, b + shift]);
    onScrollRow(drag.row + (y - drag.y0) / rowH);
  }

  function up(e: PointerEvent) {
    if (!drag) return;
    setDrag(null);
    if (drag.mode !== "select") return;
    const [x, y] = local(e);
    if (Math.abs(x - drag.x0) > 3) {
      const t = (px: number) => start + (px / width) * total;
      onWindow([t(Math.min(x, drag.x0)), t(Math.max(x, drag.x0))]);
      return;
    }
    // a click: centre the waterfall's rows (and a zoomed window) on that point
    onScrollRow(y / rowH - rowsShown / 2);
    const span = w1 - w0;
    if (span < total) {
      const c = start + (x / width) * total;
      const a = Math.min(Math.max(c - span / 2, start), end - span);
      onWindow([a, a + span]);
    }
  }

  return (
    <div
      class="minimap"
      data-testid="minimap"
      ref={box}
      style={{ height: `${HEIGHT}px` }}
      onPointerDown={down}
      onPointerMove={move}
      onPointerUp={up}
      onDblClick={() => onWindow([start, end])}
      title="Drag to zoom into a time range, drag the frame to move it, double-click to zoom out"
    >
      <canvas ref={canvas} style={{ width: `${width}px`, height: `${HEIGHT}px` }} />
      <div class="minimap-shade" style={{ left: 0, width: `${frame.left}px` }} />
      <div class="minimap-shade" style={{ left: `${frame.left + frame.width}px`, right: 0 }} />
      <div
        class="minimap-frame"
        data-testid="minimap-frame"
        style={{ left: `${frame.left}px`, width: `${frame.width}px`, top: `${frame.top}px`, height: `${frame.height}px` }}
      />
      {drag?.mode === "select" && Math.abs(drag.x - drag.x0) > 3 && (
        <div class="minimap-select" style={{ left: `${Math.min(drag.x, drag.x0)}px`, width: `${Math.abs(drag.x - drag.x0)}px` }} />
      )}
    </div>
  );
}
