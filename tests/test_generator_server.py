"""The generator inside a running server: ``GET /generator/metrics`` per tenant on the API port
(text or OpenMetrics), its self-metrics on ``/metrics``, off by default, and a remote-write
endpoint that is down neither failing nor slowing pushes while its drops are counted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from conftest import HOST, Server, free_port
from traceql_dataset import ALL_KEYS, request

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def push(server: Server, body: bytes, tenant: str | None = None) -> None:
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
    metadata = (("x-scope-orgid", tenant),) if tenant else None
    call(body, metadata=metadata, timeout=10)


def wait_for(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture(scope="module")
def mt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cfg = {
        "multitenancy_enabled": True,
        "metrics_generator": {
            "processors": ["span-metrics", "service-graphs"],
            "processor": {"service_graphs": {"wait": "300ms"}},
            "overrides": {"quiet": {"processors": []}},
        },
    }
    server = Server(tmp_path_factory.mktemp("gen") / "data", cfg).start()
    push(server, request(ALL_KEYS), "alpha")
    push(server, request([k for k in ALL_KEYS if k.startswith("T2")]), "beta")
    push(server, request(ALL_KEYS), "quiet")
    yield server
    server.stop()


def series_total(text: str, name: str) -> float:
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def test_each_tenant_sees_its_own_series(mt_server: Server) -> None:
    def text(tenant: str) -> str:
        r = mt_server.get("/generator/metrics", headers={"X-Scope-OrgID": tenant})
        assert r.status == 200, r.data
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.data.decode()

    assert series_total(text("alpha"), "traces_spanmetrics_calls_total") == 11
    assert series_total(text("beta"), "traces_spanmetrics_calls_total") == 3
    assert 'service="api-gateway"' not in text("beta")
    assert text("quiet") == ""  # processors off for this tenant by override
    assert text("nobody") == ""
    # virtual nodes appear once the root servers' wait is over
    edges = wait_for(lambda: 'client="user"' in text("alpha"))
    assert edges, text("alpha")
    assert 'traces_service_graph_request_total{client="user",server="frontend",' in text("alpha")


def test_missing_tenant_is_refused(mt_server: Server) -> None:
    r = mt_server.get("/generator/metrics")
    assert r.status == 401 and r.data == b"no org id"


def test_openmetrics_on_request_with_exemplars(mt_server: Server) -> None:
    r = mt_server.get(
        "/generator/metrics",
        headers={
            "X-Scope-OrgID": "alpha",
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        },
    )
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(r.data.decode())}
    samples = families["traces_spanmetrics_latency"].samples
    trace_ids = {s.exemplar.labels["traceID"] for s in samples if s.exemplar is not None}
    assert trace_ids == {"a1" * 16, "a2" * 16, "a3" * 16}


def test_self_metrics_on_the_server_metrics(mt_server: Server) -> None:
    def received() -> float:
        return mt_server.metric("threadline_generator_spans_received_total", tenant="alpha")

    # the generator takes spans after the push is acknowledged
    assert wait_for(lambda: received() == 11), received()
    assert mt_server.metric("threadline_generator_spans_received_total", tenant="quiet") == 0
    assert mt_server.metric("threadline_generator_consume_seconds_total", tenant="alpha") > 0
    # the generated series themselves are not on /metrics
    assert "traces_spanmetrics" not in mt_server.get("/metrics").data.decode()


def test_generator_is_off_by_default(server: Server) -> None:
    push(server, request(ALL_KEYS))
    assert server.get("/generator/metrics").data == b""
    assert server.metric("threadline_generator_spans_received_total") == 0


def test_dead_remote_write_endpoint_never_slows_ingest(tmp_path: Path) -> None:
    dead = f"http://{HOST}:{free_port()}/api/v1/write"  # nothing listens there
    cfg = {
        "metrics_generator": {
            "processors": ["span-metrics", "service-graphs"],
            "registry": {"collection_interval": "100ms"},
            "storage": {
                "remote_write": [
                    {
                        "url": dead,
                        "name": "dead",
                        "queue_config": {
                            "capacity": 200,
                            "max_retries": 1,
                            "min_backoff": "50ms",
                            "max_backoff": "100ms",
                        },
                    }
                ],
                "remote_write_flush_deadline": "1s",
            },
        }
    }
    server = Server(tmp_path / "data", cfg).start()
    try:
        call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
        body = request(ALL_KEYS)
        call(body, timeout=10)  # warm up the channel
        latencies = []
        t_end = time.monotonic() + 2.0  # pushes while collections pile up behind the dead endpoint
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            call(body, timeout=10)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()
        assert len(latencies) > 20
        # a push that waited on the endpoint would take a retry backoff (50-100 ms) or more
        assert latencies[len(latencies) // 2] < 0.05, latencies[-5:]
        assert latencies[-1] < 2.0, latencies[-5:]
        dropped = wait_for(
            lambda: server.metric("threadline_generator_remote_write_samples_dropped_total")
        )
        assert dropped > 0
        assert (
            server.metric(
                "threadline_generator_remote_write_failed_requests_total",
                remote="dead",
                reason="connection",
            )
            > 0
        )
        queue_full = server.metric(
            "threadline_generator_remote_write_samples_dropped_total",
            remote="dead",
            reason="queue_full",
        )
        assert queue_full > 0  # collections every 100 ms outgrow the 200-sample queue
        t0 = time.monotonic()
    finally:
        server.stop()
    assert time.monotonic() - t0 < 5  # stopping waits at most the flush deadline
