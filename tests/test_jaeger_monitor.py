"""Jaeger UI's Monitor tab without Prometheus: /jaeger/api/metrics/{calls,errors,latencies}
answered from stored spans, in Jaeger's MetricFamily shape, on spans with known counts: calls
per second and error fractions over the ``ratePer`` before each point, latency quantiles in ms,
per service or per operation, for the span kinds asked for (server by default)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server

END_MS = 1_700_000_040_000  # a whole minute
BASE = "/jaeger/api/metrics/"


def _spans() -> bytes:
    """60 'GET /a' (10 ms) and 30 'GET /b' (100 ms, 10 failing) server spans of 'shop' in the
    minute before END_MS, and 40 client spans that the default span kind leaves out."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "shop"
    ss = rs.scope_spans.add()
    n = 0
    for name, count, duration_ms, kind, failing in (
        ("GET /a", 60, 10, 2, 0),
        ("GET /b", 30, 100, 2, 10),
        ("SELECT", 40, 1, 3, 0),
    ):
        for i in range(count):
            n += 1
            span = ss.spans.add(trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"))
            span.name, span.kind = name, kind
            span.start_time_unix_nano = (END_MS - 59_500) * 10**6 + i * 10**9 * 59 // count
            span.end_time_unix_nano = span.start_time_unix_nano + duration_ms * 10**6
            if i < failing:
                span.status.code = 2
    return req.SerializeToString()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("spm") / "data").start()
    r = server.request(
        "POST",
        server.otlp_http + "/v1/traces",
        body=_spans(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status == 200, r.data
    yield server
    server.stop()


def metrics(server: Server, kind: str, status: int = 200, **params: object) -> dict:
    query = {"service": "shop", "endTs": END_MS, "lookback": 120_000, "step": 60_000,
             "ratePer": 60_000, **params}  # fmt: skip
    r = server.get(BASE + kind + "?" + urlencode(query, doseq=True))
    assert r.status == status, r.data
    return orjson.loads(r.data)


def point(value: float, ms: int) -> dict:
    stamp = {END_MS: "2023-11-14T22:14:00Z", END_MS - 60_000: "2023-11-14T22:13:00Z"}[ms]
    return {"gaugeValue": {"doubleValue": value}, "timestamp": stamp}


def test_call_rates_per_service_and_operation(srv: Server) -> None:
    assert metrics(srv, "calls") == {
        "name": "service_call_rate",
        "type": "GAUGE",
        "help": "calls/sec, grouped by service",
        "metrics": [
            {
                "labels": [{"name": "service_name", "value": "shop"}],
                "metricPoints": [point(0.0, END_MS - 60_000), point(1.5, END_MS)],
            }
        ],
    }
    grouped = metrics(srv, "calls", groupByOperation="true")
    assert grouped["name"] == "service_operation_call_rate"
    assert grouped["help"] == "calls/sec, grouped by service & operation"
    assert [(m["labels"], m["metricPoints"][-1]) for m in grouped["metrics"]] == [
        (
            [{"name": "service_name", "value": "shop"}, {"name": "operation", "value": "GET /a"}],
            point(1.0, END_MS),
        ),
        (
            [{"name": "service_name", "value": "shop"}, {"name": "operation", "value": "GET /b"}],
            point(0.5, END_MS),
        ),
    ]
    clients = metrics(srv, "calls", spanKind="client", groupByOperation="true")
    (select,) = clients["metrics"]
    assert select["labels"][1] == {"name": "operation", "value": "SELECT"}
    assert select["metricPoints"][-1] == point(round(40 / 60, 6), END_MS)
    both = metrics(srv, "calls", spanKind=["server", "client"])
    assert both["metrics"][0]["metricPoints"][-1] == point(round(130 / 60, 6), END_MS)


def test_error_fractions(srv: Server) -> None:
    doc = metrics(srv, "errors", groupByOperation="true")
    assert doc["name"] == "service_operation_error_rate"
    # no calls in the first minute: no point there
    assert [m["metricPoints"] for m in doc["metrics"]] == [
        [point(0.0, END_MS)],
        [point(round(10 / 30, 6), END_MS)],
    ]
    (whole,) = metrics(srv, "errors")["metrics"]
    assert whole["metricPoints"] == [point(round(10 / 90, 6), END_MS)]


def test_latency_quantiles_in_milliseconds(srv: Server) -> None:
    doc = metrics(srv, "latencies", quantile=0.95, groupByOperation="true")
    assert doc["name"] == "service_operation_latencies"
    assert doc["help"] == "0.95th quantile latency, grouped by service & operation"
    a, b = (m["metricPoints"][-1]["gaugeValue"]["doubleValue"] for m in doc["metrics"])
    # estimated inside the log2 bucket that holds every span: (2^23, 2^24] ns for 10 ms,
    # (2^26, 2^27] ns for 100 ms, at the 95th percentile of the bucket's spans
    assert 2**23 / 1e6 < a <= 2**24 / 1e6 and a == pytest.approx(2 ** (23 + 0.95) / 1e6)
    assert 2**26 / 1e6 < b <= 2**27 / 1e6 and b == pytest.approx(2 ** (26 + 0.95) / 1e6)
    (whole,) = metrics(srv, "latencies", quantile=0.5)["metrics"]
    (median,) = whole["metricPoints"]
    assert 2**23 / 1e6 < median["gaugeValue"]["doubleValue"] <= 2**24 / 1e6  # 60 of 90 at 10 ms


def test_what_the_ui_sends_and_bad_requests(srv: Server) -> None:
    # the UI sends quantile to every kind, and its default step and ratePer
    doc = metrics(srv, "calls", quantile=0.95, step=60_000, ratePer=600_000, lookback=600_000)
    points = doc["metrics"][0]["metricPoints"]
    assert points[-1] == point(0.15, END_MS)  # 90 calls over the ten minutes before
    assert len(points) == 10
    assert "quantile" in metrics(srv, "latencies", 400)["errors"][0]["msg"]
    assert metrics(srv, "calls", 400, service=[])["errors"][0]["code"] == 400
    assert "spanKind" in metrics(srv, "calls", 400, spanKind="sideways")["errors"][0]["msg"]
    assert "endTs" in metrics(srv, "calls", 400, endTs="yesterday")["errors"][0]["msg"]
    assert metrics(srv, "calls", service="nobody")["metrics"] == []
    r = srv.get(BASE + "minstep")
    assert orjson.loads(r.data)["data"] == 1000
