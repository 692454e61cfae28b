"""The few messages of Tempo's ``tempopb`` package that its HTTP API answers in protobuf.

Declared here field by field (numbers and names as Tempo's ``tempo.proto``) and built into
message classes with the protobuf library at import, reusing OTLP's own ``KeyValue`` and
``ResourceSpans``; so JSON (proto3 mapping) and binary encodings both come from the library.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from threadline.model.protodesc import OPTIONAL, REPEATED, F, declare

_OPTIONAL, _REPEATED = OPTIONAL, REPEATED

# message name -> [(field name, number, type, label, type name)]
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "Trace": [
        ("resourceSpans", 1, F.TYPE_MESSAGE, _REPEATED,
         ".opentelemetry.proto.trace.v1.ResourceSpans"),
    ],
    "TraceByIDMetrics": [
        ("inspectedBytes", 1, F.TYPE_UINT64, _OPTIONAL, ""),
    ],
    "TraceByIDResponse": [
        ("trace", 1, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.Trace"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.TraceByIDMetrics"),
    ],
    "Span": [
        ("spanID", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("name", 2, F.TYPE_STRING, _OPTIONAL, ""),
        ("startTimeUnixNano", 3, F.TYPE_UINT64, _OPTIONAL, ""),
        ("durationNanos", 4, F.TYPE_UINT64, _OPTIONAL, ""),
        ("attributes", 5, F.TYPE_MESSAGE, _REPEATED, ".opentelemetry.proto.common.v1.KeyValue"),
    ],
    "SpanSet": [
        ("spans", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.Span"),
        ("matched", 2, F.TYPE_UINT32, _OPTIONAL, ""),
        ("attributes", 3, F.TYPE_MESSAGE, _REPEATED, ".opentelemetry.proto.common.v1.KeyValue"),
    ],
    "TraceSearchMetadata": [
        ("traceID", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("rootServiceName", 2, F.TYPE_STRING, _OPTIONAL, ""),
        ("rootTraceName", 3, F.TYPE_STRING, _OPTIONAL, ""),
        ("startTimeUnixNano", 4, F.TYPE_UINT64, _OPTIONAL, ""),
        ("durationMs", 5, F.TYPE_UINT32, _OPTIONAL, ""),
        ("spanSet", 6, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.SpanSet"),
        ("spanSets", 7, F.TYPE_MESSAGE, _REPEATED, ".tempopb.SpanSet"),
    ],
    "SearchMetrics": [
        ("inspectedTraces", 1, F.TYPE_UINT32, _OPTIONAL, ""),
        ("inspectedBytes", 2, F.TYPE_UINT64, _OPTIONAL, ""),
        ("totalBlocks", 3, F.TYPE_UINT32, _OPTIONAL, ""),
        ("completedJobs", 4, F.TYPE_UINT32, _OPTIONAL, ""),
        ("totalJobs", 5, F.TYPE_UINT32, _OPTIONAL, ""),
        ("totalBlockBytes", 6, F.TYPE_UINT64, _OPTIONAL, ""),
        ("inspectedSpans", 7, F.TYPE_UINT64, _OPTIONAL, ""),
    ],
    "SearchResponse": [
        ("traces", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.TraceSearchMetadata"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.SearchMetrics"),
    ],
}  # fmt: skip


_CLASSES = declare(
    "threadline/tempopb_subset.proto",
    "tempopb",
    _MESSAGES,
    dependencies=(common_pb2, trace_pb2),
    private=False,  # it refers to OTLP's messages, which live in the default pool
    json_names=True,
)
SearchResponse = _CLASSES["SearchResponse"]
TraceByIDResponse = _CLASSES["TraceByIDResponse"]


def search_response_protobuf(doc: dict[str, Any]) -> bytes:
    """The protobuf ``tempopb.SearchResponse`` of the search JSON document."""
    return json_format.ParseDict(doc, SearchResponse()).SerializeToString()
