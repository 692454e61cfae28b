"""Blocks: Parquet in trace-start order, trace index, bloom filter, atomic visibility."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_requests import trace_request
from threadline.config import BlockConfig
from threadline.model.otlp_decode import decode_export_request
from threadline.model.schema import ARRAY_COLUMNS, BLOCK_SCHEMA, SPAN_SCHEMA
from threadline.querier.trace_by_id import TraceFinder
from threadline.storage.backend import LocalBackend
from threadline.storage.block_reader import Block
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist
from threadline.storage.bloom import BloomFilter, probe_hashes
from threadline.storage.tool import verify_block
from threadline.storage.trace_index import INDEX_FILE


def spans(n_traces: int) -> tuple[pa.Table, list[bytes]]:
    tables, ids = [], []
    for n in range(n_traces):
        body, trace = trace_request(n)
        tables.append(pa.Table.from_batches([decode_export_request(body).batch]))
        ids.append(bytes.fromhex(trace))
    return pa.concat_tables(tables), ids


def test_write_and_find(tmp_path: Path) -> None:
    table, ids = spans(300)
    meta = write_block(tmp_path, "t1", table, BlockConfig(row_group_spans=256), wal_through=7)
    assert meta.total_spans == table.num_rows
    assert meta.total_objects == 300
    assert meta.wal_through == 7
    assert meta.total_records == len(meta.row_groups) > 1
    block = Block.open(tmp_path / "t1" / meta.block_id)
    data = pq.read_table(block.path / "data.parquet")
    # no span holds an array attribute: the array columns are left out
    without_arrays = [f for f in BLOCK_SCHEMA if f.name not in ARRAY_COLUMNS.names]
    assert data.schema.equals(pa.schema(without_arrays))
    starts = data.column("trace_start_unix_nano").to_pylist()
    assert starts == sorted(starts)
    for tid in ids[::17]:
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None and rows.num_rows == 8
        assert set(rows.column("trace_id").to_pylist()) == {tid}
    missing = os.urandom(16)
    assert block.find_trace(missing, probe_hashes(missing)) is None


def _shuffled_ids(table: pa.Table, seed: int) -> tuple[pa.Table, dict[bytes, bytes]]:
    """``table`` with each trace id replaced by a random one (every third a 64-bit id, its
    first 8 bytes zero), so trace-id order and start order differ."""
    rng = random.Random(seed)
    new: dict[bytes, bytes] = {}
    for i, tid in enumerate(dict.fromkeys(table.column("trace_id").to_pylist())):
        raw = rng.randbytes(16)
        new[tid] = bytes(8) + raw[8:] if i % 3 == 0 else raw
    ids = pa.array([new[t] for t in table.column("trace_id").to_pylist()], pa.binary(16))
    return table.set_column(table.schema.get_field_index("trace_id"), "trace_id", ids), new


def test_rows_in_trace_start_order_found_through_the_index(tmp_path: Path) -> None:
    base, _ = spans(300)
    table, _ = _shuffled_ids(base, 1)
    meta = write_block(tmp_path, "t1", table, BlockConfig(row_group_spans=260))
    block = Block.open(tmp_path / "t1" / meta.block_id)
    assert block.indexed and len(block.index) == 300
    data = pq.read_table(block.path / "data.parquet")
    starts = data.column("trace_start_unix_nano").to_pylist()
    assert starts == sorted(starts)
    tids = data.column("trace_id").to_pylist()
    assert tids != sorted(tids)
    # each trace's rows are contiguous and in start order
    runs = [t for i, t in enumerate(tids) if i == 0 or tids[i - 1] != t]
    assert len(runs) == len(set(runs)) == 300
    by_trace: dict[bytes, list[int]] = {}
    for row in table.select(["trace_id", "start_unix_nano"]).to_pylist():
        by_trace.setdefault(row["trace_id"], []).append(row["start_unix_nano"])
    for tid, want in by_trace.items():
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None
        assert set(rows.column("trace_id").to_pylist()) == {tid}
        assert rows.column("start_unix_nano").to_pylist() == sorted(want)
    assert verify_block(block).ok


def test_verify_notices_a_trace_index_that_does_not_match(tmp_path: Path) -> None:
    table, _ = _shuffled_ids(spans(40)[0], 2)
    meta = write_block(tmp_path, "t1", table, BlockConfig(row_group_spans=260))
    block = Block.open(tmp_path / "t1" / meta.block_id)
    index = block.path / INDEX_FILE
    raw = bytearray(index.read_bytes())
    raw[8] ^= 1  # the first entry's first row
    index.write_bytes(bytes(raw))
    problems = " ".join(verify_block(Block.open(block.path)).problems)
    assert "traces: sha256" in problems and "does not match the rows' trace ids" in problems


def test_traces_across_row_group_boundaries_come_back_whole(tmp_path: Path) -> None:
    table, ids = spans(300)
    # 8 spans a trace and 260-row groups: every other group boundary cuts a trace in two
    meta = write_block(tmp_path, "t1", table, BlockConfig(row_group_spans=260))
    block = Block.open(tmp_path / "t1" / meta.block_id)
    by_trace: dict[bytes, list[dict[str, object]]] = {}
    for row in table.to_pylist():
        by_trace.setdefault(row["trace_id"], []).append(row)
    straddling = 0
    for tid in ids:
        straddling += len(block.row_groups_for(tid)) > 1
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None and rows.schema.equals(table.schema)
        key = lambda r: r["span_id"]  # noqa: E731
        assert sorted(rows.to_pylist(), key=key) == sorted(by_trace[tid], key=key)
    assert straddling >= 4


def test_columns_empty_in_a_row_group_are_skipped_and_read_back_empty(tmp_path: Path) -> None:
    table, ids = spans(100)
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.scope.attributes.add(key="scope.flag").value.bool_value = True
    span = ss.spans.add(trace_id=os.urandom(16), span_id=b"\x01" * 8, name="linked")
    span.start_time_unix_nano, span.end_time_unix_nano = 10**18, 10**18 + 5
    span.links.add(trace_id=ids[0], span_id=b"\x02" * 8).attributes.add(key="k").value.int_value = 3
    span.events.add(time_unix_nano=10**18 + 1, name="boom")
    linked = pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    meta = write_block(
        tmp_path, "t1", pa.concat_tables([table, linked]), BlockConfig(row_group_spans=256)
    )
    block = Block.open(tmp_path / "t1" / meta.block_id)
    empty = [block._empty_columns(g) for g in range(len(meta.row_groups))]
    [special] = block.row_groups_for(span.trace_id)
    assert "links" not in empty[special] and "scope_attrs_bool" not in empty[special]
    assert all(
        {"links", "events", "scope_attrs_bool"} <= e for g, e in enumerate(empty) if g != special
    )
    assert "span_attrs_int" not in set().union(*empty)  # every span has one

    rows = block.find_trace(span.trace_id, probe_hashes(span.trace_id))
    assert rows is not None and rows.schema.equals(SPAN_SCHEMA)
    [row] = rows.to_pylist()
    assert [(link["trace_id"], link["attrs_int"]) for link in row["links"]] == [
        (ids[0], [("k", 3)])
    ]
    assert [e["name"] for e in row["events"]] == ["boom"]
    assert row["scope_attrs_bool"] == [("scope.flag", True)]
    for tid in ids[::9]:
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None and rows.schema.equals(SPAN_SCHEMA) and rows.num_rows == 8
        for row in rows.to_pylist():
            assert row["links"] == [] and row["events"] == [] and row["scope_attrs_bool"] == []
            assert row["resource_attrs_str"] == [("service.name", "durable")]


def test_a_trace_split_over_blocks_comes_back_sorted_by_start_without_duplicates(
    tmp_path: Path,
) -> None:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    trace = os.urandom(16)
    for i in range(6):
        start = 10**18 + (5 - i) * 1000  # later spans first in the request
        ss.spans.add(
            trace_id=trace,
            span_id=bytes([i + 1]) * 8,
            name=f"s{i}",
            start_time_unix_nano=start,
            end_time_unix_nano=start + 10,
        )
    rows = pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    # two blocks with interleaved halves, and one span in both (a retried push)
    write_block(tmp_path, "t1", rows.take([0, 2, 4, 1]), BlockConfig())
    write_block(tmp_path, "t1", rows.take([1, 3, 5]), BlockConfig())
    blocklist = Blocklist(LocalBackend(tmp_path))
    blocklist.load()
    found = asyncio.run(TraceFinder(None, blocklist).find("t1", trace))
    assert found is not None
    assert found.column("name").to_pylist() == ["s5", "s4", "s3", "s2", "s1", "s0"]


def test_nested_attribute_leaves_are_dictionary_encoded(tmp_path: Path) -> None:
    table, _ = spans(50)
    meta = write_block(tmp_path, "t1", table, BlockConfig())
    footer = pq.ParquetFile(tmp_path / "t1" / meta.block_id / "data.parquet").metadata
    group = footer.row_group(0)
    encodings = {
        group.column(i).path_in_schema: group.column(i).encodings for i in range(group.num_columns)
    }
    for leaf in ("resource_attrs_str.key_value.key", "span_attrs_int.key_value.value", "name"):
        assert "RLE_DICTIONARY" in encodings[leaf], leaf
    # nearly unique per row: plain (or delta) encoded, no dictionary
    for leaf in ("span_id", "start_unix_nano"):
        assert "RLE_DICTIONARY" not in encodings[leaf], leaf


def test_bloom_has_no_false_negatives_and_few_false_positives() -> None:
    ids = [os.urandom(16) for _ in range(20000)]
    # Jaeger-style 64-bit ids widened to 128: the high half is all zero
    ids += [bytes(8) + os.urandom(8) for _ in range(20000)]
    bloom = BloomFilter.for_count(len(ids), 0.01)
    bloom.add(pa.array(ids, pa.binary(16)))
    assert all(bloom.may_contain(probe_hashes(i)) for i in ids)
    false = sum(bloom.may_contain(probe_hashes(os.urandom(16))) for _ in range(20000))
    assert false < 20000 * 0.03


def test_unfinished_block_is_invisible_and_removed(tmp_path: Path) -> None:
    table, _ = spans(5)
    meta = write_block(tmp_path, "t1", table, BlockConfig())
    leftover = tmp_path / "t1" / ".tmp-crashed"
    leftover.mkdir()
    (leftover / "data.parquet").write_bytes(b"half a file")
    blocklist = Blocklist(tmp_path)
    blocklist.load()
    assert [b.id for b in blocklist.blocks("t1")] == [meta.block_id]
    assert not leftover.exists()


def test_lookups_from_many_threads_at_once_are_answered(tmp_path: Path) -> None:
    """Trace-by-id lookups of one block from several threads at once (as concurrent requests
    make them): every answer whole, no failure (a shared Parquet reader once crashed here)."""
    from concurrent.futures import ThreadPoolExecutor

    table, ids = spans(300)
    meta = write_block(tmp_path, "t1", table, BlockConfig(row_group_spans=256))
    block = Block.open(tmp_path / "t1" / meta.block_id)

    def look(tid: bytes) -> int:
        rows = block.find_trace(tid, probe_hashes(tid))
        assert rows is not None
        return rows.num_rows

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(look, ids * 4))
    assert counts == [8] * len(ids) * 4
