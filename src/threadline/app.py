"""Assembling threadline: build the components for a target, start their servers, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from threadline.api.generator_metrics import GeneratorMetricsRoutes
from threadline.api.jaeger_query import JaegerQueryRoutes
from threadline.api.metrics import MetricsRoutes
from threadline.api.sampling import SamplingRoutes
from threadline.api.search import SearchRoutes
from threadline.api.search_tags import SearchTagRoutes
from threadline.api.service_graph import ServiceGraphRoutes
from threadline.api.system import SystemRoutes
from threadline.api.trace_by_id import TraceByIDRoutes
from threadline.api.zipkin_query import ZipkinQueryRoutes
from threadline.compactor.compactor import Compactor
from threadline.config import Config
from threadline.distributor.distributor import Distributor
from threadline.generator import MetricsGenerator
from threadline.ingester.ingester import Ingester
from threadline.querier.dependencies import DependencyFinder
from threadline.querier.metrics import MetricsEngine
from threadline.querier.search import SearchEngine
from threadline.querier.sources import DataSources, QueryResources
from threadline.querier.tags import TagFinder
from threadline.querier.trace_by_id import TraceFinder
from threadline.receivers.jaeger import (
    JaegerAgentReceiver,
    JaegerGrpcReceiver,
    JaegerThriftHttpReceiver,
)
from threadline.receivers.otlp_grpc import OTLPGrpcReceiver
from threadline.receivers.otlp_http import OTLPHttpReceiver
from threadline.receivers.zipkin import ZipkinReceiver
from threadline.selfmetrics import SelfMetrics
from threadline.storage.blocklist import Blocklist, poll_forever
from threadline.storage.factory import make_backend, make_caches
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
        self.backend = make_backend(cfg)
        self.block_caches = make_caches(cfg, self.backend)
        self.blocklist = Blocklist(
            self.backend,
            self.block_caches,
            index_builder=cfg.compactor.enabled,
            stale_index=cfg.storage.trace.blocklist_poll_stale_tenant_index,
        )
        self.ingester = Ingester(cfg, self.blocklist, self.metrics, data / "wal")
        self.compactor: Compactor | None = None
        if cfg.compactor.enabled:
            self.compactor = Compactor(
                cfg, self.blocklist, self.metrics.registry, defer=self.ingester.behind
            )
        self.distributor = Distributor(self.ingester, self.metrics)
        self.finder = TraceFinder(self.ingester, self.blocklist)
        resources = QueryResources(cfg.querier.memory_limit, str(data / "tmp"))
        self.sources = DataSources(self.ingester, self.blocklist, resources)
        self.tags = TagFinder(self.sources)
        self.search = SearchEngine(self.sources)
        self.dependencies = DependencyFinder(
            self.sources, cfg.metrics_generator.processor.service_graphs.peer_attributes
        )
        self.metrics_engine = MetricsEngine(self.sources)
        self.generator = MetricsGenerator(cfg.metrics_generator, self.metrics.registry)
        if self.generator.enabled:
            self.distributor.consumers.append(self.generator.consume)
        self.stop_event = asyncio.Event()
        self._ready = False
        self._runners: list[web.AppRunner] = []
        self._stoppers: list[Callable[[], Awaitable[None]]] = []
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

    async def _serve_receiver(self, routes: list[web.RouteDef], port: int) -> int:
        app = web.Application(
            middlewares=[_internal_errors], client_max_size=self.cfg.distributor.max_request_bytes
        )
        app.add_routes(routes)
        return await self._serve_http(app, port)

    async def start(self) -> None:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.blocklist.load)
        await asyncio.to_thread(self.ingester.start)
        host = cfg.server.host
        mt = cfg.multitenancy_enabled
        limit = cfg.distributor.max_request_bytes

        api = web.Application(middlewares=[_internal_errors])
        prefix = cfg.server.http_api_prefix.rstrip("/")
        api.add_routes(TraceByIDRoutes(self.finder, mt).routes(prefix))
        api.add_routes(SearchTagRoutes(self.tags, mt).routes(prefix))
        api.add_routes(MetricsRoutes(self.metrics_engine, mt, cfg.querier).routes(prefix))
        api.add_routes(ServiceGraphRoutes(self.dependencies, mt).routes(prefix))
        api.add_routes(GeneratorMetricsRoutes(self.generator, mt).routes())
        api.add_routes(SearchRoutes(self.search, compile_search, mt, cfg.querier).routes(prefix))
        api.add_routes(
            SystemRoutes(self.ingester, self.metrics, lambda: self._ready).routes(prefix)
        )
        jaeger = JaegerQueryRoutes(self.tags, self.search, self.finder, self.dependencies, mt)
        api.add_routes(jaeger.routes())
        zipkin = ZipkinQueryRoutes(self.tags, self.search, self.finder, self.dependencies, mt)
        api.add_routes(zipkin.routes())
        sampling = SamplingRoutes(cfg.sampling)
        api.add_routes(sampling.routes(("/jaeger/api/sampling",)))
        port = await self._serve_http(api, cfg.server.http_port)
        self.urls["api"] = f"http://{host}:{port}"
        self.urls["jaeger_api"] = f"http://{host}:{port}/jaeger/api"
        if cfg.sampling.port:
            routes = sampling.routes(("/", "/sampling", "/api/sampling"))
            port = await self._serve_receiver(routes, cfg.sampling.port)
            self.urls["sampling"] = f"http://{host}:{port}/sampling"

        receivers = cfg.distributor.receivers
        otlp = receivers.otlp
        if otlp.http_port:
            routes = OTLPHttpReceiver(self.distributor, mt, limit).routes()
            port = await self._serve_receiver(routes, otlp.http_port)
            self.urls["otlp_http"] = f"http://{host}:{port}/v1/traces"
        if otlp.grpc_port:
            grpc_receiver = OTLPGrpcReceiver(self.distributor, mt, limit)
            port = await grpc_receiver.start(host, otlp.grpc_port)
            self._stoppers.append(grpc_receiver.stop)
            self.urls["otlp_grpc"] = f"{host}:{port}"
        if receivers.zipkin.port:
            zipkin_receiver = ZipkinReceiver(self.distributor, mt, limit)
            port = await self._serve_receiver(zipkin_receiver.routes(), receivers.zipkin.port)
            self._stoppers.append(zipkin_receiver.close)
            self.urls["zipkin"] = f"http://{host}:{port}/api/v2/spans"
        jaeger_cfg = receivers.jaeger
        if jaeger_cfg.thrift_http_port:
            routes = JaegerThriftHttpReceiver(self.distributor, mt, limit).routes()
            port = await self._serve_receiver(routes, jaeger_cfg.thrift_http_port)
            self.urls["jaeger_thrift_http"] = f"http://{host}:{port}/api/traces"
        if jaeger_cfg.grpc_port:
            jaeger_grpc = JaegerGrpcReceiver(self.distributor, mt, limit)
            port = await jaeger_grpc.start(host, jaeger_cfg.grpc_port)
            self._stoppers.append(jaeger_grpc.stop)
            self.urls["jaeger_grpc"] = f"{host}:{port}"
        if jaeger_cfg.thrift_compact_port:
            compact = JaegerAgentReceiver(self.distributor, mt, "compact")
            port = await compact.start(host, jaeger_cfg.thrift_compact_port)
            self._stoppers.append(compact.stop)
            self.urls["jaeger_agent_compact"] = f"udp://{host}:{port}"
        if jaeger_cfg.thrift_binary_port:
            binary = JaegerAgentReceiver(self.distributor, mt, "binary")
            port = await binary.start(host, jaeger_cfg.thrift_binary_port)
            self._stoppers.append(binary.stop)
            self.urls["jaeger_agent_binary"] = f"udp://{host}:{port}"

        await self.generator.start()
        self._stoppers.append(self.generator.stop)
        self._background.append(asyncio.create_task(self.ingester.run(self.stop_event)))
        # the compactor; the block list is polled (and, with a compactor, the tenant
        # index rebuilt) every blocklist_poll, and at every compaction cycle ---
        if self.compactor is not None:
            self._compactor_task = asyncio.create_task(self.compactor.run(self.stop_event))
            self._stoppers.append(self._stop_compactor)
        poll = poll_forever(self.blocklist, cfg.storage.trace.blocklist_poll, self.stop_event)
        self._background.append(asyncio.create_task(poll))
        self._ready = True

    async def _stop_compactor(self) -> None:
        self.stop_event.set()
        await self._compactor_task

    async def stop(self) -> None:
        self._ready = False
        self.stop_event.set()
        for stop in self._stoppers:
            await stop()
        for runner in self._runners:
            await runner.cleanup()
        for task in self._background:
            await task
        self.ingester.close()


async def serve(cfg: Config) -> None:
    """Run until SIGINT/SIGTERM."""
    if cfg.target == "compactor":
        from threadline.compactor.service import serve_compactor

        await serve_compactor(cfg)
        return
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
