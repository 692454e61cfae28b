/** Fixed-height rows virtualised with @tanstack/virtual-core for Preact: only the rows in
 * (and a little around) the scroll element's viewport are rendered. */

import {
  Virtualizer,
  elementScroll,
  observeElementOffset,
  observeElementRect,
} from "@tanstack/virtual-core";
import { useLayoutEffect, useReducer, useRef, useState } from "preact/hooks";

/** ``scrollMargin``: what precedes the rows inside the scroll element (a sticky header); it is
 * also kept clear when scrolling a row into view. */
export function useVirtualRows(count: number, rowHeight: number, scrollMargin = 0, overscan = 12) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const options = {
    count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan,
    scrollMargin,
    scrollPaddingStart: scrollMargin,
    scrollToFn: elementScroll,
    observeElementRect,
    observeElementOffset,
    onChange: () => rerender(0),
  };
  const [virtualizer] = useState(() => new Virtualizer<HTMLDivElement, Element>(options));
  virtualizer.setOptions(options);
  useLayoutEffect(() => virtualizer._didMount(), []);
  useLayoutEffect(() => virtualizer._willUpdate());
  return { scrollRef, virtualizer };
}
