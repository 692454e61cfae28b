"""Trace index of a block: where each trace's rows are in the data file.

Block rows are ordered by trace start (so a time range of traces is a range of row groups),
which scatters trace ids over the file; the index finds a trace's rows without reading them.
One entry per trace: the trace id's 64-bit hash (``bloom.trace_hashes``), its first row and its
row count, sorted by hash for a binary search. A hash shared by two traces gives both
candidates; the reader keeps only rows with the trace id itself.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from threadline.model.ids import run_starts, trace_id_words
from threadline.storage.bloom import trace_hashes

INDEX_FILE = "traces"

_ENTRY = np.dtype([("hash", "<u8"), ("first", "<u4"), ("rows", "<u4")])


def build_trace_index(ids: pa.Array | pa.ChunkedArray) -> bytes:
    """The index of a data file whose ``trace_id`` column is ``ids`` (each trace contiguous)."""
    words = trace_id_words(ids)
    n = len(words)
    if n == 0:
        return b""
    firsts = run_starts(words)
    entries = np.empty(len(firsts), dtype=_ENTRY)
    entries["hash"] = trace_hashes(words[firsts])
    entries["first"] = firsts
    entries["rows"] = np.diff(np.append(firsts, n))
    return np.sort(entries, order=["hash", "first"], kind="stable").tobytes()


class TraceIndex:
    def __init__(self, raw: bytes) -> None:
        self.entries = np.frombuffer(raw, dtype=_ENTRY)
        self._hashes = self.entries["hash"]

    def __len__(self) -> int:
        return len(self.entries)

    def rows_of(self, trace_hash: int) -> list[tuple[int, int]]:
        """(first row, row count) of every trace whose id has this hash."""
        key = np.uint64(trace_hash)
        lo = int(np.searchsorted(self._hashes, key, side="left"))
        hi = int(np.searchsorted(self._hashes, key, side="right"))
        return [(int(e["first"]), int(e["rows"])) for e in self.entries[lo:hi]]
