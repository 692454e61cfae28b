"""One trace whose spans arrive over OTLP, Zipkin and Jaeger, read back as one trace through
the Tempo, Jaeger and Zipkin query APIs."""

from __future__ import annotations

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from test_jaeger_translate import encode_batch, tags, thrift_batch, thrift_span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE_HIGH, TRACE_LOW = 0x1111, 0x2222
TRACE_HEX = f"{TRACE_HIGH:016x}{TRACE_LOW:016x}"
ROOT, MIDDLE, LEAF = "00000000000000a1", "00000000000000b2", "00000000000000c3"
T0_US = 1_700_000_000_000_000


@pytest.fixture(scope="module")
def srv(server: Server) -> Server:
    # root over OTLP/gRPC
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "gateway"
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id = bytes.fromhex(TRACE_HEX), bytes.fromhex(ROOT)
    span.name, span.kind = "GET /order", 2
    span.start_time_unix_nano = T0_US * 1000
    span.end_time_unix_nano = (T0_US + 50_000) * 1000
    grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)(req.SerializeToString())
    # middle over Zipkin v2 JSON
    zipkin = [
        {
            "traceId": TRACE_HEX,
            "id": MIDDLE,
            "parentId": ROOT,
            "name": "place order",
            "kind": "SERVER",
            "timestamp": T0_US + 1_000,
            "duration": 40_000,
            "localEndpoint": {"serviceName": "orders"},
            "tags": {"order.id": "42"},
        }
    ]
    r = server.request(
        "POST",
        f"http://127.0.0.1:{server.zipkin_port}/api/v2/spans",
        body=orjson.dumps(zipkin),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 202, r.data
    # leaf over Jaeger thrift HTTP
    leaf = thrift_span(
        traceIdHigh=TRACE_HIGH,
        traceIdLow=TRACE_LOW,
        spanId=int(LEAF, 16),
        parentSpanId=int(MIDDLE, 16),
        operationName="INSERT orders",
        startTime=T0_US + 2_000,
        duration=10_000,
        tags=tags(span__kind="client", db__system="postgresql"),
    )
    r = server.request(
        "POST",
        f"http://127.0.0.1:{server.jaeger_http_port}/api/traces",
        body=encode_batch(thrift_batch([leaf], service="orders-db-client")),
        headers={"Content-Type": "application/x-thrift"},
    )
    assert r.status == 202, r.data
    return server


def test_tempo_api_sees_one_trace(srv: Server) -> None:
    doc = orjson.loads(srv.get(f"/api/v2/traces/{TRACE_HEX}").data)
    services = {
        next(
            a["value"]["stringValue"]
            for a in rs["resource"]["attributes"]
            if a["key"] == "service.name"
        )
        for rs in doc["trace"]["resourceSpans"]
    }
    assert services == {"gateway", "orders", "orders-db-client"}


def test_jaeger_api_tree(srv: Server) -> None:
    (trace,) = orjson.loads(srv.get(f"/jaeger/api/traces/{TRACE_HEX}").data)["data"]
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert set(spans) == {ROOT, MIDDLE, LEAF}
    assert spans[ROOT]["references"] == []
    assert spans[MIDDLE]["references"][0]["spanID"] == ROOT
    assert spans[LEAF]["references"][0]["spanID"] == MIDDLE
    names = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
    assert names == {"gateway", "orders", "orders-db-client"}
    leaf_tags = {t["key"]: t["value"] for t in spans[LEAF]["tags"]}
    assert leaf_tags["span.kind"] == "client" and leaf_tags["db.system"] == "postgresql"
    assert spans[MIDDLE]["startTime"] == T0_US + 1_000


def test_zipkin_api_tree(srv: Server) -> None:
    spans = orjson.loads(srv.get(f"/zipkin/api/v2/trace/{TRACE_HEX}").data)
    by_id = {s["id"]: s for s in spans}
    assert by_id[MIDDLE]["parentId"] == ROOT and by_id[LEAF]["parentId"] == MIDDLE
    assert by_id[MIDDLE]["tags"]["order.id"] == "42"
    assert by_id[LEAF]["kind"] == "CLIENT" and by_id[ROOT]["kind"] == "SERVER"
    assert [s["localEndpoint"]["serviceName"] for s in spans] == [
        "gateway",
        "orders",
        "orders-db-client",
    ]
