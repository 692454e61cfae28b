"""Zipkin → OTLP translation rules, on hand-written Zipkin v2 JSON, v2 proto3 and v1 JSON."""

from __future__ import annotations

import random
import socket
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from py_zipkin.encoding.protobuf import zipkin_pb2

from threadline.model.otlp_decode import decode_export_request
from threadline.model.zipkin import (
    zipkin_v1_json_to_otlp,
    zipkin_v2_json_to_otlp,
    zipkin_v2_proto_to_otlp,
)

TRACE64 = "5af7183fb1d4cf5f"
TRACE128 = "463ac35c9f6413ad48485a3953bb6124"
SPAN = "352bff9a74ca9ad2"
PARENT = "6b221d5bc9e6496c"
TS = 1_556_604_172_355_737  # µs


def v2(*spans: dict[str, Any]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(zipkin_v2_json_to_otlp(orjson.dumps(list(spans))))


def v1(*spans: dict[str, Any]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(zipkin_v1_json_to_otlp(orjson.dumps(list(spans))))


def proto(*spans: Any) -> ExportTraceServiceRequest:
    body = zipkin_pb2.ListOfSpans(spans=list(spans)).SerializeToString()
    return ExportTraceServiceRequest.FromString(zipkin_v2_proto_to_otlp(body))


def span(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"traceId": TRACE128, "id": SPAN, "name": "get /api", "timestamp": TS}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


def only(req: ExportTraceServiceRequest) -> Span:
    spans = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == 1
    return spans[0]


def services(req: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    return [attrs(rs.resource.attributes) for rs in req.resource_spans]


# --- v2 JSON -------------------------------------------------------------------------------


def test_full_span() -> None:
    req = v2(
        span(
            traceId=TRACE64,
            parentId=PARENT,
            kind="SERVER",
            duration=1431,
            localEndpoint={"serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306},
            remoteEndpoint={
                "serviceName": "mysql",
                "ipv4": "172.19.0.2",
                "ipv6": "2001:0db8:0:0:0:0:0:c001",
                "port": 58648,
            },
            annotations=[{"timestamp": TS + 63, "value": "ws"}],
            tags={"http.method": "GET", "http.path": "/api", "http.status_code": "200"},
        )
    )
    assert services(req) == [{"service.name": "backend"}]
    s = only(req)
    assert s.trace_id == bytes(8) + bytes.fromhex(TRACE64)  # 64-bit ids widened
    assert s.span_id == bytes.fromhex(SPAN)
    assert s.parent_span_id == bytes.fromhex(PARENT)
    assert s.name == "get /api"
    assert s.kind == Span.SPAN_KIND_SERVER
    assert s.start_time_unix_nano == TS * 1000
    assert s.end_time_unix_nano == (TS + 1431) * 1000
    assert attrs(s.attributes) == {
        "http.method": "GET",
        "http.path": "/api",
        "http.status_code": "200",  # tag values stay strings
        "net.host.ip": "192.168.99.1",
        "net.host.port": 3306,
        "peer.service": "mysql",
        "net.peer.ip": "2001:db8::c001",  # ipv6 wins over ipv4, canonical form
        "net.peer.port": 58648,
    }
    assert [(e.name, e.time_unix_nano) for e in s.events] == [("ws", (TS + 63) * 1000)]
    assert s.status.code == Status.STATUS_CODE_UNSET


@pytest.mark.parametrize(
    ("kind", "tags", "expected", "left"),
    [
        ("CLIENT", {}, Span.SPAN_KIND_CLIENT, {}),
        ("SERVER", {}, Span.SPAN_KIND_SERVER, {}),
        ("PRODUCER", {}, Span.SPAN_KIND_PRODUCER, {}),
        ("CONSUMER", {}, Span.SPAN_KIND_CONSUMER, {}),
        (None, {}, Span.SPAN_KIND_UNSPECIFIED, {}),
        (None, {"span.kind": "internal"}, Span.SPAN_KIND_INTERNAL, {}),
        (None, {"span.kind": "batch"}, Span.SPAN_KIND_UNSPECIFIED, {}),
        ("CLIENT", {"span.kind": "internal"}, Span.SPAN_KIND_CLIENT, {"span.kind": "internal"}),
    ],
)
def test_kind(kind: str | None, tags: dict[str, str], expected: int, left: dict[str, str]) -> None:
    s = only(v2(span(kind=kind, tags=tags)))
    assert s.kind == expected
    assert attrs(s.attributes) == left


@pytest.mark.parametrize(
    ("tags", "code", "message", "left"),
    [
        ({"otel.status_code": "STATUS_CODE_OK"}, 1, "", {}),
        ({"otel.status_code": "Ok"}, 1, "", {}),
        ({"otel.status_code": "OK"}, 1, "", {}),
        ({"otel.status_code": "STATUS_CODE_UNSET"}, 0, "", {}),
        (
            {"otel.status_code": "STATUS_CODE_ERROR", "otel.status_description": "boom"},
            2,
            "boom",
            {},
        ),
        ({"otel.status_code": "Error"}, 2, "", {}),
        ({"otel.status_code": "bogus"}, 0, "", {}),
        ({"error": "true"}, 2, "", {}),
        ({"error": "disk full"}, 2, "disk full", {"error": "disk full"}),
        ({"error": ""}, 2, "", {"error": ""}),
        # what the OpenTelemetry Zipkin exporters write for Status(ERROR, "timeout")
        ({"otel.status_code": "ERROR", "error": "timeout"}, 2, "timeout", {"error": "timeout"}),
        (
            {"otel.status_code": "OK", "otel.status_description": "fine", "error": "x"},
            2,
            "fine",
            {"error": "x"},
        ),
        # a description without a code is just a tag
        ({"otel.status_description": "lonely"}, 0, "", {"otel.status_description": "lonely"}),
    ],
)
def test_status(tags: dict[str, str], code: int, message: str, left: dict[str, str]) -> None:
    s = only(v2(span(tags=tags)))
    assert (s.status.code, s.status.message) == (code, message)
    assert attrs(s.attributes) == left


def test_absent_timestamp_and_duration() -> None:
    s = only(v2(span(timestamp=None, duration=250)))
    assert s.start_time_unix_nano == 0
    assert s.end_time_unix_nano == 250_000
    assert attrs(s.attributes) == {"otel.zipkin.absentField.startTime": True}
    s = only(v2(span(duration=None)))
    assert s.start_time_unix_nano == s.end_time_unix_nano == TS * 1000


def test_negative_duration_gives_end_before_start() -> None:
    for fields in ({"duration": -5}, {"timestamp": None, "duration": -5}):
        s = only(v2(span(**fields)))
        assert s.end_time_unix_nano < s.start_time_unix_nano  # the distributor rejects it


def test_spans_grouped_per_service_with_resource_tags() -> None:
    res_tags = {"host.name": "web-1", "service.version": "2.1", "telemetry.sdk.language": "go"}
    req = v2(
        span(id="0000000000000001", localEndpoint={"serviceName": "web"}, tags=res_tags),
        span(id="0000000000000002", localEndpoint={"serviceName": "db"}, tags={"x": "1"}),
        span(
            id="0000000000000003",
            localEndpoint={"serviceName": "web"},
            tags={"host.name": "web-2", "y": "2"},
        ),
        span(id="0000000000000004", tags={"host.name": "anon"}),
    )
    assert services(req) == [
        {
            "service.name": "web",
            "host.name": "web-1",
            "service.version": "2.1",
            "telemetry.sdk.language": "go",
        },
        {"service.name": "db"},
        {"host.name": "anon"},  # no local service: no service.name, resource tags still kept
    ]
    web = req.resource_spans[0].scope_spans[0].spans
    assert [s.span_id[-1] for s in web] == [1, 3]
    # resource tags of later spans of a service are not span attributes
    assert [attrs(s.attributes) for s in web] == [{}, {"y": "2"}]
    assert attrs(req.resource_spans[1].scope_spans[0].spans[0].attributes) == {"x": "1"}


def test_service_name_source_tag() -> None:
    req = v2(
        span(
            localEndpoint={"serviceName": "orders"},
            tags={"otlp.service.name.source": "faas.name", "a": "b"},
        )
    )
    assert services(req) == [{"faas.name": "orders"}]
    assert attrs(only(req).attributes) == {"a": "b"}


def test_instrumentation_scope() -> None:
    lib = {"otel.library.name": "io.opentelemetry.http", "otel.library.version": "1.2"}
    req = v2(
        span(id="0000000000000001", tags=lib),
        span(id="0000000000000002", tags={"z": "1"}),
        span(id="0000000000000003", tags={**lib, "k": "v"}),
        span(id="0000000000000004", tags={"otel.scope.name": "grpc", "otel.scope.version": "9"}),
    )
    (rs,) = req.resource_spans
    got = [
        (ss.scope.name, ss.scope.version, [s.span_id[-1] for s in ss.spans])
        for ss in rs.scope_spans
    ]
    assert got == [("io.opentelemetry.http", "1.2", [1, 3]), ("", "", [2]), ("grpc", "9", [4])]
    assert attrs(rs.scope_spans[0].spans[1].attributes) == {"k": "v"}
    assert attrs(rs.scope_spans[2].spans[0].attributes) == {}


def test_trace_state_and_links() -> None:
    link_trace, link_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    s = only(
        v2(
            span(
                tags={
                    "w3c.tracestate": "rojo=00f067aa0ba902b7",
                    "otlp.link.0": f'{link_trace}|{link_span}|k=v|{{"n": 3, "f": 1.5}}|2',
                    "otlp.link.1": "too|few",
                    "other": "kept",
                }
            )
        )
    )
    assert s.trace_state == "rojo=00f067aa0ba902b7"
    (link,) = s.links
    assert link.trace_id.hex() == link_trace
    assert link.span_id.hex() == link_span
    assert link.trace_state == "k=v"
    assert attrs(link.attributes) == {"n": 3, "f": 1.5}
    assert link.dropped_attributes_count == 2
    assert attrs(s.attributes) == {"other": "kept"}


def test_annotation_forms() -> None:
    anns = [
        {"timestamp": TS + 1, "value": "cache miss"},
        {"timestamp": TS + 2, "value": 'retry|{"attempt": 2, "backoff": 0.5, "ok": false}|1'},
        {"timestamp": TS + 3, "value": '{"exception": {"exception.type": "ValueError"}}'},
        {"timestamp": TS + 4, "value": "a|b"},
        {"timestamp": TS + 5, "value": "x|not json|y"},
        {"timestamp": TS + 6, "value": '{"two": {}, "keys": {}}'},
    ]
    events = only(v2(span(annotations=anns))).events
    assert [(e.name, e.time_unix_nano) for e in events] == [
        ("cache miss", (TS + 1) * 1000),
        ("retry", (TS + 2) * 1000),
        ("exception", (TS + 3) * 1000),
        ("a|b", (TS + 4) * 1000),
        ("x|not json|y", (TS + 5) * 1000),
        ('{"two": {}, "keys": {}}', (TS + 6) * 1000),
    ]
    assert attrs(events[1].attributes) == {"attempt": 2, "backoff": 0.5, "ok": False}
    assert events[1].dropped_attributes_count == 1
    assert attrs(events[2].attributes) == {"exception.type": "ValueError"}


def test_ids_parent_shared_debug() -> None:
    s = only(v2(span(parentId=SPAN, shared=True, debug=True)))
    assert s.parent_span_id == b""  # a parent equal to the span itself is dropped
    assert attrs(s.attributes) == {"zipkin.shared": True}  # debug is ignored
    s = only(v2(span(traceId=TRACE128.upper(), id=SPAN.upper(), parentId="")))
    assert s.trace_id.hex() == TRACE128 and s.span_id.hex() == SPAN and not s.parent_span_id
    s = only(v2(span(traceId="3" * 20)))  # 16-32 hex characters, left-padded
    assert s.trace_id == bytes.fromhex("0" * 12 + "3" * 20)


def test_non_string_tag_values_are_their_text() -> None:
    tags = {"n": 200, "f": 0.25, "b": True, "s": "x"}
    assert attrs(only(v2(span(tags=tags))).attributes) == {
        "n": "200",
        "f": "0.25",
        "b": "true",
        "s": "x",
    }


def test_empty_list() -> None:
    assert zipkin_v2_json_to_otlp(b"[]") == b""
    assert zipkin_v1_json_to_otlp(b"[]") == b""


def test_distributor_validation_applies_after_translation() -> None:
    body = orjson.dumps(
        [
            span(id="0000000000000001"),
            span(id="0000000000000002", traceId="0" * 16),  # all-zero trace id
            span(id="0000000000000000"),  # all-zero span id
            span(id="0000000000000003", duration=-1),
        ]
    )
    decoded = decode_export_request(zipkin_v2_json_to_otlp(body))
    assert decoded.batch.num_rows == 1
    assert decoded.rejected == {"invalid_trace_id": 1, "invalid_span_id": 1, "end_before_start": 1}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", ["invalid JSON"]),
        (b'{"traceId": "5af7183fb1d4cf5f"}', ["array", "object"]),
        (b"[1]", ["spans[0]", "span object"]),
        (orjson.dumps([span(traceId=5)]), ["spans[0].traceId", "hex string"]),
        (orjson.dumps([span(traceId="z" * 16)]), ["spans[0].traceId", "not a hex"]),
        (orjson.dumps([span(traceId="abc")]), ["spans[0].traceId", "16 to 32", "got 3"]),
        (orjson.dumps([span(traceId="a" * 33)]), ["spans[0].traceId", "got 33"]),
        (orjson.dumps([span(traceId="00 11 22 33 44 55 66 7")]), ["spans[0].traceId"]),
        (orjson.dumps([{"traceId": TRACE64}]), ["spans[0].id", "null"]),
        (orjson.dumps([span(id="abcd")]), ["spans[0].id", "16 hex", "got 4"]),
        (orjson.dumps([span(), span(parentId="xyz")]), ["spans[1].parentId"]),
        (orjson.dumps([span(name=3)]), ["spans[0].name", "string"]),
        (orjson.dumps([span(kind="SIDEWAYS")]), ["spans[0].kind", "SIDEWAYS"]),
        (orjson.dumps([span(timestamp="now")]), ["spans[0].timestamp", "integer"]),
        (orjson.dumps([span(timestamp=-1)]), ["spans[0].timestamp", "range"]),
        (orjson.dumps([span(timestamp=1.5)]), ["spans[0].timestamp", "integer"]),
        (orjson.dumps([span(duration="long")]), ["spans[0].duration", "integer"]),
        (orjson.dumps([span(tags=["a"])]), ["spans[0].tags", "object"]),
        (orjson.dumps([span(tags={"a": {"b": 1}})]), ["spans[0].tags['a']", "string"]),
        (orjson.dumps([span(tags={"a": None})]), ["spans[0].tags['a']", "null"]),
        (orjson.dumps([span(annotations={})]), ["spans[0].annotations", "array"]),
        (
            orjson.dumps([span(annotations=[{"value": "x"}])]),
            ["spans[0].annotations[0].timestamp", "missing"],
        ),
        (
            orjson.dumps([span(annotations=[{"timestamp": 1, "value": 2}])]),
            ["spans[0].annotations[0].value"],
        ),
        (orjson.dumps([span(localEndpoint="web")]), ["spans[0].localEndpoint", "object"]),
        (
            orjson.dumps([span(localEndpoint={"ipv4": "300.1.1.1"})]),
            ["spans[0].localEndpoint.ipv4", "IPv4"],
        ),
        (
            orjson.dumps([span(remoteEndpoint={"ipv6": "::g"})]),
            ["spans[0].remoteEndpoint.ipv6", "IPv6"],
        ),
        (
            orjson.dumps([span(localEndpoint={"port": 70000})]),
            ["spans[0].localEndpoint.port", "65535"],
        ),
        (
            orjson.dumps([span(localEndpoint={"serviceName": ["x"]})]),
            ["spans[0].localEndpoint.serviceName"],
        ),
        (orjson.dumps([span(shared="yes")]), ["spans[0].shared", "boolean"]),
        (
            orjson.dumps([span(tags={"otlp.link.0": "zz|b7ad6b7169203331||{}|0"})]),
            ["otlp.link.0", "traceId"],
        ),
    ],
)
def test_bad_v2_json(body: bytes, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        zipkin_v2_json_to_otlp(body)
    for word in words:
        assert word in str(err.value)


# --- v2: the compiled reader's two paths and both encodings agree --------------------------

_TAG_KEYS = (
    "http.method", "error", "otel.status_code", "otel.status_description", "span.kind",
    "w3c.tracestate", "otel.library.name", "otel.library.version", "otel.scope.name",
    "host.name", "service.version", "otlp.service.name.source", "peer.service", "é\"k", "",
)  # fmt: skip
_TAG_VALUES = ("", "GET", "true", "ERROR", "Ok", "internal", "lib", "1.0", "é\n\\", "x|y", "\u2028")
_ANNOTATIONS = ("cs", "", 'ev|{"a": 1, "b": [true, 2.5]}|3', '{"ev": {"k": "v"}}', "a|b")


def _random_span(rng: random.Random, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": rng.choice([TRACE128, TRACE64, TRACE128.upper()]),
        "id": f"{i + 1:016x}",
        "name": rng.choice(["get", "", 'é "q"']),
        "timestamp": rng.choice([TS, 0, TS + 7]),
        "duration": rng.choice([0, 15, 10**9]),
        "localEndpoint": rng.choice(
            [
                {"serviceName": "web", "ipv4": "10.0.0.1"},
                {"serviceName": "db", "port": 5432},
                {"serviceName": "web", "ipv6": "fe80::1"},
            ]
        ),
        "tags": {rng.choice(_TAG_KEYS): rng.choice(_TAG_VALUES) for _ in range(rng.randint(0, 8))},
        "annotations": [
            {"timestamp": TS + j, "value": rng.choice(_ANNOTATIONS)}
            for j in range(rng.randint(0, 2))
        ],
        "shared": rng.random() < 0.2,
    }
    if rng.random() < 0.5:
        out["parentId"] = rng.choice([PARENT, out["id"]])
    if rng.random() < 0.7:
        out["kind"] = rng.choice(["CLIENT", "SERVER", "PRODUCER", "CONSUMER"])
    if rng.random() < 0.3:
        out["remoteEndpoint"] = {"serviceName": "pg", "ipv4": "10.0.0.2", "port": 5432}
    return out


def _odd_but_equal(rng: random.Random, sp: dict[str, Any]) -> dict[str, Any]:
    """The span written differently, in shapes the compiled reader hands to the Python checks."""
    out = dict(sp)
    choice = rng.randrange(4)
    if choice == 0 and "kind" in out:
        out["kind"] = out["kind"].lower()
    elif choice == 1:
        out["tags"] = {**out["tags"], "n": 5}  # a number tag value: the string "5"
        sp["tags"] = {**sp["tags"], "n": "5"}
    elif choice == 2:
        out["debug"] = None
        out["remoteEndpoint"] = out.get("remoteEndpoint") or ""
    else:
        out["timestamp"] = out["timestamp"] or None
        out["parentId"] = out.get("parentId") or ""
    return out


def _sorted(req: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """``req`` with attributes in key order (a proto3 map has no order)."""
    for rs in req.resource_spans:
        ordered = sorted(rs.resource.attributes, key=lambda kv: kv.key)
        del rs.resource.attributes[:]
        rs.resource.attributes.extend(ordered)
        for ss in rs.scope_spans:
            for sp in ss.spans:
                ordered = sorted(sp.attributes, key=lambda kv: kv.key)
                del sp.attributes[:]
                sp.attributes.extend(ordered)
    return req


def test_v2_spans_in_any_shape_or_encoding_translate_the_same() -> None:
    rng = random.Random(3)
    for _ in range(200):
        spans = [_random_span(rng, i) for i in range(rng.randint(1, 6))]
        odd = [_odd_but_equal(rng, sp) for sp in spans]
        want = zipkin_v2_json_to_otlp(orjson.dumps(spans))
        assert zipkin_v2_json_to_otlp(orjson.dumps(odd)) == want
        assert zipkin_v2_json_to_otlp(orjson.dumps(spans, option=orjson.OPT_INDENT_2)) == want
        assert decode_export_request(want).batch.num_rows == len(spans)
        msg = zipkin_pb2.ListOfSpans()
        for sp in spans:
            p = msg.spans.add(
                trace_id=bytes.fromhex(sp["traceId"]),
                id=bytes.fromhex(sp["id"]),
                parent_id=bytes.fromhex(sp.get("parentId", "")),
                name=sp["name"],
                kind={"CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}.get(
                    sp.get("kind"), 0
                ),
                timestamp=sp["timestamp"],
                duration=sp["duration"],
                shared=sp["shared"],
                tags=sp["tags"],
            )
            for field in ("localEndpoint", "remoteEndpoint"):
                ep = sp.get(field)
                if ep:
                    out = p.local_endpoint if field == "localEndpoint" else p.remote_endpoint
                    out.service_name = ep["serviceName"]
                    out.port = ep.get("port", 0)
                    if "ipv4" in ep:
                        out.ipv4 = socket.inet_pton(socket.AF_INET, ep["ipv4"])
                    if "ipv6" in ep:
                        out.ipv6 = socket.inet_pton(socket.AF_INET6, ep["ipv6"])
            for a in sp["annotations"]:
                p.annotations.add(timestamp=a["timestamp"], value=a["value"])
        got = ExportTraceServiceRequest.FromString(zipkin_v2_proto_to_otlp(msg.SerializeToString()))
        assert _sorted(got) == _sorted(ExportTraceServiceRequest.FromString(want))


def test_v2_damaged_bodies_are_value_errors() -> None:
    rng = random.Random(4)
    good = orjson.dumps([_random_span(rng, i) for i in range(5)])
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(b'{}[],:"\\ 0a-.eE\x00\xff')
        try:
            zipkin_v2_json_to_otlp(bytes(data))
        except ValueError as e:
            assert str(e)
        else:  # accepted: then it is JSON
            orjson.loads(bytes(data))


# --- v2 proto3 (encoded by py-zipkin's generated classes) ----------------------------------


def test_proto_span() -> None:
    s = zipkin_pb2.Span(
        trace_id=bytes.fromhex(TRACE64),
        id=bytes.fromhex(SPAN),
        parent_id=bytes.fromhex(PARENT),
        kind=zipkin_pb2.Span.CLIENT,
        name="query",
        timestamp=TS,
        duration=12,
        local_endpoint=zipkin_pb2.Endpoint(
            service_name="api", ipv4=socket.inet_aton("10.0.0.1"), port=8080
        ),
        remote_endpoint=zipkin_pb2.Endpoint(
            service_name="pg", ipv6=socket.inet_pton(socket.AF_INET6, "fe80::1"), port=5432
        ),
        annotations=[zipkin_pb2.Annotation(timestamp=TS + 5, value="sent")],
        tags={"db.statement": "select 1", "error": "true", "host.name": "h1"},
        shared=True,
        debug=True,
    )
    req = proto(s, zipkin_pb2.Span(trace_id=bytes(15) + b"\x01", id=b"\x01" * 8, kind=4))
    assert services(req) == [{"service.name": "api", "host.name": "h1"}, {}]
    got = req.resource_spans[0].scope_spans[0].spans[0]
    assert got.trace_id == bytes(8) + bytes.fromhex(TRACE64)
    assert got.span_id.hex() == SPAN and got.parent_span_id.hex() == PARENT
    assert got.kind == Span.SPAN_KIND_CLIENT
    assert got.name == "query"
    assert (got.start_time_unix_nano, got.end_time_unix_nano) == (TS * 1000, (TS + 12) * 1000)
    assert got.status.code == Status.STATUS_CODE_ERROR
    assert attrs(got.attributes) == {
        "db.statement": "select 1",
        "net.host.ip": "10.0.0.1",
        "net.host.port": 8080,
        "peer.service": "pg",
        "net.peer.ip": "fe80::1",
        "net.peer.port": 5432,
        "zipkin.shared": True,
    }
    assert [(e.name, e.time_unix_nano) for e in got.events] == [("sent", (TS + 5) * 1000)]
    other = req.resource_spans[1].scope_spans[0].spans[0]
    assert other.kind == Span.SPAN_KIND_CONSUMER
    assert other.start_time_unix_nano == 0
    assert attrs(other.attributes) == {"otel.zipkin.absentField.startTime": True}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xff\xff\xff not protobuf", ["invalid Zipkin protobuf"]),
        (
            zipkin_pb2.ListOfSpans(spans=[zipkin_pb2.Span(trace_id=b"\x01" * 5, id=b"\x01" * 8)]),
            ["spans[0].trace_id", "8 or 16 bytes", "got 5"],
        ),
        (
            zipkin_pb2.ListOfSpans(spans=[zipkin_pb2.Span(trace_id=b"\x01" * 16, id=b"\x01")]),
            ["spans[0].id", "8 bytes"],
        ),
        (
            zipkin_pb2.ListOfSpans(
                spans=[
                    zipkin_pb2.Span(trace_id=b"\x01" * 16, id=b"\x01" * 8, parent_id=b"\x01" * 9)
                ]
            ),
            ["spans[0].parent_id"],
        ),
        (
            zipkin_pb2.ListOfSpans(
                spans=[
                    zipkin_pb2.Span(
                        trace_id=b"\x01" * 16,
                        id=b"\x01" * 8,
                        local_endpoint=zipkin_pb2.Endpoint(ipv4=b"\x01\x02"),
                    )
                ]
            ),
            ["spans[0].local_endpoint.ipv4", "4 bytes"],
        ),
    ],
)
def test_bad_proto(body: Any, words: list[str]) -> None:
    raw = body if isinstance(body, bytes) else body.SerializeToString()
    with pytest.raises(ValueError) as err:
        zipkin_v2_proto_to_otlp(raw)
    for word in words:
        assert word in str(err.value)


# --- v1 JSON -------------------------------------------------------------------------------


def endpoint(service: str, **extra: Any) -> dict[str, Any]:
    return {"serviceName": service, **extra}


def test_v1_client_span() -> None:
    web = endpoint("web", ipv4="10.0.0.3", port=80)
    req = v1(
        {
            "traceId": TRACE64,
            "id": SPAN,
            "parentId": PARENT,
            "name": "get /users",
            "timestamp": TS,
            "duration": 100,
            "annotations": [
                {"timestamp": TS, "value": "cs", "endpoint": web},
                {"timestamp": TS + 50, "value": "cache miss", "endpoint": web},
                {"timestamp": TS + 100, "value": "cr", "endpoint": web},
            ],
            "binaryAnnotations": [
                {"key": "http.path", "value": "/users", "endpoint": web},
                {"key": "retries", "value": 2, "endpoint": web},
                {"key": "sa", "value": True, "endpoint": endpoint("users", ipv4="10.0.0.9")},
            ],
        }
    )
    assert services(req) == [{"service.name": "web", "ipv4": "10.0.0.3", "port": "80"}]
    s = only(req)
    assert s.trace_id == bytes(8) + bytes.fromhex(TRACE64)
    assert s.span_id.hex() == SPAN and s.parent_span_id.hex() == PARENT
    assert s.name == "get /users"
    assert s.kind == Span.SPAN_KIND_CLIENT
    assert (s.start_time_unix_nano, s.end_time_unix_nano) == (TS * 1000, (TS + 100) * 1000)
    assert [(e.name, e.time_unix_nano) for e in s.events] == [("cache miss", (TS + 50) * 1000)]
    assert attrs(s.attributes) == {
        "http.path": "/users",
        "retries": "2",
        "peer.service": "users",
        "net.peer.ip": "10.0.0.9",
    }


@pytest.mark.parametrize(
    ("core", "kind"),
    [
        (["sr", "ss"], Span.SPAN_KIND_SERVER),
        (["ms"], Span.SPAN_KIND_PRODUCER),
        (["mr"], Span.SPAN_KIND_CONSUMER),
        (["sr", "cs"], Span.SPAN_KIND_SERVER),  # the first core annotation decides
        ([], Span.SPAN_KIND_UNSPECIFIED),
    ],
)
def test_v1_kind_and_times_from_annotations(core: list[str], kind: int) -> None:
    anns = [
        {"timestamp": TS + 10 * i, "value": v, "endpoint": endpoint("svc")}
        for i, v in enumerate(core)
    ]
    anns.append({"timestamp": TS + 5, "value": "note", "endpoint": endpoint("svc")})
    s = only(v1({"traceId": TRACE128, "id": SPAN, "name": "op", "annotations": anns}))
    assert s.kind == kind
    times = [a["timestamp"] * 1000 for a in anns]
    assert (s.start_time_unix_nano, s.end_time_unix_nano) == (min(times), max(times))
    assert [e.name for e in s.events] == ["note"]


def test_v1_service_fallbacks_and_absent_time() -> None:
    bin_ep = [{"key": "k", "value": "v", "endpoint": endpoint("from-binary")}]
    req = v1(
        {"traceId": TRACE64, "id": "0000000000000001", "binaryAnnotations": bin_ep},
        {
            "traceId": TRACE64,
            "id": "0000000000000002",
            "binaryAnnotations": [{"key": "lc", "value": "cron"}],
        },
        {"traceId": TRACE64, "id": "0000000000000003"},
    )
    assert [svc["service.name"] for svc in services(req)] == [
        "from-binary",
        "cron",
        "unknown-service",
    ]
    lc = req.resource_spans[1].scope_spans[0].spans[0]
    assert attrs(lc.attributes)["component"] == "cron"
    absent = req.resource_spans[2].scope_spans[0].spans[0]
    assert attrs(absent.attributes) == {"otel.zipkin.absentField.startTime": True}
    assert absent.start_time_unix_nano == absent.end_time_unix_nano > 0


@pytest.mark.parametrize(
    ("tags", "code", "message", "left"),
    [
        ({"census.status_code": "0"}, 1, "", {}),
        ({"census.status_code": "5", "census.status_description": "nope"}, 2, "nope", {}),
        ({"otel.status_code": "2", "otel.status_description": "bad"}, 2, "bad", {}),
        ({"otel.status_code": "ERROR", "error": "timeout"}, 2, "timeout", {}),
        ({"error": "true"}, 2, "", {}),
        ({"error": "disk full"}, 2, "disk full", {}),
        ({"http.status_code": "503"}, 2, "", {"http.status_code": "503"}),
        (
            {"http.status_code": "200", "http.status_message": "OK"},
            0,
            "OK",
            {"http.status_code": "200", "http.status_message": "OK"},
        ),
        ({"census.status_code": "0", "error": "x"}, 1, "", {}),  # census wins
    ],
)
def test_v1_status(tags: dict[str, str], code: int, message: str, left: dict[str, str]) -> None:
    binary = [{"key": k, "value": v} for k, v in tags.items()]
    s = only(v1({"traceId": TRACE64, "id": SPAN, "timestamp": TS, "binaryAnnotations": binary}))
    assert (s.status.code, s.status.message) == (code, message)
    assert attrs(s.attributes) == left


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{", ["invalid JSON"]),
        (b"{}", ["array"]),
        (b'["x"]', ["spans[0]", "span object"]),
        (orjson.dumps([{"traceId": "xyz", "id": SPAN}]), ["spans[0].traceId"]),
        (orjson.dumps([{"traceId": TRACE64, "id": "1"}]), ["spans[0].id"]),
        (
            orjson.dumps([{"traceId": TRACE64, "id": SPAN, "annotations": [{"value": 1}]}]),
            ["spans[0].annotations[0].value"],
        ),
        (
            orjson.dumps([{"traceId": TRACE64, "id": SPAN, "binaryAnnotations": [{"key": 1}]}]),
            ["spans[0].binaryAnnotations[0].key"],
        ),
        (
            orjson.dumps(
                [{"traceId": TRACE64, "id": SPAN, "binaryAnnotations": [{"key": "a", "value": {}}]}]
            ),
            ["spans[0].binaryAnnotations[0].value"],
        ),
    ],
)
def test_bad_v1_json(body: bytes, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        zipkin_v1_json_to_otlp(body)
    for word in words:
        assert word in str(err.value)
