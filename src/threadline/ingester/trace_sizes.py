"""Bytes per live trace, for the per-trace and live-trace limits.

A push's spans are admitted trace by trace: a trace may grow to ``max_bytes_per_trace`` (its
spans past that are refused, those before kept, in the order they came), and a trace that is
not live yet is refused whole once ``max_traces_per_user`` traces are live. A span's bytes are
its share of its request's OTLP bytes. The work is per trace, not per span: spans are grouped
by one dictionary encoding and kept or refused by their rank within their trace. A trace is
forgotten when the ingester cuts it from the live set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, slots=True)
class Admitted:
    keep: np.ndarray | None  # bool per span; None when every span is kept
    too_large: int  # spans refused by max_bytes_per_trace
    too_many_traces: int  # spans refused by max_traces_per_user


class TraceSizes:
    """The live traces of one tenant and their bytes."""

    def __init__(self) -> None:
        self.bytes: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self.bytes)

    def admit(
        self, trace_ids: pa.Array, span_bytes: float, max_bytes: int, max_traces: int
    ) -> Admitted:
        """Count the spans of ``trace_ids`` (one per span) in, within the limits (0: none)."""
        encoded = pc.dictionary_encode(trace_ids)
        traces = encoded.dictionary.to_pylist()
        index = encoded.indices.to_numpy(zero_copy_only=False)
        per_trace = np.bincount(index, minlength=len(traces))
        allowed = per_trace.copy()
        too_many = 0
        sizes = self.bytes
        for i, trace in enumerate(traces):
            have = sizes.get(trace)
            if have is None:
                if max_traces and len(sizes) >= max_traces:
                    allowed[i] = 0
                    too_many += int(per_trace[i])
                    continue
                have = 0.0
            if max_bytes:
                room = int((max_bytes - have) // span_bytes) if span_bytes > 0 else per_trace[i]
                allowed[i] = max(0, min(int(per_trace[i]), room))
            sizes[trace] = have + allowed[i] * span_bytes
        if (allowed == per_trace).all():
            return Admitted(None, 0, 0)
        # rank of each span within its trace, in arrival order
        order = np.argsort(index, kind="stable")
        starts = np.concatenate(([0], np.cumsum(per_trace)[:-1]))
        rank = np.empty(len(index), dtype=np.int64)
        rank[order] = np.arange(len(index)) - starts[index[order]]
        keep = rank < allowed[index]
        refused = int(len(index) - keep.sum())
        return Admitted(keep, refused - too_many, too_many)

    def forget(self, trace_ids: pa.Array) -> None:
        """The traces of ``trace_ids`` left the live set."""
        sizes = self.bytes
        for trace in pc.unique(trace_ids).to_pylist():
            sizes.pop(trace, None)
