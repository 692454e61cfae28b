"""Fuzzes the compiled Jaeger api_v2 reader (``post_spans_to_otlp``) against protobuf.

Bytes the ``PostSpansRequest`` class refuses must raise ``ValueError``; bytes it accepts must
translate exactly as protobuf's re-serialization of them does (or both raise ValueError).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from test_hostile_decoders import _api_v2_oracle
from test_jaeger_translate import _random_batch


def test_one_input(data: bytes) -> None:
    _api_v2_oracle(data)


def seeds() -> Iterator[bytes]:
    rng = random.Random(4)
    for _ in range(20):
        yield _random_batch(rng)[1]
