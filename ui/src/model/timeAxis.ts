/** The waterfall's time axis: evenly spaced round ticks over a window, and where a bar's
 * duration label goes so that it never sits unreadably over the bar's end. */

/** Offsets (ms from ``origin``) of round ticks within [from, to], at most about ``count``. */
export function niceTicks(origin: number, from: number, to: number, count: number): number[] {
  const span = to - from;
  if (!(span > 0) || count < 1) return [from - origin];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.ceil((from - origin) / step - 1e-9) * step;
  const out: number[] = [];
  for (let t = first; t <= to - origin + step * 1e-9; t += step) out.push(Math.round(t / step) * step || 0);
  return out;
}

export type LabelPlace = "after" | "before" | "inside";

/** Where a label ``labelPx`` wide goes for a bar from ``leftPx`` to ``rightPx`` in a timeline
 * ``widthPx`` wide: after the bar when it fits there, else before it, else inside its end. */
export function labelPlace(leftPx: number, rightPx: number, labelPx: number, widthPx: number): LabelPlace {
  if (rightPx + labelPx <= widthPx) return "after";
  if (leftPx >= labelPx) return "before";
  return "inside";
}
