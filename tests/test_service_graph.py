"""GET /api/service-graph on traces with known calls, errors and durations."""

from __future__ import annotations

import grpc
import orjson
import pytest

from conftest import Server
from traceql_dataset import ALL_KEYS, BASE_NS, request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BASE_S = BASE_NS // 10**9


@pytest.fixture(scope="module")
def graph(server: Server) -> dict:
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
    call(request([k for k in ALL_KEYS if k.startswith("T3")]), timeout=10)
    server.flush()
    call(request([k for k in ALL_KEYS if not k.startswith("T3")]), timeout=10)
    r = server.get(f"/api/service-graph?start={BASE_S - 10}&end={BASE_S + 10}")
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def test_edges(graph: dict) -> None:
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert set(edges) == {
        ("api-gateway", "payment"),
        ("checkout", "payment"),
        ("frontend", "cart"),
        ("frontend", "checkout"),
        ("frontend", "product-catalog"),
        # client spans without a child: edges to the peer their db.system names
        ("checkout", "postgresql"),
        ("payment", "postgresql"),
        ("product-catalog", "redis"),
    }
    db = edges[("payment", "postgresql")]
    assert (db["requests"], db["errors"]) == (1, 0)
    # the client span's 100 ms: the log2 bucket (2^26, 2^27] ns
    assert 2**26 / 1e9 <= db["p50Seconds"] <= 2**27 / 1e9
    failing = edges[("checkout", "payment")]
    assert (failing["requests"], failing["errors"], failing["errorRate"]) == (1, 1, 1.0)
    assert failing["requestRate"] == pytest.approx(1 / 20)
    ok = edges[("frontend", "checkout")]
    assert (ok["requests"], ok["errors"]) == (1, 0)
    # one 300 ms call: both quantiles fall in its log2 bucket (2^28, 2^29] ns
    assert 2**28 / 1e9 <= ok["p50Seconds"] <= ok["p95Seconds"] <= ok["p99Seconds"] <= 2**29 / 1e9


def test_nodes(graph: dict) -> None:
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert set(nodes) == {
        "api-gateway",
        "cart",
        "checkout",
        "frontend",
        "payment",
        "product-catalog",
        "postgresql",
        "redis",
    }
    # uninstrumented peers are virtual: their figures are the calls made to them
    virtual = {name for name, n in nodes.items() if n["virtual"]}
    assert virtual == {"postgresql", "redis"}
    assert (nodes["postgresql"]["requests"], nodes["postgresql"]["errors"]) == (2, 0)
    assert nodes["postgresql"]["requestRate"] == pytest.approx(2 / 20)
    assert (nodes["frontend"]["requests"], nodes["frontend"]["errors"]) == (2, 1)
    assert nodes["payment"]["requests"] == 1  # its server span; the failing Charge is a client
    assert nodes["frontend"]["errorRate"] == 0.5


def test_window_and_errors(server: Server, graph: dict) -> None:
    empty = orjson.loads(server.get("/api/service-graph?start=1000&end=2000").data)
    assert empty["nodes"] == [] and empty["edges"] == []
    assert server.get("/api/service-graph?start=2000&end=1000").status == 400
