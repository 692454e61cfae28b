"""Multi-tenancy: X-Scope-OrgID required when enabled, and tenants never see each other's data."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from conftest import Server
from otel_helpers import make_trace, send, trace_hex

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def mt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("mt") / "data", {"multitenancy_enabled": True}).start()
    yield srv
    srv.stop()


def test_missing_tenant_refused(mt_server: Server) -> None:
    channel = grpc.insecure_channel(mt_server.grpc_target)
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(EXPORT)(b"")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no org id" in err.value.details()
    r = mt_server.request(
        "POST",
        mt_server.otlp_http + "/v1/traces",
        body=b"",
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status == 401
    assert mt_server.get("/api/traces/" + "1" * 32).status == 401
    r = mt_server.get("/api/traces/" + "1" * 32, headers={"X-Scope-OrgID": "bad/tenant"})
    assert r.status == 400
    exporter = HttpExporter(endpoint=mt_server.otlp_http + "/v1/traces")
    assert exporter.export(make_trace()) is SpanExportResult.FAILURE


def test_tenants_are_isolated(mt_server: Server) -> None:
    acme = make_trace(service="acme-svc")
    globex = make_trace(service="globex-svc")
    send(
        GrpcExporter(
            endpoint=mt_server.grpc_target, insecure=True, headers={"x-scope-orgid": "acme"}
        ),
        acme,
    )
    send(
        HttpExporter(
            endpoint=mt_server.otlp_http + "/v1/traces", headers={"X-Scope-OrgID": "globex"}
        ),
        globex,
    )
    for flushed in (False, True):
        if flushed:
            mt_server.flush()
        a, g = trace_hex(acme), trace_hex(globex)
        assert mt_server.get(f"/api/traces/{a}", headers={"X-Scope-OrgID": "acme"}).status == 200
        assert mt_server.get(f"/api/traces/{a}", headers={"X-Scope-OrgID": "globex"}).status == 404
        assert mt_server.get(f"/api/traces/{g}", headers={"X-Scope-OrgID": "globex"}).status == 200
        assert mt_server.get(f"/api/traces/{g}", headers={"X-Scope-OrgID": "acme"}).status == 404
    assert (mt_server.data_dir / "blocks" / "acme").is_dir()
    assert (mt_server.data_dir / "blocks" / "globex").is_dir()
    assert mt_server.metric("threadline_distributor_spans_received_total", tenant="acme") == len(
        acme
    )
