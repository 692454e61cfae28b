"""The S3 backend against a real S3-protocol server on loopback (moto's standalone server):
the backend contract, block round trips with range reads, and a running threadline whose
blocks live in the bucket: ingest, flush, query, compaction, restart, and a second server
with an empty data directory that finds every block in the bucket."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path

import obstore
import orjson
import pytest

from s3_server import MotoS3
from storage_helpers import request, start_server
from test_compactor_server import metas, push, search_count, spans_of, wait_for
from test_storage_backend import backend_contract, blocks_roundtrip
from threadline.config import load_config
from threadline.storage.factory import make_backend


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    server = MotoS3(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def s3_backend(moto: MotoS3, tmp_path: Path, prefix: str = ""):  # type: ignore[no-untyped-def]
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    storage = moto.storage_config(bucket, prefix=prefix)
    cfg = load_config(None, {"data_dir": str(tmp_path), "storage": storage})
    return make_backend(cfg), bucket


def test_s3_backend_contract(moto: MotoS3, tmp_path: Path) -> None:
    backend, _ = s3_backend(moto, tmp_path)
    assert backend.kind == "s3"
    backend_contract(backend)


def test_s3_prefix_keeps_keys_apart(moto: MotoS3, tmp_path: Path) -> None:
    backend, bucket = s3_backend(moto, tmp_path, prefix="traces/prod")
    backend.write("t/b/meta.json", b"{}")
    assert backend.list_dirs("") == ["t"]
    raw = make_backend(load_config(None, {"storage": moto.storage_config(bucket)}))
    assert [o.key for o in raw.list("traces/")] == ["traces/prod/t/b/meta.json"]


def test_s3_blocks_roundtrip(moto: MotoS3, tmp_path: Path) -> None:
    backend, _ = s3_backend(moto, tmp_path)
    blocks_roundtrip(backend, tmp_path)


def test_server_on_s3_ingests_queries_compacts_and_restarts(moto: MotoS3, tmp_path: Path) -> None:
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    cfg = {
        "storage": moto.storage_config(bucket),
        "compactor": {"compaction": {"compaction_cycle": "300ms"}},
    }
    traces = list(range(1, 11))
    server = start_server(tmp_path / "data", cfg)
    try:
        push(server, request(traces, range(1, 5)))
        server.flush()
        push(server, request(traces, range(5, 9)))
        server.flush()
        # no block files on local disk: they are in the bucket
        assert metas(server.data_dir) == []
        for n in traces:
            assert len(spans_of(server, n)) == 8
        assert search_count(server) == 80
        backend = make_backend(load_config(None, {"storage": cfg["storage"]}))
        # the compactor merges the two blocks and writes the tenant index into the bucket
        wait_for(
            lambda: (
                len([o for o in backend.list("single-tenant/") if o.key.endswith("/meta.json")])
                == 1
            )
        )
        wait_for(lambda: backend.exists("single-tenant/index.json.gz"))
        index = orjson.loads(gzip.decompress(backend.read("single-tenant/index.json.gz")))
        assert len(index["meta"]) >= 1
        assert search_count(server) == 80
    finally:
        server.stop()
    server.start()  # restart: every block is found again in the bucket
    try:
        assert all(len(spans_of(server, n)) == 8 for n in traces)
        assert search_count(server) == 80
    finally:
        server.stop()
    other = start_server(tmp_path / "fresh", cfg)  # nothing local at all
    try:
        assert all(len(spans_of(other, n)) == 8 for n in traces)
        assert search_count(other) == 80
        assert spans_of(other, 999) == []
    finally:
        other.stop()


def test_obstore_is_the_only_client() -> None:
    """S3, GCS and Azure all go through obstore (no hand-written request signing)."""
    import threadline.storage.backend as backend_module

    source = Path(backend_module.__file__).read_text()
    assert "import obstore" in source and "hmac" not in source
    assert obstore.__version__


def test_log_blocks_on_s3(moto: MotoS3, tmp_path: Path) -> None:
    """Log blocks go to the same bucket (under .logs/), are found again after a restart and
    merged there."""
    import asyncio
    import os

    from test_logstore import batch
    from threadline.logstore.store import PREFIX, LogStore

    bucket = f"b-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    cfg = load_config(
        None,
        {
            "data_dir": str(tmp_path),
            "storage": moto.storage_config(bucket),
            "logs": {"compact_after_blocks": 2},
        },
    )
    trace = os.urandom(16)

    async def run() -> None:
        store = LogStore(cfg, make_backend(cfg), tmp_path / "wal-logs")
        store.start()
        for k in range(2):
            await store.push("t", batch(trace, 3, 1_700_000_000_000_000_000 + k))
            await store.flush("t")
        assert not (tmp_path / "blocks").exists()  # nothing on local disk
        assert len(store.backend.list(f"{PREFIX}/t/")) == 4  # two blocks, two metas
        await store.shutdown()
        again = LogStore(cfg, make_backend(cfg), tmp_path / "wal-logs")
        again.start()
        assert len(again.trace_logs("t", trace)) == 6
        await again.maintain(now_ns=1_700_000_000_000_000_000)
        assert len(again.blocks["t"]) == 1 and len(again.trace_logs("t", trace)) == 6
        await again.shutdown()

    asyncio.run(run())
