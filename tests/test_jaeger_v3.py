"""Jaeger v2's api_v3 over HTTP (/jaeger/api/v3), what Jaeger UI 2.15+ reads: services,
operations, trace summaries and OTLP/JSON traces on traces with known answers, pinned as exact
JSON in the shapes Jaeger's own gateway writes (hex ids, numeric enums, string nanoseconds,
zero counts left out, errors as {"error": {"httpCode", "message"}})."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote, urlencode

import orjson
import pytest

from conftest import Server
from traceql_dataset import BASE_NS, TRACE_IDS, push_t1_in_a_block, span_id

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
T1, T2, T3 = (TRACE_IDS[t].hex() for t in ("T1", "T2", "T3"))
WINDOW = {
    "query.startTimeMin": "2023-11-14T22:00:00Z",
    "query.startTimeMax": "2023-11-14T23:00:00Z",
}
MS = 10**6


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("jv3") / "data").start()
    push_t1_in_a_block(server)  # T1 in a block, T2 and T3 live
    yield server
    server.stop()


def get(server: Server, path: str, status: int = 200) -> dict:
    r = server.get("/jaeger/api/v3" + path)
    assert r.status == status, (path, r.status, r.data)
    if status != 200:
        assert r.headers["Content-Type"].startswith("text/plain")
    return orjson.loads(r.data)


def test_services_and_operations(srv: Server) -> None:
    assert get(srv, "/services") == {
        "services": ["api-gateway", "cart", "checkout", "frontend", "payment", "product-catalog"]
    }
    assert get(srv, "/operations?service=payment") == {
        "operations": [
            {"name": "Charge", "spanKind": "client"},
            {"name": "Charge", "spanKind": "server"},
            {"name": "db query", "spanKind": "client"},
        ]
    }
    assert get(srv, "/operations?service=payment&spanKind=server") == {
        "operations": [{"name": "Charge", "spanKind": "server"}]
    }
    assert get(srv, "/operations?service=nobody") == {"operations": []}
    everything = get(srv, "/operations?span_kind=server")["operations"]
    assert {"name": "GET /", "spanKind": "server"} in everything and len(everything) == 7


def test_trace_summaries_as_the_ui_lists_them(srv: Server) -> None:
    params = urlencode({**WINDOW, "query.serviceName": "payment"})
    assert get(srv, f"/trace-summaries?{params}") == {
        "summaries": [
            {
                "traceId": T3,
                "rootServiceName": "api-gateway",
                "rootOperationName": "POST /pay",
                "minStartTimeUnixNano": str(BASE_NS),
                "maxEndTimeUnixNano": str(BASE_NS + 2000 * MS),
                "spanCount": 3,
                "services": [
                    {"name": "api-gateway", "spanCount": 1},
                    {"name": "payment", "spanCount": 2},
                ],
            },
            {
                "traceId": T1,
                "rootServiceName": "frontend",
                "rootOperationName": "GET /checkout",
                "minStartTimeUnixNano": str(BASE_NS),
                "maxEndTimeUnixNano": str(BASE_NS + 500 * MS),
                "spanCount": 5,
                "errorSpanCount": 2,
                "services": [
                    {"name": "cart", "spanCount": 1},
                    {"name": "checkout", "spanCount": 2},
                    {"name": "frontend", "spanCount": 1, "errorSpanCount": 1},
                    {"name": "payment", "spanCount": 1, "errorSpanCount": 1},
                ],
            },
        ]
    }
    # the snake_case names of Jaeger before 2.19 mean the same
    old = urlencode(
        {
            "query.start_time_min": WINDOW["query.startTimeMin"],
            "query.start_time_max": WINDOW["query.startTimeMax"],
            "query.service_name": "payment",
        }
    )
    assert get(srv, f"/trace-summaries?{old}") == get(srv, f"/trace-summaries?{params}")


def test_search_filters(srv: Server) -> None:
    def ids(**extra: str) -> list[str]:
        doc = get(srv, "/trace-summaries?" + urlencode({**WINDOW, **extra}))
        return [s["traceId"] for s in doc["summaries"]]

    assert ids() == [T3, T2, T1]  # started together: by trace id, newest first
    assert ids(**{"query.operationName": "SELECT"}) == [T2]
    assert ids(**{"query.attributes": '{"http.method":"POST"}'}) == [T3]
    assert ids(**{"query.durationMin": "1s"}) == [T3]
    assert ids(**{"query.durationMax": "15ms"}) == [T2]
    assert ids(**{"query.searchDepth": "1"}) == [T3]
    outside = {
        "query.startTimeMin": "2024-01-01T00:00:00Z",
        "query.startTimeMax": "2024-01-02T00:00:00.5Z",
    }
    assert get(srv, "/trace-summaries?" + urlencode(outside)) == {"summaries": []}


def test_traces_are_otlp_json(srv: Server) -> None:
    params = urlencode({**WINDOW, "query.serviceName": "product-catalog"})
    doc = get(srv, f"/traces?{params}")
    spans = [
        s for rs in doc["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
    ]
    assert [s["name"] for s in spans] == ["GET /", "ListProducts", "SELECT"]
    root, listing, select = spans
    assert root == {
        "traceId": T2,
        "spanId": span_id("T2.A").hex(),
        "name": "GET /",
        "kind": 2,
        "startTimeUnixNano": str(BASE_NS),
        "endTimeUnixNano": str(BASE_NS + 100 * MS),
        "attributes": [
            {"key": "http.method", "value": {"stringValue": "GET"}},
            {"key": "http.status_code", "value": {"intValue": "200"}},
        ],
        "status": {},
    }
    assert listing["parentSpanId"] == span_id("T2.A").hex() and select["kind"] == 3
    by_id = get(srv, f"/traces/{T1}")
    errors = [
        s["status"]
        for rs in by_id["result"]["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
        if s["status"]
    ]
    assert errors == [{"code": 2}, {"code": 2}]
    # a window that does not hold the trace, and ids without their leading zeros
    window = urlencode(
        {"startTime": "2023-11-14T22:13:19.999999999Z", "endTime": "2023-11-14T22:14:00Z"}
    )
    assert get(srv, f"/traces/{T1}?{window}") == by_id
    assert get(srv, f"/traces/{('0' * 16) + 'a1' * 8}", 404) == {
        "error": {"httpCode": 404, "message": "No traces found"}
    }


def test_errors_as_jaeger_writes_them(srv: Server) -> None:
    assert get(srv, "/traces?query.serviceName=payment", 400) == {
        "error": {
            "httpCode": 400,
            "message": "query.startTimeMin and query.startTimeMax are required",
        }
    }
    later = {
        "query.startTimeMin": WINDOW["query.startTimeMax"],
        "query.startTimeMax": WINDOW["query.startTimeMin"],
    }
    assert (
        "must be before"
        in get(srv, "/trace-summaries?" + urlencode(later), 400)["error"]["message"]
    )
    bad = {**WINDOW, "query.startTimeMin": "yesterday"}
    assert "query.startTimeMin" in get(srv, "/traces?" + urlencode(bad), 400)["error"]["message"]
    bad = {**WINDOW, "query.durationMin": "fast"}
    assert "query.durationMin" in get(srv, "/traces?" + urlencode(bad), 400)["error"]["message"]
    bad = {**WINDOW, "query.attributes": "[1]"}
    assert "query.attributes" in get(srv, "/traces?" + urlencode(bad), 400)["error"]["message"]
    assert get(srv, "/traces?" + urlencode({**WINDOW, "query.serviceName": "nobody"}), 404) == {
        "error": {"httpCode": 404, "message": "No traces found"}
    }
    assert "trace_id" in get(srv, f"/traces/{quote('not an id!')}", 400)["error"]["message"]


def test_deep_dependency_paths_through_a_service(srv: Server) -> None:
    """Jaeger UI's deep dependency graph: root-to-leaf (service, operation) paths through the
    focal service, each with a trace that took it."""
    window = f"start={BASE_NS // 10**6 - 60_000}&end={BASE_NS // 10**6 + 60_000}"
    r = srv.get(f"/analytics/v1/dependencies?service=payment&{window}")
    assert r.status == 200, r.data
    paths = {
        tuple((n["service"], n["operation"]) for n in d["path"]): d["attributes"]
        for d in orjson.loads(r.data)["dependencies"]
    }
    assert paths == {
        (
            ("api-gateway", "POST /pay"),
            ("payment", "Charge"),
            ("payment", "db query"),
        ): [{"key": "exemplar_trace_id", "value": T3}],
        (
            ("frontend", "GET /checkout"),
            ("checkout", "PlaceOrder"),
            ("payment", "Charge"),
        ): [{"key": "exemplar_trace_id", "value": T1}],
    }
    r = srv.get(f"/jaeger/analytics/v1/dependencies?service=payment&operation=db%20query&{window}")
    (only,) = orjson.loads(r.data)["dependencies"]
    assert only["path"][-1] == {"service": "payment", "operation": "db query"}
    assert srv.get("/analytics/v1/dependencies").status == 400
