"""Fuzzes the compiled Zipkin proto3 translator (``zipkin_v2_proto_to_otlp``) against protobuf.

Bytes py-zipkin's ``ListOfSpans`` refuses must raise ``ValueError``; bytes it accepts must
translate exactly as protobuf's own re-serialization of them does (or both raise ValueError).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from test_hostile_decoders import _proto_of, _zipkin_proto_oracle
from test_zipkin_translate import _random_span


def test_one_input(data: bytes) -> None:
    _zipkin_proto_oracle(data)


def seeds() -> Iterator[bytes]:
    rng = random.Random(2)
    for _ in range(20):
        yield _proto_of([_random_span(rng, i) for i in range(rng.randint(1, 3))])
