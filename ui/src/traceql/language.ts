/** TraceQL for CodeMirror: Grafana's lezer grammar, with highlighting by node type. */

import { HighlightStyle, LRLanguage, LanguageSupport, syntaxHighlighting } from "@codemirror/language";
import { parser } from "@grafana/lezer-traceql";
import { styleTags, tags as t } from "@lezer/highlight";

const traceqlLanguage = LRLanguage.define({
  name: "traceql",
  parser: parser.configure({
    props: [
      styleTags({
        "String TemplateVariable": t.string,
        "Integer Float Duration": t.number,
        IntrinsicField: t.keyword,
        "Resource Span Event Link Instrumentation Parent": t.namespace,
        Identifier: t.propertyName,
        "FieldOp ComparisonOp ScalarOp And Or Gt Lt Desc Anc Pipe": t.operator,
        "Aggregate GroupOperation SelectOperation CoalesceOperation MetricsOperation": t.function(t.name),
        "LineComment BlockComment": t.comment,
      }),
    ],
  }),
  languageData: { commentTokens: { line: "//" } },
});

const highlight = HighlightStyle.define([
  { tag: t.string, color: "var(--hl-string)" },
  { tag: t.number, color: "var(--hl-number)" },
  { tag: t.keyword, color: "var(--hl-keyword)", fontWeight: "600" },
  { tag: t.namespace, color: "var(--hl-scope)" },
  { tag: t.propertyName, color: "var(--hl-attr)" },
  { tag: t.operator, color: "var(--hl-operator)" },
  { tag: t.function(t.name), color: "var(--hl-function)" },
  { tag: t.comment, color: "var(--muted)", fontStyle: "italic" },
]);

export function traceql(): LanguageSupport {
  return new LanguageSupport(traceqlLanguage, [syntaxHighlighting(highlight)]);
}

/** The offset in ``text`` of a server parse error's "line L, column C" (1-based), if named. */
export function errorOffset(text: string, message: string): number | null {
  const m = /line (\d+), column (\d+)/.exec(message);
  if (!m) return null;
  const lines = text.split("\n");
  const line = Number(m[1]) - 1;
  if (line >= lines.length) return text.length;
  let offset = 0;
  for (let i = 0; i < line; i++) offset += lines[i].length + 1;
  return Math.min(offset + Number(m[2]) - 1, text.length);
}
