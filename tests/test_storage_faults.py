"""Faults: a process killed in the middle of a compaction or of a block upload leaves no partial
block visible and loses nothing; a backend that is briefly unreachable makes block writes retry
with backoff while pushes are acknowledged into the WAL up to ``max_unflushed_bytes``, then
refused with 503 / UNAVAILABLE until the backend is back.

Kills use the named crash points of ``threadline.storage.faults`` (``THREADLINE_CRASH_AT``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import urllib3
import yaml

from s3_server import FlakyProxy, MotoS3
from storage_helpers import request, start_server
from test_compactor_server import (
    TRACES,
    push,
    search_count,
    spans_of,
    stored_spans,
    wait_for,
    write_split_blocks,
)
from threadline.config import load_config
from threadline.storage.factory import make_backend
from threadline.storage.faults import ENV, EXIT_STATUS

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def compact_cli(data: Path, crash_at: str | None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    env.pop(ENV, None)
    if crash_at:
        env[ENV] = crash_at
    # a process of its own has a data directory of its own; the blocks directory is the server's
    own = data.parent / "compact-cli"
    config = data.parent / "compact-cli.yaml"
    config.write_text(
        yaml.safe_dump({"storage": {"trace": {"local": {"path": str(data / "blocks")}}}})
    )
    cmd = [sys.executable, "-m", "threadline.cli", "blocks", "compact", "--config", str(config)]
    cmd += ["--data-dir", str(own)]
    return subprocess.run(cmd, env=env, capture_output=True, timeout=120)


def live_metas(data: Path) -> list[Path]:
    metas = (data / "blocks" / "single-tenant").glob("*/meta.json")
    return [m for m in metas if not m.parent.name.startswith(".")]


@pytest.mark.parametrize(
    ("point", "output_visible"),
    [
        ("compaction:before_meta", False),
        ("compaction:after_write", True),
        ("compaction:after_mark", True),
    ],
)
def test_compactor_killed_mid_compaction(tmp_path: Path, point: str, output_visible: bool) -> None:
    data = tmp_path / "data"
    # the server compacts nothing itself (the tool does: one compactor per blocks directory)
    # and lists the directory at every (frequent) poll: a tenant index the crashed tool wrote
    # before compacting counts as stale at once
    cfg = {
        "compactor": {"enabled": False},
        "storage": {
            "trace": {"blocklist_poll": "100ms", "blocklist_poll_stale_tenant_index": "1ms"}
        },
    }
    server = start_server(data, cfg)
    try:
        expected = write_split_blocks(server)
        duplicates = 5 * 4
        assert stored_spans(server) == expected + duplicates
        assert search_count(server) == expected  # each span listed once
        done = compact_cli(data, point)
        assert done.returncode == EXIT_STATUS, done.stderr.decode()
        assert f"crash point {point}" in done.stderr.decode()
        # whatever the point, every span is there exactly once (the duplicates are gone only
        # once the compacted block is visible, and then the inputs are hidden)
        time.sleep(0.5)  # a few polls
        want = expected if output_visible else expected + duplicates
        assert stored_spans(server) == want
        assert search_count(server) == expected
        for n in TRACES:
            assert len(spans_of(server, n)) == 9
        # the next run finishes the job (marks leftover inputs, or compacts from scratch)
        done = compact_cli(data, None)
        assert done.returncode == 0, done.stderr.decode()
        wait_for(lambda: stored_spans(server) == expected)
        assert len(live_metas(data)) == 1
    finally:
        server.stop()
    server.start()
    try:
        # the dead writer's staging directory is gone (the compactor's cleanup, or a restart);
        # a running process's own temporary index file may come and go meanwhile
        tenant_dir = data / "blocks" / "single-tenant"
        assert not [p for p in tenant_dir.glob(".tmp-*") if p.is_dir()]
        assert search_count(server) == expected
        assert all(len(spans_of(server, n)) == 9 for n in TRACES)
    finally:
        server.stop()


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_server_killed_mid_upload_loses_nothing(
    tmp_path: Path, moto: MotoS3, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    cfg: dict[str, object] = {}
    if backend == "s3":
        bucket = f"b-{uuid.uuid4().hex[:12]}"
        moto.create_bucket(bucket)
        cfg["storage"] = moto.storage_config(bucket)
    monkeypatch.setenv(ENV, "upload:before_meta")
    server = start_server(tmp_path / "data", cfg)
    push(server, request(TRACES, range(1, 9)))  # acknowledged: in the WAL
    with pytest.raises(urllib3.exceptions.HTTPError):
        server.flush()  # the process dies half way through the upload
    assert server.proc is not None and server.proc.wait(timeout=10) == EXIT_STATUS
    monkeypatch.delenv(ENV)
    store = make_backend(load_config(None, {"data_dir": str(server.data_dir), **cfg}))
    keys = [o.key for o in store.list("single-tenant/")]
    if backend == "s3":
        # data and bloom were uploaded, meta.json (the commit point) was not
        assert keys and not any(k.endswith("/meta.json") for k in keys)
    server.start()
    try:
        for n in TRACES:
            assert len(spans_of(server, n)) == 8  # replayed from the WAL, not from the orphan
        assert search_count(server) == len(TRACES) * 8
        server.flush()
        assert search_count(server) == len(TRACES) * 8
        assert stored_spans(server) == len(TRACES) * 8  # the orphan is not read
        metas = [o.key for o in store.list("single-tenant/") if o.key.endswith("/meta.json")]
        assert len(metas) == 1
    finally:
        server.stop()
    server.start()  # the block alone (WAL segments are gone once in the block)
    try:
        assert search_count(server) == len(TRACES) * 8
        assert stored_spans(server) == len(TRACES) * 8
    finally:
        server.stop()


def behind_proxy(moto: MotoS3, ingester: dict[str, str]) -> tuple[str, FlakyProxy, dict]:
    """A new bucket reached through a ``FlakyProxy`` (no client retries: a refused connection
    fails the request at once), and a server config with ``ingester`` settings."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    proxy = FlakyProxy(moto.port)
    storage = moto.storage_config(bucket, endpoint=proxy.endpoint)
    storage["trace"].update({"max_retries": 0, "request_timeout": "2s"})
    return bucket, proxy, {"storage": storage, "ingester": ingester}


def test_unreachable_backend_retries_then_refuses_then_recovers(
    tmp_path: Path, moto: MotoS3
) -> None:
    ingester = {
        "trace_idle_period": "100ms",
        "flush_check_period": "50ms",
        "max_block_duration": "200ms",
        "max_unflushed_bytes": "200KiB",
        "backlog_wait": "300ms",
        "flush_retry_min_backoff": "100ms",
        "flush_retry_max_backoff": "500ms",
    }
    _, proxy, cfg = behind_proxy(moto, ingester)
    server = start_server(tmp_path / "data", cfg)
    try:
        push(server, request([1000], range(1, 9)))
        wait_for(lambda: server.metric("threadline_ingester_blocks_written_total") == 1)
        proxy.down()
        acked: list[int] = []
        refused_http = None
        for n in range(2000, 2400):
            body = request([n], range(1, 9), attr="x" * 200)
            r = server.request(
                "POST",
                server.otlp_http + "/v1/traces",
                body=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            if r.status == 503:
                refused_http = r
                break
            assert r.status == 200, r.data
            acked.append(n)
        assert refused_http is not None, "pushes were never refused"
        assert len(acked) > 10, "pushes were refused before the backlog bound"
        assert b"ingester backlog full" in refused_http.data
        channel = grpc.insecure_channel(server.grpc_target)
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(EXPORT)(request([3000], range(1, 9)), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        # block writes are retried (with backoff) while the backend is away
        wait_for(lambda: server.metric("threadline_ingester_flush_failures_total") >= 3)
        for n in acked[:: max(1, len(acked) // 5)]:
            assert len(spans_of(server, n)) == 8  # acknowledged spans are served from memory
        proxy.up()
        wait_for(lambda: server.metric("threadline_ingester_live_bytes") == 0, timeout=30)
        push(server, request([4000], range(1, 9)))  # accepted again
        for n in [1000, *acked, 4000]:
            assert len(spans_of(server, n)) == 8, n
        assert spans_of(server, 3000) == []
    finally:
        server.stop()
        proxy.close()


def wal_segments(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "wal").iterdir() if p.is_file())


def test_flush_answers_503_while_the_backend_is_unreachable(tmp_path: Path, moto: MotoS3) -> None:
    ingester = {
        # traces are cut only by /flush; the flush check only retries failed block writes
        "trace_idle_period": "1h",
        "max_block_duration": "1h",
        "flush_check_period": "50ms",
        "flush_retry_min_backoff": "1s",
        "flush_retry_max_backoff": "1s",
    }
    bucket, proxy, cfg = behind_proxy(moto, ingester)
    data = tmp_path / "data"
    server = start_server(data, cfg)
    store = make_backend(load_config(None, {"data_dir": str(data), **cfg}))

    def block_metas() -> list[str]:
        return [o.key for o in store.list("single-tenant/") if o.key.endswith("/meta.json")]

    try:
        push(server, request([1], range(1, 9)))
        proxy.down()
        for path in ("/flush", "/flush?tenant=single-tenant"):
            r = server.request("POST", server.api + path)
            assert r.status == 503, (path, r.status, r.data)
            text = r.data.decode()
            assert "flush failed" in text and f"s3://{bucket}" in text, text
            assert "tenant single-tenant" in text and "retried" in text, text
        assert server.metric("threadline_ingester_flush_failures_total") >= 2
        assert server.metric("threadline_ingester_blocks_written_total") == 0
        # nothing lost: served from memory, and the WAL keeps the spans
        assert len(spans_of(server, 1)) == 8
        assert server.metric("threadline_ingester_live_bytes") > 0
        assert wal_segments(data)
        # the failed write is retried in the background once the backend is back
        proxy.up()
        wait_for(lambda: server.metric("threadline_ingester_blocks_written_total") == 1)
        assert server.metric("threadline_ingester_live_bytes") == 0
        assert len(block_metas()) == 1

        push(server, request([2], range(1, 9)))
        proxy.down()
        assert server.request("GET", server.api + "/flush").status == 503
        proxy.up()
        server.flush()  # 204: the data is durable in the bucket now
        assert server.metric("threadline_ingester_live_bytes") == 0
        assert len(block_metas()) == 2
        for n in (1, 2):
            assert len(spans_of(server, n)) == 8
    finally:
        server.stop()
        proxy.close()
    # after a restart the spans come from the blocks in the bucket, none from the WAL
    server = start_server(data, {**cfg, "storage": moto.storage_config(bucket)})
    try:
        assert server.metric("threadline_ingester_live_bytes") == 0
        assert search_count(server) == 16
        assert stored_spans(server) == 16
        for n in (1, 2):
            assert len(spans_of(server, n)) == 8
    finally:
        server.stop()
