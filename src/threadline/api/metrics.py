"""Tempo's TraceQL metrics routes: ``/api/metrics/query_range`` and ``/api/metrics/query``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from threadline.api.common import (
    Params,
    finite_seconds,
    go_duration,
    inspected_json,
    params,
    parse_time_ns,
    tenant_of,
)
from threadline.api.trace_by_id import json_response
from threadline.config import QuerierConfig
from threadline.querier.metrics import MetricsEngine, MetricsProgress, series_json
from threadline.querier.series import Series, TooManySeries
from threadline.querier.sources import Inspected
from threadline.traceql.metrics_plan import MetricsExpression, MetricsQueryError, compile_metrics

_STEPS_S = (3600, 300, 60, 15, 5, 1)
MAX_INTERVALS = 10_000


def default_step_ns(start_ns: int, end_ns: int) -> int:
    """About 240 points, rounded down to 1h, 5m, 1m, 15s, 5s or 1s (at least 1s)."""
    target = (end_ns - start_ns) / 240 / 1e9
    for step in _STEPS_S:
        if target >= step:
            return step * 10**9
    return 10**9


class MetricsRoutes:
    def __init__(
        self, engine: MetricsEngine, multitenancy_enabled: bool, limits: QuerierConfig
    ) -> None:
        self.engine = engine
        self.multitenancy_enabled = multitenancy_enabled
        self.limits = limits

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(prefix + "/api/metrics/query_range", self.query_range),
            web.get(prefix + "/api/metrics/query", self.query_instant),
        ]

    def _window(self, request: Params) -> tuple[int, int]:
        q = params(request)
        now = time.time_ns()
        end = parse_time_ns(q["end"], "end") if q.get("end") else now
        if q.get("start"):
            start = parse_time_ns(q["start"], "start")
        else:
            start = end - int(finite_seconds(q.get("since") or "1h", "since") * 1e9)
        if end <= start:
            raise web.HTTPBadRequest(text="invalid start/end: end must be greater than start")
        if end - start > self.limits.max_metrics_duration * 1e9:
            raise web.HTTPBadRequest(
                text="metrics query time range exceeds the maximum allowed duration of "
                f"{go_duration(self.limits.max_metrics_duration)} (querier.max_metrics_duration)"
            )
        return start, end

    def _plan(self, request: Params) -> MetricsExpression:
        query = params(request).get("q") or params(request).get("query") or ""
        if not query.strip():
            raise web.HTTPBadRequest(text="missing q: a TraceQL metrics query")
        try:
            return compile_metrics(query)
        except MetricsQueryError as e:
            raise web.HTTPBadRequest(text=str(e)) from None

    async def _query(
        self, tenant: str, plan: MetricsExpression, start: int, end: int, step: int
    ) -> tuple[list[Series], Inspected]:
        limit = self.limits.max_metrics_series
        try:
            return await self.engine.query_range(tenant, plan, start, end, step, limit)
        except TooManySeries as e:
            raise web.HTTPBadRequest(text=str(e)) from None

    async def query_range(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        return json_response(await self.range_answer(tenant, request))

    async def query_instant(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        return json_response(await self.instant_answer(tenant, request))

    # the answers as JSON documents, for the HTTP routes and the streaming gRPC service

    def _range_args(self, request: Params) -> tuple[MetricsExpression, int, int, int]:
        """(plan, start, end, step) of a range query, the window aligned to the step."""
        plan = self._plan(request)
        start, end = self._window(request)
        raw_step = params(request).get("step")
        if raw_step:
            step = int(finite_seconds(raw_step, "step") * 1e9)
            if step <= 0:
                raise web.HTTPBadRequest(text="step must be greater than 0")
            if step > self.limits.max_metrics_duration * 1e9:
                raise web.HTTPBadRequest(
                    text=f"step {raw_step[:64]!r} exceeds the maximum metrics query range "
                    f"({int(self.limits.max_metrics_duration)}s)"
                )
        else:
            step = default_step_ns(start, end)
        start -= start % step  # aligned, as Tempo does
        end += -end % step
        if (end - start) // step > MAX_INTERVALS:
            minimum = -(-(end - start) // MAX_INTERVALS) / 1e9
            raise web.HTTPBadRequest(
                text=f"step of {step / 1e9}s is too small, minimum step for given range is "
                f"{minimum}s"
            )
        return plan, start, end, step

    async def range_answer(self, tenant: str, request: Params) -> dict[str, Any]:
        series, inspected = await self._query(tenant, *self._range_args(request))
        return {"series": series_json(series), "metrics": inspected_json(inspected)}

    async def range_stream(self, tenant: str, request: Params) -> AsyncIterator[dict[str, Any]]:
        """The series so far after each round of sources (for a query of one pipeline),
        then the answer."""
        args = self._range_args(request)
        steps = self.engine.stream_range(tenant, *args, self.limits.max_metrics_series)
        try:
            async for step in steps:
                if isinstance(step, MetricsProgress):
                    metrics = inspected_json(step.inspected, step.total_jobs)
                    yield {"series": series_json(step.series), "metrics": metrics}
                else:
                    series, inspected = step
                    yield {"series": series_json(series), "metrics": inspected_json(inspected)}
        except TooManySeries as e:
            raise web.HTTPBadRequest(text=str(e)) from None

    async def instant_answer(self, tenant: str, request: Params) -> dict[str, Any]:
        plan = self._plan(request)
        start, end = self._window(request)
        series, inspected = await self._query(tenant, plan, start, end, end - start)
        out = [
            {"labels": s.labels, "value": next(iter(s.points.values()))} for s in series if s.points
        ]
        return {"series": out, "metrics": inspected_json(inspected)}
