"""OpenCensus agent trace protocol → the OTLP model.

The OpenCensus agent's ``opencensus.proto.agent.trace.v1.TraceService/Export`` is a
bidirectional stream of ``ExportTraceServiceRequest`` messages (``node``, ``spans``,
``resource``). The receiver keeps one ``ExportStream`` per call and hands it each message's
bytes; it returns a serialized OTLP ``ExportTraceServiceRequest`` and the number of spans in it.

Messages
    The ``opencensus-proto`` package's generated classes do not import with the protobuf
    library we use (they predate protoc 3.19), so the messages are declared below from the
    public ``.proto`` files (``agent/common/v1``, ``resource/v1``, ``trace/v1``,
    ``agent/trace/v1``; field numbers, types, nested messages, maps and oneofs as there) and
    built by the protobuf library into classes of a private descriptor pool. ``StackTrace`` is
    not declared: nothing is taken from it, and the parser skips its field as unknown. Bytes that
    do not parse (wire format, invalid UTF-8 in a string field) raise ``ValueError``.

Stream rules, as the OpenTelemetry Collector's OpenCensus receiver keeps them
    The first message must carry a ``node`` (else ``ProtocolViolation``, a ``ValueError``);
    a later message without ``node`` (``resource``) uses the last one the stream sent.

Translation, following the Collector's OpenCensus translator (``OCToTraces``)
    * Spans whose own ``resource`` is set go to a resource of their own (the node's fields with
      that resource); all others share one resource (node + the stream's resource). Spans keep
      their order in each; there is one instrumentation scope, empty.
    * Resource attributes: resource labels (``cloud.zone`` renamed ``cloud.availability_zone``),
      then node attributes (strings), then, overriding both: ``service.name`` from
      ``service_info.name``; from ``identifier``: ``opencensus.starttime`` (its
      ``start_timestamp`` as RFC 3339 with nanoseconds, trailing zeros dropped, in UTC),
      ``host.name``, ``process.pid`` (int); from ``library_info``: ``telemetry.sdk.version``
      (core library version), ``opencensus.exporterversion``, ``telemetry.sdk.language``
      (``cpp``, ``dotnet``, ``erlang``, ``go``, ``java``, ``nodejs``, ``php``, ``python``,
      ``ruby``, ``webjs``); ``opencensus.resourcetype`` from the resource's ``type``. Empty
      strings and a zero pid are left out.
    * Ids are copied into 16 (trace) / 8 (span) bytes, cut or padded with zeros on the right;
      all zeros means no id (a span without a valid trace or span id is then rejected by the
      distributor, as for OTLP).
    * ``name`` is the TruncatableString's value; Timestamps become unix nanoseconds (an unset
      one is 0; values outside 0..2**64-1 are clamped there).
    * Kind: SERVER → SERVER, CLIENT → CLIENT; unspecified with a string attribute ``span.kind``
      of ``producer``/``consumer``/``internal`` → that kind (the attribute is removed); anything
      else → UNSPECIFIED.
    * Status, when the span has one: code 0 (OK) → UNSET, any other code → ERROR; an
      ``otel.status_code`` attribute (its int value) overrides the code and is removed; the
      message is kept as is. No status → UNSET, no message.
    * Attributes keep their type (string, int, bool, double); a value with no type set becomes
      the string ``<Unknown OpenCensus attribute value type>``. ``dropped_attributes_count`` is
      kept. ``same_process_as_parent_span``, when set, becomes the bool attribute
      ``opencensus.same_process_as_parent_span``.
    * Time events → events: an annotation's description is the name and its attributes the
      event's; a message event is named ``message`` with ``message.type`` (``SENT``,
      ``RECEIVED``, ``TYPE_UNSPECIFIED``), ``messaging.message_id``,
      ``messaging.message_payload_size_bytes`` and
      ``messaging.message_payload_compressed_size_bytes`` (ints); an event with neither is named
      ``An unknown OpenCensus TimeEvent type was detected when translating``. Dropped
      annotations and message events add up to the span's dropped events count.
    * Links keep trace id, span id, tracestate, attributes and dropped counts; the link type
      (child/parent linked span) has no OTLP counterpart and is left out, as the Collector does.
    * ``tracestate`` entries are joined W3C style: ``k1=v1,k2=v2``.
    * ``child_span_count`` and ``stack_trace`` are not used.

The per-span work is Python (OpenCensus traffic is rare): callers with large messages run
``translate`` in a worker thread.
"""

from __future__ import annotations

import datetime
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message,
    message_factory,
    timestamp_pb2,
    wrappers_pb2,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp_service
from opentelemetry.proto.trace.v1 import trace_pb2 as otlp_trace

from threadline.model.protodesc import OPTIONAL, REPEATED, F, FieldSpec, add_enum, add_message

__all__ = [
    "TRACE_SERVICE",
    "ExportStream",
    "ExportTraceServiceRequest",
    "ExportTraceServiceResponse",
    "ProtocolViolation",
    "oc_to_otlp",
]

TRACE_SERVICE = "opencensus.proto.agent.trace.v1.TraceService"

# ----------------------------------------------------------------------------------------------
# the messages, from the public opencensus-proto definitions

_STR, _MSG, _ENUM = F.TYPE_STRING, F.TYPE_MESSAGE, F.TYPE_ENUM
_TS = ".google.protobuf.Timestamp"
_COMMON = ".opencensus.proto.agent.common.v1."
_RESOURCE = ".opencensus.proto.resource.v1."
_TRACE = ".opencensus.proto.trace.v1."


def _map_entry(parent: Any, name: str, value: FieldSpec) -> None:
    entry = add_message(parent.nested_type, name, [("key", 1, _STR, OPTIONAL, ""), value])
    entry.options.map_entry = True


def _oneof(msg: Any, name: str, fields: set[str]) -> None:
    index = len(msg.oneof_decl)
    msg.oneof_decl.add(name=name)
    for field in msg.field:
        if field.name in fields:
            field.oneof_index = index


def _file(name: str, package: str) -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto(
        name=f"threadline/opencensus/{name}", package=package, syntax="proto3"
    )


def _common_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = _file("common.proto", "opencensus.proto.agent.common.v1")
    fdp.dependency.append(timestamp_pb2.DESCRIPTOR.name)
    node = add_message(
        fdp.message_type,
        "Node",
        [
            ("identifier", 1, _MSG, OPTIONAL, _COMMON + "ProcessIdentifier"),
            ("library_info", 2, _MSG, OPTIONAL, _COMMON + "LibraryInfo"),
            ("service_info", 3, _MSG, OPTIONAL, _COMMON + "ServiceInfo"),
            ("attributes", 4, _MSG, REPEATED, _COMMON + "Node.AttributesEntry"),
        ],
    )
    _map_entry(node, "AttributesEntry", ("value", 2, _STR, OPTIONAL, ""))
    add_message(
        fdp.message_type,
        "ProcessIdentifier",
        [
            ("host_name", 1, _STR, OPTIONAL, ""),
            ("pid", 2, F.TYPE_UINT32, OPTIONAL, ""),
            ("start_timestamp", 3, _MSG, OPTIONAL, _TS),
        ],
    )
    library = add_message(
        fdp.message_type,
        "LibraryInfo",
        [
            ("language", 1, _ENUM, OPTIONAL, _COMMON + "LibraryInfo.Language"),
            ("exporter_version", 2, _STR, OPTIONAL, ""),
            ("core_library_version", 3, _STR, OPTIONAL, ""),
        ],
    )
    add_enum(library.enum_type, "Language", _LANGUAGES)
    add_message(fdp.message_type, "ServiceInfo", [("name", 1, _STR, OPTIONAL, "")])
    return fdp


_LANGUAGES = [
    "LANGUAGE_UNSPECIFIED", "CPP", "C_SHARP", "ERLANG", "GO_LANG", "JAVA", "NODE_JS", "PHP",
    "PYTHON", "RUBY", "WEB_JS",
]  # fmt: skip
# LibraryInfo.Language → telemetry.sdk.language, as the Collector maps them
_SDK_LANGUAGE = {
    1: "cpp", 2: "dotnet", 3: "erlang", 4: "go", 5: "java", 6: "nodejs", 7: "php", 8: "python",
    9: "ruby", 10: "webjs",
}  # fmt: skip


def _resource_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = _file("resource.proto", "opencensus.proto.resource.v1")
    resource = add_message(
        fdp.message_type,
        "Resource",
        [
            ("type", 1, _STR, OPTIONAL, ""),
            ("labels", 2, _MSG, REPEATED, _RESOURCE + "Resource.LabelsEntry"),
        ],
    )
    _map_entry(resource, "LabelsEntry", ("value", 2, _STR, OPTIONAL, ""))
    return fdp


def _trace_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = _file("trace.proto", "opencensus.proto.trace.v1")
    fdp.dependency.extend(
        [
            timestamp_pb2.DESCRIPTOR.name,
            wrappers_pb2.DESCRIPTOR.name,
            "threadline/opencensus/resource.proto",
        ]
    )
    span_ = _TRACE + "Span."
    span = add_message(
        fdp.message_type,
        "Span",
        [
            ("trace_id", 1, F.TYPE_BYTES, OPTIONAL, ""),
            ("span_id", 2, F.TYPE_BYTES, OPTIONAL, ""),
            ("tracestate", 15, _MSG, OPTIONAL, span_ + "Tracestate"),
            ("parent_span_id", 3, F.TYPE_BYTES, OPTIONAL, ""),
            ("name", 4, _MSG, OPTIONAL, _TRACE + "TruncatableString"),
            ("kind", 14, _ENUM, OPTIONAL, span_ + "SpanKind"),
            ("start_time", 5, _MSG, OPTIONAL, _TS),
            ("end_time", 6, _MSG, OPTIONAL, _TS),
            ("attributes", 7, _MSG, OPTIONAL, span_ + "Attributes"),
            # 8: stack_trace, not used
            ("time_events", 9, _MSG, OPTIONAL, span_ + "TimeEvents"),
            ("links", 10, _MSG, OPTIONAL, span_ + "Links"),
            ("status", 11, _MSG, OPTIONAL, _TRACE + "Status"),
            ("resource", 16, _MSG, OPTIONAL, _RESOURCE + "Resource"),
            ("same_process_as_parent_span", 12, _MSG, OPTIONAL, ".google.protobuf.BoolValue"),
            ("child_span_count", 13, _MSG, OPTIONAL, ".google.protobuf.UInt32Value"),
        ],
    )
    tracestate = add_message(
        span.nested_type,
        "Tracestate",
        [("entries", 1, _MSG, REPEATED, span_ + "Tracestate.Entry")],
    )
    add_message(
        tracestate.nested_type,
        "Entry",
        [("key", 1, _STR, OPTIONAL, ""), ("value", 2, _STR, OPTIONAL, "")],
    )
    attributes = add_message(
        span.nested_type,
        "Attributes",
        [
            ("attribute_map", 1, _MSG, REPEATED, span_ + "Attributes.AttributeMapEntry"),
            ("dropped_attributes_count", 2, F.TYPE_INT32, OPTIONAL, ""),
        ],
    )
    _map_entry(
        attributes, "AttributeMapEntry", ("value", 2, _MSG, OPTIONAL, _TRACE + "AttributeValue")
    )
    time_event = add_message(
        span.nested_type,
        "TimeEvent",
        [
            ("time", 1, _MSG, OPTIONAL, _TS),
            ("annotation", 2, _MSG, OPTIONAL, span_ + "TimeEvent.Annotation"),
            ("message_event", 3, _MSG, OPTIONAL, span_ + "TimeEvent.MessageEvent"),
        ],
    )
    _oneof(time_event, "value", {"annotation", "message_event"})
    add_message(
        time_event.nested_type,
        "Annotation",
        [
            ("description", 1, _MSG, OPTIONAL, _TRACE + "TruncatableString"),
            ("attributes", 2, _MSG, OPTIONAL, span_ + "Attributes"),
        ],
    )
    message_event = add_message(
        time_event.nested_type,
        "MessageEvent",
        [
            ("type", 1, _ENUM, OPTIONAL, span_ + "TimeEvent.MessageEvent.Type"),
            ("id", 2, F.TYPE_UINT64, OPTIONAL, ""),
            ("uncompressed_size", 3, F.TYPE_UINT64, OPTIONAL, ""),
            ("compressed_size", 4, F.TYPE_UINT64, OPTIONAL, ""),
        ],
    )
    add_enum(message_event.enum_type, "Type", ["TYPE_UNSPECIFIED", "SENT", "RECEIVED"])
    add_message(
        span.nested_type,
        "TimeEvents",
        [
            ("time_event", 1, _MSG, REPEATED, span_ + "TimeEvent"),
            ("dropped_annotations_count", 2, F.TYPE_INT32, OPTIONAL, ""),
            ("dropped_message_events_count", 3, F.TYPE_INT32, OPTIONAL, ""),
        ],
    )
    link = add_message(
        span.nested_type,
        "Link",
        [
            ("trace_id", 1, F.TYPE_BYTES, OPTIONAL, ""),
            ("span_id", 2, F.TYPE_BYTES, OPTIONAL, ""),
            ("type", 3, _ENUM, OPTIONAL, span_ + "Link.Type"),
            ("attributes", 4, _MSG, OPTIONAL, span_ + "Attributes"),
            ("tracestate", 5, _MSG, OPTIONAL, span_ + "Tracestate"),
        ],
    )
    add_enum(
        link.enum_type, "Type", ["TYPE_UNSPECIFIED", "CHILD_LINKED_SPAN", "PARENT_LINKED_SPAN"]
    )
    add_message(
        span.nested_type,
        "Links",
        [
            ("link", 1, _MSG, REPEATED, span_ + "Link"),
            ("dropped_links_count", 2, F.TYPE_INT32, OPTIONAL, ""),
        ],
    )
    add_enum(span.enum_type, "SpanKind", ["SPAN_KIND_UNSPECIFIED", "SERVER", "CLIENT"])
    add_message(
        fdp.message_type,
        "Status",
        [("code", 1, F.TYPE_INT32, OPTIONAL, ""), ("message", 2, _STR, OPTIONAL, "")],
    )
    value = add_message(
        fdp.message_type,
        "AttributeValue",
        [
            ("string_value", 1, _MSG, OPTIONAL, _TRACE + "TruncatableString"),
            ("int_value", 2, F.TYPE_INT64, OPTIONAL, ""),
            ("bool_value", 3, F.TYPE_BOOL, OPTIONAL, ""),
            ("double_value", 4, F.TYPE_DOUBLE, OPTIONAL, ""),
        ],
    )
    _oneof(value, "value", {"string_value", "int_value", "bool_value", "double_value"})
    add_message(
        fdp.message_type,
        "TruncatableString",
        [("value", 1, _STR, OPTIONAL, ""), ("truncated_byte_count", 2, F.TYPE_INT32, OPTIONAL, "")],
    )
    return fdp


def _service_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = _file("trace_service.proto", "opencensus.proto.agent.trace.v1")
    fdp.dependency.extend(
        [
            "threadline/opencensus/common.proto",
            "threadline/opencensus/resource.proto",
            "threadline/opencensus/trace.proto",
        ]
    )
    agent = ".opencensus.proto.agent.trace.v1."
    add_message(
        fdp.message_type,
        "ExportTraceServiceRequest",
        [
            ("node", 1, _MSG, OPTIONAL, _COMMON + "Node"),
            ("spans", 2, _MSG, REPEATED, _TRACE + "Span"),
            ("resource", 3, _MSG, OPTIONAL, _RESOURCE + "Resource"),
        ],
    )
    add_message(fdp.message_type, "ExportTraceServiceResponse", [])
    service = fdp.service.add(name="TraceService")
    service.method.add(
        name="Export",
        input_type=agent + "ExportTraceServiceRequest",
        output_type=agent + "ExportTraceServiceResponse",
        client_streaming=True,
        server_streaming=True,
    )
    return fdp


def _build() -> dict[str, Any]:
    # a private pool: these names cannot clash with generated classes a client library may load
    pool = descriptor_pool.DescriptorPool()
    for dep in (timestamp_pb2, wrappers_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(dep.DESCRIPTOR.serialized_pb))
    classes: dict[str, Any] = {}
    for fdp in (_common_file(), _resource_file(), _trace_file(), _service_file()):
        file_desc = pool.Add(fdp)
        for name, desc in file_desc.message_types_by_name.items():
            classes[name] = message_factory.GetMessageClass(desc)
    return classes


OC = _build()
"""The OpenCensus message classes by (top-level) name: Node, ProcessIdentifier, LibraryInfo,
ServiceInfo, Resource, Span (with its nested Span.Attributes, Span.TimeEvent, Span.Link ...),
Status, AttributeValue, TruncatableString, ExportTraceServiceRequest,
ExportTraceServiceResponse."""
ExportTraceServiceRequest = OC["ExportTraceServiceRequest"]
ExportTraceServiceResponse = OC["ExportTraceServiceResponse"]


# ----------------------------------------------------------------------------------------------
# the stream and the translation


class ProtocolViolation(ValueError):
    """The stream broke the OpenCensus agent protocol (its first message has no node)."""


class ExportStream:
    """One ``Export`` call: the last node and resource it sent, for messages that omit them."""

    def __init__(self) -> None:
        self.node: Any = None
        self.resource: Any = None

    def translate(self, data: bytes) -> tuple[bytes, int]:
        """The serialized OTLP request for one message of the stream, and its span count."""
        try:
            request = ExportTraceServiceRequest.FromString(data)
        except message.DecodeError as e:
            raise ValueError(f"invalid OpenCensus message: {e}") from None
        if request.HasField("node"):
            self.node = request.node
        elif self.node is None:
            raise ProtocolViolation(
                "protocol violation: the first ExportTraceServiceRequest of an Export stream "
                "must carry a node"
            )
        if request.HasField("resource"):
            self.resource = request.resource
        otlp = oc_to_otlp(self.node, self.resource, request.spans)
        return otlp.SerializeToString(), len(request.spans)


_UNKNOWN_VALUE = "<Unknown OpenCensus attribute value type>"
_UNKNOWN_EVENT = "An unknown OpenCensus TimeEvent type was detected when translating"
_KIND = otlp_trace.Span.SpanKind
_OT_KINDS = {
    "producer": _KIND.SPAN_KIND_PRODUCER,
    "consumer": _KIND.SPAN_KIND_CONSUMER,
    "internal": _KIND.SPAN_KIND_INTERNAL,
}
_UNSET = otlp_trace.Status.StatusCode.STATUS_CODE_UNSET
_ERROR = otlp_trace.Status.StatusCode.STATUS_CODE_ERROR
_MESSAGE_TYPES = {0: "TYPE_UNSPECIFIED", 1: "SENT", 2: "RECEIVED"}
_U32, _U64 = 2**32, 2**64


def oc_to_otlp(node: Any, resource: Any, spans: Any) -> otlp_service.ExportTraceServiceRequest:
    """An OTLP request for OpenCensus ``spans`` of ``node`` (``resource`` may be None)."""
    out = otlp_service.ExportTraceServiceRequest()
    shared: Any = None
    for span in spans:
        if span.HasField("resource"):
            rs = out.resource_spans.add()
            _resource(node, span.resource, rs.resource)
            _span(span, rs.scope_spans.add().spans.add())
            continue
        if shared is None:
            shared = out.resource_spans.add()
            _resource(node, resource, shared.resource)
            shared.scope_spans.add()
        _span(span, shared.scope_spans[0].spans.add())
    return out


def _resource(node: Any, resource: Any, dest: Any) -> None:
    attrs: dict[str, str | int] = {}
    if resource is not None:
        for key, value in resource.labels.items():
            attrs["cloud.availability_zone" if key == "cloud.zone" else key] = value
    if node is not None:
        attrs.update(node.attributes.items())
        if node.HasField("service_info") and node.service_info.name:
            attrs["service.name"] = node.service_info.name
        if node.HasField("identifier"):
            ident = node.identifier
            if ident.HasField("start_timestamp"):
                started = _rfc3339(ident.start_timestamp)
                if started is not None:
                    attrs["opencensus.starttime"] = started
            if ident.host_name:
                attrs["host.name"] = ident.host_name
            if ident.pid:
                attrs["process.pid"] = ident.pid
        if node.HasField("library_info"):
            library = node.library_info
            if library.core_library_version:
                attrs["telemetry.sdk.version"] = library.core_library_version
            if library.exporter_version:
                attrs["opencensus.exporterversion"] = library.exporter_version
            if library.language in _SDK_LANGUAGE:
                attrs["telemetry.sdk.language"] = _SDK_LANGUAGE[library.language]
    if resource is not None and resource.type:
        attrs["opencensus.resourcetype"] = resource.type
    for key, value in attrs.items():
        kv = dest.attributes.add(key=key)
        if isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = value


def _span(src: Any, dest: Any) -> None:
    removed: set[str] = set()
    oc_attrs = src.attributes.attribute_map
    dest.kind = _kind(src.kind, oc_attrs, removed)
    dest.trace_id = _id(src.trace_id, 16)
    dest.span_id = _id(src.span_id, 8)
    dest.trace_state = _tracestate(src.tracestate)
    dest.parent_span_id = _id(src.parent_span_id, 8)
    dest.name = src.name.value
    dest.start_time_unix_nano = _unix_nano(src.start_time)
    dest.end_time_unix_nano = _unix_nano(src.end_time)
    if src.HasField("status"):
        code = _ERROR if src.status.code else _UNSET
        if "otel.status_code" in oc_attrs:  # set by the Collector's OTLP → OpenCensus side
            code = _int32(oc_attrs["otel.status_code"].int_value)
            removed.add("otel.status_code")
        dest.status.code = code
        dest.status.message = src.status.message
    _attributes(src.attributes, dest.attributes, removed)
    dest.dropped_attributes_count = src.attributes.dropped_attributes_count % _U32
    if src.HasField("time_events"):
        events = src.time_events
        dropped = events.dropped_message_events_count + events.dropped_annotations_count
        dest.dropped_events_count = dropped % _U32
        for ev in events.time_event:
            _event(ev, dest.events.add())
    if src.HasField("links"):
        dest.dropped_links_count = src.links.dropped_links_count % _U32
        for link in src.links.link:
            out = dest.links.add(
                trace_id=_id(link.trace_id, 16),
                span_id=_id(link.span_id, 8),
                trace_state=_tracestate(link.tracestate),
            )
            _attributes(link.attributes, out.attributes, ())
            out.dropped_attributes_count = link.attributes.dropped_attributes_count % _U32
    if src.HasField("same_process_as_parent_span"):
        key = "opencensus.same_process_as_parent_span"
        same = src.same_process_as_parent_span.value
        existing = next((kv for kv in dest.attributes if kv.key == key), None)
        if existing is None:
            existing = dest.attributes.add(key=key)
        existing.value.Clear()
        existing.value.bool_value = same


def _kind(kind: int, oc_attrs: Any, removed: set[str]) -> int:
    if kind == 1:
        return _KIND.SPAN_KIND_SERVER
    if kind == 2:
        return _KIND.SPAN_KIND_CLIENT
    if kind == 0 and "span.kind" in oc_attrs:
        value = oc_attrs["span.kind"]
        if value.WhichOneof("value") == "string_value":
            mapped = _OT_KINDS.get(value.string_value.value)
            if mapped is not None:
                removed.add("span.kind")
                return mapped
    return _KIND.SPAN_KIND_UNSPECIFIED


def _attributes(src: Any, dest: Any, removed: Any) -> None:
    for key, value in src.attribute_map.items():
        if key in removed:
            continue
        out = dest.add(key=key).value
        which = value.WhichOneof("value")
        if which == "string_value":
            out.string_value = value.string_value.value
        elif which == "int_value":
            out.int_value = value.int_value
        elif which == "bool_value":
            out.bool_value = value.bool_value
        elif which == "double_value":
            out.double_value = value.double_value
        else:
            out.string_value = _UNKNOWN_VALUE


def _event(src: Any, dest: Any) -> None:
    dest.time_unix_nano = _unix_nano(src.time)
    which = src.WhichOneof("value")
    if which == "annotation":
        annotation = src.annotation
        dest.name = annotation.description.value
        _attributes(annotation.attributes, dest.attributes, ())
        dest.dropped_attributes_count = annotation.attributes.dropped_attributes_count % _U32
    elif which == "message_event":
        msg = src.message_event
        dest.name = "message"
        attrs = dest.attributes
        attrs.add(key="message.type").value.string_value = _MESSAGE_TYPES.get(
            msg.type, str(msg.type)
        )
        for key, number in (
            ("messaging.message_id", msg.id),
            ("messaging.message_payload_size_bytes", msg.uncompressed_size),
            ("messaging.message_payload_compressed_size_bytes", msg.compressed_size),
        ):
            attrs.add(key=key).value.int_value = _int64(number)
    else:
        dest.name = _UNKNOWN_EVENT


def _id(raw: bytes, size: int) -> bytes:
    fixed = raw[:size].ljust(size, b"\0")
    return fixed if any(fixed) else b""


def _tracestate(tracestate: Any) -> str:
    return ",".join(f"{e.key}={e.value}" for e in tracestate.entries)


def _unix_nano(ts: timestamp_pb2.Timestamp) -> int:
    return min(max(ts.seconds * 1_000_000_000 + ts.nanos, 0), _U64 - 1)


def _int32(value: int) -> int:
    value %= _U32
    return value - _U32 if value >= 2**31 else value


def _int64(value: int) -> int:
    return value - _U64 if value >= 2**63 else value


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _rfc3339(ts: timestamp_pb2.Timestamp) -> str | None:
    """Go's RFC3339Nano in UTC (``2006-01-02T15:04:05.999999999Z``); None out of datetime's
    range."""
    seconds, nanos = divmod(ts.seconds * 1_000_000_000 + ts.nanos, 1_000_000_000)
    try:
        t = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        return None
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"
