"""The messages of Tempo's ``tempopb`` package that we speak: what its HTTP API answers in
protobuf, and the requests and answers of its ``StreamingQuerier`` gRPC service.

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
        ("backendReads", 8, F.TYPE_UINT64, _OPTIONAL, ""),
        ("backendBytes", 9, F.TYPE_UINT64, _OPTIONAL, ""),
    ],
    "SearchResponse": [
        ("traces", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.TraceSearchMetadata"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.SearchMetrics"),
    ],
    # the requests and answers of the StreamingQuerier service (Grafana's streaming search);
    # Tempo-internal fields (block, page and shard fields) are left out
    "SearchRequest": [
        ("MinDurationMs", 2, F.TYPE_UINT32, _OPTIONAL, ""),
        ("MaxDurationMs", 3, F.TYPE_UINT32, _OPTIONAL, ""),
        ("Limit", 4, F.TYPE_UINT32, _OPTIONAL, ""),
        ("start", 5, F.TYPE_UINT32, _OPTIONAL, ""),
        ("end", 6, F.TYPE_UINT32, _OPTIONAL, ""),
        ("Query", 8, F.TYPE_STRING, _OPTIONAL, ""),
        ("SpansPerSpanSet", 9, F.TYPE_UINT32, _OPTIONAL, ""),
    ],
    "MetadataMetrics": [
        ("inspectedBytes", 1, F.TYPE_UINT64, _OPTIONAL, ""),
        ("totalJobs", 2, F.TYPE_UINT32, _OPTIONAL, ""),
        ("completedJobs", 3, F.TYPE_UINT32, _OPTIONAL, ""),
        ("totalBlocks", 4, F.TYPE_UINT32, _OPTIONAL, ""),
        ("totalBlockBytes", 5, F.TYPE_UINT64, _OPTIONAL, ""),
        ("backendReads", 6, F.TYPE_UINT64, _OPTIONAL, ""),
        ("backendBytes", 7, F.TYPE_UINT64, _OPTIONAL, ""),
    ],
    "SearchTagsRequest": [
        ("scope", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("query", 2, F.TYPE_STRING, _OPTIONAL, ""),
        ("start", 3, F.TYPE_UINT32, _OPTIONAL, ""),
        ("end", 4, F.TYPE_UINT32, _OPTIONAL, ""),
        ("maxTagsPerScope", 5, F.TYPE_UINT32, _OPTIONAL, ""),
        ("staleValuesThreshold", 6, F.TYPE_UINT32, _OPTIONAL, ""),
    ],
    "SearchTagsResponse": [
        ("tagNames", 1, F.TYPE_STRING, _REPEATED, ""),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.MetadataMetrics"),
    ],
    "SearchTagsV2Scope": [
        ("name", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("tags", 2, F.TYPE_STRING, _REPEATED, ""),
    ],
    "SearchTagsV2Response": [
        ("scopes", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.SearchTagsV2Scope"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.MetadataMetrics"),
    ],
    "SearchTagValuesRequest": [
        ("tagName", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("query", 2, F.TYPE_STRING, _OPTIONAL, ""),
        ("start", 4, F.TYPE_UINT32, _OPTIONAL, ""),
        ("end", 5, F.TYPE_UINT32, _OPTIONAL, ""),
        ("maxTagValues", 6, F.TYPE_UINT32, _OPTIONAL, ""),
        ("staleValueThreshold", 7, F.TYPE_UINT32, _OPTIONAL, ""),
    ],
    "SearchTagValuesResponse": [
        ("tagValues", 1, F.TYPE_STRING, _REPEATED, ""),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.MetadataMetrics"),
    ],
    "TagValue": [
        ("type", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("value", 2, F.TYPE_STRING, _OPTIONAL, ""),
    ],
    "SearchTagValuesV2Response": [
        ("tagValues", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.TagValue"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.MetadataMetrics"),
    ],
    "QueryRangeRequest": [
        ("query", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("start", 2, F.TYPE_UINT64, _OPTIONAL, ""),
        ("end", 3, F.TYPE_UINT64, _OPTIONAL, ""),
        ("step", 4, F.TYPE_UINT64, _OPTIONAL, ""),
        ("queryMode", 7, F.TYPE_STRING, _OPTIONAL, ""),
        ("exemplars", 16, F.TYPE_UINT32, _OPTIONAL, ""),
        ("maxSeries", 17, F.TYPE_UINT32, _OPTIONAL, ""),
    ],
    "Sample": [
        ("timestampMs", 2, F.TYPE_INT64, _OPTIONAL, ""),
        ("value", 1, F.TYPE_DOUBLE, _OPTIONAL, ""),
    ],
    "Exemplar": [
        ("labels", 1, F.TYPE_MESSAGE, _REPEATED, ".opentelemetry.proto.common.v1.KeyValue"),
        ("value", 2, F.TYPE_DOUBLE, _OPTIONAL, ""),
        ("timestampMs", 3, F.TYPE_INT64, _OPTIONAL, ""),
    ],
    "TimeSeries": [
        ("labels", 1, F.TYPE_MESSAGE, _REPEATED, ".opentelemetry.proto.common.v1.KeyValue"),
        ("samples", 2, F.TYPE_MESSAGE, _REPEATED, ".tempopb.Sample"),
        ("exemplars", 4, F.TYPE_MESSAGE, _REPEATED, ".tempopb.Exemplar"),
    ],
    "QueryRangeResponse": [
        ("series", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.TimeSeries"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.SearchMetrics"),
        ("status", 3, F.TYPE_ENUM, _OPTIONAL, ".tempopb.PartialStatus"),
        ("message", 4, F.TYPE_STRING, _OPTIONAL, ""),
    ],
    "QueryInstantRequest": [
        ("query", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("start", 2, F.TYPE_UINT64, _OPTIONAL, ""),
        ("end", 3, F.TYPE_UINT64, _OPTIONAL, ""),
    ],
    "InstantSeries": [
        ("labels", 1, F.TYPE_MESSAGE, _REPEATED, ".opentelemetry.proto.common.v1.KeyValue"),
        ("value", 2, F.TYPE_DOUBLE, _OPTIONAL, ""),
    ],
    "QueryInstantResponse": [
        ("series", 1, F.TYPE_MESSAGE, _REPEATED, ".tempopb.InstantSeries"),
        ("metrics", 2, F.TYPE_MESSAGE, _OPTIONAL, ".tempopb.SearchMetrics"),
        ("status", 3, F.TYPE_ENUM, _OPTIONAL, ".tempopb.PartialStatus"),
        ("message", 4, F.TYPE_STRING, _OPTIONAL, ""),
    ],
}  # fmt: skip


_CLASSES = declare(
    "threadline/tempopb_subset.proto",
    "tempopb",
    _MESSAGES,
    enums={"PartialStatus": ["COMPLETE", "PARTIAL"]},
    dependencies=(common_pb2, trace_pb2),
    private=False,  # it refers to OTLP's messages, which live in the default pool
    json_names=True,
)
SearchResponse = _CLASSES["SearchResponse"]
TraceByIDResponse = _CLASSES["TraceByIDResponse"]
CLASSES: dict[str, Any] = _CLASSES


def search_response_protobuf(doc: dict[str, Any]) -> bytes:
    """The protobuf ``tempopb.SearchResponse`` of the search JSON document."""
    return json_format.ParseDict(doc, SearchResponse()).SerializeToString()
