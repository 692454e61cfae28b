"""What the ingester writes into WAL records: the tenant and its spans.

An ``OTLP`` record holds the request's OTLP protobuf exactly as received: replay decodes it
again, and since the decoder is deterministic the same spans are accepted. The kind byte leaves
room for other record kinds without a format change.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

_HEAD = struct.Struct("<BH")


class RecordKind(enum.IntEnum):
    OTLP = 1


@dataclass(frozen=True, slots=True)
class WalRecord:
    kind: RecordKind
    tenant: str
    body: memoryview


def encode_record(
    kind: RecordKind, tenant: str, body: bytes | memoryview
) -> tuple[bytes, bytes | memoryview]:
    """The record as two parts (header, body), so the body is never copied."""
    t = tenant.encode()
    return _HEAD.pack(kind, len(t)) + t, body


def decode_record(payload: bytes) -> WalRecord:
    """Raises ValueError for a record this version cannot read."""
    kind, tlen = _HEAD.unpack_from(payload, 0)
    start = _HEAD.size
    tenant = payload[start : start + tlen].decode()
    return WalRecord(RecordKind(kind), tenant, memoryview(payload)[start + tlen :])
