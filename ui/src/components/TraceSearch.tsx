/** The search box within a trace: how many spans match and which one is current ("3 of 7");
 * Enter / Shift+Enter (or the arrows) step through them. */

import "./trace.css";

interface Props {
  query: string;
  count: number;
  /** index of the current match, -1 for none */
  current: number;
  onQuery: (query: string) => void;
  onStep: (delta: 1 | -1) => void;
}

export function TraceSearch({ query, count, current, onQuery, onStep }: Props) {
  return (
    <div class="trace-search" role="search">
      <input
        type="search"
        data-testid="trace-search"
        placeholder="Find in trace (name, service, attribute)"
        value={query}
        onInput={(e) => onQuery((e.target as HTMLInputElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            onStep(e.shiftKey ? -1 : 1);
          } else if (e.key === "Escape") {
            onQuery("");
          }
        }}
      />
      {query.trim() && (
        <span class={`search-count${count ? "" : " none"}`} data-testid="search-count">
          {count ? `${current + 1} of ${count}` : "no match"}
        </span>
      )}
      <button class="small" aria-label="previous match" title="Previous (Shift+Enter)" disabled={!count} onClick={() => onStep(-1)}>
        ↑
      </button>
      <button class="small" aria-label="next match" title="Next (Enter)" disabled={!count} onClick={() => onStep(1)}>
        ↓
      </button>
    </div>
  );
}
