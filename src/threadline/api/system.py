"""Operational routes: ``/ready``, ``/api/echo``, ``/api/status/buildinfo``, ``/metrics``,
``/flush``.

``/flush`` answers 204 only once the cut traces are in durable blocks; when the backend refused
or could not be reached it answers 503 naming the failure (the spans stay in the WAL and the block
write is retried in the background). Tempo's 2.x ``/flush`` only queues the flush and always
answers 204; ours writes synchronously, so it can say whether the data is durable.
``/flush?tenant=X`` answers the same whether or not X has data (204: nothing left to write),
so that it cannot be used to find out which tenants exist; an id that cannot be a tenant is a
400.

``/metrics`` is the operator's endpoint and, as Tempo's and Prometheus's, lists every tenant's
name and volume: with authentication on it needs an operator's credential, without it keep the
port on the operator's network."""

from __future__ import annotations

import platform
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from threadline import __version__
from threadline.api.trace_by_id import json_response
from threadline.ingester.ingester import FlushFailed, Ingester
from threadline.logstore.store import LogStore
from threadline.selfmetrics import SelfMetrics
from threadline.tenancy import tenant_problem


class SystemRoutes:
    def __init__(
        self,
        ingester: Ingester | None,
        metrics: SelfMetrics,
        ready: Callable[[], bool],
        logs: LogStore | None = None,
    ) -> None:
        self.ingester = ingester
        self.metrics = metrics
        self.ready = ready
        self.logs = logs

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get("/ready", self.ready_handler),
            web.get("/metrics", self.metrics_handler),
            web.get(prefix + "/api/echo", self.echo),
            web.get(prefix + "/api/status/buildinfo", self.buildinfo),
            web.get("/flush", self.flush),
            web.post("/flush", self.flush),
        ]

    async def ready_handler(self, request: web.Request) -> web.Response:
        if self.ready():
            return web.Response(text="ready")
        return web.Response(status=503, text="not ready: starting or stopping")

    async def echo(self, request: web.Request) -> web.Response:
        return web.Response(text="echo\n")

    async def buildinfo(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "version": __version__,
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": f"python{platform.python_version()}",
            }
        )

    async def metrics_handler(self, request: web.Request) -> web.Response:
        if self.ingester is not None:
            self.ingester.update_gauges()
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def flush(self, request: web.Request) -> web.Response:
        if self.ingester is None:
            raise web.HTTPNotFound(text="this process runs no ingester")
        tenant = request.query.get("tenant") or None
        if tenant is not None and (problem := tenant_problem(tenant)) is not None:
            raise web.HTTPBadRequest(text=problem)
        try:
            await self.ingester.flush(tenant)
            if self.logs is not None:
                await self.logs.flush(tenant)
        except FlushFailed as e:
            return web.Response(status=503, text=f"flush failed: {e}")
        return web.Response(status=204)
