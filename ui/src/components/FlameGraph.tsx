/** The flame graph: spans stacked by depth, width by duration (time runs across), coloured by
 * service; click a span to zoom into its subtree (and select it), the trail above goes back. */

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { duration } from "../format";
import { flameLayout } from "../model/flame";
import { Span, Trace, ancestors } from "../model/trace";
import { serviceColor } from "./colors";
import "./trace.css";

const LEVEL_H = 22;

interface Props {
  trace: Trace;
  selected: Span | null;
  matches: ReadonlySet<Span>;
  onSelect: (span: Span) => void;
}

export function FlameGraph({ trace, selected, matches, onSelect }: Props) {
  const [focus, setFocus] = useState<Span | null>(null);
  useEffect(() => setFocus(null), [trace]);
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const el = box.current!;
    const observer = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.observe(el);
    setWidth(el.clientWidth);
    return () => observer.disconnect();
  }, []);
  const layout = useMemo(() => flameLayout(trace, focus), [trace, focus]);
  const trail = focus ? [...ancestors(focus)].reverse() : [];

  return (
    <div class="flame" data-testid="flame">
      <nav class="flame-trail" data-testid="flame-trail">
        <button class="link-button" onClick={() => setFocus(null)} disabled={!focus}>
          Whole trace
        </button>
        {trail.map((s) => (
          <>
            <span class="muted"> › </span>
            <button class="link-button" onClick={() => setFocus(s)}>
              {s.name}
            </button>
          </>
        ))}
        {focus && (
          <>
            <span class="muted"> › </span>
            <strong data-testid="flame-focus">{focus.name}</strong>
          </>
        )}
        <span class="muted flame-window">
          {" "}
          · {duration(layout.end - layout.start)}
        </span>
      </nav>
      <div class="flame-canvas" ref={box} style={{ height: `${layout.levels * LEVEL_H + 2}px` }}>
        {width > 0 &&
          layout.nodes.map((n) => {
            const px = n.width * width;
            if (px < 0.5) return null; // too thin to see or click: its ancestors show its time
            const s = n.span;
            const classes = ["flame-node"];
            if (s.error) classes.push("failed");
            if (s === selected) classes.push("selected");
            if (matches.has(s)) classes.push("match");
            return (
              <div
                class={classes.join(" ")}
                data-testid="flame-node"
                data-span-id={s.spanId}
                title={`${s.service} ${s.name} · ${duration(s.duration)}`}
                style={{
                  left: `${n.x * width}px`,
                  width: `${Math.max(px - 1, 0.5)}px`,
                  top: `${n.level * LEVEL_H}px`,
                  background: serviceColor(s.service),
                }}
                onClick={() => {
                  onSelect(s);
                  if (s.children.length) setFocus(s);
                }}
              >
                {px > 40 && (
                  <span>
                    {s.name} <span class="flame-dur">{duration(s.duration)}</span>
                  </span>
                )}
              </div>
            );
          })}
      </div>
    </div>
  );
}
