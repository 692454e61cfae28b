/** For the model's tests: a trace built from compact span descriptions. */

import { Span, Trace, buildTree } from "./trace";

export interface SpanSpec {
  id: string;
  parent?: string;
  start: number;
  end: number;
  service?: string;
  name?: string;
  kind?: number;
  error?: boolean;
}

export function makeSpan(spec: SpanSpec): Span {
  return {
    spanId: spec.id,
    parentId: spec.parent ?? null,
    traceId: "t",
    name: spec.name ?? spec.id,
    service: spec.service ?? "svc",
    kind: spec.kind ?? 1,
    start: spec.start,
    duration: spec.end - spec.start,
    error: spec.error ?? false,
    statusMessage: "",
    attributes: [],
    resource: [],
    events: [],
    children: [],
    depth: 0,
    orphan: false,
  };
}

export function makeTrace(specs: SpanSpec[]): Trace {
  return buildTree(specs.map(makeSpan));
}
