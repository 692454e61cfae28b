/** What the TraceQL editor can complete at the cursor, from the text before it: an attribute
 * name of a scope, a value of an attribute or intrinsic, or a field (scope or intrinsic). */

export type CompletionContext =
  | { kind: "attribute"; scope: string; from: number }
  | { kind: "value"; tag: string; from: number; quoted: boolean }
  | { kind: "field"; from: number };

export const SCOPES = ["span.", "resource.", "event.", "link.", "instrumentation.", "."];

export const INTRINSICS = [
  "name",
  "status",
  "statusMessage",
  "kind",
  "duration",
  "traceDuration",
  "rootName",
  "rootServiceName",
  "event:name",
  "link:traceID",
  "instrumentation:name",
  "trace:id",
  "span:id",
  "nestedSetParent",
];

/** Values an intrinsic can take, offered without asking the server. */
export const INTRINSIC_VALUES: Record<string, string[]> = {
  status: ["error", "ok", "unset"],
  kind: ["server", "client", "producer", "consumer", "internal", "unspecified"],
};

/** ``text`` is everything before the cursor; null when nothing is to be completed (inside a
 * string of no known attribute, after a number, outside braces). */
export function completionContext(text: string): CompletionContext | null {
  const depth = [...text].reduce((d, c) => (c === "{" ? d + 1 : c === "}" ? d - 1 : d), 0);
  if (depth <= 0) return null;
  const value = /([A-Za-z_][\w.:\-]*|\.[\w.\-]+)\s*(=|!=|=~|!~)\s*("?)([^"&|)}]*)$/.exec(text);
  if (value) {
    const tag = value[1];
    const quoted = value[3] === '"';
    return { kind: "value", tag, quoted, from: text.length - value[4].length - (quoted ? 1 : 0) };
  }
  const attr = /(?:^|[\s{(!&|])(span|resource|event|link|instrumentation)?\.([\w.\-]*)$/.exec(text);
  if (attr) {
    const scope = attr[1] ?? "";
    return { kind: "attribute", scope, from: text.length - attr[2].length };
  }
  const word = /(?:^|[\s{(!&|])([A-Za-z:]*)$/.exec(text);
  if (word) return { kind: "field", from: text.length - word[1].length };
  return null;
}
