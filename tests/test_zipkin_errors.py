"""Errors and exceptions through the Zipkin API, whoever sent them: an OpenTelemetry SDK span
with an error status and a recorded exception (OTLP), and a span from the SDK's Zipkin exporter
(an ``error`` tag). Lens finds both with ``annotationQuery=error``, sees the exception's type,
message and stack trace in its annotation, and the Jaeger API shows one ``error`` tag each."""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from conftest import Server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("zerr") / "data").start()
    yield server
    server.stop()


def _send(exporter: object, service: str, fail: str) -> str:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("checkout", record_exception=False) as span:
        try:
            raise ValueError("card <declined> & retried")
        except ValueError as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, fail))
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, str]:
    return {
        "otlp": _send(OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True), "by-otlp", "no"),
        "zipkin": _send(
            ZipkinExporter(endpoint=f"http://127.0.0.1:{srv.zipkin_port}/api/v2/spans"),
            "by-zipkin",
            "declined",
        ),
    }


def zipkin(srv: Server, path: str) -> object:
    r = srv.get("/zipkin/api/v2" + path)
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def found(srv: Server, query: str) -> set[str]:
    end = int(time.time() * 1000) + 60_000
    traces = zipkin(srv, f"/traces?annotationQuery={query}&endTs={end}&lookback=3600000")
    assert isinstance(traces, list)
    return {t[0]["traceId"] for t in traces}


def test_error_search_finds_error_statuses_however_they_came(
    srv: Server, traces: dict[str, str]
) -> None:
    assert found(srv, "error") == {traces["otlp"], traces["zipkin"]}
    # the error tag's value is the status message
    assert found(srv, "error%3Dno") == {traces["otlp"]}
    assert found(srv, "error%3Ddeclined") == {traces["zipkin"]}
    assert found(srv, "error%3Dtrue") == set()


def test_exception_events_carry_type_message_and_stack(srv: Server, traces: dict[str, str]) -> None:
    (span,) = zipkin(srv, f"/trace/{traces['otlp']}")  # type: ignore[misc]
    assert span["tags"]["error"] == "no"
    (annotation,) = span["annotations"]
    name, attrs, dropped = annotation["value"].split("|")
    assert name == "exception" and dropped == "0"
    # compact JSON, keys sorted, <, > and & escaped as Go's encoder does
    assert attrs.startswith("{") and " " not in attrs.partition('"exception.message"')[0]
    assert '"exception.message":"card \\u003cdeclined\\u003e \\u0026 retried"' in attrs
    fields = orjson.loads(attrs)
    assert list(fields) == sorted(fields)
    assert fields["exception.type"] == "ValueError"
    assert fields["exception.message"] == "card <declined> & retried"
    assert "Traceback" in fields["exception.stacktrace"]


def test_jaeger_shows_one_error_tag(srv: Server, traces: dict[str, str]) -> None:
    for trace_id in traces.values():
        r = srv.get(f"/jaeger/api/traces/{trace_id}")
        assert r.status == 200, r.data
        (span,) = orjson.loads(r.data)["data"][0]["spans"]
        errors = [t for t in span["tags"] if t["key"] == "error"]
        assert errors == [{"key": "error", "type": "bool", "value": True}]
    r = srv.get(f"/jaeger/api/traces/{traces['zipkin']}")
    (span,) = orjson.loads(r.data)["data"][0]["spans"]
    described = [t["value"] for t in span["tags"] if t["key"] == "otel.status_description"]
    assert described == ["declined"]
