"""``GET /api/service-graph``: the service graph of a window, computed from stored spans, with
request rate, error rate and p50/p95 latency per node and per edge (for the built-in UI)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from threadline.api.common import parse_unix_seconds, tenant_of
from threadline.api.trace_by_id import json_response
from threadline.querier.dependencies import DependencyFinder, Stats
from threadline.querier.histogram import quantile

DEFAULT_WINDOW_S = 3600


def _figures(stats: Stats, seconds: float) -> dict[str, Any]:
    return {
        "requests": stats.calls,
        "requestRate": stats.calls / seconds,
        "errors": stats.errors,
        "errorRate": stats.errors / stats.calls if stats.calls else 0.0,
        "p50Seconds": quantile(stats.latency, 0.5, 1e9) if stats.calls else None,
        "p95Seconds": quantile(stats.latency, 0.95, 1e9) if stats.calls else None,
    }


class ServiceGraphRoutes:
    def __init__(self, finder: DependencyFinder, multitenancy_enabled: bool) -> None:
        self.finder = finder
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [web.get(prefix + "/api/service-graph", self.service_graph)]

    async def service_graph(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        end = parse_unix_seconds(request, "end") or int(time.time())
        start = parse_unix_seconds(request, "start") or end - DEFAULT_WINDOW_S
        if end <= start:
            raise web.HTTPBadRequest(text="invalid start/end: end must be after start")
        return json_response(await self.graph_doc(tenant, start, end))

    async def graph_doc(self, tenant: str, start: int, end: int) -> dict[str, Any]:
        """The service graph of ``[start, end)`` (unix seconds) as the route answers it."""
        graph = await self.finder.graph(tenant, start * 10**9, end * 10**9)
        seconds = float(end - start)
        return {
            "start": start,
            "end": end,
            "nodes": [
                {"id": name, **_figures(stats, seconds)}
                for name, stats in sorted(graph.nodes.items())
            ],
            "edges": [
                {"source": parent, "target": child, **_figures(stats, seconds)}
                for (parent, child), stats in sorted(graph.edges.items())
            ],
        }
