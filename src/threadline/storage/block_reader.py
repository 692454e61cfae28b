"""Reading a block: trace-id lookups through the bloom filter and the row-group index."""

from __future__ import annotations

import bisect
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from threadline.model.schema import SPAN_SCHEMA
from threadline.storage.block_writer import BLOOM_FILE, DATA_FILE, META_FILE
from threadline.storage.bloom import BloomFilter
from threadline.storage.meta import BlockMeta


class Block:
    """One immutable block on disk; its meta, bloom filter and footer stay in memory."""

    def __init__(self, path: Path, meta: BlockMeta) -> None:
        self.path = path
        self.meta = meta
        self.bloom = BloomFilter.from_bytes(
            meta.bloom_bits, meta.bloom_hashes, (path / BLOOM_FILE).read_bytes()
        )
        self._mins = [bytes.fromhex(rg.min_trace_id) for rg in meta.row_groups]
        self._maxs = [bytes.fromhex(rg.max_trace_id) for rg in meta.row_groups]
        self._file: pq.ParquetFile | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Block:
        return cls(path, BlockMeta.from_json((path / META_FILE).read_bytes()))

    @property
    def id(self) -> str:
        return self.meta.block_id

    def overlaps(self, start_ns: int | None, end_ns: int | None) -> bool:
        if start_ns is not None and self.meta.end_unix_nano < start_ns:
            return False
        return not (end_ns is not None and self.meta.start_unix_nano > end_ns)

    def parquet(self) -> pq.ParquetFile:
        with self._lock:
            if self._file is None:
                self._file = pq.ParquetFile(self.path / DATA_FILE, memory_map=True)
            return self._file

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
        """The span rows of ``trace_id`` in this block, or None."""
        if not self.bloom.may_contain(probe):
            return None
        groups = self.row_groups_for(trace_id)
        if not groups:
            return None
        table = self.parquet().read_row_groups(groups, columns=SPAN_SCHEMA.names)
        rows = table.filter(pc.equal(table.column("trace_id"), pa.scalar(trace_id, pa.binary(16))))
        return rows if rows.num_rows else None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
