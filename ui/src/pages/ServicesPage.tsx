/** Services (/services?range=<s>): the service graph of the chosen range and a table of its
 * services with request rate, error rate and p50/p95/p99. A node, an edge or a row opens the
 * search for its traces; a service's name opens its page. */

import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../api";
import { Link, navigate } from "../App";
import { ServiceGraph } from "../components/ServiceGraph";
import "../components/services.css";
import { duration } from "../format";
import { edgeQuery, formatPercent, formatRate, nodeQuery, searchUrl } from "../model/serviceGraph";
import { GraphDoc, RANGES, fetchServiceGraph, rangeFromUrl, windowOf } from "../serviceApi";

export function RangeSelect({ range, onChange }: { range: number; onChange: (r: number) => void }) {
  return (
    <select data-testid="range" aria-label="time range" value={String(range)} onChange={(e) => onChange(Number((e.target as HTMLSelectElement).value))}>
      {RANGES.map(([label, seconds]) => (
        <option value={String(seconds)}>{label}</option>
      ))}
    </select>
  );
}

export const seconds = (s: number | null) => (s === null ? "–" : duration(s * 1000));

export function ServicesPage({ location }: { location: string }) {
  const range = rangeFromUrl(location);
  const [doc, setDoc] = useState<GraphDoc | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const { start, end } = windowOf(range);
    setError(null);
    fetchServiceGraph(start, end)
      .then((d) => live && setDoc(d))
      .catch((e) => live && setError(e instanceof ApiError ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [range]);

  const virtual = new Set(doc?.nodes.filter((n) => n.virtual).map((n) => n.id));
  const rows = doc ? [...doc.nodes].sort((a, b) => Number(a.virtual) - Number(b.virtual) || b.requestRate - a.requestRate || a.id.localeCompare(b.id)) : [];
  return (
    <section class="services">
      <div class="svc-head">
        <h1>Services</h1>
        <span class="spacer" />
        <RangeSelect range={range} onChange={(r) => navigate(`/services?range=${r}`)} />
      </div>
      {error && (
        <p class="error" data-testid="services-error">
          {error}
        </p>
      )}
      {!doc && !error && <p class="muted">Loading…</p>}
      {doc && (
        <>
          <ServiceGraph
            doc={doc}
            onOpenNode={(n) => navigate(searchUrl(nodeQuery(n), range))}
            onOpenEdge={(e) => navigate(searchUrl(edgeQuery(e, virtual.has(e.target)), range))}
            onOpenService={(name) => navigate(`/services/${encodeURIComponent(name)}?range=${range}`)}
          />
          <h2 class="svc-section">Services</h2>
          <table class="svc-table" data-testid="services-table">
            <thead>
              <tr>
                <th>Service</th>
                <th class="num">Requests</th>
                <th class="num">Rate</th>
                <th class="num">Error rate</th>
                <th class="num">p50</th>
                <th class="num">p95</th>
                <th class="num">p99</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((n) => (
                <tr data-service={n.id} title={`Traces of ${n.id}`} onClick={() => navigate(searchUrl(nodeQuery(n), range))}>
                  <td>
                    {n.virtual ? (
                      <span class="service">{n.id}</span>
                    ) : (
                      <Link
                        class="service"
                        href={`/services/${encodeURIComponent(n.id)}?range=${range}`}
                        data-testid="service-link"
                        onClickCapture={(e: MouseEvent) => e.stopPropagation()}
                      >
                        {n.id}
                      </Link>
                    )}
                    {n.virtual && <span class="badge"> uninstrumented peer (calls to it)</span>}
                  </td>
                  <td class="num">{n.requests}</td>
                  <td class="num" data-testid="rate">
                    {formatRate(n.requestRate)}
                  </td>
                  <td class={n.errors ? "num err" : "num"} data-testid="error-rate">
                    {formatPercent(n.errorRate)}
                  </td>
                  <td class="num">{seconds(n.p50Seconds)}</td>
                  <td class="num">{seconds(n.p95Seconds)}</td>
                  <td class="num">{seconds(n.p99Seconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="svc-note">
            A service's requests are its server and consumer spans and its root spans, over the whole range (
            {RANGES.find(([, s]) => s === range)?.[0].toLowerCase() ?? `${range} s`}). Click a row, a node or an edge for its traces.
          </p>
        </>
      )}
    </section>
  );
}
