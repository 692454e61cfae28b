"""Fuzzes the compiled Jaeger thrift readers: batches and agent messages, binary and compact.

The first byte picks the reader; any input gives a translation or a ``ValueError``, never
another exception, a hang or an allocation the input does not pay for (list sizes are claims).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

from test_jaeger_translate import _random_batch, encode_batch, encode_emit_batch
from threadline.model import jaeger as tj


def test_one_input(data: bytes) -> None:
    if not data:
        return
    protocol = "compact" if data[0] & 1 else "binary"
    read = tj.agent_message_to_otlp if data[0] & 2 else tj.thrift_batch_to_otlp
    with contextlib.suppress(ValueError):
        read(data[1:], protocol)  # type: ignore[operator]


def seeds() -> Iterator[bytes]:
    rng = random.Random(3)
    for _ in range(15):
        batch, _ = _random_batch(rng)
        yield b"\x00" + encode_batch(batch, "binary")
        yield b"\x01" + encode_batch(batch, "compact")
        yield b"\x02" + encode_emit_batch(batch, "binary")
        yield b"\x03" + encode_emit_batch(batch, "compact")
