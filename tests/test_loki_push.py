"""Loki's push API on the HTTP API port, end to end: Python ``logging`` inside spans shipped by a
real Loki client (``python-logging-loki``) as JSON lines carrying the span's ``trace_id`` and
``span_id``, and snappy-compressed protobuf pushes (as Promtail and Alloy send) with the ids in
structured metadata; each request's lines are then the trace's lines. Bad bodies are 400s that
say what is wrong."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import cramjam
import logging_loki
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from conftest import Server
from threadline.model.loki_push import PushRequest


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("loki") / "data").start()
    yield server
    server.stop()


class JsonWithTrace(logging.Formatter):
    """A JSON line with the current span's ids, as JSON log formatters inject them."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = trace.get_current_span().get_span_context()
        return json.dumps(
            {
                "msg": record.getMessage(),
                "level": record.levelname.lower(),
                "trace_id": format(ctx.trace_id, "032x"),
                "span_id": format(ctx.span_id, "016x"),
            }
        )


def bodies(srv: Server, trace_id: str) -> list[str]:
    r = srv.get(f"/api/traces/{trace_id}/logs")
    assert r.status == 200, r.data
    return [line["body"] for line in orjson.loads(r.data)["logs"]]


def test_a_loki_client_ships_a_requests_lines(srv: Server) -> None:
    handler = logging_loki.LokiHandler(
        url=f"{srv.api}/loki/api/v1/push", tags={"service_name": "py-loki"}, version="1"
    )
    handler.setFormatter(JsonWithTrace())
    log = logging.getLogger("loki-app")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    tracer = TracerProvider().get_tracer("loki-app")
    try:
        with tracer.start_as_current_span("GET /basket") as span:
            log.info("basket opened")
            log.warning("basket almost full")
    finally:
        log.removeHandler(handler)
    trace_id = format(span.get_span_context().trace_id, "032x")
    lines = [json.loads(b)["msg"] for b in bodies(srv, trace_id)]
    assert lines == ["basket opened", "basket almost full"]
    r = srv.get(f"/api/traces/{trace_id}/logs")
    first = orjson.loads(r.data)["logs"][0]
    assert first["serviceName"] == "py-loki"
    assert first["spanId"] == format(span.get_span_context().span_id, "016x")


def snappy_push(srv: Server, streams: list[dict[str, Any]]) -> Any:
    req = PushRequest()
    for stream in streams:
        s = req.streams.add()
        s.labels = stream["labels"]
        for ns, line, metadata in stream["entries"]:
            e = s.entries.add()
            e.timestamp.seconds, e.timestamp.nanos = divmod(ns, 10**9)
            e.line = line
            for name, value in metadata.items():
                e.structuredMetadata.add(name=name, value=value)
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    return srv.request(
        "POST",
        srv.api + "/loki/api/v1/push",
        body=body,
        headers={"Content-Type": "application/x-protobuf"},
    )


def test_snappy_protobuf_pushes_with_ids_in_structured_metadata(srv: Server) -> None:
    trace_id, now = "4bf92f3577b34da6a3ce929d0e0e4736", time.time_ns()
    r = snappy_push(
        srv,
        [
            {
                "labels": '{service_name="promtail-app", level="error"}',
                "entries": [
                    (
                        now,
                        "payment declined",
                        {"trace_id": trace_id, "span_id": "00f067aa0ba902b7"},
                    ),
                    (now + 1000, "unrelated line", {}),
                    (now + 2000, "retry scheduled", {"trace_id": trace_id}),
                ],
            }
        ],
    )
    assert r.status == 204, r.data
    assert bodies(srv, trace_id) == ["payment declined", "retry scheduled"]
    [first, _] = orjson.loads(srv.get(f"/api/traces/{trace_id}/logs").data)["logs"]
    assert (first["severityText"], first["severityNumber"]) == ("error", 17)
    assert first["serviceName"] == "promtail-app"


@pytest.mark.parametrize(
    ("body", "content_type", "wanted"),
    [
        (b"{not json", "application/json", "invalid"),
        (
            b'{"streams": [{"stream": {"a": "b"}, "values": [["1", 2]]}]}',
            "application/json",
            "line",
        ),
        (b"\x00\x01garbage", "application/x-protobuf", "snappy"),
    ],
)
def test_bad_pushes_are_refused_clearly(
    srv: Server, body: bytes, content_type: str, wanted: str
) -> None:
    r = srv.request(
        "POST", srv.api + "/loki/api/v1/push", body=body, headers={"Content-Type": content_type}
    )
    assert r.status == 400
    assert wanted in r.data.decode().lower()
    assert srv.get("/ready").status == 200


def test_the_seed_pattern_end_to_end(srv: Server) -> None:
    """One app logs with Python ``logging`` inside its spans; its lines go out by both routes
    (the OTLP logs handler, and JSON lines with the ids injected through a Loki client), its
    spans over OTLP; the trace view of one request shows exactly that request's lines."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from ui_browser import launch, open_page, shot

    resource = Resource.create({"service.name": "seed-shop"})
    tracing = TracerProvider(resource=resource)
    tracing.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True))
    )
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=srv.grpc_target, insecure=True))
    )
    loki = logging_loki.LokiHandler(
        url=f"{srv.api}/loki/api/v1/push", tags={"service_name": "seed-shop"}, version="1"
    )
    loki.setFormatter(JsonWithTrace())
    log = logging.getLogger("seed-shop")
    log.propagate = False
    log.setLevel(logging.INFO)
    otlp = LoggingHandler(level=logging.INFO, logger_provider=logs)
    log.addHandler(otlp)
    log.addHandler(loki)
    tracer = tracing.get_tracer("seed-shop")
    try:
        ids = []
        for n in (1, 2):
            with tracer.start_as_current_span(f"POST /orders/{n}") as span:
                log.info("order %d accepted", n)
                with tracer.start_as_current_span("reserve stock"):
                    log.warning("stock low for order %d", n)
            ids.append(format(span.get_span_context().trace_id, "032x"))
    finally:
        log.removeHandler(otlp)
        log.removeHandler(loki)
        logs.shutdown()
        tracing.shutdown()
    one = ids[0]
    found = bodies(srv, one)
    # each line twice: once by OTLP (the message), once by Loki (the JSON line)
    plain = sorted(b for b in found if not b.startswith("{"))
    assert plain == ["order 1 accepted", "stock low for order 1"]
    assert sorted(json.loads(b)["msg"] for b in found if b.startswith("{")) == plain
    for browser in launch():
        context, page = open_page(browser)
        try:
            page.goto(f"{srv.api}/trace/{one}?view=logs")
            rows = page.locator("[data-testid=log-line]")
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=log-line]').length === 4"
            )
            texts = [rows.nth(i).locator(".body").inner_text() for i in range(4)]
            assert not any("order 2" in t for t in texts)
            shot(page, srv, "seed-pattern")
            assert not page.problems
        finally:
            context.close()
