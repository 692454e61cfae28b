"""A real Prometheus for the generator tests: its own process on a free loopback port.

The binary is ``prometheus`` on PATH or ``/usr/bin/prometheus``; when neither exists it is
installed once from Debian's ``prometheus`` package (apt-get as root), under a file lock so that
parallel xdist workers do not race. If that is impossible the test fails with a message saying
how to install it (never a silent skip). Debian's own service is not used: each test starts its
own process with the remote-write receiver and exemplar storage on, a throwaway TSDB directory
and a minimal config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import urllib3
from filelock import FileLock

from conftest import HOST, free_port

CANDIDATES = ("/usr/bin/prometheus", "/usr/local/bin/prometheus")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")  # Debian's hook saying whether services may start
INSTALL_HINT = "install it with: apt-get update && apt-get install -y prometheus"


def _find() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


def prometheus_binary() -> str:
    """The Prometheus binary, installing Debian's package first when there is none."""
    found = _find()
    if found:
        return found
    lock = FileLock(os.path.join(tempfile.gettempdir(), "threadline-prometheus-install.lock"))
    with lock:
        found = _find()  # another worker may have installed it meanwhile
        if found:
            return found
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise RuntimeError(
                f"Prometheus is needed by this test and is not installed; {INSTALL_HINT}"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        log = []
        # keep the package's own service (port 9090) from starting: tests run their own process
        own_policy = not POLICY_RC_D.exists()
        if own_policy:
            POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n")
            POLICY_RC_D.chmod(0o755)
        try:
            for cmd in (
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "prometheus"],
            ):
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
                log.append(proc.stdout[-2000:] + proc.stderr[-2000:])
                if proc.returncode != 0:
                    raise RuntimeError(
                        f"installing Prometheus failed ({' '.join(cmd)}): {log[-1]}; "
                        + INSTALL_HINT
                    )
        finally:
            if own_policy:
                POLICY_RC_D.unlink(missing_ok=True)
        found = _find()
        if not found:
            raise RuntimeError(f"apt-get installed no prometheus binary: {log}; {INSTALL_HINT}")
        return found


class Prometheus:
    """One Prometheus process with ``--web.enable-remote-write-receiver``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = urllib3.PoolManager(retries=False, timeout=30)
        self.log_path = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def remote_write_url(self) -> str:
        return self.url + "/api/v1/write"

    def start(self, timeout: float = 60.0) -> Prometheus:
        binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n")
        cmd = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--web.enable-remote-write-receiver",
            "--enable-feature=exemplar-storage",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: {self.log()}")
            try:
                if self.http.request("GET", self.url + "/-/ready").status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def api(self, path: str, **params: Any) -> Any:
        r = self.http.request("GET", self.url + path, fields=params)
        doc = orjson.loads(r.data)
        assert r.status == 200 and doc["status"] == "success", (r.status, doc)
        return doc["data"]

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query: labels (without ``__name__``) → value."""
        data = self.api("/api/v1/query", query=expr)
        out = {}
        for item in data["result"]:
            labels = tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__"))
            out[labels] = float(item["value"][1])
        return out

    def value(self, expr: str) -> float | None:
        """The single value of an instant query (None when it returns nothing)."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return next(iter(result.values()), None)

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        return self.api("/api/v1/query_exemplars", query=expr, start=str(start), end=str(end))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
