"""Zipkin spans into the OTLP model: v2 JSON, v2 proto3 and v1 JSON → ``ExportTraceServiceRequest``.

Each entry point takes a request body and returns the serialized OTLP request. v2 (JSON and
proto3) is translated by compiled code (``threadline.model._zipkin_otlp``: the body's bytes to
OTLP wire bytes, no Python objects per span); the Python helpers here hold the parts it calls per
distinct value (endpoints, a service's resource, an endpoint pair's attributes, annotation values
with attributes, links) and the checks of spans in unusual shapes (``_normalize_json_span``). v1
JSON is translated here with the protobuf classes. Bad input raises ``ValueError`` naming the span
and the field (``spans[3].traceId: ...``); the whole request is refused, as the OpenTelemetry
Collector's Zipkin receiver does. Span-level checks that OTLP shares (all-zero ids, end before
start) are left to the distributor, which rejects such spans one by one.

Mapping (the OpenTelemetry Collector's ``zipkinv2.ToTranslator``, semantic conventions 1.6.1):

* ``traceId``: 16 to 32 hex characters (8 or 16 bytes in proto), left-padded with zeros to 128 bits;
  ``id`` and ``parentId``: 16 hex characters (8 bytes); a ``parentId`` equal to ``id`` is dropped.
* ``kind`` CLIENT/SERVER/PRODUCER/CONSUMER → ``SPAN_KIND_*``; no kind → INTERNAL when the tag
  ``span.kind`` is ``internal``, else UNSPECIFIED (the ``span.kind`` tag is removed either way).
* ``timestamp``/``duration`` (µs) → start/end (ns). No timestamp (absent or 0) → start at the
  Unix epoch, end = duration, and the bool attribute ``otel.zipkin.absentField.startTime``.
* Status: tag ``otel.status_code`` (``STATUS_CODE_*``, ``Unset``/``Ok``/``Error``) with
  ``otel.status_description``; any ``error`` tag → ERROR (the tag is removed only when it is
  ``"true"``, otherwise kept as the attribute ``error``).
* ``w3c.tracestate`` tag → trace_state; ``otlp.link.N`` tags → links.
* ``annotations`` → events (µs → ns); a value ``name|{json attributes}|dropped`` gives the event
  name and typed attributes.
* ``localEndpoint.serviceName`` → resource ``service.name`` (or the key named by the tag
  ``otlp.service.name.source``); spans are grouped into one ResourceSpans per local service.
  Tags whose key is a resource attribute (``host.name``, ``service.version``, ``telemetry.sdk.*``,
  ``process.pid``, ``opencensus.*`` ...) are moved to the resource, taken from the first span of
  each service. ``otel.library.name``/``version`` tags → instrumentation scope (spans grouped per
  scope within a service), taken from the first span of each scope.
* ``localEndpoint`` ipv4/ipv6/port → ``net.host.ip``/``net.host.port``; ``remoteEndpoint``
  serviceName/ipv4/ipv6/port → ``peer.service``/``net.peer.ip``/``net.peer.port``.
* Other tags → string attributes (tag values stay strings, the Collector's default).
* ``debug`` (and the ``X-B3-Flags`` header) is ignored, as by the Collector.

Departures from the Collector, on purpose:

* ``otel.status_code`` also accepts ``OK``/``ERROR``/``UNSET``: the names the OpenTelemetry
  Zipkin exporters write (the Collector maps them to UNSET, losing every error status they send).
* An ERROR status without a message takes the ``error`` tag's value as its message (exporters
  write the status description there), except for ``"true"`` and ``""``.
* An annotation whose value is a JSON object with one key whose value is an object (what the
  OpenTelemetry Python exporter writes for events) becomes an event with that name and typed
  attributes. A value that is not in one of these forms, or whose parts do not parse, is the
  event name as a whole (the Collector cuts it at the first ``|``, or fails the request).
* ``shared: true`` adds the bool attribute ``zipkin.shared``: the span id then repeats the client
  span's id (Zipkin's RPC model), and the flag is what tells the halves apart.
* Resource tags of spans without a local service name still go to the resource (the Collector
  drops them).
* Tag values that are JSON numbers or booleans are accepted as their string form.
* ``otel.scope.name``/``otel.scope.version`` (what current exporters write instead of
  ``otel.library.*``) also give the instrumentation scope and are not kept as attributes.

Zipkin v1 JSON (the Collector's ``zipkinv1`` translator): kind from the first core annotation
(``cs``/``cr`` CLIENT, ``sr``/``ss`` SERVER, ``ms`` PRODUCER, ``mr`` CONSUMER), whose endpoint
gives the service (else the endpoint of a binary annotation, else ``lc``, else
``unknown-service``); resource ``service.name`` plus ``ipv4``/``ipv6``/``port`` of that endpoint;
start/end from ``timestamp``/``duration``, else from the earliest/latest annotation, else now
(with ``otel.zipkin.absentField.startTime``); other annotations → events; binary annotations →
string attributes (``lc`` → ``component``); status from ``census.status_code``, then
``otel.status_code``, then ``error``, then ``http.status_code`` (≥ 400 → ERROR). Departure: the
address annotations ``sa``/``ca``/``ma`` (boolean values, on which the Collector fails) give the
remote endpoint attributes as in v2.
"""

from __future__ import annotations

import functools
import socket
import time
from typing import Any

import orjson
from google.protobuf import descriptor_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from threadline.model import _zipkin_otlp
from threadline.model.protodesc import OPTIONAL, REPEATED, F, add_enum, add_message, build

__all__ = [
    "RESOURCE_TAGS",
    "ListOfSpans",
    "zipkin_v1_json_to_otlp",
    "zipkin_v2_json_to_otlp",
    "zipkin_v2_proto_to_otlp",
]

# --- attribute and tag names ---------------------------------------------------------------

SERVICE_NAME = "service.name"
TAG_SERVICE_NAME_SOURCE = "otlp.service.name.source"
TAG_LIBRARY_NAME = "otel.library.name"
TAG_LIBRARY_VERSION = "otel.library.version"
TAG_SCOPE_NAME = "otel.scope.name"
TAG_SCOPE_VERSION = "otel.scope.version"
TAG_STATUS_CODE = "otel.status_code"
TAG_STATUS_DESCRIPTION = "otel.status_description"
TAG_ERROR = "error"
TAG_SPAN_KIND = "span.kind"
TAG_TRACE_STATE = "w3c.tracestate"
ATTR_START_ABSENT = "otel.zipkin.absentField.startTime"
ATTR_SHARED = "zipkin.shared"
NET_HOST_IP, NET_HOST_PORT = "net.host.ip", "net.host.port"
NET_PEER_IP, NET_PEER_PORT, PEER_SERVICE = "net.peer.ip", "net.peer.port", "peer.service"
_LINK_KEYS = tuple(f"otlp.link.{i}" for i in range(128))

# Resource attribute names of semantic conventions 1.6.1, plus the OpenCensus resource keys the
# Collector also treats as resource attributes.
RESOURCE_TAGS = frozenset(
    {
        "cloud.provider", "cloud.account.id", "cloud.region", "cloud.availability_zone",
        "cloud.platform",
        "aws.ecs.container.arn", "aws.ecs.cluster.arn", "aws.ecs.launchtype", "aws.ecs.task.arn",
        "aws.ecs.task.family", "aws.ecs.task.revision", "aws.eks.cluster.arn",
        "aws.log.group.names", "aws.log.group.arns", "aws.log.stream.names",
        "aws.log.stream.arns",
        "container.name", "container.id", "container.runtime", "container.image.name",
        "container.image.tag",
        "deployment.environment",
        "device.id", "device.model.identifier", "device.model.name",
        "faas.name", "faas.id", "faas.version", "faas.instance", "faas.max_memory",
        "host.id", "host.name", "host.type", "host.arch", "host.image.name", "host.image.id",
        "host.image.version",
        "k8s.cluster.name", "k8s.node.name", "k8s.node.uid", "k8s.namespace.name",
        "k8s.pod.uid", "k8s.pod.name", "k8s.container.name", "k8s.replicaset.uid",
        "k8s.replicaset.name", "k8s.deployment.uid", "k8s.deployment.name",
        "k8s.statefulset.uid", "k8s.statefulset.name", "k8s.daemonset.uid",
        "k8s.daemonset.name", "k8s.job.uid", "k8s.job.name", "k8s.cronjob.uid",
        "k8s.cronjob.name",
        "os.type", "os.description", "os.name", "os.version",
        "process.pid", "process.executable.name", "process.executable.path", "process.command",
        "process.command_line", "process.command_args", "process.owner",
        "process.runtime.name", "process.runtime.version", "process.runtime.description",
        "service.name", "service.namespace", "service.instance.id", "service.version",
        "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version",
        "telemetry.auto.version",
        "webengine.name", "webengine.version", "webengine.description",
        "opencensus.starttime", "opencensus.exporterversion", "opencensus.resourcetype",
    }
)  # fmt: skip
# tags that never become span attributes
NON_SPAN_TAGS = RESOURCE_TAGS | {
    TAG_SERVICE_NAME_SOURCE,
    TAG_LIBRARY_NAME,
    TAG_LIBRARY_VERSION,
    TAG_SCOPE_NAME,
    TAG_SCOPE_VERSION,
}

# OTLP enum values
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = 1, 2, 3, 4, 5
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
_JSON_KINDS = {
    "CLIENT": KIND_CLIENT,
    "SERVER": KIND_SERVER,
    "PRODUCER": KIND_PRODUCER,
    "CONSUMER": KIND_CONSUMER,
}
_STATUS_NAMES = {
    "STATUS_CODE_UNSET": STATUS_UNSET,
    "STATUS_CODE_OK": STATUS_OK,
    "STATUS_CODE_ERROR": STATUS_ERROR,
    "Unset": STATUS_UNSET,
    "Ok": STATUS_OK,
    "Error": STATUS_ERROR,
    # what the OpenTelemetry Zipkin exporters write (see the module docstring)
    "UNSET": STATUS_UNSET,
    "OK": STATUS_OK,
    "ERROR": STATUS_ERROR,
}
_V1_CORE_KINDS = {
    "cs": KIND_CLIENT,
    "cr": KIND_CLIENT,
    "sr": KIND_SERVER,
    "ss": KIND_SERVER,
    "ms": KIND_PRODUCER,
    "mr": KIND_CONSUMER,
}
_V1_ADDRESS_KEYS = frozenset({"sa", "ca", "ma"})
_V1_UNKNOWN_SERVICE = "unknown-service"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1


# --- zipkin.proto3 message classes ---------------------------------------------------------


def _zipkin_proto_classes() -> dict[str, Any]:
    """``zipkin.proto3`` messages (field numbers and names as Zipkin's ``zipkin.proto``).

    Built in a private descriptor pool, so they never clash with a generated ``zipkin_pb2``
    that a client library registers in the default pool of the same process.
    """
    opt, rep = OPTIONAL, REPEATED
    fdp = descriptor_pb2.FileDescriptorProto(
        name="threadline/zipkin.proto", package="zipkin.proto3", syntax="proto3"
    )
    message = add_message
    message(
        fdp.message_type,
        "Endpoint",
        [
            ("service_name", 1, F.TYPE_STRING, opt, ""),
            ("ipv4", 2, F.TYPE_BYTES, opt, ""),
            ("ipv6", 3, F.TYPE_BYTES, opt, ""),
            ("port", 4, F.TYPE_INT32, opt, ""),
        ],
    )
    message(
        fdp.message_type,
        "Annotation",
        [("timestamp", 1, F.TYPE_FIXED64, opt, ""), ("value", 2, F.TYPE_STRING, opt, "")],
    )
    span = message(
        fdp.message_type,
        "Span",
        [
            ("trace_id", 1, F.TYPE_BYTES, opt, ""),
            ("parent_id", 2, F.TYPE_BYTES, opt, ""),
            ("id", 3, F.TYPE_BYTES, opt, ""),
            ("kind", 4, F.TYPE_ENUM, opt, ".zipkin.proto3.Span.Kind"),
            ("name", 5, F.TYPE_STRING, opt, ""),
            ("timestamp", 6, F.TYPE_FIXED64, opt, ""),
            ("duration", 7, F.TYPE_UINT64, opt, ""),
            ("local_endpoint", 8, F.TYPE_MESSAGE, opt, ".zipkin.proto3.Endpoint"),
            ("remote_endpoint", 9, F.TYPE_MESSAGE, opt, ".zipkin.proto3.Endpoint"),
            ("annotations", 10, F.TYPE_MESSAGE, rep, ".zipkin.proto3.Annotation"),
            ("tags", 11, F.TYPE_MESSAGE, rep, ".zipkin.proto3.Span.TagsEntry"),
            ("debug", 12, F.TYPE_BOOL, opt, ""),
            ("shared", 13, F.TYPE_BOOL, opt, ""),
        ],
    )
    entry = message(
        span.nested_type,
        "TagsEntry",
        [("key", 1, F.TYPE_STRING, opt, ""), ("value", 2, F.TYPE_STRING, opt, "")],
    )
    entry.options.map_entry = True
    add_enum(
        span.enum_type,
        "Kind",
        ("SPAN_KIND_UNSPECIFIED", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"),
    )
    message(
        fdp.message_type,
        "ListOfSpans",
        [("spans", 1, F.TYPE_MESSAGE, rep, ".zipkin.proto3.Span")],
    )
    return build(fdp, ("Endpoint", "Annotation", "Span", "ListOfSpans"))


_PROTO = _zipkin_proto_classes()
ListOfSpans = _PROTO["ListOfSpans"]
"""``zipkin.proto3.ListOfSpans``, the body of ``POST /api/v2/spans`` in protobuf."""


# --- small helpers -------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _hex_id(value: object, where: str, field: str, lengths: tuple[int, int]) -> bytes:
    """Bytes of a lower/upper-case hex id of ``lengths[0]..lengths[1]`` characters."""
    if type(value) is not str:
        raise ValueError(f"{where}.{field}: expected a hex string, got {_type_name(value)}")
    n = len(value)
    lo, hi = lengths
    if n < lo or n > hi:
        want = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise ValueError(
            f"{where}.{field}: expected {want} hex characters, got {n}: {_show(value)}"
        )
    if n & 1:
        value = "0" + value
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) * 2 != len(value):  # fromhex also skips whitespace
        raise ValueError(f"{where}.{field}: not a hex string: {_show(value)}")
    return raw


def _trace_id(value: object, where: str) -> bytes:
    raw = _hex_id(value, where, "traceId", (16, 32))
    return raw.rjust(16, b"\0")


def _micros(value: object, where: str, field: str) -> int:
    """A non-negative integer number of microseconds; 0 for null/absent."""
    if value is None:
        return 0
    if type(value) is not int:
        raise ValueError(f"{where}.{field}: expected an integer (microseconds), got {_show(value)}")
    if value < 0 or value > _UINT64_MAX // 1000:
        raise ValueError(f"{where}.{field}: out of range: {value}")
    return value


def _duration(value: object, where: str) -> int:
    """Duration in µs; negative values pass (the distributor rejects end-before-start spans)."""
    if value is None:
        return 0
    if type(value) is not int:
        raise ValueError(
            f"{where}.duration: expected an integer (microseconds), got {_show(value)}"
        )
    if value > _UINT64_MAX // 1000 or value < -_UINT64_MAX // 1000:
        raise ValueError(f"{where}.duration: out of range: {value}")
    return value


def _tag_value(value: object, where: str) -> str:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return str(value)
    raise ValueError(f"{where}: expected a string, got {_type_name(value)}")


def _json_tags(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise ValueError(f"{where}.tags: expected an object, got {_type_name(value)}")
    for v in value.values():
        if type(v) is not str:
            return {k: _tag_value(v, f"{where}.tags[{k!r}]") for k, v in value.items()}
    return dict(value)


def _any_value(value: object, depth: int = 0) -> AnyValue | None:
    """An OTLP value of a decoded JSON value; None for values with no OTLP form (null, ...)."""
    if type(value) is str:
        return AnyValue(string_value=value)
    if type(value) is bool:
        return AnyValue(bool_value=value)
    if type(value) is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return AnyValue(int_value=value)
        return AnyValue(double_value=float(value))
    if type(value) is float:
        if value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
            return AnyValue(int_value=int(value))
        return AnyValue(double_value=value)
    if type(value) is list and depth < 8:
        out = AnyValue()
        values = out.array_value.values
        for item in value:
            v = _any_value(item, depth + 1)
            if v is not None:
                values.append(v)
        return out
    if type(value) in (dict, list):
        return AnyValue(string_value=orjson.dumps(value).decode())
    return None


def _put_json_attributes(attributes: Any, doc: dict[str, Any]) -> None:
    for key, value in doc.items():
        v = _any_value(value)
        if v is not None:
            attributes.add(key=key, value=v)


def _parse_dropped(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    n = int(text)
    return n if n < 2**32 else None


def _event(ts_us: int, value: str) -> Span.Event:
    """One annotation as an event (see the module docstring for the value forms)."""
    time_ns = ts_us * 1000
    if "|" in value:
        parts = value.split("|")
        if len(parts) >= 3:
            dropped = _parse_dropped(parts[-1])
            try:
                doc = orjson.loads("|".join(parts[1:-1]))
            except orjson.JSONDecodeError:
                doc = None
            if dropped is not None and type(doc) is dict:
                event = Span.Event(
                    time_unix_nano=time_ns, name=parts[0], dropped_attributes_count=dropped
                )
                _put_json_attributes(event.attributes, doc)
                return event
    elif value.startswith("{") and value.endswith("}"):
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = None
        if type(doc) is dict and len(doc) == 1:
            ((name, attrs),) = doc.items()
            if type(attrs) is dict:
                event = Span.Event(time_unix_nano=time_ns, name=name)
                _put_json_attributes(event.attributes, attrs)
                return event
    return Span.Event(time_unix_nano=time_ns, name=value)


def _event_bytes(ts_us: int, value: str) -> bytes:
    """The serialized event of an annotation (for the compiled translator)."""
    return _event(ts_us, value).SerializeToString()


def _links(tags: dict[str, str], where: str) -> tuple[list[bytes], int]:
    """Serialized links of the ``otlp.link.N`` tags (``traceId|spanId|tracestate|{json
    attributes}|dropped``), and how many such keys, from 0 on, the span has (they are no
    attributes)."""
    links: list[bytes] = []
    taken = 0
    for key in _LINK_KEYS:
        value = tags.get(key)
        if value is None:
            break
        taken += 1
        parts = value.split("|")
        if len(parts) < 5:
            continue
        here = f"{where}.tags[{key!r}]"
        trace_hex, span_hex = parts[0].strip('"'), parts[1].strip('"')
        trace_id = _hex_id(trace_hex, here, "traceId", (32, 32)) if trace_hex else b"\0" * 16
        span_id = _hex_id(span_hex, here, "spanId", (16, 16)) if span_hex else b"\0" * 8
        try:
            doc = orjson.loads("|".join(parts[3:-1]))
        except orjson.JSONDecodeError:
            doc = None
        if type(doc) is not dict:
            raise ValueError(f"{here}: the attributes part is not a JSON object")
        dropped = _parse_dropped(parts[-1])
        if dropped is None:
            raise ValueError(f"{here}: the dropped-attributes count is not a number")
        link = Span.Link(
            trace_id=trace_id,
            span_id=span_id,
            trace_state=parts[2],
            dropped_attributes_count=dropped,
        )
        _put_json_attributes(link.attributes, doc)
        links.append(link.SerializeToString())
    return links, taken


# --- endpoints -----------------------------------------------------------------------------

# (service name, ipv4 text, ipv6 text, port): "" / 0 when absent
Endpoint = tuple[str, str, str, int]
_NO_ENDPOINT: Endpoint = ("", "", "", 0)


def _ip_text(family: int, raw: bytes, where: str, field: str) -> str:
    try:
        return socket.inet_ntop(family, raw)
    except (ValueError, OSError):
        want = 4 if family == socket.AF_INET else 16
        raise ValueError(f"{where}.{field}: expected {want} bytes, got {len(raw)}") from None


def _json_ip(value: object, family: int, where: str, field: str) -> str:
    if value is None or value == "":
        return ""
    if type(value) is not str:
        raise ValueError(f"{where}.{field}: expected an IP address string, got {_show(value)}")
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, value))
    except (OSError, ValueError):
        kind = "IPv4" if family == socket.AF_INET else "IPv6"
        raise ValueError(f"{where}.{field}: not an {kind} address: {_show(value)}") from None


def _json_endpoint(value: object, where: str) -> Endpoint:
    if value is None:
        return _NO_ENDPOINT
    if type(value) is not dict:
        raise ValueError(f"{where}: expected an object, got {_type_name(value)}")
    service = value.get("serviceName")
    if service is None:
        service = ""
    elif type(service) is not str:
        raise ValueError(f"{where}.serviceName: expected a string, got {_show(service)}")
    port = value.get("port")
    if port is None:
        port = 0
    elif type(port) is not int or not 0 <= port <= 65535:
        raise ValueError(f"{where}.port: expected an integer 0-65535, got {_show(port)}")
    ipv4 = _json_ip(value.get("ipv4"), socket.AF_INET, where, "ipv4")
    ipv6 = _json_ip(value.get("ipv6"), socket.AF_INET6, where, "ipv6")
    return (service, ipv4, ipv6, port)


@functools.lru_cache(maxsize=1024)
def _endpoint_kvs(local: Endpoint, remote: Endpoint) -> tuple[tuple[str, KeyValue], ...]:
    """Span attributes of a (local, remote) endpoint pair, by key."""
    attrs: dict[str, AnyValue] = {}
    _, ipv4, ipv6, port = local
    if ipv4:
        attrs[NET_HOST_IP] = AnyValue(string_value=ipv4)
    if ipv6:
        attrs[NET_HOST_IP] = AnyValue(string_value=ipv6)
    if port > 0:
        attrs[NET_HOST_PORT] = AnyValue(int_value=port)
    service, ipv4, ipv6, port = remote
    if service:
        attrs[PEER_SERVICE] = AnyValue(string_value=service)
    if ipv4:
        attrs[NET_PEER_IP] = AnyValue(string_value=ipv4)
    if ipv6:
        attrs[NET_PEER_IP] = AnyValue(string_value=ipv6)
    if port > 0:
        attrs[NET_PEER_PORT] = AnyValue(int_value=port)
    return tuple((k, KeyValue(key=k, value=v)) for k, v in attrs.items())


def _endpoint_attributes(local: Endpoint, remote: Endpoint) -> list[tuple[str, bytes]]:
    """(key, serialized ``KeyValue``) of a pair's span attributes (for the compiled v2)."""
    return [(k, kv.SerializeToString()) for k, kv in _endpoint_kvs(local, remote)]


def _bool_attribute(key: str) -> bytes:
    """A serialized ``KeyValue`` of ``key`` = true (for the compiled v2)."""
    return KeyValue(key=key, value=AnyValue(bool_value=True)).SerializeToString()


def _resource(service: str, tags: dict[str, str]) -> bytes:
    """The serialized resource of a v2 service, from the tags of its first span."""
    attrs: dict[str, str] = {}
    if service:
        attrs[tags.get(TAG_SERVICE_NAME_SOURCE) or SERVICE_NAME] = service
    for key, value in tags.items():
        if key in RESOURCE_TAGS:
            attrs[key] = value
    resource = Resource()
    for key, value in attrs.items():
        resource.attributes.add(key=key).value.string_value = value
    return resource.SerializeToString()


# --- the request being built ---------------------------------------------------------------


class _V1Request:
    """A v1 ``ExportTraceServiceRequest`` filled span by span, grouped by local endpoint."""

    def __init__(self) -> None:
        self.message = ExportTraceServiceRequest()
        self._groups: dict[Endpoint, Any] = {}

    def spans(self, endpoint: Endpoint) -> Any:
        spans = self._groups.get(endpoint)
        if spans is None:
            rs = self.message.resource_spans.add()
            attrs = rs.resource.attributes
            service, ipv4, ipv6, port = endpoint
            attrs.add(key=SERVICE_NAME).value.string_value = service
            if ipv4:
                attrs.add(key="ipv4").value.string_value = ipv4
            if ipv6:
                attrs.add(key="ipv6").value.string_value = ipv6
            if port:
                attrs.add(key="port").value.string_value = str(port)
            spans = self._groups[endpoint] = rs.scope_spans.add().spans
        return spans


# --- v2 JSON -------------------------------------------------------------------------------


def _load_json_list(body: bytes, what: str) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e}") from None
    if type(doc) is not list:
        raise ValueError(
            f"invalid {what}: the body must be a JSON array of spans, got {_type_name(doc)}"
        )
    return doc


def _json_annotations(value: object, where: str) -> list[tuple[int, str]]:
    if value is None:
        return []
    if type(value) is not list:
        raise ValueError(f"{where}.annotations: expected an array, got {_type_name(value)}")
    out = []
    for i, item in enumerate(value):
        here = f"{where}.annotations[{i}]"
        if type(item) is not dict:
            raise ValueError(f"{here}: expected an object, got {_type_name(item)}")
        text = item.get("value")
        if type(text) is not str:
            raise ValueError(f"{here}.value: expected a string, got {_show(text)}")
        ts = item.get("timestamp")
        if ts is None:
            raise ValueError(f"{here}.timestamp: missing")
        out.append((_micros(ts, here, "timestamp"), text))
    return out


def _ids_and_name(span: dict[str, Any], where: str) -> tuple[bytes, bytes, bytes, str]:
    """Trace id, span id, parent id (b"" for none) and name of a v1 or v2 JSON span, checked."""
    trace_id = _trace_id(span.get("traceId"), where)
    span_id = _hex_id(span.get("id"), where, "id", (16, 16))
    value = span.get("parentId")
    parent_id = _hex_id(value, where, "parentId", (16, 16)) if value else b""
    name = span.get("name")
    if name is None:
        name = ""
    elif type(name) is not str:
        raise ValueError(f"{where}.name: expected a string, got {_show(name)}")
    return trace_id, span_id, parent_id, name


def _normalize_json_span(i: int, span: object) -> tuple[Any, ...]:
    """The checked values of v2 JSON span ``i`` (for the compiled translator, which hands over
    the spans it does not read itself); ValueError naming the first bad field."""
    where = f"spans[{i}]"
    if type(span) is not dict:
        raise ValueError(f"{where}: expected a span object, got {_type_name(span)}")
    get = span.get
    trace_id, span_id, parent_id, name = _ids_and_name(span, where)
    value = get("kind")
    kind = 0
    if value is not None:
        kind = _JSON_KINDS.get(value.upper(), 0) if type(value) is str else 0
        if not kind:
            raise ValueError(
                f"{where}.kind: expected CLIENT, SERVER, PRODUCER or CONSUMER, got {_show(value)}"
            )
    timestamp = _micros(get("timestamp"), where, "timestamp")
    duration = _duration(get("duration"), where)
    local = get("localEndpoint")
    local = _json_endpoint(local, f"{where}.localEndpoint") if local else _NO_ENDPOINT
    remote = get("remoteEndpoint")
    remote = _json_endpoint(remote, f"{where}.remoteEndpoint") if remote else _NO_ENDPOINT
    tags = get("tags")
    tags = {} if tags is None or tags == {} else _json_tags(tags, where)
    shared = get("shared")
    if shared is not None and type(shared) is not bool:
        raise ValueError(f"{where}.shared: expected a boolean, got {_show(shared)}")
    debug = get("debug")
    if debug is not None and type(debug) is not bool:
        raise ValueError(f"{where}.debug: expected a boolean, got {_show(debug)}")
    annotations = _json_annotations(get("annotations"), where)
    return (
        trace_id,
        span_id,
        parent_id,
        name,
        kind,
        timestamp,
        duration,
        local,
        remote,
        annotations,
        tags,
        shared is True,
    )


def zipkin_v2_json_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a Zipkin v2 JSON body (``[span, ...]``); ValueError if bad."""
    return _zipkin_otlp.v2_json_to_otlp(body)


# --- v2 proto3 -----------------------------------------------------------------------------


def _proto_endpoint(service: str, ipv4: bytes, ipv6: bytes, port: int, where: str) -> Endpoint:
    """A ``zipkin.proto3.Endpoint``'s fields, checked (for the compiled translator)."""
    ipv4_text = _ip_text(socket.AF_INET, ipv4, where, "ipv4") if ipv4 else ""
    ipv6_text = _ip_text(socket.AF_INET6, ipv6, where, "ipv6") if ipv6 else ""
    if not 0 <= port <= 65535:
        raise ValueError(f"{where}.port: expected 0-65535, got {port}")
    return (service, ipv4_text, ipv6_text, port)


def zipkin_v2_proto_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a ``zipkin.proto3.ListOfSpans`` body; ValueError if bad."""
    return _zipkin_otlp.v2_proto_to_otlp(body)


# --- v1 JSON -------------------------------------------------------------------------------


def _status_int(value: str) -> int | None:
    value = value.strip()
    digits = value[1:] if value.startswith("-") else value
    if digits.isascii() and digits.isdigit():
        n = int(value)
        return n if -(2**31) <= n < 2**31 else None
    return None


class _V1Status:
    """The Collector's v1 status rules: census code, then otel code, then error, then HTTP."""

    __slots__ = (
        "census",
        "census_msg",
        "error",
        "error_value",
        "http",
        "http_msg",
        "otel",
        "otel_msg",
    )

    def __init__(self) -> None:
        self.census: int | None = None
        self.otel: int | None = None
        self.http: int | None = None
        self.error = False
        self.census_msg = self.otel_msg = self.http_msg = self.error_value = ""

    def take(self, key: str, value: str) -> bool:
        """Note a binary annotation; True when it is consumed (not kept as an attribute)."""
        if key == "census.status_code":
            code = _status_int(value)
            if code is not None:
                self.census = STATUS_OK if code == 0 else STATUS_ERROR
            return True
        if key in ("census.status_description", "opencensus.status_description"):
            self.census_msg = value
            return True
        if key == TAG_STATUS_CODE:
            code = _status_int(value)
            if code is None:
                code = _STATUS_NAMES.get(value)
            if code is not None:
                self.otel = code
            return True
        if key == TAG_STATUS_DESCRIPTION:
            self.otel_msg = value
            return True
        if key == "http.status_code":
            code = _status_int(value)
            if code is not None:
                self.http = STATUS_UNSET if 100 <= code < 400 else STATUS_ERROR
        elif key == "http.status_message":
            self.http_msg = value
        elif key == TAG_ERROR:
            self.error = True
            self.error_value = value
            return True
        return False

    def apply(self, span: Span) -> None:
        if self.census is not None:
            code, message = self.census, self.census_msg
        elif self.otel is not None:
            code, message = self.otel, self.otel_msg
        elif self.error:
            code, message = STATUS_ERROR, self.census_msg or self.otel_msg
        elif self.http is not None:
            code, message = self.http, self.http_msg
        else:
            return
        if code == STATUS_ERROR and not message and self.error_value not in ("", "true"):
            message = self.error_value
        span.status.code = code
        if message:
            span.status.message = message


def _v1_add_span(request: _V1Request, span: Any, where: str) -> None:
    get = span.get
    trace_id, span_id, parent_id, name = _ids_and_name(span, where)
    kind = 0
    endpoint: Endpoint | None = None
    first = last = None
    events: list[tuple[int, str]] = []
    annotations = get("annotations") or []
    if type(annotations) is not list:
        raise ValueError(f"{where}.annotations: expected an array, got {_type_name(annotations)}")
    for i, ann in enumerate(annotations):
        here = f"{where}.annotations[{i}]"
        if ann is None:
            continue
        if type(ann) is not dict:
            raise ValueError(f"{here}: expected an object, got {_type_name(ann)}")
        value = ann.get("value")
        if value is None or value == "":
            continue
        if type(value) is not str:
            raise ValueError(f"{here}.value: expected a string, got {_show(value)}")
        ts = _micros(ann.get("timestamp"), here, "timestamp")
        core = _V1_CORE_KINDS.get(value)
        if core is not None:
            if endpoint is None:
                ep = _json_endpoint(ann.get("endpoint"), f"{here}.endpoint")
                if ep[0]:
                    endpoint = ep
            if not kind:
                kind = core
        if ts:
            if first is None or ts < first:
                first = ts
            if last is None or ts > last:
                last = ts
        if core is None:
            events.append((ts, value))
    binary = get("binaryAnnotations") or []
    if type(binary) is not list:
        raise ValueError(f"{where}.binaryAnnotations: expected an array, got {_type_name(binary)}")
    status = _V1Status()
    attrs: list[tuple[str, str]] = []
    remote = _NO_ENDPOINT
    fallback_service = local_component = ""
    for i, ann in enumerate(binary):
        here = f"{where}.binaryAnnotations[{i}]"
        if type(ann) is not dict:
            raise ValueError(f"{here}: expected an object, got {_type_name(ann)}")
        key = ann.get("key")
        if type(key) is not str:
            raise ValueError(f"{here}.key: expected a string, got {_show(key)}")
        if key in _V1_ADDRESS_KEYS:
            remote = _json_endpoint(ann.get("endpoint"), f"{here}.endpoint")
            continue
        value = _tag_value(ann.get("value"), f"{here}.value")
        ep = ann.get("endpoint")
        if ep:
            service = _json_endpoint(ep, f"{here}.endpoint")[0]
            if service:
                fallback_service = service
        if key == "lc":
            key = "component"
            local_component = value
        if status.take(key, value):
            continue
        attrs.append((key, value))
    if endpoint is None:
        endpoint = (fallback_service or local_component or _V1_UNKNOWN_SERVICE, "", "", 0)
    spans = request.spans(endpoint)
    timestamp = _micros(get("timestamp"), where, "timestamp")
    absent = False
    if timestamp:
        start = timestamp * 1000
        end = start + _duration(get("duration"), where) * 1000
        if end < 0:
            start, end = 1, 0
    elif first is not None and last is not None:
        start, end = first * 1000, last * 1000
    else:
        start = end = time.time_ns()
        absent = True
    out = spans.add(
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    if parent_id and parent_id != span_id:
        out.parent_span_id = parent_id
    status.apply(out)
    remote_kvs: list[KeyValue] = []
    remote_keys: frozenset[str] = frozenset()
    if remote != _NO_ENDPOINT:
        pairs = _endpoint_kvs(_NO_ENDPOINT, remote)
        remote_kvs = [kv for _, kv in pairs]
        remote_keys = NON_SPAN_TAGS.union(k for k, _ in pairs)
    attributes = out.attributes
    seen: dict[str, KeyValue] = {}
    for key, value in attrs:
        if key in remote_keys:
            continue
        kv = seen.get(key)
        if kv is None:
            kv = seen[key] = attributes.add(key=key)
        kv.value.string_value = value
    if remote_kvs:
        attributes.extend(remote_kvs)
    if absent:
        attributes.add(key=ATTR_START_ABSENT).value.bool_value = True
    for ts, value in events:
        out.events.append(_event(ts, value))


def zipkin_v1_json_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a Zipkin v1 JSON body (``[span, ...]``); ValueError if bad."""
    spans = _load_json_list(body, "Zipkin v1 JSON")
    request = _V1Request()
    for i, span in enumerate(spans):
        where = f"spans[{i}]"
        if type(span) is not dict:
            raise ValueError(f"{where}: expected a span object, got {_type_name(span)}")
        _v1_add_span(request, span, where)
    return request.message.SerializeToString()
