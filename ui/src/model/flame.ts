/** The flame graph's layout: spans stacked by depth under a focus (the whole trace or one
 * span's subtree), x and width as fractions of the focus's time, each span clipped to its
 * parent's drawn interval (a child outliving its parent is drawn within it). Siblings that
 * overlap in time (concurrent calls) would cover each other on one row: they go into lanes,
 * each lane a band of rows of its own below the parent, so no two spans ever overlap. */

import { Span, Trace } from "./trace";

export interface FlameNode {
  span: Span;
  /** row from the top (the focus, or the trace's roots, at 0) */
  level: number;
  /** left edge and width as fractions of the focus interval, 0..1 */
  x: number;
  width: number;
}

export interface FlameLayout {
  nodes: FlameNode[];
  levels: number;
  start: number;
  end: number;
}

interface Placed {
  span: Span | null; // null: the virtual parent of the roots
  a: number;
  b: number;
  kids: Placed[];
  lane: number;
  /** rows its subtree takes, itself included */
  height: number;
  /** first row of each lane of its children, relative to the row below it */
  laneRows: number[];
  row: number;
}

/** Lanes for children sorted by start: a child goes into a lane whose last span ended by its
 * start (the one that ended earliest), else into a new lane. */
function assignLanes(kids: Placed[]): number {
  const heap: [number, number][] = []; // [end, lane], min-heap by end
  const push = (item: [number, number]) => {
    heap.push(item);
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (heap[p][0] <= heap[i][0]) break;
      [heap[p], heap[i]] = [heap[i], heap[p]];
      i = p;
    }
  };
  const pop = () => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l][0] < heap[m][0]) m = l;
        if (r < heap.length && heap[r][0] < heap[m][0]) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  let lanes = 0;
  for (const k of kids) {
    if (heap.length && heap[0][0] <= k.a) k.lane = pop()[1];
    else k.lane = lanes++;
    push([k.b, k.lane]);
  }
  return lanes;
}

export function flameLayout(trace: Trace, focus: Span | null): FlameLayout {
  const start = focus ? focus.start : trace.start;
  const end = focus ? focus.start + focus.duration : trace.end;
  const total = end - start;
  const top: Placed = { span: null, a: start, b: end, kids: [], lane: 0, height: 0, laneRows: [], row: -1 };
  // depth first, clipping each span to its parent's drawn interval
  const order: Placed[] = [];
  const stack: [Span, Placed][] = [];
  const tops = focus ? [focus] : trace.roots;
  for (let i = tops.length - 1; i >= 0; i--) stack.push([tops[i], top]);
  while (stack.length) {
    const [span, parent] = stack.pop()!;
    const a = Math.max(span.start, parent.a);
    const b = Math.min(span.start + span.duration, parent.b);
    if (b < a) continue; // wholly outside its parent's drawn interval
    const node: Placed = { span, a, b, kids: [], lane: 0, height: 1, laneRows: [], row: 0 };
    parent.kids.push(node);
    order.push(node);
    for (let i = span.children.length - 1; i >= 0; i--) stack.push([span.children[i], node]);
  }
  // heights bottom up: a node's row, then its children's lanes one band after another
  for (const node of [...order.reverse(), top]) {
    node.kids.sort((x, y) => x.a - y.a);
    const lanes = assignLanes(node.kids);
    const laneHeight = new Array<number>(lanes).fill(0);
    for (const k of node.kids) laneHeight[k.lane] = Math.max(laneHeight[k.lane], k.height);
    let at = 0;
    node.laneRows = laneHeight.map((h) => ((at += h), at - h));
    node.height = (node.span ? 1 : 0) + at;
  }
  // rows top down, in depth-first order again
  const nodes: FlameNode[] = [];
  let levels = 0;
  const walk: Placed[] = [...top.kids].reverse();
  for (const k of top.kids) k.row = top.laneRows[k.lane];
  while (walk.length) {
    const node = walk.pop()!;
    nodes.push({
      span: node.span!,
      level: node.row,
      x: total > 0 ? (node.a - start) / total : 0,
      width: total > 0 ? (node.b - node.a) / total : 1,
    });
    levels = Math.max(levels, node.row + 1);
    for (const k of node.kids) k.row = node.row + 1 + node.laneRows[k.lane];
    for (let i = node.kids.length - 1; i >= 0; i--) walk.push(node.kids[i]);
  }
  return { nodes, levels, start, end };
}
