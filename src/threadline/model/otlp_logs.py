"""OTLP logs into log rows (``LOG_SCHEMA``): an ``ExportLogsServiceRequest`` (protobuf, or
OTLP/JSON with hex ids) decoded into one Arrow batch, typed attribute maps as for spans.

The protobuf is read by the compiled decoder ``threadline.model._otlp_logs`` (its docstring
has the mapping rules) straight into Arrow buffers; this module writes the OTLP/JSON text of
the rare bodies that are not strings (``body``; ``body_raw`` keeps their ``AnyValue``) and
packages the result. Records with an id of the wrong width are rejected as ``invalid_id``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from threadline.model import _otlp_logs
from threadline.model.schema import LOG_SCHEMA

_BODY = LOG_SCHEMA.get_field_index("body")
_BODY_RAW = LOG_SCHEMA.get_field_index("body_raw")


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


def decode_logs_request(data: bytes | bytearray | memoryview) -> DecodedLogs:
    """Raises ``ValueError("invalid OTLP logs protobuf: ...")`` when ``data`` is no request.
    The GIL is released while the bytes are parsed."""
    if isinstance(data, memoryview) and (
        data.format != "B" or data.ndim != 1 or not data.c_contiguous
    ):
        data = data.cast("B") if data.c_contiguous else data.tobytes()
    batch, invalid, first_error, json_bodies = _otlp_logs.decode(data)
    if json_bodies:
        batch = _with_json_bodies(batch)
    return DecodedLogs(batch, {"invalid_id": invalid} if invalid else {}, first_error)


def _with_json_bodies(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with the text of its non-string bodies (the rows with a ``body_raw``)."""
    raw = batch.column(_BODY_RAW)
    mask = pc.is_valid(raw)
    texts = [_json_text(AnyValue.FromString(b)) for b in raw.filter(mask).to_pylist()]
    body = pc.replace_with_mask(batch.column(_BODY), mask, pa.array(texts, pa.string()))
    return batch.set_column(_BODY, LOG_SCHEMA.field(_BODY), body)


def _json_text(value: AnyValue) -> str:
    """A body's value as OTLP/JSON (e.g. ``"42"`` for an int, ``{"values":[...]}``)."""
    doc = json_format.MessageToDict(value)
    return orjson.dumps(next(iter(doc.values()))).decode() if doc else ""


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
