"""Trace-id bloom filter of a block: built and probed with numpy over 128-bit trace ids.

Ids are read as two 64-bit words, mixed (splitmix64 finalizer) so that ids with a constant half
(64-bit Jaeger/Zipkin ids widened to 128) still spread, and probed with double hashing.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from threadline.model.ids import trace_id_words

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


_MASK = (1 << 64) - 1


def _mix_int(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def probe_hashes(trace_id: bytes) -> tuple[int, int]:
    """The two hashes of one trace id, equal to what ``BloomFilter.add`` uses."""
    w0 = int.from_bytes(trace_id[:8], "little")
    w1 = int.from_bytes(trace_id[8:], "little")
    h1 = _mix_int(w0 ^ _mix_int(w1))
    h2 = _mix_int((w1 + 0x9E3779B97F4A7C15) & _MASK) | 1
    return h1, h2


def trace_hashes(words: np.ndarray) -> np.ndarray:
    """The first hash of each trace id (``trace_id_words``), as ``probe_hashes(id)[0]``."""
    with np.errstate(over="ignore"):
        return _mix(words[:, 0] ^ _mix(words[:, 1]))


def _positions(words: np.ndarray, bits: int, hashes: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        h1 = trace_hashes(words)
        h2 = _mix(words[:, 1] + np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
        steps = np.arange(hashes, dtype=np.uint64)
        return (h1[:, None] + steps[None, :] * h2[:, None]) % np.uint64(bits)


class BloomFilter:
    """A fixed-size bit array; ``may_contain`` never says no for an added id."""

    def __init__(self, bits: int, hashes: int, data: np.ndarray | None = None) -> None:
        self.bits = bits
        self.hashes = hashes
        self.data = data if data is not None else np.zeros((bits + 7) // 8, dtype=np.uint8)

    @classmethod
    def for_count(cls, n: int, false_positive: float) -> BloomFilter:
        n = max(n, 1)
        bits = max(64, math.ceil(-n * math.log(false_positive) / (math.log(2) ** 2)))
        hashes = max(1, round(bits / n * math.log(2)))
        return cls(bits, hashes)

    def add(self, ids: pa.Array | pa.ChunkedArray) -> None:
        pos = _positions(trace_id_words(ids), self.bits, self.hashes).ravel()
        np.bitwise_or.at(
            self.data, pos >> np.uint64(3), (1 << (pos & np.uint64(7))).astype(np.uint8)
        )

    def contains_all(self, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """For each id, whether the filter may hold it (vectorised ``may_contain``)."""
        pos = _positions(trace_id_words(ids), self.bits, self.hashes)
        bits = (self.data[pos >> np.uint64(3)] >> (pos & np.uint64(7)).astype(np.uint8)) & 1
        return np.all(bits == 1, axis=1)

    def may_contain(self, probe: tuple[int, int]) -> bool:
        """``probe`` is ``probe_hashes(trace_id)``, computed once per lookup for all blocks."""
        h1, h2 = probe
        data, bits = self.data, self.bits
        for i in range(self.hashes):
            pos = ((h1 + i * h2) & _MASK) % bits
            if not data[pos >> 3] & (1 << (pos & 7)):
                return False
        return True

    def to_bytes(self) -> bytes:
        return self.data.tobytes()

    @classmethod
    def from_bytes(cls, bits: int, hashes: int, raw: bytes) -> BloomFilter:
        return cls(bits, hashes, np.frombuffer(raw, dtype=np.uint8))
