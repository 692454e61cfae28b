"""Reading a block: trace-id lookups through the bloom filter and the row-group index.

A block's meta is kept in memory with the block list; its bloom filter is read on the first
lookup. Blocks on the local backend are memory-mapped; blocks in object storage are read with
range requests (the footer, then only the row groups that can hold a trace) through a bounded
chunk cache, and DuckDB gets a local copy of the data file from a bounded disk cache.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from threadline.model.schema import SPAN_SCHEMA
from threadline.storage.backend import META_FILE, Backend, LocalBackend
from threadline.storage.bloom import BloomFilter
from threadline.storage.cache import FileCache, RangeCache, RangeFile
from threadline.storage.meta import BlockMeta

DATA_FILE = "data.parquet"
BLOOM_FILE = "bloom"


@dataclass(slots=True)
class BlockCaches:
    """The caches remote blocks share (none are needed for the local backend)."""

    ranges: RangeCache
    files: FileCache | None = None


_DEFAULT_RANGES = RangeCache(64 * 2**20)
# rows decoded at a time by a point read in a big row group
_POINT_BATCH = 1024


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
        self._mins = [bytes.fromhex(rg.min_trace_id) for rg in meta.row_groups]
        self._maxs = [bytes.fromhex(rg.max_trace_id) for rg in meta.row_groups]
        self._file: pq.ParquetFile | None = None
        self._footer: pq.FileMetaData | None = None
        self._lock = threading.Lock()

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

    def parquet(self) -> pq.ParquetFile:
        """The data file: memory-mapped when local, else over cached range reads.

        A remote file object has a position, so each call gets its own ``ParquetFile`` (sharing
        the parsed footer); local ones are shared.
        """
        if self.path is not None:
            with self._lock:
                if self._file is None:
                    self._file = pq.ParquetFile(self.path / DATA_FILE, memory_map=True)
                return self._file
        source = RangeFile(self.backend, self.key(DATA_FILE), self.meta.size, self.caches.ranges)
        pf = pq.ParquetFile(source, metadata=self._footer)
        if self._footer is None:
            self._footer = pf.metadata
        return pf

    def data_path(self) -> Path:
        """A local file with the block's Parquet data (a cached copy for remote blocks)."""
        if self.path is not None:
            return self.path / DATA_FILE
        if self.caches.files is None:
            raise RuntimeError("remote block read without a file cache")
        return self.caches.files.path(self.backend, self.key(DATA_FILE))

    def read_table(self, columns: list[str] | None = None) -> pa.Table:
        """Every row of the block (for compaction and verification)."""
        if self.path is not None or self.caches.files is not None:
            return pq.ParquetFile(self.data_path(), memory_map=True).read(columns=columns)
        raw = self.backend.read(self.key(DATA_FILE))
        return pq.ParquetFile(pa.BufferReader(raw)).read(columns=columns)

    def row_groups_for(self, trace_id: bytes) -> list[int]:
        """Row groups whose trace-id range holds ``trace_id`` (rows are sorted by trace id)."""
        first = bisect.bisect_left(self._maxs, trace_id)
        out = []
        for i in range(first, len(self._mins)):
            if self._mins[i] > trace_id:
                break
            out.append(i)
        return out

    def find_trace(self, trace_id: bytes, probe: tuple[int, int]) -> pa.Table | None:
        """The span rows of ``trace_id`` in this block, or None.

        Small row groups are read whole. In big ones the trace's rows are located first from
        the ``trace_id`` column alone (rows are sorted by trace id, so they are contiguous),
        then the row group is decoded batch by batch only up to the last of them.
        """
        if not self.bloom.may_contain(probe):
            return None
        groups = self.row_groups_for(trace_id)
        if not groups:
            return None
        pf = self.parquet()
        needle = pa.scalar(trace_id, pa.binary(16))
        parts: list[pa.Table] = []
        for g in groups:
            if self.meta.row_groups[g].rows <= 2 * _POINT_BATCH:
                table = pf.read_row_group(g, columns=SPAN_SCHEMA.names, use_threads=False)
                parts.append(table.filter(pc.equal(table.column("trace_id"), needle)))
                continue
            ids = pf.read_row_group(g, columns=["trace_id"], use_threads=False).column(0)
            hits = np.flatnonzero(pc.equal(ids, needle).to_numpy(zero_copy_only=False))
            if not len(hits):
                continue
            first, end = int(hits[0]), int(hits[-1]) + 1
            seen = 0
            for batch in pf.iter_batches(
                batch_size=_POINT_BATCH,
                row_groups=[g],
                columns=SPAN_SCHEMA.names,
                use_threads=False,
            ):
                start, seen = seen, seen + batch.num_rows
                if seen <= first:
                    continue
                lo = max(first, start)
                parts.append(pa.Table.from_batches([batch.slice(lo - start, min(end, seen) - lo)]))
                if seen >= end:
                    break
        rows = pa.concat_tables(parts) if parts else None
        return rows if rows is not None and rows.num_rows else None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
