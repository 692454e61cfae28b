"""Trace by ID: the rows of one trace from live data and blocks, merged and de-duplicated."""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa

from threadline.ingester.ingester import Ingester
from threadline.model.schema import SPAN_SCHEMA
from threadline.storage.blocklist import Blocklist
from threadline.storage.bloom import probe_hashes

# identical spans (a retried push, a block and the WAL replay of its rows) appear once
_IDENTITY = ("span_id", "parent_span_id", "name", "kind", "start_unix_nano", "duration_nano")


def dedupe_spans(table: pa.Table) -> pa.Table:
    if table.num_rows < 2:
        return table
    seen: set[tuple[object, ...]] = set()
    keep = []
    cols = [table.column(c).to_pylist() for c in _IDENTITY]
    for i, key in enumerate(zip(*cols, strict=True)):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return table if len(keep) == table.num_rows else table.take(keep)


def _span_rows(table: pa.Table) -> pa.Table:
    """``table`` as ``SPAN_SCHEMA`` (live data may carry more columns)."""
    if table.schema.equals(SPAN_SCHEMA):
        return table
    return table.select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)


class TraceFinder:
    def __init__(self, ingester: Ingester | None, blocklist: Blocklist) -> None:
        self.ingester = ingester
        self.blocklist = blocklist

    def _from_blocks(
        self, tenant: str, trace_id: bytes, start_ns: int | None, end_ns: int | None
    ) -> list[pa.Table]:
        probe = probe_hashes(trace_id)
        out = []
        for block in self.blocklist.blocks(tenant, start_ns, end_ns):
            rows = block.find_trace(trace_id, probe)
            if rows is not None:
                out.append(rows)
        return out

    async def find(
        self,
        tenant: str,
        trace_id: bytes,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> pa.Table | None:
        """All spans of ``trace_id`` for ``tenant`` (sorted by start), or None if unknown."""
        parts = self.ingester.find_trace(tenant, trace_id) if self.ingester else []
        parts += await asyncio.to_thread(self._from_blocks, tenant, trace_id, start_ns, end_ns)
        if not parts:
            return None
        table = pa.concat_tables([_span_rows(p) for p in parts])
        starts = table.column("start_unix_nano").to_numpy()
        # a block's rows come sorted by start already; take() over nested columns is not cheap
        if len(starts) > 1 and (np.diff(starts) < 0).any():
            table = table.take(np.argsort(starts, kind="stable"))
        return dedupe_spans(table)
