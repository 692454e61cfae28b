"""``threadline serve --target compactor``: the compactor alone, over a shared backend.

It builds the tenant indexes, compacts, applies retention and deletes expired blocks; it serves
``/ready`` and ``/metrics`` on ``server.http_port`` and nothing else.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from threadline.compactor.compactor import Compactor
from threadline.config import Config
from threadline.http_server import HttpServers
from threadline.storage.blocklist import Blocklist
from threadline.storage.factory import make_backend, make_caches
from threadline.tls import ServerTLS

log = logging.getLogger(__name__)


class CompactorService:
    def __init__(self, cfg: Config, tls: ServerTLS) -> None:
        self.cfg = cfg
        self.http = HttpServers(cfg.server, tls.ssl_context)
        self.registry = CollectorRegistry()
        backend = make_backend(cfg)
        self.blocklist = Blocklist(backend, make_caches(cfg, backend), index_builder=True)
        self.compactor = Compactor(cfg, self.blocklist, self.registry)
        self.stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ready = False
        self.url = ""

    async def _ready_handler(self, request: web.Request) -> web.Response:
        if self._ready:
            return web.Response(text="ready")
        return web.Response(status=503, text="not ready: starting or stopping")

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.blocklist.load)
        app = self.http.application()
        app.add_routes([web.get("/ready", self._ready_handler), web.get("/metrics", self._metrics)])
        port = await self.http.serve(app, self.cfg.server.http_port)
        self.url = f"{self.http.scheme}://{self.cfg.server.host}:{port}"
        self._task = asyncio.create_task(self.compactor.run(self.stop_event))
        self._ready = True

    async def stop(self) -> None:
        self._ready = False
        self.stop_event.set()
        await self.http.stop_listening()
        if self._task is not None:
            await self._task
        await self.http.drain()


async def serve_compactor(cfg: Config, stop: asyncio.Event, tls: ServerTLS) -> None:
    """Run the compactor until ``stop`` is set (SIGINT/SIGTERM); it stops after its current job."""
    service = CompactorService(cfg, tls)
    await service.start()
    print("threadline compactor is running", flush=True)
    print(f"  api        {service.url}", flush=True)
    print(f"  backend    {service.blocklist.backend.describe()}", flush=True)
    await stop.wait()
    await service.stop()
