"""What the ingester writes into WAL records: the tenant and its spans.

An ``OTLP`` record holds the request's OTLP protobuf exactly as received: replay decodes it
again, and since the decoder is deterministic the same spans are accepted. A request that the
tenant's limits cut (spans refused, attributes truncated) is an ``OTLP_LIMITED`` record: the
same bytes after what was applied, a bit per decoded span (kept or not) and the attribute
length, so replay gives exactly the rows that were acknowledged, without re-encoding anything.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from threadline.model.truncate import truncate_attributes

_HEAD = struct.Struct("<BH")
_LIMITED = struct.Struct("<II")  # attribute byte limit, bytes of the kept-span bitmap


class RecordKind(enum.IntEnum):
    OTLP = 1
    OTLP_LIMITED = 2


@dataclass(frozen=True, slots=True)
class AppliedLimits:
    """What the limits did to a push: which decoded spans were kept (None: all) and the
    attribute length they were cut to (0: none)."""

    keep: np.ndarray | None
    attribute_bytes: int

    def encode(self) -> bytes:
        bits = np.packbits(self.keep).tobytes() if self.keep is not None else b""
        return _LIMITED.pack(self.attribute_bytes, len(bits)) + bits

    @staticmethod
    def decode(body: memoryview) -> tuple[AppliedLimits | None, memoryview]:
        limit, nbits = _LIMITED.unpack_from(body, 0)
        start = _LIMITED.size
        bits = np.frombuffer(body[start : start + nbits], dtype=np.uint8)
        keep = np.unpackbits(bits).astype(bool) if nbits else None
        return AppliedLimits(keep, limit), body[start + nbits :]

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.keep is not None:
            batch = batch.filter(pa.array(self.keep[: batch.num_rows]))
        return truncate_attributes(batch, self.attribute_bytes)[0]


@dataclass(frozen=True, slots=True)
class WalRecord:
    kind: RecordKind
    tenant: str
    body: memoryview


def encode_record(
    tenant: str, body: bytes | memoryview, applied: AppliedLimits | None = None
) -> tuple[bytes | memoryview, ...]:
    """The record as parts (header, body), so the body is never copied."""
    t = tenant.encode()
    if applied is None:
        return _HEAD.pack(RecordKind.OTLP, len(t)) + t, body
    return _HEAD.pack(RecordKind.OTLP_LIMITED, len(t)) + t + applied.encode(), body


def decode_record(payload: bytes) -> WalRecord:
    """Raises ValueError for a record this version cannot read."""
    kind, tlen = _HEAD.unpack_from(payload, 0)
    start = _HEAD.size
    tenant = payload[start : start + tlen].decode()
    return WalRecord(RecordKind(kind), tenant, memoryview(payload)[start + tlen :])
