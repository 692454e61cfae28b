"""The remote-write client against a receiver in the test: snappy protobuf with Prometheus'
headers, one tenant per request (X-Scope-OrgID), size-limited requests, retries with backoff,
refused and undeliverable samples dropped and counted, a bounded queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp import web

from conftest import HOST, free_port
from threadline.config import RemoteWriteConfig
from threadline.generator.registry import TimeSeries
from threadline.generator.remote_write import RemoteWriter, decode


class Metrics:
    def __init__(self) -> None:
        self.sent_samples = 0
        self.drops: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.queue = 0

    def sent(self, remote: str, samples: int) -> None:
        self.sent_samples += samples

    def dropped(self, remote: str, reason: str, samples: int) -> None:
        self.drops[reason] += samples

    def failed_request(self, remote: str, reason: str) -> None:
        self.failures[reason] += 1

    def queue_size(self, remote: str, samples: int) -> None:
        self.queue = samples


class Receiver:
    """A remote-write endpoint answering with the given statuses in turn (then 204)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/api/v1/write"

    async def handle(self, request: web.Request) -> web.Response:
        status = self.statuses.pop(0) if self.statuses else 204
        body = await request.read()
        if status == 204:
            self.requests.append((dict(request.headers), decode(body)))
        return web.Response(status=status, text="" if status == 204 else "nope")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.add_routes([web.post("/api/v1/write", self.handle)])
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, HOST, self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def series(n: int, tag: str = "x") -> list[TimeSeries]:
    return [
        ((("__name__", "m_total"), ("i", f"{tag}{i}")), ((float(i), 1000 + i),), ())
        for i in range(n)
    ]


def writer(url: str, **queue: object) -> tuple[RemoteWriter, Metrics]:
    cfg = RemoteWriteConfig.model_validate(
        {
            "url": url,
            "headers": {"X-Test": "yes"},
            "remote_timeout": "2s",
            "queue_config": {"min_backoff": "10ms", "max_backoff": "40ms", **queue},
        }
    )
    metrics = Metrics()
    return RemoteWriter(cfg, add_org_id=True, metrics=metrics), metrics


async def drain(w: RemoteWriter, task: asyncio.Task[None], timeout: float = 10.0) -> None:
    """Let the writer finish what is queued, then stop it."""
    w.stopping(asyncio.get_running_loop().time() + timeout)
    await asyncio.wait_for(task, timeout + 1)


def test_requests_carry_snappy_protobuf_headers_and_the_tenant() -> None:
    async def main() -> None:
        async with Receiver() as rx:
            w, m = writer(rx.url, max_samples_per_send=3)
            w.enqueue("tenant-a", series(4, "a"))
            w.enqueue("tenant-b", series(1, "b"))
            await drain(w, asyncio.create_task(w.run()))
            assert m.sent_samples == 5 and not m.drops
            sizes = [(h["X-Scope-OrgID"], len(req.timeseries)) for h, req in rx.requests]
            assert sizes == [("tenant-a", 3), ("tenant-a", 1), ("tenant-b", 1)]
            headers = rx.requests[0][0]
            assert headers["Content-Encoding"] == "snappy"
            assert headers["Content-Type"] == "application/x-protobuf"
            assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
            assert headers["X-Test"] == "yes"
            first = rx.requests[0][1].timeseries[0]
            assert [(lb.name, lb.value) for lb in first.labels] == [
                ("__name__", "m_total"),
                ("i", "a0"),
            ]
            assert (first.samples[0].value, first.samples[0].timestamp) == (0.0, 1000)

    asyncio.run(main())


def test_server_errors_are_retried_until_accepted() -> None:
    async def main() -> None:
        async with Receiver([500, 429]) as rx:
            w, m = writer(rx.url)
            w.enqueue("t", series(2))
            await drain(w, asyncio.create_task(w.run()))
            assert m.sent_samples == 2
            assert m.failures == {"http_500": 1, "http_429": 1}
            assert len(rx.requests) == 1

    asyncio.run(main())


def test_refused_samples_are_dropped_without_retry() -> None:
    async def main() -> None:
        async with Receiver([400]) as rx:
            w, m = writer(rx.url)
            w.enqueue("t", series(3))
            await drain(w, asyncio.create_task(w.run()))
            assert m.drops == {"rejected": 3} and m.sent_samples == 0
            assert m.failures == {"http_400": 1}

    asyncio.run(main())


def test_dead_endpoint_drops_after_retries_and_the_queue_stays_bounded() -> None:
    async def main() -> None:
        closed = f"http://{HOST}:{free_port()}/api/v1/write"  # nothing listens there
        w, m = writer(closed, capacity=5, max_retries=2, max_samples_per_send=100)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(4):
            w.enqueue("t", series(3, f"r{i}"))  # never waits, whatever the endpoint does
        assert loop.time() - t0 < 0.05
        assert w.queued == 5 and m.drops["queue_full"] == 7
        task = asyncio.create_task(w.run())
        await drain(w, task)
        assert m.drops["retries_exhausted"] == 5 and m.sent_samples == 0
        assert m.failures["connection"] == 3  # the first try and two retries
        assert w.queued == 0 and m.queue == 0

    asyncio.run(main())


def test_stopping_gives_up_at_the_deadline() -> None:
    async def main() -> None:
        closed = f"http://{HOST}:{free_port()}/api/v1/write"
        w, m = writer(closed, max_retries=1000, min_backoff="50ms", max_backoff="50ms")
        w.enqueue("t", series(2))
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await drain(w, task, timeout=0.3)
        assert loop.time() - t0 < 1.0
        assert sum(m.drops.values()) == 2

    asyncio.run(main())
