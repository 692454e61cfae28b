"""Fuzzes ``threadline.config.load_config`` on any YAML file.

A file gives a ``Config`` or a ``ConfigError``. Input is written as UTF-8 (a file that is not
UTF-8 is one of three known escapes in config.py, pinned as strict xfails in
tests/test_hostile_config.py; the other two, a size past a float and nesting past the recursion
limit, are recognized here so that the run goes on to look for new ones).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from threadline.config import ConfigError, load_config

_PATH = Path(tempfile.mkdtemp(prefix="threadline-fuzz-")) / "threadline.yaml"


def test_one_input(data: bytes) -> None:
    _PATH.write_text(data.decode("utf-8", errors="replace"))
    try:
        load_config(_PATH)
    except ConfigError:
        pass
    except OverflowError as e:  # known: parse_size of a number past a float
        assert "infinity" in str(e), e
    except RecursionError:  # known: yaml nested past the recursion limit
        pass


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
