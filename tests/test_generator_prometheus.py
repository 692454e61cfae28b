"""End to end with a real Prometheus: threadline remote-writes its generated series, and
Prometheus' own query API must show exactly the counts, histogram buckets and exemplars that the
pushed traces imply; every exemplar's traceID must resolve through threadline's trace API."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from conftest import Server
from prometheus_server import Prometheus
from test_generator_service_graphs import EDGE_SPANS, otlp
from traceql_dataset import ALL_KEYS, TRACE_IDS, request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Prometheus]]:
    workdir: Path = tmp_path_factory.mktemp("prom")
    prom = Prometheus(workdir / "prometheus").start()
    cfg = {
        "metrics_generator": {
            "processors": ["service-graphs", "span-metrics"],
            "processor": {
                "service_graphs": {"wait": "500ms"},
                "span_metrics": {"dimensions": ["http.method"]},
            },
            "registry": {"collection_interval": "500ms"},
            "storage": {
                "remote_write": [{"url": prom.remote_write_url, "headers": {"X-Test": "1"}}]
            },
        }
    }
    server = Server(workdir / "data", cfg).start()
    try:
        call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
        call(request(ALL_KEYS), timeout=10)
        call(otlp([s for s in EDGE_SPANS if s.key != "E2.B"]), timeout=10)
        time.sleep(0.3)  # the server half of E2 comes in a later batch: paired via the store
        call(otlp([s for s in EDGE_SPANS if s.key == "E2.B"]), timeout=10)
        yield server, prom
    finally:
        server.stop()
        prom.stop()


def settled(prom: Prometheus, expr: str, expected: float, timeout: float = 30.0) -> float | None:
    """Poll Prometheus until ``expr`` has the expected value (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        value = prom.value(expr)
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_span_metrics_in_prometheus(stack: tuple[Server, Prometheus]) -> None:
    _, prom = stack
    assert settled(prom, "sum(traces_spanmetrics_calls_total)", 23) == 23, prom.log()
    assert (
        prom.value(
            'traces_spanmetrics_calls_total{service="frontend",span_name="GET /checkout",'
            'span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR",http_method="GET"}'
        )
        == 1
    )
    sel = 'service="api-gateway",span_name="POST /pay"'
    buckets = prom.query(f"traces_spanmetrics_latency_bucket{{{sel}}}")
    by_le = {dict(labels)["le"]: v for labels, v in buckets.items()}
    assert by_le == {
        **{le: 0.0 for le in ("0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128")},
        **{le: 0.0 for le in ("0.256", "0.512", "1.024")},
        **{le: 1.0 for le in ("2.048", "4.096", "8.192", "16.384", "+Inf")},
    }
    assert prom.value(f"traces_spanmetrics_latency_sum{{{sel}}}") == 2.0
    assert prom.value(f"traces_spanmetrics_latency_count{{{sel}}}") == 1
    sizes = prom.value("sum(traces_spanmetrics_size_total)")
    assert sizes is not None and sizes > 23 * 40
    # the same series are scrapeable from the API port (single tenant: no header needed)
    scraped = stack[0].get("/generator/metrics").data.decode()
    assert 'traces_spanmetrics_calls_total{service="api-gateway",span_name="POST /pay"' in scraped
    # every series carries Tempo's instance label
    instances = prom.query("count by (__metrics_gen_instance) (traces_spanmetrics_calls_total)")
    assert list(instances) == [(("__metrics_gen_instance", socket.gethostname()),)]


def test_service_graph_in_prometheus(stack: tuple[Server, Prometheus]) -> None:
    _, prom = stack
    user_frontend = 'traces_service_graph_request_total{client="user",server="frontend"}'
    assert settled(prom, user_frontend, 3) == 3  # two roots of the TraceQL set, one of E1
    edges = {
        tuple(dict(labels).get(k, "") for k in ("client", "server", "connection_type")): v
        for labels, v in prom.query("traces_service_graph_request_total").items()
    }
    assert edges == {
        ("user", "frontend", "virtual_node"): 3,
        ("user", "api-gateway", "virtual_node"): 1,
        ("frontend", "stripe", "virtual_node"): 1,
        ("frontend", "cart", ""): 1,
        ("cart", "worker", "messaging_system"): 1,
        ("checkout", "payment", ""): 1,
        ("cart", "redis-1", "database"): 1,
        ("checkout", "postgresql", "database"): 1,
        ("product-catalog", "redis", "database"): 1,
        ("payment", "postgresql", "database"): 1,
    }
    failed = prom.query("traces_service_graph_request_failed_total")
    assert {(dict(k)["client"], dict(k)["server"]): v for k, v in failed.items()} == {
        ("user", "frontend"): 1,  # the TraceQL set's T1 root failed
        ("frontend", "cart"): 1,
    }
    edge = 'client="frontend",server="cart"'
    server_buckets = prom.query(f"traces_service_graph_request_server_seconds_bucket{{{edge}}}")
    by_le = {dict(labels)["le"]: v for labels, v in server_buckets.items()}
    assert by_le == {
        "0.1": 0,
        "0.2": 0,
        "0.4": 1,
        "0.8": 1,
        "1.6": 1,
        "3.2": 1,
        "6.4": 1,
        "12.8": 1,
        "+Inf": 1,
    }
    assert prom.value(f"traces_service_graph_request_client_seconds_sum{{{edge}}}") == 0.3
    assert prom.value(f"traces_service_graph_request_server_seconds_sum{{{edge}}}") == 0.25
    unpaired = {
        (dict(k).get("client", ""), dict(k).get("server", "")): v
        for k, v in prom.query("traces_service_graph_unpaired_spans_total").items()
    }
    assert unpaired == {
        ("", "frontend"): 3,
        ("", "api-gateway"): 1,
        ("", "cart"): 1,  # T1's two servers under a server share one key: the later one stays
        ("", "product-catalog"): 1,
        ("", "payment"): 2,
        ("payment", ""): 1,
        ("frontend", ""): 2,
    }


def test_exemplars_resolve_to_traces(stack: tuple[Server, Prometheus]) -> None:
    server, prom = stack
    assert settled(prom, "sum(traces_spanmetrics_calls_total)", 23) == 23
    now = time.time()
    found = prom.exemplars(
        '{__name__=~"traces_spanmetrics_latency_bucket|'
        'traces_service_graph_request_server_seconds_bucket"}',
        now - 600,
        now + 60,
    )
    trace_ids = {ex["labels"]["traceID"] for group in found for ex in group["exemplars"]}
    expected = {tid.hex() for tid in TRACE_IDS.values()} | {"123456789abcdef", "e2" * 16}
    assert trace_ids == expected
    for trace_id in trace_ids:
        r = server.get(f"/api/traces/{trace_id}")
        assert r.status == 200, (trace_id, r.status)
    api_gateway = [
        ex
        for group in found
        if group["seriesLabels"].get("service") == "api-gateway"
        for ex in group["exemplars"]
    ]
    assert [(ex["labels"]["traceID"], float(ex["value"])) for ex in api_gateway] == [
        (TRACE_IDS["T3"].hex(), 2.0)
    ]
