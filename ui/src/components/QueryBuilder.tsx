/** The search builder: service, span name, status, duration range and attribute filters, with
 * choices from the tag APIs; every change writes its TraceQL into the editor. */

import { useEffect, useState } from "preact/hooks";
import { AttributeFilter, BuilderState, buildTraceQL, builderProblems, quote } from "../search/builder";
import { TagValue, tagNames, tagValues } from "../search/searchApi";

interface Props {
  state: BuilderState;
  onChange: (state: BuilderState, traceql: string) => void;
}

const OPS: AttributeFilter["op"][] = ["=", "!=", "=~", "!~", ">", ">=", "<", "<="];
const SCOPES = ["resource", "span", "event", "link", "instrumentation"];

function useValues(tag: string, q?: string): TagValue[] {
  const [values, setValues] = useState<TagValue[]>([]);
  useEffect(() => {
    let live = true;
    if (!tag) return setValues([]);
    tagValues(tag, q)
      .then((v) => live && setValues(v))
      .catch(() => live && setValues([]));
    return () => {
      live = false;
    };
  }, [tag, q]);
  return values;
}

function FilterRow({ filter, keys, onChange, onRemove }: {
  filter: AttributeFilter;
  keys: string[];
  onChange: (f: AttributeFilter) => void;
  onRemove: () => void;
}) {
  const values = useValues(keys.includes(filter.key) ? filter.key : "");
  const list = `values-${filter.key.replace(/[^\w]/g, "_")}`;
  return (
    <div class="filter-row" data-testid="builder-filter">
      <input
        list="builder-keys"
        placeholder="span.http.route"
        aria-label="attribute"
        value={filter.key}
        onInput={(e) => onChange({ ...filter, key: e.currentTarget.value })}
      />
      <select aria-label="operator" value={filter.op} onChange={(e) => onChange({ ...filter, op: e.currentTarget.value as AttributeFilter["op"] })}>
        {OPS.map((op) => (
          <option value={op}>{op}</option>
        ))}
      </select>
      <input
        list={list}
        placeholder="value"
        aria-label="value"
        value={filter.value}
        onInput={(e) => onChange({ ...filter, value: e.currentTarget.value })}
      />
      <datalist id={list}>
        {values.map((v) => (
          <option value={v.value} />
        ))}
      </datalist>
      <button class="icon" aria-label="remove filter" onClick={onRemove}>
        ×
      </button>
    </div>
  );
}

export function QueryBuilder({ state, onChange }: Props) {
  const services = useValues("resource.service.name");
  const names = useValues("name", state.service ? `{ resource.service.name = ${quote(state.service)} }` : undefined);
  const [keys, setKeys] = useState<string[]>([]);
  useEffect(() => {
    tagNames()
      .then((byScope) => setKeys(SCOPES.flatMap((scope) => (byScope[scope] ?? []).map((t) => `${scope}.${t}`))))
      .catch(() => setKeys([]));
  }, []);
  const set = (patch: Partial<BuilderState>) => {
    const next = { ...state, ...patch };
    onChange(next, buildTraceQL(next));
  };
  const problems = builderProblems(state);

  return (
    <div class="builder" data-testid="builder">
      <label>
        Service
        <select data-testid="builder-service" value={state.service} onChange={(e) => set({ service: e.currentTarget.value, name: "" })}>
          <option value="">any</option>
          {services.map((v) => (
            <option value={v.value}>{v.value}</option>
          ))}
        </select>
      </label>
      <label>
        Span name
        <select data-testid="builder-name" value={state.name} onChange={(e) => set({ name: e.currentTarget.value })}>
          <option value="">any</option>
          {names.map((v) => (
            <option value={v.value}>{v.value}</option>
          ))}
        </select>
      </label>
      <label>
        Status
        <select data-testid="builder-status" value={state.status} onChange={(e) => set({ status: e.currentTarget.value as BuilderState["status"] })}>
          <option value="">any</option>
          <option value="error">error</option>
          <option value="ok">ok</option>
          <option value="unset">unset</option>
        </select>
      </label>
      <label>
        Duration
        <span class="duration-range">
          <input
            data-testid="builder-min"
            placeholder="min: 100ms"
            value={state.minDuration}
            onInput={(e) => set({ minDuration: e.currentTarget.value })}
          />
          –
          <input
            data-testid="builder-max"
            placeholder="max: 2s"
            value={state.maxDuration}
            onInput={(e) => set({ maxDuration: e.currentTarget.value })}
          />
        </span>
      </label>
      <div class="filters">
        {state.filters.map((f, i) => (
          <FilterRow
            filter={f}
            keys={keys}
            onChange={(next) => set({ filters: state.filters.map((g, j) => (j === i ? next : g)) })}
            onRemove={() => set({ filters: state.filters.filter((_, j) => j !== i) })}
          />
        ))}
        <button data-testid="builder-add-filter" onClick={() => set({ filters: [...state.filters, { key: "", op: "=", value: "" }] })}>
          + Attribute filter
        </button>
        <datalist id="builder-keys">
          {keys.map((k) => (
            <option value={k} />
          ))}
        </datalist>
      </div>
      {problems.length > 0 && (
        <ul class="error builder-problems">
          {problems.map((p) => (
            <li>{p}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
