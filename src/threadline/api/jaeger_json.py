"""OTLP traces as Jaeger's query JSON (the classic ``/api/traces`` model Jaeger UI reads).

Follows Jaeger's OTLP conventions: span kind as the ``span.kind`` tag, error status as
``error=true`` plus ``otel.status_code``/``otel.status_description``, the instrumentation scope as
``otel.scope.name``/``otel.scope.version``, events as logs whose ``event`` field is the name, the
parent as one ``CHILD_OF`` reference and links as ``FOLLOWS_FROM``, resources as processes.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

_KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}
_MAX_SAFE_INT = 2**53


def jaeger_trace_id(trace_id: bytes) -> str:
    """16 hex chars when the high half is zero (a 64-bit id), else 32, as Jaeger prints."""
    return trace_id[8:].hex() if trace_id[:8] == bytes(8) else trace_id.hex()


def plain_value(value: AnyValue) -> Any:
    """``value`` as plain JSON data: arrays as lists, key-value lists as objects, bytes as
    base64 text, an empty value as None (what OpenTelemetry's ``Value.AsRaw`` gives)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [plain_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: plain_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if which is None else getattr(value, which)


def composite_text(value: AnyValue) -> str:
    """An array or key-value list as compact JSON text, as the OpenTelemetry Collector's Jaeger
    and Zipkin translators write them (``["a",1]``, ``{"k":"v"}``); an empty value as ``""``."""
    plain = plain_value(value)
    return "" if plain is None else orjson.dumps(plain).decode()


def _tag(key: str, value: AnyValue) -> dict[str, Any]:
    which = value.WhichOneof("value")
    if which == "bool_value":
        return {"key": key, "type": "bool", "value": value.bool_value}
    if which == "int_value":
        v = value.int_value
        return {"key": key, "type": "int64", "value": v if abs(v) < _MAX_SAFE_INT else str(v)}
    if which == "double_value":
        return {"key": key, "type": "float64", "value": value.double_value}
    if which == "bytes_value":
        encoded = base64.b64encode(value.bytes_value).decode()
        return {"key": key, "type": "binary", "value": encoded}
    if which == "string_value":
        return {"key": key, "type": "string", "value": value.string_value}
    # arrays, key-value lists (and empty values): Jaeger's converter writes them as JSON text
    return {"key": key, "type": "string", "value": composite_text(value)}


def _tags(attributes: list[KeyValue] | Any) -> list[dict[str, Any]]:
    return [_tag(kv.key, kv.value) for kv in attributes]


def _span(span: Span, process_id: str, scope_name: str, scope_version: str) -> dict[str, Any]:
    trace_id = jaeger_trace_id(span.trace_id)
    references = []
    if span.parent_span_id:
        references.append(
            {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_span_id.hex()}
        )
    for link in span.links:
        references.append(
            {
                "refType": "FOLLOWS_FROM",
                "traceID": jaeger_trace_id(link.trace_id),
                "spanID": link.span_id.hex(),
            }
        )
    attributes = span.attributes
    if span.status.code == Status.STATUS_CODE_ERROR:
        # an ``error`` attribute (as Zipkin spans carry) is what the status already says:
        # shown once, as the error tag below, its text as otel.status_description
        attributes = [kv for kv in attributes if kv.key != "error"]
    tags = _tags(attributes)
    if scope_name:
        tags.append({"key": "otel.scope.name", "type": "string", "value": scope_name})
    if scope_version:
        tags.append({"key": "otel.scope.version", "type": "string", "value": scope_version})
    if span.kind in _KINDS:
        tags.append({"key": "span.kind", "type": "string", "value": _KINDS[span.kind]})
    if span.status.code == Status.STATUS_CODE_ERROR:
        tags.append({"key": "error", "type": "bool", "value": True})
        tags.append({"key": "otel.status_code", "type": "string", "value": "ERROR"})
    elif span.status.code == Status.STATUS_CODE_OK:
        tags.append({"key": "otel.status_code", "type": "string", "value": "OK"})
    if span.status.message:
        tags.append(
            {"key": "otel.status_description", "type": "string", "value": span.status.message}
        )
    if span.trace_state:
        tags.append({"key": "w3c.tracestate", "type": "string", "value": span.trace_state})
    logs = [
        {
            "timestamp": ev.time_unix_nano // 1000,
            "fields": [
                {"key": "event", "type": "string", "value": ev.name},
                *_tags(ev.attributes),
            ],
        }
        for ev in span.events
    ]
    return {
        "traceID": trace_id,
        "spanID": span.span_id.hex(),
        "flags": span.flags & 0xFF or 1,
        "operationName": span.name,
        "references": references,
        "startTime": span.start_time_unix_nano // 1000,
        "duration": (span.end_time_unix_nano - span.start_time_unix_nano) // 1000,
        "tags": tags,
        "logs": logs,
        "processID": process_id,
        "warnings": None,
    }


def jaeger_trace(data: TracesData) -> dict[str, Any]:
    """One trace (all spans share a trace id) in Jaeger's JSON model."""
    spans: list[dict[str, Any]] = []
    processes: dict[str, dict[str, Any]] = {}
    keys: dict[tuple[Any, ...], str] = {}
    trace_id = ""
    for rs in data.resource_spans:
        service = ""
        tags = []
        for kv in rs.resource.attributes:
            if kv.key == "service.name" and kv.value.WhichOneof("value") == "string_value":
                service = kv.value.string_value
            else:
                tags.append(_tag(kv.key, kv.value))
        key = (service, repr(tags))
        pid = keys.get(key)
        if pid is None:
            pid = keys[key] = f"p{len(keys) + 1}"
            processes[pid] = {"serviceName": service, "tags": tags}
        for ss in rs.scope_spans:
            for span in ss.spans:
                spans.append(_span(span, pid, ss.scope.name, ss.scope.version))
                trace_id = spans[-1]["traceID"]
    spans.sort(key=lambda s: s["startTime"])
    return {"traceID": trace_id, "spans": spans, "processes": processes, "warnings": None}


def split_traces(data: TracesData) -> list[TracesData]:
    """``data`` as one TracesData per trace id, in order of each trace's first span; every span
    keeps its resource and instrumentation scope."""
    traces: dict[bytes, TracesData] = {}
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            targets: dict[bytes, Any] = {}  # this scope's ScopeSpans in each trace
            for span in ss.spans:
                target = targets.get(span.trace_id)
                if target is None:
                    trace = traces.get(span.trace_id)
                    if trace is None:
                        trace = traces[span.trace_id] = TracesData()
                    out = trace.resource_spans.add(schema_url=rs.schema_url)
                    out.resource.CopyFrom(rs.resource)
                    target = targets[span.trace_id] = out.scope_spans.add(schema_url=ss.schema_url)
                    target.scope.CopyFrom(ss.scope)
                target.spans.append(span)
    return list(traces.values())
