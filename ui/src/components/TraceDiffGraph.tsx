/** The compared span tree as a graph laid out by dagre, left to right: a card per path with A's
 * and B's spans side by side and what changed, edges from parent to child paths. */

import dagre from "@dagrejs/dagre";
import { useMemo } from "preact/hooks";
import { serviceColor } from "./colors";
import { ChangeFacts, SideValue, changeClasses } from "./DiffNodeFacts";
import { DiffNode } from "../model/traceDiff";
import "./compare.css";

const NODE_W = 264;
const NODE_H = 92;

interface Props {
  nodes: DiffNode[];
  selected: string | null;
  onSelect: (key: string) => void;
}

interface Layout {
  width: number;
  height: number;
  boxes: { node: DiffNode; x: number; y: number }[];
  edges: { to: DiffNode; d: string }[];
}

/** Positions for ``nodes`` (each one's parent is among them or is null); siblings keep their
 * order (by start) from top to bottom. */
function layout(nodes: DiffNode[]): Layout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const shown = new Set(nodes.map((n) => n.key));
  const constraints: { left: string; right: string }[] = [];
  for (const n of nodes) g.setNode(n.key, { width: NODE_W, height: NODE_H });
  for (const n of nodes) {
    if (n.parent && shown.has(n.parent.key)) g.setEdge(n.parent.key, n.key);
    const kids = n.children.filter((c) => shown.has(c.key));
    for (let i = 1; i < kids.length; i++) constraints.push({ left: kids[i - 1].key, right: kids[i].key });
  }
  dagre.layout(g, { constraints });
  const at = new Map(nodes.map((node) => {
    const p = g.node(node.key);
    return [node.key, { node, x: p.x - NODE_W / 2, y: p.y - NODE_H / 2 }];
  }));
  // parent's right side to child's left side
  const edges = nodes
    .filter((n) => n.parent && shown.has(n.parent.key))
    .map((to) => {
      const p = at.get(to.parent!.key)!;
      const c = at.get(to.key)!;
      const [x1, y1, x2, y2] = [p.x + NODE_W, p.y + NODE_H / 2, c.x - 1, c.y + NODE_H / 2];
      const mid = (x1 + x2) / 2;
      return { to, d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` };
    });
  const label = g.graph();
  return { width: label.width ?? 0, height: label.height ?? 0, boxes: [...at.values()], edges };
}

export function TraceDiffGraph({ nodes, selected, onSelect }: Props) {
  const { width, height, boxes, edges } = useMemo(() => layout(nodes), [nodes]);
  return (
    <div class="diff-graph" data-testid="diff-graph">
      <div class="diff-canvas" style={{ width: `${width}px`, height: `${height}px` }}>
        <svg class="diff-edges" width={width} height={height} aria-hidden="true">
          <defs>
            <marker id="diff-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto">
              <path d="M0,0 L8,4 L0,8 z" class="diff-arrowhead" />
            </marker>
          </defs>
          {edges.map((e) => (
            <path d={e.d} class={`diff-edge ${e.to.presence}`} marker-end="url(#diff-arrow)" />
          ))}
        </svg>
        {boxes.map(({ node: n, x, y }) => (
          <div
            class={`diff-card ${changeClasses(n)}${selected === n.key ? " selected" : ""}`}
            style={{ left: `${x}px`, top: `${y}px`, width: `${NODE_W}px`, height: `${NODE_H}px` }}
            data-testid="diff-node"
            data-service={n.service}
            data-name={n.name}
            data-presence={n.presence}
            data-count={n.count}
            data-timing={n.timing ?? ""}
            title={`${n.service} ${n.name}`}
            onClick={() => onSelect(n.key)}
          >
            <div class="card-title">
              <span class="swatch" style={{ background: serviceColor(n.service) }} />
              <span class="service">{n.service}</span>
            </div>
            <div class="card-op op">{n.name}</div>
            <div class="card-sides">
              <SideValue side={n.a} label="A" />
              <SideValue side={n.b} label="B" />
            </div>
            <div class="card-change">
              <ChangeFacts node={n} />
            </div>
          </div>
        ))}
      </div>
    </div>
  );
}
