"""Configuration: YAML + flags, refused with a message naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from threadline.config import ConfigError, load_config, parse_duration, parse_size


def test_defaults() -> None:
    cfg = load_config()
    assert cfg.server.http_port == 3200
    assert cfg.distributor.receivers.otlp.grpc_port == 4317
    assert cfg.distributor.receivers.otlp.http_port == 4318
    assert cfg.data_dir == Path("data")
    assert cfg.multitenancy_enabled is False


def test_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "ingester:\n  trace_idle_period: 1m30s\n  max_block_bytes: 64MiB\n"
        "server:\n  http_port: 9000\n"
    )
    cfg = load_config(path, {"server": {"host": "0.0.0.0"}})
    assert cfg.ingester.trace_idle_period == 90.0
    assert cfg.ingester.max_block_bytes == 64 * 2**20
    assert cfg.server.http_port == 9000
    assert cfg.server.host == "0.0.0.0"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ingester:\n  trace_idle_perid: 5s\n", "unknown config key 'ingester.trace_idle_perid'"),
        ("server:\n  http_port: lots\n", "'server.http_port'"),
        ("ingester:\n  max_block_duration: soon\n", "'ingester.max_block_duration'"),
        ("bogus: 1\n", "unknown config key 'bogus'"),
        ("- a\n- b\n", "mapping"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert needle in str(err.value)


def test_serve_refuses_bad_config_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("distributor:\n  receivers:\n    otlp:\n      grcp_port: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "threadline.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "distributor.receivers.otlp.grcp_port" in proc.stderr


def test_units() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1h2m") == 3720.0
    assert parse_duration(3) == 3.0
    assert parse_size("1KiB") == 1024
    with pytest.raises(ValueError):
        parse_duration("5 parsecs")
