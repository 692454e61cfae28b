"""Client libraries that cannot share the test environment, each in a virtualenv of its own.

Some real clients the tests must use pin old dependencies: ``opentelemetry-exporter-jaeger-thrift``
1.21 needs ``opentelemetry-sdk==1.21``, ``opentelemetry-exporter-zipkin-proto-http`` pins
``protobuf~=3.12``. Each ``ClientVenv`` is built once under ``.venv-<name>/`` at the repository
root from PyPI (reused by later runs while its requirements are unchanged), guarded by a file lock
so that parallel pytest-xdist workers wait for one builder instead of racing.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent


class ClientEnvError(RuntimeError):
    """The client venv could not be built (no package index, a package that will not install)."""


@dataclass(frozen=True)
class ClientVenv:
    name: str
    requirements: tuple[str, ...]

    @property
    def root(self) -> Path:
        return REPO / f".venv-{self.name}"

    def python(self) -> Path:
        """The venv's interpreter, building the venv first if needed (once, under a lock)."""
        py = self.root / "bin" / "python"
        marker = self.root / "threadline-requirements.txt"
        wanted = "\n".join(self.requirements) + "\n"
        with FileLock(str(self.root) + ".lock", timeout=900):
            if py.exists() and marker.exists() and marker.read_text() == wanted:
                return py
            if self.root.exists():
                subprocess.run(["rm", "-rf", str(self.root)], check=True)
            pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            steps = [[sys.executable, "-m", "venv", str(self.root)], [*pip, *self.requirements]]
            for cmd in steps:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    raise ClientEnvError(
                        f"{' '.join(cmd[:4])} ... failed ({done.returncode}): {done.stderr[-2000:]}"
                    )
            marker.write_text(wanted)
        return py


JAEGER_CLIENTS = ClientVenv(
    "jaeger-client",
    (
        "opentelemetry-api==1.21.0",
        "opentelemetry-sdk==1.21.0",
        "opentelemetry-exporter-jaeger-thrift==1.21.0",
        "Deprecated",
        "jaeger-client==4.8.0",
        "six",  # imported by jaeger-client's generated thrift code, not declared by it
    ),
)

ZIPKIN_PROTO_CLIENT = ClientVenv(
    "zipkin-proto-client",
    (
        "opentelemetry-api==1.45.2",
        "opentelemetry-sdk==1.45.2",
        "opentelemetry-exporter-zipkin-proto-http==1.45.1",
        "protobuf==3.20.3",
    ),
)
