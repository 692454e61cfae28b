"""Durability: SIGKILL in the middle of a stream loses no acknowledged span; a torn WAL tail is
dropped at start while everything before it is kept."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc

from conftest import Server
from otlp_requests import SPANS_PER_TRACE, trace_request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_sigkill_mid_stream_loses_no_acknowledged_span(tmp_path: Path) -> None:
    cfg = {
        # small blocks and fast cuts so blocks are written (and WAL segments deleted) mid-stream
        "ingester": {
            "trace_idle_period": "100ms",
            "flush_check_period": "50ms",
            "max_block_bytes": "256KiB",
        },
        "wal": {"segment_bytes": "64KiB"},
    }
    server = Server(tmp_path / "data", cfg).start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10**9))

    def pusher() -> None:
        channel = grpc.insecure_channel(server.grpc_target)
        call = channel.unary_unary(EXPORT)
        while not stop.is_set():
            with lock:
                n = next(counter)
            body, trace = trace_request(n)
            try:
                call(body, timeout=5)
            except grpc.RpcError:
                return  # the server is gone: this push was never acknowledged
            with lock:
                acked.append(trace)

    threads = [threading.Thread(target=pusher) for _ in range(4)]
    for t in threads:
        t.start()
    blocks_dir = tmp_path / "data" / "blocks"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        len(acked) < 400 or len(list(blocks_dir.glob("*/*/meta.json"))) < 2
    ):
        time.sleep(0.01)
    server.kill()  # SIGKILL while pushes are in flight
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 400, "the stream did not get going"
    assert len(list(blocks_dir.glob("*/*/meta.json"))) >= 2, "no blocks were cut mid-stream"
    wal_segments = [p.name for p in (tmp_path / "data" / "wal").glob("*.wal")]
    assert "0000000000000000.wal" not in wal_segments, "WAL segments were never cleaned up"

    server.start()
    try:
        missing = [t for t in acked if server.span_count(t) != SPANS_PER_TRACE]
        assert not missing, (
            f"{len(missing)} acknowledged traces lost or partial, e.g. {missing[:3]}"
        )
    finally:
        server.stop()


def test_torn_last_wal_record_is_dropped(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()  # defaults: nothing is cut into blocks soon
    channel = grpc.insecure_channel(server.grpc_target)
    call = channel.unary_unary(EXPORT)
    traces = []
    for n in range(5):
        body, trace = trace_request(n)
        call(body, timeout=5)
        traces.append(trace)
    server.kill()
    segments = sorted((tmp_path / "data" / "wal").glob("*.wal"))
    assert segments
    last = max((s for s in segments if s.stat().st_size), key=lambda p: p.name)
    with open(last, "r+b") as f:
        f.truncate(last.stat().st_size - 7)  # tear the last record

    server.start()
    try:
        assert server.get("/ready").status == 200
        for trace in traces[:-1]:
            assert server.span_count(trace) == SPANS_PER_TRACE
        assert server.span_count(traces[-1]) == 0
        # and the server keeps working after the repair
        body, trace = trace_request(99)
        call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
        call(body, timeout=5)
        assert server.span_count(trace) == SPANS_PER_TRACE
    finally:
        server.stop()
