"""Writing a block: span rows in trace-start order into Parquet, plus trace index, bloom filter
and meta.

The block is assembled in a temporary staging directory, every file fsynced, then handed to
the backend: the local backend renames the directory into place, object stores get every file
uploaded with ``meta.json`` last. Either way ``meta.json`` is what makes it a block.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from threadline.config import BlockConfig
from threadline.model.dedicated import add_dedicated_columns, attribute_keys
from threadline.model.ids import run_starts, trace_id_words
from threadline.model.schema import (
    ARRAY_COLUMNS,
    BLOCK_SCHEMA,
    DEDICATED_COLUMNS,
    FORMAT_VERSION,
    SPAN_SCHEMA,
)
from threadline.model.trace_structure import add_trace_columns
from threadline.storage.backend import META_FILE, Backend, LocalBackend
from threadline.storage.block_reader import BLOOM_FILE, DATA_FILE
from threadline.storage.bloom import BloomFilter
from threadline.storage.cache import RangeCache
from threadline.storage.files import fsync_path
from threadline.storage.meta import BlockMeta, RowGroupRange, rfc3339
from threadline.storage.trace_index import INDEX_FILE, TraceIndex, build_trace_index

__all__ = ["BLOOM_FILE", "DATA_FILE", "META_FILE", "TMP_PREFIX", "sort_spans", "write_block"]

TMP_PREFIX = ".tmp-"

# integer columns that grow slowly inside a trace: delta encoding beats dictionaries there
_DELTA_COLUMNS = ("start_unix_nano", "duration_nano")
# leaves nearly unique per row, where a dictionary only costs; every other leaf, nested map
# keys and values included, is dictionary-encoded (smaller, and cheaper to decode)
_PLAIN_LEAVES = frozenset(
    {
        *_DELTA_COLUMNS,
        "span_id",
        "parent_span_id",
        "events.list.element.time_unix_nano",
        "links.list.element.trace_id",
        "links.list.element.span_id",
    }
)


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """The dotted Parquet paths of every leaf column ``schema`` is written as."""
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    parquet_schema = pq.ParquetFile(pa.BufferReader(sink.getvalue())).schema
    return [parquet_schema.column(i).path for i in range(len(parquet_schema))]


_DICTIONARY_LEAVES = [p for p in _leaf_paths(BLOCK_SCHEMA) if p not in _PLAIN_LEAVES]
_NESTED = [f.name for f in BLOCK_SCHEMA if pa.types.is_list(f.type) or pa.types.is_map(f.type)]


def _empty_masks(table: pa.Table, starts: np.ndarray, nested: Sequence[str]) -> list[int]:
    """For each row group (rows from ``starts[i]``), a bit mask of the ``nested`` columns with
    no entries in it."""
    masks = np.zeros(len(starts), dtype=np.int64)
    for bit, name in enumerate(nested):
        lengths = np.concatenate(
            [np.diff(chunk.offsets.to_numpy()) for chunk in table.column(name).chunks]
        )
        masks |= (np.add.reduceat(lengths, starts) == 0).astype(np.int64) << bit
    return [int(m) for m in masks]


def sort_spans(table: pa.Table) -> pa.Table:
    """Rows ordered by trace start, then trace id, then start time (``span_order``).

    A trace's rows are contiguous and in start order, and traces come in the order they began,
    so the traces of a time range are a range of rows (and of row groups, which Parquet
    statistics on ``trace_start_unix_nano`` prune). The table is moved once, column by column
    (``Table.take`` over many chunks of nested columns is several times slower).
    """
    indices = pa.array(span_order(table))
    return pa.Table.from_arrays([col.take(indices) for col in table.columns], schema=table.schema)


def span_order(table: pa.Table) -> np.ndarray:
    """The permutation that puts rows in ``sort_spans`` order, found on the key columns."""
    n = table.num_rows
    keys = [("trace_id", "ascending"), ("start_unix_nano", "ascending")]
    order = pc.sort_indices(table.select([k for k, _ in keys]), sort_keys=keys).to_numpy()
    order = order.astype(np.int64)
    if n > 1:
        firsts = run_starts(trace_id_words(table.column("trace_id").take(order)))
        starts = table.column("start_unix_nano").take(order).to_numpy()
        lengths = np.diff(np.append(firsts, n))
        # traces by their first start (stable: ties stay in trace-id order)
        by_start = np.argsort(starts[firsts], kind="stable")
        moved_firsts, moved_lengths = firsts[by_start], lengths[by_start]
        offsets = np.cumsum(moved_lengths) - moved_lengths
        order = order[np.arange(n) + np.repeat(moved_firsts - offsets, moved_lengths)]
    return order


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_block(
    target: Path | Backend,
    tenant: str,
    table: pa.Table,
    cfg: BlockConfig,
    *,
    wal_through: int = -1,
    compaction_level: int = 0,
    compacted_from: Sequence[str] = (),
    staging_dir: Path | None = None,
    crash_prefix: str = "upload",
    cache: RangeCache | None = None,
) -> BlockMeta:
    """Write ``table`` (span rows of one tenant, any order) as a new block; returns its meta.

    ``target`` is a backend, or a directory for the local backend. Remote blocks are staged
    in ``staging_dir`` (a temporary directory by default); with ``file_cache`` the staged data
    file is moved into that cache after the upload instead of being deleted.
    """
    backend = target if isinstance(target, Backend) else LocalBackend(Path(target))
    table = add_trace_columns(sort_spans(table.select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)))
    table = add_dedicated_columns(table)
    keys = attribute_keys(table)
    # array columns without a key are left out (queries take a key a block lacks for NULL)
    table = table.drop_columns([c for c in ARRAY_COLUMNS.names if not keys[c]])
    present = set(table.column_names)
    nested = [name for name in _NESTED if name in present]
    n = table.num_rows
    if n == 0:
        raise ValueError("refusing to write an empty block")
    block_id = str(uuid.uuid4())
    local_tenant_dir = backend.local_path(tenant)
    if local_tenant_dir is not None:
        # same file system as the block's final place: the upload is one rename
        staging_root = local_tenant_dir
    else:
        staging_root = staging_dir or Path(tempfile.gettempdir()) / "threadline-staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name: a process sharing the directory leaves it alone while alive
    tmp = staging_root / f"{TMP_PREFIX}{os.getpid()}-{block_id}"
    tmp.mkdir()
    try:
        ids = table.column("trace_id")
        data_path = tmp / DATA_FILE
        pq.write_table(
            table,
            data_path,
            row_group_size=cfg.row_group_spans,
            compression="zstd",
            compression_level=cfg.zstd_level,
            use_dictionary=[p for p in _DICTIONARY_LEAVES if p.split(".")[0] in present],
            column_encoding=dict.fromkeys(_DELTA_COLUMNS, "DELTA_BINARY_PACKED"),
            write_statistics=["trace_start_unix_nano", "start_unix_nano"],
        )
        fsync_path(data_path)
        pf = pq.ParquetFile(data_path)
        footer_size = pf.metadata.serialized_size
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        starts = np.cumsum([0, *sizes[:-1]])
        row_groups = [
            RowGroupRange(rows=rows, emptyMask=mask)
            for rows, mask in zip(sizes, _empty_masks(table, starts, nested), strict=True)
        ]
        index = build_trace_index(ids)
        (tmp / INDEX_FILE).write_bytes(index)
        fsync_path(tmp / INDEX_FILE)
        traces = len(TraceIndex(index))
        bloom = BloomFilter.for_count(traces, cfg.bloom_false_positive)
        bloom.add(ids)
        (tmp / BLOOM_FILE).write_bytes(bloom.to_bytes())
        fsync_path(tmp / BLOOM_FILE)
        starts = table.column("start_unix_nano")
        ends = pc.add(starts, table.column("duration_nano"))
        start_ns = pc.min(starts).as_py()
        end_ns = pc.max(ends).as_py()
        meta = BlockMeta(
            format=FORMAT_VERSION,
            blockID=block_id,
            tenantID=tenant,
            startTime=rfc3339(start_ns),
            endTime=rfc3339(end_ns),
            startUnixNano=start_ns,
            endUnixNano=end_ns,
            totalObjects=traces,
            totalSpans=n,
            size=data_path.stat().st_size,
            compactionLevel=compaction_level,
            totalRecords=len(row_groups),
            footerSize=footer_size,
            bloomBits=bloom.bits,
            bloomHashes=bloom.hashes,
            rowGroups=row_groups,
            nestedColumns=nested,
            walThrough=wal_through,
            checksums={
                DATA_FILE: file_checksum(data_path),
                BLOOM_FILE: file_checksum(tmp / BLOOM_FILE),
                INDEX_FILE: file_checksum(tmp / INDEX_FILE),
            },
            compactedFrom=list(compacted_from),
            attributeKeys=keys,
            dedicatedColumns=DEDICATED_COLUMNS.names,
        )
        (tmp / META_FILE).write_bytes(meta.to_json())
        fsync_path(tmp / META_FILE)
        fsync_path(tmp)
        backend.put_block(tenant, block_id, tmp, crash=f"{crash_prefix}:before_meta")
        if tmp.exists() and cache is not None:
            cache.adopt(f"{tenant}/{block_id}/{DATA_FILE}", tmp / DATA_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta
