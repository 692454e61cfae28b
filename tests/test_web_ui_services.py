"""The web UI's service views in a real browser against a server holding known traces: the
service graph (nodes, edges, the database peer drawn as one, rates and error rates as pushed),
the services table, a service's page (uPlot charts, exemplars, operations), and what is
different about a selection (the planted attribute value ranked first). Every click lands on a
search that finds the traces it stands for; no page logs a console error or a failed request.
Screenshots (light and dark, two widths) are kept next to the server's log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from conftest import Server
from otel_helpers import send
from ui_browser import launch, open_page, shot, ui_server

N_TRACES = 12
FAILING = {2, 5, 9}  # traces whose payment span fails, all paying with the planted network
SLOW = 7  # the trace whose checkout span is slow (and carries the planted region)
MS = 10**6


@dataclass
class Pushed:
    """The ids (hex, as the UI shows them) of the traces pushed, by what they hold."""

    all: list[str] = field(default_factory=list)
    cart: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    slow: str = ""


def push_shop(server: Server) -> Pushed:
    """N_TRACES traces of frontend → checkout → (payment, postgresql), frontend → cart in
    every other one; spans are timed explicitly (now, minus a few seconds)."""
    memory = InMemorySpanExporter()
    tracers = {}
    for name in ("frontend", "checkout", "payment", "cart"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers[name] = provider.get_tracer("tests.shop")
    pushed = Pushed()
    base = time.time_ns()
    for i in range(N_TRACES):
        t0 = base - (60 - i * 4) * 10**9
        slow = i == SLOW
        checkout_ms = 900 if slow else 40

        def span(service: str, name: str, kind: SpanKind, start: int, parent: Any = None) -> Any:
            ctx = otel_trace.set_span_in_context(parent) if parent is not None else None
            return tracers[service].start_span(name, context=ctx, kind=kind, start_time=start)

        root = span("frontend", "GET /shop", SpanKind.SERVER, t0)
        root.set_attribute("http.method", "GET")
        call = span("frontend", "POST /checkout", SpanKind.CLIENT, t0 + 1 * MS, root)
        served = span("checkout", "POST /checkout", SpanKind.SERVER, t0 + 2 * MS, call)
        served.set_attribute("deploy.region", "eu-north" if slow else "us-east")
        db = span("checkout", "INSERT orders", SpanKind.CLIENT, t0 + 3 * MS, served)
        db.set_attribute("db.system", "postgresql")
        db.end(t0 + 8 * MS)
        charge = span("checkout", "charge card", SpanKind.CLIENT, t0 + 9 * MS, served)
        paid = span("payment", "Charge", SpanKind.SERVER, t0 + 10 * MS, charge)
        failing = i in FAILING
        paid.set_attribute("card.network", "discover" if failing else ("visa", "amex")[i % 2])
        if failing:
            paid.set_status(Status(StatusCode.ERROR))
        paid.end(t0 + 30 * MS)
        charge.end(t0 + 31 * MS)
        served.end(t0 + (2 + checkout_ms) * MS)
        call.end(t0 + (3 + checkout_ms) * MS)
        end = t0 + (5 + checkout_ms) * MS
        if i % 2 == 0:
            cart_call = span("frontend", "GET /cart", SpanKind.CLIENT, end, root)
            cart = span("cart", "GET /cart", SpanKind.SERVER, end + 1 * MS, cart_call)
            cart.end(end + 10 * MS)
            cart_call.end(end + 11 * MS)
            end += 12 * MS
        root.end(end)
        trace_id = format(root.get_span_context().trace_id, "032x").lstrip("0")
        pushed.all.append(trace_id)
        if i % 2 == 0:
            pushed.cart.append(trace_id)
        if failing:
            pushed.failing.append(trace_id)
        if slow:
            pushed.slow = trace_id
    exporter = OTLPSpanExporter(endpoint=server.grpc_target, insecure=True)
    send(exporter, memory.get_finished_spans())
    exporter.shutdown()
    return pushed


RANGE = 900  # the pages' "last 15 minutes": every pushed span is in it


def wait_for_graph(server: Server, deadline_s: float = 30.0) -> dict[str, Any]:
    """The service graph once every pushed call is in it (ingestion is asynchronous)."""
    deadline = time.monotonic() + deadline_s
    while True:
        end = int(time.time()) + 1
        doc = orjson.loads(server.get(f"/api/service-graph?start={end - RANGE}&end={end}").data)
        nodes = {n["id"]: n["requests"] for n in doc["nodes"]}
        if nodes.get("payment") == N_TRACES and nodes.get("cart") == N_TRACES // 2:
            return doc
        assert time.monotonic() < deadline, f"the pushed traces never showed: {doc}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ui_server(tmp_path_factory, "ui-services")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(srv: Server) -> Pushed:
    shop = push_shop(srv)
    wait_for_graph(srv)
    return shop


@pytest.fixture(scope="module")
def browser(pushed: Pushed) -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page = open_page(browser)
    yield page
    context.close()


def goto(page: Any, srv: Server, path: str) -> None:
    sep = "&" if "?" in path else "?"
    page.goto(f"{srv.api}{path}{sep}range={RANGE}")


def found_traces(page: Any, n: int) -> set[str]:
    """The trace ids the search lists, once it lists ``n``."""
    assert "/search?" in page.url
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=results] tbody tr').length === {n}"
    )
    rows = page.locator("[data-testid=results] tbody tr")
    return {rows.nth(i).get_attribute("data-trace-id") for i in range(n)}


def node(page: Any, name: str) -> Any:
    return page.locator(f"[data-testid=graph-node][data-id='{name}']")


def edge(page: Any, source: str, target: str) -> Any:
    return page.locator(f"[data-testid=graph-edge][data-source='{source}'][data-target='{target}']")


def test_the_graph_shows_services_calls_and_the_database(page: Any, srv: Server) -> None:
    goto(page, srv, "/services")
    nodes = page.locator("[data-testid=graph-node]")
    node(page, "postgresql").wait_for()
    ids = {nodes.nth(i).get_attribute("data-id") for i in range(nodes.count())}
    assert ids == {"frontend", "checkout", "payment", "cart", "postgresql"}
    # the database sends no spans: a peer, drawn as a cylinder (a path), services as boxes
    assert node(page, "postgresql").get_attribute("data-virtual") == "true"
    assert node(page, "postgresql").locator("path.box").count() == 1
    assert node(page, "postgresql").locator("rect.box").count() == 0
    assert "uninstrumented peer" in node(page, "postgresql").text_content()
    for name in ids - {"postgresql"}:
        assert node(page, name).get_attribute("data-virtual") == "false"
        assert node(page, name).locator("rect.box").count() == 1
    edges = page.locator("[data-testid=graph-edge]")
    pairs = {
        (edges.nth(i).get_attribute("data-source"), edges.nth(i).get_attribute("data-target"))
        for i in range(edges.count())
    }
    assert pairs == {
        ("frontend", "checkout"),
        ("frontend", "cart"),
        ("checkout", "payment"),
        ("checkout", "postgresql"),
    }

    # the figures: 12 requests (6 to cart) over 900 s, a quarter of the payments failing
    assert float(node(page, "payment").get_attribute("data-rate")) == 12 / RANGE
    assert float(node(page, "payment").get_attribute("data-error-rate")) == 0.25
    assert node(page, "payment").locator("[data-testid=node-figures]").text_content() == (
        "0.013 req/s · 25.0% err"
    )
    assert node(page, "cart").locator("[data-testid=node-figures]").text_content() == (
        "0.0067 req/s · 0% err"
    )
    assert edge(page, "checkout", "payment").locator(
        "[data-testid=edge-figures]"
    ).text_content() == ("0.013 req/s · 25.0% err")
    assert "p95" in edge(page, "checkout", "postgresql").text_content()
    assert edge(page, "checkout", "payment").get_attribute("class") == "g-edge failing"

    table = page.locator("[data-testid=services-table] tbody tr")
    assert table.count() == 5
    cells = {
        table.nth(i).get_attribute("data-service"): table.nth(i).locator("td").all_inner_texts()
        for i in range(5)
    }
    assert cells["payment"][1:4] == ["12", "0.013 req/s", "25.0%"]
    assert cells["cart"][1:4] == ["6", "0.0067 req/s", "0%"]
    assert cells["postgresql"][1:4] == ["12", "0.013 req/s", "0%"]  # the calls made to it
    assert all(c[4].endswith("ms") and c[6].endswith("ms") for c in cells.values())  # p50, p99
    assert not page.problems  # type: ignore[attr-defined]


def test_a_node_an_edge_and_a_row_open_the_search_for_their_traces(
    page: Any, srv: Server, pushed: Pushed
) -> None:
    goto(page, srv, "/services")
    node(page, "cart").click()
    assert found_traces(page, 6) == set(pushed.cart)
    assert "range=900" in page.url

    page.go_back()
    edge(page, "checkout", "payment").locator(".label-bg").click()
    assert found_traces(page, N_TRACES) == set(pushed.all)
    assert "%3E" in page.url  # the child operator: payment spans whose parent is checkout's

    page.go_back()
    edge(page, "frontend", "cart").locator(".label-bg").click()
    assert found_traces(page, 6) == set(pushed.cart)

    page.go_back()
    # the client spans naming the database
    edge(page, "checkout", "postgresql").locator(".label-bg").click()
    assert found_traces(page, N_TRACES) == set(pushed.all)

    page.go_back()
    node(page, "postgresql").click()
    assert found_traces(page, N_TRACES) == set(pushed.all)

    page.go_back()
    page.locator("[data-testid=services-table] tr[data-service=cart] td.num").first.click()
    assert found_traces(page, 6) == set(pushed.cart)
    assert not page.problems  # type: ignore[attr-defined]


def test_a_service_page_charts_and_ranks_its_operations(
    page: Any, srv: Server, pushed: Pushed
) -> None:
    goto(page, srv, "/services")
    page.locator("[data-testid=services-table] tr[data-service=checkout] a").click()
    page.locator("[data-testid=chart-durations] canvas").wait_for()
    assert "/services/checkout?range=900" in page.url
    # uPlot drew each chart with its series (the legend lists time and then each series)
    for chart, series in (("requests", 2), ("errors", 1), ("durations", 3)):
        figure = page.locator(f"[data-testid=chart-{chart}]")
        assert figure.get_attribute("data-series") == str(series)
        assert figure.locator("canvas").count() == 1
        assert figure.locator(".u-legend .u-series").count() == series + 1
    labels = page.locator("[data-testid=chart-durations] .u-legend .u-label").all_inner_texts()
    assert labels == ["Time", "p50", "p95", "p99"]
    assert page.locator("[data-testid=fact-rate]").inner_text() == "0.013 req/s"
    assert page.locator("[data-testid=fact-error-rate]").inner_text() == "0%"

    ops = page.locator("[data-testid=operation]")
    ops.first.wait_for()
    names = [ops.nth(i).get_attribute("data-name") for i in range(ops.count())]
    assert sorted(names) == ["INSERT orders", "POST /checkout", "charge card"]
    page.locator("[data-testid=sort-p95]").click()  # the slow request is a POST /checkout
    assert ops.first.get_attribute("data-name") == "POST /checkout"
    assert ops.first.get_attribute("data-kind") == "server"
    page.locator("[data-testid=sort-rate]").click()
    assert all("0.013 req/s" in ops.nth(i).inner_text() for i in range(3))

    # an exemplar is a request's span: the slowest one opens the slow trace
    exemplar = page.locator(f"[data-testid=exemplar][data-trace-id='{pushed.slow}']")
    exemplar.wait_for()
    exemplar.click()
    page.locator("[data-testid=waterfall]").wait_for()
    assert page.url.endswith("/trace/" + pushed.slow)

    page.go_back()
    ops.first.wait_for()
    page.locator("[data-testid=operation][data-name='INSERT orders']").click()
    assert found_traces(page, N_TRACES) == set(pushed.all)
    assert "INSERT+orders" in page.url
    assert not page.problems  # type: ignore[attr-defined]


def test_a_service_page_shows_its_errors_and_what_is_different_about_them(
    page: Any, srv: Server, pushed: Pushed
) -> None:
    goto(page, srv, "/services/payment")
    assert page.locator("[data-testid=fact-error-rate]").inner_text() == "25.0%"
    assert page.locator("[data-testid=chart-errors] canvas").count() == 1
    first = page.locator("[data-testid=difference]").first
    first.wait_for()
    assert (first.get_attribute("data-attribute"), first.get_attribute("data-value")) == (
        "span.card.network",
        "discover",
    )
    cells = first.locator("td").all_inner_texts()
    assert "100.0%" in cells[2] and "3 of 3" in cells[2]  # every failed payment
    assert cells[3].startswith("0%") and "0 of 9" in cells[3]  # no other payment
    assert cells[4] == "+100 pts"
    assert page.locator("[data-testid=selection-spans]").inner_text() == "3"
    assert page.locator("[data-testid=baseline-spans]").inner_text() == "9"
    # what defines the selection (its status) is not listed as a difference
    attrs = page.locator("[data-testid=difference]").evaluate_all(
        "rows => rows.map(r => r.dataset.attribute)"
    )
    assert "status" not in attrs
    first.click()
    assert found_traces(page, len(FAILING)) == set(pushed.failing)
    assert not page.problems  # type: ignore[attr-defined]


def test_the_slowest_requests_of_a_service_are_explained(
    page: Any, srv: Server, pushed: Pushed
) -> None:
    goto(page, srv, "/services/checkout")
    tabs = page.locator("[data-testid=difference-tab]")
    tabs.first.wait_for()
    # checkout has no errors: the slow requests are shown first
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    assert tabs.nth(1).inner_text().startswith("Slower than p95 (")
    first = page.locator("[data-testid=difference]").first
    first.wait_for()
    assert first.get_attribute("data-attribute") == "span.deploy.region"
    assert first.get_attribute("data-value") == "eu-north"
    first.click()
    assert found_traces(page, 1) == {pushed.slow}
    assert not page.problems  # type: ignore[attr-defined]


def test_the_differences_page_compares_what_its_url_and_form_say(
    page: Any, srv: Server, pushed: Pushed
) -> None:
    q = quote('{ resource.service.name = "payment" }')
    goto(page, srv, f"/differences?q={q}&selection={quote('{ status = error }')}")
    first = page.locator("[data-testid=difference]").first
    first.wait_for()
    assert first.get_attribute("data-value") == "discover"
    # another question through the form: what the slow spans of checkout have in common
    page.locator("[data-testid=baseline-input]").fill('{ resource.service.name = "checkout" }')
    page.locator("[data-testid=selection-input]").fill("{ duration > 500ms }")
    page.locator("[data-testid=compare]").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=difference]')?.dataset.value === 'eu-north'"
    )
    assert "selection=%7B+duration+%3E+500ms+%7D" in page.url
    assert page.locator("[data-testid=selection-spans]").inner_text() == "1"
    assert page.locator("[data-testid=baseline-spans]").inner_text() == "35"
    page.locator("[data-testid=difference]").first.click()
    assert found_traces(page, 1) == {pushed.slow}
    assert not page.problems  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("width", "dark"), [(1400, False), (1400, True), (1000, False), (1000, True)]
)
def test_screenshots(browser: Any, srv: Server, width: int, dark: bool) -> None:
    context, page = open_page(browser, width=width, dark=dark)
    try:
        name = f"{width}-{'dark' if dark else 'light'}"
        goto(page, srv, "/services")
        page.locator("[data-testid=services-table] tbody tr").first.wait_for()
        shot(page, srv, f"services-{name}")
        goto(page, srv, "/services/payment")
        page.locator("[data-testid=difference]").first.wait_for()
        page.locator("[data-testid=chart-durations] canvas").wait_for()
        shot(page, srv, f"service-{name}")
        q = quote('{ resource.service.name = "checkout" }')
        goto(page, srv, f"/differences?q={q}&selection={quote('{ duration > 500ms }')}")
        page.locator("[data-testid=difference]").first.wait_for()
        shot(page, srv, f"differences-{name}")
        assert not page.problems  # type: ignore[attr-defined]
    finally:
        context.close()
