/** A colour per service: stable by name (a hash into the palette), and distinct for the
 * services of the trace on screen once ``useServiceColors`` pinned them (in name order). */

const PALETTE = [
  "#3b82f6", "#10b981", "#f59e0b", "#8b5cf6", "#ef4444", "#06b6d4", "#ec4899", "#84cc16",
  "#f97316", "#6366f1", "#14b8a6", "#eab308", "#a855f7", "#0ea5e9", "#f43f5e", "#22c55e",
];

const pinned = new Map<string, string>();

export function serviceColor(service: string): string {
  const p = pinned.get(service);
  if (p) return p;
  let h = 2166136261;
  for (let i = 0; i < service.length; i++) h = Math.imul(h ^ service.charCodeAt(i), 16777619) >>> 0;
  return PALETTE[h % PALETTE.length];
}

/** Give each of ``services`` its own palette colour (until more services than colours). */
export function pinServiceColors(services: string[]) {
  pinned.clear();
  services.forEach((s, i) => {
    if (i < PALETTE.length) pinned.set(s, PALETTE[i]);
  });
}
