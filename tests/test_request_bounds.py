"""Cheap requests that would cost a lot are bounded: metrics queries by series, Jaeger and Zipkin
search by result count, and every number parameter of every query route by range (NaN,
infinities and values past int64 nanoseconds are 400 naming the parameter, never 500)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server

MAX_SERIES = 50


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("bounds") / "data",
        {"querier": {"max_metrics_series": MAX_SERIES, "max_result_limit": 20}},
    ).start()
    yield server
    server.stop()


def push(srv: Server, service: str, spans: int, first_id: int) -> None:
    """``spans`` root spans, one per trace, with unique span ids from ``first_id``."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = service
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(first_id, first_id + spans):
        span = ss.spans.add()
        span.trace_id = i.to_bytes(16, "big")
        span.span_id = i.to_bytes(8, "big")
        span.name = "op"
        span.start_time_unix_nano = now - 10**9
        span.end_time_unix_nano = now - 10**9 + 1000
    r = srv.request(
        "POST",
        srv.otlp_http + "/v1/traces",
        body=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status == 200, r.data


def metrics(srv: Server, query: str, route: str = "query_range") -> tuple[int, bytes]:
    r = srv.get(f"/api/metrics/{route}?q={quote(query)}&since=1h")
    return r.status, r.data


def test_metrics_series_are_capped_before_the_answer_is_built(srv: Server) -> None:
    # 40 spans in a block and 40 live: each source is under the cap, together they are over
    push(srv, "series-a", 40, 1000)
    srv.flush()
    status, body = metrics(srv, "{ } | count_over_time() by (span:id)")
    assert status == 200, body
    assert len(orjson.loads(body)["series"]) == 40
    push(srv, "series-b", 40, 2000)
    for route in ("query_range", "query"):
        for query in (
            "{ } | rate() by (span:id)",
            "{ } | rate() by (span:id, resource.service.name)",
            "{ } | quantile_over_time(duration, .5, .9) by (trace:id)",
            "({ } | rate() by (span:id)) / ({ } | rate())",
        ):
            status, body = metrics(srv, query, route)
            assert status == 400, (query, body)
            assert f"more than {MAX_SERIES} series" in body.decode()
            assert "querier.max_metrics_series" in body.decode()
    # under the cap: answered (2 services x 2 quantiles)
    status, body = metrics(
        srv, "{ } | quantile_over_time(duration, .5, .9) by (resource.service.name)"
    )
    assert status == 200, body
    assert len(orjson.loads(body)["series"]) == 4
    # a query needing just over the cap in histogram buckets x label sets is refused too
    status, body = metrics(srv, "{ } | histogram_over_time(duration) by (span:id)")
    assert status == 400, body


def test_jaeger_and_zipkin_limits_are_bounded(srv: Server) -> None:
    push(srv, "limited", 25, 3000)
    jaeger = srv.get("/jaeger/api/traces?service=limited&limit=1000000000")
    assert jaeger.status == 200, jaeger.data
    assert len(orjson.loads(jaeger.data)["data"]) == 20  # cut to querier.max_result_limit
    zipkin = srv.get("/zipkin/api/v2/traces?serviceName=limited&limit=1000000000")
    assert zipkin.status == 200, zipkin.data
    assert len(orjson.loads(zipkin.data)) == 20
    for path in (
        "/jaeger/api/traces?service=limited&limit=100000000000000000000",
        "/zipkin/api/v2/traces?serviceName=limited&limit=100000000000000000000",
        "/api/search?limit=100000000000000000000",
    ):
        r = srv.get(path)
        assert r.status == 400 and b"limit" in r.data, (path, r.data)


BAD_NUMBERS = ["inf", "-inf", "nan", "NaN", "1e400", "-1", "100000000000000000000"]
TRACE = "/api/traces/" + "1" * 32
Q = "q=" + quote("{ } | rate()")
# (path with {} where the bad value goes, parameter name)
PARAMETERS = [
    ("/api/search?minDuration={}", "minDuration"),
    ("/api/search?maxDuration={}", "maxDuration"),
    ("/api/search?start={}&end=1700000000", "start"),
    ("/api/search?start=1700000000&end={}", "end"),
    ("/api/search?limit={}", "limit"),
    ("/api/search?spss={}", "spss"),
    ("/api/search/tags?start={}", "start"),
    ("/api/v2/search/tags?end={}", "end"),
    ("/api/search/tag/service.name/values?start={}", "start"),
    ("/api/v2/search/tag/resource.service.name/values?end={}", "end"),
    (f"/api/metrics/query_range?{Q}&start={{}}", "start"),
    (f"/api/metrics/query_range?{Q}&end={{}}", "end"),
    (f"/api/metrics/query_range?{Q}&since={{}}", "since"),
    (f"/api/metrics/query_range?{Q}&step={{}}", "step"),
    (f"/api/metrics/query?{Q}&start={{}}", "start"),
    (f"/api/metrics/query?{Q}&since={{}}", "since"),
    ("/api/service-graph?start={}", "start"),
    ("/api/service-graph?end={}", "end"),
    (TRACE + "?start={}", "start"),
    (TRACE + "?end={}", "end"),
    ("/api/v2/traces/" + "1" * 32 + "?start={}", "start"),
    ("/jaeger/api/traces?service=x&start={}", "start"),
    ("/jaeger/api/traces?service=x&end={}", "end"),
    ("/jaeger/api/traces?service=x&limit={}", "limit"),
    ("/jaeger/api/traces?service=x&minDuration={}", "minDuration"),
    ("/jaeger/api/traces?service=x&maxDuration={}", "maxDuration"),
    ("/jaeger/api/dependencies?endTs={}", "endTs"),
    ("/jaeger/api/dependencies?lookback={}", "lookback"),
    ("/zipkin/api/v2/traces?endTs={}", "endTs"),
    ("/zipkin/api/v2/traces?lookback={}", "lookback"),
    ("/zipkin/api/v2/traces?limit={}", "limit"),
    ("/zipkin/api/v2/traces?minDuration={}", "minDuration"),
    ("/zipkin/api/v2/traces?maxDuration={}", "maxDuration"),
    ("/zipkin/api/v2/dependencies?endTs={}", "endTs"),
    ("/zipkin/api/v2/dependencies?endTs=1700000000000&lookback={}", "lookback"),
]


@pytest.mark.parametrize(("path", "name"), PARAMETERS, ids=[p for p, _ in PARAMETERS])
def test_number_parameters_refuse_non_finite_and_out_of_range(
    srv: Server, path: str, name: str
) -> None:
    for value in BAD_NUMBERS:
        r = srv.get(path.format(quote(value)))
        assert r.status == 400, (value, r.status, r.data[:300])
        assert name.encode() in r.data, (value, r.data[:300])
