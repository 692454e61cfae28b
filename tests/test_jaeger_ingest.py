"""Jaeger ingest end to end: real clients → the real server → read back via the Tempo API.

Clients: the OpenTelemetry Python Jaeger thrift exporter 1.21 (agent UDP compact and collector
HTTP) and the OpenTracing ``jaeger-client`` (agent UDP compact), both run from a separate venv
(tests/jaeger_client_env.py); a grpcio client sending ``PostSpans`` built from our api_v2
descriptors; thriftpy2-encoded ``emitBatch`` datagrams in binary and compact protocol. Then bad
input on every Jaeger front door.
"""

from __future__ import annotations

import base64
import gzip
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import orjson
import pytest

import jaeger_client_env
from conftest import HOST, Server
from test_jaeger_translate import (
    encode_batch,
    encode_emit_batch,
    id64,
    id128,
    kv,
    post_spans,
    process,
    proto_span,
    tag,
    tags,
    thrift_batch,
    thrift_span,
)
from threadline.model import jaeger as tj

POST_SPANS = "/jaeger.api_v2.CollectorService/PostSpans"
REFUSED = "threadline_receiver_refused_requests_total"
THRIFT = {"Content-Type": "application/x-thrift"}


# ---------------------------------------------------------------------------------------------
# helpers


def usec(ns: int) -> int:
    """Nanoseconds rounded to microseconds as the OpenTelemetry Jaeger exporter does."""
    return (ns + 500) // 1000


def unb64(value: str) -> str:
    return base64.b64decode(value).hex()


def value_of(v: dict[str, Any]) -> Any:
    (kind, value), *_ = v.items()
    return int(value) if kind == "intValue" else value


def attr_map(kvs: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: value_of(a["value"]) for a in kvs or []}


def read_spans(server: Server, trace_hex: str, want: int, timeout: float = 15) -> dict[str, Any]:
    """span id hex → span JSON (plus ``_resource`` and ``_scope``), waiting for ``want`` spans."""
    deadline = time.monotonic() + timeout
    got: dict[str, Any] = {}
    while True:
        r = server.get(f"/api/traces/{trace_hex}")
        if r.status == 200:
            got = {}
            for batch in orjson.loads(r.data)["batches"]:
                resource = attr_map(batch["resource"].get("attributes"))
                for ss in batch["scopeSpans"]:
                    for span in ss["spans"]:
                        span["_resource"] = resource
                        span["_scope"] = ss.get("scope", {})
                        got[unb64(span["spanId"])] = span
            if len(got) >= want:
                return got
        if time.monotonic() > deadline:
            raise AssertionError(f"trace {trace_hex}: {len(got)} of {want} spans arrived")
        time.sleep(0.1)


def wait_for(check: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def send_udp(port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (HOST, port))


@pytest.fixture(scope="session")
def client_env() -> None:
    try:
        jaeger_client_env.python()
    except jaeger_client_env.ClientEnvError as e:
        pytest.skip(f"the old Jaeger client libraries cannot be installed here: {e}")


@pytest.fixture(scope="module")
def post_spans_call(server: Server) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    with grpc.insecure_channel(f"{HOST}:{server.jaeger_grpc_port}") as channel:
        yield channel.unary_unary(POST_SPANS)


def http_post(server: Server, body: bytes, headers: dict[str, str], query: str = "") -> Any:
    url = f"http://{HOST}:{server.jaeger_http_port}/api/traces{query}"
    return server.request("POST", url, body=body, headers=headers)


# ---------------------------------------------------------------------------------------------
# the OpenTelemetry Python Jaeger exporter (thrift), agent UDP and collector HTTP


@pytest.mark.parametrize("via", ["agent", "collector"])
def test_otel_jaeger_exporter(server: Server, client_env: None, via: str) -> None:
    service = f"otel-jaeger-{via}"
    job: dict[str, Any] = {"client": "otel", "via": via, "service": service, "host": HOST}
    if via == "agent":
        job["port"] = server.jaeger_compact_port
    else:
        job["endpoint"] = f"http://{HOST}:{server.jaeger_http_port}/api/traces"
    sent = jaeger_client_env.send(job)["spans"]
    assert len(sent) == 3
    (trace_id,) = {s["trace_id"] for s in sent}
    assert int(trace_id[0], 16) >= 8 and int(trace_id[16], 16) >= 8  # negative i64 halves
    got = read_spans(server, trace_id, len(sent))
    assert set(got) == {s["span_id"] for s in sent}
    for s in sent:
        span = got[s["span_id"]]
        assert unb64(span["traceId"]) == trace_id
        assert span["name"] == s["name"]
        # the exporter sends microseconds, rounded
        start_us = usec(s["start_ns"])
        assert int(span["startTimeUnixNano"]) == start_us * 1000
        duration_us = usec(s["end_ns"] - s["start_ns"])
        assert int(span["endTimeUnixNano"]) == (start_us + duration_us) * 1000
        assert span["kind"] == f"SPAN_KIND_{s['kind']}"
        if s["parent_id"]:
            assert unb64(span["parentSpanId"]) == s["parent_id"]
        else:
            assert "parentSpanId" not in span
        status = span.get("status", {})
        if s["status"] == "ERROR":
            assert status == {"code": "STATUS_CODE_ERROR", "message": s["status_message"]}
        else:
            assert status.get("code", "STATUS_CODE_UNSET") == "STATUS_CODE_UNSET"
        assert span["_scope"] == {"name": "tests.jaeger", "version": "2.0.1"}
        resource = span["_resource"]
        assert resource["service.name"] == service
        assert resource["deployment.environment"] == "test"
        assert resource["telemetry.sdk.language"] == "python"
        # only the span's own attributes remain, types kept
        assert attr_map(span.get("attributes")) == s["attributes"]
    root = got[next(s["span_id"] for s in sent if s["parent_id"] is None)]
    typed = {a["key"]: a["value"] for a in root["attributes"]}
    assert typed["http.status_code"] == {"intValue": "200"}
    assert typed["sampled.ratio"] == {"doubleValue": 0.25}
    assert typed["cache.hit"] == {"boolValue": True}
    assert typed["http.method"] == {"stringValue": "GET"}
    (event,) = root["events"]
    (sent_event,) = next(s for s in sent if s["parent_id"] is None)["events"]
    assert event["name"] == "validated"
    assert int(event["timeUnixNano"]) == usec(sent_event["time_ns"]) * 1000
    assert attr_map(event["attributes"]) == {"items": 3, "note": "ok"}


# ---------------------------------------------------------------------------------------------
# jaeger-client (OpenTracing), agent UDP compact


def test_jaeger_client_opentracing(server: Server, client_env: None) -> None:
    job = {
        "client": "opentracing",
        "service": "ot-legacy",
        "host": HOST,
        "port": server.jaeger_compact_port,
    }
    report = jaeger_client_env.send(job)
    sent = report["spans"]
    (trace_id,) = {s["trace_id"] for s in sent}
    assert trace_id[:16] == "0" * 16  # jaeger-client makes 64-bit trace ids
    got = read_spans(server, trace_id[16:], len(sent))  # the 16-hex form finds it too
    child, root = sent
    for s in sent:
        span = got[s["span_id"]]
        assert span["name"] == s["name"]
        assert int(span["startTimeUnixNano"]) == s["start_us"] * 1000
        assert int(span["endTimeUnixNano"]) == (s["start_us"] + s["duration_us"]) * 1000
        resource = span["_resource"]
        assert resource["service.name"] == "ot-legacy"
        assert resource["host.name"] == report["process_tags"]["hostname"]
        assert resource["opencensus.exporterversion"] == "Jaeger-Python-4.8.0"
    r, c = got[root["span_id"]], got[child["span_id"]]
    assert "parentSpanId" not in r
    assert unb64(c["parentSpanId"]) == root["span_id"]
    assert r["kind"] == "SPAN_KIND_SERVER"
    assert c["kind"] == "SPAN_KIND_CLIENT"
    # a 503 on a server span is an error; error=true is an error
    assert r["status"] == {"code": "STATUS_CODE_ERROR"}
    assert c["status"] == {"code": "STATUS_CODE_ERROR"}
    assert attr_map(c["attributes"]) == {"retry.ratio": 0.5}
    root_attrs = attr_map(r["attributes"])
    assert root_attrs["http.status_code"] == 503
    assert root_attrs["sampler.type"] == "const"
    events = sorted((e["name"], attr_map(e.get("attributes"))) for e in r["events"])
    assert events == [("cache miss", {"key.count": 2}), ("retrying", {})]


# ---------------------------------------------------------------------------------------------
# gRPC PostSpans (grpcio + our api_v2 descriptors)


def test_grpc_post_spans(server: Server, post_spans_call: grpc.UnaryUnaryMultiCallable) -> None:
    trace = bytes.fromhex("f1e2d3c4b5a697880123456789abcdef")
    now = time.time_ns() // 1000 * 1000
    ts = {"seconds": now // 10**9, "nanos": now % 10**9}
    root = proto_span(
        0xA1,
        trace_id=trace,
        operation_name="GET /grpc",
        start_time=ts,
        duration={"seconds": 0, "nanos": 2_000_000},
        tags=[kv("span.kind", "server"), kv("http.status_code", 200), kv("otel.status_code", "OK")],
    )
    child = proto_span(
        0xB2,
        trace_id=trace,
        operation_name="SELECT",
        start_time=ts,
        duration={"seconds": 0, "nanos": 1_000_000},
        references=[tj.API_V2["SpanRef"](trace_id=trace, span_id=(0xA1).to_bytes(8, "big"))],
        tags=[kv("span.kind", "client"), kv("db.rows", 3), kv("db.ok", True)],
        logs=[tj.API_V2["Log"](timestamp=ts, fields=[kv("event", "fetched"), kv("bytes", 10)])],
        process=process("db-proxy", kv("region", "eu")),
    )
    response = post_spans_call(post_spans([root, child], process("grpc-frontend")), timeout=10)
    assert response == b""  # an empty PostSpansResponse
    got = read_spans(server, trace.hex(), 2)
    r, c = got[(0xA1).to_bytes(8, "big").hex()], got[(0xB2).to_bytes(8, "big").hex()]
    assert (r["name"], r["kind"], r["status"]) == (
        "GET /grpc",
        "SPAN_KIND_SERVER",
        {"code": "STATUS_CODE_OK"},
    )
    assert int(r["startTimeUnixNano"]) == now
    assert int(r["endTimeUnixNano"]) == now + 2_000_000
    assert r["_resource"] == {"service.name": "grpc-frontend"}
    assert c["_resource"] == {"service.name": "db-proxy", "region": "eu"}
    assert unb64(c["parentSpanId"]) == (0xA1).to_bytes(8, "big").hex()
    assert attr_map(c["attributes"]) == {"db.rows": 3, "db.ok": True}
    assert c["events"][0]["name"] == "fetched"


def test_grpc_tenant_metadata_is_read(server: Server) -> None:
    # multitenancy is off here: any org id header is accepted and ignored
    with grpc.insecure_channel(f"{HOST}:{server.jaeger_grpc_port}") as channel:
        call = channel.unary_unary(POST_SPANS)
        data = post_spans([proto_span(1, trace_id=b"\x05" * 16)], process("p"))
        assert call(data, metadata=[("x-scope-orgid", "acme")], timeout=10) == b""


# ---------------------------------------------------------------------------------------------
# agent UDP with thriftpy2-encoded emitBatch (binary and compact protocols)


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_agent_udp_emit_batch(server: Server, protocol: str) -> None:
    high, low = -0x0123456789ABCDEF, 0x7EDCBA9876543210
    trace_hex = id128(high, low).hex()
    spans = [
        thrift_span(
            traceIdHigh=high,
            traceIdLow=low,
            spanId=-77,
            operationName=f"udp {protocol}",
            startTime=int(time.time() * 1e6),
            duration=900,
            tags=[tag("span.kind", "consumer"), tag("payload", b"\x00\x01"), tag("n", -5)],
        )
    ]
    batch = thrift_batch(spans, service=f"udp-{protocol}", ptags=tags(hostname="agent-host"))
    port = server.jaeger_binary_port if protocol == "binary" else server.jaeger_compact_port
    send_udp(port, encode_emit_batch(batch, protocol))
    (span,) = read_spans(server, trace_hex, 1).values()
    assert span["name"] == f"udp {protocol}"
    assert unb64(span["spanId"]) == id64(-77).hex()
    assert span["kind"] == "SPAN_KIND_CONSUMER"
    assert span["_resource"] == {"service.name": f"udp-{protocol}", "host.name": "agent-host"}
    typed = {a["key"]: a["value"] for a in span["attributes"]}
    assert typed == {"payload": {"bytesValue": "AAE="}, "n": {"intValue": "-5"}}


# ---------------------------------------------------------------------------------------------
# thrift over HTTP details


def test_http_accepts_both_content_types_gzip_and_a_query_string(server: Server) -> None:
    for i, (ctype, encoding, query) in enumerate(
        [
            ("application/x-thrift", None, "?format=jaeger.thrift"),
            ("application/vnd.apache.thrift.binary", None, ""),
            ("application/x-thrift", "gzip", ""),
        ]
    ):
        batch = thrift_batch([thrift_span(traceIdHigh=0x10 + i, startTime=int(time.time() * 1e6))])
        body = encode_batch(batch)
        headers = {"Content-Type": ctype}
        if encoding:
            body = gzip.compress(body)
            headers["Content-Encoding"] = encoding
        r = http_post(server, body, headers, query)
        assert r.status == 202, r.data
        assert r.data == b""
        read_spans(server, id128(0x10 + i, 2).hex(), 1)


# ---------------------------------------------------------------------------------------------
# malformed payloads on every receiver


def test_http_malformed_payloads(server: Server) -> None:
    before = server.metric(REFUSED, protocol="jaeger_thrift_http", reason="invalid_thrift")
    good = encode_batch(thrift_batch([thrift_span()]))
    for body, message in [
        (b"this is not thrift", "cannot decode the request body: invalid Jaeger thrift"),
        (good[: len(good) // 2], "truncated"),
        (b"", "truncated"),
        (good + b"junk", "bytes left after the Batch"),
    ]:
        r = http_post(server, body, THRIFT)
        assert r.status == 400
        assert message in r.data.decode()
    after = server.metric(REFUSED, protocol="jaeger_thrift_http", reason="invalid_thrift")
    assert after == before + 4


def test_http_wrong_content_type(server: Server) -> None:
    good = encode_batch(thrift_batch([thrift_span()]))
    for ctype in ("application/json", "application/vnd.apache.thrift.compact", "text/plain"):
        r = http_post(server, good, {"Content-Type": ctype})
        assert r.status == 415
        assert "application/x-thrift" in r.data.decode()
    assert server.metric(REFUSED, protocol="jaeger_thrift_http", reason="bad_content_type") >= 3


def test_http_all_spans_invalid(server: Server) -> None:
    body = encode_batch(thrift_batch([thrift_span(traceIdHigh=0, traceIdLow=0)]))
    r = http_post(server, body, THRIFT)
    assert r.status == 400
    assert "rejected" in r.data.decode()


def test_http_body_over_the_limit(server: Server) -> None:
    # default limit 16 MiB; a gzip bomb is stopped at the limit
    bomb = gzip.compress(bytes(20 * 2**20))
    r = http_post(server, bomb, {**THRIFT, "Content-Encoding": "gzip"})
    assert r.status == 413


def test_grpc_malformed_payloads(
    server: Server, post_spans_call: grpc.UnaryUnaryMultiCallable
) -> None:
    for data, message in [
        (b"\x0a\xff\xff\xff\x0f", "invalid jaeger.api_v2.PostSpansRequest protobuf"),
        (post_spans([proto_span(trace_id=b"xyz")]), "trace_id must be 16 bytes, got 3"),
        (post_spans([proto_span(trace_id=bytes(16))]), "rejected"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            post_spans_call(data, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in (err.value.details() or "")
    assert server.metric(REFUSED, protocol="jaeger_grpc", reason="invalid_protobuf") >= 2
    # still working
    ok = post_spans([proto_span(7, trace_id=b"\x07" * 16)], process("after-bad"))
    assert post_spans_call(ok, timeout=10) == b""
    read_spans(server, (b"\x07" * 16).hex(), 1)


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_udp_garbage_is_dropped_and_counted(server: Server, protocol: str) -> None:
    port = server.jaeger_binary_port if protocol == "binary" else server.jaeger_compact_port
    label = f"jaeger_agent_{protocol}"
    before = server.metric(REFUSED, protocol=label, reason="invalid_thrift")
    good = encode_emit_batch(thrift_batch([thrift_span()]), protocol)
    garbage = [
        b"",
        b"\xff" * 100,
        b"random garbage datagram",
        good[: len(good) - 5],
        encode_emit_batch(thrift_batch([]), protocol, "emitZipkinBatch"),
        encode_batch(thrift_batch([thrift_span()]), protocol),  # a bare Batch, no call message
    ]
    send_udp(port, *garbage)
    wait_for(
        lambda: (
            server.metric(REFUSED, protocol=label, reason="invalid_thrift") == before + len(garbage)
        ),
        what=f"{len(garbage)} refused datagrams",
    )
    # the receiver keeps working
    high = 0x3300 + (protocol == "binary")
    batch = thrift_batch(
        [thrift_span(traceIdHigh=high, startTime=int(time.time() * 1e6))], service="after-garbage"
    )
    send_udp(port, encode_emit_batch(batch, protocol))
    read_spans(server, id128(high, 2).hex(), 1)
    assert server.get("/ready").status == 200


# ---------------------------------------------------------------------------------------------
# multitenancy


@pytest.fixture(scope="module")
def mt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("jmt") / "data", {"multitenancy_enabled": True}).start()
    yield srv
    srv.stop()


def test_multitenancy(mt_server: Server) -> None:
    body = encode_batch(thrift_batch([thrift_span(traceIdHigh=0x4400)], service="tenant-svc"))
    assert http_post(mt_server, body, THRIFT).status == 401
    r = http_post(mt_server, body, {**THRIFT, "X-Scope-OrgID": "acme"})
    assert r.status == 202
    trace_hex = id128(0x4400, 2).hex()
    assert mt_server.get(f"/api/traces/{trace_hex}", {"X-Scope-OrgID": "acme"}).status == 200
    assert mt_server.get(f"/api/traces/{trace_hex}", {"X-Scope-OrgID": "other"}).status == 404
    with grpc.insecure_channel(f"{HOST}:{mt_server.jaeger_grpc_port}") as channel:
        call = channel.unary_unary(POST_SPANS)
        data = post_spans([proto_span(1, trace_id=b"\x45" * 16)], process("p"))
        with pytest.raises(grpc.RpcError) as err:
            call(data, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert call(data, metadata=[("x-scope-orgid", "acme")], timeout=10) == b""
    # UDP datagrams cannot name a tenant: refused and counted
    for protocol, port in (
        ("compact", mt_server.jaeger_compact_port),
        ("binary", mt_server.jaeger_binary_port),
    ):
        send_udp(port, encode_emit_batch(thrift_batch([thrift_span()]), protocol))
        wait_for(
            lambda p=protocol: (
                mt_server.metric(REFUSED, protocol=f"jaeger_agent_{p}", reason="no_tenant") == 1
            ),
            what=f"{protocol} datagram refused for lack of tenant",
        )


def test_jaeger_receivers_off_when_port_is_zero(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = Server(tmp_path_factory.mktemp("joff") / "data")
    # port 0 turns a receiver off (the fixture passes the ports as CLI flags)
    srv.jaeger_http_port = srv.jaeger_grpc_port = 0
    srv.jaeger_compact_port = srv.jaeger_binary_port = 0
    srv.start()
    try:
        text = srv.log()
        assert "jaeger_thrift_http" not in text
        assert "jaeger_agent_compact" not in text
        assert srv.get("/ready").status == 200
    finally:
        srv.stop()
