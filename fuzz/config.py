"""Fuzzes ``threadline.config.load_config`` on any YAML file.

A file (any bytes) gives a ``Config`` or a ``ConfigError``, nothing else.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from threadline.config import ConfigError, load_config

_PATH = Path(tempfile.mkdtemp(prefix="threadline-fuzz-")) / "threadline.yaml"


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_config(_PATH)


def seeds() -> Iterator[bytes]:
    yield yaml.safe_dump(
        {
            "server": {"http_port": 3200, "graceful_shutdown_timeout": "30s"},
            "distributor": {"max_request_bytes": "16MiB", "receivers": {"otlp": {"grpc_port": 0}}},
            "ingester": {"trace_idle_period": "5s", "max_block_bytes": "256MiB"},
            "storage": {"trace": {"backend": "local"}, "block": {"zstd_level": 5}},
            "sampling": {"default_strategy": {"type": "probabilistic", "param": 1.0}},
        }
    ).encode()
    yield os.fsencode("multitenancy_enabled: true\nwal: {fsync: false}\n")
