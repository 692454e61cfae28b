"""Bad input on every OTLP front door: a clear error, a counter, and no harm to other data."""

from __future__ import annotations

import gzip

import grpc
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from conftest import Server
from otel_helpers import make_trace, send, trace_hex

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE_A = bytes(range(1, 17))


def request_with(spans: list[dict[str, object]], service: str = "bad-input") -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    ss = rs.scope_spans.add()
    for fields in spans:
        span = ss.spans.add()
        span.trace_id = TRACE_A
        span.span_id = b"\x01" * 8
        span.name = "op"
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_000_500_000_000
        for k, v in fields.items():
            setattr(span, k, v)
    return req.SerializeToString()


@pytest.fixture(scope="module")
def grpc_call(server: Server) -> grpc.UnaryUnaryMultiCallable:
    channel = grpc.insecure_channel(server.grpc_target)
    return channel.unary_unary(EXPORT)


@pytest.fixture(scope="module")
def baseline(server: Server) -> str:
    """A healthy trace pushed first; every test checks it is still intact."""
    spans = make_trace(service="bystander")
    send(GrpcExporter(endpoint=server.grpc_target, insecure=True), spans)
    return trace_hex(spans)


def bystander_intact(server: Server, trace: str) -> None:
    r = server.get(f"/api/traces/{trace}")
    assert r.status == 200
    names = {
        s["name"]
        for b in orjson.loads(r.data)["batches"]
        for ss in b["scopeSpans"]
        for s in ss["spans"]
    }
    assert names == {"GET /checkout", "db query 0", "db query 1", "db query 2"}


def post(server: Server, body: bytes, content_type: str, **headers: str):  # type: ignore[no-untyped-def]
    return server.request(
        "POST",
        server.otlp_http + "/v1/traces",
        body=body,
        headers={"Content-Type": content_type, **headers},
    )


def test_invalid_protobuf_http(server: Server, baseline: str) -> None:
    before = server.metric("threadline_receiver_refused_requests_total", reason="invalid_protobuf")
    r = post(server, b"\xff\xff\xff\xff not protobuf", "application/x-protobuf")
    assert r.status == 400
    # a google.rpc.Status: field 2 holds the message
    assert b"invalid OTLP protobuf" in r.data
    after = server.metric("threadline_receiver_refused_requests_total", reason="invalid_protobuf")
    assert after == before + 1
    bystander_intact(server, baseline)


def test_invalid_protobuf_grpc(server: Server, grpc_call, baseline: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        grpc_call(b"\x0a\xff\xff\xff\xff\x0f")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid OTLP protobuf" in err.value.details()
    assert (
        server.metric(
            "threadline_receiver_refused_requests_total",
            protocol="otlp_grpc",
            reason="invalid_protobuf",
        )
        >= 1
    )
    bystander_intact(server, baseline)


def test_invalid_json(server: Server, baseline: str) -> None:
    r = post(server, b'{"resourceSpans": [', "application/json")
    assert r.status == 400
    assert "invalid JSON" in orjson.loads(r.data)["message"]
    r = post(
        server,
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
        "application/json",
    )
    assert r.status == 400
    msg = orjson.loads(r.data)["message"]
    assert "traceId" in msg and "hex" in msg
    assert server.metric("threadline_receiver_refused_requests_total", reason="invalid_json") >= 2
    bystander_intact(server, baseline)


def test_wrong_content_type(server: Server, baseline: str) -> None:
    r = post(server, b"hello", "text/plain")
    assert r.status == 415
    assert "text/plain" in orjson.loads(r.data)["message"]
    assert (
        server.metric("threadline_receiver_refused_requests_total", reason="bad_content_type") >= 1
    )
    bystander_intact(server, baseline)


def test_body_over_limit(server: Server, grpc_call, baseline: str) -> None:  # type: ignore[no-untyped-def]
    big = request_with([{"name": "x" * (17 * 2**20)}])
    r = post(server, big, "application/x-protobuf")
    assert r.status == 413
    assert b"over the limit" in r.data
    # a small gzip body that inflates past the limit is refused too
    r = post(server, gzip.compress(big), "application/x-protobuf", **{"Content-Encoding": "gzip"})
    assert r.status == 413
    with pytest.raises(grpc.RpcError) as err:
        grpc_call(big)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert server.metric("threadline_receiver_refused_requests_total", reason="too_large") >= 3
    bystander_intact(server, baseline)


@pytest.mark.parametrize(
    ("fields", "reason", "words"),
    [
        ({"trace_id": b"\x01\x02\x03"}, "invalid_trace_id", "trace id"),
        ({"span_id": b"\x01\x02"}, "invalid_span_id", "span id"),
        ({"span_id": b"\x00" * 8}, "invalid_span_id", "span id"),
        ({"end_time_unix_nano": 1_600_000_000_000_000_000}, "end_before_start", "end"),
    ],
)
def test_invalid_spans_partial_success(
    server: Server, grpc_call, baseline: str, fields: dict[str, object], reason: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    before = server.metric("threadline_discarded_spans_total", reason=reason)
    good = {"span_id": b"\x07" * 8, "name": f"good-{reason}"}
    body = request_with([fields, good])
    # gRPC: one span accepted, one rejected with a message naming the problem
    resp = ExportTraceServiceResponse.FromString(grpc_call(body))
    assert resp.partial_success.rejected_spans == 1
    assert words in resp.partial_success.error_message
    # HTTP protobuf: same
    r = post(server, body, "application/x-protobuf")
    assert r.status == 200
    http_resp = ExportTraceServiceResponse.FromString(r.data)
    assert http_resp.partial_success.rejected_spans == 1
    # all spans invalid: 400
    r = post(server, request_with([fields]), "application/x-protobuf")
    assert r.status == 400
    assert words.encode() in r.data
    assert server.metric("threadline_discarded_spans_total", reason=reason) == before + 3
    # the good span of the same request is stored
    trace = server.get("/api/traces/" + TRACE_A.hex())
    assert trace.status == 200
    assert f"good-{reason}".encode() in trace.data
    bystander_intact(server, baseline)


def test_http_json_partial_success(server: Server) -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0102",
                                "spanId": "0000000000000009",
                                "name": "short-id",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            },
                            {
                                "traceId": TRACE_A.hex(),
                                "spanId": "0000000000000009",
                                "name": "fine",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            },
                        ]
                    }
                ],
            }
        ]
    }
    r = post(server, orjson.dumps(doc), "application/json")
    assert r.status == 200
    body = orjson.loads(r.data)
    assert body["partialSuccess"]["rejectedSpans"] == "1"
    assert "trace id" in body["partialSuccess"]["errorMessage"]
