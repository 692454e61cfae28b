"""Jaeger's classic query API (/jaeger/api) and remote sampling, on traces with known answers."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest

from conftest import Server
from traceql_dataset import BASE_NS, TRACE_IDS, push_t1_in_a_block, span_id

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WINDOW = f"start={BASE_NS // 1000 - 10**6}&end={BASE_NS // 1000 + 10**7}"
SAMPLING = {
    "service_strategies": [
        {"service": "checkout", "type": "probabilistic", "param": 0.25,
         "operation_strategies": [{"operation": "PlaceOrder", "param": 0.75}]},
        {"service": "payment", "type": "ratelimiting", "param": 7},
    ],
    "default_strategy": {"type": "probabilistic", "param": 0.5,
                         "operation_strategies": [{"operation": "/health", "param": 0.0}]},
}  # fmt: skip


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("jq") / "data", {"sampling": SAMPLING}).start()
    push_t1_in_a_block(server)  # T1 in a block, T2 and T3 live
    yield server
    server.stop()


def get(server: Server, path: str, status: int = 200) -> dict:
    r = server.get("/jaeger/api" + path)
    assert r.status == status, r.data
    return orjson.loads(r.data)


def test_services_and_operations(srv: Server) -> None:
    doc = get(srv, "/services")
    services = ["api-gateway", "cart", "checkout", "frontend", "payment", "product-catalog"]
    assert doc == {"data": services, "total": 6, "limit": 0, "offset": 0, "errors": None}
    assert get(srv, "/services/payment/operations")["data"] == ["Charge", "db query"]
    ops = get(srv, "/operations?service=payment&spanKind=client")["data"]
    assert sorted(ops, key=lambda o: o["name"]) == [
        {"name": "Charge", "spanKind": "client"},
        {"name": "db query", "spanKind": "client"},
    ]
    all_ops = get(srv, "/operations?service=payment")["data"]
    assert {"name": "Charge", "spanKind": "server"} in all_ops
    err = get(srv, "/operations", 400)
    assert err["errors"] == [{"code": 400, "msg": "parameter 'service' is required"}]


def traces_found(doc: dict) -> set[str]:
    return {t["traceID"] for t in doc["data"]}


def test_search(srv: Server) -> None:
    t1, t2, t3 = (TRACE_IDS[t].hex() for t in ("T1", "T2", "T3"))
    assert traces_found(get(srv, f"/traces?service=payment&{WINDOW}")) == {t1, t3}
    tags = quote('{"http.status_code":"500"}')
    assert traces_found(get(srv, f"/traces?service=frontend&tags={tags}&{WINDOW}")) == {t1}
    assert traces_found(get(srv, f"/traces?service=frontend&minDuration=200ms&{WINDOW}")) == {t1}
    assert traces_found(get(srv, f"/traces?service=frontend&maxDuration=200ms&{WINDOW}")) == {t2}
    found = get(srv, f"/traces?service=payment&operation=db%20query&{WINDOW}")
    assert traces_found(found) == {t3}
    assert traces_found(get(srv, f"/traces?service=frontend&tag=error:true&{WINDOW}")) == {t1}
    # like Jaeger's stores, a tag also matches a log field (an event attribute or its name)
    logged = quote('{"exception.type":"TimeoutError"}')
    assert traces_found(get(srv, f"/traces?service=payment&tags={logged}&{WINDOW}")) == {t1}
    assert traces_found(get(srv, f"/traces?service=payment&tag=event:exception&{WINDOW}")) == {t1}
    wrong = quote('{"exception.type":"ValueError"}')
    assert get(srv, f"/traces?service=payment&tags={wrong}&{WINDOW}")["data"] == []
    # the log field must be on a span that meets the other conditions too
    assert get(srv, f"/traces?service=checkout&tag=event:exception&{WINDOW}")["data"] == []
    assert traces_found(get(srv, f"/traces?service=payment&limit=1&{WINDOW}")) == {t3}
    # the default window (the last two days) does not reach these 2023 traces
    assert get(srv, "/traces?service=payment")["data"] == []
    assert get(srv, "/traces?limit=3", 400)["errors"][0]["msg"] == "parameter 'service' is required"
    bad = get(srv, f"/traces?service=x&minDuration=2s&maxDuration=1s&{WINDOW}", 400)
    assert "maxDuration" in bad["errors"][0]["msg"]
    # full traces come back, spans from memory and from blocks alike
    t1_doc = next(
        t for t in get(srv, f"/traces?service=payment&{WINDOW}")["data"] if t["traceID"] == t1
    )
    assert len(t1_doc["spans"]) == 5


def test_trace_by_id_json_model(srv: Server) -> None:
    t2 = TRACE_IDS["T2"].hex()
    (trace,) = get(srv, f"/traces/{t2}")["data"]
    assert trace["traceID"] == t2
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert list(spans) == ["GET /", "ListProducts", "SELECT"]  # by start time
    root, mid, leaf = spans["GET /"], spans["ListProducts"], spans["SELECT"]
    assert root["references"] == []
    assert mid["references"] == [
        {"refType": "CHILD_OF", "traceID": t2, "spanID": span_id("T2.A").hex()}
    ]
    assert root["spanID"] == span_id("T2.A").hex()
    assert root["startTime"] == BASE_NS // 1000
    assert root["duration"] == 100_000
    tags = {t["key"]: t for t in root["tags"]}
    assert tags["http.status_code"] == {"key": "http.status_code", "type": "int64", "value": 200}
    assert tags["span.kind"]["value"] == "server"
    assert {t["key"]: t["value"] for t in leaf["tags"]}["span.kind"] == "client"
    assert trace["processes"][root["processID"]] == {"serviceName": "frontend", "tags": []}
    assert trace["processes"][leaf["processID"]]["serviceName"] == "product-catalog"
    assert mid["processID"] == leaf["processID"]
    (t1,) = get(srv, f"/traces/{TRACE_IDS['T1'].hex()}")["data"]
    charge = next(s for s in t1["spans"] if s["operationName"] == "Charge")
    charge_tags = {t["key"]: t["value"] for t in charge["tags"]}
    assert charge_tags["error"] is True and charge_tags["otel.status_code"] == "ERROR"
    assert charge["logs"][0]["fields"][0] == {
        "key": "event",
        "type": "string",
        "value": "exception",
    }
    missing = get(srv, "/traces/" + "ab" * 16, 404)
    assert missing["errors"] == [{"code": 404, "msg": "trace not found"}]
    both = get(srv, f"/traces?traceID={t2}&traceID={'cd' * 16}")
    assert traces_found(both) == {t2}
    assert both["errors"] == [{"msg": "trace not found", "traceID": "cd" * 16}]


def test_dependencies(srv: Server) -> None:
    end_ms = BASE_NS // 10**6 + 10_000
    doc = get(srv, f"/dependencies?endTs={end_ms}&lookback=3600000")
    assert doc["data"] == [
        {"parent": "api-gateway", "child": "payment", "callCount": 1},
        {"parent": "checkout", "child": "payment", "callCount": 1},
        {"parent": "checkout", "child": "postgresql", "callCount": 1},
        {"parent": "frontend", "child": "cart", "callCount": 1},
        {"parent": "frontend", "child": "checkout", "callCount": 1},
        {"parent": "frontend", "child": "product-catalog", "callCount": 1},
        {"parent": "payment", "child": "postgresql", "callCount": 1},
        {"parent": "product-catalog", "child": "redis", "callCount": 1},
    ]
    assert get(srv, "/dependencies?lookback=1000")["data"] == []


def test_sampling_strategies(srv: Server) -> None:
    base = f"http://127.0.0.1:{srv.sampling_port}"

    def strategy(path: str) -> dict:
        r = srv.request("GET", base + path)
        assert r.status == 200, r.data
        return orjson.loads(r.data)

    assert strategy("/sampling?service=payment") == {
        "strategyType": "RATE_LIMITING",
        "rateLimitingSampling": {"maxTracesPerSecond": 7},
    }
    checkout = strategy("/sampling?service=checkout")
    assert checkout["probabilisticSampling"] == {"samplingRate": 0.25}
    ops = checkout["operationSampling"]
    assert ops["defaultSamplingProbability"] == 0.25
    assert {
        o["operation"]: o["probabilisticSampling"]["samplingRate"]
        for o in ops["perOperationStrategies"]
    } == {
        "/health": 0.0,
        "PlaceOrder": 0.75,
    }
    other = strategy("/?service=anything")
    assert other["probabilisticSampling"] == {"samplingRate": 0.5}
    same = orjson.loads(srv.get("/jaeger/api/sampling?service=payment").data)
    assert same == strategy("/api/sampling?service=payment")
    r = srv.request("GET", base + "/sampling")
    assert r.status == 400 and b"'service' parameter must be provided once" in r.data


def test_pretty_print(srv: Server) -> None:
    t2 = TRACE_IDS["T2"].hex()
    compact = srv.get(f"/jaeger/api/traces/{t2}").data
    pretty = srv.get(f"/jaeger/api/traces/{t2}?prettyPrint=true").data.decode()
    assert pretty.startswith('{\n    "data": [\n        {\n            "traceID": ')
    assert orjson.loads(pretty) == orjson.loads(compact)
    assert b"\n" not in srv.get(f"/jaeger/api/traces/{t2}?prettyPrint=false").data
    assert b"\n" not in compact
    assert srv.get("/jaeger/api/services?prettyPrint=1").data.startswith(b'{\n    "data"')


def test_transform_otlp_json_upload(srv: Server) -> None:
    # what the UI posts when a user uploads an OTLP/JSON file: two traces, hex ids
    ta, tb = "5b8efff798038103d269b633813fc60c", "00000000000000000000000000abcdef"
    scope = {"name": "up", "version": "1"}

    def otlp_span(trace: str, span: str, name: str, start_ms: int, parent: str = "") -> dict:
        return {
            "traceId": trace,
            "spanId": span,
            "parentSpanId": parent,
            "name": name,
            "kind": 2,
            "startTimeUnixNano": str(BASE_NS + start_ms * 10**6),
            "endTimeUnixNano": str(BASE_NS + (start_ms + 5) * 10**6),
            "attributes": [{"key": "n", "value": {"intValue": "7"}}],
        }

    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "up-a"}},
                        {"key": "host.name", "value": {"stringValue": "h1"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": scope,
                        "spans": [
                            otlp_span(ta, "00000000000000a1", "root", 0),
                            otlp_span(tb, "00000000000000b1", "other", 1),
                        ],
                    }
                ],
            },
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "up-b"}}]
                },
                "scopeSpans": [
                    {"spans": [otlp_span(ta, "00000000000000a2", "child", 2, "00000000000000a1")]}
                ],
            },
        ]
    }
    url = srv.api + "/jaeger/api/transform"
    r = srv.request("POST", url, body=orjson.dumps(body))
    assert r.status == 200, r.data
    doc = orjson.loads(r.data)
    assert doc["errors"] is None
    first, second = doc["data"]  # one Jaeger trace per trace id, in order of appearance
    assert first["traceID"] == ta and second["traceID"] == "0000000000abcdef"
    root, child = first["spans"]
    assert root == {
        "traceID": ta,
        "spanID": "00000000000000a1",
        "flags": 1,
        "operationName": "root",
        "references": [],
        "startTime": BASE_NS // 1000,
        "duration": 5000,
        "tags": [
            {"key": "n", "type": "int64", "value": 7},
            {"key": "otel.scope.name", "type": "string", "value": "up"},
            {"key": "otel.scope.version", "type": "string", "value": "1"},
            {"key": "span.kind", "type": "string", "value": "server"},
        ],
        "logs": [],
        "processID": root["processID"],
        "warnings": None,
    }
    assert child["references"] == [
        {"refType": "CHILD_OF", "traceID": ta, "spanID": "00000000000000a1"}
    ]
    assert first["processes"][root["processID"]] == {
        "serviceName": "up-a",
        "tags": [{"key": "host.name", "type": "string", "value": "h1"}],
    }
    assert first["processes"][child["processID"]]["serviceName"] == "up-b"
    (other,) = second["spans"]
    assert other["operationName"] == "other"
    assert second["processes"] == {other["processID"]: first["processes"][root["processID"]]}
    # the upload is not stored
    assert get(srv, f"/traces/{ta}", 404)["errors"][0]["msg"] == "trace not found"
    bad = srv.request("POST", url, body=b"{not json")
    assert bad.status == 400
    assert orjson.loads(bad.data)["errors"][0]["msg"].startswith("invalid JSON")
