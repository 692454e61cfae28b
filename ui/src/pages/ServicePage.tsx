/** A service's page (/services/<name>?range=<s>): its request rate, error rate and duration
 * percentiles over time (TraceQL metrics, uPlot charts, exemplars opening their trace), its
 * operations ranked, and what is different about its errors and its slowest requests. */

import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError } from "../api";
import { Link, navigate } from "../App";
import { DifferencesPanel, Selection } from "../components/DifferencesPanel";
import { ChartExemplar, TimeSeriesChart } from "../components/TimeSeriesChart";
import "../components/services.css";
import { duration } from "../format";
import { combineFilters, traceqlString } from "../model/differences";
import { formatPercent, formatRate, searchUrl } from "../model/serviceGraph";
import { InstantSeries, RangeSeries, labelOf, queryInstant, queryRange, rangeFromUrl, stepFor, windowOf } from "../serviceApi";
import { RangeSelect, seconds } from "./ServicesPage";

interface Operation {
  name: string;
  kind: string;
  rate: number;
  errorRate: number; // fraction of its spans
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

interface Loaded {
  x: number[];
  requests: (number | null)[];
  errors: (number | null)[];
  quantiles: Map<number, (number | null)[]>; // level -> seconds
  exemplars: ChartExemplar[];
  rate: number;
  errorRate: number;
  p: Map<number, number>;
  operations: Operation[];
}

type SortKey = "rate" | "errorRate" | "p95";

const LEVELS = [0.5, 0.95, 0.99];
const QUANTILES = "quantile_over_time(duration, .5, .95, .99)";

/** Series' samples on one shared time axis (unix seconds), null where a series has none. */
function align(series: RangeSeries[]): { x: number[]; values: (number | null)[][] } {
  const times = [...new Set(series.flatMap((s) => s.samples.map((p) => Number(p.timestampMs))))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const values = series.map((s) => {
    const out: (number | null)[] = times.map(() => null);
    for (const p of s.samples) out[index.get(Number(p.timestampMs))!] = p.value;
    return out;
  });
  return { x: times.map((t) => t / 1000), values };
}

function byQuantile(series: { labels: RangeSeries["labels"] }[]): Map<number, number> {
  const out = new Map<number, number>();
  series.forEach((s, i) => out.set(Number(labelOf(s.labels, "p")), i));
  return out;
}

function operationsOf(rates: InstantSeries[], errors: InstantSeries[], quantiles: InstantSeries[]): Operation[] {
  const key = (s: InstantSeries) => JSON.stringify([labelOf(s.labels, "name"), labelOf(s.labels, "kind")]);
  const failing = new Map(errors.map((s) => [key(s), s.value]));
  const q = new Map<string, number>();
  for (const s of quantiles) q.set(`${key(s)}@${labelOf(s.labels, "p")}`, s.value);
  return rates.map((s) => {
    const k = key(s);
    return {
      name: String(labelOf(s.labels, "name") ?? ""),
      kind: String(labelOf(s.labels, "kind") ?? ""),
      rate: s.value,
      errorRate: s.value ? (failing.get(k) ?? 0) / s.value : 0,
      p50: q.get(`${k}@0.5`) ?? null,
      p95: q.get(`${k}@0.95`) ?? null,
      p99: q.get(`${k}@0.99`) ?? null,
    };
  });
}

export function ServicePage({ name, location }: { name: string; location: string }) {
  const range = rangeFromUrl(location);
  const [data, setData] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [sort, setSort] = useState<SortKey>("rate");

  const service = `resource.service.name = ${traceqlString(name)}`;
  const spans = `{ ${service} }`;
  // a service's requests, as the service graph counts them: server, consumer and root spans
  const requests = `{ ${service} && (kind = server || kind = consumer || nestedSetParent = -1) }`;
  const failedRequests = combineFilters([requests], ["status = error"]);

  useEffect(() => {
    let live = true;
    setData(null);
    setError(null);
    const { start, end } = windowOf(range);
    const step = stepFor(range);
    Promise.all([
      queryRange(`${requests} | rate()`, start, end, step),
      queryRange(`${failedRequests} | rate()`, start, end, step),
      queryRange(`${requests} | ${QUANTILES}`, start, end, step),
      queryInstant(`${requests} | rate()`, start, end),
      queryInstant(`${failedRequests} | rate()`, start, end),
      queryInstant(`${requests} | ${QUANTILES}`, start, end),
      queryInstant(`${spans} | rate() by (name, kind)`, start, end),
      queryInstant(`${combineFilters([spans], ["status = error"])} | rate() by (name, kind)`, start, end),
      queryInstant(`${spans} | ${QUANTILES} by (name, kind)`, start, end),
    ])
      .then(([rRate, rErr, rQ, iRate, iErr, iQ, oRate, oErr, oQ]) => {
        if (!live) return;
        const levels = byQuantile(rQ);
        const ordered = LEVELS.map((l) => rQ[levels.get(l) ?? -1] ?? { labels: [], samples: [] });
        const { x, values } = align([rRate[0] ?? { labels: [], samples: [] }, rErr[0] ?? { labels: [], samples: [] }, ...ordered]);
        const seen = new Set<string>();
        const exemplars: ChartExemplar[] = [];
        for (const s of rQ)
          for (const e of s.exemplars ?? []) {
            const traceId = String(labelOf(e.labels, "trace:id") ?? "");
            const spanId = String(labelOf(e.labels, "span:id") ?? "");
            if (!traceId || seen.has(spanId)) continue;
            seen.add(spanId);
            const t = Number(e.timestampMs) / 1000;
            exemplars.push({ t, y: e.value * 1000, traceId, title: `A ${duration(e.value * 1000)} request at ${new Date(t * 1000).toLocaleTimeString()}: open its trace` });
          }
        const instantLevels = new Map(iQ.map((s) => [Number(labelOf(s.labels, "p")), s.value]));
        const rate = iRate[0]?.value ?? 0;
        setData({
          x,
          requests: values[0],
          errors: values[1],
          quantiles: new Map(LEVELS.map((l, i) => [l, values[2 + i]])),
          exemplars,
          rate,
          errorRate: rate ? (iErr[0]?.value ?? 0) / rate : 0,
          p: instantLevels,
          operations: operationsOf(oRate, oErr, oQ),
        });
      })
      .catch((e) => live && setError(e instanceof ApiError ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [name, range]);

  const charts = useMemo(() => {
    if (!data) return null;
    const errorPct = data.requests.map((r, i) => (r ? ((data.errors[i] ?? 0) / r) * 100 : null));
    const ms = (values: (number | null)[]) => values.map((v) => (v === null ? null : v * 1000));
    return {
      requests: [
        { label: "requests", values: data.requests, color: "--chart-1" },
        { label: "failed", values: data.errors, color: "--chart-3" },
      ],
      errors: [{ label: "error rate", values: errorPct, color: "--chart-3" }],
      durations: LEVELS.map((l, i) => ({ label: `p${l * 100}`, values: ms(data.quantiles.get(l)!), color: ["--chart-ok", "--chart-2", "--chart-3"][i] })),
    };
  }, [data]);

  const operations = useMemo(() => {
    const ops = [...(data?.operations ?? [])];
    const value = (o: Operation) => (sort === "p95" ? (o.p95 ?? -1) : o[sort]);
    return ops.sort((a, b) => value(b) - value(a) || a.name.localeCompare(b.name));
  }, [data, sort]);

  const p95 = data?.p.get(0.95);
  const selections: Selection[] = [
    { label: "Errors", baseline: spans, selection: "{ status = error }", baselineName: `spans of ${name}` },
    ...(p95
      ? [
          {
            label: `Slower than p95 (${duration(p95 * 1000)})`,
            baseline: requests,
            selection: `{ duration > ${Math.round(p95 * 1e6)}us }`,
            baselineName: `requests to ${name}`,
          },
        ]
      : []),
  ];
  const sortButton = (key: SortKey, label: string) => (
    <button class={sort === key ? "sort active" : "sort"} data-testid={`sort-${key}`} onClick={() => setSort(key)} title={`Rank by ${label}`}>
      {label}
      {sort === key ? " ↓" : ""}
    </button>
  );

  return (
    <section class="service-page">
      <div class="svc-head">
        <Link href={`/services?range=${range}`}>Services</Link>
        <span class="muted">/</span>
        <h1 data-testid="service-name">{name}</h1>
        <Link href={searchUrl(spans, range)} data-testid="service-traces">
          Traces
        </Link>
        <span class="spacer" />
        <RangeSelect range={range} onChange={(r) => navigate(`/services/${encodeURIComponent(name)}?range=${r}`)} />
      </div>
      {error && (
        <p class="error" data-testid="service-error">
          {error}
        </p>
      )}
      {!data && !error && <p class="muted">Loading…</p>}
      {data && charts && (
        <>
          <dl class="facts" data-testid="service-facts">
            <dt>Requests</dt>
            <dd data-testid="fact-rate">{formatRate(data.rate)}</dd>
            <dt>Error rate</dt>
            <dd data-testid="fact-error-rate" class={data.errorRate ? "error-count" : undefined}>
              {formatPercent(data.errorRate)}
            </dd>
            <dt>p50</dt>
            <dd>{seconds(data.p.get(0.5) ?? null)}</dd>
            <dt>p95</dt>
            <dd>{seconds(data.p.get(0.95) ?? null)}</dd>
            <dt>p99</dt>
            <dd>{seconds(data.p.get(0.99) ?? null)}</dd>
          </dl>
          <div class="svc-charts">
            <TimeSeriesChart title="Requests" unit="req/s" format={(v) => formatRate(v, "")} x={data.x} series={charts.requests} testid="chart-requests" />
            <TimeSeriesChart title="Error rate" unit="% of requests" format={(v) => `${Number(v.toPrecision(3))}%`} x={data.x} series={charts.errors} testid="chart-errors" />
            <TimeSeriesChart
              title="Duration"
              unit="ms"
              note="◆ the slowest request of a step: click it for its trace"
              format={(v) => duration(v)}
              x={data.x}
              series={charts.durations}
              exemplars={data.exemplars}
              testid="chart-durations"
            />
          </div>
          <h2 class="svc-section">Operations</h2>
          <table class="svc-table" data-testid="operations">
            <thead>
              <tr>
                <th>Operation</th>
                <th>Kind</th>
                <th class="num">{sortButton("rate", "Rate")}</th>
                <th class="num">{sortButton("errorRate", "Errors")}</th>
                <th class="num">p50</th>
                <th class="num">{sortButton("p95", "p95")}</th>
                <th class="num">p99</th>
              </tr>
            </thead>
            <tbody>
              {operations.map((o) => (
                <tr
                  data-testid="operation"
                  data-name={o.name}
                  data-kind={o.kind}
                  title={`Traces of ${o.name}`}
                  onClick={() => navigate(searchUrl(combineFilters([spans], [`name = ${traceqlString(o.name)}`, `kind = ${o.kind}`]), range))}
                >
                  <td class="op">{o.name}</td>
                  <td class="muted">{o.kind}</td>
                  <td class="num">{formatRate(o.rate)}</td>
                  <td class={o.errorRate ? "num err" : "num"}>{formatPercent(o.errorRate)}</td>
                  <td class="num">{seconds(o.p50)}</td>
                  <td class="num">{seconds(o.p95)}</td>
                  <td class="num">{seconds(o.p99)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="svc-note">Every span of {name} by name and kind; errors are the fraction of an operation's spans that failed.</p>
          <h2 class="svc-section">What is different</h2>
          <DifferencesPanel selections={selections} initial={data.errorRate > 0 || selections.length < 2 ? 0 : 1} range={range} />
        </>
      )}
    </section>
  );
}
