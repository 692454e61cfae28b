"""Query guards: a time limit per tenant (overrides.read.query_timeout) and the memory queries
may use (querier.memory_limit) stop a query with a 400 naming the limit, never a raw engine
error or a traceback; long queries fit (64 KiB request lines, form bodies) up to
querier.max_query_expression_size_bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import grpc
import orjson
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from traceql_dataset import ALL_KEYS, request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CHAIN = " >> ".join(["{ }"] * 200)  # seconds of work even on 550 spans


def _push(server: Server, tenant: str, copies: int = 1) -> None:
    """The data set's traces, ``copies`` times over (each copy under trace ids of its own)."""
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
    for n in range(copies):
        req = ExportTraceServiceRequest.FromString(request(ALL_KEYS))
        for rs in req.resource_spans:
            for span in rs.scope_spans[0].spans:
                span.trace_id = bytes([n]) + span.trace_id[1:]
        call(req.SerializeToString(), metadata=(("x-scope-orgid", tenant),), timeout=10)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("guards")
    overrides = root / "overrides.yaml"
    overrides.write_text(
        yaml.safe_dump({"overrides": {"hasty": {"read": {"query_timeout": "300ms"}}}})
    )
    cfg = {
        "multitenancy_enabled": True,
        "overrides": {"per_tenant_override_config": str(overrides)},
        "querier": {"max_query_expression_size_bytes": 20000},
    }
    server = Server(root / "data", cfg).start()
    for tenant in ("hasty", "patient"):
        _push(server, tenant, 50)
    yield server
    server.stop()


def search(server: Server, tenant: str, q: str) -> tuple[int, bytes]:
    r = server.get(f"/api/search?q={quote(q)}", headers={"X-Scope-OrgID": tenant})
    return r.status, r.data


def test_a_tenant_time_limit_stops_its_queries_only(srv: Server) -> None:
    status, body = search(srv, "hasty", CHAIN)
    assert status == 400
    assert b"longer than 0.3s" in body and b"overrides.read.query_timeout" in body
    # the server goes on answering, the tenant's quick queries included
    assert srv.get("/ready").status == 200
    status, body = search(srv, "hasty", "{ status = error }")
    assert status == 200 and len(orjson.loads(body)["traces"]) == 20  # one per copy, limit 20
    status, body = search(srv, "patient", " >> ".join(["{ }"] * 3))
    assert status == 200 and orjson.loads(body)["traces"]
    assert "Traceback" not in srv.log()


def test_a_long_regex_fits_in_the_url(srv: Server) -> None:
    q = '{ name =~ "' + "nomatch|" * 1250 + 'GET.*" }'  # 10 k characters
    assert len(q) > 10_000
    status, body = search(srv, "patient", q)
    assert status == 200, body
    assert len(orjson.loads(body)["traces"]) == 20  # T1 and T2 of every copy, limit 20


def test_search_takes_a_form_body(srv: Server) -> None:
    body = urlencode({"q": '{ resource.service.name = "payment" }', "limit": "1"})
    r = srv.http.request(
        "POST",
        srv.api + "/api/search?spss=5",
        body=body,
        headers={"X-Scope-OrgID": "patient", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 200, r.data
    (trace,) = orjson.loads(r.data)["traces"]
    got = srv.get(
        "/api/search?" + urlencode({"q": '{ resource.service.name = "payment" }', "limit": 1}),
        headers={"X-Scope-OrgID": "patient"},
    )
    assert orjson.loads(got.data)["traces"][0]["traceID"] == trace["traceID"]


def test_a_query_over_the_size_limit_is_refused(srv: Server) -> None:
    q = '{ name = "' + "x" * 20_000 + '" }'
    body = urlencode({"q": q})
    r = srv.http.request(
        "POST",
        srv.api + "/api/search",
        body=body,
        headers={"X-Scope-OrgID": "patient", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 400
    assert b"querier.max_query_expression_size_bytes" in r.data


def test_running_out_of_memory_names_the_limit(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", {"querier": {"memory_limit": "32MiB"}}).start()
    try:
        _push(server, "single-tenant")
        status, body = search(server, "single-tenant", " >> ".join(["{ }"] * 50))
        assert status == 400, body
        assert b"querier.memory_limit" in body and b"32 MiB" in body
        assert b"Out of Memory" not in body
        status, _ = search(server, "single-tenant", "{ status = error }")
        assert status == 200
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_a_tenants_query_memory_limit_stops_its_queries_only(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(
        yaml.safe_dump({"overrides": {"frugal": {"read": {"query_memory_limit": "16MiB"}}}})
    )
    cfg = {
        "multitenancy_enabled": True,
        "overrides": {"per_tenant_override_config": str(overrides)},
    }
    server = Server(tmp_path / "data", cfg).start()
    try:
        for tenant in ("frugal", "ample"):
            _push(server, tenant)
        chain = " >> ".join(["{ }"] * 50)
        status, body = search(server, "frugal", chain)
        assert status == 400, body
        assert b"overrides.read.query_memory_limit" in body and b"16 MiB" in body
        status, body = search(server, "ample", chain)
        assert status == 200, body
        # the frugal tenant's small queries still run
        assert search(server, "frugal", "{ status = error }")[0] == 200
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_limit_messages_use_tempos_words(srv: Server) -> None:
    """Grafana shows these texts as they come: Tempo's wording, then the key that sets it."""
    h = {"X-Scope-OrgID": "patient"}
    cases = [
        ("/api/search?q=%7B%7D&limit=999999", b"limit 999999 exceeds max limit 262144"),
        ("/api/search?q=%7B%7D&spss=1000", b"spans per span set exceeds 100. received 1000"),
        (
            "/api/search?q=%7B%7D&start=1000000&end=2000000",
            b"range specified by start and end exceeds 168h0m0s. received start=1000000 "
            b"end=2000000",
        ),
        (
            "/api/metrics/query_range?q=" + quote("{ } | rate()") + "&start=1000000&end=2000000",
            b"metrics query time range exceeds the maximum allowed duration of 24h0m0s",
        ),
        (
            "/api/search?q=" + quote('{ .a = "' + "x" * 20000 + '" }'),
            b"TraceQL expression exceeds the configured maximum size of 20000 bytes",
        ),
    ]
    for path, words in cases:
        r = srv.get(path, headers=h)
        assert r.status == 400, (path, r.data)
        assert r.data.startswith(words), r.data
