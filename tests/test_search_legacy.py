"""Legacy tag search (/api/search?tags=...) and the search API's parameters and shape."""

from __future__ import annotations

import time

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)

from conftest import Server
from otel_helpers import make_trace, send, trace_hex


@pytest.fixture(scope="module")
def traces(server: Server) -> dict[str, str]:
    exporter = GrpcExporter(endpoint=server.grpc_target, insecure=True)
    out = {}
    for service, tier in (("legacy-a", "gold"), ("legacy-b", "silver")):
        spans = make_trace(service=service, **{"app.tier": tier})
        send(exporter, spans)
        out[service] = trace_hex(spans)
        time.sleep(0.01)
        if service == "legacy-a":
            server.flush()  # one trace in a block, one live
    return out


def search(server: Server, query: str) -> dict:
    r = server.get("/api/search?" + query)
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def test_tag_search_finds_by_attribute_and_service(server: Server, traces: dict[str, str]) -> None:
    doc = search(server, "tags=app.tier%3Dgold")
    assert [t["traceID"] for t in doc["traces"]] == [traces["legacy-a"].lstrip("0")]
    t = doc["traces"][0]
    assert t["rootServiceName"] == "legacy-a"
    assert t["rootTraceName"] == "GET /checkout"
    assert t["spanSets"] == [t["spanSet"]]
    assert t["spanSet"]["matched"] == 1
    doc = search(server, "tags=service.name%3Dlegacy-b")
    assert [t["traceID"] for t in doc["traces"]] == [traces["legacy-b"].lstrip("0")]
    assert doc["traces"][0]["spanSet"]["matched"] == 4  # every span of the service
    both = search(server, "tags=service.name%3Dlegacy%20http.status_code%3D200")
    found = {t["traceID"] for t in both["traces"]}
    assert {traces["legacy-a"].lstrip("0"), traces["legacy-b"].lstrip("0")} <= found
    assert "traces" not in search(server, "tags=app.tier%3Dbronze")


def test_limit_newest_first_and_durations(server: Server, traces: dict[str, str]) -> None:
    doc = search(server, "tags=service.name%3Dlegacy&limit=1")
    assert [t["traceID"] for t in doc["traces"]] == [traces["legacy-b"].lstrip("0")]
    assert "traces" not in search(server, "tags=service.name%3Dlegacy&minDuration=1h")
    doc = search(server, "tags=service.name%3Dlegacy&maxDuration=1h")
    assert len(doc["traces"]) >= 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("q=%7B%7D&tags=a%3Db", "can't specify tags and q"),
        ("limit=0", "limit"),
        ("spss=101", "spans per span set exceeds 100"),
        ("start=100&end=50", "end must be after start"),
        ("start=0&end=900000", "querier.max_search_duration"),
        ("minDuration=abc", "minDuration"),
        ("minDuration=2s&maxDuration=1s", "min is over max"),
        ("tags=a%3Db%20a%3Dc", "duplicate key"),
    ],
)
def test_bad_search_requests(server: Server, query: str, message: str) -> None:
    r = server.get("/api/search?" + query)
    assert r.status == 400
    assert message in r.data.decode()
