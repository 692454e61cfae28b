"""``GET /api/service-graph``: the service graph of a window, computed from stored spans, with
request rate, error rate and p50/p95/p99 latency per node and per edge (for the built-in UI).

A node is ``virtual`` when no span of the window comes from it: a peer that client spans name
(a database, a third-party API). Such a node has no requests of its own; its figures are those
of the calls made to it (its incoming edges)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from threadline.api.common import parse_unix_seconds, tenant_of
from threadline.api.trace_by_id import json_response
from threadline.querier.dependencies import DependencyFinder, Stats
from threadline.querier.histogram import quantile
from threadline.querier.sources import Source, SourceCursor

DEFAULT_WINDOW_S = 3600


def _figures(stats: Stats, seconds: float) -> dict[str, Any]:
    def q(level: float) -> float | None:
        return quantile(stats.latency, level, 1e9) if stats.calls else None

    return {
        "requests": stats.calls,
        "requestRate": stats.calls / seconds,
        "errors": stats.errors,
        "errorRate": stats.errors / stats.calls if stats.calls else 0.0,
        "p50Seconds": q(0.5),
        "p95Seconds": q(0.95),
        "p99Seconds": q(0.99),
    }


def _merged(parts: list[Stats]) -> Stats:
    out = Stats()
    for s in parts:
        out.calls += s.calls
        out.errors += s.errors
        out.latency.update(s.latency)
    return out


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

    def _services(self, tenant: str, start_ns: int, end_ns: int) -> set[str]:
        """The services that sent spans starting in the window."""

        def names(con: SourceCursor, source: Source) -> list[Any]:
            return con.sql(
                f"SELECT DISTINCT service_name FROM {source.relation} "
                f"WHERE start_unix_nano BETWEEN {int(start_ns)} AND {int(end_ns)}"
            ).fetchall()

        visited = self.finder.sources.each(tenant, start_ns, end_ns, names)
        return {name for _, rows in visited for (name,) in rows}

    async def graph_doc(self, tenant: str, start: int, end: int) -> dict[str, Any]:
        """The service graph of ``[start, end)`` (unix seconds) as the route answers it."""
        start_ns, end_ns = start * 10**9, end * 10**9
        graph = await self.finder.graph(tenant, start_ns, end_ns)
        services = await asyncio.to_thread(self._services, tenant, start_ns, end_ns)
        seconds = float(end - start)

        def node(name: str, stats: Stats) -> dict[str, Any]:
            virtual = name not in services
            if virtual:
                stats = _merged([s for (_, child), s in graph.edges.items() if child == name])
            return {"id": name, "virtual": virtual, **_figures(stats, seconds)}

        return {
            "start": start,
            "end": end,
            "nodes": [node(name, stats) for name, stats in sorted(graph.nodes.items())],
            "edges": [
                {"source": parent, "target": child, **_figures(stats, seconds)}
                for (parent, child), stats in sorted(graph.edges.items())
            ],
        }
