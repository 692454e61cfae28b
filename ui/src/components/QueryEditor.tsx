/** The TraceQL editor: CodeMirror with the TraceQL grammar; Ctrl/Cmd+Enter runs the query, a
 * server parse error is underlined where it points. */

import { EditorState, StateEffect, StateField } from "@codemirror/state";
import { Decoration, EditorView, keymap, placeholder } from "@codemirror/view";
import { useEffect, useRef } from "preact/hooks";
import { errorOffset, traceql } from "../traceql/language";

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
}

/** An uncontrolled editor: typing never comes back in as a prop (a render that lags behind the
 * keyboard would otherwise write an older text over what was typed since). */
export function QueryEditor({ initial, replacement, error, onChange, onRun }: Props) {
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
          traceql(),
          errorMark,
          placeholder('{ resource.service.name = "checkout" && status = error }'),
          keymap.of([{ key: "Mod-Enter", run: () => (run.current(), true) }]),
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
