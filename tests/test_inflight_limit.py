"""``distributor.max_inflight_bytes``: request bytes being decoded and pushed at once are bounded;
past the limit a push waits briefly, then gets 503 / UNAVAILABLE naming the limit, and the
server stays healthy."""

from __future__ import annotations

import asyncio
import functools
import gzip
import http.client
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import HOST, Server
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


def start(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t) for t in targets]
    for t in threads:
        t.start()
    return threads


def inflight_bytes(server: Server) -> float:
    return server.metric("threadline_distributor_inflight_bytes")


def trace_of(otlp: bytes) -> str:
    """The (hex) trace id of a ``big_request``."""
    return (
        ExportTraceServiceRequest.FromString(otlp)
        .resource_spans[0]
        .scope_spans[0]
        .spans[0]
        .trace_id.hex()
    )


def zipkin_request(spans: int = 1000, attr_bytes: int = 2000) -> tuple[bytes, str]:
    """Zipkin v2 JSON of one trace of ``spans`` spans, and its trace id."""
    trace = os.urandom(16).hex()
    doc = [
        {
            "traceId": trace,
            "id": f"{i + 1:016x}",
            "name": "op",
            "timestamp": 1_700_000_000_000_000,
            "duration": 1,
            "localEndpoint": {"serviceName": "svc"},
            "tags": {"payload": "x" * attr_bytes},
        }
        for i in range(spans)
    ]
    return orjson.dumps(doc), trace


def headers_only(port: int, path: str, content_type: str, length: int) -> tuple[int, str]:
    """A POST declaring a body of ``length`` bytes that never comes: answered only by a server
    that decides before reading the body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=20)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def release_backlog(server: Server, threads: list[threading.Thread]) -> None:
    """Flush until every push held by the (tiny) ingester backlog has been answered: each flush
    lets one more in."""

    def released() -> bool:
        server.flush()
        return not any(t.is_alive() for t in threads)

    wait_for(released)


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

    try:
        post("http")  # fills the backlog
        assert results.pop() == ("http", 200, "")
        # four pushes take the whole budget, waiting for the backlog
        holders = start([functools.partial(post, "http")] * 4)
        wait_for(lambda: inflight_bytes(server) == 4 * size)
        # more pushes find no room: refused after a brief wait, naming the limit
        for t in start([functools.partial(post, k) for k in ["http", "grpc"] * 4]):
            t.join()
        refused = list(results)
        assert len(refused) == 8, refused
        for kind, status, message in refused:
            assert status == 503, (kind, status, message)
            assert "distributor.max_inflight_bytes" in message, message
            assert "retry later" in message, message
        assert inflight_bytes(server) == 4 * size  # the holders were never disturbed
        assert server.metric("threadline_receiver_refused_requests_total", reason="inflight_limit")
        for t in holders:
            t.join()
        held = results[8:]
        assert [s for _, s, m in held] == [503] * 4 and all("backlog full" in m for *_, m in held)
        # healthy: nothing in flight any more, queries answer, pushes are taken again
        assert inflight_bytes(server) == 0
        assert server.get("/ready").status == 200
        results.clear()
        for kind in ("grpc", "http"):
            server.flush()  # empties the (tiny) backlog
            post(kind)
        assert [s for _, s, _ in results] == [200, 200], results
    finally:
        server.stop()


def test_http_uploads_wait_for_inflight_room_before_their_bodies_are_read(tmp_path: Path) -> None:
    otlp_size = len(big_request())  # about 2 MiB
    zipkin_json, zipkin_trace = zipkin_request()
    # three OTLP pushes and a gzipped Zipkin push, counted at its decompressed size, fill the
    # budget; no other large request fits
    holding = 3 * otlp_size + len(zipkin_json)
    cfg = {
        "distributor": {"max_inflight_bytes": holding + otlp_size // 2},
        # the backlog is full after the first push and only /flush drains it, one push a time
        "ingester": {
            "max_unflushed_bytes": "1KiB",
            "backlog_wait": "60s",
            "flush_check_period": "1h",
        },
    }
    server = Server(tmp_path / "data", cfg).start()
    acked: list[str] = []  # traces whose push was acknowledged
    refused: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def post_otlp() -> None:
        body = big_request()
        r = server.request(
            "POST",
            server.otlp_http + "/v1/traces",
            body=body,
            headers={"Content-Type": "application/x-protobuf"},
        )
        with lock:
            if r.status == 200:
                acked.append(trace_of(body))
            else:
                refused.append(("otlp", r.status, r.data.decode(errors="replace")))

    def post_zipkin_gzip() -> None:
        r = server.request(
            "POST",
            f"http://{HOST}:{server.zipkin_port}/api/v2/spans",
            body=gzip.compress(zipkin_json),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        with lock:
            if r.status == 202:
                acked.append(zipkin_trace)
            else:
                refused.append(("zipkin", r.status, r.data.decode(errors="replace")))

    def declared_only(name: str, port: int, path: str, content_type: str) -> None:
        status, text = headers_only(port, path, content_type, otlp_size)
        with lock:
            refused.append((name, status, text))

    try:
        post_otlp()  # fills the backlog
        assert len(acked) == 1 and not refused, refused
        holders = start([post_otlp] * 3 + [post_zipkin_gzip])
        # the Zipkin body holds what it decompressed to, not the few KiB it was sent as
        wait_for(lambda: inflight_bytes(server) == holding)
        # large uploads past the limit: refused after a brief wait, naming the limit; bodies
        # that were never sent show they are refused before being read
        undelivered = [
            ("otlp-headers", server.otlp_http_port, "/v1/traces", "application/x-protobuf"),
            ("zipkin-headers", server.zipkin_port, "/api/v2/spans", "application/json"),
            ("jaeger-headers", server.jaeger_http_port, "/api/traces", "application/x-thrift"),
        ]
        others = [functools.partial(declared_only, *args) for args in undelivered]
        for t in start([post_otlp] * 4 + others):
            t.join()
        assert len(refused) == 7, refused
        assert {name for name, *_ in refused} == {
            "otlp", "otlp-headers", "zipkin-headers", "jaeger-headers"
        }  # fmt: skip
        for name, status, message in refused:
            assert status == 503, (name, status, message)
            assert "distributor.max_inflight_bytes" in message, (name, message)
            assert "retry later" in message, (name, message)
        assert inflight_bytes(server) == holding  # the holders were never disturbed
        metric = "threadline_receiver_refused_requests_total"
        assert server.metric(metric, reason="inflight_limit") == 7
        for protocol in ("otlp_http_protobuf", "zipkin_json", "jaeger_thrift_http"):
            assert server.metric(metric, protocol=protocol, reason="inflight_limit"), protocol
        # the held pushes go through once the backlog drains: every acknowledged span is there
        release_backlog(server, holders)
        assert len(acked) == 5 and len(refused) == 7, refused[7:]
        assert zipkin_trace in acked
        for trace in acked:
            assert server.span_count(trace) == 1000, trace
        # healthy: nothing in flight any more, queries answer, pushes are taken again
        assert inflight_bytes(server) == 0
        assert server.get("/ready").status == 200
        server.flush()
        post_otlp()
        assert len(acked) == 6 and len(refused) == 7, refused[7:]
        assert server.span_count(acked[-1]) == 1000
    finally:
        server.stop()


def test_a_chunked_upload_takes_inflight_room_as_its_body_arrives(tmp_path: Path) -> None:
    body = big_request()  # about 2 MiB
    trace = trace_of(body)
    server = Server(tmp_path / "data").start()
    first, second = threading.Event(), threading.Event()
    seen: list[float] = []

    def chunks() -> Any:
        yield body[: 256 * 1024]
        first.wait(30)
        yield body[256 * 1024 : 1536 * 1024]
        second.wait(30)
        yield body[1536 * 1024 :]

    def upload() -> None:
        conn = http.client.HTTPConnection(HOST, server.otlp_http_port, timeout=60)
        try:
            conn.request(
                "POST",
                "/v1/traces",
                body=chunks(),
                headers={"Content-Type": "application/x-protobuf"},
                encode_chunked=True,
            )
            r = conn.getresponse()
            seen.append(r.status)
            r.read()
        finally:
            conn.close()

    try:
        holder = start([upload])
        # no length given: 1 MiB is taken first, not the 16 MiB a body may have
        wait_for(lambda: inflight_bytes(server) == 2**20)
        first.set()
        # 1.5 MiB arrived: the reservation doubled
        wait_for(lambda: inflight_bytes(server) == 2 * 2**20)
        second.set()
        holder[0].join()
        assert seen == [200]
        assert inflight_bytes(server) == 0
        assert server.span_count(trace) == 1000
    finally:
        server.stop()


def test_grpc_calls_past_max_concurrent_rpcs_get_resource_exhausted(tmp_path: Path) -> None:
    cfg = {
        "distributor": {"max_concurrent_rpcs": 2},
        "ingester": {
            "max_unflushed_bytes": "1KiB",
            "backlog_wait": "60s",
            "flush_check_period": "1h",
        },
    }
    server = Server(tmp_path / "data", cfg).start()
    size = len(big_request(spans=100))
    acked: list[str] = []
    failed: list[tuple[grpc.StatusCode, str]] = []
    lock = threading.Lock()

    def export() -> None:
        body = big_request(spans=100)
        with grpc.insecure_channel(server.grpc_target) as channel:
            try:
                channel.unary_unary(EXPORT)(body, timeout=60)
            except grpc.RpcError as e:
                with lock:
                    failed.append((e.code(), e.details() or ""))
            else:
                with lock:
                    acked.append(trace_of(body))

    try:
        export()  # fills the backlog
        assert len(acked) == 1 and not failed, failed
        # two calls held in flight by the backlog take every slot
        holders = start([export] * 2)
        wait_for(lambda: inflight_bytes(server) == 2 * size)
        export()
        assert failed == [
            (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many calls at once: 2 opentelemetry.proto.collector.trace.v1.TraceService "
                "calls are being handled (limit distributor.max_concurrent_rpcs = 2); retry later",
            )
        ]
        assert (
            server.metric("threadline_receiver_refused_requests_total", reason="concurrency_limit")
            == 1
        )
        assert inflight_bytes(server) == 2 * size  # the held calls were not disturbed
        release_backlog(server, holders)
        assert len(acked) == 3 and len(failed) == 1, failed
        # the slots are free again
        server.flush()
        export()
        assert len(acked) == 4 and len(failed) == 1, failed
        for trace in acked:
            assert server.span_count(trace) == 100, trace
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
