"""Hand-encoding ``google.rpc.Status`` (OTLP/HTTP error bodies), which has no generated class
among our dependencies."""

from __future__ import annotations


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (bytes, string or embedded message)."""
    return varint((number << 3) | 2) + varint(len(payload)) + payload
