"""TraceQL metrics under ``with(sample=…)``, ``with(span_sample=…)`` and
``with(trace_sample=…)``: a fixed share of spans (or of whole traces, where the query needs
them) is read, chosen by a hash of the ids so that a query always reads the same ones; counts
and sums are scaled up by the inverse of the share, minimums and maximums are not; ``sample=true``
picks the share per source from its size (``querier.adaptive_sample_spans`` of it)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server

TRACES = 400
SPANS = 5  # a root and four children
BASE_S = 1_700_000_000
BASE_NS = BASE_S * 10**9


def _trace_id(i: int) -> bytes:
    return hashlib.sha256(f"sampling {i}".encode()).digest()[:16]


def _request(first: int, last: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "sampled"
    ss = rs.scope_spans.add()
    for i in range(first, last):
        for j in range(SPANS):
            span = ss.spans.add()
            span.trace_id = _trace_id(i)
            span.span_id = (j + 1).to_bytes(8, "big")
            if j:
                span.parent_span_id = (1).to_bytes(8, "big")
            span.name = "root" if j == 0 else "child"
            span.kind = 2 if j == 0 else 3
            span.start_time_unix_nano = BASE_NS + i * 10**6 + j * 1000
            # durations 1..2000 µs, one per trace and span
            span.end_time_unix_nano = span.start_time_unix_nano + (1 + (i * SPANS + j)) * 1000
    return req.SerializeToString()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # sample=true reads about 500 spans of each source: a quarter and a third of them here
    cfg = {"querier": {"adaptive_sample_spans": 500}}
    server = Server(tmp_path_factory.mktemp("sampling") / "data", cfg).start()
    for first, last, flush in ((0, 250, True), (250, TRACES, False)):  # a block and live data
        r = server.request(
            "POST",
            server.otlp_http + "/v1/traces",
            body=_request(first, last),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert r.status == 200, r.data
        if flush:
            server.flush()
    yield server
    server.stop()


def instant(server: Server, q: str) -> float:
    window = f"start={BASE_S - 1}&end={BASE_S + 60}"
    r = server.get(f"/api/metrics/query?q={quote(q)}&{window}")
    assert r.status == 200, r.data
    (series,) = orjson.loads(r.data)["series"]
    return series["value"]


def test_a_fixed_share_of_spans_estimates_the_count(srv: Server) -> None:
    exact = instant(srv, "{ } | count_over_time()")
    assert exact == TRACES * SPANS
    estimate = instant(srv, "{ } | count_over_time() with(sample=0.25)")
    # a quarter of the spans read, each counted four times: not the exact count, near it
    assert estimate % 4 == 0 and estimate != exact
    assert abs(estimate - exact) < 0.15 * exact
    # the same spans every time
    assert instant(srv, "{ } | count_over_time() with(sample=0.25)") == estimate
    assert instant(srv, "{ } | count_over_time() with(span_sample=0.25)") == estimate
    # rate scales alike: count over the window's seconds
    rate = instant(srv, "{ } | rate() with(sample=0.25)")
    assert rate == pytest.approx(estimate / 61)


def test_sums_scale_and_extremes_do_not(srv: Server) -> None:
    durations_s = [(1 + n) * 1e-6 for n in range(TRACES * SPANS)]
    assert instant(srv, "{ } | sum_over_time(duration)") == pytest.approx(sum(durations_s))
    total = instant(srv, "{ } | sum_over_time(duration) with(sample=0.5)")
    assert abs(total - sum(durations_s)) < 0.15 * sum(durations_s)
    top = instant(srv, "{ } | max_over_time(duration) with(sample=0.5)")
    low = instant(srv, "{ } | min_over_time(duration) with(sample=0.5)")
    # a sampled span's own duration, never scaled
    assert min(durations_s) <= low < top <= max(durations_s)
    assert round(top * 1e6) == pytest.approx(top * 1e6) and top < 2 * max(durations_s)
    avg = instant(srv, "{ } | avg_over_time(duration) with(sample=0.5)")
    assert abs(avg - sum(durations_s) / len(durations_s)) < 0.15 * avg


def test_structural_queries_sample_whole_traces(srv: Server) -> None:
    q = "{ kind = server } > { kind = client } | count_over_time()"
    assert instant(srv, q) == TRACES * (SPANS - 1)
    estimate = instant(srv, q + " with(sample=0.5)")
    # whole traces kept: four children counted twice each per kept trace
    assert estimate % (2 * (SPANS - 1)) == 0
    assert abs(estimate - TRACES * (SPANS - 1)) < 0.2 * TRACES * (SPANS - 1)
    assert instant(srv, q + " with(trace_sample=0.5)") == estimate


def test_sample_true_reads_about_as_many_spans_of_each_source(srv: Server) -> None:
    exact = instant(srv, "{ } | count_over_time()")
    estimate = instant(srv, "{ } | count_over_time() with(sample=true)")
    assert estimate != exact and abs(estimate - exact) < 0.2 * exact
    # the block (1250 spans) read at 500/1250, the live data (750) at 500/750; each the same
    # spans every time
    assert instant(srv, "{ } | count_over_time() with(sample=true)") == estimate
    assert instant(srv, "{ } | count_over_time() with(sample=false)") == exact
    assert instant(srv, "{ } | count_over_time() with(sample=1)") == exact


def test_a_bad_fraction_is_refused(srv: Server) -> None:
    for hint in ("sample=2", "span_sample=0", "trace_sample=true"):
        q = f"{{ }} | count_over_time() with({hint})"
        r = srv.get(f"/api/metrics/query?q={quote(q)}&start={BASE_S - 1}&end={BASE_S + 60}")
        assert r.status == 400, (hint, r.data)
        assert b"hint" in r.data
