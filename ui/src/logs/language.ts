/** LogQL for CodeMirror: Grafana's lezer grammar with highlighting by node type, and completion
 * of label names and values from Loki's label API. */

import { CompletionContext, CompletionResult } from "@codemirror/autocomplete";
import { HighlightStyle, LRLanguage, LanguageSupport, syntaxHighlighting } from "@codemirror/language";
import { parser } from "@grafana/lezer-logql";
import { styleTags, tags as t } from "@lezer/highlight";
import { get } from "../api";

const logqlLanguage = LRLanguage.define({
  name: "logql",
  parser: parser.configure({
    props: [
      styleTags({
        String: t.string,
        "Number Duration Range": t.number,
        Identifier: t.propertyName,
        "Json Logfmt Unpack Pattern Regexp Unwrap LabelFormat LineFormat Decolorize Drop Keep": t.keyword,
        "By Without And Or Unless Bool On Ignoring Offset": t.keyword,
        "Sum Avg Count Max Min Stddev Stdvar Bottomk Topk Sort Sort_Desc": t.function(t.name),
        "CountOverTime Rate BytesOverTime BytesRate AbsentOverTime SumOverTime AvgOverTime": t.function(t.name),
        "Eq Neq Re Nre PipeExact PipeMatch Pipe Gtr Lss Gte Lte Eql": t.operator,
        LineComment: t.comment,
      }),
    ],
  }),
  languageData: { commentTokens: { line: "#" } },
});

const highlight = HighlightStyle.define([
  { tag: t.string, color: "var(--hl-string)" },
  { tag: t.number, color: "var(--hl-number)" },
  { tag: t.keyword, color: "var(--hl-keyword)", fontWeight: "600" },
  { tag: t.propertyName, color: "var(--hl-attr)" },
  { tag: t.operator, color: "var(--hl-operator)" },
  { tag: t.function(t.name), color: "var(--hl-function)" },
  { tag: t.comment, color: "var(--muted)", fontStyle: "italic" },
]);

export function logql(): LanguageSupport {
  return new LanguageSupport(logqlLanguage, [syntaxHighlighting(highlight)]);
}

const cache = new Map<string, Promise<string[]>>();

function names(path: string): Promise<string[]> {
  let hit = cache.get(path);
  if (!hit) {
    hit = get(path).then((doc) => (doc.data ?? []) as string[]);
    hit.catch(() => cache.delete(path));
    cache.set(path, hit);
  }
  return hit;
}

/** Label names inside a selector, and a label's values after ``name=``. */
export async function completeLogql(ctx: CompletionContext): Promise<CompletionResult | null> {
  const before = ctx.state.sliceDoc(0, ctx.pos);
  const open = before.lastIndexOf("{");
  if (open < 0 || before.lastIndexOf("}") > open) return null;
  const value = /([A-Za-z_][A-Za-z0-9_]*)\s*(=|!=|=~|!~)\s*"([^"]*)$/.exec(before);
  if (value) {
    const values = await names(`/loki/api/v1/label/${encodeURIComponent(value[1])}/values`).catch(() => []);
    return { from: ctx.pos - value[3].length, options: values.map((v) => ({ label: v, type: "text" })) };
  }
  const word = /(?:^|[{,\s])([A-Za-z_][A-Za-z0-9_]*)?$/.exec(before);
  if (!word) return null;
  const labels = await names("/loki/api/v1/labels").catch(() => []);
  return { from: ctx.pos - (word[1]?.length ?? 0), options: labels.map((l) => ({ label: l, type: "property" })) };
}
