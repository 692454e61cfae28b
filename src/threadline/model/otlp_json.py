"""OTLP/JSON request bodies into OTLP protobuf bytes.

OTLP/JSON differs from the protobuf JSON mapping only in ids: ``traceId``, ``spanId`` and
``parentSpanId`` are hex, not base64. They are rewritten, then the protobuf library parses the
rest (camelCase or snake_case names, 64-bit ints as strings or numbers, enums as ints or names).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from threadline.model.ids import hex_id_to_bytes

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _fix_ids(obj: dict[str, Any], where: str) -> None:
    for field in _ID_FIELDS:
        value = obj.get(field)
        if isinstance(value, str):
            obj[field] = base64.b64encode(hex_id_to_bytes(value, f"{where}.{field}")).decode()


def _list(obj: dict[str, Any], *names: str) -> list[Any]:
    for name in names:
        value = obj.get(name)
        if value is not None:
            if not isinstance(value, list):
                raise ValueError(f"{name} must be a list")
            return value
    return []


def otlp_json_to_protobuf(body: bytes) -> bytes:
    """Serialized ExportTraceServiceRequest from an OTLP/JSON body; ValueError if malformed."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("invalid OTLP/JSON: the body must be a JSON object")
    for ri, rs in enumerate(_list(doc, "resourceSpans", "resource_spans")):
        for si, ss in enumerate(_list(rs, "scopeSpans", "scope_spans")):
            for pi, span in enumerate(_list(ss, "spans")):
                where = f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]"
                if not isinstance(span, dict):
                    raise ValueError(f"{where} must be an object")
                _fix_ids(span, where)
                for li, link in enumerate(_list(span, "links")):
                    if isinstance(link, dict):
                        _fix_ids(link, f"{where}.links[{li}]")
    try:
        msg = json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise ValueError(f"invalid OTLP/JSON: {e}") from None
    return msg.SerializeToString()
