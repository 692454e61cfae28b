/** The spans behind one compared node: its path, and each span of A and of B found there (start
 * within its trace, duration, status), with links to both traces. */

import { Link } from "../App";
import { duration } from "../format";
import { Span, Trace } from "../model/trace";
import { DiffNode, pathOf } from "../model/traceDiff";
import { ChangeFacts, SideValue } from "./DiffNodeFacts";
import "./compare.css";

function SpanList({ label, spans, trace }: { label: "A" | "B"; spans: Span[]; trace: Trace }) {
  const side = label.toLowerCase();
  return (
    <div class="node-spans-side">
      <h3>
        <b class={`side-label side-${side}`}>{label}</b> <Link href={`/trace/${trace.traceId}`}>open trace</Link>
      </h3>
      {spans.length === 0 ? (
        <p class="muted">no span at this path</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th class="num">start</th>
              <th class="num">duration</th>
              <th>span</th>
            </tr>
          </thead>
          <tbody>
            {spans.map((s) => (
              <tr class={s.error ? "failed" : undefined}>
                <td class="num">+{duration(s.start - trace.start)}</td>
                <td class="num">{duration(s.duration)}</td>
                <td class="trace-id">
                  {s.spanId}
                  {s.error && <span class="badge error">error</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function DiffNodeSpans({ node, a, b, onClose }: { node: DiffNode; a: Trace; b: Trace; onClose: () => void }) {
  return (
    <aside class="node-spans" data-testid="node-spans">
      <header>
        <h2>
          <span class="service">{node.service}</span> <span class="op">{node.name}</span>
        </h2>
        <button onClick={onClose} aria-label="Close">
          ✕
        </button>
      </header>
      <ol class="node-path">
        {pathOf(node.key).map(([service, name]) => (
          <li>
            <span class="service">{service}</span> <span class="op">{name}</span>
          </li>
        ))}
      </ol>
      <p class="node-spans-facts">
        <SideValue side={node.a} label="A" /> <SideValue side={node.b} label="B" /> <ChangeFacts node={node} />
      </p>
      <SpanList label="A" spans={node.a.spans} trace={a} />
      <SpanList label="B" spans={node.b.spans} trace={b} />
    </aside>
  );
}
