"""``threadline query``: against a running server, straight from its data directory, and
straight from the object storage that ``--config`` names (a real S3 server on loopback)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
import yaml

from conftest import Server
from s3_server import MotoS3
from storage_helpers import start_server
from traceql_dataset import ALL_KEYS, TRACE_IDS, request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli", "query", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)(request(ALL_KEYS), timeout=10)
    return server


def test_table_from_a_running_server(loaded: Server) -> None:
    out = run("{ status = error }", "--url", loaded.api)
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split()[:3] == ["TRACE", "ID", "ROOT"]
    t1 = [r for r in rows if r.startswith(TRACE_IDS["T1"].hex())]
    assert len(t1) == 1
    cells = t1[0].split()
    assert cells[1] == "frontend"
    assert cells[-2:] == ["500ms", "2"]


def test_json_and_data_dir_agree_with_the_api(loaded: Server) -> None:
    query = '{ resource.service.name = "payment" }'
    via_url = orjson.loads(run(query, "--url", loaded.api, "--json").stdout)
    # the data is still only in the WAL: the CLI replays it read-only
    via_dir = orjson.loads(run(query, "--data-dir", str(loaded.data_dir), "--json").stdout)
    ids = {t["traceID"] for t in via_url["traces"]}
    assert ids == {TRACE_IDS["T1"].hex(), TRACE_IDS["T3"].hex()}
    assert {t["traceID"] for t in via_dir["traces"]} == ids
    loaded.flush()
    from_blocks = orjson.loads(run(query, "--data-dir", str(loaded.data_dir), "--json").stdout)
    assert {t["traceID"] for t in from_blocks["traces"]} == ids


def test_errors(loaded: Server) -> None:
    out = run("{ status = }", "--url", loaded.api)
    assert out.returncode == 1
    assert "syntax error" in out.stderr
    out = run("{ }")
    assert out.returncode == 2
    assert "--url, or --data-dir and/or --config" in out.stderr
    out = run("{ }", "--url", loaded.api, "--config", "x.yaml")
    assert out.returncode == 2


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def write_config(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_config_reads_blocks_from_the_configured_s3_bucket(tmp_path: Path, moto: MotoS3) -> None:
    bucket = f"q-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    storage = moto.storage_config(bucket, prefix="threadline/blocks")
    server = start_server(tmp_path / "data", {"storage": storage})
    try:
        grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)(request(ALL_KEYS), timeout=10)
        server.flush()
    finally:
        server.stop()
    query = '{ resource.service.name = "payment" }'
    want = {TRACE_IDS["T1"].hex(), TRACE_IDS["T3"].hex()}
    # a data directory that holds nothing: every span must come from the bucket
    empty = tmp_path / "elsewhere"
    cfg = write_config(tmp_path / "q.yaml", {"data_dir": str(empty), "storage": storage})
    out = run(query, "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    from_bucket = orjson.loads(out.stdout)
    assert {t["traceID"] for t in from_bucket["traces"]} == want
    assert from_bucket["metrics"]["totalBlocks"] == 1
    out = run("{ status = error }", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert any(r.startswith(TRACE_IDS["T1"].hex()) for r in out.stdout.splitlines()[1:])
    # --data-dir overrides the config's data_dir: its WAL still holds the flushed spans, which
    # are recognised as already in the bucket's blocks (same answer, nothing counted twice)
    out = run(query, "--config", str(cfg), "--data-dir", str(server.data_dir), "--json")
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == from_bucket
    # another prefix of the same bucket holds nothing
    other = moto.storage_config(bucket, prefix="someone-else")
    cfg2 = write_config(tmp_path / "q2.yaml", {"data_dir": str(empty), "storage": other})
    out = run(query, "--config", str(cfg2), "--json")
    assert out.returncode == 0, out.stderr
    nothing = orjson.loads(out.stdout)
    assert nothing.get("traces", []) == []
    assert nothing["metrics"]["totalBlocks"] == 0


def test_config_errors(tmp_path: Path, moto: MotoS3) -> None:
    bad = write_config(tmp_path / "bad.yaml", {"storage": {"trace": {"backend": "tape"}}})
    out = run("{ }", "--config", str(bad))
    assert out.returncode == 2
    assert "storage.trace.backend" in out.stderr
    missing = moto.storage_config(f"missing-{uuid.uuid4().hex[:8]}")
    missing["trace"].update({"max_retries": 0})
    cfg = write_config(
        tmp_path / "missing.yaml", {"data_dir": str(tmp_path / "d"), "storage": missing}
    )
    out = run("{ }", "--config", str(cfg))
    assert out.returncode == 1
    assert "cannot list the s3 backend" in out.stderr, out.stderr


def test_a_missing_or_empty_data_dir_says_so(tmp_path: Path, loaded: Server) -> None:
    missing = tmp_path / "nowhere"
    out = run("{ }", "--data-dir", str(missing))
    assert out.returncode == 1
    assert f"there is no data directory at {missing}" in out.stderr
    assert not missing.exists()  # a reader creates nothing
    (tmp_path / "empty").mkdir()
    out = run("{ }", "--data-dir", str(tmp_path / "empty"))
    assert out.returncode == 0
    assert "no spans of tenant 'single-tenant'" in out.stderr
    assert out.stdout.splitlines()[1:] == ["(no trace matches)"]
    out = run("{ }", "--data-dir", str(loaded.data_dir), "--tenant", "other")
    assert out.returncode == 0
    assert "tenants there: single-tenant; choose one with --tenant" in out.stderr
    out = run('{ span.no_such_attribute = "x" }', "--data-dir", str(loaded.data_dir))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # there is data; nothing matched
    assert out.stdout.splitlines()[1:] == ["(no trace matches)"]
