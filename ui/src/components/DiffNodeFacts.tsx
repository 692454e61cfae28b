/** The pieces of one compared node that the graph, the tree and the details all show: a side's
 * spans ("3 × 12.0ms"), the change badges ("only in A", "slower in B") and the duration change. */

import { duration } from "../format";
import { DiffNode, DiffSide, changeLabels, deltaText } from "../model/traceDiff";

/** The class names that colour a node by what changed. */
export function changeClasses(node: DiffNode): string {
  const out: string[] = [node.presence];
  if (node.count !== "same") out.push(node.count);
  if (node.timing && node.timing !== "same") out.push(node.timing);
  return out.join(" ");
}

/** One side's spans at a node: "—" for none, the duration for one, "count × mean" for more. */
export function SideValue({ side, label }: { side: DiffSide; label?: "A" | "B" }) {
  const text = side.count === 0 ? "—" : side.count === 1 ? duration(side.mean) : `${side.count} × ${duration(side.mean)}`;
  const title =
    side.count > 1 ? `${side.count} spans, ${duration(side.total)} in all, ${duration(side.mean)} on average` : undefined;
  return (
    <span class={`side-value${side.count === 0 ? " absent" : ""}`} title={title} data-testid={label ? `side-${label.toLowerCase()}` : undefined}>
      {label && <b class={`side-label side-${label.toLowerCase()}`}>{label}</b>}
      <span class="side-text">{text}</span>
      {side.errors > 0 && (
        <span class="badge error" title={`${side.errors} failed`}>
          !
        </span>
      )}
    </span>
  );
}

/** What changed at a node, as badges, then B's duration change against A's. */
export function ChangeFacts({ node }: { node: DiffNode }) {
  const labels = changeLabels(node);
  const delta = deltaText(node);
  return (
    <span class="change-facts">
      {labels.map((l) => (
        <span class={`change-badge ${l.replace(/ /g, "-")}`} data-testid="change-badge">
          {l}
        </span>
      ))}
      {delta && node.delta !== 0 && (
        <span class={`delta ${node.timing}`} data-testid="delta">
          {delta}
        </span>
      )}
    </span>
  );
}
