"""Span tables and OTLP requests with chosen ids and times, for storage and compactor tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from threadline.model.otlp_decode import decode_export_request


def trace_id(n: int) -> bytes:
    return n.to_bytes(8, "big") + b"\x5a" * 8


def request(
    traces: list[int],
    span_ids: range = range(1, 9),
    start_ns: int | None = None,
    service: str = "svc",
    attr: str = "a",
) -> bytes:
    """One OTLP request holding spans ``span_ids`` of each trace in ``traces``; span 1 is the
    root, the others its children. Equal arguments give byte-identical spans."""
    start = time.time_ns() if start_ns is None else start_ns
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    ss = rs.scope_spans.add()
    for n in traces:
        for i in span_ids:
            span = ss.spans.add()
            span.trace_id = trace_id(n)
            span.span_id = i.to_bytes(8, "big")
            if i != 1:
                span.parent_span_id = (1).to_bytes(8, "big")
            span.name = f"op-{i}"
            span.start_time_unix_nano = start + i * 1000
            span.end_time_unix_nano = start + i * 1000 + (100_000 if i == 1 else 500)
            span.attributes.add(key="attr").value.string_value = attr
    return req.SerializeToString()


def table(*args: object, **kwargs: object) -> pa.Table:
    body = request(*args, **kwargs)  # type: ignore[arg-type]
    return pa.Table.from_batches([decode_export_request(body).batch])


def start_server(data_dir: Path, config: dict[str, Any] | None = None) -> Server:
    """A started ``Server``; new ports and another try if one was taken meanwhile (the free-port
    probe and the server's bind are not atomic, and other test processes take ports too)."""
    for attempt in range(3):
        server = Server(data_dir, config)
        try:
            return server.start()
        except RuntimeError as e:
            if "address already in use" not in str(e) or attempt == 2:
                raise
    raise AssertionError("unreachable")
