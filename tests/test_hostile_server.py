"""Hostile input through the real server: shapes that used to answer 500 answer 400 and say why.

OTLP/JSON bodies with ``null`` or a wrong type somewhere in the tree, TraceQL queries with
non-finite numbers or nesting too deep to plan, and garbage on the Zipkin and Jaeger doors; the
server keeps serving and a healthy trace pushed first stays intact.
"""

from __future__ import annotations

import socket
import time
import urllib.parse

import orjson
import pytest

from conftest import HOST, Server

TRACE = "5b8efff798038103d269b633813fc60d"


def _span_doc(**span: object) -> dict[str, object]:
    base = {
        "traceId": TRACE,
        "spanId": "eee19b7ec3c1b174",
        "name": "fine",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000",
    }
    return {"resourceSpans": [{"scopeSpans": [{"spans": [{**base, **span}]}]}]}


def post_json(server: Server, body: bytes):  # type: ignore[no-untyped-def]
    return server.request(
        "POST",
        server.otlp_http + "/v1/traces",
        body=body,
        headers={"Content-Type": "application/json"},
    )


@pytest.fixture(scope="module")
def bystander(server: Server) -> str:
    r = post_json(server, orjson.dumps(_span_doc()))
    assert r.status == 200, r.data
    return TRACE


def intact(server: Server, trace: str) -> None:
    r = server.get(f"/api/traces/{trace}")
    assert r.status == 200, r.data
    assert b"fine" in r.data


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"resourceSpans":[null]}', "resourceSpans[0]: expected an object, got null"),
        (
            b'{"resourceSpans":[{"scopeSpans":[1]}]}',
            "resourceSpans[0].scopeSpans[0]: expected an object, got a number",
        ),
        (b'{"resourceSpans":{}}', "resourceSpans: expected a list, got an object"),
        (
            b'{"resourceSpans":[{"resource":{"attributes":[null]}}]}',
            "resourceSpans[0].resource.attributes[0]: expected an object, got null",
        ),
        (
            b'{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":'
            b'{"arrayValue":{"values":[null]}}}]}}]}',
            "resourceSpans[0].resource.attributes[0].value.arrayValue.values[0]: expected an "
            "object, got null",
        ),
        (orjson.dumps(_span_doc(events=[7])), "spans[0].events[0]: expected an object"),
        (orjson.dumps(_span_doc(links=["x"])), "spans[0].links[0]: expected an object"),
        (orjson.dumps(_span_doc(status=[])), "spans[0].status: expected an object, got a list"),
        (orjson.dumps(_span_doc(name={})), "spans[0].name: expected a string, got an object"),
        (orjson.dumps(_span_doc(traceId=5)), "spans[0].traceId: expected a string, got a number"),
        (orjson.dumps(_span_doc(kind=[])), "spans[0].kind: expected an enum name or number"),
        (
            orjson.dumps(_span_doc(startTimeUnixNano=True)),
            "spans[0].startTimeUnixNano: expected an integer",
        ),
        (
            orjson.dumps(_span_doc(attributes=[{"key": "k", "value": {"boolValue": "yes"}}])),
            "spans[0].attributes[0].value.boolValue: expected true or false, got a string",
        ),
    ],
)
def test_otlp_json_wrong_shapes_are_400s(
    server: Server, bystander: str, body: bytes, words: str
) -> None:
    r = post_json(server, body)
    assert r.status == 400, r.data
    message = orjson.loads(r.data)["message"]
    assert message.startswith("invalid OTLP/JSON: ")
    assert words in message
    intact(server, bystander)


def _get(server: Server, path: str, **params: str):  # type: ignore[no-untyped-def]
    return server.get(path + "?" + urllib.parse.urlencode(params))


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("{ span.x = nan }", "NaN and infinity cannot be written"),
        ("{ duration > NaN }", "NaN and infinity cannot be written"),
        ("{ span.x > 1e400 }", "number 1e400 is out of range"),
        ("{ span.x < -Infinity }", "NaN and infinity cannot be written"),
        ("{ } >> " * 300 + "{ }", "nested too deeply"),
        ("{ " + " + ".join(["1"] * 300) + " = .a }", "nested too deeply"),
    ],
)
def test_search_non_finite_and_deep_queries_are_400s(
    server: Server, bystander: str, query: str, words: str
) -> None:
    r = _get(server, "/api/search", q=query)
    assert r.status == 400, r.data
    assert words in r.data.decode()
    if "nested" not in words:
        metrics = query.replace(" }", " } | rate()")
        r = _get(server, "/api/metrics/query_range", q=metrics, since="1h", step="60s")
        assert r.status == 400, r.data
        assert words in r.data.decode()
    intact(server, bystander)


def test_metrics_non_finite_constant_is_400(server: Server) -> None:
    query = "({ } | rate()) * (1e308 * 10 - 1e308 * 10)"
    r = _get(server, "/api/metrics/query_range", q=query, since="1h", step="60s")
    assert r.status == 400, r.data
    assert b"out of range in constant expression" in r.data


def test_long_generated_search_query_is_answered(server: Server, bystander: str) -> None:
    """A long run of || (as query builders write) is planned without running out of stack."""
    query = "{" + "||".join([".a=1"] * 600) + '||name="fine"}'  # past the depth limit
    r = _get(server, "/api/search", q=query, start="1699999000", end="1700001000")
    assert r.status == 200, r.data
    assert TRACE in r.data.decode()


def test_garbage_on_zipkin_and_jaeger_doors(server: Server, bystander: str) -> None:
    base = f"http://{HOST}"
    for url, content_type in [
        (f"{base}:{server.zipkin_port}/api/v2/spans", "application/json"),
        (f"{base}:{server.zipkin_port}/api/v2/spans", "application/x-protobuf"),
        (f"{base}:{server.zipkin_port}/api/v1/spans", "application/json"),
        (f"{base}:{server.jaeger_http_port}/api/traces", "application/x-thrift"),
    ]:
        for body in (b"[null]", b"\x0f\x00\x02\x0c\x7f\xff\xff\xff", b'[{"traceId": []}]'):
            r = server.request("POST", url, body=body, headers={"Content-Type": content_type})
            assert r.status == 400, (url, body, r.data)
    # agent datagrams cannot be answered: the server counts them and goes on
    refused = "threadline_receiver_refused_requests_total"
    before = server.metric(refused, reason="invalid_thrift")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"\x82\x21\x01\x09emitBatch\x1c\x1c\xff\xff", (HOST, server.jaeger_compact_port))
    deadline = time.monotonic() + 20
    while server.metric(refused, reason="invalid_thrift") <= before:
        assert time.monotonic() < deadline, "the bad datagram was not counted"
        time.sleep(0.05)
    intact(server, bystander)
