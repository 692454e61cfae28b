"""Zipkin spans into the OTLP model: v2 JSON, v2 proto3 and v1 JSON → ``ExportTraceServiceRequest``.

Each entry point takes a request body and returns the serialized OTLP request, built in one pass
over the spans with the protobuf classes. Bad input raises ``ValueError`` naming the span and the
field (``spans[3].traceId: ...``); the whole request is refused, as the OpenTelemetry Collector's
Zipkin receiver does. Span-level checks that OTLP shares (all-zero ids, end before start) are left
to the distributor, which rejects such spans one by one.

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

import socket
import time
from collections.abc import Iterable
from typing import Any

import orjson
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

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
_PROTO_KINDS = {1: KIND_CLIENT, 2: KIND_SERVER, 3: KIND_PRODUCER, 4: KIND_CONSUMER}
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


def _add_event(events: Any, ts_us: int, value: str) -> None:
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
                event = events.add(
                    time_unix_nano=time_ns, name=parts[0], dropped_attributes_count=dropped
                )
                _put_json_attributes(event.attributes, doc)
                return
    elif value.startswith("{") and value.endswith("}"):
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = None
        if type(doc) is dict and len(doc) == 1:
            ((name, attrs),) = doc.items()
            if type(attrs) is dict:
                event = events.add(time_unix_nano=time_ns, name=name)
                _put_json_attributes(event.attributes, attrs)
                return
    events.add(time_unix_nano=time_ns, name=value)


def _add_links(span: Span, tags: dict[str, str], where: str) -> None:
    """``otlp.link.N`` tags (``traceId|spanId|tracestate|{json attributes}|dropped``)."""
    for key in _LINK_KEYS:
        value = tags.pop(key, None)
        if value is None:
            return
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
        link = span.links.add(
            trace_id=trace_id,
            span_id=span_id,
            trace_state=parts[2],
            dropped_attributes_count=dropped,
        )
        _put_json_attributes(link.attributes, doc)


def _status(tags: dict[str, str], span: Span) -> None:
    code, message = STATUS_UNSET, ""
    value = tags.pop(TAG_STATUS_CODE, None)
    if value is not None:
        code = _STATUS_NAMES.get(value, STATUS_UNSET)
        message = tags.pop(TAG_STATUS_DESCRIPTION, "")
    error = tags.get(TAG_ERROR)
    if error is not None:
        code = STATUS_ERROR
        if error == "true":
            del tags[TAG_ERROR]
        elif not message:
            message = error
    if code:
        span.status.code = code
    if message:
        span.status.message = message


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


class _EndpointAttrs:
    """Span attributes of (local, remote) endpoints, cached: a request repeats a few endpoints.

    ``get`` gives the attributes and the tag keys that do not become span attributes with them
    (resource and scope tags, and the keys the endpoints set).
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[Endpoint, Endpoint], tuple[list[KeyValue], frozenset[str]]] = {}

    def get(self, local: Endpoint, remote: Endpoint) -> tuple[list[KeyValue], frozenset[str]]:
        key = (local, remote)
        hit = self._cache.get(key)
        if hit is None:
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
            kvs = [KeyValue(key=k, value=v) for k, v in attrs.items()]
            hit = self._cache[key] = (kvs, NON_SPAN_TAGS.union(attrs))
        return hit


# --- the request being built ---------------------------------------------------------------


class _Request:
    """An ``ExportTraceServiceRequest`` filled span by span, grouped by service and scope."""

    def __init__(self) -> None:
        self.message = ExportTraceServiceRequest()
        self.count = 0
        # service -> (resource spans, scope name -> repeated spans)
        self._groups: dict[object, tuple[ResourceSpans, dict[str, Any]]] = {}
        self.endpoint_attrs = _EndpointAttrs()

    def v2_spans(self, service: str, tags: dict[str, str]) -> Any:
        """The span list for a v2 span of ``service``; takes resource/scope tags off ``tags``."""
        group = self._groups.get(service)
        if group is None:
            rs = self.message.resource_spans.add()
            attrs = rs.resource.attributes
            source = tags.pop(TAG_SERVICE_NAME_SOURCE, "")
            if service:
                attrs.add(key=source or SERVICE_NAME).value.string_value = service
            resource_keys = [k for k in tags if k in RESOURCE_TAGS]
            if resource_keys:
                values = {kv.key: kv for kv in attrs}
                for key in resource_keys:
                    value = tags.pop(key)
                    kv = values.get(key)
                    if kv is None:
                        kv = values[key] = attrs.add(key=key)
                    kv.value.string_value = value
            group = self._groups[service] = (rs, {})
        rs, scopes = group
        library = tags.get(TAG_LIBRARY_NAME) or tags.get(TAG_SCOPE_NAME) or ""
        spans = scopes.get(library)
        if spans is None:
            ss = rs.scope_spans.add()
            if library:
                ss.scope.name = library
                version = tags.get(TAG_LIBRARY_VERSION) or tags.get(TAG_SCOPE_VERSION)
                if version:
                    ss.scope.version = version
            spans = scopes[library] = ss.spans
        return spans

    def v1_spans(self, endpoint: Endpoint) -> Any:
        group = self._groups.get(endpoint)
        if group is None:
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
            group = self._groups[endpoint] = (rs, {"": rs.scope_spans.add().spans})
        return group[1][""]

    def serialize(self) -> bytes:
        return self.message.SerializeToString()


def _add_v2_span(
    request: _Request,
    index: int,
    trace_id: bytes,
    span_id: bytes,
    parent_id: bytes,
    name: str,
    kind: int,
    timestamp: int,
    duration: int,
    local: Endpoint,
    remote: Endpoint,
    annotations: Iterable[tuple[int, str]],
    tags: dict[str, str],
    shared: bool,
) -> None:
    """One v2 span (values already checked for type) into ``request``; mutates ``tags``."""
    spans = request.v2_spans(local[0], tags)
    start = timestamp * 1000
    end = start + duration * 1000
    if end < 0:  # negative duration: keep end < start so the distributor rejects the span
        start, end = 1, 0
    span = spans.add(
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    if parent_id and parent_id != span_id:
        span.parent_span_id = parent_id
    if tags:
        state = tags.pop(TAG_TRACE_STATE, None)
        if state is not None:
            span.trace_state = state
        if not kind:
            value = tags.pop(TAG_SPAN_KIND, None)
            if value == "internal":
                kind = KIND_INTERNAL
        _status(tags, span)
        if "otlp.link.0" in tags:
            _add_links(span, tags, f"spans[{index}]")
    if kind:
        span.kind = kind
    attributes = span.attributes
    endpoint_kvs, skip = request.endpoint_attrs.get(local, remote)
    add = attributes.add
    for key, value in tags.items():
        if key not in skip:
            add(key=key).value.string_value = value
    if endpoint_kvs:
        attributes.extend(endpoint_kvs)
    if not timestamp:
        attributes.add(key=ATTR_START_ABSENT).value.bool_value = True
    if shared:
        attributes.add(key=ATTR_SHARED).value.bool_value = True
    if annotations:
        events = span.events
        for ts, value in annotations:
            _add_event(events, ts, value)
    request.count += 1


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


def _json_endpoint_cached(value: object, where: str, cache: dict[Any, Endpoint]) -> Endpoint:
    if type(value) is dict:
        get = value.get
        key = (get("serviceName"), get("ipv4"), get("ipv6"), get("port"))
        try:
            hit = cache.get(key)
        except TypeError:  # an unhashable value: the full check below names it
            hit = None
        if hit is None:
            hit = cache[key] = _json_endpoint(value, where)
        return hit
    return _json_endpoint(value, where)


def zipkin_v2_json_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a Zipkin v2 JSON body (``[span, ...]``); ValueError if bad."""
    spans = _load_json_list(body, "Zipkin v2 JSON")
    request = _Request()
    endpoints: dict[Any, Endpoint] = {}
    fromhex = bytes.fromhex
    max_micros = _UINT64_MAX // 1000
    for i, span in enumerate(spans):
        if type(span) is not dict:
            raise ValueError(f"spans[{i}]: expected a span object, got {_type_name(span)}")
        get = span.get
        # fast paths for well-formed values; the checking helpers name what is wrong
        value = get("traceId")
        try:
            trace_id = fromhex(value)
        except (TypeError, ValueError):
            trace_id = b""
        if len(trace_id) != 16 or len(value) != 32:
            trace_id = _trace_id(value, f"spans[{i}]")
        value = get("id")
        try:
            span_id = fromhex(value)
        except (TypeError, ValueError):
            span_id = b""
        if len(span_id) != 8 or len(value) != 16:
            span_id = _hex_id(value, f"spans[{i}]", "id", (16, 16))
        value = get("parentId")
        parent_id = b""
        if value:
            try:
                parent_id = fromhex(value)
            except (TypeError, ValueError):
                parent_id = b""
            if len(parent_id) != 8 or len(value) != 16:
                parent_id = _hex_id(value, f"spans[{i}]", "parentId", (16, 16))
        name = get("name")
        if type(name) is not str:
            if name is not None:
                raise ValueError(f"spans[{i}].name: expected a string, got {_show(name)}")
            name = ""
        value = get("kind")
        kind = 0
        if value is not None:
            kind = _JSON_KINDS.get(value, 0) if type(value) is str else 0
            if not kind and type(value) is str:
                kind = _JSON_KINDS.get(value.upper(), 0)
            if not kind:
                raise ValueError(
                    f"spans[{i}].kind: expected CLIENT, SERVER, PRODUCER or CONSUMER, "
                    f"got {_show(value)}"
                )
        timestamp = get("timestamp")
        if type(timestamp) is not int or not 0 <= timestamp <= max_micros:
            timestamp = _micros(timestamp, f"spans[{i}]", "timestamp")
        duration = get("duration")
        if type(duration) is not int or not 0 <= duration <= max_micros:
            duration = _duration(duration, f"spans[{i}]")
        local = get("localEndpoint")
        local = (
            _json_endpoint_cached(local, f"spans[{i}].localEndpoint", endpoints)
            if local
            else _NO_ENDPOINT
        )
        remote = get("remoteEndpoint")
        remote = (
            _json_endpoint_cached(remote, f"spans[{i}].remoteEndpoint", endpoints)
            if remote
            else _NO_ENDPOINT
        )
        tags = get("tags")
        if tags:
            try:
                "".join(tags.values())  # every value a string, checked in C
            except (TypeError, AttributeError):
                tags = _json_tags(tags, f"spans[{i}]")
        elif tags is None or tags == {}:
            tags = {}
        else:
            tags = _json_tags(tags, f"spans[{i}]")
        shared = get("shared")
        if shared is not None and type(shared) is not bool:
            raise ValueError(f"spans[{i}].shared: expected a boolean, got {_show(shared)}")
        debug = get("debug")
        if debug is not None and type(debug) is not bool:
            raise ValueError(f"spans[{i}].debug: expected a boolean, got {_show(debug)}")
        annotations = get("annotations")
        _add_v2_span(
            request,
            i,
            trace_id,
            span_id,
            parent_id,
            name,
            kind,
            timestamp,
            duration,
            local,
            remote,
            _json_annotations(annotations, f"spans[{i}]") if annotations is not None else (),
            tags,
            shared is True,
        )
    return request.serialize()


# --- v2 proto3 -----------------------------------------------------------------------------


def _proto_endpoint(ep: Any, where: str, cache: dict[tuple[Any, ...], Endpoint]) -> Endpoint:
    key = (ep.service_name, ep.ipv4, ep.ipv6, ep.port)
    hit = cache.get(key)
    if hit is None:
        service, ipv4, ipv6, port = key
        ipv4 = _ip_text(socket.AF_INET, ipv4, where, "ipv4") if ipv4 else ""
        ipv6 = _ip_text(socket.AF_INET6, ipv6, where, "ipv6") if ipv6 else ""
        if not 0 <= port <= 65535:
            raise ValueError(f"{where}.port: expected 0-65535, got {port}")
        hit = cache[key] = (service, ipv4, ipv6, port)
    return hit


def zipkin_v2_proto_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a ``zipkin.proto3.ListOfSpans`` body; ValueError if bad."""
    try:
        spans = ListOfSpans.FromString(body).spans
    except DecodeError as e:
        raise ValueError(f"invalid Zipkin protobuf (zipkin.proto3.ListOfSpans): {e}") from None
    request = _Request()
    endpoints: dict[tuple[Any, ...], Endpoint] = {}
    max_micros = _UINT64_MAX // 1000
    pad = b"\0" * 8
    for i, span in enumerate(spans):
        trace_id = span.trace_id
        if len(trace_id) != 16:
            if len(trace_id) != 8:
                raise ValueError(
                    f"spans[{i}].trace_id: expected 8 or 16 bytes, got {len(trace_id)}"
                )
            trace_id = pad + trace_id
        span_id = span.id
        if len(span_id) != 8:
            raise ValueError(f"spans[{i}].id: expected 8 bytes, got {len(span_id)}")
        parent_id = span.parent_id
        if parent_id and len(parent_id) != 8:
            raise ValueError(f"spans[{i}].parent_id: expected 8 bytes, got {len(parent_id)}")
        timestamp, duration = span.timestamp, span.duration
        if timestamp > max_micros or duration > max_micros:
            raise ValueError(f"spans[{i}]: timestamp or duration out of range")
        local = (
            _proto_endpoint(span.local_endpoint, f"spans[{i}].local_endpoint", endpoints)
            if span.HasField("local_endpoint")
            else _NO_ENDPOINT
        )
        remote = (
            _proto_endpoint(span.remote_endpoint, f"spans[{i}].remote_endpoint", endpoints)
            if span.HasField("remote_endpoint")
            else _NO_ENDPOINT
        )
        annotations = span.annotations
        _add_v2_span(
            request,
            i,
            trace_id,
            span_id,
            parent_id,
            span.name,
            _PROTO_KINDS.get(span.kind, 0),
            timestamp,
            duration,
            local,
            remote,
            [(a.timestamp, a.value) for a in annotations] if annotations else (),
            dict(span.tags),
            span.shared,
        )
    return request.serialize()


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


def _v1_add_span(request: _Request, span: Any, where: str) -> None:
    get = span.get
    trace_id = _trace_id(get("traceId"), where)
    span_id = _hex_id(get("id"), where, "id", (16, 16))
    parent = get("parentId")
    parent_id = _hex_id(parent, where, "parentId", (16, 16)) if parent else b""
    name = get("name")
    if name is None:
        name = ""
    elif type(name) is not str:
        raise ValueError(f"{where}.name: expected a string, got {_show(name)}")
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
    spans = request.v1_spans(endpoint)
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
        remote_kvs, remote_keys = request.endpoint_attrs.get(_NO_ENDPOINT, remote)
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
        _add_event(out.events, ts, value)
    request.count += 1


def zipkin_v1_json_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a Zipkin v1 JSON body (``[span, ...]``); ValueError if bad."""
    spans = _load_json_list(body, "Zipkin v1 JSON")
    request = _Request()
    for i, span in enumerate(spans):
        where = f"spans[{i}]"
        if type(span) is not dict:
            raise ValueError(f"{where}: expected a span object, got {_type_name(span)}")
        _v1_add_span(request, span, where)
    return request.serialize()
