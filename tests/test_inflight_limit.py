"""``distributor.max_inflight_bytes``: request bytes being decoded and pushed at once are bounded;
past the limit a push waits briefly, then gets 503 / UNAVAILABLE naming the limit, and the
server stays healthy."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from threadline.config import Config
from threadline.distributor.distributor import Distributor, InflightBudget, Overloaded
from threadline.selfmetrics import SelfMetrics

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def big_request(spans: int = 1000, attr_bytes: int = 2000) -> bytes:
    """One trace of ``spans`` spans; every call gives a request of the same size."""
    trace_id = os.urandom(16)
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = "op"
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_000_000_001_000
        span.attributes.add(key="payload").value.string_value = "x" * attr_bytes
    return req.SerializeToString()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_concurrent_large_pushes_past_the_limit_are_refused_and_the_server_stays_healthy(
    tmp_path: Path,
) -> None:
    size = len(big_request())  # about 2 MiB
    cfg = {
        # four requests fit, a fifth does not
        "distributor": {"max_inflight_bytes": 4 * size + size // 2},
        # the backlog is full after the first push, and no flush check drains it: pushes are
        # held there
        "ingester": {
            "max_unflushed_bytes": "1KiB",
            "backlog_wait": "5s",
            "flush_check_period": "1h",
        },
    }
    server = Server(tmp_path / "data", cfg).start()
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def post(kind: str) -> None:
        body = big_request()
        if kind == "grpc":
            channel = grpc.insecure_channel(
                server.grpc_target, options=[("grpc.max_send_message_length", 64 * 2**20)]
            )
            try:
                channel.unary_unary(EXPORT)(body, timeout=60)
                outcome = ("grpc", 200, "")
            except grpc.RpcError as e:
                status = 503 if e.code() == grpc.StatusCode.UNAVAILABLE else 500
                outcome = ("grpc", status, e.details() or "")
            finally:
                channel.close()
        else:
            r = server.request(
                "POST",
                server.otlp_http + "/v1/traces",
                body=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            outcome = (kind, r.status, r.data.decode(errors="replace"))
        with lock:
            results.append(outcome)

    def start(kinds: list[str]) -> list[threading.Thread]:
        threads = [threading.Thread(target=post, args=(k,)) for k in kinds]
        for t in threads:
            t.start()
        return threads

    def inflight() -> float:
        return server.metric("threadline_distributor_inflight_bytes")

    try:
        post("http")  # fills the backlog
        assert results.pop() == ("http", 200, "")
        # four pushes take the whole budget, waiting for the backlog
        holders = start(["http"] * 4)
        wait_for(lambda: inflight() == 4 * size)
        # more pushes find no room: refused after a brief wait, naming the limit
        for t in start(["http", "grpc"] * 4):
            t.join()
        refused = list(results)
        assert len(refused) == 8, refused
        for kind, status, message in refused:
            assert status == 503, (kind, status, message)
            assert "distributor.max_inflight_bytes" in message, message
            assert "retry later" in message, message
        assert inflight() == 4 * size  # the holders were never disturbed
        assert server.metric("threadline_receiver_refused_requests_total", reason="inflight_limit")
        for t in holders:
            t.join()
        held = results[8:]
        assert [s for _, s, m in held] == [503] * 4 and all("backlog full" in m for *_, m in held)
        # healthy: nothing in flight any more, queries answer, pushes are taken again
        assert inflight() == 0
        assert server.get("/ready").status == 200
        results.clear()
        for kind in ("grpc", "http"):
            server.flush()  # empties the (tiny) backlog
            post(kind)
        assert [s for _, s, _ in results] == [200, 200], results
    finally:
        server.stop()


def distributor(limit: int, wait: float = 5.0) -> Distributor:
    cfg = Config.model_validate({"distributor": {"max_inflight_bytes": limit}})
    ingester: Any = SimpleNamespace(cfg=cfg)
    return Distributor(ingester, SelfMetrics(), inflight_wait=wait)


def test_budget_admits_in_arrival_order_and_a_too_large_request_alone() -> None:
    async def run() -> None:
        budget = InflightBudget(100, lambda used: None)
        order: list[str] = []
        assert await budget.acquire(60, 1)

        async def take(name: str, n: int) -> None:
            assert await budget.acquire(n, 5)
            order.append(name)

        big = asyncio.create_task(take("big", 500))  # larger than the limit: waits for empty
        await asyncio.sleep(0)
        small = asyncio.create_task(take("small", 10))  # fits, but waits behind the big one
        await asyncio.sleep(0)
        assert order == []
        budget.release(60)
        await big
        assert order == ["big"] and budget.used == 500
        budget.release(500)
        await small
        assert order == ["big", "small"] and budget.used == 10

    asyncio.run(run())


def test_budget_wait_times_out_or_is_cancelled_without_leaking_bytes() -> None:
    async def run() -> None:
        budget = InflightBudget(100, lambda used: None)
        assert await budget.acquire(100, 1)
        assert not await budget.acquire(1, 0.01)
        waiter = asyncio.create_task(budget.acquire(50, 5))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        budget.release(100)
        assert budget.used == 0
        assert await budget.acquire(100, 0.01)

    asyncio.run(run())


def test_admit_before_reading_a_body_is_not_counted_twice() -> None:
    async def run() -> None:
        d = distributor(1000, wait=0.01)
        async with d.admit(400, "test"):
            assert d.inflight.used == 400
            # a body that turned out bigger (decompressed) adds only the difference, at once
            async with d.admit(900, "test"):
                assert d.inflight.used == 900
            async with d.admit(300, "test"):
                assert d.inflight.used == 400
            # another request finds no room
            other = asyncio.create_task(_admit_elsewhere(d, 700))
            with pytest.raises(Overloaded, match=r"max_inflight_bytes = 1000"):
                await other
        assert d.inflight.used == 0
        assert d.metrics.inflight_bytes._value.get() == 0

    asyncio.run(run())


async def _admit_elsewhere(d: Distributor, n: int) -> None:
    async with d.admit(n, "test"):
        pass
