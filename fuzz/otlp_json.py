"""Fuzzes the OTLP/JSON reader (``otlp_json_to_protobuf``).

Any body gives protobuf bytes that the OTLP decoder accepts, or a ``ValueError`` whose message
starts with ``invalid JSON`` / ``invalid OTLP/JSON``; never another exception.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from google.protobuf import json_format

from test_hostile_decoders import _hex_ids
from test_otlp_decode import rich_request
from threadline.model.otlp_decode import decode_export_request
from threadline.model.otlp_json import otlp_json_to_protobuf


def test_one_input(data: bytes) -> None:
    try:
        out = otlp_json_to_protobuf(data)
    except ValueError as e:
        assert str(e).startswith(("invalid JSON", "invalid OTLP/JSON")), e
        return
    decode_export_request(out)


def seeds() -> Iterator[bytes]:
    doc = _hex_ids(json_format.MessageToDict(rich_request()))
    yield orjson.dumps(doc)
    yield b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","links":[{}]}]}]}]}'
