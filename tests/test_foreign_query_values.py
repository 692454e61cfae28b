"""What Jaeger UI and Zipkin Lens show for non-scalar attributes, and Lens's remote services.

A trace across two services: ``web`` calls ``orders`` (peer.service), which calls ``postgres``.
Array, key-value list, bytes and empty attribute values must come out as the OpenTelemetry
Collector's Jaeger and Zipkin translators write them (compact JSON text, base64 for bytes).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from conftest import Server

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
START_NS = 1_700_000_000_000_000_000


def _request() -> bytes:
    req = ExportTraceServiceRequest()

    def span(service: str, span_id: int, parent: int, peer: str) -> Span:
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        s = rs.scope_spans.add().spans.add(
            trace_id=TRACE,
            span_id=span_id.to_bytes(8, "big"),
            parent_span_id=parent.to_bytes(8, "big") if parent else b"",
            name=f"{service} call",
            kind=3,
            start_time_unix_nano=START_NS + span_id * 1000,
            end_time_unix_nano=START_NS + 10**6,
        )
        s.attributes.add(key="peer.service").value.string_value = peer
        return s

    web = span("web", 1, 0, "orders")
    accept = web.attributes.add(key="accept").value.array_value.values
    accept.add(string_value="application/json")
    accept.add(int_value=3)
    accept.add(bool_value=True)
    labels = web.attributes.add(key="labels").value.kvlist_value.values
    labels.add(key="team").value.string_value = "shop"
    labels.add(key="tier").value.array_value.values.add(double_value=1.5)
    web.attributes.add(key="raw").value.bytes_value = b"\x00\xffhi"
    web.attributes.add(key="nothing").value.CopyFrom(AnyValue())
    span("orders", 2, 1, "postgres")
    return req.SerializeToString()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("fqv") / "data").start()
    grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)(_request(), timeout=10)
    yield server
    server.stop()


def get(server: Server, path: str) -> object:
    r = server.get(path)
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def test_jaeger_tags_of_composite_values(srv: Server) -> None:
    doc = get(srv, f"/jaeger/api/traces/{TRACE.hex()}")
    assert isinstance(doc, dict)
    (trace,) = doc["data"]
    web = next(s for s in trace["spans"] if s["operationName"] == "web call")
    tags = {t["key"]: t for t in web["tags"]}
    assert tags["accept"] == {
        "key": "accept",
        "type": "string",
        "value": '["application/json",3,true]',
    }
    assert tags["labels"] == {
        "key": "labels",
        "type": "string",
        "value": '{"team":"shop","tier":[1.5]}',
    }
    assert tags["raw"] == {"key": "raw", "type": "binary", "value": "AP9oaQ=="}
    assert tags["nothing"] == {"key": "nothing", "type": "string", "value": ""}


def test_zipkin_tags_of_composite_values(srv: Server) -> None:
    spans = get(srv, f"/zipkin/api/v2/trace/{TRACE.hex()}")
    assert isinstance(spans, list)
    web = next(s for s in spans if s["name"] == "web call")
    assert web["tags"] == {
        "peer.service": "orders",
        "accept": '["application/json",3,true]',
        "labels": '{"team":"shop","tier":[1.5]}',
        "raw": "AP9oaQ==",
        "nothing": "",
    }
    assert web["remoteEndpoint"] == {"serviceName": "orders"}


def test_zipkin_remote_services_are_those_the_service_called(srv: Server) -> None:
    assert get(srv, "/zipkin/api/v2/remoteServices?serviceName=web") == ["orders"]
    assert get(srv, "/zipkin/api/v2/remoteServices?serviceName=orders") == ["postgres"]
    assert get(srv, "/zipkin/api/v2/remoteServices?serviceName=nobody") == []


def test_zipkin_search_by_remote_service_in_any_case(srv: Server) -> None:
    window = f"endTs={START_NS // 10**6 + 1000}&lookback=60000"
    for remote in ("postgres", "PostGres"):
        found = get(srv, f"/zipkin/api/v2/traces?remoteServiceName={remote}&{window}")
        assert isinstance(found, list)
        assert [[s["name"] for s in t] for t in found] == [["web call", "orders call"]]
    assert get(srv, f"/zipkin/api/v2/traces?remoteServiceName=postgre&{window}") == []
    both = f"serviceName=WEB&remoteServiceName=postgres&{window}"
    assert get(srv, f"/zipkin/api/v2/traces?{both}") == []  # web called orders, not postgres
    assert (
        len(get(srv, f"/zipkin/api/v2/traces?serviceName=WEB&remoteServiceName=Orders&{window}"))
        == 1
    )
