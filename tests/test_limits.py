"""Per-tenant limits through the real server and real clients: the ingestion rate and burst,
spans per request, bytes per trace (spans past it refused, the rest kept), live traces and
attribute lengths; refusals are 429 / RESOURCE_EXHAUSTED naming the limit and the tenant,
counted per tenant and reason; the overrides file is re-read while the server runs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from conftest import Server

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def request(trace: int, spans: int, first_span: int = 1, value: str = "v") -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "limited"
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(first_span, first_span + spans):
        span = ss.spans.add()
        span.trace_id, span.span_id = trace.to_bytes(16, "big"), i.to_bytes(8, "big")
        span.name = "op"
        span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1000
        span.attributes.add(key="payload").value.string_value = value
    return req.SerializeToString()


LIMITS: dict[str, object] = {
    "slow": {"ingestion": {"rate_limit_bytes": 2000, "burst_size_bytes": 6000}},
    "small-traces": {"global": {"max_bytes_per_trace": 3000}},
    "few-traces": {"ingestion": {"max_traces_per_user": 2}},
    "short-values": {"ingestion": {"max_attribute_bytes": 12}},  # = len("service.name")
    "small-requests": {"ingestion": {"max_spans_per_request": 5}},
}


def write_overrides(path: Path, entries: dict[str, object]) -> None:
    path.write_text(yaml.safe_dump({"overrides": entries}))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture(scope="module")
def overrides_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "overrides.yaml"
    write_overrides(path, LIMITS)
    return path


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, overrides_file: Path) -> Iterator[Server]:
    cfg = {
        "multitenancy_enabled": True,
        "overrides": {
            "per_tenant_override_config": str(overrides_file),
            "per_tenant_override_period": "100ms",
        },
    }
    server = Server(tmp_path_factory.mktemp("limits-srv") / "data", cfg).start()
    yield server
    server.stop()


def push_http(srv: Server, tenant: str, body: bytes) -> tuple[int, bytes]:
    r = srv.request(
        "POST",
        srv.otlp_http + "/v1/traces",
        body=body,
        headers={"Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant},
    )
    return r.status, r.data


def push_grpc(srv: Server, tenant: str, body: bytes) -> ExportTraceServiceResponse:
    call = grpc.insecure_channel(srv.grpc_target).unary_unary(EXPORT)
    return ExportTraceServiceResponse.FromString(
        call(body, metadata=(("x-scope-orgid", tenant),), timeout=10)
    )


def stored_spans(srv: Server, tenant: str, trace: int) -> list[dict]:
    r = srv.get(f"/api/traces/{trace:032x}", headers={"X-Scope-OrgID": tenant})
    if r.status == 404:
        return []
    doc = orjson.loads(r.data)
    return [s for b in doc["batches"] for ss in b["scopeSpans"] for s in ss["spans"]]


def discarded(srv: Server, tenant: str, reason: str) -> float:
    return srv.metric("threadline_discarded_spans_total", tenant=tenant, reason=reason)


def test_the_ingestion_rate_is_limited_per_tenant(srv: Server) -> None:
    body = request(1, 10)  # about 300 bytes
    statuses = [push_http(srv, "slow", body) for _ in range(40)]
    refused = [data for status, data in statuses if status == 429]
    assert refused, "the burst was never exceeded"
    assert statuses[0][0] == 200  # the burst lets the first ones in
    # the body is an OTLP Status whose message names the limit and the tenant
    assert b"rate_limit_bytes" in refused[0] and b"'slow'" in refused[0]
    assert discarded(srv, "slow", "rate_limited") == 10 * len(refused)
    # another tenant is not slowed down by it
    assert all(push_http(srv, "fast", body)[0] == 200 for _ in range(40))


def test_a_trace_keeps_the_spans_within_its_bytes_and_refuses_the_rest(srv: Server) -> None:
    first = push_grpc(srv, "small-traces", request(2, 10))
    assert first.partial_success.rejected_spans == 0
    # the trace grows past 3000 bytes: the spans past it are refused, the earlier ones kept
    second = push_grpc(srv, "small-traces", request(2, 200, first_span=11))
    refused = second.partial_success.rejected_spans
    assert 0 < refused < 200
    assert "max_bytes_per_trace" in second.partial_success.error_message
    assert "small-traces" in second.partial_success.error_message
    kept = stored_spans(srv, "small-traces", 2)
    assert len(kept) == 210 - refused
    assert discarded(srv, "small-traces", "trace_too_large") == refused
    # a push holding only spans of the full trace is refused whole
    with pytest.raises(grpc.RpcError) as full:
        push_grpc(srv, "small-traces", request(2, 5, first_span=500))
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_bytes_per_trace" in (full.value.details() or "")
    # other traces of the tenant are unaffected
    assert push_grpc(srv, "small-traces", request(3, 10)).partial_success.rejected_spans == 0


def test_new_traces_past_the_live_limit_are_refused(srv: Server) -> None:
    assert push_http(srv, "few-traces", request(10, 3))[0] == 200
    assert push_http(srv, "few-traces", request(11, 3))[0] == 200
    status, data = push_http(srv, "few-traces", request(12, 3))
    assert status == 429 and b"max_traces_per_user" in data
    assert push_http(srv, "few-traces", request(10, 3, first_span=10))[0] == 200  # a live one
    assert discarded(srv, "few-traces", "live_traces_exceeded") == 3


def test_long_attribute_values_are_truncated_and_counted(srv: Server) -> None:
    assert push_http(srv, "short-values", request(20, 1, value="0123456789abcdef"))[0] == 200
    (span,) = stored_spans(srv, "short-values", 20)
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["payload"] == {"stringValue": "0123456789ab"}
    counted = srv.metric("threadline_distributor_attributes_truncated_total", tenant="short-values")
    assert counted == 1
    # what the WAL holds is what was kept: after a restart it is still truncated
    srv.kill()
    srv.start()
    (span,) = stored_spans(srv, "short-values", 20)
    assert {a["key"]: a["value"] for a in span["attributes"]}["payload"] == {
        "stringValue": "0123456789ab"
    }


def test_requests_with_too_many_spans_are_refused(srv: Server) -> None:
    status, data = push_http(srv, "small-requests", request(30, 6))
    assert status == 429 and b"max_spans_per_request" in data and b"small-requests" in data
    assert push_http(srv, "small-requests", request(30, 5))[0] == 200


def test_the_overrides_file_is_reread_while_running(srv: Server, overrides_file: Path) -> None:
    assert push_http(srv, "later", request(40, 6))[0] == 200
    later = {"later": {"ingestion": {"max_spans_per_request": 5}}}
    write_overrides(overrides_file, LIMITS | later)
    deadline = time.monotonic() + 30
    while push_http(srv, "later", request(41, 6))[0] != 429:
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
