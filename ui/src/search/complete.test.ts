import { describe, expect, it } from "vitest";
import { completionContext } from "./complete";

describe("completionContext", () => {
  it("offers fields right after a brace or an operator", () => {
    expect(completionContext("{ ")).toEqual({ kind: "field", from: 2 });
    expect(completionContext("{ status = error && na")).toEqual({ kind: "field", from: 20 });
  });

  it("offers a scope's attribute names after the scope", () => {
    expect(completionContext("{ resource.serv")).toEqual({ kind: "attribute", scope: "resource", from: 11 });
    expect(completionContext("{ span.")).toEqual({ kind: "attribute", scope: "span", from: 7 });
    expect(completionContext("{ .http")).toEqual({ kind: "attribute", scope: "", from: 3 });
  });

  it("offers values after a comparison, inside or before the quote", () => {
    expect(completionContext('{ resource.service.name = "ca')).toEqual({
      kind: "value",
      tag: "resource.service.name",
      quoted: true,
      from: 26,
    });
    expect(completionContext("{ status = ")).toEqual({ kind: "value", tag: "status", quoted: false, from: 11 });
  });

  it("offers nothing outside a spanset filter", () => {
    expect(completionContext("")).toBeNull();
    expect(completionContext('{ .a = "b" } ')).toBeNull();
  });
});
