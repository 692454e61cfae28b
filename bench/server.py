"""Starting a real ``threadline serve`` process for benchmarks and watching its CPU and memory."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import urllib3
import yaml

HOST = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class BenchServer:
    def __init__(self, data_dir: Path, config: dict[str, Any] | None = None) -> None:
        self.data_dir = data_dir
        self.http_port, self.grpc_port, self.otlp_http_port = free_port(), free_port(), free_port()
        self.zipkin_port, self.jaeger_http_port = free_port(), free_port()
        self.config = config or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = urllib3.PoolManager(retries=False, timeout=120)

    @property
    def api(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def start(self) -> BenchServer:
        cfg = Path(tempfile.mkstemp(suffix=".yaml")[1])
        cfg.write_text(yaml.safe_dump(self.config))
        cmd = [
            sys.executable,
            "-m",
            "threadline.cli",
            "serve",
            "--config",
            str(cfg),
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
            # receivers no benchmark uses are off, so fixed default ports never collide
            "--jaeger-grpc-port",
            "0",
            "--jaeger-agent-compact-port",
            "0",
            "--jaeger-agent-binary-port",
            "0",
            "--sampling-port",
            "0",
            "--log-level",
            "warning",
        ]
        # the start-up banner to stderr: stdout is the benchmark's JSON
        self.proc = subprocess.Popen(cmd, stdout=sys.stderr)
        for _ in range(600):
            try:
                if self.http.request("GET", self.api + "/ready").status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def metric(self, name: str) -> float:
        text = self.http.request("GET", self.api + "/metrics").data.decode()
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )

    def process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
