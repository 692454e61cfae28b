"""Assembling threadline: build the components for a target, start their servers, stop cleanly."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from threadline.api import mcp_server
from threadline.api.generator_metrics import GeneratorMetricsRoutes
from threadline.api.jaeger_ddg import DeepDependencyRoutes
from threadline.api.jaeger_monitor import JaegerMonitorRoutes
from threadline.api.jaeger_query import JaegerQueryRoutes
from threadline.api.jaeger_v3 import JaegerV3Routes
from threadline.api.loki_query import LokiQueryRoutes
from threadline.api.mcp_server import TraceTools
from threadline.api.metrics import MetricsRoutes
from threadline.api.sampling import SamplingRoutes
from threadline.api.search import SearchRoutes
from threadline.api.search_tags import SearchTagRoutes
from threadline.api.service_graph import ServiceGraphRoutes
from threadline.api.streaming_querier import StreamingQuerier
from threadline.api.system import SystemRoutes
from threadline.api.trace_by_id import TraceByIDRoutes
from threadline.api.trace_logs import TraceLogsRoutes
from threadline.api.web_ui import WebUIRoutes
from threadline.api.zipkin_query import ZipkinQueryRoutes
from threadline.auth import Access, Authenticator
from threadline.compactor.compactor import Compactor
from threadline.config import Config
from threadline.dirlock import own_directories
from threadline.distributor.distributor import Distributor
from threadline.generator import MetricsGenerator
from threadline.http_server import HttpServers
from threadline.ingester.ingester import Ingester
from threadline.listeners import check_free
from threadline.logstore.store import LogStore
from threadline.overrides import Overrides
from threadline.querier.admission import QueryResources
from threadline.querier.dependencies import DependencyFinder
from threadline.querier.metrics import MetricsEngine
from threadline.querier.search import SearchEngine
from threadline.querier.sources import DataSources
from threadline.querier.tags import TagFinder
from threadline.querier.trace_by_id import TraceFinder
from threadline.receivers.jaeger import (
    JaegerAgentReceiver,
    JaegerGrpcReceiver,
    JaegerThriftHttpReceiver,
)
from threadline.receivers.loki_push import LokiPushReceiver
from threadline.receivers.opencensus import OpenCensusReceiver
from threadline.receivers.otlp_grpc import OTLPGrpcReceiver
from threadline.receivers.otlp_http import OTLPHttpReceiver
from threadline.receivers.otlp_logs_grpc import OTLPLogsGrpcReceiver
from threadline.receivers.zipkin import ZipkinReceiver
from threadline.selfmetrics import SelfMetrics
from threadline.storage.blocklist import Blocklist, poll_forever
from threadline.storage.factory import local_blocks_dir, make_backend, make_caches
from threadline.tls import ServerTLS
from threadline.traceql.plan import compile_search

log = logging.getLogger(__name__)


class App:
    """The whole system in one process (``threadline serve``)."""

    def __init__(
        self, cfg: Config, tls: ServerTLS | None = None, auth: Authenticator | None = None
    ) -> None:
        self.cfg = cfg
        self.tls = tls or ServerTLS(cfg.server.tls)
        self.auth = auth or Authenticator(cfg.auth, cfg.multitenancy_enabled)
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
        self.overrides = Overrides(cfg.overrides)
        self.distributor = Distributor(self.ingester, self.metrics, overrides=self.overrides)
        self.logs: LogStore | None = None
        if cfg.logs.enabled:
            self.logs = LogStore(cfg, self.backend, data / "wal-logs")
            self.distributor.logs = self.logs
        self.finder = TraceFinder(self.ingester, self.blocklist)
        resources = QueryResources(
            cfg.querier.memory_limit,
            str(data / "tmp"),
            max_concurrent_queries=cfg.querier.max_concurrent_queries,
        )
        self.sources = DataSources(self.ingester, self.blocklist, resources)
        self.sources.query_timeout = lambda tenant: self.overrides.limits(tenant).read.query_timeout
        self.sources.query_memory_limit = lambda tenant: (
            self.overrides.limits(tenant).read.query_memory_limit
        )
        self.tags = TagFinder(self.sources)
        self.search = SearchEngine(self.sources)
        self.dependencies = DependencyFinder(
            self.sources, cfg.metrics_generator.processor.service_graphs.peer_attributes
        )
        self.metrics_engine = MetricsEngine(self.sources, cfg.querier.adaptive_sample_spans)
        self.generator = MetricsGenerator(cfg.metrics_generator, self.metrics.registry)
        if self.generator.enabled:
            self.distributor.consumers.append(self.generator.consume)
        self.stop_event = asyncio.Event()
        self._ready = False
        self.http = HttpServers(cfg.server, self.tls.ssl_context, self.auth)
        self._closers: list[Callable[[], Awaitable[None]]] = []  # listeners other than HTTP
        self._stoppers: list[Callable[[], Awaitable[None]]] = []
        self._background: list[asyncio.Task[None]] = []
        # (label, address, what it is for) for the start-up banner
        self.urls: list[tuple[str, str, str]] = []

    async def _serve_receiver(
        self, routes: list[web.RouteDef], port: int, access: Access | None = "write"
    ) -> int:
        limit = self.cfg.distributor.max_request_bytes
        app = self.http.application(access, client_max_size=limit)
        app.add_routes(routes)
        return await self.http.serve(app, port)

    async def start(self) -> None:
        cfg = self.cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.blocklist.load)
        await asyncio.to_thread(self.ingester.start)
        if self.logs is not None:
            await asyncio.to_thread(self.logs.start)
        host = cfg.server.host
        mt = cfg.multitenancy_enabled
        limit = cfg.distributor.max_request_bytes
        grace = cfg.server.graceful_shutdown_timeout
        auth = self.auth if self.auth.enabled else None

        api = self.http.application()
        prefix = cfg.server.http_api_prefix.rstrip("/")
        tags = SearchTagRoutes(self.tags, mt)
        metrics = MetricsRoutes(self.metrics_engine, mt, cfg.querier)
        search = SearchRoutes(self.search, compile_search, mt, cfg.querier)
        api.add_routes(TraceByIDRoutes(self.finder, mt).routes(prefix))
        if self.logs is not None:
            api.add_routes(TraceLogsRoutes(self.logs, mt).routes(prefix))
            api.add_routes(LokiPushReceiver(self.distributor, mt, limit).routes(prefix))
            api.add_routes(LokiQueryRoutes(self.logs, mt).routes(prefix))
        api.add_routes(tags.routes(prefix))
        api.add_routes(metrics.routes(prefix))
        graph = ServiceGraphRoutes(self.dependencies, mt)
        api.add_routes(graph.routes(prefix))
        api.add_routes(GeneratorMetricsRoutes(self.generator, mt).routes())
        api.add_routes(search.routes(prefix))
        api.add_routes(
            SystemRoutes(self.ingester, self.metrics, lambda: self._ready, self.logs).routes(prefix)
        )
        found = (self.tags, self.search, self.finder, self.dependencies)
        jaeger = JaegerQueryRoutes(*found, mt, cfg.querier)
        api.add_routes(jaeger.routes())
        api.add_routes(JaegerV3Routes(*found, mt, cfg.querier).routes())
        api.add_routes(JaegerMonitorRoutes(self.metrics_engine, mt, cfg.querier).routes())
        api.add_routes(DeepDependencyRoutes(*found, mt, cfg.querier).routes())
        api.add_routes(WebUIRoutes().routes())
        zipkin = ZipkinQueryRoutes(*found, mt, cfg.querier)
        api.add_routes(zipkin.routes())
        sampling = SamplingRoutes(cfg.sampling)
        api.add_routes(sampling.routes(("/jaeger/api/sampling",)))
        tools = TraceTools(search, tags, metrics, graph, self.finder, mt)
        mcp_path = mcp_server.mount(api, tools, prefix, host)
        grpc_socket = None
        if cfg.server.stream_over_http_enabled:
            streaming = StreamingQuerier(search, tags, metrics, auth, mt)
            grpc_socket = await streaming.start()
            self._closers.append(functools.partial(streaming.stop, grace))
        port = await self.http.serve(
            api, cfg.server.http_port, grpc_socket, self.tls.shared_port_context
        )

        def url(port: int) -> str:
            return f"{self.http.scheme}://{host}:{port}"

        base = url(port)
        self.urls += [
            ("web UI", f"{base}/", "traces, services and logs in the browser"),
            ("Tempo API", base, "Grafana's Tempo data source (streaming too), threadline query"),
            ("Jaeger API", f"{base}/jaeger", "Jaeger UI, Grafana's Jaeger data source"),
            ("Zipkin API", f"{base}/zipkin", "Zipkin Lens (API under /zipkin/api/v2)"),
            *(
                [("Loki API", base, "Grafana's Loki data source, Loki push (/loki/api/v1)")]
                if self.logs is not None
                else []
            ),
            ("MCP", f"{base}{mcp_path}", "MCP server for AI assistants (streamable HTTP)"),
            ("metrics", f"{base}/metrics", "Prometheus scrape of threadline itself"),
        ]
        if cfg.sampling.port:
            routes = sampling.routes(("/", "/sampling", "/api/sampling"))
            port = await self._serve_receiver(routes, cfg.sampling.port, access=None)
            sampling_url = f"{url(port)}/sampling"
            self.urls.append(("sampling", sampling_url, "Jaeger remote sampling"))

        receivers = cfg.distributor.receivers
        otlp = receivers.otlp
        if otlp.http_port:
            routes = OTLPHttpReceiver(self.distributor, mt, limit).routes()
            port = await self._serve_receiver(routes, otlp.http_port)
            paths = "POST /v1/traces, /v1/logs" if self.logs is not None else "POST /v1/traces"
            self.urls.append(("OTLP HTTP", url(port), paths))
        if otlp.grpc_port:
            grpc_receiver = OTLPGrpcReceiver(self.distributor, mt, limit)
            grpc_receiver.auth = auth
            also = []
            if self.logs is not None:
                logs_receiver = OTLPLogsGrpcReceiver(self.distributor, mt, limit)
                logs_receiver.auth = auth
                also.append(logs_receiver)
            credentials = self.tls.grpc_credentials()
            port = await grpc_receiver.start(host, otlp.grpc_port, credentials, also)
            self._closers.append(functools.partial(grpc_receiver.stop, grace))
            services = "TraceService/Export, LogsService/Export" if also else "TraceService/Export"
            self.urls.append(("OTLP gRPC", f"{host}:{port}", services))
        if receivers.zipkin.port:
            zipkin_receiver = ZipkinReceiver(self.distributor, mt, limit)
            port = await self._serve_receiver(zipkin_receiver.routes(), receivers.zipkin.port)
            self._stoppers.append(zipkin_receiver.close)
            self.urls.append(("Zipkin", url(port), "POST /api/v2/spans, /api/v1"))
        jaeger_cfg = receivers.jaeger
        if jaeger_cfg.thrift_http_port:
            routes = JaegerThriftHttpReceiver(self.distributor, mt, limit).routes()
            port = await self._serve_receiver(routes, jaeger_cfg.thrift_http_port)
            self.urls.append(("Jaeger HTTP", url(port), "POST /api/traces (thrift)"))
        if jaeger_cfg.grpc_port:
            jaeger_grpc = JaegerGrpcReceiver(self.distributor, mt, limit)
            jaeger_grpc.auth = auth
            port = await jaeger_grpc.start(host, jaeger_cfg.grpc_port, self.tls.grpc_credentials())
            self._closers.append(functools.partial(jaeger_grpc.stop, grace))
            self.urls.append(("Jaeger gRPC", f"{host}:{port}", "CollectorService/PostSpans"))
        if receivers.opencensus.port:
            opencensus = OpenCensusReceiver(self.distributor, mt, limit)
            opencensus.auth = auth
            credentials = self.tls.grpc_credentials()
            port = await opencensus.start(host, receivers.opencensus.port, credentials)
            self._closers.append(functools.partial(opencensus.stop, grace))
            self.urls.append(("OpenCensus", f"{host}:{port}", "agent TraceService/Export"))
        # UDP datagrams carry no credentials: with auth on the agent receivers stay off
        udp = not self.auth.enabled
        if jaeger_cfg.thrift_compact_port and udp:
            compact = JaegerAgentReceiver(self.distributor, mt, "compact")
            port = await compact.start(host, jaeger_cfg.thrift_compact_port)
            self._closers.append(compact.stop)
            self.urls.append(("Jaeger agent", f"udp://{host}:{port}", "compact thrift"))
        if jaeger_cfg.thrift_binary_port and udp:
            binary = JaegerAgentReceiver(self.distributor, mt, "binary")
            port = await binary.start(host, jaeger_cfg.thrift_binary_port)
            self._closers.append(binary.stop)
            self.urls.append(("Jaeger agent", f"udp://{host}:{port}", "binary thrift"))

        await self.generator.start()
        self._background.append(asyncio.create_task(self.ingester.run(self.stop_event)))
        if self.logs is not None:
            period = cfg.ingester.flush_check_period
            self._background.append(asyncio.create_task(self.logs.run(self.stop_event, period)))
        if cfg.overrides.per_tenant_override_config is not None:
            self._background.append(asyncio.create_task(self.overrides.watch(self.stop_event)))
        if self.auth.enabled and cfg.auth.users_file is not None:
            self._background.append(asyncio.create_task(self.auth.watch(self.stop_event)))
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
        """The graceful stop: every listener closes, requests under way finish (each server
        waits at most ``server.graceful_shutdown_timeout``), the compactor stops after its
        current job, live spans are written to blocks and the WAL is closed (and emptied when
        all of it is in blocks)."""
        self._ready = False
        self.stop_event.set()
        started = time.monotonic()
        await self.http.stop_listening()
        closing = [self.http.drain(), *(c() for c in self._closers)]
        for result in await asyncio.gather(*closing, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("closing a listener failed: %s", result)
        for stop in self._stoppers:
            await stop()
        for task in self._background:
            await task
        drained = await self.ingester.shutdown()
        if self.logs is not None:
            await self.logs.shutdown()
        await self.generator.stop()
        log.info(
            "stopped in %.1fs: %s",
            time.monotonic() - started,
            "every span is in blocks, the WAL is empty"
            if drained
            else "spans not yet in blocks stay in the WAL for the next start",
        )


def _print_banner(cfg: Config, app: App) -> None:
    print("threadline is running", flush=True)
    blocks = local_blocks_dir(cfg)
    where = f"blocks in {blocks.resolve()}" if blocks else f"blocks in {app.backend.describe()}"
    rows = [("data dir", str(cfg.data_dir.resolve()), f"WAL; {where}"), *app.urls]
    width = max(len(label) for label, _, _ in rows)
    addr = max(len(address) for _, address, _ in rows)
    for label, address, what in rows:
        print(f"  {label:<{width}}  {address:<{addr}}  {what}", flush=True)


async def serve(cfg: Config) -> None:
    """Run until SIGINT/SIGTERM (a second one exits at once: the WAL keeps what was acked)."""
    # refused before anything is written: TLS files read and every port checked first, then
    # the directories locked
    tls = ServerTLS(cfg.server.tls)
    auth = Authenticator(cfg.auth, cfg.multitenancy_enabled)
    check_free(cfg)
    locks = own_directories(cfg, compacts=cfg.compactor.enabled or cfg.target == "compactor")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: exiting now; the WAL keeps every acknowledged span", sig.name)
            os._exit(128 + sig.value)
        log.info("%s: stopping gracefully (send it again to exit at once)", sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if cfg.target == "compactor":
            from threadline.compactor.service import serve_compactor

            await serve_compactor(cfg, stop, tls)
            return
        app = App(cfg, tls, auth)
        await app.start()
        _print_banner(cfg, app)
        await stop.wait()
        await app.stop()
    finally:
        for lock in locks:
            lock.release()
