"""Graceful stop: SIGTERM / SIGINT finish the requests under way, write live spans to blocks and
exit 0, so that the next start replays nothing; a second signal exits at once."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from conftest import HOST, Server
from otel_helpers import make_trace, trace_hex
from otlp_requests import SPANS_PER_TRACE, trace_request


def wait_for_log(server: Server, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not logged: {server.log()}"
        time.sleep(0.02)


def wal_segments(server: Server) -> list[Path]:
    return sorted((server.data_dir / "wal").glob("*.wal"))


def exit_code(server: Server, timeout: float = 60.0) -> int:
    assert server.proc is not None
    return server.proc.wait(timeout=timeout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_push_under_way_is_finished_and_nothing_is_replayed(
    tmp_path: Path, sig: signal.Signals
) -> None:
    server = Server(tmp_path / "data").start()
    earlier = trace_request(1)
    body, trace = trace_request(2)
    grpc.insecure_channel(server.grpc_target).unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    )(earlier[0], timeout=10)
    # an HTTP push whose body is still arriving when the signal comes
    conn = socket.create_connection((HOST, server.otlp_http_port), timeout=30)
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn.sendall(head + body[:10])
    server.get("/ready")  # the request above has been taken in by now (same event loop)
    server.proc.send_signal(sig)  # type: ignore[union-attr]
    wait_for_log(server, "stopping gracefully")
    conn.sendall(body[10:])
    answer = conn.recv(4096)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert exit_code(server) == 0, server.log()
    assert "every span is in blocks, the WAL is empty" in server.log()
    assert wal_segments(server) == []

    server.start()
    try:
        assert server.metric("threadline_wal_replayed_records_total") == 0
        assert server.span_count(trace) == SPANS_PER_TRACE
        assert server.span_count(earlier[1]) == SPANS_PER_TRACE
    finally:
        server.stop()


def test_sigterm_during_a_stream_of_sdk_exports_keeps_every_acknowledged_span(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "data").start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def export_until_refused() -> None:
        exporter = OTLPSpanExporter(endpoint=server.grpc_target, insecure=True, timeout=5)
        while not stop.is_set():
            spans = make_trace("shop", n_children=4)
            if exporter.export(spans) is not SpanExportResult.SUCCESS:
                break  # the server is gone: this export was never acknowledged
            with lock:
                acked.append(trace_hex(spans))
        exporter.shutdown()

    threads = [threading.Thread(target=export_until_refused) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 50:
        assert time.monotonic() < deadline, "the exports did not get going"
        time.sleep(0.01)
    server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert exit_code(server) == 0, server.log()
    stop.set()
    for t in threads:
        t.join()
    assert wal_segments(server) == []

    server.start()
    try:
        assert server.metric("threadline_wal_replayed_records_total") == 0
        missing = [t for t in acked if server.span_count(t) != 5]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged traces lost"
    finally:
        server.stop()


def test_a_second_signal_exits_at_once_and_the_wal_keeps_the_spans(tmp_path: Path) -> None:
    # a push whose body never completes holds the drain for up to graceful_shutdown_timeout
    server = Server(tmp_path / "data", {"server": {"graceful_shutdown_timeout": "60s"}}).start()
    body, trace = trace_request(7)
    conn = socket.create_connection((HOST, server.otlp_http_port), timeout=30)
    conn.sendall(
        (
            f"POST /v1/traces HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-protobuf"
            f"\r\nContent-Length: {len(body) + 1}\r\n\r\n"
        ).encode()
        + body[:5]
    )
    server.get("/ready")
    grpc.insecure_channel(server.grpc_target).unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    )(body, timeout=10)
    server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    wait_for_log(server, "stopping gracefully")  # it waits for the unfinished push
    server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert exit_code(server, timeout=30) == 128 + signal.SIGTERM.value
    conn.close()
    assert wal_segments(server)  # nothing was cut into blocks: the WAL has it

    server.start()
    try:
        assert server.metric("threadline_wal_replayed_records_total") >= 1
        assert server.span_count(trace) == SPANS_PER_TRACE
    finally:
        server.stop()
