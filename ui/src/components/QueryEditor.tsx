/** The TraceQL editor: CodeMirror with the TraceQL grammar; Ctrl/Cmd+Enter runs the query, a
 * server parse error is underlined where it points, and scopes, intrinsics, attribute names
 * and values are completed from the tag APIs; another dialect (LogQL) brings its own grammar and
 * completions. */

import {
  Completion,
  CompletionContext,
  CompletionSource,
  autocompletion,
  completionKeymap,
} from "@codemirror/autocomplete";
import { EditorState, Extension, StateEffect, StateField } from "@codemirror/state";
import { Decoration, EditorView, keymap, placeholder } from "@codemirror/view";
import { useEffect, useRef } from "preact/hooks";
import { quote } from "../search/builder";
import { INTRINSICS, INTRINSIC_VALUES, SCOPES, completionContext } from "../search/complete";
import { tagNames, tagValues } from "../search/searchApi";
import { errorOffset, traceql } from "../traceql/language";

const SCOPE_NAMES = ["resource", "span", "event", "link", "instrumentation"];

/** Completions at the cursor: fields, a scope's attribute names, or a tag's values. */
async function complete(ctx: CompletionContext) {
  const before = ctx.state.sliceDoc(0, ctx.pos);
  const at = completionContext(before);
  if (!at) return null;
  if (at.kind === "field") {
    if (at.from === ctx.pos && !ctx.explicit) return null;
    const options: Completion[] = [
      ...SCOPES.map((s) => ({ label: s, type: "namespace", boost: 1 })),
      ...INTRINSICS.map((i) => ({ label: i, type: "keyword" })),
    ];
    return { from: at.from, options, validFor: /^[\w:.]*$/ };
  }
  if (at.kind === "attribute") {
    const byScope = await tagNames().catch(() => ({}) as Record<string, string[]>);
    const scopes = at.scope ? [at.scope] : SCOPE_NAMES;
    const names = new Set(scopes.flatMap((s) => byScope[s] ?? []));
    return { from: at.from, options: [...names].sort().map((n) => ({ label: n, type: "property" })), validFor: /^[\w.\-]*$/ };
  }
  const fixed = INTRINSIC_VALUES[at.tag];
  if (fixed) return { from: at.from, options: fixed.map((v) => ({ label: v, type: "enum" })) };
  const values = await tagValues(at.tag).catch(() => []);
  return {
    from: at.from,
    options: values.map((v) => ({
      label: v.type === "string" ? quote(v.value) : v.value,
      type: "text",
    })),
  };
}

const setError = StateEffect.define<number | null>();
const errorMark = StateField.define({
  create: () => Decoration.none,
  update(marks, tr) {
    for (const e of tr.effects) {
      if (e.is(setError)) {
        if (e.value === null) return Decoration.none;
        const from = Math.min(e.value, tr.state.doc.length);
        const to = Math.min(from + 1, tr.state.doc.length);
        if (to <= from) return Decoration.none;
        return Decoration.set([Decoration.mark({ class: "cm-parse-error" }).range(from, to)]);
      }
    }
    return tr.docChanged ? Decoration.none : marks.map(tr.changes);
  },
  provide: (f) => EditorView.decorations.from(f),
});

/** Text put into the editor from outside (a builder, a link); ``seq`` tells one apart from the last. */
export interface Replacement {
  text: string;
  seq: number;
}

interface Props {
  /** The text the editor opens with. */
  initial: string;
  /** Replaces the editor's text whenever its ``seq`` changes. */
  replacement?: Replacement;
  error: string | null;
  onChange: (text: string) => void;
  onRun: () => void;
  /** the query language (TraceQL unless given), its completions and its placeholder */
  dialect?: Dialect;
}

export interface Dialect {
  language: Extension;
  complete: CompletionSource;
  placeholder: string;
}

const TRACEQL: Dialect = {
  language: traceql(),
  complete,
  placeholder: '{ resource.service.name = "checkout" && status = error }',
};

/** An uncontrolled editor: typing never comes back in as a prop (a render that lags behind the
 * keyboard would otherwise write an older text over what was typed since). */
export function QueryEditor({ initial, replacement, error, onChange, onRun, dialect = TRACEQL }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const run = useRef(onRun);
  run.current = onRun;
  const change = useRef(onChange);
  change.current = onChange;

  useEffect(() => {
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: initial,
        extensions: [
          dialect.language,
          errorMark,
          placeholder(dialect.placeholder),
          keymap.of([{ key: "Mod-Enter", run: () => (run.current(), true) }, ...completionKeymap]),
          autocompletion({ override: [dialect.complete], activateOnTyping: true }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) change.current(u.state.doc.toString());
          }),
          EditorView.lineWrapping,
        ],
      }),
    });
    view.current = editor;
    return () => editor.destroy();
  }, []);

  useEffect(() => {
    const editor = view.current;
    if (editor && replacement && replacement.text !== editor.state.doc.toString()) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: replacement.text } });
    }
  }, [replacement?.seq]);

  useEffect(() => {
    const editor = view.current;
    if (!editor) return;
    const at = error ? errorOffset(editor.state.doc.toString(), error) : null;
    editor.dispatch({ effects: setError.of(at) });
  }, [error]);

  return <div class="query-editor" data-testid="query-editor" ref={host} />;
}
