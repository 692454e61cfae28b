"""Shared test fixtures: a real ``threadline serve`` process on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
import yaml

HOST = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    pass


class Server:
    """One server process; ``start`` waits for /ready, ``kill`` sends SIGKILL."""

    def __init__(self, data_dir: Path, extra_config: dict[str, Any] | None = None) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.otlp_http_port = free_port()
        self.zipkin_port = free_port()
        self.jaeger_http_port = free_port()
        self.jaeger_grpc_port = free_port()
        self.jaeger_compact_port = free_port(socket.SOCK_DGRAM)
        self.jaeger_binary_port = free_port(socket.SOCK_DGRAM)
        self.sampling_port = free_port()
        self.extra_config = extra_config or {}
        # test data carries fixed timestamps (2023): the default retention (336h) would expire
        # its blocks at the compactor's next cycle, so a test that runs past a cycle (a busy
        # machine) loses them; retention tests set their own
        compaction = self.extra_config.setdefault("compactor", {}).setdefault("compaction", {})
        compaction.setdefault("block_retention", "1000000h")
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = urllib3.PoolManager(retries=False, timeout=30)
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def api(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def otlp_http(self) -> str:
        return f"http://{HOST}:{self.otlp_http_port}"

    @property
    def grpc_target(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    def command(self) -> list[str]:
        """The ``threadline serve`` command line of this server (its config file written)."""
        config = self.data_dir.parent / f"{self.data_dir.name}-config.yaml"
        config.write_text(yaml.safe_dump(self.extra_config))
        return [
            sys.executable,
            "-m",
            "threadline.cli",
            "serve",
            "--config",
            str(config),
            "--data-dir",
            str(self.data_dir),
            "--host",
            HOST,
            "--http-port",
            str(self.http_port),
            "--otlp-grpc-port",
            str(self.grpc_port),
            "--otlp-http-port",
            str(self.otlp_http_port),
            "--zipkin-port",
            str(self.zipkin_port),
            "--jaeger-thrift-http-port",
            str(self.jaeger_http_port),
            "--jaeger-grpc-port",
            str(self.jaeger_grpc_port),
            "--jaeger-agent-compact-port",
            str(self.jaeger_compact_port),
            "--jaeger-agent-binary-port",
            str(self.jaeger_binary_port),
            "--sampling-port",
            str(self.sampling_port),
        ]

    def start(self, timeout: float = 30.0) -> Server:
        """Start (or restart) the server; a port another test process took meanwhile (a
        restart reuses the ports) is replaced by a fresh one, a few times."""
        for _ in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                self._new_ports()
        return self._start(timeout)

    def _new_ports(self) -> None:
        for name in (
            "http_port", "grpc_port", "otlp_http_port", "zipkin_port", "jaeger_http_port",
            "jaeger_grpc_port", "sampling_port",
        ):  # fmt: skip
            setattr(self, name, free_port())
        self.jaeger_compact_port = free_port(socket.SOCK_DGRAM)
        self.jaeger_binary_port = free_port(socket.SOCK_DGRAM)

    def _start(self, timeout: float) -> Server:
        cmd = self.command()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        offset = log.tell()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.log_path.read_bytes()[offset:].decode(errors="replace")
                if "address already in use" in output:
                    raise PortTaken(output)
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log()}")
            # our own process's word, not just any server answering on the port
            if b"threadline is running" in self.log_path.read_bytes()[offset:]:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def get(self, path: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        return self.http.request("GET", self.api + path, headers=headers)

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        return self.http.request(method, url, **kwargs)

    def span_count(self, trace: str, headers: dict[str, str] | None = None) -> int:
        """Spans of ``trace`` (hex id) that trace by ID answers (0 when it is not found)."""
        r = self.get(f"/api/traces/{trace}", headers=headers)
        if r.status == 404:
            return 0
        assert r.status == 200, r.data
        doc = orjson.loads(r.data)
        return sum(len(ss["spans"]) for b in doc["batches"] for ss in b["scopeSpans"])

    def flush(self, tenant: str | None = None) -> None:
        path = "/flush" + (f"?tenant={tenant}" if tenant else "")
        r = self.http.request("POST", self.api + path)
        assert r.status == 204, r.data

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        text = self.get("/metrics").data.decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module, default config."""
    srv = Server(tmp_path_factory.mktemp("srv") / "data").start()
    yield srv
    srv.stop()
