"""The storage backend interface: the local directory backend and the block protocol on top of
it (``meta.json`` last, unfinished blocks invisible, remote-style reads through range caches)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from otlp_requests import trace_request
from threadline.config import BlockConfig
from threadline.model.otlp_decode import decode_export_request
from threadline.querier.sources import DataSources, Source
from threadline.storage.backend import Backend, LocalBackend
from threadline.storage.block_reader import Block, BlockCaches
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist
from threadline.storage.bloom import probe_hashes
from threadline.storage.cache import DiskChunks, RangeCache


def spans(first: int, n_traces: int) -> tuple[pa.Table, list[bytes]]:
    tables, ids = [], []
    for n in range(first, first + n_traces):
        body, trace = trace_request(n)
        tables.append(pa.Table.from_batches([decode_export_request(body).batch]))
        ids.append(bytes.fromhex(trace))
    return pa.concat_tables(tables), ids


def backend_contract(backend: Backend) -> None:
    """What every backend must do; run against local, S3 and Azure."""
    backend.write("t1/b1/meta.json", b"{}")
    backend.write("t1/b1/data.parquet", b"0123456789")
    backend.write("t2/b9/x", b"x")
    assert backend.read("t1/b1/data.parquet") == b"0123456789"
    assert backend.read_range("t1/b1/data.parquet", 2, 3) == b"234"
    assert backend.read_ranges("t1/b1/data.parquet", [(0, 2), (8, 2)]) == [b"01", b"89"]
    assert backend.size("t1/b1/data.parquet") == 10
    assert backend.exists("t1/b1/meta.json")
    assert not backend.exists("t1/b1/nothing")
    with pytest.raises(FileNotFoundError):
        backend.read("t1/b1/nothing")
    assert sorted(o.key for o in backend.list("t1/")) == ["t1/b1/data.parquet", "t1/b1/meta.json"]
    assert backend.list_dirs("") == ["t1", "t2"]
    assert backend.list_dirs("t1/") == ["b1"]
    backend.write("t1/b1/meta.json", b'{"v": 2}')  # overwrite
    assert backend.read("t1/b1/meta.json") == b'{"v": 2}'
    backend.delete("t1/b1/meta.json")
    backend.delete("t1/b1/meta.json")  # a missing object is fine
    assert not backend.exists("t1/b1/meta.json")
    backend.delete_block("t1", "b1")
    backend.delete_block("t2", "b9")
    assert backend.list("t1/") == []


def blocks_roundtrip(backend: Backend, tmp_path: Path) -> None:
    """Blocks written to ``backend`` are found by a fresh block list and read back."""
    table, ids = spans(0, 60)
    cfg = BlockConfig(row_group_spans=256)
    meta = write_block(backend, "t1", table, cfg, staging_dir=tmp_path / "staging")
    assert meta.checksums.keys() == {"data.parquet", "bloom", "traces"}
    caches = BlockCaches(RangeCache(2**20, 4096, DiskChunks(tmp_path / "cache", 2**30)))
    blocklist = Blocklist(backend, caches)
    blocklist.load()
    (block,) = blocklist.blocks("t1")
    assert block.id == meta.block_id
    for tid in ids[::7]:
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None and rows.num_rows == 8
    missing = os.urandom(16)
    assert block.find_trace(missing, probe_hashes(missing)) is None
    assert block.read_table().num_rows == table.num_rows


def test_local_backend_contract(tmp_path: Path) -> None:
    backend_contract(LocalBackend(tmp_path / "blocks"))


def test_local_blocks_roundtrip(tmp_path: Path) -> None:
    blocks_roundtrip(LocalBackend(tmp_path / "blocks"), tmp_path)


def test_local_write_is_atomic_and_leaves_no_temporaries(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.write("t/b/f", b"a" * 1000)
    backend.write("t/b/f", b"b" * 10)
    assert [p.name for p in (tmp_path / "t" / "b").iterdir()] == ["f"]
    with pytest.raises(ValueError):
        backend.read("../etc/passwd")


class _RecordingBackend(LocalBackend):
    """A local backend that does not rename: it uploads file by file, recording the order."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written: list[str] = []

    def local_path(self, key: str) -> Path | None:
        return None  # look remote: stage elsewhere, upload file by file, read by ranges

    def write_file(self, key: str, path: Path) -> None:
        self.written.append(key)
        super().write_file(key, path)


def test_upload_writes_meta_last_and_remote_reads_use_ranges(tmp_path: Path) -> None:
    backend = _RecordingBackend(tmp_path / "bucket")
    table, ids = spans(0, 1500)
    cfg = BlockConfig(row_group_spans=256)
    meta = write_block(backend, "t1", table, cfg, staging_dir=tmp_path / "staging")
    assert backend.written[-1] == f"t1/{meta.block_id}/meta.json"
    assert len(backend.written) == 4  # data, bloom, trace index, meta
    assert not any((tmp_path / "staging").iterdir()), "staging directory not cleaned up"
    ranges = RangeCache(2**20, 1024)
    block = Block(backend, meta, BlockCaches(ranges))
    assert block.remote
    rows = block.find_trace(ids[3], probe_hashes(ids[3]))
    assert rows is not None and rows.num_rows == 8
    # the footer and one row group, not the whole file
    assert ranges.nbytes < meta.footer_size + meta.size / 8, (ranges.nbytes, meta.size)


def test_queries_over_remote_blocks_read_only_the_ranges_they_need(tmp_path: Path) -> None:
    backend = _RecordingBackend(tmp_path / "bucket")
    table, _ = spans(0, 10000)
    # one big row group: DuckDB fetches small row groups whole, big ones column by column
    meta = write_block(backend, "t1", table, BlockConfig(row_group_spans=32768))
    ranges = RangeCache(2**30, 16 * 1024)
    blocklist = Blocklist(backend, BlockCaches(ranges))
    blocklist.load()
    sources = DataSources(None, blocklist)
    query = "SELECT count(*), min(duration_nano) FROM {} WHERE name = 'op-3'"

    def run(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[int, int]:
        assert source.block is not None and source.relation.startswith("read_parquet('tlblock://")
        return con.execute(query.format(source.relation)).fetchone()

    [(_, found)] = sources.each("t1", None, None, run)
    assert found == (10000, 1000)
    # two columns of a wide row: a small part of the file, read in ranges
    assert 0 < ranges.nbytes < meta.size / 2, (ranges.nbytes, meta.size)
    data = backend.root / "t1" / meta.block_id / "data.parquet"
    assert duckdb.execute(query.format(f"read_parquet('{data}')")).fetchone() == found


def test_unfinished_upload_is_invisible(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    table, _ = spans(0, 5)
    meta = write_block(backend, "t1", table, BlockConfig())
    # an upload that stopped before meta.json: data only
    backend.write("t1/half-done/data.parquet", b"PAR1 half")
    blocklist = Blocklist(backend)
    blocklist.load()
    assert [b.id for b in blocklist.blocks("t1")] == [meta.block_id]
    assert "half-done" in blocklist.orphans("t1")


def test_range_cache_is_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    backend = _RecordingBackend(tmp_path / "src")
    payload = os.urandom(10_000)
    backend.write("t/b/data.parquet", payload)
    disk = DiskChunks(tmp_path / "cache", 2500)
    cache = RangeCache(2000, 1000, disk)
    for start in range(0, 10_000, 700):
        assert (
            cache.read(backend, "t/b/data.parquet", 10_000, start, 900)
            == payload[start : start + 900]
        )
    assert cache.nbytes <= 2000 and disk.nbytes <= 2500
    assert len(list((tmp_path / "cache").iterdir())) <= 2
    # the last chunks read are still on disk: a fresh memory tier reads them without the store
    fresh = RangeCache(2000, 1000, disk)
    assert fresh.read(backend, "t/b/data.parquet", 10_000, 9000, 1000) == payload[9000:]
    assert fresh.misses == 0


def test_point_reads_in_big_row_groups_match_a_full_scan(tmp_path: Path) -> None:
    """Big row groups are decoded only up to the trace's last row: same rows as a scan."""
    table, ids = spans(0, 1200)  # 9600 spans: two row groups of up to 8192
    meta = write_block(tmp_path, "t1", table, BlockConfig(row_group_spans=8192))
    assert [rg.rows for rg in meta.row_groups] == [8192, 1408]
    block = Block.open(tmp_path / "t1" / meta.block_id)
    data = block.read_table()
    for tid in [*ids[::97], ids[-1], min(ids), max(ids)]:
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None
        want = data.filter(pc.equal(data.column("trace_id"), pa.scalar(tid)))
        assert rows.column("span_id").to_pylist() == want.column("span_id").to_pylist()
        assert rows.num_rows == 8
