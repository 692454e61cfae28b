"""One owner per data directory and exclusive ports: a second server is refused before it writes
anything, and the first one keeps every span it acknowledges."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import grpc
import orjson

from conftest import HOST, Server
from otlp_requests import SPANS_PER_TRACE, trace_request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time (ns)."""
    out = {}
    for path in directory.rglob("*"):
        st = path.stat()
        out[path.relative_to(directory).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def push(server: Server, n: int) -> str:
    body, trace = trace_request(n)
    grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)(body, timeout=10)
    return trace


def test_second_server_on_the_same_data_dir_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = Server(data).start()
    try:
        acked = [push(first, n) for n in range(5)]
        before = snapshot(data)
        second = Server(data)  # other ports, same directory
        run = subprocess.run(second.command(), capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stdout + run.stderr
        assert str(data.resolve()) in run.stderr
        assert f"PID {first.proc.pid}" in run.stderr  # type: ignore[union-attr]
        assert "in use by another threadline process" in run.stderr
        assert snapshot(data) == before
        # the first server goes on acknowledging, and keeps all of it through a kill -9
        acked += [push(first, n) for n in range(5, 10)]
        first.kill()
        first.start()
        assert all(first.span_count(t) == SPANS_PER_TRACE for t in acked)
    finally:
        first.stop()


def test_every_taken_port_is_reported_at_once_before_anything_is_written(
    tmp_path: Path,
) -> None:
    first = Server(tmp_path / "first").start()
    try:
        second = Server(tmp_path / "second")
        # the ports a second `make run` would share with the first: gRPC ones included
        second.grpc_port = first.grpc_port
        second.jaeger_grpc_port = first.jaeger_grpc_port
        second.jaeger_compact_port = first.jaeger_compact_port
        run = subprocess.run(second.command(), capture_output=True, text=True, timeout=60)
        assert run.returncode == 1
        err = run.stderr
        assert "address already in use" in err
        keys = "distributor.receivers"
        for port, flag, key in (
            (first.grpc_port, "--otlp-grpc-port", f"{keys}.otlp.grpc_port"),
            (first.jaeger_grpc_port, "--jaeger-grpc-port", f"{keys}.jaeger.grpc_port"),
            (
                first.jaeger_compact_port,
                "--jaeger-agent-compact-port",
                f"{keys}.jaeger.thrift_compact_port",
            ),
        ):
            line = next(x for x in err.splitlines() if f"{HOST}:{port}/" in x)
            assert flag in line and key in line, line
        assert f"{HOST}:{second.http_port}/" not in err  # free ports are not reported
        assert not (tmp_path / "second").exists()
    finally:
        first.stop()


def test_grpc_ports_are_bound_without_port_reuse(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    try:
        for port in (server.grpc_port, server.jaeger_grpc_port):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    s.bind((HOST, port))
                except OSError as e:
                    assert e.errno == 98  # EADDRINUSE: the server did not allow sharing
                else:
                    raise AssertionError(f"port {port} could be shared with SO_REUSEPORT")
    finally:
        server.stop()


def test_blocks_compact_is_refused_while_a_server_owns_the_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        push(server, 1)
        server.flush()
        cli = [sys.executable, "-m", "threadline.cli", "blocks"]
        listed = subprocess.run(
            [*cli, "list", "--data-dir", str(data), "--json"], capture_output=True, timeout=60
        )
        assert listed.returncode == 0, listed.stderr  # readers need no lock
        rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
        assert [r["spans"] for r in rows] == [SPANS_PER_TRACE]
        compact = subprocess.run(
            [*cli, "compact", "--data-dir", str(data)], capture_output=True, text=True, timeout=60
        )
        assert compact.returncode == 1
        assert "in use by another threadline process" in compact.stderr
    finally:
        server.stop()
    compact = subprocess.run(
        [*cli, "compact", "--data-dir", str(data)], capture_output=True, text=True, timeout=60
    )
    assert compact.returncode == 0, compact.stderr


def test_lock_outlives_no_owner(tmp_path: Path) -> None:
    """A lock file left by a killed server never blocks the next start."""
    data = tmp_path / "data"
    server = Server(data).start()
    trace = push(server, 3)
    killed = server.proc.pid  # type: ignore[union-attr]
    server.kill()
    assert (data / ".threadline.lock").read_text().strip() == str(killed)
    server.start()
    try:
        assert server.span_count(trace) == SPANS_PER_TRACE
        owner = (data / ".threadline.lock").read_text().strip()
        assert owner == str(server.proc.pid) != str(killed)  # type: ignore[union-attr]
    finally:
        server.stop()
