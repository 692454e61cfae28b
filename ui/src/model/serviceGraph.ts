/** The service graph as the Services page draws it: dagre's layout of /api/service-graph's
 * nodes and edges (left to right, callers first), the TraceQL that finds a node's or an
 * edge's traces, and the figures' wording (req/s, %). */

import { Graph, layout } from "@dagrejs/dagre";
import type { GraphDoc, GraphEdge, GraphNode } from "../serviceApi";
import { traceqlString } from "./differences";

export const NODE = { width: 196, height: 66 };
export const PEER = { width: 180, height: 86 }; // a database drawn as a cylinder
export const EDGE_LABEL = { width: 150, height: 34 };

export interface PlacedNode {
  node: GraphNode;
  x: number; // centre
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge {
  edge: GraphEdge;
  points: { x: number; y: number }[];
  label: { x: number; y: number }; // centre of the edge's figures
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

/** What dagre is given: each node's box by its kind, each edge with room for its label.
 * Edges whose ends are not nodes, and self-calls, are left out. */
export function layoutInput(doc: GraphDoc) {
  const ids = new Set(doc.nodes.map((n) => n.id));
  return {
    nodes: doc.nodes.map((n) => ({ id: n.id, ...(n.virtual ? PEER : NODE) })),
    edges: doc.edges
      .filter((e) => e.source !== e.target && ids.has(e.source) && ids.has(e.target))
      .map((e) => ({ source: e.source, target: e.target, ...EDGE_LABEL })),
  };
}

export function layoutGraph(doc: GraphDoc): GraphLayout {
  const input = layoutInput(doc);
  const g = new Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 36, ranksep: 110, edgesep: 24, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of input.nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const e of input.edges) g.setEdge(e.source, e.target, { width: e.width, height: e.height, labelpos: "c" });
  layout(g);
  const byId = new Map(doc.nodes.map((n) => [n.id, n]));
  const edgeOf = new Map(doc.edges.map((e) => [`${e.source}\u0000${e.target}`, e]));
  const graph = g.graph();
  return {
    width: graph.width ?? 0,
    height: graph.height ?? 0,
    nodes: input.nodes.map((n) => {
      const p = g.node(n.id);
      return { node: byId.get(n.id)!, x: p.x, y: p.y, width: n.width, height: n.height };
    }),
    edges: input.edges.map((e) => {
      const p = g.edge(e.source, e.target);
      return {
        edge: edgeOf.get(`${e.source}\u0000${e.target}`)!,
        points: p.points ?? [],
        label: { x: p.x ?? 0, y: p.y ?? 0 },
      };
    }),
  };
}

// the span attributes whose value names an uninstrumented peer, in the order the server reads
// them (querier/dependencies.py)
const PEER_ATTRIBUTES = ["peer.service", "db.name", "db.system", "db.system.name"];

function peerNamed(name: string): string {
  return PEER_ATTRIBUTES.map((a) => `span.${a} = ${traceqlString(name)}`).join(" || ");
}

/** TraceQL finding the traces a node stands for: a service's spans, or the client spans that
 * call an uninstrumented peer. */
export function nodeQuery(node: Pick<GraphNode, "id" | "virtual">): string {
  if (node.virtual) return `{ (kind = client || kind = producer) && (${peerNamed(node.id)}) }`;
  return `{ resource.service.name = ${traceqlString(node.id)} }`;
}

/** TraceQL finding an edge's calls: a span of the callee whose parent is the caller's (the
 * server's definition of an edge), or the caller's client spans naming the peer. */
export function edgeQuery(edge: Pick<GraphEdge, "source" | "target">, targetVirtual: boolean): string {
  const source = traceqlString(edge.source);
  if (targetVirtual) {
    return `{ resource.service.name = ${source} && (kind = client || kind = producer) && (${peerNamed(edge.target)}) }`;
  }
  return `{ resource.service.name = ${source} } > { resource.service.name = ${traceqlString(edge.target)} }`;
}

export function searchUrl(q: string, range: number): string {
  return `/search?${new URLSearchParams({ q, range: String(range) })}`;
}

/** Requests per second as people read them: "0.013 req/s", "2.4 req/s", "130 req/s". */
export function formatRate(perSecond: number, unit = "req/s"): string {
  if (!Number.isFinite(perSecond)) return "–";
  if (perSecond === 0) return `0 ${unit}`;
  if (perSecond < 0.001) return `<0.001 ${unit}`;
  if (perSecond >= 100) return `${Math.round(perSecond)} ${unit}`;
  if (perSecond >= 1) return `${perSecond.toFixed(perSecond >= 10 ? 1 : 2)} ${unit}`;
  return `${Number(perSecond.toPrecision(2))} ${unit}`;
}

/** A fraction as a percentage: "0%", "<0.1%", "25.0%". */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return "–";
  if (fraction === 0) return "0%";
  if (fraction < 0.001) return "<0.1%";
  return `${(fraction * 100).toFixed(1)}%`;
}
