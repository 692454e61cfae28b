import { describe, expect, it } from "vitest";
import { EMPTY_BUILDER, buildTraceQL, builderProblems, quote } from "./builder";

describe("buildTraceQL", () => {
  it("is the empty spanset filter when nothing is chosen", () => {
    expect(buildTraceQL(EMPTY_BUILDER)).toBe("{ }");
  });

  it("joins every field with && in one filter", () => {
    const q = buildTraceQL({
      service: "cart",
      name: "GET /items",
      status: "error",
      minDuration: "100ms",
      maxDuration: "2s",
      filters: [
        { key: "span.http.status_code", op: ">=", value: "500" },
        { key: "resource.region", op: "=", value: "eu-west" },
        { key: ".retry", op: "=", value: "true" },
        { key: "span.http.route", op: "=~", value: "/api/.*" },
      ],
    });
    expect(q).toBe(
      '{ resource.service.name = "cart" && name = "GET /items" && status = error && duration >= 100ms' +
        ' && duration <= 2s && span.http.status_code >= 500 && resource.region = "eu-west" && .retry = true' +
        ' && span.http.route =~ "/api/.*" }',
    );
  });

  it("leaves out half-filled filters and bad durations, and says what is wrong", () => {
    const state = { ...EMPTY_BUILDER, minDuration: "fast", filters: [{ key: "span.a", op: "=" as const, value: "" }] };
    expect(buildTraceQL(state)).toBe("{ }");
    expect(builderProblems(state)).toEqual(['minimum duration "fast" is not a duration such as 250ms, 1.5s or 2m']);
    expect(builderProblems({ ...EMPTY_BUILDER, filters: [{ key: "http.method", op: "=", value: "GET" }] })[0]).toContain(
      "not an attribute",
    );
  });

  it("escapes quotes and backslashes in strings", () => {
    expect(quote('say "hi" \\o/')).toBe('"say \\"hi\\" \\\\o/"');
  });
});
