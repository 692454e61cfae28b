"""Trace and span id helpers: parsing the hex forms people and APIs use."""

from __future__ import annotations

import string

import numpy as np
import pyarrow as pa

_HEX = frozenset(string.hexdigits)


def parse_trace_id(text: str) -> bytes:
    """A 16-byte trace id from hex as Tempo reads it: up to 32 hex chars, left-padded with 0.

    Raises ValueError naming the problem.
    """
    if not text:
        raise ValueError("trace id is empty")
    for i, ch in enumerate(text):
        if ch not in _HEX:
            raise ValueError(
                "trace IDs can only contain hex characters: "
                f"invalid character {ch!r} at position {i}"
            )
    if len(text) > 32:
        raise ValueError(f"trace IDs can't be larger than 128 bits: got {len(text)} hex characters")
    return bytes.fromhex(text.rjust(32, "0"))


def hex_id_to_bytes(text: str, field: str) -> bytes:
    """Bytes of an OTLP/JSON hex id (``traceId``, ``spanId`` ...).

    Raises ValueError naming ``field``.
    """
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a hex string") from None


def trace_id_words(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The (n, 2) uint64 view of a fixed_size_binary(16) array (no copy for one chunk)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    buf = ids.buffers()[1]
    words = np.frombuffer(buf, dtype=np.uint64, count=(ids.offset + len(ids)) * 2)
    return words.reshape(-1, 2)[ids.offset :]


def run_starts(words: np.ndarray) -> np.ndarray:
    """First row of each run of equal ids in ``trace_id_words`` output (rows of a trace kept
    together: the first row of each trace)."""
    changed = np.ones(len(words), dtype=bool)
    if len(words) > 1:
        changed[1:] = np.any(words[1:] != words[:-1], axis=1)
    return np.flatnonzero(changed)
