"""Service-graph pairing as Tempo does it: complete edges within and across batches, database
and messaging edges, virtual nodes after expiry, a full store dropping spans, dimensions.

``EDGE_SPANS`` (known edges, durations and failures) is also pushed to a real server and
Prometheus by test_generator_prometheus.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from threadline.config import ServiceGraphsProcessorConfig
from threadline.generator.registry import Registry, trace_id_hex
from threadline.generator.service_graphs import GraphStats, ServiceGraphsProcessor
from threadline.model.otlp_decode import decode_export_request
from traceql_dataset import set_any

BASE_NS = 1_700_000_000_000_000_000
MS = 1_000_000
SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1


@dataclass
class Sp:
    key: str  # "E1.A": trace and letter
    service: str
    kind: int
    start_ms: int
    dur_ms: int
    parent: str | None = None
    error: bool = False
    attrs: dict[str, object] = field(default_factory=dict)
    resource: dict[str, object] = field(default_factory=dict)
    name: str = ""


# E1: frontend (root server) calls cart, which uses redis and publishes to worker; frontend also
#     calls an uninstrumented "stripe" (peer.service) and something unknown; a payment server
#     whose parent never arrives.
# E2: checkout → payment, the client and server spans sent in separate requests.
EDGE_SPANS = [
    Sp("E1.A", "frontend", SERVER, 0, 400),
    Sp("E1.B", "frontend", CLIENT, 10, 300, "E1.A"),
    Sp("E1.C", "cart", SERVER, 20, 250, "E1.B", error=True),
    Sp("E1.D", "cart", CLIENT, 30, 5, "E1.C",
       attrs={"db.system": "redis", "server.address": "redis-1"}),
    Sp("E1.E", "cart", PRODUCER, 40, 2, "E1.C"),
    Sp("E1.F", "worker", CONSUMER, 60, 40, "E1.E"),
    Sp("E1.G", "frontend", CLIENT, 320, 120, "E1.A", attrs={"peer.service": "stripe"}),
    Sp("E1.H", "frontend", CLIENT, 330, 15, "E1.A"),
    Sp("E1.I", "payment", SERVER, 100, 30, "E1.Z"),
    Sp("E1.J", "frontend", INTERNAL, 5, 1, "E1.A"),
    Sp("E2.A", "checkout", CLIENT, 0, 600),
    Sp("E2.B", "payment", SERVER, 50, 500, "E2.A"),
]  # fmt: skip

TRACE_IDS = {"E1": bytes.fromhex("00000000000000000123456789abcdef"), "E2": b"\xe2" * 16}
# what the edges must add up to once everything is paired or expired:
# (client, server, connection_type) -> (requests, failed, client seconds, server seconds)
EXPECTED_EDGES = {
    ("frontend", "cart", ""): (1, 1, 0.3, 0.25),
    ("cart", "redis-1", "database"): (1, 0, 0.005, 0.005),
    ("cart", "worker", "messaging_system"): (1, 0, 0.002, 0.04),
    ("checkout", "payment", ""): (1, 0, 0.6, 0.5),
    ("user", "frontend", "virtual_node"): (1, 0, 0.0, 0.4),
    ("frontend", "stripe", "virtual_node"): (1, 0, 0.12, 0.0),
}
EXPECTED_UNPAIRED = {  # expired halves: the frontend root, E1.G, E1.H, E1.I
    ("", "frontend"): 1,
    ("frontend", ""): 2,
    ("", "payment"): 1,
}


def span_id(key: str) -> bytes:
    trace, letter = key.split(".")
    return bytes([int(trace[1:]) % 256, ord(letter)]) * 4


def otlp(spans: list[Sp], trace_ids: dict[str, bytes] | None = None) -> bytes:
    """An OTLP request with one resource per span."""
    ids = trace_ids or TRACE_IDS
    req = ExportTraceServiceRequest()
    for s in spans:
        rs = req.resource_spans.add()
        set_any(rs.resource.attributes.add(key="service.name").value, s.service)
        for k, v in s.resource.items():
            set_any(rs.resource.attributes.add(key=k).value, v)
        span = rs.scope_spans.add().spans.add()
        span.trace_id = ids[s.key.split(".")[0]]
        span.span_id = span_id(s.key)
        if s.parent:
            span.parent_span_id = span_id(s.parent)
        span.name = s.name or f"op {s.key}"
        span.kind = s.kind  # type: ignore[assignment]
        span.start_time_unix_nano = BASE_NS + s.start_ms * MS
        span.end_time_unix_nano = span.start_time_unix_nano + s.dur_ms * MS
        if s.error:
            span.status.code = Status.STATUS_CODE_ERROR
        for k, v in s.attrs.items():
            set_any(span.attributes.add(key=k).value, v)
    return req.SerializeToString()


def batch_of(spans: list[Sp], trace_ids: dict[str, bytes] | None = None) -> pa.RecordBatch:
    return decode_export_request(otlp(spans, trace_ids)).batch


def keys(*names: str) -> list[Sp]:
    return [s for s in EDGE_SPANS if s.key in names]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Count:
    def __init__(self) -> None:
        self.n = 0.0

    def inc(self, amount: float = 1) -> None:
        self.n += amount


def processor(**cfg: object) -> tuple[ServiceGraphsProcessor, Clock, GraphStats]:
    clock = Clock()
    stats = GraphStats(Count(), Count(), Count(), Count())
    config = ServiceGraphsProcessorConfig.model_validate({"wait": "10s", **cfg})
    return ServiceGraphsProcessor(config, Registry(), stats, clock), clock, stats


def edges(p: ServiceGraphsProcessor) -> dict[tuple[str, ...], tuple[float, float, float, float]]:
    out = {}
    for key in p.request_total.keys:
        client = p.client_seconds.snapshot(key)
        server = p.server_seconds.snapshot(key)
        assert client is not None and server is not None
        out[key] = (
            p.request_total.value(key),
            p.request_failed_total.value(key),
            round(client[1], 6),
            round(server[1], 6),
        )
    return out


def expire_all(p: ServiceGraphsProcessor, clock: Clock) -> int:
    clock.t += 60
    return p.expire(0.0)


def test_complete_edges_within_one_batch() -> None:
    p, _, stats = processor()
    p.consume(batch_of(EDGE_SPANS), 0.0)
    complete = {k: v for k, v in EXPECTED_EDGES.items() if k[2] != "virtual_node"}
    assert edges(p) == complete
    # the root server, the two lonely clients and the orphan server wait
    assert len(p.pending) == 4
    assert stats.edges.n == 4  # type: ignore[attr-defined]
    # buckets: 0.1 · 2^k; client 0.3 s and server 0.25 s both fall in le=0.4
    cum, _, count = p.client_seconds.snapshot(("frontend", "cart", "")) or ([], 0, 0)
    assert (cum, count) == ([0, 0, 1, 1, 1, 1, 1, 1, 1], 1)
    assert p.client_seconds.le == ["0.1", "0.2", "0.4", "0.8", "1.6", "3.2", "6.4", "12.8", "+Inf"]
    # the exemplar is the trace id, hex without leading zeros
    slot = p.client_seconds.index[("frontend", "cart", "")]
    assert trace_id_hex(p.client_seconds.ex_trace[slot, 2].tobytes()) == "123456789abcdef"
    assert p.client_seconds.ex_value[slot, 2] == pytest.approx(0.3)


def test_pairs_across_batches_in_either_order() -> None:
    for first, second in (("E2.A", "E2.B"), ("E2.B", "E2.A")):
        p, _, _ = processor()
        p.consume(batch_of(keys(first)), 0.0)
        assert len(p.pending) == 1 and not p.request_total.keys
        p.consume(batch_of(keys(second)), 0.0)
        assert len(p.pending) == 0
        assert edges(p) == {("checkout", "payment", ""): (1, 0, 0.6, 0.5)}


def test_virtual_nodes_and_unpaired_after_expiry() -> None:
    p, clock, stats = processor()
    p.consume(batch_of(EDGE_SPANS), 0.0)
    clock.t += 5
    assert p.expire(0.0) == 0  # nothing is due before `wait`
    assert expire_all(p, clock) == 4
    assert edges(p) == EXPECTED_EDGES
    unpaired = {k: p.unpaired.value(k) for k in p.unpaired.keys}
    assert unpaired == EXPECTED_UNPAIRED
    assert stats.expired_client.n == 2 and stats.expired_server.n == 2  # type: ignore[attr-defined]
    assert not p.pending


def test_root_server_with_peer_attribute_names_its_client() -> None:
    p, clock, _ = processor()
    root = Sp("E3.A", "api", SERVER, 0, 100, attrs={"peer.service": "mobile-app"})
    p.consume(batch_of([root], {"E3": b"\x03" * 16}), 0.0)
    expire_all(p, clock)
    assert edges(p) == {("mobile-app", "api", "virtual_node"): (1, 0, 0.0, 0.1)}


@pytest.mark.parametrize(
    ("attrs", "resource", "server"),
    [
        ({"db.system": "postgresql"}, {}, "postgresql"),
        ({"db.name": "orders", "db.system": "postgresql"}, {}, "orders"),
        ({"db.namespace": "orders", "peer.service": "pg-main"}, {}, "pg-main"),
        (
            {
                "db.system": "postgresql",
                "network.peer.address": "10.0.0.7",
                "network.peer.port": 5432,
            },
            {},
            "10.0.0.7:5432",
        ),
        ({"db.system": "mysql", "network.peer.address": "db-host"}, {}, "db-host"),
        ({"server.address": "pg.internal"}, {"db.system": "postgresql"}, "pg.internal"),
    ],
)
def test_database_edges_are_complete_at_once(
    attrs: dict[str, object], resource: dict[str, object], server: str
) -> None:
    p, _, _ = processor()
    span = Sp("E4.A", "orders", CLIENT, 0, 20, "E4.Z", attrs=attrs, resource=resource)
    p.consume(batch_of([span], {"E4": b"\x04" * 16}), 0.0)
    assert edges(p) == {("orders", server, "database"): (1, 0, 0.02, 0.02)}
    assert not p.pending


def test_database_name_attributes_are_configurable() -> None:
    p, _, _ = processor(database_name_attributes=["db.instance"])
    span = Sp("E4.A", "orders", CLIENT, 0, 20, attrs={"db.system": "pg", "db.instance": "x"})
    p.consume(batch_of([span], {"E4": b"\x04" * 16}), 0.0)
    assert edges(p) == {("orders", "x", "database"): (1, 0, 0.02, 0.02)}


def test_full_store_drops_spans_and_counts_them() -> None:
    p, clock, stats = processor(max_items=2)
    orphans = [Sp(f"E5.{c}", "inventory", SERVER, 0, 10, f"E5.{c.lower()}") for c in "ABCDE"]
    p.consume(batch_of(orphans, {"E5": b"\x05" * 16}), 0.0)
    assert len(p.pending) == 2
    assert stats.dropped_spans.n == 3  # type: ignore[attr-defined]
    assert p.dropped.value(("", "inventory")) == 3
    # once expired, there is room again
    expire_all(p, clock)
    p.consume(batch_of(keys("E2.A")), 0.0)
    assert len(p.pending) == 1


def test_spans_without_service_name_or_edge_kind_are_ignored() -> None:
    p, _, _ = processor()
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()  # no service.name
    span.trace_id, span.span_id, span.kind = b"\x06" * 16, b"\x01" * 8, SERVER
    span.start_time_unix_nano, span.end_time_unix_nano = BASE_NS, BASE_NS + MS
    p.consume(decode_export_request(req.SerializeToString()).batch, 0.0)
    p.consume(batch_of(keys("E1.J")), 0.0)  # internal
    assert not p.pending and not p.request_total.keys


def test_dimensions_take_the_server_value_and_avoid_collisions() -> None:
    p, _, _ = processor(dimensions=["deployment.environment", "client", "region"])
    assert p.dimension_labels == ["deployment_environment", "__client", "region"]
    client = Sp("E7.A", "web", CLIENT, 0, 100, resource={"deployment.environment": "staging"},
                attrs={"region": "eu", "client": "x"})  # fmt: skip
    server = Sp("E7.B", "api", SERVER, 10, 50, "E7.A", resource={"deployment.environment": "prod"})
    p.consume(batch_of([client, server], {"E7": b"\x07" * 16}), 0.0)
    assert list(p.request_total.keys) == [("web", "api", "", "prod", "x", "eu")]


def test_messaging_system_latency_pairs_producer_and_consumer() -> None:
    p, _, _ = processor()
    p.consume(batch_of(keys("E1.E")), 0.0)
    p.consume(batch_of(keys("E1.F")), 0.0)
    assert edges(p) == {("cart", "worker", "messaging_system"): (1, 0, 0.002, 0.04)}


def test_repeated_key_pairs_once() -> None:
    """Two server spans claiming the same client: one edge; the second waits (as Tempo)."""
    p, _, _ = processor()
    twice = [*keys("E2.A", "E2.B"), Sp("E2.C", "payment", SERVER, 60, 100, "E2.A")]
    p.consume(batch_of(twice), 0.0)
    assert p.request_total.value(("checkout", "payment", "")) == 1
    assert len(p.pending) == 1


def test_large_batch_pairs_everything() -> None:
    """Many traces in one batch: every client pairs with its own server (hash join)."""
    p, _, _ = processor()
    rng = np.random.default_rng(1)
    spans, ids = [], {}
    for i in range(300):
        t = f"E{100 + i}"
        ids[t] = rng.bytes(16)
        spans += [
            Sp(f"{t}.A", f"svc{i % 3}", CLIENT, 0, 10 + i % 7),
            Sp(f"{t}.B", f"svc{(i + 1) % 3}", SERVER, 1, 5, f"{t}.A"),
        ]
    p.consume(batch_of(spans, ids), 0.0)
    assert not p.pending
    assert sum(p.request_total.value(k) for k in p.request_total.keys) == 300
