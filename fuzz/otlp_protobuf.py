"""Fuzzes the compiled OTLP decoder (``decode_export_request``) against protobuf.

Every input must be accepted or refused exactly as ``ExportTraceServiceRequest.FromString``
does, with the same rows, rejections and duplicate counts as the reference decoder of
tests/test_otlp_decode.py; the only error allowed is ``ValueError("invalid OTLP protobuf: ...")``.
"""

from __future__ import annotations

from collections.abc import Iterator

from test_otlp_decode import WireGen, assert_matches_oracle, rich_request


def test_one_input(data: bytes) -> None:
    assert_matches_oracle(data)


def seeds() -> Iterator[bytes]:
    yield rich_request().SerializeToString()
    for seed in range(40):
        yield WireGen(seed).request()
