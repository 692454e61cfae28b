"""Clients that misbehave: a body trickled in is cut off by the read timeout (408) without
holding the server, a dropped upload and a request that is not HTTP are one log line each, never
an ERROR traceback, and the server keeps answering."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from conftest import HOST, Server
from otlp_requests import trace_request


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cfg = {"server": {"http_server_read_timeout": "1s"}}
    srv = Server(tmp_path_factory.mktemp("clients") / "data", cfg).start()
    yield srv
    srv.stop()


def raw(port: int, data: bytes) -> socket.socket:
    conn = socket.create_connection((HOST, port), timeout=30)
    conn.sendall(data)
    return conn


def push_head(length: int) -> bytes:
    return (
        f"POST /v1/traces HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def wait_for_log(server: Server, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := server.log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} not logged: {server.log()}"
        time.sleep(0.02)
    return log


def test_a_trickled_body_is_cut_off_with_408(server: Server) -> None:
    body, _ = trace_request(1)
    conns = [raw(server.otlp_http_port, push_head(len(body)) + body[:3]) for _ in range(20)]
    started = time.monotonic()
    answers = [c.recv(4096) for c in conns]
    waited = time.monotonic() - started
    for c in conns:
        c.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0]
    assert b"server.http_server_read_timeout" in answers[0]
    assert waited < 20  # cut off by the 1 s timeout, not held
    assert server.metric("threadline_receiver_refused_requests_total", reason="read_timeout") >= 20
    assert server.get("/ready").status == 200


def test_a_dropped_upload_is_counted_not_a_traceback(server: Server) -> None:
    body, _ = trace_request(2)
    before = server.metric("threadline_receiver_refused_requests_total", reason="aborted")
    conn = raw(server.otlp_http_port, push_head(len(body)) + body[:5])
    server.get("/ready")  # the request has been taken in
    conn.close()
    deadline = time.monotonic() + 30
    while server.metric("threadline_receiver_refused_requests_total", reason="aborted") == before:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.02)
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and " ERROR " not in log, log[-2000:]


def test_bytes_that_are_not_http_get_400_and_a_warning(server: Server) -> None:
    for port, junk in (
        (server.http_port, b"\x16\x03\x01\x00\x05hello\r\n\r\n"),  # TLS to plain HTTP
        (server.zipkin_port, b"POST /api/v2/spans HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
    ):
        conn = raw(port, junk)
        assert conn.recv(4096).startswith(b"HTTP/1.0 400")
        conn.close()
    log = wait_for_log(server, "not a valid HTTP/1.x request (Invalid character in Content-Length")
    assert "Traceback" not in log and " ERROR " not in log, log[-2000:]
    # HTTP/1 on the gRPC port, and HTTP/2 on the HTTP port (the streaming search's gRPC), are
    # answered by gRPC's own HTTP/2 framing, and log nothing
    for port, first in (
        (server.grpc_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        (server.http_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ):
        conn = raw(port, first)
        assert conn.recv(9)[3:4] == b"\x04"  # an HTTP/2 SETTINGS frame
        conn.close()
    assert server.get("/ready").status == 200
