"""Raw OTLP requests built with the protobuf classes, for tests that need exact control."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SPANS_PER_TRACE = 8


def trace_request(n: int) -> tuple[bytes, str]:
    """One request holding one whole trace; the trace id encodes ``n``."""
    trace_id = n.to_bytes(8, "big") + os.urandom(8)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "durable"
    ss = rs.scope_spans.add()
    for i in range(SPANS_PER_TRACE):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = (i + 1).to_bytes(8, "big")
        if i:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = f"op-{i}"
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 1000
        span.attributes.add(key="n").value.int_value = n
    return req.SerializeToString(), trace_id.hex()


def add_two_span_trace(scope_spans: Any, trace_id: bytes, start_ns: int, name: str) -> None:
    """A root and one child, both named ``name``, starting at ``start_ns``, 5 µs long."""
    for i in range(2):
        span = scope_spans.spans.add()
        span.trace_id = trace_id
        span.span_id = (i + 1).to_bytes(8, "big")
        if i:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = name
        span.start_time_unix_nano = start_ns + i * 1000
        span.end_time_unix_nano = start_ns + 5000
