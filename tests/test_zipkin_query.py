"""Zipkin's query API (/zipkin/api/v2) on traces with known answers."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import orjson
import pytest

from conftest import Server
from traceql_dataset import ALL_KEYS, BASE_NS, TRACE_IDS, request, span_id

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
END_TS = BASE_NS // 10**6 + 10_000
WINDOW = f"endTs={END_TS}&lookback=3600000"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("zq") / "data").start()
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
    call(request([k for k in ALL_KEYS if not k.startswith("T2")]), timeout=10)
    server.flush()
    call(request([k for k in ALL_KEYS if k.startswith("T2")]), timeout=10)
    yield server
    server.stop()


def get(server: Server, path: str, status: int = 200) -> object:
    r = server.get("/zipkin" + path)
    assert r.status == status, r.data
    return orjson.loads(r.data) if status == 200 else r.data.decode()


def ids(traces: object) -> set[str]:
    assert isinstance(traces, list)
    return {trace[0]["traceId"] for trace in traces}


def test_names(srv: Server) -> None:
    services = get(srv, "/api/v2/services")
    assert services == ["api-gateway", "cart", "checkout", "frontend", "payment", "product-catalog"]
    assert get(srv, "/api/v2/spans?serviceName=payment") == ["Charge", "db query"]
    assert "serviceName is required" in get(srv, "/api/v2/spans", 400)
    config = get(srv, "/config.json")
    assert config["searchEnabled"] is True and config["dependency"]["enabled"] is True


def test_trace_search(srv: Server) -> None:
    t1, t2, t3 = (TRACE_IDS[t].hex() for t in ("T1", "T2", "T3"))
    assert ids(get(srv, f"/api/v2/traces?serviceName=payment&{WINDOW}")) == {t1, t3}
    assert ids(get(srv, f"/api/v2/traces?spanName=SELECT&{WINDOW}")) == {t2}
    # Zipkin lower-cases service and span names: they match in any case
    assert ids(get(srv, f"/api/v2/traces?serviceName=PayMent&{WINDOW}")) == {t1, t3}
    db_query = f"/api/v2/traces?serviceName=payment&spanName=db%20QUERY&{WINDOW}"
    assert ids(get(srv, db_query)) == {t3}
    assert ids(get(srv, f"/api/v2/traces?spanName=select&{WINDOW}")) == {t2}
    assert get(srv, f"/api/v2/traces?serviceName=paymen&{WINDOW}") == []
    assert get(srv, f"/api/v2/traces?serviceName=cart&spanName=select&{WINDOW}") == []
    assert ids(get(srv, f"/api/v2/traces?minDuration=1000000&{WINDOW}")) == {t3}
    query = "annotationQuery=http.status_code%3D500"
    assert ids(get(srv, f"/api/v2/traces?{query}&{WINDOW}")) == {t1}
    assert ids(get(srv, f"/api/v2/traces?annotationQuery=exception&{WINDOW}")) == {t1}
    assert ids(
        get(srv, f"/api/v2/traces?annotationQuery=retry%20and%20amount%3D12.5&{WINDOW}")
    ) == {t3}
    # the error tag the API shows for an error status is searchable as such
    assert ids(get(srv, f"/api/v2/traces?annotationQuery=error&{WINDOW}")) == {t1}
    assert ids(get(srv, f"/api/v2/traces?annotationQuery=error%3Dtrue&{WINDOW}")) == {t1}
    assert get(srv, f"/api/v2/traces?annotationQuery=error%3Dother&{WINDOW}") == []
    query = "annotationQuery=otel.status_code%3DERROR%20and%20http.method%3DGET"
    assert ids(get(srv, f"/api/v2/traces?{query}&{WINDOW}")) == {t1}
    assert len(get(srv, f"/api/v2/traces?limit=2&{WINDOW}")) == 2
    assert get(srv, "/api/v2/traces?serviceName=payment") == []  # default window: the last day


def test_trace_json(srv: Server) -> None:
    t1 = TRACE_IDS["T1"].hex()
    spans = get(srv, f"/api/v2/trace/{t1}")
    assert [s["name"] for s in spans] == [
        "GET /checkout",
        "PlaceOrder",
        "Charge",
        "db query",
        "GetCart",
    ]
    root, _, charge, db, _ = spans
    assert root == {
        "traceId": t1,
        "id": span_id("T1.A").hex(),
        "name": "GET /checkout",
        "timestamp": BASE_NS // 1000,
        "duration": 500_000,
        "localEndpoint": {"serviceName": "frontend"},
        "kind": "SERVER",
        "tags": {
            "http.method": "GET",
            "http.status_code": "500",
            "otel.status_code": "ERROR",
            "error": "true",
        },
    }
    assert charge["parentId"] == span_id("T1.B").hex()
    # as the Collector writes an event with attributes: name|attributes as JSON|dropped
    assert charge["annotations"] == [
        {
            "timestamp": BASE_NS // 1000 + 21_000,
            "value": 'exception|{"exception.type":"TimeoutError"}|0',
        }
    ]
    assert db["kind"] == "CLIENT" and db["tags"]["db.system"] == "postgresql"
    assert f"{'ab' * 16} not found" in get(srv, f"/api/v2/trace/{'ab' * 16}", 404)
    many = get(srv, f"/api/v2/traceMany?traceIds={t1},{TRACE_IDS['T2'].hex()}")
    assert ids(many) == {t1, TRACE_IDS["T2"].hex()}
    assert "two unique" in get(srv, f"/api/v2/traceMany?traceIds={t1}", 400)


def test_dependencies_and_autocomplete(srv: Server) -> None:
    deps = get(srv, f"/api/v2/dependencies?{WINDOW}")
    assert {"parent": "checkout", "child": "payment", "callCount": 1, "errorCount": 1} in deps
    assert {"parent": "frontend", "child": "cart", "callCount": 1, "errorCount": 0} in deps
    # the database client spans have no server span: edges to the uninstrumented peer
    assert {"parent": "product-catalog", "child": "redis", "callCount": 1, "errorCount": 0} in deps
    assert len(deps) == 8
    assert "endTs is required" in get(srv, "/api/v2/dependencies", 400)
    assert "db.system" in get(srv, "/api/v2/autocompleteKeys")
    assert get(srv, "/api/v2/autocompleteValues?key=db.system") == ["postgresql", "redis"]
