"""Logs beside traces, through real OpenTelemetry clients: Python ``logging`` inside spans,
shipped by the SDK's ``LoggingHandler`` with the OTLP log exporters (gRPC and HTTP, protobuf)
and as OTLP/JSON, answered by ``GET /api/traces/{id}/logs`` with exactly the lines of that
trace (and span), in time order, from live data, from blocks after a flush, and after a
``kill -9`` (every acknowledged line is kept by the logs' WAL). Bad bodies are clear 400s."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from conftest import Server
from ui_browser import launch, open_page, shot


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("logs") / "data").start()
    yield server
    server.stop()


class App:
    """A tiny instrumented app: spans from a tracer, records through ``logging``."""

    def __init__(self, exporter: Any, service: str, spans: Any = None) -> None:
        resource = Resource.create({"service.name": service})
        self.provider = LoggerProvider(resource=resource)
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        self.handler = LoggingHandler(level=logging.DEBUG, logger_provider=self.provider)
        self.log = logging.getLogger(f"app.{service}")
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False
        self.log.addHandler(self.handler)
        self.tracing = TracerProvider(resource=resource)
        if spans is not None:
            self.tracing.add_span_processor(SimpleSpanProcessor(spans))
        self.tracer = self.tracing.get_tracer("app")

    def request(self, n: int) -> tuple[str, list[str], str]:
        """One request: a root span and a child, with log lines in each; returns the trace id,
        the lines' bodies in order and the child's span id."""
        bodies = []
        with self.tracer.start_as_current_span("GET /order") as root:
            self.log.info("order %d received", n)
            bodies.append(f"order {n} received")
            with self.tracer.start_as_current_span("charge") as child:
                self.log.warning("card declined for order %d", n, extra={"attempt": 2})
                bodies.append(f"card declined for order {n}")
            self.log.error("order %d failed", n)
            bodies.append(f"order {n} failed")
        return format(root.context.trace_id, "032x"), bodies, format(child.context.span_id, "016x")

    def close(self) -> None:
        self.log.removeHandler(self.handler)
        self.provider.shutdown()
        self.tracing.shutdown()


def trace_logs(srv: Server, trace: str, **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = srv.get(f"/api/traces/{trace}/logs" + (f"?{query}" if query else ""))
    assert r.status == 200, r.data
    return orjson.loads(r.data)["logs"]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_requests_log_lines_are_found_by_its_trace(srv: Server, protocol: str) -> None:
    exporter = (
        GrpcLogs(endpoint=srv.grpc_target, insecure=True)
        if protocol == "grpc"
        else HttpLogs(endpoint=f"{srv.otlp_http}/v1/logs")
    )
    app = App(exporter, f"shop-{protocol}")
    try:
        trace, bodies, child = app.request(1)
        other, other_bodies, _ = app.request(2)
    finally:
        app.close()
    lines = trace_logs(srv, trace)
    assert [line["body"] for line in lines] == bodies
    assert [line["severityText"] for line in lines] == ["INFO", "WARN", "ERROR"]
    assert {line["traceId"] for line in lines} == {trace}
    assert lines[0]["serviceName"] == f"shop-{protocol}"
    assert {"key": "attempt", "value": {"intValue": "2"}} in lines[1]["attributes"]
    assert [line["body"] for line in trace_logs(srv, trace, spanID=child)] == bodies[1:2]
    assert [line["body"] for line in trace_logs(srv, other)] == other_bodies
    # in blocks after a flush, the same
    assert srv.request("POST", srv.api + "/flush").status == 204
    assert [line["body"] for line in trace_logs(srv, trace)] == bodies


def test_otlp_json_logs_with_hex_ids(srv: Server) -> None:
    trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    doc = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"stringValue": "boom"},
                                "traceId": trace,
                                "spanId": span,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    r = srv.request(
        "POST",
        f"{srv.otlp_http}/v1/logs",
        body=orjson.dumps(doc),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 200, r.data
    [line] = trace_logs(srv, trace)
    assert (line["body"], line["spanId"], line["severityNumber"]) == ("boom", span, 17)
    assert line["timeUnixNano"] == "1700000000000000000"


@pytest.mark.parametrize(
    ("body", "content_type", "wanted"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", "invalid OTLP logs protobuf"),
        (b'{"resourceLogs": 3}', "application/json", "invalid OTLP logs JSON"),
        (b"{nope", "application/json", "invalid OTLP logs JSON"),
    ],
)
def test_bad_log_bodies_are_refused_clearly(
    srv: Server, body: bytes, content_type: str, wanted: str
) -> None:
    r = srv.request(
        "POST", f"{srv.otlp_http}/v1/logs", body=body, headers={"Content-Type": content_type}
    )
    assert r.status == 400
    assert wanted in r.data.decode(errors="replace")
    assert srv.get("/ready").status == 200


def test_acknowledged_lines_survive_kill_9(tmp_path: Any) -> None:
    server = Server(tmp_path / "data").start()
    try:
        exporter = GrpcLogs(endpoint=server.grpc_target, insecure=True)
        app = App(exporter, "crashy")
        results: list[Any] = []
        original = exporter.export

        def export(batch: Any) -> Any:
            results.append(original(batch))
            return results[-1]

        exporter.export = export  # type: ignore[method-assign]
        try:
            traces = [app.request(i) for i in range(5)]
        finally:
            app.close()
        assert results and all(r.name == "SUCCESS" for r in results)
        server.kill()
        server.start()
        for trace, bodies, _ in traces:
            assert [line["body"] for line in trace_logs(server, trace)] == bodies
        # written to blocks at the graceful stop, and not read twice after it
        server.stop()
        server.start()
        trace, bodies, _ = traces[0]
        assert [line["body"] for line in trace_logs(server, trace)] == bodies
    finally:
        server.stop()


def test_the_trace_view_shows_the_traces_lines(srv: Server) -> None:
    spans = OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True)
    app = App(GrpcLogs(endpoint=srv.grpc_target, insecure=True), "shop-ui", spans)
    try:
        trace, bodies, _ = app.request(7)
    finally:
        app.close()
    for browser in launch():
        context, page = open_page(browser)
        try:
            # marked on their spans' rows in the timeline: two on the root, one on the child
            page.goto(f"{srv.api}/trace/{trace}")
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=log-mark]').length === 3"
            )
            rows = page.locator("[data-testid=span-row]")
            assert rows.nth(0).locator("[data-testid=log-mark]").count() == 2
            assert rows.nth(1).locator("[data-testid=log-mark]").count() == 1
            shot(page, srv, "trace-log-marks")
            page.goto(f"{srv.api}/trace/{trace}?view=logs")
            lines = page.locator("[data-testid=log-line]")
            lines.first.wait_for()
            assert [lines.nth(i).locator(".body").inner_text() for i in range(3)] == bodies
            assert page.locator("[data-testid=log-count]").inner_text() == "3 of 3 lines"
            shot(page, srv, "trace-logs")
            page.locator("select[aria-label='lowest level']").select_option("17")
            assert page.locator("[data-testid=log-count]").inner_text() == "1 of 3 lines"
            page.locator("[data-testid=log-line] .link-button").click()  # its span: GET /order
            page.locator("[data-testid=span-details]").wait_for()
            assert "GET /order" in page.locator("[data-testid=span-details]").inner_text()
            assert not page.problems
        finally:
            context.close()
