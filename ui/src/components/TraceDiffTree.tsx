/** The compared span tree as an indented table: one row per path, A's and B's spans side by
 * side, and what changed. */

import { serviceColor } from "./colors";
import { ChangeFacts, SideValue, changeClasses } from "./DiffNodeFacts";
import { DiffNode } from "../model/traceDiff";
import "./compare.css";

interface Props {
  nodes: DiffNode[];
  selected: string | null;
  onSelect: (key: string) => void;
}

export function TraceDiffTree({ nodes, selected, onSelect }: Props) {
  return (
    <table class="diff-tree" data-testid="diff-tree">
      <thead>
        <tr>
          <th>Service &amp; operation</th>
          <th class="num">A</th>
          <th class="num">B</th>
          <th>Change</th>
        </tr>
      </thead>
      <tbody>
        {nodes.map((n) => (
          <tr
            class={`diff-row ${changeClasses(n)}${selected === n.key ? " selected" : ""}`}
            data-testid="diff-node"
            data-service={n.service}
            data-name={n.name}
            data-presence={n.presence}
            data-count={n.count}
            data-timing={n.timing ?? ""}
            onClick={() => onSelect(n.key)}
          >
            <td class="diff-label" style={{ paddingLeft: `${8 + n.depth * 18}px` }} title={`${n.service} ${n.name}`}>
              <span class="diff-label-text">
                <span class="swatch" style={{ background: serviceColor(n.service) }} />
                <span class="service">{n.service}</span> <span class="op">{n.name}</span>
              </span>
            </td>
            <td class="num">
              <SideValue side={n.a} />
            </td>
            <td class="num">
              <SideValue side={n.b} />
            </td>
            <td>
              <ChangeFacts node={n} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
