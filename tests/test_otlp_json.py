"""OTLP/JSON over HTTP: hex ids, 64-bit ints as strings, enums as ints, gzip bodies."""

from __future__ import annotations

import base64
import gzip

import orjson

from conftest import Server

TRACE = "5b8efff798038103d269b633813fc60c"


def _doc(span_name: str, span_id: str) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "json-svc"}},
                        {"key": "pid", "value": {"intValue": "4242"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual", "version": "0.1"},
                        "spans": [
                            {
                                "traceId": TRACE,
                                "spanId": span_id,
                                "parentSpanId": "",
                                "name": span_name,
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [
                                    {"key": "big", "value": {"intValue": "9007199254740993"}},
                                    {"key": "ratio", "value": {"doubleValue": 0.5}},
                                ],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_json_and_gzip_json(server: Server) -> None:
    url = server.otlp_http + "/v1/traces"
    r = server.request(
        "POST",
        url,
        body=orjson.dumps(_doc("plain", "eee19b7ec3c1b174")),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 200, r.data
    assert orjson.loads(r.data) == {}
    r = server.request(
        "POST",
        url,
        body=gzip.compress(orjson.dumps(_doc("zipped", "eee19b7ec3c1b175"))),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status == 200, r.data
    got = orjson.loads(server.get(f"/api/traces/{TRACE}").data)
    spans = {s["name"]: s for b in got["batches"] for ss in b["scopeSpans"] for s in ss["spans"]}
    assert set(spans) == {"plain", "zipped"}
    plain = spans["plain"]
    assert base64.b64decode(plain["traceId"]).hex() == TRACE
    assert base64.b64decode(plain["spanId"]).hex() == "eee19b7ec3c1b174"
    assert plain["kind"] == "SPAN_KIND_SERVER"
    assert plain["endTimeUnixNano"] == "1700000000250000000"
    assert {"key": "big", "value": {"intValue": "9007199254740993"}} in plain["attributes"]
    assert plain["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    resource = got["batches"][0]["resource"]["attributes"]
    assert {"key": "pid", "value": {"intValue": "4242"}} in resource


def test_bad_gzip(server: Server) -> None:
    r = server.request(
        "POST",
        server.otlp_http + "/v1/traces",
        body=b"not gzip at all",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status == 400
    assert "gzip" in orjson.loads(r.data)["message"]
