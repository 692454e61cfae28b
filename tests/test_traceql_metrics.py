"""TraceQL metrics (query_range / query) checked against counts worked out by hand on the
known dataset (see traceql_dataset: every span starts within 320 ms after BASE_NS)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from urllib.parse import quote

import orjson
import pytest

from conftest import Server
from traceql_dataset import BASE_NS, TRACE_IDS, push_t1_in_a_block

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BASE_S = BASE_NS // 10**9
AT_BASE = str(BASE_S * 1000)  # bucket (BASE-1s, BASE]: the three root spans start exactly there
AFTER = str((BASE_S + 1) * 1000)  # bucket (BASE, BASE+1s]: every other span


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("tqm") / "data").start()
    push_t1_in_a_block(server)  # T1 in a block, T2 and T3 live
    yield server
    server.stop()


def query_range(server: Server, q: str, step: str = "1s", start: int = BASE_S - 5) -> list[dict]:
    window = f"start={start}&end={start + 10}&step={step}"
    r = server.get(f"/api/metrics/query_range?q={quote(q)}&{window}")
    assert r.status == 200, r.data
    return orjson.loads(r.data)["series"]


def points(series: dict) -> dict[str, float]:
    return {s["timestampMs"]: s["value"] for s in series["samples"]}


def label(series: dict, key: str) -> object:
    value = next(lbl["value"] for lbl in series["labels"] if lbl["key"] == key)
    return next(iter(value.values())) if value else None


def test_count_over_time_is_dense_and_exact(srv: Server) -> None:
    (series,) = query_range(srv, "{ } | count_over_time()")
    assert series["labels"] == [{"key": "__name__", "value": {"stringValue": "count_over_time"}}]
    p = points(series)
    assert len(p) == 10  # every 1 s bucket of the 10 s window, zeros included
    assert (p[AT_BASE], p[AFTER]) == (3, 8)
    assert sum(p.values()) == 11
    # the exemplar of a bucket is its slowest span, with the trace id Grafana links to
    first = next(e for e in series["exemplars"] if e["timestampMs"] == AT_BASE)
    assert first["labels"][0] == {
        "key": "trace:id",
        "value": {"stringValue": TRACE_IDS["T3"].hex()},
    }
    assert first["value"] == 2.0


def test_a_moved_window_reuses_a_blocks_states_in_the_right_buckets(srv: Server) -> None:
    # T1's block lies inside both windows: its partial states are worked out once and moved
    # to each window's buckets
    q = "{ } | count_over_time() by (resource.service.name)"
    runs = [query_range(srv, q, start=BASE_S - start) for start in (5, 3, 8, 3)]
    for series in runs:
        assert sum(sum(points(s).values()) for s in series) == 11
    by_window = [
        {
            label(s, "resource.service.name"): (
                {t: v for t, v in points(s).items() if v},
                sorted((e["timestampMs"], e["value"]) for e in s["exemplars"]),
            )
            for s in series
        }
        for series in runs
    ]
    assert by_window[0] == by_window[1] == by_window[2] == by_window[3]
    assert len(points(runs[1][0])) == 10


def test_rate_by_service(srv: Server) -> None:
    series = {
        label(s, "resource.service.name"): points(s)
        for s in query_range(srv, "{ } | rate() by (resource.service.name)", "2s")
    }
    assert set(series) == {
        "frontend",
        "checkout",
        "payment",
        "cart",
        "product-catalog",
        "api-gateway",
    }
    # 2 s buckets: (BASE-2s, BASE] holds the roots, (BASE, BASE+2s] the rest; rate = count / 2 s
    assert series["frontend"][AT_BASE] == 1.0
    assert series["payment"][str((BASE_S + 2) * 1000)] == 1.5
    assert series["api-gateway"][AT_BASE] == 0.5


def test_over_time_functions_on_client_durations(srv: Server) -> None:
    # client spans: 200 ms, 20 ms, 10 ms, 100 ms, all in the bucket after BASE
    def one(q: str) -> float:
        (series,) = query_range(srv, "{ kind = client } | " + q)
        return points(series)[AFTER]

    assert one("max_over_time(duration)") == pytest.approx(0.2)
    assert one("min_over_time(duration)") == pytest.approx(0.01)
    assert one("sum_over_time(duration)") == pytest.approx(0.33)
    assert one("avg_over_time(duration)") == pytest.approx(0.0825)
    (median,) = query_range(srv, "{ kind = client } | quantile_over_time(duration, .5)")
    assert label(median, "p") == 0.5
    assert 2**24 / 1e9 <= points(median)[AFTER] <= 2**25 / 1e9  # the 2nd value's log2 bucket
    histogram = query_range(srv, "{ kind = client } | histogram_over_time(duration)")
    buckets = {label(s, "__bucket"): points(s)[AFTER] for s in histogram}
    assert buckets == {2**b / 1e9: 1.0 for b in (24, 25, 27, 28)}


def test_second_stages_and_filters(srv: Server) -> None:
    top = query_range(srv, "{ } | count_over_time() by (resource.service.name) > 0 | topk(1)")
    winners = {label(s, "resource.service.name"): points(s) for s in top}
    assert winners == {"frontend": {AT_BASE: 2.0}, "payment": {AFTER: 3.0}}
    errors = query_range(srv, "{ status = error } | count_over_time() > 0")
    assert points(errors[0]) == {AT_BASE: 1.0, AFTER: 1.0}
    assert query_range(srv, "{ status = error } | count_over_time() > 5") == []


def test_arithmetic_between_queries(srv: Server) -> None:
    (ratio,) = query_range(
        srv, "({ status = error } | count_over_time()) / ({ } | count_over_time())"
    )
    assert points(ratio) == {AT_BASE: pytest.approx(1 / 3), AFTER: pytest.approx(1 / 8)}
    (doubled,) = query_range(srv, "({ } | count_over_time()) * 2")
    assert (points(doubled)[AT_BASE], points(doubled)[AFTER]) == (6.0, 16.0)
    shares = {
        label(s, "resource.service.name"): points(s)
        for s in query_range(
            srv,
            "({ } | count_over_time() by (resource.service.name)) / ({ } | count_over_time())",
        )
    }
    assert shares["frontend"][AT_BASE] == pytest.approx(2 / 3)
    assert shares["payment"][AFTER] == pytest.approx(3 / 8)
    by = "({ } | count_over_time() by (resource.service.name))"
    top = query_range(srv, f"{by} + {by} | topk(1) > 0")
    assert {label(s, "resource.service.name"): points(s) for s in top} == {
        "frontend": {AT_BASE: 4.0},
        "payment": {AFTER: 6.0},
    }


def test_instant_query(srv: Server) -> None:
    q = quote("{ } | count_over_time() by (resource.service.name)")
    r = srv.get(f"/api/metrics/query?q={q}&start={BASE_S - 5}&end={BASE_S + 5}")
    assert r.status == 200
    doc = orjson.loads(r.data)
    values = {label(s, "resource.service.name"): s["value"] for s in doc["series"]}
    assert values["payment"] == 3 and values["checkout"] == 2 and values["frontend"] == 2
    assert set(doc) == {"series", "metrics"}
    assert not any(math.isnan(v) for v in values.values())


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("q=" + quote("{ status = error }"), "not a metrics query"),
        ("q=" + quote("{ } | rate("), "syntax error"),
        ("q=" + quote("{ } | rate()") + "&start=100&end=50", "end must be greater than start"),
        ("q=" + quote("{ } | rate()") + "&start=0&end=200000", "exceeds the maximum"),
        (
            "q=" + quote("{ } | rate()") + f"&start={BASE_S}&end={BASE_S + 3600}&step=0.1",
            "too small",
        ),
        ("", "missing q"),
    ],
)
def test_bad_metrics_queries(srv: Server, params: str, words: str) -> None:
    r = srv.get(f"/api/metrics/query_range?{params}")
    assert r.status == 400
    assert words in r.data.decode()


def _compared(series: list[dict]) -> dict[tuple[str, str, object], float]:
    """(__meta_type or __meta_error, attribute, value) -> the sum of the series' samples."""
    out = {}
    for s in series:
        meta = {lbl["key"]: lbl["value"] for lbl in s["labels"] if lbl["key"].startswith("__")}
        (attr,) = [lbl for lbl in s["labels"] if not lbl["key"].startswith("__")]
        kind = next(iter(meta.values()))["stringValue"]
        value = next(iter(attr["value"].values()))
        out[(kind, attr["key"], value)] = sum(x["value"] for x in s["samples"])
    return out


def test_compare_breaks_down_selection_and_baseline(srv: Server) -> None:
    # one 10 s step holds every span; T1 is in a block, T2 and T3 live
    got = _compared(query_range(srv, "{ } | compare({ status = error })", step="10s"))
    svc = "resource.service.name"
    assert got[("selection_total", svc, "nil")] == 2  # T1.A frontend, T1.C payment
    assert got[("baseline_total", svc, "nil")] == 9
    assert got[("selection", svc, "frontend")] == 1
    assert got[("selection", svc, "payment")] == 1
    baseline = {v: n for (kind, a, v), n in got.items() if kind == "baseline" and a == svc}
    assert baseline == {
        "checkout": 2,
        "cart": 1,
        "frontend": 1,
        "product-catalog": 2,
        "api-gateway": 1,
        "payment": 2,
    }
    assert got[("selection", "status", "error")] == 2
    assert got[("baseline", "status", "unset")] == 9
    assert got[("selection", "kind", "server")] == 1 and got[("selection", "kind", "client")] == 1
    assert got[("selection", "span.http.status_code", "500")] == 1  # an int value
    assert got[("baseline_total", "span.http.method", "nil")] == 2
    assert got[("baseline", "span.amount", 12.5)] == 1
    assert got[("baseline", "span.retry", True)] == 1
    assert got[("selection", "rootServiceName", "frontend")] == 2
    # no durations, ids or times are broken down
    assert not {a for _, a, _ in got} & {"duration", "traceDuration", "trace:id", "span:id"}


def test_compare_top_n_and_window(srv: Server) -> None:
    got = _compared(query_range(srv, "{ } | compare({ status = error }, 2)", step="10s"))
    svc = "resource.service.name"
    assert ("__too_many_values__", svc, "nil") in got  # six baseline values, two shown
    assert len([1 for kind, a, _ in got if kind == "baseline" and a == svc]) == 2
    assert got[("baseline_total", svc, "nil")] == 9  # totals count every value
    # a window (start, end] on span starts narrows the selection: T1.A starts at its start
    start, end = BASE_NS, BASE_NS + 30 * 10**6
    q = f"{{ }} | compare({{ status = error }}, 10, {start}, {end})"
    got = _compared(query_range(srv, q, step="10s"))
    assert got[("selection_total", svc, "nil")] == 1
    assert got[("selection", svc, "payment")] == 1
    assert got[("baseline_total", svc, "nil")] == 10
    assert got[("baseline", "status", "error")] == 1


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("{ } | compare({ status = error }, 0)", "between 1 and 1000"),
        ("{ } | compare({ status = error }, 10, 5, 3)", "end timestamp must be greater"),
        ("{ } | compare({ status = error }) | topk(2)", "second stage"),
    ],
)
def test_compare_refuses_bad_arguments(srv: Server, query: str, words: str) -> None:
    r = srv.get(f"/api/metrics/query_range?q={quote(query)}&start={BASE_S - 5}&end={BASE_S + 5}")
    assert r.status == 400
    assert words in r.data.decode()
