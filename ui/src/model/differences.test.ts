import { describe, expect, it } from "vitest";
import type { InstantSeries } from "../serviceApi";
import { attributeCondition, attributesIn, combineFilters, compareQuery, filterBody, rankDifferences } from "./differences";

function s(type: string, key: string, value: InstantSeries["labels"][0]["value"], n: number): InstantSeries {
  return { labels: [{ key: "__meta_type", value: { stringValue: type } }, { key, value }], value: n };
}
const str = (v: string) => ({ stringValue: v });
const nil = str("nil");

// 3 selected spans (errors) and 9 baseline spans of one service; the card network is planted
const answer: InstantSeries[] = [
  s("selection_total", "name", nil, 3),
  s("selection", "name", str("Charge"), 3),
  s("baseline_total", "name", nil, 9),
  s("baseline", "name", str("Charge"), 9),
  s("selection_total", "status", nil, 3),
  s("selection", "status", str("error"), 3),
  s("baseline_total", "status", nil, 9),
  s("baseline", "status", str("unset"), 9),
  s("selection_total", "span.card.network", nil, 3),
  s("selection", "span.card.network", str("discover"), 3),
  s("baseline_total", "span.card.network", nil, 9),
  s("baseline", "span.card.network", str("visa"), 5),
  s("baseline", "span.card.network", str("amex"), 4),
  // only one selected span has a retry count; baseline spans rarely do
  s("selection_total", "span.retries", nil, 1),
  s("selection", "span.retries", { intValue: "2" }, 1),
  s("baseline_total", "span.retries", nil, 1),
  s("baseline", "span.retries", { intValue: "2" }, 1),
  s("selection", "span.cached", { boolValue: false }, 2),
  s("baseline", "span.cached", { boolValue: false }, 3),
];

describe("rankDifferences", () => {
  it("ranks over-represented values by share of all spans, leaving out what defines the selection", () => {
    const r = rankDifferences(answer, ["status"]);
    expect([r.selectionSpans, r.baselineSpans]).toEqual([3, 9]);
    expect(r.differences.map((d) => [d.attribute, d.value])).toEqual([
      ["span.card.network", "discover"],
      ["span.cached", false], // 2/3 vs 3/9
      ["span.retries", 2], // 1/3 vs 1/9
    ]);
    const first = r.differences[0];
    expect([first.selection, first.baseline, first.selectionShare, first.baselineShare]).toEqual([3, 0, 1, 0]);
    expect(r.differences[2].selectionShare).toBeCloseTo(1 / 3);
    expect(r.differences[2].baselineShare).toBeCloseTo(1 / 9);
  });

  it("keeps the defining attribute when not told, and limits", () => {
    const r = rankDifferences(answer, [], 2);
    expect(r.differences.map((d) => d.attribute)).toEqual(["span.card.network", "status"]);
  });

  it("answers nothing for nothing", () => {
    expect(rankDifferences([])).toEqual({ selectionSpans: 0, baselineSpans: 0, differences: [] });
  });
});

describe("TraceQL text", () => {
  it("finds the attributes a filter mentions", () => {
    const attrs = ["status", "name", "resource.service.name", "span.card.network", "statusMessage"];
    expect(attributesIn("{ status = error }", attrs)).toEqual(["status"]);
    expect(attributesIn('{ .card.network = "name" && duration > 1s }', attrs)).toEqual(["span.card.network"]);
    expect(attributesIn('{ resource.service.name = "x" }', attrs)).toEqual(["resource.service.name"]);
  });

  it("writes conditions for compare()'s attributes", () => {
    expect(attributeCondition("span.card.network", "discover")).toBe('span.card.network = "discover"');
    expect(attributeCondition("status", "error")).toBe("status = error");
    expect(attributeCondition("kind", "server")).toBe("kind = server");
    expect(attributeCondition("name", 'GET "x"')).toBe('name = "GET \\"x\\""');
    expect(attributeCondition("span.retries", 2)).toBe("span.retries = 2");
    expect(attributeCondition("span.cached", false)).toBe("span.cached = false");
    expect(attributeCondition("span.odd key", "v")).toBe('span."odd key" = "v"');
  });

  it("combines filters into one search", () => {
    expect(filterBody("{ }")).toBe("");
    expect(filterBody('{ a = "}" }')).toBe('a = "}"');
    expect(filterBody("{ a } >> { b }")).toBeNull();
    expect(filterBody("{ a } | count() > 1")).toBeNull();
    expect(combineFilters(['{ resource.service.name = "payment" }', "{ status = error }"], ['span.card.network = "discover"'])).toBe(
      '{ resource.service.name = "payment" && status = error && span.card.network = "discover" }',
    );
    expect(combineFilters(["{ }", "{ kind = server || kind = consumer }"])).toBe("{ kind = server || kind = consumer }");
    expect(combineFilters(["{ a = 1 }", "{ kind = server || kind = consumer }"], ["b = 2"])).toBe(
      "{ a = 1 && (kind = server || kind = consumer) && b = 2 }",
    );
    expect(combineFilters(["{ a } >> { b }", "{ c = 1 }"], ["d = 2"])).toBe("{ a } >> { b } && { c = 1 && d = 2 }");
    expect(compareQuery(" { a = 1 } ", "{ status = error }")).toBe("{ a = 1 } | compare({ status = error }, 50)");
  });
});
