/** The service graph drawn as SVG from dagre's layout: services as boxes, uninstrumented
 * peers (databases) as dashed cylinders, calls as arrows, each with its request rate, error
 * rate and p95. Clicking a node or an edge opens what it stands for. */

import { useMemo } from "preact/hooks";
import { duration } from "../format";
import { PlacedEdge, PlacedNode, formatPercent, formatRate, layoutGraph } from "../model/serviceGraph";
import type { Figures, GraphDoc, GraphEdge, GraphNode } from "../serviceApi";
import "./services.css";

interface Props {
  doc: GraphDoc;
  onOpenNode: (node: GraphNode) => void;
  onOpenEdge: (edge: GraphEdge) => void;
  onOpenService: (name: string) => void;
}

const ms = (s: number | null) => (s === null ? "–" : duration(s * 1000));

/** A smooth path through dagre's points (quadratic curves between their midpoints). */
function curve(points: { x: number; y: number }[]): string {
  if (points.length === 0) return "";
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i];
    const n = points[i + 1];
    d += ` Q${p.x},${p.y} ${(p.x + n.x) / 2},${(p.y + n.y) / 2}`;
  }
  const last = points[points.length - 1];
  return d + ` L${last.x},${last.y}`;
}

function cylinder(x: number, y: number, w: number, h: number): string {
  const ry = 8;
  const [l, r, t, b] = [x - w / 2, x + w / 2, y - h / 2 + ry, y + h / 2 - ry];
  return (
    `M${l},${t} A${w / 2},${ry} 0 0 1 ${r},${t} L${r},${b} A${w / 2},${ry} 0 0 1 ${l},${b} Z ` +
    `M${l},${t} A${w / 2},${ry} 0 0 0 ${r},${t}`
  );
}

function shorten(name: string, max: number): string {
  return name.length > max ? name.slice(0, max - 1) + "…" : name;
}

function activate(e: KeyboardEvent, go: () => void) {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    go();
  }
}

function RateAndErrors({ f }: { f: Figures }) {
  return (
    <>
      {formatRate(f.requestRate)} · <tspan class={f.errors ? "err" : undefined}>{formatPercent(f.errorRate)} err</tspan>
    </>
  );
}

function NodeShape({ p, onOpen, onOpenService }: { p: PlacedNode; onOpen: () => void; onOpenService: () => void }) {
  const { node: n, x, y, width: w, height: h } = p;
  const top = y - h / 2;
  const classes = ["g-node", n.virtual ? "virtual" : "", n.errors ? "failing" : ""].join(" ");
  return (
    <g
      class={classes}
      data-testid="graph-node"
      data-id={n.id}
      data-virtual={String(n.virtual)}
      data-rate={n.requestRate}
      data-error-rate={n.errorRate}
      tabIndex={0}
      role="link"
      aria-label={`traces of ${n.id}`}
      onClick={onOpen}
      onKeyDown={(e) => activate(e, onOpen)}
    >
      <title>
        {n.id}: {n.requests} {n.virtual ? "calls to it" : "requests"}, {n.errors} failed; p50 {ms(n.p50Seconds)}, p95{" "}
        {ms(n.p95Seconds)}, p99 {ms(n.p99Seconds)}. Click for its traces.
      </title>
      {n.virtual ? (
        <path class="box" d={cylinder(x, y, w, h)} />
      ) : (
        <rect class="box" x={x - w / 2} y={top} width={w} height={h} rx={8} />
      )}
      {n.virtual && (
        <text class="g-kind" x={x} y={top + 30} text-anchor="middle">
          uninstrumented peer
        </text>
      )}
      <text class="g-name" x={x} y={top + (n.virtual ? 46 : 22)} text-anchor="middle">
        {shorten(n.id, 24)}
      </text>
      <text class="g-figures" x={x} y={top + (n.virtual ? 61 : 39)} text-anchor="middle" data-testid="node-figures">
        <RateAndErrors f={n} />
      </text>
      <text class="g-figures" x={x} y={top + (n.virtual ? 75 : 55)} text-anchor="middle">
        p95 {ms(n.p95Seconds)}
      </text>
      {!n.virtual && (
        <text
          class="g-open"
          x={x + w / 2 - 8}
          y={top + 14}
          text-anchor="end"
          data-testid="open-service"
          onClick={(e) => {
            e.stopPropagation();
            onOpenService();
          }}
        >
          <title>the service's page</title>
          details ›
        </text>
      )}
    </g>
  );
}

function EdgeShape({ p, onOpen }: { p: PlacedEdge; onOpen: () => void }) {
  const e = p.edge;
  const d = curve(p.points);
  const { x, y } = p.label;
  return (
    <g
      class={e.errors ? "g-edge failing" : "g-edge"}
      data-testid="graph-edge"
      data-source={e.source}
      data-target={e.target}
      data-rate={e.requestRate}
      data-error-rate={e.errorRate}
      tabIndex={0}
      role="link"
      aria-label={`calls from ${e.source} to ${e.target}`}
      onClick={onOpen}
      onKeyDown={(ev) => activate(ev, onOpen)}
    >
      <title>
        {e.source} → {e.target}: {e.requests} calls, {e.errors} failed; p50 {ms(e.p50Seconds)}, p95 {ms(e.p95Seconds)}, p99{" "}
        {ms(e.p99Seconds)}. Click for these calls' traces.
      </title>
      <path class="hit" d={d} />
      <path class={"line"} d={d} marker-end={e.errors ? "url(#arrow-failing)" : "url(#arrow)"} />
      <rect class="label-bg" x={x - 70} y={y - 15} width={140} height={30} rx={4} />
      <text x={x} y={y - 2} text-anchor="middle" data-testid="edge-figures">
        <RateAndErrors f={e} />
      </text>
      <text x={x} y={y + 11} text-anchor="middle">
        p95 {ms(e.p95Seconds)}
      </text>
    </g>
  );
}

export function ServiceGraph({ doc, onOpenNode, onOpenEdge, onOpenService }: Props) {
  const g = useMemo(() => layoutGraph(doc), [doc]);
  if (g.nodes.length === 0) return <p class="svc-graph svc-empty muted">No services sent spans in this range.</p>;
  const virtual = new Set(doc.nodes.filter((n) => n.virtual).map((n) => n.id));
  return (
    <div class="svc-graph" data-testid="service-graph">
      <svg
        viewBox={`0 0 ${g.width} ${g.height}`}
        style={{ width: "100%", maxWidth: `${g.width}px`, height: "auto" }}
        role="img"
        aria-label="service graph"
      >
        <defs>
          {[
            ["arrow", "var(--muted)"],
            ["arrow-failing", "var(--error)"],
          ].map(([id, fill]) => (
            <marker id={id} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" style={{ fill }} />
            </marker>
          ))}
        </defs>
        {g.edges.map((p) => (
          <EdgeShape key={`${p.edge.source}>${p.edge.target}`} p={p} onOpen={() => onOpenEdge(p.edge)} />
        ))}
        {g.nodes.map((p) => (
          <NodeShape key={p.node.id} p={p} onOpen={() => onOpenNode(p.node)} onOpenService={() => onOpenService(p.node.id)} />
        ))}
      </svg>
      {virtual.size > 0 && (
        <p class="svc-note" style={{ padding: "0 10px 8px" }}>
          Dashed cylinders are uninstrumented peers (databases, external APIs) named by client spans; their figures are the calls
          made to them.
        </p>
      )}
    </div>
  );
}
