/** The critical path of a trace: the parts of spans on its longest blocking chain, found the
 * way Jaeger UI finds it. From each root, walk back from the span's end: the child that
 * finished last (before the point reached) is on the path, from its end up to that point the
 * parent itself is; descend into that child, and when a span has no such child, its time back
 * to its start is on the path and the walk returns to its parent at that start. Children are
 * first clipped to their parent's (clipped) interval, those wholly outside it are dropped with
 * their subtrees, and a consumer under a producer is not blocking (pruned). */

import { KIND_CONSUMER, KIND_PRODUCER, Span, Trace } from "./trace";

/** A stretch of time [start, end] (unix ms) during which ``spanId`` is on the critical path. */
export interface CriticalSection {
  spanId: string;
  start: number;
  end: number;
}

interface Clipped {
  span: Span;
  start: number;
  end: number;
  parent: Clipped | null;
  /** blocking children kept after clipping, by end time ascending (ties: earlier child last) */
  byEnd: Clipped[];
}

/** The subtree of ``root`` as the walk sees it: clipped, pruned, children sorted by end. */
function clipTree(root: Span): Clipped {
  const top: Clipped = { span: root, start: root.start, end: root.start + root.duration, parent: null, byEnd: [] };
  const stack: Clipped[] = [top];
  while (stack.length) {
    const node = stack.pop()!;
    const kept: [Clipped, number][] = [];
    node.span.children.forEach((child, order) => {
      if (node.span.kind === KIND_PRODUCER && child.kind === KIND_CONSUMER) return;
      let start = child.start;
      let end = child.start + child.duration;
      if (start >= node.start) {
        if (start >= node.end) return;
        end = Math.min(end, node.end);
      } else {
        if (end <= node.start) return;
        start = node.start;
        end = Math.min(end, node.end);
      }
      kept.push([{ span: child, start, end, parent: node, byEnd: [] }, order]);
    });
    kept.sort((a, b) => a[0].end - b[0].end || b[1] - a[1]);
    node.byEnd = kept.map(([c]) => c);
    stack.push(...node.byEnd);
  }
  return top;
}

/** The last child in ``byEnd`` that ends strictly before ``before`` (or the last of all). */
function lastFinishing(byEnd: Clipped[], before: number | undefined): Clipped | undefined {
  if (before === undefined) return byEnd[byEnd.length - 1];
  let lo = 0;
  let hi = byEnd.length; // first index whose end >= before
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byEnd[mid].end < before) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? byEnd[lo - 1] : undefined;
}

/** The critical path's sections, root by root, each walked from its end backwards. */
export function criticalPath(trace: Trace): CriticalSection[] {
  const sections: CriticalSection[] = [];
  for (const root of trace.roots) {
    let node: Clipped | null = clipTree(root);
    let returningAt: number | undefined;
    while (node) {
      const child = lastFinishing(node.byEnd, returningAt);
      const end = returningAt ?? node.end;
      const start = child ? child.end : node.start;
      if (start !== end) sections.push({ spanId: node.span.spanId, start, end });
      if (child) {
        node = child;
        returningAt = undefined;
      } else {
        returningAt = node.start;
        node = node.parent;
      }
    }
  }
  return sections;
}

/** Sections by span id, for drawing them on the span's row. */
export function sectionsBySpan(sections: CriticalSection[]): Map<string, CriticalSection[]> {
  const out = new Map<string, CriticalSection[]>();
  for (const s of sections) {
    const list = out.get(s.spanId);
    if (list) list.push(s);
    else out.set(s.spanId, [s]);
  }
  return out;
}
