"""Assembling threadline: build the components for a target, start their servers, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from threadline.api.search import SearchRoutes
from threadline.api.search_tags import SearchTagRoutes
from threadline.api.system import SystemRoutes
from threadline.api.trace_by_id import TraceByIDRoutes
from threadline.config import Config
from threadline.distributor.distributor import Distributor
from threadline.ingester.ingester import Ingester
from threadline.querier.search import SearchEngine
from threadline.querier.sources import QueryResources
from threadline.querier.tags import TagFinder
from threadline.querier.trace_by_id import TraceFinder
from threadline.receivers.otlp_grpc import OTLPGrpcReceiver
from threadline.receivers.otlp_http import OTLPHttpReceiver
from threadline.selfmetrics import SelfMetrics
from threadline.storage.blocklist import Blocklist
from threadline.traceql.plan import compile_search

log = logging.getLogger(__name__)


@web.middleware
async def _internal_errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.path)
        return web.Response(status=500, text="internal error")


class App:
    """The whole system in one process (``threadline serve``)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.metrics = SelfMetrics()
        data = cfg.data_dir
        self.blocklist = Blocklist(data / "blocks")
        self.ingester = Ingester(cfg, self.blocklist, self.metrics, data / "wal")
        self.distributor = Distributor(self.ingester, self.metrics)
        self.finder = TraceFinder(self.ingester, self.blocklist)
        resources = QueryResources(cfg.querier.memory_limit, str(data / "tmp"))
        self.tags = TagFinder(self.ingester, self.blocklist, resources)
        self.search = SearchEngine(self.ingester, self.blocklist, resources)
        self.stop_event = asyncio.Event()
        self._ready = False
        self._runners: list[web.AppRunner] = []
        self._grpc: OTLPGrpcReceiver | None = None
        self._background: list[asyncio.Task[None]] = []
        self.urls: dict[str, str] = {}

    async def _serve_http(self, app: web.Application, port: int) -> int:
        # bodies are decompressed by the receivers themselves, within the size limit
        runner = web.AppRunner(app, auto_decompress=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.cfg.server.host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[0][1]

    async def start(self) -> None:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.blocklist.load()
        await asyncio.to_thread(self.ingester.start)
        host = cfg.server.host
        mt = cfg.multitenancy_enabled
        limit = cfg.distributor.max_request_bytes

        api = web.Application(middlewares=[_internal_errors])
        prefix = cfg.server.http_api_prefix.rstrip("/")
        api.add_routes(TraceByIDRoutes(self.finder, mt).routes(prefix))
        api.add_routes(SearchTagRoutes(self.tags, mt).routes(prefix))
        api.add_routes(SearchRoutes(self.search, compile_search, mt, cfg.querier).routes(prefix))
        api.add_routes(
            SystemRoutes(self.ingester, self.metrics, lambda: self._ready).routes(prefix)
        )
        port = await self._serve_http(api, cfg.server.http_port)
        self.urls["api"] = f"http://{host}:{port}"

        otlp = cfg.distributor.receivers.otlp
        if otlp.http_port:
            http = web.Application(middlewares=[_internal_errors], client_max_size=limit)
            http.add_routes(OTLPHttpReceiver(self.distributor, mt, limit).routes())
            port = await self._serve_http(http, otlp.http_port)
            self.urls["otlp_http"] = f"http://{host}:{port}/v1/traces"
        if otlp.grpc_port:
            self._grpc = OTLPGrpcReceiver(self.distributor, mt, limit)
            port = await self._grpc.start(host, otlp.grpc_port)
            self.urls["otlp_grpc"] = f"{host}:{port}"

        self._background.append(asyncio.create_task(self.ingester.run(self.stop_event)))
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        self.stop_event.set()
        if self._grpc is not None:
            await self._grpc.stop()
        for runner in self._runners:
            await runner.cleanup()
        for task in self._background:
            await task
        self.ingester.close()


async def serve(cfg: Config) -> None:
    """Run until SIGINT/SIGTERM."""
    app = App(cfg)
    await app.start()
    print("threadline is running", flush=True)
    for name, url in app.urls.items():
        print(f"  {name:<10} {url}", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop_event.set)
    await app.stop_event.wait()
    log.info("stopping")
    await app.stop()
