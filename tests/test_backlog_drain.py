"""A full backlog drains by itself: with ``max_unflushed_bytes`` far below ``max_block_bytes``,
pushes past the backlog get room as soon as the next flush check writes what is held, instead
of waiting for a full block or for ``max_block_duration``."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from conftest import Server
from otlp_requests import trace_request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_pushes_past_a_small_backlog_are_taken_without_waiting_for_a_full_block(
    tmp_path: Path,
) -> None:
    cfg = {
        "ingester": {
            "max_unflushed_bytes": "64KiB",
            "backlog_wait": "60s",  # a push that waits for room does not fail the test early
            "flush_check_period": "100ms",
            "trace_idle_period": "1h",  # nothing becomes idle: only the backlog can cut
        },
    }
    server = Server(tmp_path / "data", cfg).start()
    try:
        call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
        started = time.monotonic()
        for n in range(40):
            call(trace_request(n)[0], timeout=60)
        took = time.monotonic() - started
        blocks = list((tmp_path / "data" / "blocks").glob("*/*/meta.json"))
        assert blocks, "the backlog was never written"
        assert took < 30, took  # far below max_block_duration (5 min) and backlog_wait
        assert server.metric("threadline_receiver_refused_requests_total") == 0
    finally:
        server.stop()
