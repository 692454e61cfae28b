"""Loki's query API over lines pushed through Loki's push API: log queries (selectors, line
filters, ``json`` and ``logfmt`` with label filters, ``line_format``), metric queries
(``count_over_time``, ``rate``, ``bytes_over_time``, ``sum by``, ``topk``, arithmetic), the
label, series and stats endpoints, and parse errors as Loki words them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from conftest import Server
from ui_browser import launch, open_page, shot

BASE_S = (int(time.time()) // 60 - 30) * 60  # a whole minute, half an hour ago
LINES = [
    # (second after BASE_S, service, level, line)
    (1, "api", "info", '{"msg": "GET /items", "status": 200, "took": "12ms"}'),
    (2, "api", "error", '{"msg": "GET /pay", "status": 503, "took": "900ms"}'),
    (3, "api", "warn", "msg=retrying took=300ms attempt=2"),
    (61, "api", "error", "upstream timeout after 2s"),
    (62, "worker", "info", "job 7 done took=40ms"),
    (63, "worker", "error", "job 8 failed: timeout"),
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("loki-q") / "data").start()
    streams: dict[tuple[str, str], list[list[str]]] = {}
    for second, service, level, line in LINES:
        streams.setdefault((service, level), []).append([str((BASE_S + second) * 10**9), line])
    body = {
        "streams": [
            {"stream": {"service_name": s, "level": lv, "env": "prod"}, "values": v}
            for (s, lv), v in streams.items()
        ]
    }
    r = server.request(
        "POST",
        server.api + "/loki/api/v1/push",
        body=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 204, r.data
    yield server
    server.stop()


def get(srv: Server, path: str, **params: Any) -> Any:
    r = srv.get(f"/loki/api/v1/{path}?{urlencode(params)}")
    assert r.status == 200, r.data
    doc = orjson.loads(r.data)
    return doc.get("data", doc)


def lines_of(srv: Server, query: str, **params: Any) -> list[str]:
    data = get(srv, "query_range", query=query, start=BASE_S, end=BASE_S + 3600, **params)
    assert data["resultType"] == "streams"
    values = [v for stream in data["result"] for v in stream["values"]]
    values.sort(key=lambda v: int(v[0]), reverse=params.get("direction") != "forward")
    return [v[1] for v in values]


def test_line_filters_over_a_selector(srv: Server) -> None:
    assert lines_of(srv, '{service_name=~"api|worker"} |= "timeout"') == [
        "job 8 failed: timeout",
        "upstream timeout after 2s",
    ]
    assert lines_of(srv, '{service_name="api", level!="error"} != "retry"') == [LINES[0][3]]
    assert lines_of(srv, '{env="prod"} |~ "job [0-9]+"', direction="forward") == [
        "job 7 done took=40ms",
        "job 8 failed: timeout",
    ]
    assert len(lines_of(srv, '{env="prod"}', limit=2)) == 2


def test_parsers_and_label_filters(srv: Server) -> None:
    assert lines_of(srv, '{service_name="api"} | json | status >= 500') == [LINES[1][3]]
    assert lines_of(srv, '{service_name="api"} | json | took > 100ms') == [LINES[1][3]]
    assert lines_of(srv, '{env="prod"} | logfmt | took > 250ms and attempt = "2"') == [LINES[2][3]]
    assert lines_of(
        srv, '{service_name="api"} | json | __error__ = "" | line_format "{{.msg}} -> {{.status}}"'
    ) == [
        "GET /pay -> 503",
        "GET /items -> 200",
    ]


def test_metric_queries(srv: Server) -> None:
    at = BASE_S + 120
    data = get(srv, "query", query='sum by (level) (count_over_time({env="prod"}[5m]))', time=at)
    assert data["resultType"] == "vector"
    got = {r["metric"]["level"]: r["value"][1] for r in data["result"]}
    assert got == {"info": "2", "error": "3", "warn": "1"}
    data = get(srv, "query", query='sum(rate({service_name="worker"}[1m]))', time=BASE_S + 100)
    [r] = data["result"]
    assert float(r["value"][1]) == pytest.approx(2 / 60)
    data = get(srv, "query", query='sum(bytes_over_time({service_name="worker"}[5m])) * 2', time=at)
    expected = 2 * sum(
        len(line.encode()) for *_, s, line in [(0, x[1], x[3]) for x in LINES] if s == "worker"
    )
    assert float(data["result"][0]["value"][1]) == expected
    data = get(
        srv,
        "query",
        query='topk(1, sum by (service_name) (count_over_time({env="prod"}[5m])))',
        time=at,
    )
    assert [r["metric"] for r in data["result"]] == [{"service_name": "api"}]
    # a range query: one point per step where the window holds lines
    data = get(
        srv,
        "query_range",
        query='sum(count_over_time({service_name="api"}[1m]))',
        start=BASE_S,
        end=BASE_S + 120,
        step="60s",
    )
    [series] = data["result"]
    assert series["values"] == [[BASE_S + 60, "3"], [BASE_S + 120, "1"]]


def test_labels_series_and_stats(srv: Server) -> None:
    window = {"start": BASE_S, "end": BASE_S + 3600}
    assert get(srv, "labels", **window) == ["env", "level", "service_name"]
    assert get(srv, "label/service_name/values", **window) == ["api", "worker"]
    series = get(srv, "series", **{"match[]": '{service_name="worker"}'}, **window)
    assert sorted(s["level"] for s in series) == ["error", "info"]
    stats = get(srv, "index/stats", query='{service_name="api"}', **window)
    assert (stats["streams"], stats["entries"]) == (3, 4)


def test_a_parse_error_says_where(srv: Server) -> None:
    r = srv.get("/loki/api/v1/query_range?" + urlencode({"query": '{service_name="api"} |= '}))
    assert r.status == 400
    assert r.data.decode().startswith("parse error at line 1, col")


def logs_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.cli", "logs", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("where", ["url", "data-dir"])
def test_the_logs_command_prints_lines_newest_first(srv: Server, where: str) -> None:
    source = ["--url", srv.api] if where == "url" else ["--data-dir", str(srv.data_dir)]
    done = logs_cli('{env="prod"} |= "timeout"', *source, "--since", "2h")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(maxsplit=3)[2:] for line in lines] == [
        ["worker", "job 8 failed: timeout"],
        ["api", "upstream timeout after 2s"],
    ]
    metric = logs_cli('sum(count_over_time({env="prod"}[1h]))', *source, "--since", "2h")
    assert metric.returncode == 0 and metric.stdout.startswith("{}"), metric.stderr
    bad = logs_cli("{env=}", *source)
    assert bad.returncode == 1 and "parse error at line 1" in bad.stderr


ROW = "[data-testid=log-row]"


def test_the_logs_page_queries_and_links_traces(srv: Server) -> None:
    trace_id = "5b8aa5a2d2c872e8321cf37308d69df2"
    body = {
        "streams": [
            {
                "stream": {"service_name": "web", "level": "error"},
                "values": [[str(time.time_ns()), "checkout failed", {"trace_id": trace_id}]],
            }
        ]
    }
    r = srv.request(
        "POST",
        srv.api + "/loki/api/v1/push",
        body=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 204
    for browser in launch():
        context, page = open_page(browser)
        try:
            page.goto(
                srv.api + "/logs?" + urlencode({"q": '{env="prod"} |= "timeout"', "range": "7200"})
            )
            rows = page.locator("[data-testid=log-row]")
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=log-row]').length === 2"
            )
            assert [rows.nth(i).locator(".line").inner_text() for i in range(2)] == [
                "job 8 failed: timeout",
                "upstream timeout after 2s",
            ]
            page.locator("[data-testid=log-histogram] canvas").wait_for()
            # a new query from the editor; the line with a trace id links to its trace
            page.locator("[data-testid=query-editor] .cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.type('{service_name="web"}')
            page.keyboard.press("Control+Enter")
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=log-row]').length === 1"
            )
            link = page.locator("[data-testid=log-trace]")
            assert link.get_attribute("href") == f"/trace/{trace_id}"
            assert "q=%7Bservice_name%3D%22web%22%7D" in page.url
            shot(page, srv, "logs-page")
            page.goto(srv.api + "/logs?" + urlencode({"q": "{env=}"}))
            page.locator("[data-testid=logs-error]").wait_for()
            assert "parse error at line 1" in page.locator("[data-testid=logs-error]").inner_text()
            assert all("400" in p for p in page.problems)
        finally:
            context.close()
