"""OpenCensus ingest: the agent's ``TraceService/Export`` stream → OTLP → the real server.

The real client is the OpenCensus Python exporter (``opencensus`` + ``opencensus-ext-ocagent``,
run from a virtualenv of its own: its generated protobuf code needs protobuf 3.x); a grpcio
client drives the stream message by message with messages built from our declared classes
(``threadline.model.opencensus``). The translation rules (the OpenTelemetry Collector's) are
checked on the translator directly, then end to end through the Tempo API.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import json
import queue
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest as OtlpRequest,
)

from client_venvs import ClientEnvError, ClientVenv
from conftest import HOST, Server, free_port
from threadline.config import load_config
from threadline.listeners import Listener, listeners
from threadline.model.opencensus import OC, ExportStream, ProtocolViolation, oc_to_otlp

EXPORT = "/opencensus.proto.agent.trace.v1.TraceService/Export"
REFUSED = "threadline_receiver_refused_requests_total"
KEY = "distributor.receivers.opencensus.port"
MAX_REQUEST_BYTES = 256 * 2**10

OPENCENSUS_CLIENT = ClientVenv(
    "opencensus-client",
    ("opencensus==0.11.4", "opencensus-ext-ocagent==0.7.1", "protobuf==3.20.3"),
)

Request = OC["ExportTraceServiceRequest"]
Span = OC["Span"]


# ---------------------------------------------------------------------------------------------
# helpers


def trace_id(n: int) -> bytes:
    return (0x5EED_0000_0000_0000_0000_0000_0000_0000 + n).to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return (0xA0A0_0000_0000_0000 + n).to_bytes(8, "big")


def oc_span(
    trace: bytes,
    sid: bytes,
    name: str,
    start_ns: int = 1_700_000_000_123_456_789,
    duration_ns: int = 2_500_000,
    **fields: Any,
) -> Any:
    span = Span(trace_id=trace, span_id=sid, **fields)
    span.name.value = name
    span.start_time.FromNanoseconds(start_ns)
    span.end_time.FromNanoseconds(start_ns + duration_ns)
    return span


def set_attrs(attributes: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        slot = attributes.attribute_map[key]
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value.value = value


def node(service: str, **identifier: Any) -> Any:
    n = OC["Node"]()
    n.service_info.name = service
    for key, value in identifier.items():
        setattr(n.identifier, key, value)
    return n


def request(spans: list[Any], node: Any = None, resource: Any = None) -> bytes:
    r = Request(spans=spans)
    if node is not None:
        r.node.CopyFrom(node)
    if resource is not None:
        r.resource.CopyFrom(resource)
    return r.SerializeToString()


def resource(type_: str = "", **labels: str) -> Any:
    return OC["Resource"](type=type_, labels=labels)


def translate(*messages: bytes) -> list[OtlpRequest]:
    stream = ExportStream()
    return [OtlpRequest.FromString(stream.translate(m)[0]) for m in messages]


def otlp_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


def otlp_attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: otlp_value(kv.value) for kv in kvs}


def json_value(v: dict[str, Any]) -> Any:
    (kind, value), *_ = v.items()
    return int(value) if kind == "intValue" else value


def json_attrs(kvs: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: json_value(a["value"]) for a in kvs or []}


def unb64(value: str) -> str:
    return base64.b64decode(value).hex()


def oc_port(server: Server) -> int:
    return int(server.extra_config["distributor"]["receivers"]["opencensus"]["port"])


def read_spans(
    server: Server, trace_hex: str, want: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """span id hex → span JSON (with ``_resource``), waiting for ``want`` spans to arrive."""
    deadline = time.monotonic() + 20
    got: dict[str, Any] = {}
    while True:
        r = server.get(f"/api/traces/{trace_hex}", headers=headers)
        if r.status == 200:
            got = {}
            for batch in orjson.loads(r.data)["batches"]:
                res = json_attrs(batch["resource"].get("attributes"))
                for ss in batch["scopeSpans"]:
                    for span in ss["spans"]:
                        span["_resource"] = res
                        got[unb64(span["spanId"])] = span
            if len(got) >= want:
                return got
        if time.monotonic() > deadline:
            raise AssertionError(f"trace {trace_hex}: {len(got)} of {want} spans arrived")
        time.sleep(0.05)


class ExportCall:
    """One ``Export`` stream, driven a message at a time: ``send`` waits for its answer."""

    def __init__(self, target: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.channel = grpc.insecure_channel(target)
        self.outbox: queue.Queue[bytes | None] = queue.Queue()
        export = self.channel.stream_stream(EXPORT)
        self.answers = export(iter(self.outbox.get, None), metadata=metadata, timeout=30)

    def send(self, message: bytes) -> bytes:
        self.outbox.put(message)
        return next(self.answers)  # type: ignore[no-any-return]

    def refused(self, message: bytes | None = None) -> grpc.RpcError:
        """The error that ends the stream (after ``message``, when given)."""
        if message is not None:
            self.outbox.put(message)
        with pytest.raises(grpc.RpcError) as info:
            next(self.answers)
        return info.value

    def close(self) -> list[bytes]:
        """Half-close; the answers still to come (the stream must end with OK)."""
        self.outbox.put(None)
        rest = list(self.answers)
        assert self.answers.code() == grpc.StatusCode.OK  # type: ignore[attr-defined]
        return rest

    def __enter__(self) -> ExportCall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.outbox.put(None)
        self.channel.close()


# ---------------------------------------------------------------------------------------------
# the translation (the OpenTelemetry Collector's rules), on the translator itself


def test_span_fields_follow_the_collector() -> None:
    span = oc_span(
        trace_id(1),
        span_id(1),
        "GET /cart",
        parent_span_id=span_id(9),
        kind=1,
        start_ns=1_700_000_000_000_000_001,
        duration_ns=999,
    )
    span.tracestate.entries.add(key="congo", value="t61rcWkgMzE")
    span.tracestate.entries.add(key="rojo", value="00f067aa0ba902b7")
    set_attrs(span.attributes, {"s": "text", "i": -7, "b": True, "d": 0.5})
    span.attributes.attribute_map["nothing"].SetInParent()  # an AttributeValue with no value
    span.attributes.dropped_attributes_count = 4
    span.same_process_as_parent_span.value = False
    (out,) = translate(request([span], node("svc")))
    (rs,) = out.resource_spans
    (ss,) = rs.scope_spans
    assert not ss.HasField("scope")
    (s,) = ss.spans
    assert (s.trace_id, s.span_id, s.parent_span_id) == (trace_id(1), span_id(1), span_id(9))
    assert s.name == "GET /cart"
    assert s.kind == 2  # SERVER
    assert (s.start_time_unix_nano, s.end_time_unix_nano) == (
        1_700_000_000_000_000_001,
        1_700_000_000_000_001_000,
    )
    assert s.trace_state == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert otlp_attrs(s.attributes) == {
        "s": "text",
        "i": -7,
        "b": True,
        "d": 0.5,
        "nothing": "<Unknown OpenCensus attribute value type>",
        "opencensus.same_process_as_parent_span": False,
    }
    assert s.dropped_attributes_count == 4
    assert not s.HasField("status")  # no OpenCensus status: unset


def test_kinds() -> None:
    def kind_of(kind: int, attrs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        span = oc_span(trace_id(2), span_id(2), "k", kind=kind)
        set_attrs(span.attributes, attrs)
        (out,) = translate(request([span], node("svc")))
        s = out.resource_spans[0].scope_spans[0].spans[0]
        return s.kind, otlp_attrs(s.attributes)

    assert kind_of(1, {}) == (2, {})  # SERVER
    assert kind_of(2, {"span.kind": "producer"}) == (3, {"span.kind": "producer"})  # CLIENT
    assert kind_of(0, {}) == (0, {})
    # unspecified: an OpenTracing-style span.kind names the other kinds, and goes
    assert kind_of(0, {"span.kind": "producer"}) == (4, {})
    assert kind_of(0, {"span.kind": "consumer", "x": 1}) == (5, {"x": 1})
    assert kind_of(0, {"span.kind": "internal"}) == (1, {})
    assert kind_of(0, {"span.kind": "client"}) == (0, {"span.kind": "client"})
    assert kind_of(0, {"span.kind": 3}) == (0, {"span.kind": 3})


def test_status_codes() -> None:
    def status_of(code: int | None, message: str = "", **attrs: Any) -> tuple[int, str, Any]:
        span = oc_span(trace_id(3), span_id(3), "st")
        set_attrs(span.attributes, attrs)
        if code is not None:
            span.status.code = code
            span.status.message = message
        (out,) = translate(request([span], node("svc")))
        s = out.resource_spans[0].scope_spans[0].spans[0]
        return s.status.code, s.status.message, otlp_attrs(s.attributes)

    assert status_of(None) == (0, "", {})
    assert status_of(0, "fine") == (0, "fine", {})  # OK → unset, message kept
    assert status_of(5, "not found") == (2, "not found", {})  # any other code → error
    assert status_of(13) == (2, "", {})
    # otel.status_code (written by the Collector's OTLP → OpenCensus side) wins, and goes
    assert status_of(2, "x", **{"otel.status_code": 1}) == (1, "x", {})
    assert status_of(0, **{"otel.status_code": 2, "a": "b"}) == (2, "", {"a": "b"})
    # without a status it is an ordinary attribute
    assert status_of(None, **{"otel.status_code": 2}) == (0, "", {"otel.status_code": 2})


def test_time_events_and_links() -> None:
    span = oc_span(trace_id(4), span_id(4), "ev")
    events = span.time_events
    annotation = events.time_event.add()
    annotation.time.FromNanoseconds(1_700_000_000_000_000_500)
    annotation.annotation.description.value = "cache miss"
    set_attrs(annotation.annotation.attributes, {"key": "cart:1", "size": 3})
    annotation.annotation.attributes.dropped_attributes_count = 1
    sent = events.time_event.add()
    sent.time.FromNanoseconds(1_700_000_000_000_000_600)
    sent.message_event.type = 1
    sent.message_event.id = 2**64 - 1  # uint64 → int64, as Go's conversion
    sent.message_event.uncompressed_size = 120
    sent.message_event.compressed_size = 80
    events.time_event.add()  # neither annotation nor message event
    events.dropped_annotations_count = 2
    events.dropped_message_events_count = 3
    link = span.links.link.add(trace_id=trace_id(40), span_id=span_id(40), type=2)
    link.tracestate.entries.add(key="k", value="v")
    set_attrs(link.attributes, {"reason": "retry"})
    link.attributes.dropped_attributes_count = 5
    span.links.link.add(trace_id=b"\1" * 8, span_id=b"")  # short ids: padded / none
    span.links.dropped_links_count = 6
    (out,) = translate(request([span], node("svc")))
    s = out.resource_spans[0].scope_spans[0].spans[0]
    first, second, third = s.events
    assert (first.name, first.time_unix_nano) == ("cache miss", 1_700_000_000_000_000_500)
    assert otlp_attrs(first.attributes) == {"key": "cart:1", "size": 3}
    assert first.dropped_attributes_count == 1
    assert (second.name, second.time_unix_nano) == ("message", 1_700_000_000_000_000_600)
    assert otlp_attrs(second.attributes) == {
        "message.type": "SENT",
        "messaging.message_id": -1,
        "messaging.message_payload_size_bytes": 120,
        "messaging.message_payload_compressed_size_bytes": 80,
    }
    assert third.name == "An unknown OpenCensus TimeEvent type was detected when translating"
    assert third.time_unix_nano == 0
    assert s.dropped_events_count == 5
    l1, l2 = s.links
    assert (l1.trace_id, l1.span_id, l1.trace_state) == (trace_id(40), span_id(40), "k=v")
    assert otlp_attrs(l1.attributes) == {"reason": "retry"}
    assert l1.dropped_attributes_count == 5
    assert (l2.trace_id, l2.span_id) == (b"\1" * 8 + b"\0" * 8, b"")
    assert s.dropped_links_count == 6


def test_ids_are_fitted_like_the_collector() -> None:
    spans = [
        oc_span(b"\7" * 20, b"\5" * 10, "long", parent_span_id=b"\0" * 8),
        oc_span(b"\7" * 4, b"\5" * 2, "short"),
        oc_span(b"", b"", "none"),
    ]
    (out,) = translate(request(spans, node("svc")))
    long, short, none = out.resource_spans[0].scope_spans[0].spans
    assert (long.trace_id, long.span_id, long.parent_span_id) == (b"\7" * 16, b"\5" * 8, b"")
    assert (short.trace_id, short.span_id) == (b"\7" * 4 + b"\0" * 12, b"\5" * 2 + b"\0" * 6)
    assert (none.trace_id, none.span_id) == (b"", b"")  # left to the distributor to reject


def test_resource_from_node_and_resource() -> None:
    n = node("checkout", host_name="web-1", pid=4321)
    n.identifier.start_timestamp.FromNanoseconds(1_700_000_000_120_000_000)
    n.library_info.language = 4  # GO_LANG
    n.library_info.exporter_version = "0.1.11"
    n.library_info.core_library_version = "0.23.0"
    n.attributes["team"] = "payments"
    n.attributes["service.name"] = "overridden"
    res = resource("k8s", **{"k8s.pod.name": "p-1", "cloud.zone": "eu-1a", "team": "label"})
    own = oc_span(trace_id(5), span_id(52), "own", resource=resource(env="canary"))
    spans = [oc_span(trace_id(5), span_id(50), "a"), own, oc_span(trace_id(5), span_id(51), "b")]
    (out,) = translate(request(spans, n, res))
    shared, separate = out.resource_spans
    assert otlp_attrs(shared.resource.attributes) == {
        "k8s.pod.name": "p-1",
        "cloud.availability_zone": "eu-1a",
        "team": "payments",  # node attributes over resource labels
        "service.name": "checkout",  # the node's own fields over both
        "opencensus.starttime": "2023-11-14T22:13:20.12Z",
        "host.name": "web-1",
        "process.pid": 4321,
        "telemetry.sdk.version": "0.23.0",
        "opencensus.exporterversion": "0.1.11",
        "telemetry.sdk.language": "go",
        "opencensus.resourcetype": "k8s",
    }
    assert [s.name for s in shared.scope_spans[0].spans] == ["a", "b"]
    # a span with a resource of its own: the node with that resource, not the request's
    assert [s.name for s in separate.scope_spans[0].spans] == ["own"]
    attrs = otlp_attrs(separate.resource.attributes)
    assert attrs["env"] == "canary" and attrs["service.name"] == "checkout"
    assert "k8s.pod.name" not in attrs and "opencensus.resourcetype" not in attrs


def test_later_messages_keep_the_streams_node_and_resource() -> None:
    first = request([oc_span(trace_id(6), span_id(60), "1")], node("one"), resource(env="a"))
    second = request([oc_span(trace_id(6), span_id(61), "2")])
    third = request([oc_span(trace_id(6), span_id(62), "3")], node("two"))
    fourth = request([oc_span(trace_id(6), span_id(63), "4")], resource=resource(env="b"))
    got = [
        otlp_attrs(o.resource_spans[0].resource.attributes)
        for o in translate(first, second, third, fourth)
    ]
    assert got == [
        {"env": "a", "service.name": "one"},
        {"env": "a", "service.name": "one"},
        {"env": "a", "service.name": "two"},
        {"env": "b", "service.name": "two"},
    ]


def test_bad_messages_raise_value_error() -> None:
    with pytest.raises(ProtocolViolation, match=r"first .* must carry a node"):
        ExportStream().translate(request([oc_span(trace_id(7), span_id(7), "x")]))
    with pytest.raises(ValueError, match="invalid OpenCensus message"):
        ExportStream().translate(b"\xff\xff\xff\xff")
    bad_utf8 = request([oc_span(trace_id(7), span_id(7), "x")], node("svc")).replace(
        b"svc", b"s\xffc"
    )
    with pytest.raises(ValueError, match="invalid OpenCensus message"):
        ExportStream().translate(bad_utf8)
    assert oc_to_otlp(node("svc"), None, []).resource_spans == []  # nothing to push


def test_port_is_off_by_default() -> None:
    cfg = load_config(None, {})
    assert cfg.distributor.receivers.opencensus.port == 0
    assert all(item.key != KEY for item in listeners(cfg))
    on = load_config(None, {"distributor": {"receivers": {"opencensus": {"port": 55678}}}})
    assert Listener("OpenCensus receiver", 55678, "--opencensus-port", KEY) in listeners(on)


def test_flag_sets_the_port(tmp_path: Path) -> None:
    cmd = [*Server(tmp_path / "data").command(), "--opencensus-port", "70000"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert KEY in run.stderr


# ---------------------------------------------------------------------------------------------
# end to end


@pytest.fixture(scope="module")
def oc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cfg = {
        "distributor": {
            "receivers": {"opencensus": {"port": free_port()}},
            "max_request_bytes": MAX_REQUEST_BYTES,
            "max_concurrent_rpcs": 2,
        }
    }
    srv = Server(tmp_path_factory.mktemp("oc") / "data", cfg).start()
    yield srv
    srv.stop()


def target(server: Server) -> str:
    return f"{HOST}:{oc_port(server)}"


def test_default_server_has_no_opencensus_port(server: Server) -> None:
    assert "OpenCensus" not in server.log()


# Runs in the OpenCensus client venv; reads the job (service, endpoint) as JSON on stdin and
# prints what the exporter was handed, as JSON.
SENDER = r"""
import datetime
import json
import os
import sys

from opencensus.common.version import __version__ as opencensus_version
from opencensus.ext.ocagent.trace_exporter import TraceExporter
from opencensus.trace import link, status, time_event
from opencensus.trace.attributes import Attributes
from opencensus.trace.samplers import AlwaysOnSampler
from opencensus.trace.span import SpanKind
from opencensus.trace.span_context import SpanContext
from opencensus.trace.tracer import Tracer
from opencensus.trace.tracestate import Tracestate

job = json.load(sys.stdin)
exported = []


class Recording(TraceExporter):
    def emit(self, span_datas):
        exported.extend(span_datas)
        super().emit(span_datas)  # one Export stream per call; errors are swallowed


exporter = Recording(service_name=job["service"], host_name="oc-host", endpoint=job["endpoint"])
tracestate = Tracestate()
tracestate["vendor"] = "v1"
tracestate["other"] = "x"
context = SpanContext(tracestate=tracestate)
tracer = Tracer(exporter=exporter, sampler=AlwaysOnSampler(), span_context=context)
with tracer.span(name="GET /checkout") as root:
    root.span_kind = SpanKind.SERVER
    root.add_attribute("http.method", "GET")
    root.add_attribute("http.status_code", 200)
    root.add_attribute("cache.hit", False)
    root.add_attribute("sampled.ratio", 0.25)
    root.add_annotation("cart loaded", items=3, note="ok")
    root.add_message_event(time_event.MessageEvent(
        datetime.datetime.utcnow(), id=7, type=time_event.Type.SENT,
        uncompressed_size_bytes=120, compressed_size_bytes=80))
    with tracer.span(name="SELECT carts") as child:
        child.span_kind = SpanKind.CLIENT
        child.same_process_as_parent_span = True
        child.add_link(link.Link(
            trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331",
            type=link.Type.PARENT_LINKED_SPAN, attributes=Attributes({"reason": "retry"})))
        child.set_status(status.Status(5, "cart not found"))
    with tracer.span(name="render") as ok:
        ok.set_status(status.Status(0, "fine"))

spans = [
    {
        "name": sd.name,
        "trace_id": sd.context.trace_id,
        "span_id": sd.span_id,
        "parent_span_id": sd.parent_span_id,
        "start": sd.start_time,
        "end": sd.end_time,
        "kind": sd.span_kind,
        "attributes": dict(sd.attributes or {}),
        "annotations": [
            {"time": a.timestamp, "name": a.description,
             "attributes": dict(a.attributes.attributes)}
            for a in sd.annotations or ()
        ],
        "message_events": [
            {"time": m.timestamp, "id": m.id, "type": m.type,
             "uncompressed": m.uncompressed_size_bytes, "compressed": m.compressed_size_bytes}
            for m in sd.message_events or ()
        ],
        "links": [
            {"trace_id": li.trace_id, "span_id": li.span_id,
             "attributes": dict(li.attributes.attributes)}
            for li in sd.links or ()
        ],
        "status": None if sd.status is None else [sd.status.canonical_code, sd.status.description],
        "same_process_as_parent_span": sd.same_process_as_parent_span,
    }
    for sd in exported
]
print(json.dumps({"pid": os.getpid(), "version": opencensus_version, "spans": spans}))
"""


def iso_ns(text: str) -> int:
    """Nanoseconds since the epoch of the exporter's ``2024-01-02T03:04:05.123456Z``."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(t.timetuple()) * 10**9 + t.microsecond * 1000


@pytest.fixture(scope="session")
def opencensus_python() -> Path:
    try:
        return OPENCENSUS_CLIENT.python()
    except ClientEnvError as e:
        pytest.skip(f"the OpenCensus Python exporter cannot be installed here: {e}")


def test_opencensus_python_exporter(oc_server: Server, opencensus_python: Path) -> None:
    job = {"service": "oc-python", "endpoint": target(oc_server)}
    done = subprocess.run(
        [str(opencensus_python), "-c", SENDER],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    sent = {s["span_id"]: s for s in report["spans"]}
    assert len(sent) == 3
    (trace,) = {s["trace_id"] for s in sent.values()}
    got = read_spans(oc_server, trace, len(sent))
    assert set(got) == set(sent)
    kinds = {0: "SPAN_KIND_UNSPECIFIED", 1: "SPAN_KIND_SERVER", 2: "SPAN_KIND_CLIENT"}
    for sid, s in sent.items():
        span = got[sid]
        assert unb64(span["traceId"]) == trace
        assert span["name"] == s["name"]
        assert span.get("kind", "SPAN_KIND_UNSPECIFIED") == kinds[s["kind"]]
        assert int(span["startTimeUnixNano"]) == iso_ns(s["start"])
        assert int(span["endTimeUnixNano"]) == iso_ns(s["end"])
        if s["parent_span_id"]:
            assert unb64(span["parentSpanId"]) == s["parent_span_id"]
        else:
            assert "parentSpanId" not in span
        assert span["traceState"] == "vendor=v1,other=x"
        resource = span["_resource"]
        assert resource["service.name"] == "oc-python"
        assert resource["host.name"] == "oc-host"
        assert resource["process.pid"] == report["pid"]
        assert resource["telemetry.sdk.language"] == "python"
        assert resource["telemetry.sdk.version"] == report["version"]
        assert resource["opencensus.exporterversion"] == "0.0.1"
        assert resource["opencensus.starttime"].endswith("Z")
    by_name = {s["name"]: got[sid] for sid, s in sent.items()}
    root, child, ok = by_name["GET /checkout"], by_name["SELECT carts"], by_name["render"]
    typed = {a["key"]: a["value"] for a in root["attributes"]}
    assert typed == {
        "http.method": {"stringValue": "GET"},
        "http.status_code": {"intValue": "200"},
        "cache.hit": {"boolValue": False},
        "sampled.ratio": {"doubleValue": 0.25},
    }
    root_sent = next(s for s in sent.values() if s["name"] == "GET /checkout")
    annotation, message = root["events"]
    assert annotation["name"] == "cart loaded"
    assert int(annotation["timeUnixNano"]) == iso_ns(root_sent["annotations"][0]["time"])
    assert json_attrs(annotation["attributes"]) == {"items": 3, "note": "ok"}
    assert message["name"] == "message"
    assert int(message["timeUnixNano"]) == iso_ns(root_sent["message_events"][0]["time"])
    assert json_attrs(message["attributes"]) == {
        "message.type": "SENT",
        "messaging.message_id": 7,
        "messaging.message_payload_size_bytes": 120,
        "messaging.message_payload_compressed_size_bytes": 80,
    }
    assert root.get("status", {}) == {}  # OpenCensus OK without a message: unset
    assert child["status"] == {"code": "STATUS_CODE_ERROR", "message": "cart not found"}
    assert ok["status"] == {"message": "fine"}  # OK → unset, the message kept
    assert json_attrs(child["attributes"]) == {"opencensus.same_process_as_parent_span": True}
    (link,) = child["links"]
    assert unb64(link["traceId"]) == "0af7651916cd43dd8448eb211c80319c"
    assert unb64(link["spanId"]) == "b7ad6b7169203331"
    assert json_attrs(link["attributes"]) == {"reason": "retry"}


def test_stream_acknowledges_each_message_once_stored_and_later_ones_inherit(
    oc_server: Server,
) -> None:
    trace = trace_id(100)
    spans = [oc_span(trace, span_id(100 + i), f"op-{i}") for i in range(5)]
    spans[1].kind = 2
    spans[1].status.code = 14
    spans[1].status.message = "unavailable"
    set_attrs(spans[1].attributes, {"retries": 2, "peer": "db", "ok": False, "load": 0.75})
    event = spans[1].time_events.time_event.add()
    event.time.FromNanoseconds(1_700_000_000_123_456_999)
    event.annotation.description.value = "retrying"
    spans[1].links.link.add(trace_id=trace_id(101), span_id=span_id(1))
    spans[3].resource.CopyFrom(resource(env="own"))
    big = oc_span(trace, span_id(199), "big")  # over 64 KiB: translated in a worker thread
    blobs = {f"blob.{i}": chr(97 + i % 26) * 1000 for i in range(80)}
    set_attrs(big.attributes, blobs)
    first_node = node("oc-stream", host_name="h1", pid=11)
    with ExportCall(target(oc_server)) as call:
        assert call.send(request([spans[0]], first_node, resource(env="test"))) == b""
        # the answer comes once the spans are stored: readable right away
        assert oc_server.span_count(trace.hex()) == 1
        assert call.send(request([spans[1]])) == b""  # no node: the first one's
        assert oc_server.span_count(trace.hex()) == 2
        assert call.send(request([], node("oc-new"))) == b""  # no spans: answered as well
        assert call.send(request([spans[2], spans[3]])) == b""
        assert call.send(request([spans[4], big], resource=resource(env="later"))) == b""
        assert oc_server.span_count(trace.hex()) == 6
        assert call.close() == []
    got = read_spans(oc_server, trace.hex(), 6)
    services = {got[span_id(100 + i).hex()]["_resource"]["service.name"] for i in (0, 1)}
    assert services == {"oc-stream"}
    assert got[span_id(100).hex()]["_resource"] == {
        "service.name": "oc-stream",
        "host.name": "h1",
        "process.pid": 11,
        "env": "test",
    }
    assert got[span_id(101).hex()]["_resource"] == got[span_id(100).hex()]["_resource"]
    assert got[span_id(102).hex()]["_resource"] == {"service.name": "oc-new", "env": "test"}
    assert got[span_id(103).hex()]["_resource"] == {"service.name": "oc-new", "env": "own"}
    assert got[span_id(104).hex()]["_resource"] == {"service.name": "oc-new", "env": "later"}
    assert json_attrs(got[span_id(199).hex()]["attributes"]) == blobs
    s = got[span_id(101).hex()]
    assert s["name"] == "op-1" and s["kind"] == "SPAN_KIND_CLIENT"
    assert unb64(s["traceId"]) == trace.hex()
    assert int(s["startTimeUnixNano"]) == 1_700_000_000_123_456_789
    assert int(s["endTimeUnixNano"]) == 1_700_000_000_125_956_789
    assert s["status"] == {"code": "STATUS_CODE_ERROR", "message": "unavailable"}
    assert json_attrs(s["attributes"]) == {"retries": 2, "peer": "db", "ok": False, "load": 0.75}
    (ev,) = s["events"]
    assert (ev["name"], int(ev["timeUnixNano"])) == ("retrying", 1_700_000_000_123_456_999)
    (link,) = s["links"]
    assert (unb64(link["traceId"]), unb64(link["spanId"])) == (
        trace_id(101).hex(),
        span_id(1).hex(),
    )
    assert oc_server.metric("threadline_distributor_spans_received_total", protocol="opencensus")


def test_bad_input_is_refused_and_the_server_goes_on(oc_server: Server) -> None:
    def refused(reason: str) -> float:
        return oc_server.metric(REFUSED, protocol="opencensus", reason=reason)

    before = {r: refused(r) for r in ("invalid_protobuf", "no_node", "too_large")}
    trace = trace_id(200)
    with ExportCall(target(oc_server)) as call:
        assert call.send(request([oc_span(trace, span_id(200), "kept")], node("bad"))) == b""
        err = call.refused(b"\xff\xff\xff\xff")
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "invalid OpenCensus message" in err.details()
    with ExportCall(target(oc_server)) as call:  # a first message without node
        err = call.refused(request([oc_span(trace, span_id(201), "lost")]))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "must carry a node" in err.details()
    with ExportCall(target(oc_server)) as call:
        err = call.refused(b"\0" * (MAX_REQUEST_BYTES + 1))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"over the limit of {MAX_REQUEST_BYTES} bytes" in err.details()
    with ExportCall(target(oc_server)) as call:  # all spans invalid: the distributor's verdict
        err = call.refused(request([oc_span(b"", span_id(202), "no trace id")], node("bad")))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "rejected" in err.details()
    for reason, count in before.items():
        assert refused(reason) == count + 1, reason
    # the acknowledged span is kept, and the receiver takes new streams
    assert read_spans(oc_server, trace.hex(), 1).keys() == {span_id(200).hex()}
    with ExportCall(target(oc_server)) as call:
        assert call.send(request([oc_span(trace, span_id(203), "after")], node("bad"))) == b""
        assert call.close() == []
    assert oc_server.span_count(trace.hex()) == 2
    assert oc_server.proc is not None and oc_server.proc.poll() is None


def test_a_stream_is_one_call_for_the_concurrency_limit(oc_server: Server) -> None:
    trace = trace_id(250)
    with ExportCall(target(oc_server)) as one, ExportCall(target(oc_server)) as two:
        assert one.send(request([oc_span(trace, span_id(250), "one")], node("c"))) == b""
        assert two.send(request([oc_span(trace, span_id(251), "two")], node("c"))) == b""
        with ExportCall(target(oc_server)) as three:  # two streams open: the limit
            err = three.refused(request([oc_span(trace, span_id(252), "three")], node("c")))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "distributor.max_concurrent_rpcs = 2" in err.details()
        assert one.close() == []
        with ExportCall(target(oc_server)) as four:
            assert four.send(request([oc_span(trace, span_id(253), "four")], node("c"))) == b""
            assert four.close() == []
        assert two.close() == []
    assert read_spans(oc_server, trace.hex(), 3).keys() == {
        span_id(n).hex() for n in (250, 251, 253)
    }


def test_config_is_unimplemented(oc_server: Server) -> None:
    with grpc.insecure_channel(target(oc_server)) as channel:
        config = channel.stream_stream("/opencensus.proto.agent.trace.v1.TraceService/Config")
        with pytest.raises(grpc.RpcError) as info:
            list(config(iter([b""]), timeout=10))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_tenants_and_credentials(tmp_path: Path) -> None:
    users = [
        {"name": "a", "token": "token-a", "tenants": ["team-a"], "access": "write"},
        {"name": "ops", "token": "token-ops", "tenants": ["*"]},
    ]
    cfg = {
        "multitenancy_enabled": True,
        "auth": {"enabled": True, "users": users},
        "distributor": {"receivers": {"opencensus": {"port": free_port()}}},
    }
    srv = Server(tmp_path / "data", cfg).start()
    try:
        trace = trace_id(300)
        message = request([oc_span(trace, span_id(300), "tenant")], node("tenanted"))
        cases = [
            ((), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", "Bearer wrong"),), grpc.StatusCode.UNAUTHENTICATED),
            (
                (("authorization", "Bearer token-a"), ("x-scope-orgid", "team-b")),
                grpc.StatusCode.PERMISSION_DENIED,
            ),
        ]
        for metadata, code in cases:
            with ExportCall(target(srv), metadata) as call:
                assert call.refused(message).code() == code, metadata
        good = (("authorization", "Bearer token-a"), ("x-scope-orgid", "team-a"))
        with ExportCall(target(srv), good) as call:
            assert call.send(message) == b""
            assert call.close() == []
        ops = {"Authorization": "Bearer token-ops"}
        assert srv.span_count(trace.hex(), {**ops, "X-Scope-OrgID": "team-a"}) == 1
        assert srv.span_count(trace.hex(), {**ops, "X-Scope-OrgID": "team-b"}) == 0
    finally:
        srv.stop()


def test_graceful_stop_ends_idle_streams_at_once(tmp_path: Path) -> None:
    cfg = {
        "server": {"graceful_shutdown_timeout": "60s"},
        "distributor": {"receivers": {"opencensus": {"port": free_port()}}},
    }
    srv = Server(tmp_path / "data", cfg).start()
    try:
        trace = trace_id(400)
        with ExportCall(target(srv)) as call:
            assert call.send(request([oc_span(trace, span_id(400), "idle")], node("s"))) == b""
            # the stream stays open and idle, as the OpenCensus Go exporter keeps it
            assert srv.proc is not None
            started = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            assert list(call.answers) == []  # ended by the server, status OK
            assert call.answers.code() == grpc.StatusCode.OK  # type: ignore[attr-defined]
            assert srv.proc.wait(timeout=30) == 0
            assert time.monotonic() - started < 30  # not the 60s grace
        srv.start()
        assert srv.span_count(trace.hex()) == 1
    finally:
        srv.stop()
