import { describe, expect, it } from "vitest";
import { fromLocalInput, rangeFromParams, rangeLabel, rangeToParams, resolveRange, toLocalInput } from "./timeRange";

describe("time ranges", () => {
  it("round-trip through the URL", () => {
    for (const r of [
      { kind: "relative" as const, seconds: 900 },
      { kind: "absolute" as const, start: 1_700_000_000, end: 1_700_003_600 },
    ]) {
      expect(rangeFromParams(new URLSearchParams(rangeToParams(r)))).toEqual(r);
    }
  });

  it("fall back to the last hour when the URL holds nonsense", () => {
    expect(rangeFromParams(new URLSearchParams("range=-4"))).toEqual({ kind: "relative", seconds: 3600 });
    expect(rangeFromParams(new URLSearchParams("start=10&end=5"))).toEqual({ kind: "relative", seconds: 3600 });
  });

  it("resolve a relative range back from now, covering the current second", () => {
    expect(resolveRange({ kind: "relative", seconds: 60 }, 1000.5)).toEqual({ start: 941, end: 1002 });
  });

  it("label presets and absolute ranges", () => {
    expect(rangeLabel({ kind: "relative", seconds: 3600 })).toBe("Last hour");
    expect(rangeLabel({ kind: "relative", seconds: 12 * 3600 })).toBe("Last 12 hours");
    const start = fromLocalInput("2026-03-01T10:00")!;
    expect(toLocalInput(start)).toBe("2026-03-01T10:00");
    expect(rangeLabel({ kind: "absolute", start, end: start + 1800 })).toBe("2026-03-01 10:00 – 10:30");
  });
});
