"""The built-in web UI in a real browser: Playwright driving Debian's Chromium against a real
server holding known traces. Search (the TraceQL editor, running, a parse error marked where
the server says, the URL holding the query), the trace view (span count, nesting, an error
span, span details) and no console errors or failed requests on any page. Screenshots are kept
next to the server's log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

from conftest import Server
from otel_helpers import make_trace, send, trace_hex
from ui_browser import launch, open_page, shot, ui_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ui_server(tmp_path_factory, "ui")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, Any]:
    exporter = OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True)
    checkout = make_trace("checkout", n_children=3)
    cart = make_trace("cart", n_children=1)
    for spans in (checkout, cart):
        send(exporter, spans)
    exporter.shutdown()
    return {"checkout": trace_hex(checkout), "cart": trace_hex(cart), "spans": checkout}


@pytest.fixture(scope="module")
def browser(traces: dict[str, Any]) -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page = open_page(browser)
    yield page
    context.close()


def test_search_lists_traces_and_opens_one(page: Any, srv: Server, traces: dict[str, Any]) -> None:
    page.goto(srv.api + "/")
    rows = page.locator("[data-testid=results] tbody tr")
    rows.first.wait_for()
    ids = {rows.nth(i).get_attribute("data-trace-id") for i in range(rows.count())}
    assert ids == {traces["checkout"].lstrip("0"), traces["cart"].lstrip("0")}
    shot(page, srv, "search")

    editor = page.locator("[data-testid=query-editor] .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type('{ resource.service.name = "cart" }')
    page.locator("[data-testid=run]").click()
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=results] tbody tr').length === 1"
    )
    assert rows.first.get_attribute("data-trace-id") == traces["cart"].lstrip("0")
    assert "q=%7B+resource.service.name" in page.url  # the URL holds the query
    # highlighted by the TraceQL grammar: the string literal has a colour of its own
    assert page.locator(".cm-content span", has_text='"cart"').count() == 1

    rows.first.locator("a").click()
    page.locator("[data-testid=waterfall]").wait_for()
    assert page.url.endswith("/trace/" + traces["cart"].lstrip("0"))
    assert page.locator("[data-testid=span-count]").inner_text() == "2"
    assert not page.problems  # type: ignore[attr-defined]


def test_a_parse_error_is_marked_where_the_server_says(
    page: Any, srv: Server, traces: dict[str, Any]
) -> None:
    page.goto(srv.api + "/search?q=" + "%7B%20.a%20%3D%20%7D")  # { .a = }
    error = page.locator("[data-testid=search-error]")
    error.wait_for()
    assert "line 1, column 8" in error.inner_text()
    mark = page.locator(".cm-parse-error")
    assert mark.inner_text() == "}"
    shot(page, srv, "parse-error")
    # a 400 is the server's answer, not a failure of the page
    assert all(not p.startswith("console") or "400" in p for p in page.problems)  # type: ignore[attr-defined]


def test_the_trace_view_shows_the_tree_and_details(
    page: Any, srv: Server, traces: dict[str, Any]
) -> None:
    page.goto(srv.api + "/trace/" + traces["checkout"])
    rows = page.locator("[data-testid=span-row]")
    rows.first.wait_for()
    spans = traces["spans"]
    assert rows.count() == len(spans) == 4
    assert page.locator("[data-testid=span-count]").inner_text() == "4"
    labels = [rows.nth(i).locator(".op").inner_text() for i in range(4)]
    assert labels == ["GET /checkout", "db query 0", "db query 1", "db query 2"]
    # children are indented under the root; the failing child is marked
    pad = [rows.nth(i).locator(".wf-label").evaluate("e => e.style.paddingLeft") for i in range(4)]
    assert pad[0] == "4px" and set(pad[1:]) == {"18px"}
    failed = page.locator("[data-testid=span-row].failed")
    assert failed.count() == 1 and failed.locator(".op").inner_text() == "db query 2"

    rows.first.click()
    details = page.locator("[data-testid=span-details]")
    details.wait_for()
    text = details.inner_text()
    assert "http.method" in text and "GET" in text and "service.name" in text
    assert "validated" in text  # the root's event
    shot(page, srv, "trace")

    rows.first.locator("button.toggle").click()  # collapse the root: its children go
    assert rows.count() == 1
    assert not page.problems  # type: ignore[attr-defined]


def test_a_missing_trace_says_so(page: Any, srv: Server) -> None:
    page.goto(srv.api + "/trace/" + "ab" * 16)
    error = page.locator("[data-testid=trace-error]")
    error.wait_for()
    assert error.inner_text() == "No traces found"
