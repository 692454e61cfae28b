"""Jaeger's service performance monitoring API (``/jaeger/api/metrics/{latencies,calls,errors,
minstep}``, the Monitor tab of Jaeger UI) answered from stored spans through the TraceQL
metrics engine, where Jaeger needs the span-metrics connector and Prometheus.

Each answer is Jaeger's ``MetricFamily``: per service (and operation, with
``groupByOperation``), a point every ``step`` from ``endTs - lookback`` to ``endTs``, each over
the ``ratePer`` before it, as Prometheus' ``rate(...[ratePer])`` would give: calls per second,
errors as a fraction of calls, and latency quantiles in milliseconds (from log2 histograms).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter, defaultdict
from typing import Any

import orjson
from aiohttp import web

from threadline.api.common import tenant_of
from threadline.api.jaeger_query import PREFIX, envelope, jaeger_error
from threadline.config import QuerierConfig
from threadline.querier.histogram import quantile
from threadline.querier.metrics import MetricsEngine
from threadline.querier.series import Series, TooManySeries
from threadline.traceql.metrics_plan import MetricsQueryError, compile_metrics
from threadline.traceql.printer import format_string

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_NAMES = {
    "latencies": ("service_latencies", "{q}th quantile latency, grouped by service"),
    "calls": ("service_call_rate", "calls/sec, grouped by service"),
    "errors": (
        "service_error_rate",
        "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service",
    ),
}
MIN_STEP_MS = 1000


def _ms_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise jaeger_error(
            400, f"unable to parse param '{name}': {raw!r} is not an integer"
        ) from None
    if value <= 0 or value > 2**62 // 10**6:
        raise jaeger_error(400, f"'{name}' must be a positive number of milliseconds")
    return value


def _label(series: Series, key: str) -> str:
    for lbl in series.labels:
        if lbl["key"] == key:
            return str(next(iter(lbl["value"].values()), ""))
    return ""


def _timestamp(ms: int) -> str:
    """RFC 3339 as protobuf's JSON writes a Timestamp (milliseconds only when not zero)."""
    stamp = dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return stamp + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


class JaegerMonitorRoutes:
    def __init__(
        self, engine: MetricsEngine, multitenancy_enabled: bool, limits: QuerierConfig
    ) -> None:
        self.engine = engine
        self.multitenancy_enabled = multitenancy_enabled
        self.limits = limits

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PREFIX + "/metrics/{kind:latencies|calls|errors|minstep}", self.metrics)]

    async def metrics(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "minstep":
            return _reply(envelope(MIN_STEP_MS))
        tenant = tenant_of(request, self.multitenancy_enabled)
        services = request.query.getall("service", [])
        if not services or not all(services):
            raise jaeger_error(400, "please provide at least one service name")
        span_kinds = request.query.getall("spanKind", []) or ["server"]
        for k in span_kinds:
            if k not in _KINDS:
                raise jaeger_error(
                    400, f"unsupported spanKind {k!r}: use one of {', '.join(_KINDS)}"
                )
        q: float | None = None
        if kind == "latencies":
            raw = request.query.get("quantile")
            try:
                q = float(raw) if raw else None
            except ValueError:
                q = None
            if q is None or not 0 < q < 1:
                raise jaeger_error(400, "please provide a quantile between 0 and 1")
        by_operation = request.query.get("groupByOperation", "false").lower() in ("true", "1")
        end_ms = _ms_param(request, "endTs", time.time_ns() // 10**6)
        lookback = _ms_param(request, "lookback", 3_600_000)
        step = max(_ms_param(request, "step", 5_000), MIN_STEP_MS)
        rate_per = _ms_param(request, "ratePer", 600_000)
        if lookback // step > 10_000:
            raise jaeger_error(400, f"step of {step}ms is too small for a lookback of {lookback}ms")
        if lookback + rate_per > self.limits.max_metrics_duration * 1000:
            raise jaeger_error(400, "lookback and ratePer exceed querier.max_metrics_duration")
        family = await self._family(
            tenant, kind, services, span_kinds, q, by_operation, end_ms, lookback, step, rate_per
        )
        return _reply(family)

    async def _family(
        self,
        tenant: str,
        kind: str,
        services: list[str],
        span_kinds: list[str],
        q: float | None,
        by_operation: bool,
        end_ms: int,
        lookback: int,
        step: int,
        rate_per: int,
    ) -> dict[str, Any]:
        service_cond = " || ".join(f"resource.service.name = {format_string(s)}" for s in services)
        kind_cond = " || ".join(f"kind = {k}" for k in span_kinds)
        by = "resource.service.name, name" if by_operation else "resource.service.name"
        spans = f"({service_cond}) && ({kind_cond})"
        # the windows before the first point reach back ``ratePer`` further
        start_ns = (end_ms - lookback - rate_per) * 10**6
        start_ns -= start_ns % (step * 10**6)
        end_ns = end_ms * 10**6 + (-end_ms * 10**6) % (step * 10**6)
        limit = self.limits.max_metrics_series

        async def run(query: str) -> list[Series]:
            try:
                plan = compile_metrics(query)
                series, _ = await self.engine.query_range(
                    tenant, plan, start_ns, end_ns, step * 10**6, limit
                )
            except (MetricsQueryError, TooManySeries) as e:
                raise jaeger_error(400, str(e)) from None
            return series

        def key(s: Series) -> tuple[str, str]:
            return _label(s, "resource.service.name"), _label(s, "name") if by_operation else ""

        # per (service, operation): per bucket end (ms), histogram of durations (log2 ns)
        histograms: dict[tuple[str, str], dict[int, Counter[int]]] = defaultdict(dict)
        for s in await run(f"{{ {spans} }} | histogram_over_time(duration) by ({by})"):
            bucket = round(math.log2(float(_label(s, "__bucket")) * 1e9))
            for t, n in s.points.items():
                histograms[key(s)].setdefault(t, Counter())[bucket] += int(n)
        errors: dict[tuple[str, str], dict[int, float]] = {}
        if kind == "errors":
            query = f"{{ ({spans}) && status = error }} | count_over_time() by ({by})"
            errors = {key(s): s.points for s in await run(query)}
        first = end_ms - lookback
        points_at = range(first - first % step + step, end_ms + 1, step)
        width = max(1, rate_per // step)
        metrics = []
        for (service, operation), per_bucket in sorted(histograms.items()):
            labels = [{"name": "service_name", "value": service}]
            if by_operation:
                labels.append({"name": "operation", "value": operation})
            points = []
            for t in points_at:
                window = [t - i * step for i in range(width)]
                merged: Counter[int] = Counter()
                for w in window:
                    merged.update(per_bucket.get(w, {}))
                calls = sum(merged.values())
                if kind == "calls":
                    value: float | None = calls / (rate_per / 1000)
                elif kind == "errors":
                    failed = sum(errors.get((service, operation), {}).get(w, 0) for w in window)
                    value = failed / calls if calls else None
                else:
                    value = quantile(merged, q or 0.5, 1e6) if calls else None
                if value is not None:
                    points.append(
                        {"gaugeValue": {"doubleValue": round(value, 6)}, "timestamp": _timestamp(t)}
                    )
            metrics.append({"labels": labels, "metricPoints": points})
        name, help_text = _NAMES[kind]
        if by_operation:
            name = name.replace("service_", "service_operation_", 1)
            help_text += " & operation"
        return {
            "name": name,
            "type": "GAUGE",
            "help": help_text.format(q=q),
            "metrics": metrics,
        }


def _reply(doc: Any) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")
