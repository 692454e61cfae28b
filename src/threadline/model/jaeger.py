"""Jaeger spans → the OTLP model: thrift (binary and compact) and ``jaeger.api_v2`` protobuf.

Receivers hand the bytes they got to one of the functions here and push the serialized OTLP
``ExportTraceServiceRequest`` it returns; nothing after the receivers sees Jaeger.

Decoding
    ``thrift_batch_to_otlp`` reads a thrift ``jaeger.Batch`` struct (thrift over HTTP:
    TBinaryProtocol); ``agent_message_to_otlp`` reads a oneway ``Agent.emitBatch`` call message
    in the compact or binary protocol (agent UDP); ``post_spans_to_otlp`` reads an api_v2
    ``PostSpansRequest`` (gRPC). Reading and translation are compiled
    (``threadline.model._jaeger_otlp``): the bytes go to OTLP wire bytes without Python objects
    per span. The thrift reader is our own, written from the documented field ids and types (see
    ``idl/jaeger.thrift``): it is strict (truncation, wrong types, missing required fields,
    absurd list sizes and trailing bytes are errors) and skips unknown fields; text that is not
    UTF-8 has its bad bytes replaced. The api_v2 reader follows the documented field numbers of
    ``model.proto``/``collector.proto`` and protobuf's rules (unknown fields skipped, strings
    must be UTF-8); the message classes declared below (built at import from descriptors) serve
    the gRPC service and clients. Bad input raises ``ValueError`` naming the problem.

Translation, following the OpenTelemetry Collector's Jaeger translator:

* Process ``serviceName`` → resource ``service.name``; process tags → resource attributes, with
  ``hostname`` → ``host.name`` and ``jaeger.version`` → ``opencensus.exporterversion`` =
  ``Jaeger-<version>`` (when the target key is absent). A span's own api_v2 ``process`` wins over
  the batch's. The OpenTelemetry Python exporter sends empty process tags and copies the
  resource onto every span's tags instead; span tags that the semantic conventions define as
  resource attributes (``service.name``/``.version``/``.namespace``/``.instance.id``, and
  ``host.*``, ``os.*``, ``telemetry.sdk.*``/``.distro.*``/``.auto.*``, ``process.runtime.*``,
  ``deployment.*``, ``k8s.*``, ``container.*``, ``cloud.*``) move back to the resource when
  the resource lacks that key or has the same value (else they stay span attributes); spans of
  one batch whose moved tags differ get different resources.
* Tags → attributes, types kept: STRING→string, LONG/INT64→int, DOUBLE/FLOAT64→double,
  BOOL→bool, BINARY→bytes; an unknown type gives the string ``<Unknown Jaeger TagType N>``.
  A repeated key keeps its last value.
* ``span.kind`` (``client``/``server``/``producer``/``consumer``/``internal``) → span kind, and
  is removed. ``w3c.tracestate`` → trace state, removed.
* Status: ``error=true`` (bool) → ERROR with message ``otel.status_description``; else
  ``otel.status_code`` ``OK``/``ERROR`` (+ description); else an ``http.status_code`` of 5xx
  (4xx too on non-server spans) → ERROR with message ``http.status_message``. ``error``,
  ``otel.status_code`` and a used ``otel.status_description`` are removed.
* ``otel.scope.name``/``otel.scope.version`` (else ``otel.library.name``/``.version``) →
  instrumentation scope, removed; ``otel.library.*`` equal to the scope are removed too.
* Logs → events: time µs → ns; the name is the string field ``event``, else ``message`` (what the
  Python exporter sends), else ``log``; the field used as name is removed, the others become the
  event's attributes.
* References: thrift ``parentSpanId != 0`` is the parent even without references; otherwise the
  first CHILD_OF reference to the same trace is. Every other reference becomes a link with the
  attribute ``opentracing.ref_type`` = ``child_of``/``follows_from``.
* Ids: thrift ``traceIdHigh``/``traceIdLow`` (signed i64) → 16 bytes big-endian (a 64-bit id
  has a zero high half), span ids (signed i64) → 8 bytes; api_v2 ids are 16/8 bytes (an 8-byte
  trace id is left-padded). ``startTime``/``duration`` µs → ns (``end = start + duration``).

Zero or otherwise invalid ids and negative durations are left to the distributor, which
rejects those spans one by one as for OTLP. Spans are grouped by resource (first appearance
order), then by instrumentation scope; order is kept within a group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from google.protobuf import descriptor_pb2, duration_pb2, timestamp_pb2

from threadline.model._jaeger_otlp import (
    agent_message_to_otlp,
    post_spans_to_otlp,
    thrift_batch_to_otlp,
)
from threadline.model.protodesc import OPTIONAL, REPEATED, F, add_enum, add_message, build

__all__ = [
    "API_V2",
    "COLLECTOR_SERVICE",
    "IDL_DIR",
    "PostSpansRequest",
    "PostSpansResponse",
    "ThriftProtocol",
    "agent_message_to_otlp",
    "post_spans_to_otlp",
    "thrift_batch_to_otlp",
]

IDL_DIR = Path(__file__).parent / "idl"
"""Our thrift IDL (documentation of what the decoder reads; tests encode with it)."""

ThriftProtocol = Literal["binary", "compact"]


# ----------------------------------------------------------------------------------------------
# api_v2 protobuf (gRPC collector): message classes built from descriptors at import

_PF = F
_OPT, _REP = OPTIONAL, REPEATED
_API = ".jaeger.api_v2."

# message -> [(field name, number, type, label, type name)], from the documented model.proto and
# collector.proto of jaeger.api_v2 (gogoproto options only change Go code, not the wire)
_API_V2_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "KeyValue": [
        ("key", 1, _PF.TYPE_STRING, _OPT, ""),
        ("v_type", 2, _PF.TYPE_ENUM, _OPT, _API + "ValueType"),
        ("v_str", 3, _PF.TYPE_STRING, _OPT, ""),
        ("v_bool", 4, _PF.TYPE_BOOL, _OPT, ""),
        ("v_int64", 5, _PF.TYPE_INT64, _OPT, ""),
        ("v_float64", 6, _PF.TYPE_DOUBLE, _OPT, ""),
        ("v_binary", 7, _PF.TYPE_BYTES, _OPT, ""),
    ],
    "Log": [
        ("timestamp", 1, _PF.TYPE_MESSAGE, _OPT, ".google.protobuf.Timestamp"),
        ("fields", 2, _PF.TYPE_MESSAGE, _REP, _API + "KeyValue"),
    ],
    "SpanRef": [
        ("trace_id", 1, _PF.TYPE_BYTES, _OPT, ""),
        ("span_id", 2, _PF.TYPE_BYTES, _OPT, ""),
        ("ref_type", 3, _PF.TYPE_ENUM, _OPT, _API + "SpanRefType"),
    ],
    "Process": [
        ("service_name", 1, _PF.TYPE_STRING, _OPT, ""),
        ("tags", 2, _PF.TYPE_MESSAGE, _REP, _API + "KeyValue"),
    ],
    "Span": [
        ("trace_id", 1, _PF.TYPE_BYTES, _OPT, ""),
        ("span_id", 2, _PF.TYPE_BYTES, _OPT, ""),
        ("operation_name", 3, _PF.TYPE_STRING, _OPT, ""),
        ("references", 4, _PF.TYPE_MESSAGE, _REP, _API + "SpanRef"),
        ("flags", 5, _PF.TYPE_UINT32, _OPT, ""),
        ("start_time", 6, _PF.TYPE_MESSAGE, _OPT, ".google.protobuf.Timestamp"),
        ("duration", 7, _PF.TYPE_MESSAGE, _OPT, ".google.protobuf.Duration"),
        ("tags", 8, _PF.TYPE_MESSAGE, _REP, _API + "KeyValue"),
        ("logs", 9, _PF.TYPE_MESSAGE, _REP, _API + "Log"),
        ("process", 10, _PF.TYPE_MESSAGE, _OPT, _API + "Process"),
        ("process_id", 11, _PF.TYPE_STRING, _OPT, ""),
        ("warnings", 12, _PF.TYPE_STRING, _REP, ""),
    ],
    "Batch": [
        ("spans", 1, _PF.TYPE_MESSAGE, _REP, _API + "Span"),
        ("process", 2, _PF.TYPE_MESSAGE, _OPT, _API + "Process"),
    ],
    "PostSpansRequest": [
        ("batch", 1, _PF.TYPE_MESSAGE, _OPT, _API + "Batch"),
    ],
    "PostSpansResponse": [],
}
_API_V2_ENUMS = {
    "ValueType": ["STRING", "BOOL", "INT64", "FLOAT64", "BINARY"],
    "SpanRefType": ["CHILD_OF", "FOLLOWS_FROM"],
}
COLLECTOR_SERVICE = "jaeger.api_v2.CollectorService"


def _build_api_v2() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="threadline/jaeger_api_v2.proto", package="jaeger.api_v2", syntax="proto3"
    )
    for name, values in _API_V2_ENUMS.items():
        add_enum(fdp.enum_type, name, values)
    for name, fields in _API_V2_MESSAGES.items():
        add_message(fdp.message_type, name, fields)
    service = fdp.service.add(name="CollectorService")
    service.method.add(
        name="PostSpans",
        input_type=_API + "PostSpansRequest",
        output_type=_API + "PostSpansResponse",
    )
    # a private pool: the jaeger.api_v2 names cannot clash with anything else in the process
    return build(fdp, _API_V2_MESSAGES, dependencies=(timestamp_pb2, duration_pb2))


API_V2 = _build_api_v2()
"""``jaeger.api_v2`` message classes by name: KeyValue, Log, SpanRef, Process, Span, Batch,
PostSpansRequest, PostSpansResponse."""
PostSpansRequest = API_V2["PostSpansRequest"]
PostSpansResponse = API_V2["PostSpansResponse"]
