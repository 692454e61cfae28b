"""Object-storage servers for tests, all on loopback.

- ``MotoS3``: moto's standalone server (``moto[server]`` from PyPI), which speaks the S3 REST
  protocol (SigV4-signed requests, range GETs, ListObjectsV2, multipart uploads).
- ``Azurite``: Microsoft's Azure Storage emulator from the npm registry, installed on first use
  under ``build/azurite`` (skipped when npm or the registry is not available).
- ``FlakyProxy``: a TCP proxy in front of a server that can be switched off and on, to make a
  backend briefly unreachable.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "threadline-test"
SECRET_KEY = "threadline-test-secret"


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port}: {log.read_text()[-2000:]}")


class MotoS3:
    def __init__(self, workdir: Path) -> None:
        pytest.importorskip("moto.server", reason="moto[server] is not installed")
        self.port = free_port()
        self.log = workdir / "moto.log"
        cmd = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, self.log)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def create_bucket(self, name: str) -> None:
        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200

    def storage_config(self, bucket: str, endpoint: str | None = None, **extra: object) -> dict:
        s3 = {
            "bucket": bucket,
            "endpoint": endpoint or self.endpoint,
            "region": "us-east-1",
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "insecure": True,
            **extra,
        }
        return {"trace": {"backend": "s3", "s3": s3}}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented well-known development key (not a secret)
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_binary() -> Path | None:
    """``azurite-blob``: on PATH, or installed from npm into build/azurite on first use."""
    found = shutil.which("azurite-blob")
    if found:
        return Path(found)
    prefix = ROOT / "build" / "azurite"
    binary = prefix / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        return None
    from filelock import FileLock

    prefix.mkdir(parents=True, exist_ok=True)
    with FileLock(str(prefix / ".install.lock")):
        if not binary.exists():
            subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "azurite@3"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=600,
                check=False,
            )
    return binary if binary.exists() else None


class Azurite:
    def __init__(self, workdir: Path) -> None:
        binary = azurite_binary()
        if binary is None:
            pytest.skip("azurite (npm) is not available")
        self.port = free_port()
        self.log = workdir / "azurite.log"
        data = workdir / "azurite-data"
        data.mkdir(exist_ok=True)
        cmd = [
            str(binary),
            "--blobHost",
            HOST,
            "--blobPort",
            str(self.port),
            "--location",
            str(data),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, self.log)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/{AZURITE_ACCOUNT}"

    def create_container(self, name: str) -> None:
        azure_blob = pytest.importorskip("azure.storage.blob")
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"
        )
        azure_blob.BlobServiceClient.from_connection_string(conn).create_container(name)

    def storage_config(self, container: str) -> dict:
        azure = {
            "container_name": container,
            "storage_account_name": AZURITE_ACCOUNT,
            "storage_account_key": AZURITE_KEY,
            "endpoint": self.endpoint,
            "insecure": True,
        }
        return {"trace": {"backend": "azure", "azure": azure}}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class FlakyProxy:
    """Forwards loopback TCP connections to ``target_port``; ``down()`` refuses new
    connections and cuts open ones, ``up()`` resumes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, self.port))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def down(self) -> None:
        self._up.clear()
        with self._lock:
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.close()
            self._conns.clear()

    def up(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self.down()
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if not self._up.is_set():
                # a reset rather than a hang: the client sees the backend as unreachable
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
