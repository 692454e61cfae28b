"""Fuzzes the Zipkin JSON translators (v2, compiled with Python checks; v1, Python).

The first byte picks the translator; any body gives OTLP bytes the OTLP decoder accepts, or a
``ValueError``; never another exception.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson

from test_hostile_decoders import _v1_span
from test_zipkin_translate import _random_span
from threadline.model.otlp_decode import decode_export_request
from threadline.model.zipkin import zipkin_v1_json_to_otlp, zipkin_v2_json_to_otlp


def test_one_input(data: bytes) -> None:
    if not data:
        return
    translate = zipkin_v1_json_to_otlp if data[0] & 1 else zipkin_v2_json_to_otlp
    try:
        out = translate(data[1:])
    except ValueError:
        return
    decode_export_request(out)


def seeds() -> Iterator[bytes]:
    rng = random.Random(1)
    for _ in range(20):
        yield b"\x00" + orjson.dumps([_random_span(rng, i) for i in range(rng.randint(1, 3))])
        yield b"\x01" + orjson.dumps([_v1_span(rng, i) for i in range(rng.randint(1, 3))])
