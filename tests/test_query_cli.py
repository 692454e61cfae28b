"""``threadline query``: against a running server and straight from its data directory."""

from __future__ import annotations

import subprocess
import sys

import grpc
import orjson
import pytest

from conftest import Server
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
    assert "--url or --data-dir" in out.stderr
