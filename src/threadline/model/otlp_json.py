"""OTLP/JSON request bodies into OTLP protobuf bytes.

OTLP/JSON differs from the protobuf JSON mapping only in ids: ``traceId``, ``spanId`` and
``parentSpanId`` are hex, not base64. They are rewritten, then the protobuf library parses the
rest (camelCase or snake_case names, 64-bit ints as strings or numbers, enums as ints or names).

Before that, the whole tree is checked against the message descriptors, so that a body of the
wrong shape (``null`` or a number where an object or a list belongs, an object where a string
belongs, at any depth) is refused with a ``ValueError`` that names the path of the bad element
(``resourceSpans[0].scopeSpans[1]: expected an object, got null``). ``null`` stands for an
absent field, as in protobuf's JSON mapping, except as an element of a list. Values of the right
JSON type but a wrong value (an integer out of range, a bad enum name) are left to protobuf.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

_F = FieldDescriptor
# messages whose bytes fields are hex in OTLP/JSON (every one of their bytes fields is an id)
_HEX_ID_MESSAGES = frozenset({Span.DESCRIPTOR.full_name, Span.Link.DESCRIPTOR.full_name})
_HEX = frozenset("0123456789abcdefABCDEF")
_INT_TYPES = frozenset(
    {
        _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_SINT32,
        _F.TYPE_SINT64, _F.TYPE_FIXED32, _F.TYPE_FIXED64, _F.TYPE_SFIXED32, _F.TYPE_SFIXED64,
    }
)  # fmt: skip


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _show(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


@functools.cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """JSON key -> field: the protobuf JSON name and the proto name, as ``ParseDict`` reads."""
    out: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        out[field.name] = field
        out[field.json_name] = field
    return out


def _scalar_problem(field: FieldDescriptor, value: object) -> str | None:
    """What is wrong with the JSON type of a (non-null) scalar ``value``, or None."""
    kind = field.type
    if kind == _F.TYPE_BOOL:
        return None if isinstance(value, bool) else "true or false"
    if kind in (_F.TYPE_STRING, _F.TYPE_BYTES):
        return None if isinstance(value, str) else "a string"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        if kind in _INT_TYPES:
            return "an integer (a number or a string)"
        return "an enum name or number" if kind == _F.TYPE_ENUM else "a number"
    return None


def _path(parent: tuple[Any, ...] | None, step: str) -> tuple[Any, ...]:
    return (parent, step)


def _render(path: tuple[Any, ...] | None) -> str:
    steps: list[str] = []
    while path is not None:
        path, step = path
        steps.append(step)
    return "".join(reversed(steps)).lstrip(".") or "the body"


def _hex_id(value: str, path: tuple[Any, ...]) -> str:
    """The base64 form protobuf's JSON parser wants of a hex id."""
    if len(value) % 2 or not _HEX.issuperset(value):
        raise ValueError(f"{_render(path)}: {_show(value)} is not a hex string")
    return base64.b64encode(bytes.fromhex(value)).decode()


def _check_tree(doc: object) -> None:
    """Check the JSON types of the whole tree and rewrite hex ids in place (no recursion)."""
    stack: list[tuple[object, Descriptor, tuple[Any, ...] | None]] = [
        (doc, ExportTraceServiceRequest.DESCRIPTOR, None)
    ]
    while stack:
        obj, descriptor, path = stack.pop()
        if not isinstance(obj, dict):
            raise ValueError(f"{_render(path)}: expected an object, got {_type_name(obj)}")
        fields = _fields(descriptor)
        hex_ids = descriptor.full_name in _HEX_ID_MESSAGES
        children: list[tuple[object, Descriptor, tuple[Any, ...]]] = []
        for key, value in obj.items():
            field = fields.get(key)
            if field is None or value is None:  # unknown fields are ignored, null is absent
                continue
            here = _path(path, f".{key}")
            is_message = field.type == _F.TYPE_MESSAGE
            if field.is_repeated:
                if not isinstance(value, list):
                    raise ValueError(f"{_render(here)}: expected a list, got {_type_name(value)}")
                for i, item in enumerate(value):
                    at = _path(here, f"[{i}]")
                    if is_message:
                        children.append((item, field.message_type, at))
                    elif item is None or (problem := _scalar_problem(field, item)):
                        want = "a value" if item is None else problem
                        raise ValueError(f"{_render(at)}: expected {want}, got {_type_name(item)}")
            elif is_message:
                children.append((value, field.message_type, here))
            elif problem := _scalar_problem(field, value):
                raise ValueError(f"{_render(here)}: expected {problem}, got {_type_name(value)}")
            elif hex_ids and field.type == _F.TYPE_BYTES:
                obj[key] = _hex_id(value, here)  # type: ignore[arg-type]
        stack.extend(reversed(children))  # depth first, in document order


def otlp_json_to_protobuf(body: bytes) -> bytes:
    """Serialized ExportTraceServiceRequest from an OTLP/JSON body; ValueError if malformed."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("invalid OTLP/JSON: the body must be a JSON object")
    try:
        _check_tree(doc)
    except ValueError as e:
        raise ValueError(f"invalid OTLP/JSON: {e}") from None
    try:
        msg = json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise ValueError(f"invalid OTLP/JSON: {e}") from None
    return msg.SerializeToString()
