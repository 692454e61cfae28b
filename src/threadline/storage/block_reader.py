"""Reading a block: trace-id lookups through the bloom filter and the trace index.

A block's meta is kept in memory with the block list; its bloom filter and trace index are read
on the first lookup (blocks of format tl1, sorted by trace id, have the row groups' trace-id
ranges in their meta instead of an index). Blocks on the local backend are memory-mapped;
blocks in object storage are read with range requests (the footer, then only the row groups
that can hold a trace) through a bounded chunk cache, and DuckDB gets a local copy of the data
file from a bounded disk cache.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from threadline.model.schema import SPAN_SCHEMA
from threadline.storage.backend import META_FILE, Backend, LocalBackend
from threadline.storage.bloom import BloomFilter, probe_hashes
from threadline.storage.cache import RangeCache, RangeFile
from threadline.storage.meta import BlockMeta
from threadline.storage.trace_index import INDEX_FILE, TraceIndex

DATA_FILE = "data.parquet"
BLOOM_FILE = "bloom"


@dataclass(slots=True)
class BlockCaches:
    """The caches remote blocks share (the local backend reads its files in place)."""

    ranges: RangeCache


_DEFAULT_RANGES = RangeCache(64 * 2**20)


def _plain_rows(table: pa.Table) -> pa.Table:
    """A few rows read with dictionary strings (and without empty columns) as ``SPAN_SCHEMA``."""
    n = table.num_rows
    columns = []
    for field in SPAN_SCHEMA:
        at = table.schema.get_field_index(field.name)
        if at < 0:
            columns.append(pa.array([[]] * n, field.type))
            continue
        column = table.column(at)
        columns.append(column if column.type == field.type else column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=SPAN_SCHEMA)


class Block:
    """One immutable block; its meta (and, once used, bloom filter and footer) in memory."""

    def __init__(
        self, backend: Backend, meta: BlockMeta, caches: BlockCaches | None = None
    ) -> None:
        self.backend = backend
        self.meta = meta
        self.caches = caches or BlockCaches(_DEFAULT_RANGES)
        self.prefix = f"{meta.tenant_id}/{meta.block_id}/"
        local = backend.local_path(self.prefix + META_FILE)
        # the block's directory when it is on local disk (None in object storage)
        self.path: Path | None = local.parent if local is not None else None
        self._bloom: BloomFilter | None = None
        self.indexed = meta.format != "tl1"
        self._index: TraceIndex | None = None
        sizes = [rg.rows for rg in meta.row_groups]
        # first row of each row group
        self._group_starts = np.cumsum([0, *sizes[:-1]]) if sizes else np.zeros(0, np.int64)
        if not self.indexed:
            self._mins = [bytes.fromhex(rg.min_trace_id or "") for rg in meta.row_groups]
            self._maxs = [bytes.fromhex(rg.max_trace_id or "") for rg in meta.row_groups]
        self._strings: list[str] | None = None
        self._empty: dict[int, frozenset[str]] = {}
        self._footer: pq.FileMetaData | None = None
        self._per_thread = threading.local()  # a local file's ParquetFile per thread

    @classmethod
    def open(cls, path: Path) -> Block:
        """The block in directory ``path`` (``<root>/<tenant>/<block>``) of a local backend."""
        path = Path(path)
        backend = LocalBackend(path.parent.parent)
        return cls(backend, BlockMeta.from_json((path / META_FILE).read_bytes()))

    @property
    def id(self) -> str:
        return self.meta.block_id

    @property
    def tenant(self) -> str:
        return self.meta.tenant_id

    @property
    def remote(self) -> bool:
        return self.path is None

    def key(self, name: str) -> str:
        return self.prefix + name

    def overlaps(self, start_ns: int | None, end_ns: int | None) -> bool:
        if start_ns is not None and self.meta.end_unix_nano < start_ns:
            return False
        return not (end_ns is not None and self.meta.start_unix_nano > end_ns)

    @property
    def bloom(self) -> BloomFilter:
        if self._bloom is None:
            raw = self.backend.read(self.key(BLOOM_FILE))
            self._bloom = BloomFilter.from_bytes(self.meta.bloom_bits, self.meta.bloom_hashes, raw)
        return self._bloom

    def parquet(self, *, keep_dictionaries: bool = False) -> pq.ParquetFile:
        """The data file: memory-mapped when local, else over cached range reads.

        With ``keep_dictionaries`` string columns are read as dictionary arrays, not decoded
        into plain strings (cheaper when only a few of the rows read are wanted).
        A ``ParquetFile`` is not safe to read from two threads at once (concurrent row-group
        reads of a shared one failed and crashed the process): a local file's is kept per
        thread; a remote file object has a position, so each call gets its own. All share the
        parsed footer.
        """
        dictionaries = self._string_leaves() if keep_dictionaries else None
        if self.path is not None:
            files: dict[bool, pq.ParquetFile] = self._per_thread.__dict__.setdefault("files", {})
            pf = files.get(keep_dictionaries)
            if pf is None:
                pf = files[keep_dictionaries] = pq.ParquetFile(
                    self.path / DATA_FILE,
                    metadata=self._footer,
                    read_dictionary=dictionaries,
                    memory_map=True,
                )
                if self._footer is None:
                    self._footer = pf.metadata
            return pf
        source = RangeFile(self.backend, self.key(DATA_FILE), self.meta.size, self.caches.ranges)
        pf = pq.ParquetFile(source, metadata=self._footer, read_dictionary=dictionaries)
        if self._footer is None:
            self._footer = pf.metadata
        return pf

    def _string_leaves(self) -> list[str]:
        """Paths of the data file's string (byte array) leaf columns."""
        if self._strings is None:
            schema = self.parquet().schema
            self._strings = [
                schema.column(i).path
                for i in range(len(schema))
                if schema.column(i).physical_type == "BYTE_ARRAY"
            ]
        return self._strings

    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        """Every row of the block (for compaction and verification)."""
        if self.path is not None:
            return pq.ParquetFile(self.path / DATA_FILE, memory_map=True).read(columns=columns)
        raw = self.backend.read(self.key(DATA_FILE))
        return pq.ParquetFile(pa.BufferReader(raw)).read(columns=columns)

    @property
    def index(self) -> TraceIndex:
        if self._index is None:
            self._index = TraceIndex(self.backend.read(self.key(INDEX_FILE)))
        return self._index

    def _row_ranges(self, trace_id: bytes, probe: tuple[int, int]) -> list[tuple[int, int]]:
        """(first row, rows) of the candidate traces for ``trace_id``."""
        if self.indexed:
            return self.index.rows_of(probe[0])
        first = bisect.bisect_left(self._maxs, trace_id)
        out = []
        for i in range(first, len(self._mins)):
            if self._mins[i] > trace_id:
                break
            at = int(self._group_starts[i])
            out.append((at, self.meta.row_groups[i].rows))
        return out

    def row_groups_for(self, trace_id: bytes, probe: tuple[int, int] | None = None) -> list[int]:
        """Row groups that may hold rows of ``trace_id``."""
        groups: set[int] = set()
        for first, rows in self._row_ranges(trace_id, probe or probe_hashes(trace_id)):
            lo, hi = np.searchsorted(self._group_starts, [first, first + rows - 1], side="right")
            groups.update(range(int(lo) - 1, int(hi)))
        return sorted(groups)

    def find_trace(self, trace_id: bytes, probe: tuple[int, int]) -> pa.Table | None:
        """The span rows of ``trace_id`` in this block (``SPAN_SCHEMA``), or None.

        Decoding a row group costs mostly per column, not per row, so each candidate row group
        is read whole, with strings left as dictionaries; the trace's rows are contiguous and
        only that slice is turned into plain columns.
        """
        if not self.bloom.may_contain(probe):
            return None
        groups = self.row_groups_for(trace_id, probe)
        if not groups:
            return None
        pf = self.parquet(keep_dictionaries=True)
        needle = pa.scalar(trace_id, pa.binary(16))
        parts: list[pa.Table] = []
        for g in groups:
            empty = self._empty_columns(g)
            names = [n for n in SPAN_SCHEMA.names if n not in empty]
            table = pf.read_row_group(g, columns=names, use_threads=False)
            hits = np.flatnonzero(
                pc.equal(table.column("trace_id"), needle).to_numpy(zero_copy_only=False)
            )
            if len(hits):
                first, last = int(hits[0]), int(hits[-1])
                parts.append(_plain_rows(table.slice(first, last - first + 1)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def read_rows(self, ranges: Sequence[tuple[int, int]]) -> pa.Table:
        """The span rows (``SPAN_SCHEMA``) of ``(first row, row count)`` ranges, in row order:
        each row group holding some is read once, strings left as dictionaries until the
        rows are taken."""
        wanted = np.sort(np.concatenate([np.arange(a, a + n) for a, n in ranges] or [[]]))
        wanted = wanted.astype(np.int64)
        groups = np.searchsorted(self._group_starts, wanted, side="right") - 1
        pf = self.parquet(keep_dictionaries=True)
        parts: list[pa.Table] = []
        for g in np.unique(groups).tolist():
            empty = self._empty_columns(g)
            names = [n for n in SPAN_SCHEMA.names if n not in empty]
            table = pf.read_row_group(g, columns=names, use_threads=False)
            local = wanted[groups == g] - int(self._group_starts[g])
            parts.append(_plain_rows(table.take(pa.array(local))))
        return pa.concat_tables(parts) if parts else SPAN_SCHEMA.empty_table()

    def _empty_columns(self, group: int) -> frozenset[str]:
        """Map and list columns with no entries in row group ``group`` (from the meta)."""
        empty = self._empty.get(group)
        if empty is None:
            mask = self.meta.row_groups[group].empty_mask or 0
            names = self.meta.nested_columns
            empty = self._empty[group] = frozenset(
                name for bit, name in enumerate(names) if mask >> bit & 1
            )
        return empty

    def close(self) -> None:
        """Nothing is held open between reads (kept for callers that close blocks)."""
