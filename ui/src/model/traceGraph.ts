/** The services of one trace and the calls between them: an edge from a span's service to its
 * child's when they differ, counted per call, with the calls that failed. */

import { Trace } from "./trace";

export interface ServiceNode {
  service: string;
  spans: number;
  errors: number;
}

export interface ServiceEdge {
  from: string;
  to: string;
  calls: number;
  errors: number;
}

export function traceGraph(trace: Trace): { nodes: ServiceNode[]; edges: ServiceEdge[] } {
  const nodes = new Map<string, ServiceNode>();
  const edges = new Map<string, ServiceEdge>();
  for (const s of trace.spans) {
    const node = nodes.get(s.service) ?? { service: s.service, spans: 0, errors: 0 };
    node.spans += 1;
    if (s.error) node.errors += 1;
    nodes.set(s.service, node);
    const parent = s.parent;
    if (!parent || parent.service === s.service) continue;
    const key = `${parent.service}\u0000${s.service}`;
    const edge = edges.get(key) ?? { from: parent.service, to: s.service, calls: 0, errors: 0 };
    edge.calls += 1;
    if (s.error) edge.errors += 1;
    edges.set(key, edge);
  }
  const byName = (a: string, b: string) => a.localeCompare(b);
  return {
    nodes: [...nodes.values()].sort((a, b) => byName(a.service, b.service)),
    edges: [...edges.values()].sort((a, b) => byName(a.from, b.from) || byName(a.to, b.to)),
  };
}
