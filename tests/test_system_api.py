"""Operational endpoints: ready, echo, buildinfo, flush, self-metrics."""

from __future__ import annotations

import orjson
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)

from conftest import Server
from otel_helpers import make_trace, send


def test_ready_echo_buildinfo(server: Server) -> None:
    r = server.get("/ready")
    assert (r.status, r.data) == (200, b"ready")
    r = server.get("/api/echo")
    assert (r.status, r.data) == (200, b"echo\n")
    info = orjson.loads(server.get("/api/status/buildinfo").data)
    assert set(info) == {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
    assert info["version"]


def test_flush_writes_a_block_and_counts_it(server: Server) -> None:
    spans = make_trace(service="flushme")
    send(GrpcExporter(endpoint=server.grpc_target, insecure=True), spans)
    assert server.metric("threadline_ingester_live_traces", tenant="single-tenant") >= 1
    blocks_before = server.metric("threadline_ingester_blocks_written_total")
    r = server.request("GET", server.api + "/flush?tenant=single-tenant")
    assert r.status == 204
    assert server.metric("threadline_ingester_blocks_written_total") == blocks_before + 1
    assert server.metric("threadline_ingester_live_traces", tenant="single-tenant") == 0
    metas = list((server.data_dir / "blocks" / "single-tenant").glob("*/meta.json"))
    assert metas
    # the same answer whether or not the tenant exists: /flush tells nobody which tenants do
    assert server.request("POST", server.api + "/flush?tenant=nobody").status == 204


def test_self_metrics_present(server: Server) -> None:
    spans = make_trace(service="metrics")
    send(GrpcExporter(endpoint=server.grpc_target, insecure=True), spans)
    assert server.metric(
        "threadline_distributor_spans_received_total", tenant="single-tenant", protocol="otlp_grpc"
    ) >= len(spans)
    assert server.metric("threadline_distributor_bytes_received_total", protocol="otlp_grpc") > 0
    assert server.metric("threadline_wal_fsync_duration_seconds_count") >= 1
