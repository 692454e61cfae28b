"""Zipkin ingest with real clients (OpenTelemetry Zipkin exporters, py-zipkin), read back through
the Tempo trace-by-ID API; and bad input on the Zipkin front door."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.zipkin.encoder import Protocol
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from py_zipkin import Encoding, Kind
from py_zipkin.encoding.protobuf import zipkin_pb2
from py_zipkin.transport import SimpleHTTPTransport
from py_zipkin.zipkin import zipkin_span

from client_venvs import ZIPKIN_PROTO_CLIENT
from conftest import HOST, Server
from otel_helpers import make_trace, send, trace_hex

REFUSED = "threadline_receiver_refused_requests_total"
TESTS = Path(__file__).parent


# --- reading traces back -------------------------------------------------------------------


def b64_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def attr_values(kvs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        ((kind, v),) = kv["value"].items()
        out[kv["key"]] = int(v) if kind == "intValue" else v
    return out


def read_trace(
    server: Server, trace_id: str, tenant: str | None = None
) -> dict[str, dict[str, Any]]:
    """Spans of a trace by span id (hex), each with ``_service``, ``_resource`` and ``_scope``."""
    headers = {"X-Scope-OrgID": tenant} if tenant else None
    r = server.get(f"/api/traces/{trace_id}", headers=headers)
    assert r.status == 200, r.data
    out = {}
    for batch in orjson.loads(r.data)["batches"]:
        resource = attr_values(batch["resource"].get("attributes", []))
        for ss in batch["scopeSpans"]:
            for span in ss["spans"]:
                span["_resource"] = resource
                span["_service"] = resource.get("service.name")
                span["_scope"] = ss.get("scope", {})
                span["_attrs"] = attr_values(span.get("attributes", []))
                out[b64_hex(span["spanId"])] = span
    return out


def zipkin_url(server: Server, version: int = 2) -> str:
    return f"http://{HOST}:{server.zipkin_port}/api/v{version}/spans"


def post(
    server: Server, body: bytes, content_type: str | None = "application/json", **kw: Any
) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    headers.update(kw.pop("headers", {}))
    return server.request(
        "POST", zipkin_url(server, kw.pop("version", 2)), body=body, headers=headers
    )


# --- the OpenTelemetry Zipkin exporters ----------------------------------------------------

_KINDS = {1: "SPAN_KIND_SERVER", 2: "SPAN_KIND_CLIENT"}


def micros(ns: int) -> int:
    """How the exporters round nanoseconds to microseconds."""
    return (ns + 500) // 1000


def check_otel_trace(
    server: Server, spans: Sequence[ReadableSpan], service: str, v1: bool = False
) -> None:
    got = read_trace(server, trace_hex(spans))
    assert set(got) == {format(s.context.span_id, "016x") for s in spans}
    for sent in spans:
        s = got[format(sent.context.span_id, "016x")]
        assert b64_hex(s["traceId"]) == trace_hex(spans)
        assert s["name"] == sent.name
        start = micros(sent.start_time)
        assert int(s["startTimeUnixNano"]) == start * 1000
        end = start + micros(sent.end_time - sent.start_time)
        assert int(s["endTimeUnixNano"]) == end * 1000
        if sent.parent is None:
            assert "parentSpanId" not in s
        else:
            assert b64_hex(s["parentSpanId"]) == format(sent.parent.span_id, "016x")
        assert s["_service"] == service
        # v1 spans carry no kind (no cs/sr annotations from this exporter)
        kind = s.get("kind", "SPAN_KIND_UNSPECIFIED")
        assert kind == ("SPAN_KIND_UNSPECIFIED" if v1 else _KINDS[sent.kind.value])
        if sent.status.status_code is StatusCode.ERROR:
            assert s["status"] == {"code": "STATUS_CODE_ERROR", "message": "timeout"}
        else:
            assert s.get("status", {}) == {}
        a = s["_attrs"]
        for key, value in (sent.attributes or {}).items():
            # tag values stay the exporter's strings
            if isinstance(value, bool):
                want = str(value).lower()
            elif isinstance(value, (list, tuple)):
                want = json.dumps(list(value), separators=(",", ":"))
            else:
                want = str(value)
            assert a[key] == want, key
        assert "otel.status_code" not in a
        if v1:
            assert a["otel.library.name"] == "tests.tracer"
        else:
            assert s["_scope"] == {"name": "tests.tracer", "version": "1.2.3"}
            assert s["_resource"]["telemetry.sdk.language"] == "python"
            assert "otel.scope.name" not in a and "service.name" not in a
            assert a["host.cores"] == "8"  # not a resource convention: stays on the span
            if sent.status.status_code is StatusCode.ERROR:
                assert a["error"] == "timeout"
        for ev_sent, ev in zip(sent.events, s.get("events", []), strict=True):
            assert ev["name"] == ev_sent.name
            assert int(ev["timeUnixNano"]) == micros(ev_sent.timestamp) * 1000
            assert attr_values(ev["attributes"]) == dict(ev_sent.attributes)


def test_otel_zipkin_json_exporter(server: Server) -> None:
    spans = make_trace(service="zipkin-json")
    send(ZipkinExporter(endpoint=zipkin_url(server)), spans)
    check_otel_trace(server, spans, "zipkin-json")


def test_otel_zipkin_json_exporter_v1(server: Server) -> None:
    spans = make_trace(service="zipkin-v1")
    # (its v1 encoder needs max_tag_value_length set: it compares None > 0 otherwise)
    exporter = ZipkinExporter(
        version=Protocol.V1, endpoint=zipkin_url(server, 1), max_tag_value_length=128
    )
    send(exporter, spans)
    check_otel_trace(server, spans, "zipkin-v1", v1=True)


_PROTO_CLIENT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[2])
    from otel_helpers import make_trace
    spans = make_trace(service="zipkin-proto")
    from opentelemetry.exporter.zipkin.proto.http import ZipkinExporter
    exporter = ZipkinExporter(endpoint=sys.argv[1])
    result = exporter.export(spans)
    print(json.dumps({
        "ok": result.name,
        "trace": format(spans[0].context.trace_id, "032x"),
        "spans": [
            {
                "id": format(s.context.span_id, "016x"),
                "name": s.name,
                "start": s.start_time,
                "end": s.end_time,
                "kind": s.kind.value,
                "error": s.status.status_code.name == "ERROR",
            }
            for s in spans
        ],
    }))
    """
)


def test_otel_zipkin_proto_exporter(server: Server) -> None:
    # opentelemetry-exporter-zipkin-proto-http pins protobuf~=3.12 (protoc-3 generated code):
    # it cannot share the test environment with protobuf>=4.25, so it runs in a venv of its own
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    run = subprocess.run(
        [str(ZIPKIN_PROTO_CLIENT.python()), "-c", _PROTO_CLIENT, zipkin_url(server), str(TESTS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    sent = json.loads(run.stdout)
    assert sent["ok"] == "SUCCESS"
    got = read_trace(server, sent["trace"])
    assert set(got) == {s["id"] for s in sent["spans"]}
    for s in sent["spans"]:
        g = got[s["id"]]
        assert g["name"] == s["name"]
        assert g["_service"] == "zipkin-proto"
        start = micros(s["start"])
        assert int(g["startTimeUnixNano"]) == start * 1000
        assert int(g["endTimeUnixNano"]) == (start + micros(s["end"] - s["start"])) * 1000
        assert g["kind"] == _KINDS[s["kind"]]
        assert g["_scope"] == {"name": "tests.tracer", "version": "1.2.3"}
        if s["error"]:
            assert g["status"] == {"code": "STATUS_CODE_ERROR", "message": "timeout"}
    root = next(g for g in got.values() if g["name"] == "GET /checkout")
    assert root["_attrs"]["http.status_code"] == "200"
    assert root["events"][0]["name"] == "validated"


# --- py-zipkin -----------------------------------------------------------------------------


class CapturingTransport(SimpleHTTPTransport):
    """py-zipkin's own HTTP transport (it asserts the 202), keeping what it sent."""

    def __init__(self, port: int) -> None:
        super().__init__(HOST, port)
        self.payloads: list[bytes] = []

    def send(self, payload: str | bytes) -> None:
        self.payloads.append(payload.encode() if isinstance(payload, str) else payload)
        super().send(payload)


def pyzipkin_trace(server: Server, encoding: Encoding, service: str) -> CapturingTransport:
    transport = CapturingTransport(server.zipkin_port)
    with zipkin_span(
        service_name=service,
        span_name="get /orders",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=encoding,
        kind=Kind.SERVER,
        host="10.1.2.3",
        port=8080,
        binary_annotations={"http.method": "GET"},
    ) as root:
        root.add_annotation("auth ok")
        with zipkin_span(
            service_name=service,
            span_name="select orders",
            kind=Kind.CLIENT,
            binary_annotations={"db.system": "postgresql", "error": "deadlock"},
        ) as child:
            child.add_sa_binary_annotation(port=5432, service_name="postgres", host="10.9.9.9")
        with zipkin_span(service_name=service, span_name="render", kind=Kind.LOCAL):
            pass
    assert transport.payloads
    return transport


def test_py_zipkin_v2_json(server: Server) -> None:
    transport = pyzipkin_trace(server, Encoding.V2_JSON, "pyz-json")
    sent = [s for p in transport.payloads for s in orjson.loads(p)]
    assert len(sent) == 3
    assert len(sent[0]["traceId"]) == 16  # py-zipkin's default: 64-bit trace ids
    got = read_trace(server, sent[0]["traceId"])
    assert set(got) == {s["id"] for s in sent}
    for s in sent:
        g = got[s["id"]]
        assert b64_hex(g["traceId"]) == "0" * 16 + s["traceId"]
        assert g["name"] == s["name"]
        assert int(g["startTimeUnixNano"]) == s["timestamp"] * 1000
        assert int(g["endTimeUnixNano"]) == (s["timestamp"] + s["duration"]) * 1000
        assert g["_service"] == "pyz-json"
        assert (
            g.get("kind", "SPAN_KIND_UNSPECIFIED")
            == {
                "SERVER": "SPAN_KIND_SERVER",
                "CLIENT": "SPAN_KIND_CLIENT",
                None: "SPAN_KIND_UNSPECIFIED",
            }[s.get("kind")]
        )
        if "parentId" in s:
            assert b64_hex(g["parentSpanId"]) == s["parentId"]
        assert g["_attrs"]["net.host.ip"] == "10.1.2.3"
        assert g["_attrs"]["net.host.port"] == 8080
        for key, value in s.get("tags", {}).items():
            assert g["_attrs"][key] == value
        assert g["_attrs"].get("zipkin.shared", False) == s.get("shared", False)
    by_name = {g["name"]: g for g in got.values()}
    root, client = by_name["get /orders"], by_name["select orders"]
    assert root["kind"] == "SPAN_KIND_SERVER"
    assert [e["name"] for e in root["events"]] == ["auth ok"]
    assert client["status"] == {"code": "STATUS_CODE_ERROR", "message": "deadlock"}
    assert client["_attrs"]["peer.service"] == "postgres"
    assert client["_attrs"]["net.peer.ip"] == "10.9.9.9"
    assert client["_attrs"]["net.peer.port"] == 5432


def test_py_zipkin_v2_proto(server: Server) -> None:
    transport = pyzipkin_trace(server, Encoding.V2_PROTO3, "pyz-proto")
    sent = [s for p in transport.payloads for s in zipkin_pb2.ListOfSpans.FromString(p).spans]
    assert len(sent) == 3
    got = read_trace(server, sent[0].trace_id.hex())
    assert set(got) == {s.id.hex() for s in sent}
    for s in sent:
        g = got[s.id.hex()]
        assert g["name"] == s.name
        assert int(g["startTimeUnixNano"]) == s.timestamp * 1000
        assert int(g["endTimeUnixNano"]) == (s.timestamp + s.duration) * 1000
        assert g["_service"] == "pyz-proto"
        assert g["_attrs"]["net.host.ip"] == "10.1.2.3"
        for key, value in s.tags.items():
            assert g["_attrs"][key] == value
    client = next(g for g in got.values() if g["name"] == "select orders")
    assert client["kind"] == "SPAN_KIND_CLIENT"
    assert client["status"] == {"code": "STATUS_CODE_ERROR", "message": "deadlock"}
    assert client["_attrs"]["peer.service"] == "postgres"


def test_py_zipkin_v1_json(server: Server) -> None:
    transport = pyzipkin_trace(server, Encoding.V1_JSON, "pyz-v1")
    sent = [s for p in transport.payloads for s in orjson.loads(p)]
    assert all("binaryAnnotations" in s for s in sent)
    got = read_trace(server, sent[0]["traceId"])
    assert set(got) == {s["id"] for s in sent}
    for s in sent:
        g = got[s["id"]]
        assert g["name"] == s["name"]
        # py-zipkin writes v1 local spans with no endpoint at all
        endpoints = [a for a in s["annotations"] + s["binaryAnnotations"] if "endpoint" in a]
        assert g["_service"] == ("pyz-v1" if endpoints else "unknown-service")
        times = [a["timestamp"] for a in s["annotations"]]
        start = s.get("timestamp", min(times, default=None))
        end = start + s["duration"] if "duration" in s else max(times)
        assert int(g["startTimeUnixNano"]) == start * 1000
        assert int(g["endTimeUnixNano"]) == end * 1000
        core = [a["value"] for a in s["annotations"] if a["value"] in ("cs", "sr")]
        want = {"cs": "SPAN_KIND_CLIENT", "sr": "SPAN_KIND_SERVER"}
        assert g.get("kind", "SPAN_KIND_UNSPECIFIED") == (
            want[core[0]] if core else "SPAN_KIND_UNSPECIFIED"
        )
        for b in s["binaryAnnotations"]:
            if b["key"] not in ("sa", "ca", "error"):
                assert g["_attrs"][b["key"]] == b["value"]
    by_name = {g["name"]: g for g in got.values()}
    root, client = by_name["get /orders"], by_name["select orders"]
    assert root["kind"] == "SPAN_KIND_SERVER"  # from sr/ss; its shared span has no timestamp
    assert root["_resource"] == {"service.name": "pyz-v1", "ipv4": "10.1.2.3", "port": "8080"}
    assert [e["name"] for e in root["events"]] == ["auth ok"]
    assert client["status"] == {"code": "STATUS_CODE_ERROR", "message": "deadlock"}
    assert client["_attrs"]["peer.service"] == "postgres"


# --- the front door: answers, errors, counters ---------------------------------------------

SPAN = {
    "traceId": "5af7183fb1d4cf5f",
    "id": "352bff9a74ca9ad2",
    "name": "get /api",
    "timestamp": 1_700_000_000_000_000,
    "duration": 1431,
    "kind": "SERVER",
    "localEndpoint": {"serviceName": "front-door"},
    "tags": {"http.method": "GET"},
}


def fresh(**fields: Any) -> dict[str, Any]:
    """``SPAN`` with a new random trace id and ``fields``."""
    return {**SPAN, "traceId": os.urandom(16).hex(), **fields}


@pytest.fixture(scope="module")
def baseline(server: Server) -> str:
    """A healthy trace pushed first; the bad-input tests check it is still intact."""
    span = fresh()
    assert post(server, orjson.dumps([span])).status == 202
    return span["traceId"]


def intact(server: Server, trace: str) -> None:
    assert [s["name"] for s in read_trace(server, trace).values()] == ["get /api"]
    span = fresh()  # and the door still takes good spans
    assert post(server, orjson.dumps([span])).status == 202
    assert read_trace(server, span["traceId"])


def test_accepted_answer_gzip_and_missing_content_type(server: Server) -> None:
    spans = [fresh(), fresh()]
    r = post(server, orjson.dumps(spans[:1]))
    assert (r.status, r.data) == (202, b"")
    r = post(
        server,
        gzip.compress(orjson.dumps(spans[1:])),
        headers={"Content-Encoding": "gzip"},
    )
    assert (r.status, r.data) == (202, b"")
    for span in spans:
        assert read_trace(server, span["traceId"])
    span = fresh()
    assert post(server, orjson.dumps([span]), content_type=None).status == 202  # read as JSON
    assert read_trace(server, span["traceId"])
    assert post(server, b"[]").status == 202
    assert post(server, b"[]", version=1).status == 202
    before = server.metric("threadline_distributor_spans_received_total", protocol="zipkin_json")
    assert post(server, orjson.dumps([fresh(), fresh()])).status == 202
    after = server.metric("threadline_distributor_spans_received_total", protocol="zipkin_json")
    assert after == before + 2


@pytest.mark.parametrize("encoding", ["json", "proto"])
def test_large_requests(server: Server, encoding: str) -> None:
    """Large bodies (1,000 spans, over 64 KiB) are translated whole; errors come back as 400."""
    trace = os.urandom(16).hex()
    spans = [fresh(traceId=trace, id=f"{i + 1:016x}", name=f"op {i}") for i in range(1000)]
    if encoding == "json":
        body, content_type = orjson.dumps(spans), "application/json"
    else:
        msg = zipkin_pb2.ListOfSpans()
        for sp in spans:
            msg.spans.add(
                trace_id=bytes.fromhex(sp["traceId"]),
                id=bytes.fromhex(sp["id"]),
                name=sp["name"],
                timestamp=sp["timestamp"],
                duration=sp["duration"],
                kind=zipkin_pb2.Span.SERVER,
                local_endpoint=zipkin_pb2.Endpoint(service_name="front-door"),
                tags=sp["tags"],
            )
        body, content_type = msg.SerializeToString(), "application/x-protobuf"
    assert len(body) > 64 * 1024
    r = post(server, body, content_type)
    assert (r.status, r.data) == (202, b"")
    got = read_trace(server, trace)
    assert set(got) == {sp["id"] for sp in spans}
    assert {g["name"] for g in got.values()} == {sp["name"] for sp in spans}
    if encoding == "json":
        bad = orjson.dumps([*spans[:-1], {**spans[-1], "id": "nope"}])
        r = post(server, bad, content_type)
        assert r.status == 400
        assert "spans[999].id" in r.data.decode()


@pytest.mark.parametrize(
    ("body", "version", "content_type", "status", "words", "protocol", "reason"),
    [
        (b"not json", 2, "application/json", 400, ["invalid JSON"], "zipkin_json", "invalid_json"),
        (
            orjson.dumps(SPAN),
            2,
            "application/json",
            400,
            ["JSON array of spans", "object"],
            "zipkin_json",
            "invalid_json",
        ),
        (
            orjson.dumps([{**SPAN, "traceId": "zzzzzzzzzzzzzzzz"}]),
            2,
            "application/json",
            400,
            ["spans[0].traceId", "hex"],
            "zipkin_json",
            "invalid_json",
        ),
        (
            orjson.dumps([SPAN, {**SPAN, "id": "352bff9a"}]),
            2,
            "application/json",
            400,
            ["spans[1].id", "16 hex characters"],
            "zipkin_json",
            "invalid_json",
        ),
        (
            orjson.dumps([{**SPAN, "timestamp": "yesterday"}]),
            2,
            "application/json",
            400,
            ["spans[0].timestamp"],
            "zipkin_json",
            "invalid_json",
        ),
        (
            b"\x0a\xff\xff\xff\xff\x0f",
            2,
            "application/x-protobuf",
            400,
            ["invalid Zipkin protobuf"],
            "zipkin_proto",
            "invalid_protobuf",
        ),
        (
            zipkin_pb2.ListOfSpans(
                spans=[zipkin_pb2.Span(trace_id=b"\x01" * 3, id=b"\x01" * 8)]
            ).SerializeToString(),
            2,
            "application/x-protobuf",
            400,
            ["spans[0].trace_id", "8 or 16 bytes"],
            "zipkin_proto",
            "invalid_protobuf",
        ),
        (b"[1, 2]", 1, "application/json", 400, ["spans[0]"], "zipkin_v1_json", "invalid_json"),
        (b"hello", 2, "text/plain", 415, ["text/plain"], "zipkin_json", "bad_content_type"),
        (
            b"\x0c\x00\x00",
            1,
            "application/x-thrift",
            415,
            ["thrift is not supported"],
            "zipkin_v1_json",
            "bad_content_type",
        ),
    ],
)
def test_bad_input(
    server: Server,
    baseline: str,
    body: bytes,
    version: int,
    content_type: str,
    status: int,
    words: list[str],
    protocol: str,
    reason: str,
) -> None:
    before = server.metric(REFUSED, protocol=protocol, reason=reason)
    r = post(server, body, content_type, version=version)
    assert r.status == status
    assert r.headers["Content-Type"].startswith("text/plain")
    message = r.data.decode()
    for word in words:
        assert word in message
    assert server.metric(REFUSED, protocol=protocol, reason=reason) == before + 1
    intact(server, baseline)


def test_gzip_that_is_not_gzip(server: Server, baseline: str) -> None:
    before = server.metric(REFUSED, protocol="zipkin_json", reason="bad_encoding")
    r = post(server, orjson.dumps([fresh()]), headers={"Content-Encoding": "gzip"})
    assert r.status == 400
    assert "invalid gzip body" in r.data.decode()
    assert server.metric(REFUSED, protocol="zipkin_json", reason="bad_encoding") == before + 1
    intact(server, baseline)


def test_body_over_limit(server: Server, baseline: str) -> None:
    before = server.metric(REFUSED, protocol="zipkin_json", reason="too_large")
    r = post(server, b"[" + b" " * (17 * 2**20) + b"]")
    assert r.status == 413
    assert "limit" in r.data.decode()
    assert server.metric(REFUSED, protocol="zipkin_json", reason="too_large") == before + 1
    intact(server, baseline)


def test_invalid_spans_are_rejected_by_the_distributor(server: Server, baseline: str) -> None:
    zero = fresh(traceId="0" * 32)
    r = post(server, orjson.dumps([zero]))
    assert r.status == 400
    assert "all 1 spans were rejected" in r.data.decode()
    assert server.metric(REFUSED, protocol="zipkin_json", reason="all_spans_invalid") >= 1
    good = fresh()
    r = post(server, orjson.dumps([good, zero, fresh(duration=-3)]))
    assert r.status == 202  # Zipkin has no partial success: the good span is kept
    assert list(read_trace(server, good["traceId"])) == [good["id"]]
    intact(server, baseline)


@pytest.fixture(scope="module")
def mt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("zmt") / "data", {"multitenancy_enabled": True}).start()
    yield srv
    srv.stop()


def test_tenant_required_when_multitenant(mt_server: Server) -> None:
    span = fresh()
    r = post(mt_server, orjson.dumps([span]))
    assert r.status == 401
    assert "no org id" in r.data.decode()
    assert mt_server.metric(REFUSED, protocol="zipkin_json", reason="invalid_tenant") == 1
    r = post(mt_server, orjson.dumps([span]), headers={"X-Scope-OrgID": "acme"})
    assert r.status == 202
    assert read_trace(mt_server, span["traceId"], tenant="acme")
    r = mt_server.get(f"/api/traces/{span['traceId']}", headers={"X-Scope-OrgID": "globex"})
    assert r.status == 404
