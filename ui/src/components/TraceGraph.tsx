/** The services of this trace and the calls between them, laid out with dagre: nodes coloured
 * by service with their span and error counts, edges labelled with how many calls (and how
 * many failed). */

import { Graph, layout } from "@dagrejs/dagre";
import { useMemo } from "preact/hooks";
import { Trace } from "../model/trace";
import { ServiceEdge, ServiceNode, traceGraph } from "../model/traceGraph";
import { serviceColor } from "./colors";
import "./trace.css";

const NODE_H = 52;

interface Placed {
  nodes: { node: ServiceNode; x: number; y: number; width: number }[];
  edges: { edge: ServiceEdge; points: { x: number; y: number }[]; x: number; y: number }[];
  width: number;
  height: number;
}

function place(trace: Trace): Placed {
  const { nodes, edges } = traceGraph(trace);
  const g = new Graph();
  g.setGraph({ rankdir: "LR", nodesep: 28, ranksep: 90, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.service, { width: Math.max(120, n.service.length * 8 + 32), height: NODE_H });
  for (const e of edges) g.setEdge(e.from, e.to, { width: 70, height: 18, labelpos: "c" });
  layout(g);
  const graph = g.graph();
  return {
    nodes: nodes.map((node) => {
      const p = g.node(node.service);
      return { node, x: p.x ?? 0, y: p.y ?? 0, width: p.width };
    }),
    edges: edges.map((edge) => {
      const p = g.edge(edge.from, edge.to);
      return { edge, points: p.points ?? [], x: p.x ?? 0, y: p.y ?? 0 };
    }),
    width: graph.width ?? 0,
    height: graph.height ?? 0,
  };
}

export function TraceGraph({ trace }: { trace: Trace }) {
  const placed = useMemo(() => place(trace), [trace]);
  return (
    <div class="trace-graph" data-testid="trace-graph">
      <svg width={placed.width} height={placed.height} viewBox={`0 0 ${placed.width} ${placed.height}`} role="img">
        <defs>
          <marker id="tg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="tg-arrow" />
          </marker>
        </defs>
        {placed.edges.map(({ edge, points, x, y }) => (
          <g class={`tg-edge${edge.errors ? " failed" : ""}`} data-testid="graph-edge" data-from={edge.from} data-to={edge.to}>
            <path d={points.map((p, i) => `${i ? "L" : "M"} ${p.x} ${p.y}`).join(" ")} marker-end="url(#tg-arrow)" />
            <text x={x} y={y + 4} text-anchor="middle" data-testid="graph-edge-label">
              {edge.calls} {edge.calls === 1 ? "call" : "calls"}
              {edge.errors > 0 ? `, ${edge.errors} failed` : ""}
            </text>
          </g>
        ))}
        {placed.nodes.map(({ node, x, y, width }) => (
          <g class="tg-node" data-testid="graph-node" data-service={node.service} transform={`translate(${x - width / 2} ${y - NODE_H / 2})`}>
            <rect width={width} height={NODE_H} rx="6" style={{ stroke: serviceColor(node.service) }} />
            <rect width="6" height={NODE_H} rx="3" style={{ fill: serviceColor(node.service) }} />
            <text x="14" y="20" class="tg-name">
              {node.service}
            </text>
            <text x="14" y="38" class="tg-sub">
              {node.spans} {node.spans === 1 ? "span" : "spans"}
              {node.errors > 0 && <tspan class="tg-errors">{` · ${node.errors} ${node.errors === 1 ? "error" : "errors"}`}</tspan>}
            </text>
          </g>
        ))}
      </svg>
    </div>
  );
}
