"""Building spans with the real OpenTelemetry SDK and sending them with its real exporters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode


def make_trace(
    service: str = "checkout", n_children: int = 3, **root_attrs: Any
) -> list[ReadableSpan]:
    """One trace: a server root span with client children, typed attributes and an event."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.cores": 8}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.tracer", "1.2.3")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.method", "GET")
        root.set_attribute("http.status_code", 200)
        root.set_attribute("sampled.ratio", 0.25)
        root.set_attribute("cache.hit", True)
        root.set_attribute("tags", ["a", "b"])
        for k, v in root_attrs.items():
            root.set_attribute(k, v)
        root.add_event("validated", {"items": 3})
        for i in range(n_children):
            with tracer.start_as_current_span(f"db query {i}", kind=SpanKind.CLIENT) as child:
                child.set_attribute("db.system", "postgresql")
                if i == n_children - 1:
                    child.set_status(Status(StatusCode.ERROR, "timeout"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def send(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> None:
    result = exporter.export(spans)
    assert result is SpanExportResult.SUCCESS


def trace_hex(spans: Sequence[ReadableSpan]) -> str:
    return format(spans[0].context.trace_id, "032x")


def span_ids(spans: Sequence[ReadableSpan]) -> set[int]:
    return {s.context.span_id for s in spans}
