/** The time range picker: a button naming the range, opening relative presets and an absolute
 * from/to pair (local time). */

import { useState } from "preact/hooks";
import { PRESETS, TimeRange, fromLocalInput, rangeLabel, resolveRange, toLocalInput } from "../search/timeRange";

interface Props {
  range: TimeRange;
  onChange: (range: TimeRange) => void;
}

export function TimeRangePicker({ range, onChange }: Props) {
  const [open, setOpen] = useState(false);
  const resolved = resolveRange(range, Date.now() / 1000);
  const [from, setFrom] = useState(toLocalInput(resolved.start));
  const [to, setTo] = useState(toLocalInput(resolved.end));
  const start = fromLocalInput(from);
  const end = fromLocalInput(to);
  const invalid = start === null || end === null ? "both instants are needed" : end <= start ? "“to” must be after “from”" : null;

  function toggle() {
    if (!open) {
      setFrom(toLocalInput(resolved.start));
      setTo(toLocalInput(resolved.end));
    }
    setOpen(!open);
  }

  function choose(next: TimeRange) {
    setOpen(false);
    onChange(next);
  }

  return (
    <div class="range-picker">
      <button data-testid="range" class="range-button" aria-expanded={open} onClick={toggle}>
        <span aria-hidden="true">◷</span> {rangeLabel(range)}
      </button>
      {open && (
        <div class="range-panel" data-testid="range-panel">
          <ul class="presets">
            {PRESETS.map(([label, seconds]) => (
              <li>
                <button
                  class={range.kind === "relative" && range.seconds === seconds ? "chosen" : ""}
                  onClick={() => choose({ kind: "relative", seconds })}
                >
                  {label}
                </button>
              </li>
            ))}
          </ul>
          <form
            class="absolute"
            onSubmit={(e) => {
              e.preventDefault();
              if (!invalid) choose({ kind: "absolute", start: start!, end: end! });
            }}
          >
            <label>
              From
              <input type="datetime-local" data-testid="range-from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
            </label>
            <label>
              To
              <input type="datetime-local" data-testid="range-to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
            </label>
            {invalid && <p class="error">{invalid}</p>}
            <button class="primary" type="submit" data-testid="range-apply" disabled={invalid !== null}>
              Apply range
            </button>
          </form>
        </div>
      )}
    </div>
  );
}
