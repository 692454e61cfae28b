"""OTLP ingest with the official exporters, read back through the Tempo trace-by-ID API."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from conftest import Server
from otel_helpers import make_trace, send, span_ids, trace_hex


def json_spans(doc: dict[str, Any], key: str = "batches") -> list[dict[str, Any]]:
    batches = doc[key] if key == "batches" else doc["trace"]["resourceSpans"]
    out = []
    for rs in batches:
        service = next(
            a["value"]["stringValue"]
            for a in rs["resource"]["attributes"]
            if a["key"] == "service.name"
        )
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                out.append({**span, "_service": service, "_scope": ss.get("scope", {})})
    return out


def span_id_int(span: dict[str, Any]) -> int:
    return int.from_bytes(base64.b64decode(span["spanId"]), "big")


@pytest.fixture(scope="module")
def grpc_exporter(server: Server) -> GrpcExporter:
    return GrpcExporter(endpoint=server.grpc_target, insecure=True)


@pytest.fixture(scope="module")
def http_exporter(server: Server) -> HttpExporter:
    return HttpExporter(endpoint=server.otlp_http + "/v1/traces")


@pytest.mark.parametrize("via", ["grpc", "http"])
def test_exported_trace_reads_back_identically(
    server: Server, grpc_exporter: GrpcExporter, http_exporter: HttpExporter, via: str
) -> None:
    spans = make_trace(service=f"svc-{via}")
    send(grpc_exporter if via == "grpc" else http_exporter, spans)
    r = server.get(f"/api/traces/{trace_hex(spans)}")
    assert r.status == 200, r.data
    got = json_spans(orjson.loads(r.data))
    assert {span_id_int(s) for s in got} == span_ids(spans)
    by_id = {span_id_int(s): s for s in got}
    for sent in spans:
        s = by_id[sent.context.span_id]
        assert s["name"] == sent.name
        assert s["_service"] == f"svc-{via}"
        assert s["_scope"] == {"name": "tests.tracer", "version": "1.2.3"}
        assert int(s["startTimeUnixNano"]) == sent.start_time
        assert int(s["endTimeUnixNano"]) == sent.end_time
        assert s["kind"] == {1: "SPAN_KIND_SERVER", 2: "SPAN_KIND_CLIENT"}[sent.kind.value]
        if sent.parent is None:
            assert "parentSpanId" not in s
        else:
            assert span_id_int({"spanId": s["parentSpanId"]}) == sent.parent.span_id
    root = next(s for s in got if s["name"] == "GET /checkout")
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    assert attrs["http.method"] == {"stringValue": "GET"}
    assert attrs["http.status_code"] == {"intValue": "200"}
    assert attrs["sampled.ratio"] == {"doubleValue": 0.25}
    assert attrs["cache.hit"] == {"boolValue": True}
    assert attrs["tags"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert root["events"][0]["name"] == "validated"
    assert root["events"][0]["attributes"] == [{"key": "items", "value": {"intValue": "3"}}]
    failed = next(s for s in got if s["name"] == "db query 2")
    assert failed["status"] == {"code": "STATUS_CODE_ERROR", "message": "timeout"}


def test_protobuf_answers_match_the_spans(server: Server, grpc_exporter: GrpcExporter) -> None:
    spans = make_trace(service="proto")
    send(grpc_exporter, spans)
    tid = trace_hex(spans)
    r = server.get(f"/api/traces/{tid}", headers={"Accept": "application/protobuf"})
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/protobuf")
    data = TracesData.FromString(r.data)
    got = {
        int.from_bytes(s.span_id, "big")
        for rs in data.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
    assert got == span_ids(spans)
    # v2: TraceByIDResponse{trace=1, metrics=2}; field 1 is wire-compatible with TracesData
    r2 = server.get(f"/api/v2/traces/{tid}", headers={"Accept": "application/protobuf"})
    assert r2.status == 200
    resp = _parse_trace_by_id_response(r2.data)
    assert TracesData.FromString(resp[1]).resource_spans == data.resource_spans


def _parse_trace_by_id_response(raw: bytes) -> dict[int, bytes]:
    """Top-level length-delimited fields of a TraceByIDResponse."""
    fields, pos = {}, 0
    while pos < len(raw):
        tag = raw[pos]
        pos += 1
        length, shift = 0, 0
        while True:
            b = raw[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        fields[tag >> 3] = raw[pos : pos + length]
        pos += length
    return fields


def test_v2_json_shape(server: Server, grpc_exporter: GrpcExporter) -> None:
    spans = make_trace(service="v2json")
    send(grpc_exporter, spans)
    r = server.get(f"/api/v2/traces/{trace_hex(spans)}")
    assert r.status == 200
    doc = orjson.loads(r.data)
    assert set(doc) == {"trace", "metrics"}
    assert int(doc["metrics"]["inspectedBytes"]) > 0
    assert {span_id_int(s) for s in json_spans(doc, "trace")} == span_ids(spans)


def test_trace_from_several_pushes_and_from_memory_and_blocks(
    server: Server, grpc_exporter: GrpcExporter, http_exporter: HttpExporter
) -> None:
    spans = make_trace(service="split", n_children=6)
    root_last = sorted(spans, key=lambda s: s.parent is None)
    first, second, third = root_last[:2], root_last[2:4], root_last[4:]
    send(grpc_exporter, first)
    server.flush()  # first part now sits in a block
    send(http_exporter, second)
    server.flush()
    send(grpc_exporter, third)  # the rest stays in memory
    r = server.get(f"/api/traces/{trace_hex(spans)}")
    assert r.status == 200
    got = [span_id_int(s) for s in json_spans(orjson.loads(r.data))]
    assert sorted(got) == sorted(span_ids(spans))  # each span exactly once


def test_retried_push_does_not_duplicate_spans(server: Server, grpc_exporter: GrpcExporter) -> None:
    spans = make_trace(service="retry")
    send(grpc_exporter, spans)
    server.flush()
    send(grpc_exporter, spans)
    got = [
        span_id_int(s)
        for s in json_spans(orjson.loads(server.get(f"/api/traces/{trace_hex(spans)}").data))
    ]
    assert sorted(got) == sorted(span_ids(spans))


def test_unknown_and_malformed_ids(server: Server) -> None:
    assert server.get("/api/traces/" + "ab" * 16).status == 404
    assert server.get("/api/v2/traces/" + "ab" * 16).status == 404
    r = server.get("/api/traces/xyz123")
    assert r.status == 400
    assert b"hex characters" in r.data and b"'x'" in r.data
    r = server.get("/api/traces/" + "a" * 33)
    assert r.status == 400
    assert b"128 bits" in r.data


def test_short_ids_are_left_padded(server: Server, grpc_exporter: GrpcExporter) -> None:
    spans = make_trace(service="short")
    send(grpc_exporter, spans)
    tid = trace_hex(spans)
    assert server.get(f"/api/traces/{tid.upper()}").status == 200
    if tid.startswith("0"):
        assert server.get(f"/api/traces/{tid.lstrip('0')}").status == 200


def test_start_end_window(server: Server, grpc_exporter: GrpcExporter) -> None:
    spans = make_trace(service="window")
    send(grpc_exporter, spans)
    server.flush()
    tid = trace_hex(spans)
    start_s = spans[0].start_time // 10**9
    assert server.get(f"/api/traces/{tid}?start={start_s - 60}&end={start_s + 60}").status == 200
    # a window long before the trace: the block is skipped, nothing live either
    assert server.get(f"/api/traces/{tid}?start=1000&end=2000").status == 404
    r = server.get(f"/api/traces/{tid}?start=2000&end=1000")
    assert r.status == 400
    assert b"end must be after start" in r.data
    assert server.get(f"/api/traces/{tid}?start=abc").status == 400
