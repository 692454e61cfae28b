"""OTLP spans as Zipkin v2 JSON spans (what Zipkin's query API and Lens read).

As the OpenTelemetry Collector translates: kind SERVER/CLIENT/PRODUCER/CONSUMER (internal spans
have none), times in microseconds, ``service.name`` as the local endpoint, ``peer.service`` as
the remote endpoint, events as annotations (``name|{attributes as JSON}|dropped``), other
attributes (span and resource) as string tags, an error status as the ``error`` tag.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from threadline.api.jaeger_json import composite_text, jaeger_trace_id, plain_value

_KINDS = {
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}


def _text(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "string_value":
        return value.string_value
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which in ("int_value", "double_value"):
        return str(getattr(value, which))
    return composite_text(value)


# Go's encoding/json escapes these (what the Collector's annotations carry)
_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _annotation(event: Span.Event) -> str:
    """An event as the Collector writes it: its name, or with attributes
    ``name|{"key":value,...}|dropped attributes`` (keys sorted, compact JSON)."""
    if not event.attributes:
        return event.name
    attrs = {kv.key: plain_value(kv.value) for kv in event.attributes}
    text = orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS).decode()
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return f"{event.name}|{text}|{event.dropped_attributes_count}"


def zipkin_spans(data: TracesData) -> list[dict[str, Any]]:
    """Every span of ``data`` as a Zipkin v2 span, ordered by timestamp."""
    out = []
    for rs in data.resource_spans:
        service = ""
        resource_tags = {}
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = _text(kv.value)
            else:
                resource_tags[kv.key] = _text(kv.value)
        for ss in rs.scope_spans:
            for span in ss.spans:
                tags = dict(resource_tags)
                tags.update({kv.key: _text(kv.value) for kv in span.attributes})
                if ss.scope.name:
                    tags["otel.scope.name"] = ss.scope.name
                if ss.scope.version:
                    tags["otel.scope.version"] = ss.scope.version
                if span.status.code == Status.STATUS_CODE_ERROR:
                    tags["otel.status_code"] = "ERROR"
                    tags["error"] = span.status.message or "true"
                elif span.status.code == Status.STATUS_CODE_OK:
                    tags["otel.status_code"] = "OK"
                doc: dict[str, Any] = {
                    "traceId": jaeger_trace_id(span.trace_id),
                    "id": span.span_id.hex(),
                    "name": span.name,
                    "timestamp": span.start_time_unix_nano // 1000,
                    "duration": max(
                        1, (span.end_time_unix_nano - span.start_time_unix_nano) // 1000
                    ),
                    "localEndpoint": {"serviceName": service},
                }
                if span.parent_span_id:
                    doc["parentId"] = span.parent_span_id.hex()
                if span.kind in _KINDS:
                    doc["kind"] = _KINDS[span.kind]
                if "peer.service" in tags:
                    doc["remoteEndpoint"] = {"serviceName": tags["peer.service"]}
                if span.events:
                    doc["annotations"] = [
                        {"timestamp": ev.time_unix_nano // 1000, "value": _annotation(ev)}
                        for ev in span.events
                    ]
                if tags:
                    doc["tags"] = tags
                out.append(doc)
    out.sort(key=lambda s: s["timestamp"])
    return out
