"""Three traces with known structure, durations, statuses and attributes, as OTLP requests.

T1  frontend "GET /checkout" server 500ms status=error http.method=GET http.status_code=500
    ├─ checkout "PlaceOrder" server 300ms
    │   ├─ payment "Charge" client 200ms status=error, event "exception"
    │   └─ checkout "db query" client 20ms db.system=postgresql cached=true
    └─ cart "GetCart" server 50ms
T2  frontend "GET /" server 100ms http.method=GET http.status_code=200
    └─ product-catalog "ListProducts" server 40ms
        └─ product-catalog "SELECT" client 10ms db.system=redis cached=false
T3  api-gateway "POST /pay" server 2s http.method=POST http.status_code=201
    └─ payment "Charge" server 1.5s amount=12.5 retry=true
        └─ payment "db query" client 100ms db.system=postgresql
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

BASE_NS = 1_700_000_000_000_000_000
MS = 1_000_000


@dataclass
class S:
    key: str  # "T1.A" ...: trace and a letter, unique
    service: str
    name: str
    kind: int
    start_ms: int
    dur_ms: int
    parent: str | None = None
    error: bool = False
    attrs: dict[str, object] = field(default_factory=dict)
    event: str | None = None


SPANS = [
    S("T1.A", "frontend", "GET /checkout", 2, 0, 500, None, True,
      {"http.method": "GET", "http.status_code": 500}),
    S("T1.B", "checkout", "PlaceOrder", 2, 10, 300, "T1.A"),
    S("T1.C", "payment", "Charge", 3, 20, 200, "T1.B", True, event="exception"),  # + exception.type
    S("T1.D", "checkout", "db query", 3, 250, 20, "T1.B",
      attrs={"db.system": "postgresql", "cached": True}),
    S("T1.E", "cart", "GetCart", 2, 320, 50, "T1.A"),
    S("T2.A", "frontend", "GET /", 2, 0, 100, None, False,
      {"http.method": "GET", "http.status_code": 200}),
    S("T2.B", "product-catalog", "ListProducts", 2, 10, 40, "T2.A"),
    S("T2.C", "product-catalog", "SELECT", 3, 20, 10, "T2.B",
      attrs={"db.system": "redis", "cached": False}),
    S("T3.A", "api-gateway", "POST /pay", 2, 0, 2000, None, False,
      {"http.method": "POST", "http.status_code": 201}),
    S("T3.B", "payment", "Charge", 2, 100, 1500, "T3.A", attrs={"amount": 12.5, "retry": True}),
    S("T3.C", "payment", "db query", 3, 200, 100, "T3.B", attrs={"db.system": "postgresql"}),
]  # fmt: skip

TRACE_IDS = {f"T{i}": bytes([0xA0 + i]) * 16 for i in (1, 2, 3)}


def span_id(key: str) -> bytes:
    trace, letter = key.split(".")
    return bytes([int(trace[1:]), ord(letter)]) * 4


def trace_of(key: str) -> str:
    return key.split(".")[0]


def set_any(value: AnyValue, v: object) -> None:
    """Set an OTLP AnyValue from a Python value: scalars, bytes, dicts (kvlist), lists."""
    if isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, int):
        value.int_value = v
    elif isinstance(v, float):
        value.double_value = v
    elif isinstance(v, bytes):
        value.bytes_value = v
    elif isinstance(v, dict):
        value.kvlist_value.SetInParent()
        for k, item in v.items():
            set_any(value.kvlist_value.values.add(key=k).value, item)
    elif isinstance(v, list):
        value.array_value.SetInParent()
        for item in v:
            set_any(value.array_value.values.add(), item)
    else:
        value.string_value = str(v)


def request(keys: list[str], offset_ms: int = 0) -> bytes:
    """An OTLP request with the given spans (one resource per span, to keep it simple)."""
    req = ExportTraceServiceRequest()
    for s in (s for s in SPANS if s.key in keys):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = s.service
        span = rs.scope_spans.add().spans.add()
        span.trace_id = TRACE_IDS[trace_of(s.key)]
        span.span_id = span_id(s.key)
        if s.parent:
            span.parent_span_id = span_id(s.parent)
        span.name = s.name
        span.kind = s.kind
        span.start_time_unix_nano = BASE_NS + (offset_ms + s.start_ms) * MS
        span.end_time_unix_nano = span.start_time_unix_nano + s.dur_ms * MS
        if s.error:
            span.status.code = Status.STATUS_CODE_ERROR
        for k, v in s.attrs.items():
            set_any(span.attributes.add(key=k).value, v)
        if s.event:
            event = span.events.add(name=s.event, time_unix_nano=span.start_time_unix_nano + MS)
            event.attributes.add(key="exception.type").value.string_value = "TimeoutError"
        if s.key.startswith("T3"):  # T3's spans come from an instrumentation scope with attributes
            scope = rs.scope_spans[0].scope
            scope.name, scope.version = "shop.payments", "2.0"
            scope.attributes.add(key="team").value.string_value = "payments"
    return req.SerializeToString()


def key_of(span_hex: str) -> str:
    """The dataset key of a returned span."""
    for s in SPANS:
        if span_id(s.key).hex() == span_hex:
            return s.key
    raise KeyError(span_hex)


ALL_KEYS = [s.key for s in SPANS]


def push_t1_in_a_block(server: Any) -> None:
    """Push the data set into a test server (``conftest.Server``) over OTLP/gRPC: T1 first, cut
    into a block, then T2 and T3, which stay live, so answers must merge both."""
    call = grpc.insecure_channel(server.grpc_target).unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    )
    call(request([k for k in ALL_KEYS if k.startswith("T1")]), timeout=10)
    server.flush()
    call(request([k for k in ALL_KEYS if not k.startswith("T1")]), timeout=10)
