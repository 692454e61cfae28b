"""Tag discovery over live data and blocks: names per scope and typed values."""

from __future__ import annotations

from urllib.parse import quote

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)

from conftest import Server
from otel_helpers import make_trace, send


@pytest.fixture(scope="module")
def loaded(server: Server) -> Server:
    exporter = GrpcExporter(endpoint=server.grpc_target, insecure=True)
    send(exporter, make_trace(service="tags-in-block", **{"app.tier": "gold"}))
    server.flush()
    send(exporter, make_trace(service="tags-live", **{"app.tier": "silver", "app.shard": 7}))
    return server


def get(server: Server, path: str) -> dict:
    r = server.get(path)
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def test_tag_names_v1_and_v2(loaded: Server) -> None:
    names = get(loaded, "/api/search/tags")["tagNames"]
    for tag in ("http.method", "http.status_code", "db.system", "service.name", "app.tier"):
        assert tag in names
    assert "app.shard" in names  # only in live data
    v2 = {s["name"]: s["tags"] for s in get(loaded, "/api/v2/search/tags")["scopes"]}
    assert "service.name" in v2["resource"] and "host.cores" in v2["resource"]
    assert "http.method" in v2["span"] and "service.name" not in v2["span"]
    assert "rootServiceName" in v2["intrinsic"] and "span:status" in v2["intrinsic"]
    only_span = get(loaded, "/api/v2/search/tags?scope=span")["scopes"]
    assert [s["name"] for s in only_span] == ["span"]
    assert get(loaded, "/api/search/tags?scope=intrinsic")["tagNames"][0] == "duration"
    r = loaded.get("/api/v2/search/tags?scope=galaxy")
    assert r.status == 400 and b"invalid scope: galaxy" in r.data


def test_tag_values(loaded: Server) -> None:
    v1 = get(loaded, "/api/search/tag/service.name/values")["tagValues"]
    assert {"tags-in-block", "tags-live"} <= set(v1)
    typed = get(loaded, "/api/v2/search/tag/span.http.status_code/values")["tagValues"]
    assert {"type": "int", "value": "200"} in typed
    tiers = get(loaded, "/api/v2/search/tag/.app.tier/values")["tagValues"]
    assert {"type": "string", "value": "gold"} in tiers
    assert {"type": "string", "value": "silver"} in tiers
    # Grafana encodes the tag twice: the path arrives with %25-escapes
    twice = quote(quote('span."http.status_code"', safe=""), safe="")
    assert "%2522" in twice
    assert get(loaded, f"/api/v2/search/tag/{twice}/values")["tagValues"] == typed
    status = get(loaded, "/api/v2/search/tag/status/values")["tagValues"]
    assert {"type": "keyword", "value": "error"} in status
    names = get(loaded, "/api/v2/search/tag/name/values")["tagValues"]
    assert {"type": "string", "value": "GET /checkout"} in names
    roots = get(loaded, "/api/v2/search/tag/trace:rootService/values")["tagValues"]
    assert {"type": "string", "value": "tags-in-block"} in roots
    assert loaded.get("/api/v2/search/tag/bogus/values").status == 400
    assert get(loaded, "/api/v2/search/tag/resource.nothing.here/values")["tagValues"] == []


def test_q_narrows_names_and_values(loaded: Server) -> None:
    q = quote('{ resource.service.name = "tags-live" }')
    tiers = get(loaded, f"/api/v2/search/tag/span.app.tier/values?q={q}")["tagValues"]
    assert tiers == [{"type": "string", "value": "silver"}]
    names = {s["name"]: s["tags"] for s in get(loaded, f"/api/v2/search/tags?q={q}")["scopes"]}
    assert "app.shard" in names["span"]
    q_block = quote('{ resource.service.name = "tags-in-block" }')
    names = {
        s["name"]: s["tags"] for s in get(loaded, f"/api/v2/search/tags?q={q_block}")["scopes"]
    }
    assert "app.shard" not in names["span"] and "app.tier" in names["span"]
    # an incomplete filter is ignored, as Tempo does: the answer is unfiltered
    partial = quote("{ resource.service.name = }")
    tiers = get(loaded, f"/api/v2/search/tag/span.app.tier/values?q={partial}")["tagValues"]
    assert {v["value"] for v in tiers} == {"gold", "silver"}


def test_event_and_instrumentation_scopes(server: Server) -> None:
    import grpc

    from traceql_dataset import ALL_KEYS, request

    export = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    grpc.insecure_channel(server.grpc_target).unary_unary(export)(request(ALL_KEYS), timeout=10)
    scopes = {s["name"]: s["tags"] for s in get(server, "/api/v2/search/tags")["scopes"]}
    assert "exception.type" in scopes["event"]
    assert "team" in scopes["instrumentation"]
    values = get(server, "/api/v2/search/tag/event.exception.type/values")["tagValues"]
    assert values == [{"type": "string", "value": "TimeoutError"}]
    team = get(server, "/api/v2/search/tag/instrumentation.team/values")["tagValues"]
    assert team == [{"type": "string", "value": "payments"}]
