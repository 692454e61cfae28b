"""Traces split across sources, gathered so that a query sees each of them whole.

A trace's spans may sit in several sources at once: late spans of a trace the ingester has cut
start a new live trace, and blocks hold the parts until the compactor merges them. Each source
works out its trace columns (nested sets, root, trace duration) from the rows it holds, so a
query that relates spans to each other (structure, spanset operators, aggregates, trace-level
intrinsics) would see each part as a trace of its own. Here the traces present in more than one
source are found (from each source's trace-id hashes: block trace indexes, the distinct ids of
in-memory rows), their rows are read from every source, duplicates dropped, and the trace
columns worked out again as a block write would: one more source, holding exactly those traces,
which the other sources then leave out.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.model.dedupe import drop_duplicate_spans
from threadline.model.ids import trace_id_words
from threadline.model.schema import SPAN_SCHEMA
from threadline.storage.block_reader import Block
from threadline.storage.bloom import trace_hashes


def _hashes(ids: pa.Array) -> np.ndarray:
    return trace_hashes(trace_id_words(ids)) if len(ids) else np.zeros(0, np.uint64)


def _within(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Mask of ``values`` found in the sorted array ``sorted_set``."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


@dataclass(frozen=True, slots=True)
class BlockHashes:
    every: np.ndarray  # sorted distinct hashes of every block's traces
    shared: np.ndarray  # sorted hashes found in more than one block


def _distinct(sorted_values: np.ndarray) -> np.ndarray:
    if len(sorted_values) < 2:
        return sorted_values
    keep = np.ones(len(sorted_values), dtype=bool)
    keep[1:] = sorted_values[1:] != sorted_values[:-1]
    return sorted_values[keep]


class _TenantHashes:
    """The blocks counted so far: each hash with the number of blocks holding it."""

    def __init__(self) -> None:
        self.blocks: dict[str, np.ndarray] = {}
        self.every = np.zeros(0, np.uint64)
        self.counts = np.zeros(0, np.int32)
        self.answer: BlockHashes | None = None

    def add(self, hashes: np.ndarray) -> None:
        known = _within(hashes, self.every)
        at = np.searchsorted(self.every, hashes[known])
        self.counts[at] += 1
        new = hashes[~known]
        where = np.searchsorted(self.every, new)
        self.every = np.insert(self.every, where, new)
        self.counts = np.insert(self.counts, where, 1)

    def remove(self, hashes: np.ndarray) -> None:
        at = np.searchsorted(self.every, hashes)
        self.counts[at] -= 1
        keep = self.counts > 0
        self.every, self.counts = self.every[keep], self.counts[keep]


class BlockHashCache:
    """The trace-id hashes of a tenant's blocks, brought up to date as blocks come and go
    (each block's hashes are its trace index's, which is sorted by hash)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantHashes] = {}

    def of(self, tenant: str, blocks: Sequence[Block]) -> BlockHashes:
        wanted = {b.id: b for b in blocks if b.indexed}
        with self._lock:
            state = self._tenants.setdefault(tenant, _TenantHashes())
            gone = [i for i in state.blocks if i not in wanted]
            new = [b for i, b in wanted.items() if i not in state.blocks]
            for i in gone:
                state.remove(state.blocks.pop(i))
            for b in new:
                hashes = state.blocks[b.id] = _distinct(b.index.entries["hash"])
                state.add(hashes)
            if gone or new or state.answer is None:
                state.answer = BlockHashes(state.every, state.every[state.counts > 1])
            return state.answer


@dataclass(frozen=True, slots=True)
class MemoryRows:
    """One in-memory source: its key, its rows and its distinct trace ids."""

    key: str
    table: pa.Table
    ids: pa.Array


@dataclass(frozen=True, slots=True)
class SplitTraces:
    """The rows of every trace held by more than one source, ``SPAN_SCHEMA``, duplicates
    dropped, and the sources that held some (block ids, in-memory keys)."""

    rows: pa.Table
    ids: pa.Table  # one column, trace_id: the traces gathered
    held: frozenset[str]


def split_traces(
    blocks: Sequence[Block], memory: Sequence[MemoryRows], block_hashes: BlockHashes
) -> SplitTraces | None:
    """The traces found in more than one of these sources, read whole; None when none is."""
    memory_hashes = [_hashes(m.ids) for m in memory]
    shared = block_hashes.shared
    if memory_hashes:
        every, counts = np.unique(np.concatenate(memory_hashes), return_counts=True)
        in_blocks = every[_within(every, block_hashes.every)]
        shared = np.union1d(shared, np.union1d(every[counts > 1], in_blocks))
    if len(shared) == 0:
        return None
    pieces: list[pa.Table] = []
    held: set[str] = set()
    for block in blocks:
        if not block.indexed:
            continue  # format tl1 (rows by trace id, no trace index): not gathered
        entries = block.index.entries
        hits = entries[_within(entries["hash"], shared)]
        if len(hits):
            pieces.append(block.read_rows(list(zip(hits["first"], hits["rows"], strict=True))))
            held.add(block.id)
    for m, h in zip(memory, memory_hashes, strict=True):
        ids = m.ids.filter(pa.array(_within(h, shared)))
        if len(ids):
            rows = m.table.filter(pc.is_in(m.table.column("trace_id"), value_set=ids))
            pieces.append(rows.select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA))
            held.add(m.key)
    if not pieces:
        return None
    rows, _ = drop_duplicate_spans(pa.concat_tables(pieces).combine_chunks())
    # a hash shared by two traces brings both here: each is then whole here as well
    ids = pc.unique(rows.column("trace_id"))
    return SplitTraces(rows, pa.table({"trace_id": ids}), frozenset(held))
