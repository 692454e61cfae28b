"""The web UI's search page in a real browser: span and error counts of the traces found, the
builder writing the TraceQL it runs, autocompletion from the tag APIs, the time range picker
(relative and absolute, kept in the URL), the duration scatter plot opening a trace, and "load
older traces" paging back in time until nothing is left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

from conftest import Server
from otel_helpers import make_trace, send, trace_hex
from ui_browser import launch, open_page, shot, ui_server

INVENTORY = 7  # traces of the "inventory" service, paged through 3 at a time


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ui_server(tmp_path_factory, "ui-search")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, Any]:
    exporter = OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True)
    checkout = make_trace("checkout", n_children=3)  # 4 spans, the last child failed
    send(exporter, checkout)
    inventory = []
    for i in range(INVENTORY):
        spans = make_trace("inventory", n_children=i % 3 + 1)
        send(exporter, spans)
        inventory.append(trace_hex(spans).lstrip("0"))
    exporter.shutdown()
    return {"checkout": trace_hex(checkout).lstrip("0"), "inventory": inventory}


@pytest.fixture(scope="module")
def browser(traces: dict[str, Any]) -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page = open_page(browser)
    yield page
    assert not page.problems
    context.close()


def editor_text(page: Any) -> str:
    return page.locator("[data-testid=query-editor] .cm-content").inner_text()


def editor_shows(page: Any, text: str) -> None:
    """Waits until the editor holds ``text`` (it follows the builder after a render)."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid=query-editor] .cm-content")).to_have_text(text)


def rows(page: Any) -> Any:
    return page.locator("[data-testid=results] tbody tr")


def wait_rows(page: Any, n: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=results] tbody tr').length === {n}"
    )


def search_url(srv: Server, q: str, **params: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"{srv.api}/search?q={quote(q)}{extra}"


def test_rows_show_span_and_error_counts(page: Any, srv: Server, traces: dict[str, Any]) -> None:
    page.goto(search_url(srv, '{ resource.service.name = "checkout" }'))
    wait_rows(page, 1)
    row = rows(page).first
    assert row.get_attribute("data-trace-id") == traces["checkout"]
    spans = row.locator("[data-testid=trace-spans]")
    page.wait_for_function(
        "document.querySelector('[data-testid=trace-spans]').innerText.trim() === '4'"
    )
    assert spans.inner_text() == "4"
    assert row.locator("[data-testid=trace-errors]").inner_text() == "1"
    assert "failed" in (row.get_attribute("class") or "")


def test_the_builder_writes_the_traceql_it_runs(
    page: Any, srv: Server, traces: dict[str, Any]
) -> None:
    page.goto(srv.api + "/search")
    rows(page).first.wait_for()
    page.locator("[data-testid=builder-toggle]").click()
    service = page.locator("[data-testid=builder-service]")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=builder-service] option').length === 3"
    )
    options = service.locator("option").all_inner_texts()
    assert options == ["any", "checkout", "inventory"]
    service.select_option("checkout")
    editor_shows(page, '{ resource.service.name = "checkout" }')
    page.locator("[data-testid=builder-status]").select_option("error")
    page.locator("[data-testid=builder-min]").fill("1ns")
    page.locator("[data-testid=builder-add-filter]").click()
    page.locator("[data-testid=builder-filter] input[aria-label=attribute]").fill("span.db.system")
    page.locator("[data-testid=builder-filter] input[aria-label=value]").fill("postgresql")
    expected = (
        '{ resource.service.name = "checkout" && status = error && duration >= 1ns'
        ' && span.db.system = "postgresql" }'
    )
    editor_shows(page, expected)
    page.locator("[data-testid=builder-min]").fill("soon")
    assert "is not a duration" in page.locator(".builder-problems").inner_text()
    page.locator("[data-testid=builder-min]").fill("1ns")
    shot(page, srv, "search-builder")
    page.locator("[data-testid=run]").click()
    wait_rows(page, 1)
    assert rows(page).first.get_attribute("data-trace-id") == traces["checkout"]
    assert parse_qs(urlparse(page.url).query)["q"] == [expected]
    # the shared URL opens the same search
    page.goto(page.url)
    wait_rows(page, 1)
    editor_shows(page, expected)


def test_the_editor_completes_attribute_names_and_values(page: Any, srv: Server) -> None:
    page.goto(srv.api + "/search?q=")
    rows(page).first.wait_for()
    page.locator("[data-testid=query-editor] .cm-content").click()
    page.keyboard.type("{ resource.serv")
    option = page.locator(".cm-tooltip-autocomplete li", has_text="service.name")
    option.click()  # (Enter right after the list opens is ignored on purpose by CodeMirror)
    editor_shows(page, "{ resource.service.name")
    page.keyboard.type(' = "inv')
    page.locator(".cm-tooltip-autocomplete li", has_text='"inventory"').click()
    page.keyboard.type(" && status = ")
    page.locator(".cm-tooltip-autocomplete li", has_text="error").first.wait_for()
    labels = page.locator(".cm-tooltip-autocomplete li").all_inner_texts()
    assert labels == ["error", "ok", "unset"]
    page.keyboard.press("Escape")
    page.keyboard.type("unset }")
    editor_shows(page, '{ resource.service.name = "inventory" && status = unset }')
    page.keyboard.press("Control+Enter")
    wait_rows(page, INVENTORY)


def test_paging_loads_older_traces_until_none_are_left(
    page: Any, srv: Server, traces: dict[str, Any]
) -> None:
    page.goto(search_url(srv, '{ resource.service.name = "inventory" }', limit="3"))
    wait_rows(page, 3)
    more = page.locator("[data-testid=load-more]")
    more.click()
    wait_rows(page, 6)
    more.click()
    wait_rows(page, INVENTORY)
    page.locator("[data-testid=no-more]").wait_for()
    shown = [rows(page).nth(i).get_attribute("data-trace-id") for i in range(INVENTORY)]
    assert shown == list(reversed(traces["inventory"]))  # newest first, each once
    assert page.locator("[data-testid=result-count]").inner_text() == f"{INVENTORY} traces"


def test_the_scatter_plot_opens_the_trace_of_a_dot(
    page: Any, srv: Server, traces: dict[str, Any]
) -> None:
    page.goto(srv.api + "/search")
    wait_rows(page, INVENTORY + 1)
    over = page.locator("[data-testid=scatter] .u-over")
    page.wait_for_function(
        "document.querySelector('[data-testid=scatter] .u-over')?.dataset.points"
    )
    points = json.loads(over.get_attribute("data-points"))
    assert {p[0] for p in points} == {traces["checkout"], *traces["inventory"]}
    shot(page, srv, "search")
    trace_id, x, y = points[0]
    over.click(position={"x": x, "y": y})
    page.locator("[data-testid=waterfall]").wait_for()
    assert page.url.endswith("/trace/" + trace_id)


def test_the_time_range_is_chosen_and_kept_in_the_url(page: Any, srv: Server) -> None:
    page.goto(srv.api + "/search")
    rows(page).first.wait_for()
    page.locator("[data-testid=range]").click()
    page.locator("[data-testid=range-panel] button", has_text="Last 5 minutes").click()
    page.wait_for_function("location.search.includes('range=300')")
    assert page.locator("[data-testid=range]").inner_text().endswith("Last 5 minutes")
    wait_rows(page, INVENTORY + 1)
    # an hour that ended a day ago holds none of the traces
    page.locator("[data-testid=range]").click()
    page.locator("[data-testid=range-from]").fill("2026-01-01T10:00")
    page.locator("[data-testid=range-to]").fill("2026-01-01T09:00")
    assert page.locator("[data-testid=range-apply]").is_disabled()
    page.locator("[data-testid=range-to]").fill("2026-01-01T11:00")
    page.locator("[data-testid=range-apply]").click()
    page.locator("[data-testid=no-results]").wait_for()
    params = parse_qs(urlparse(page.url).query)
    assert int(params["end"][0]) - int(params["start"][0]) == 3600
    label = page.locator("[data-testid=range]").inner_text()
    assert label.endswith("2026-01-01 10:00 \u2013 11:00")
    page.reload()
    page.locator("[data-testid=no-results]").wait_for()
    assert page.locator("[data-testid=range]").inner_text() == label


def test_two_ticked_traces_are_compared(page: Any, srv: Server, traces: dict[str, Any]) -> None:
    page.goto(search_url(srv, '{ resource.service.name = "inventory" }'))
    wait_rows(page, INVENTORY)
    boxes = page.locator("[data-testid=results] tbody input[type=checkbox]")
    boxes.nth(0).check()
    assert page.locator("[data-testid=compare-picked]").count() == 0
    boxes.nth(1).check()
    assert boxes.nth(2).is_disabled()  # two at most
    page.locator("[data-testid=compare-picked]").click()
    newest, second = list(reversed(traces["inventory"]))[:2]
    page.wait_for_function(f"location.pathname === '/compare/{newest}/{second}'")


def test_what_is_different_opens_for_the_query_shown(page: Any, srv: Server) -> None:
    q = '{ resource.service.name = "inventory" }'
    page.goto(search_url(srv, q, range="900"))
    wait_rows(page, INVENTORY)
    page.locator("[data-testid=what-is-different]").click()
    page.wait_for_function("location.pathname === '/differences'")
    params = parse_qs(urlparse(page.url).query)
    assert params == {"q": [q], "selection": ["{ status = error }"], "range": ["900"]}


@pytest.mark.parametrize(("width", "dark"), [(1400, True), (1000, False), (1000, True)])
def test_the_search_page_fits_narrow_and_dark(
    browser: Any, srv: Server, traces: dict[str, Any], width: int, dark: bool
) -> None:
    context, page = open_page(browser, width=width, dark=dark)
    try:
        page.goto(srv.api + "/search")
        wait_rows(page, INVENTORY + 1)
        page.locator("[data-testid=builder-toggle]").click()
        page.locator("[data-testid=scatter] canvas").wait_for()
        # nothing wider than the window: no sideways scrolling at 1000 px
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, srv, f"search-{width}-{'dark' if dark else 'light'}")
        assert not page.problems
    finally:
        context.close()
