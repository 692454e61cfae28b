"""Realistic OTLP trace requests for benchmarks, and a fast way to make endless unique copies.

Each request holds ``spans_per_request`` spans of whole traces: a request enters at a frontend,
fans out through several services down to a database and a cache, with typed attributes on
spans and resources, events on some spans and errors with exception events on a few. Templates
are built once with the protobuf classes; ``fresh_copy`` then gives every copy new trace ids and
current timestamps by patching the serialized bytes (an XOR with a per-copy salt, a shift of the
fixed64 times), so no protobuf work is needed while load is being sent.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SERVICES = {
    "frontend": ("GET /", "GET /product/{id}", "POST /cart", "POST /checkout"),
    "checkout": ("PlaceOrder", "PrepareOrderItems", "ChargeCard"),
    "cart": ("GetCart", "AddItem", "EmptyCart"),
    "payment": ("Charge", "ValidateCard"),
    "product-catalog": ("GetProduct", "ListProducts", "SearchProducts"),
    "currency": ("Convert", "GetSupportedCurrencies"),
    "shipping": ("GetQuote", "ShipOrder"),
}
ROUTES = ["/", "/product/{id}", "/cart", "/checkout", "/api/recommendations"]


def _set(attrs, key: str, value: object) -> None:  # type: ignore[no-untyped-def]
    kv = attrs.add(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = str(value)


def _trace_spans(rng: random.Random, start_ns: int) -> list[tuple[str, Span]]:
    """One trace as (service, span) pairs: a tree over 3-6 services, 8-40 spans."""
    trace_id = rng.randbytes(16)
    spans: list[tuple[str, Span]] = []

    def add(service: str, parent: Span | None, depth: int, t0: int) -> int:
        span = Span(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=parent.span_id if parent is not None else b"",
            name=rng.choice(SERVICES[service]),
            kind=Span.SPAN_KIND_SERVER if depth == 0 or rng.random() < 0.5 else 1,
            start_time_unix_nano=t0,
        )
        a = span.attributes
        if depth == 0:
            _set(a, "http.method", rng.choice(["GET", "POST"]))
            _set(a, "http.route", rng.choice(ROUTES))
            _set(a, "http.status_code", rng.choice([200, 200, 200, 201, 404, 500]))
            _set(a, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
        else:
            _set(a, "rpc.system", "grpc")
            _set(a, "rpc.service", f"oteldemo.{service.title()}Service")
            _set(a, "rpc.grpc.status_code", 0)
        _set(a, "app.request_size", rng.randint(100, 5000))
        _set(a, "app.cache_hit", rng.random() < 0.7)
        _set(a, "app.sample_ratio", 0.25)
        t = t0 + rng.randint(50_000, 500_000)
        children = rng.randint(1, 4) if depth < 3 else 0
        for _ in range(children):
            child_service = rng.choice(list(SERVICES))
            t = add(child_service, span, depth + 1, t)
        for _ in range(rng.randint(0, 2) if depth < 3 else 0):
            db = Span(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                parent_span_id=span.span_id,
                name=rng.choice(["SELECT products", "UPDATE cart", "GET"]),
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=t,
                end_time_unix_nano=t + rng.randint(100_000, 3_000_000),
            )
            _set(db.attributes, "db.system", rng.choice(["postgresql", "redis"]))
            _set(db.attributes, "db.operation", db.name.split()[0])
            _set(db.attributes, "net.peer.port", 5432)
            spans.append((service, db))
            t = db.end_time_unix_nano
        if rng.random() < 0.05:
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = "upstream timeout"
            ev = span.events.add(name="exception", time_unix_nano=t)
            _set(ev.attributes, "exception.type", "TimeoutError")
            _set(ev.attributes, "exception.message", "deadline exceeded after 2s")
        elif rng.random() < 0.2:
            ev = span.events.add(name="cache.lookup", time_unix_nano=t0 + 1000)
            _set(ev.attributes, "cache.key_count", rng.randint(1, 20))
        span.end_time_unix_nano = t + rng.randint(10_000, 200_000)
        spans.append((service, span))
        return span.end_time_unix_nano

    add("frontend", None, 0, start_ns)
    return spans


def build_request(
    rng: random.Random, spans_per_request: int, spread_seconds: int = 60
) -> ExportTraceServiceRequest:
    """Whole traces until ``spans_per_request`` is reached, grouped by service (resource);
    traces start at random times within the last ``spread_seconds``."""
    by_service: dict[str, list[Span]] = {}
    count = 0
    spread = spread_seconds * 10**9
    start = time.time_ns() - spread
    while count < spans_per_request:
        for service, span in _trace_spans(rng, start + rng.randint(0, spread)):
            if count >= spans_per_request:
                break
            by_service.setdefault(service, []).append(span)
            count += 1
    req = ExportTraceServiceRequest()
    for service, spans in by_service.items():
        rs = req.resource_spans.add()
        ra = rs.resource.attributes
        _set(ra, "service.name", service)
        _set(ra, "service.version", "1.4.2")
        _set(ra, "deployment.environment", "production")
        _set(ra, "host.name", f"{service}-7d9f8c-{rng.randint(0, 3)}")
        _set(ra, "k8s.namespace.name", "shop")
        _set(ra, "telemetry.sdk.language", "python")
        _set(ra, "telemetry.sdk.version", "1.25.0")
        ss = rs.scope_spans.add()
        ss.scope.name = f"opentelemetry.instrumentation.{service}"
        ss.scope.version = "0.46b0"
        ss.spans.extend(spans)
    return req


def field_positions(req: ExportTraceServiceRequest) -> tuple[np.ndarray, np.ndarray]:
    """Where ``req``'s serialization holds each span's trace id (16 positions per id) and each
    span start, span end and event time (rows of 8 positions, fixed64 little-endian)."""
    raw = req.SerializeToString()
    id_at: set[int] = set()
    time_at: set[int] = set()
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                for needle, into in (
                    (b"\x0a\x10" + s.trace_id, id_at),
                    (b"\x39" + s.start_time_unix_nano.to_bytes(8, "little"), time_at),
                    (b"\x41" + s.end_time_unix_nano.to_bytes(8, "little"), time_at),
                    *(
                        (b"\x09" + e.time_unix_nano.to_bytes(8, "little"), time_at)
                        for e in s.events
                    ),
                ):
                    at = raw.find(needle)
                    while at != -1:
                        into.add(at + 1 if len(needle) == 9 else at + 2)
                        at = raw.find(needle, at + 1)
    ids = np.array(sorted(id_at), dtype=np.int64)
    times = np.array(sorted(time_at), dtype=np.int64)
    return (ids[:, None] + np.arange(16)[None, :]).ravel(), times[:, None] + np.arange(8)[None, :]


def patched(
    data: np.ndarray, id_index: np.ndarray, time_index: np.ndarray, salt: bytes, offset_ns: int
) -> np.ndarray:
    """A copy of serialized ``data`` with every trace id XOR-ed by ``salt`` (16 bytes) and
    every timestamp moved by ``offset_ns`` (positions from ``field_positions``)."""
    out = data.copy()
    out[id_index] ^= np.tile(np.frombuffer(salt, np.uint8), len(id_index) // 16)
    if offset_ns:
        stamps = out[time_index].copy().view("<u8").ravel() + np.uint64(offset_ns)
        out[time_index] = stamps.view(np.uint8).reshape(-1, 8)
    return out


class Template:
    """A serialized request and where its trace ids and timestamps sit, for cheap unique
    copies that look freshly sent."""

    def __init__(self, req: ExportTraceServiceRequest) -> None:
        self.data = np.frombuffer(req.SerializeToString(), dtype=np.uint8)
        self.spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
        self.index, self.time_index = field_positions(req)
        self.built_ns = time.time_ns()

    def fresh_copy(self) -> bytes:
        """The request with every trace id XOR-ed by one new random salt (traces stay whole),
        its timestamps moved by the time since the template was built (so spans are as recent
        as when it was built)."""
        return self._copy(os.urandom(16))

    def _copy(self, salt: bytes) -> bytes:
        return patched(
            self.data, self.index, self.time_index, salt, time.time_ns() - self.built_ns
        ).tobytes()

    def fresh_copy_with_ids(self) -> tuple[bytes, list[bytes]]:
        """Like ``fresh_copy``, plus the copy's distinct trace ids.

        The ids come in the order their traces first appear in the serialized request (the
        order of iterating resource spans, scope spans and spans), each the template's id
        XOR-ed with the copy's salt.
        """
        distinct: np.ndarray | None = getattr(self, "_distinct_ids", None)
        if distinct is None:  # the template's own ids, worked out on first use, then kept
            ids = self.data[self.index].reshape(-1, 16)
            _, first = np.unique(ids, axis=0, return_index=True)
            distinct = self._distinct_ids = ids[np.sort(first)]
        salt = os.urandom(16)
        salt_row = np.frombuffer(salt, dtype=np.uint8)
        return self._copy(salt), [row.tobytes() for row in distinct ^ salt_row]


def templates(
    count: int, spans_per_request: int = 1000, seed: int = 7, spread_seconds: int = 60
) -> list[Template]:
    rng = random.Random(seed)
    return [Template(build_request(rng, spans_per_request, spread_seconds)) for _ in range(count)]
