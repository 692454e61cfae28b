"""OTLP logs into log rows (``LOG_SCHEMA``): an ``ExportLogsServiceRequest`` (protobuf, or
OTLP/JSON with hex ids) decoded into one Arrow batch, typed attribute maps as for spans.

Records are converted one by one from protobuf's parsed messages into per-column lists, each
column then built by Arrow at once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from threadline.model.schema import LOG_SCHEMA

_TYPES = ("str", "int", "float", "bool", "raw")
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


@dataclass(slots=True)
class DecodedLogs:
    batch: pa.RecordBatch
    """Accepted records, ``LOG_SCHEMA``."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Rejection reason -> records rejected for it."""
    first_error: str | None = None

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


def typed_attributes(kvs: Iterable[Any]) -> tuple[list[tuple[str, Any]], ...]:
    """OTLP ``KeyValue``s as (str, int, float, bool, raw) pair lists; a repeated key keeps
    its first value; arrays, key-value lists and bytes stay serialized ``AnyValue``s."""
    out: tuple[list[tuple[str, Any]], ...] = ([], [], [], [], [])
    seen: set[str] = set()
    for kv in kvs:
        if kv.key in seen:
            continue
        seen.add(kv.key)
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[0].append((kv.key, v.string_value))
        elif which == "int_value":
            out[1].append((kv.key, v.int_value))
        elif which == "double_value":
            out[2].append((kv.key, v.double_value))
        elif which == "bool_value":
            out[3].append((kv.key, v.bool_value))
        elif which is not None:
            out[4].append((kv.key, v.SerializeToString()))
    return out


def _body(value: AnyValue) -> tuple[str, bytes | None]:
    which = value.WhichOneof("value")
    if which is None:
        return "", None
    if which == "string_value":
        return value.string_value, None
    doc = json_format.MessageToDict(value)
    text = orjson.dumps(next(iter(doc.values()))).decode() if doc else ""
    return text, value.SerializeToString()


def _id(raw: bytes, size: int, zero: bytes) -> bytes | None:
    return raw if len(raw) == size and raw != zero else None


def decode_logs_request(data: bytes | bytearray | memoryview) -> DecodedLogs:
    """Raises ``ValueError("invalid OTLP logs protobuf: ...")`` when ``data`` is no request."""
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(bytes(data))
    except DecodeError as e:
        raise ValueError(f"invalid OTLP logs protobuf: {e}") from None
    cols: dict[str, list[Any]] = {f.name: [] for f in LOG_SCHEMA}
    rejected: dict[str, int] = {}
    first_error: str | None = None
    for rl in req.resource_logs:
        resource = typed_attributes(rl.resource.attributes)
        service = next((v for k, v in resource[0] if k == "service.name"), "")
        for sl in rl.scope_logs:
            scope = typed_attributes(sl.scope.attributes)
            for rec in sl.log_records:
                bad_trace = len(rec.trace_id) not in (0, 16)
                if bad_trace or len(rec.span_id) not in (0, 8):
                    what = "trace_id" if bad_trace else "span_id"
                    size = len(rec.trace_id if bad_trace else rec.span_id)
                    rejected["invalid_id"] = rejected.get("invalid_id", 0) + 1
                    first_error = first_error or (
                        f"log record {what} must be {16 if bad_trace else 8} bytes, got {size}"
                    )
                    continue
                body, body_raw = _body(rec.body)
                cols["time_unix_nano"].append(
                    _int64(rec.time_unix_nano or rec.observed_time_unix_nano)
                )
                cols["observed_time_unix_nano"].append(_int64(rec.observed_time_unix_nano))
                cols["severity_number"].append(max(0, min(rec.severity_number, 127)))
                cols["severity_text"].append(rec.severity_text)
                cols["body"].append(body)
                cols["body_raw"].append(body_raw)
                cols["event_name"].append(getattr(rec, "event_name", ""))
                cols["trace_id"].append(_id(rec.trace_id, 16, _ZERO_TRACE))
                cols["span_id"].append(_id(rec.span_id, 8, _ZERO_SPAN))
                cols["flags"].append(rec.flags)
                cols["service_name"].append(service)
                cols["scope_name"].append(sl.scope.name)
                cols["scope_version"].append(sl.scope.version)
                attrs = typed_attributes(rec.attributes)
                for stem, typed in (("scope", scope), ("resource", resource), ("log", attrs)):
                    for t, pairs in zip(_TYPES, typed, strict=True):
                        cols[f"{stem}_attrs_{t}"].append(pairs)
                cols["dropped_attributes_count"].append(rec.dropped_attributes_count)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(cols[f.name], type=f.type) for f in LOG_SCHEMA], schema=LOG_SCHEMA
    )
    return DecodedLogs(batch, rejected, first_error)


def _int64(v: int) -> int:
    """OTLP's uint64 nanoseconds as stored (int64, wrapping as span times do)."""
    return v - (1 << 64) if v >= 1 << 63 else v


def otlp_logs_json_to_protobuf(body: bytes) -> bytes:
    """OTLP/JSON logs (hex trace and span ids, as the spec writes them) as protobuf bytes;
    raises ``ValueError("invalid OTLP logs JSON: ...")``."""
    try:
        doc = orjson.loads(body)
        for rl in doc.get("resourceLogs") or ():
            for sl in rl.get("scopeLogs") or ():
                for rec in sl.get("logRecords") or ():
                    for key in ("traceId", "spanId"):
                        if rec.get(key):
                            rec[key] = base64.b64encode(bytes.fromhex(rec[key])).decode()
        req = json_format.ParseDict(doc, ExportLogsServiceRequest())
    except (orjson.JSONDecodeError, json_format.ParseError, ValueError, TypeError,
            AttributeError) as e:  # fmt: skip
        raise ValueError(f"invalid OTLP logs JSON: {e}") from None
    return req.SerializeToString()
