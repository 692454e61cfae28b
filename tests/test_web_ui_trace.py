"""The web UI's trace view (/trace/<id>) in a real browser against a real server holding known
traces sent as OTLP protobuf: the waterfall (nesting, folding, critical path spans, duration
labels, minimap zoom), span details (attribute groups, events, links to the linked trace,
status, copy and download), search within the trace, keyboard navigation, every other mode
(flame graph, span table, statistics, graph), orphans and a trace without a root, and a
20,000-span trace that opens fast with only a few rows in the DOM. Screenshots in light and dark
themes at two widths are kept next to the server's log."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import Server
from ui_browser import launch, open_page, shot, ui_server

MS = 1_000_000
BIG = 20_000

SERVER, CLIENT, INTERNAL, CONSUMER = (
    Span.SPAN_KIND_SERVER,
    Span.SPAN_KIND_CLIENT,
    Span.SPAN_KIND_INTERNAL,
    Span.SPAN_KIND_CONSUMER,
)


@dataclass
class SpanSpec:
    sid: int
    parent: int | None
    service: str
    name: str
    start_ms: float
    end_ms: float
    kind: int = SERVER
    attrs: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def _set(kv: Any, key: str, value: Any) -> None:
    a = kv.add(key=key)
    if isinstance(value, bool):
        a.value.bool_value = value
    elif isinstance(value, int):
        a.value.int_value = value
    else:
        a.value.string_value = str(value)


def sid_hex(sid: int) -> str:
    return sid.to_bytes(8, "big").hex()


def export(srv: Server, trace_id: str, specs: list[SpanSpec], base_ns: int) -> None:
    """One OTLP/HTTP protobuf request: a resource per service, scope ``shop.http 1.4.0``."""
    req = ExportTraceServiceRequest()
    by_service: dict[str, Any] = {}
    for spec in specs:
        if spec.service not in by_service:
            rs = req.resource_spans.add()
            _set(rs.resource.attributes, "service.name", spec.service)
            _set(rs.resource.attributes, "host.name", f"{spec.service}-1")
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = "shop.http", "1.4.0"
            _set(ss.scope.attributes, "scope.flavour", "vanilla")
            by_service[spec.service] = ss
        span = by_service[spec.service].spans.add()
        span.trace_id = bytes.fromhex(trace_id)
        span.span_id = spec.sid.to_bytes(8, "big")
        if spec.parent is not None:
            span.parent_span_id = spec.parent.to_bytes(8, "big")
        span.name, span.kind = spec.name, spec.kind
        span.start_time_unix_nano = base_ns + int(spec.start_ms * MS)
        span.end_time_unix_nano = base_ns + int(spec.end_ms * MS)
        for k, v in spec.attrs.items():
            _set(span.attributes, k, v)
        for name, at, attrs in spec.events:
            ev = span.events.add(name=name, time_unix_nano=base_ns + int(at * MS))
            for k, v in attrs.items():
                _set(ev.attributes, k, v)
        if spec.error is not None:
            span.status.code, span.status.message = Status.STATUS_CODE_ERROR, spec.error
        for tid, lsid, attrs in spec.links:
            link = span.links.add(trace_id=bytes.fromhex(tid), span_id=bytes.fromhex(lsid))
            for k, v in attrs.items():
                _set(link.attributes, k, v)
    r = srv.request(
        "POST",
        srv.otlp_http + "/v1/traces",
        body=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status == 200, r.data


SHOP = "5a" * 16
ORPHANS = "0f" * 16
NO_ROOT = "0e" * 16
LINKS = "1c" * 16
BIG_ID = "b1" * 16

# the shop trace (ms from its start); the critical path, walked back from the root's end:
# r 95..100, c 65..95, r 60..65, b 55..60, b1 30..55, b 20..30, r 0..20 (a and d never block)
SHOP_SPANS = [
    SpanSpec(
        1, None, "frontend", "GET /checkout", 0, 100,
        attrs={"http.method": "GET", "http.route": "/checkout"},
        events=[("request.received", 1, {"bytes": 512})],
    ),
    SpanSpec(2, 1, "auth", "authenticate", 5, 25),
    SpanSpec(3, 1, "cart", "load cart", 20, 60),
    SpanSpec(
        4, 3, "db", "SELECT cart", 30, 55, CLIENT,
        attrs={"db.statement": "SELECT * FROM carts WHERE id = ?"},
    ),
    SpanSpec(5, 1, "cart", "reserve stock", 62, 80, INTERNAL),
    SpanSpec(
        6, 1, "payment", "charge card", 65, 95,
        events=[("retry", 80, {"attempt": 2})], error="card declined",
    ),
]  # fmt: skip
SHOP_ORDER = [1, 2, 3, 4, 5, 6]  # depth first, children by start
CRITICAL = {1, 3, 4, 6}


def big_specs() -> tuple[list[SpanSpec], list[int]]:
    """A 10-ary tree of 20,000 spans over 2 s; also the ids in depth-first order."""
    specs: list[SpanSpec] = []
    children: dict[int, list[int]] = {}
    for i in range(BIG):
        sid = i + 1
        if i == 0:
            parent, start, end = None, 0.0, 2000.0
        else:
            parent = 1 + (i - 1) // 10
            p = specs[parent - 1]
            slot = (p.end_ms - p.start_ms) / 10
            j = (i - 1) % 10
            start, end = p.start_ms + j * slot, p.start_ms + j * slot + slot * 0.9
            children.setdefault(parent, []).append(sid)
        specs.append(SpanSpec(sid, parent, f"svc-{i % 8}", f"op-{i % 50}", start, end))
    order: list[int] = []
    stack = [1]
    while stack:
        sid = stack.pop()
        order.append(sid)
        stack.extend(reversed(children.get(sid, [])))
    return specs, order


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ui_server(tmp_path_factory, "ui-trace")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, Any]:
    base = time.time_ns() - 60 * 10**9
    export(srv, SHOP, SHOP_SPANS, base)
    export(
        srv,
        ORPHANS,
        [
            SpanSpec(1, None, "frontend", "GET /orders", 0, 50),
            SpanSpec(2, 99, "jobs", "worker job", 10, 40),  # its parent 99 never arrives
            SpanSpec(3, 2, "jobs", "process", 15, 30),
        ],
        base,
    )
    export(
        srv,
        NO_ROOT,
        [SpanSpec(7, 98, "jobs", "late part", 0, 20), SpanSpec(8, 7, "jobs", "step", 5, 10)],
        base,
    )
    export(
        srv,
        LINKS,
        [
            SpanSpec(
                1, None, "queue", "consume batch", 0, 10, CONSUMER,
                links=[
                    (SHOP, sid_hex(1), {"link.reason": "batched"}),
                    (ORPHANS, sid_hex(2), {}),
                ],
            )
        ],
        base,
    )  # fmt: skip
    specs, order = big_specs()
    export(srv, BIG_ID, specs, base)
    return {"big_order": order}


@pytest.fixture(scope="module")
def browser(traces: dict[str, Any]) -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page = open_page(browser)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield page
    context.close()


def open_trace(page: Any, srv: Server, trace: str, query: str = "") -> Any:
    page.goto(f"{srv.api}/trace/{trace}{query}")
    rows = page.locator("[data-testid=span-row]")
    if not query:
        rows.first.wait_for()
    return rows


def row(page: Any, sid: int) -> Any:
    return page.locator(f"[data-testid=span-row][data-span-id='{sid_hex(sid)}']")


def row_ids(page: Any, testid: str = "span-row") -> list[str]:
    return page.eval_on_selector_all(
        f"[data-testid={testid}]", "els => els.map(e => e.dataset.spanId)"
    )


def wait_rows(page: Any, n: int, testid: str = "span-row") -> None:
    page.wait_for_function(f"document.querySelectorAll('[data-testid={testid}]').length === {n}")


def wait_ids(page: Any, ids: list[str], testid: str = "span-row") -> None:
    """Wait until the rows (``testid``) show exactly ``ids``, in order."""
    try:
        page.wait_for_function(
            """([t, ids]) => JSON.stringify([...document.querySelectorAll(`[data-testid=${t}]`)]
                .map(e => e.dataset.spanId)) === JSON.stringify(ids)""",
            arg=[testid, ids],
        )
    except Exception:
        assert row_ids(page, testid) == ids
        raise


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def selected_is(page: Any, sid: int) -> None:
    expect(page.locator(".wf-row.selected")).to_have_attribute("data-span-id", sid_hex(sid))


def test_the_waterfall_shows_the_tree_marks_and_critical_path(page: Any, srv: Server) -> None:
    rows = open_trace(page, srv, SHOP)
    assert row_ids(page) == [sid_hex(i) for i in SHOP_ORDER]
    assert page.locator("[data-testid=span-count]").inner_text() == "6"
    assert page.locator("[data-testid=trace-duration]").inner_text() == "100ms"
    assert page.locator("[data-testid=error-count]").inner_text() == "1"
    assert page.locator("[data-testid=orphan-count]").count() == 0
    pads = [rows.nth(i).locator(".wf-label").evaluate("e => e.style.paddingLeft") for i in range(6)]
    assert pads == ["4px", "18px", "18px", "32px", "18px", "18px"]
    assert row(page, 6).get_attribute("class").split() == ["wf-row", "failed"]
    assert row(page, 4).locator(".kind").inner_text() == "client"
    assert row(page, 1).locator(".event").count() == 1
    assert row(page, 6).locator(".event").get_attribute("title") == "retry at +15.0ms"
    # the critical path, exactly the spans Jaeger's walk puts on it, with its sections
    critical = page.eval_on_selector_all(
        "[data-testid=span-row][data-critical=true]", "els => els.map(e => e.dataset.spanId)"
    )
    assert set(critical) == {sid_hex(i) for i in CRITICAL}
    assert row(page, 1).locator(".cp").count() == 3  # 0..20, 60..65, 95..100
    assert row(page, 3).locator(".cp").count() == 2  # 20..30, 55..60
    # duration labels: after a short bar, before a bar ending near the right edge, inside a
    # bar that spans the whole timeline
    assert row(page, 2).locator(".bar-label").get_attribute("class") == "bar-label after"
    assert row(page, 6).locator(".bar-label").get_attribute("class") == "bar-label before"
    assert row(page, 1).locator(".bar-label").get_attribute("class") == "bar-label inside"
    assert row(page, 6).locator(".bar-label").inner_text() == "30.0ms"
    shot(page, srv, "trace-waterfall")

    page.locator("[data-testid=critical-toggle]").uncheck()
    expect(page.locator(".cp")).to_have_count(0)
    page.locator("[data-testid=critical-toggle]").check()
    expect(page.locator(".cp")).to_have_count(7)

    # folding: a subtree goes and comes back; collapse all leaves the root
    row(page, 3).locator("button.toggle").click()
    wait_ids(page, [sid_hex(i) for i in (1, 2, 3, 5, 6)])
    row(page, 3).locator("button.toggle").click()
    wait_rows(page, 6)
    page.locator("[data-testid=collapse-all]").click()
    wait_rows(page, 1)
    page.locator("[data-testid=expand-all]").click()
    wait_rows(page, 6)
    assert not page.problems  # type: ignore[attr-defined]


def test_the_minimap_zooms_and_resets_the_time_window(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP)
    minimap = page.locator("[data-testid=minimap]")
    box = minimap.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.10, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.30, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * 0.50, y, steps=4)
    page.mouse.up()
    page.locator("[data-testid=reset-zoom]").wait_for()
    frame = page.locator("[data-testid=minimap-frame]").bounding_box()
    assert abs(frame["x"] - (box["x"] + box["width"] * 0.1)) < 3
    assert abs(frame["width"] - box["width"] * 0.4) < 4
    ticks = page.locator("[data-testid=ruler] .tick").all_inner_texts()
    assert ticks[0] != "0µs" and ticks[-1] != "100ms"
    assert row(page, 6).locator(".bar").count() == 0  # 65..95 ms is outside 10..50 ms
    assert row(page, 3).locator(".bar").count() == 1
    page.locator("[data-testid=reset-zoom]").click()
    page.locator("[data-testid=reset-zoom]").wait_for(state="detached")
    assert row(page, 6).locator(".bar").count() == 1
    assert page.locator("[data-testid=ruler] .tick").first.inner_text() == "0µs"


def test_span_details_group_attributes_and_copy_and_download(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP)
    row(page, 6).click()
    details = page.locator("[data-testid=span-details]")
    details.wait_for()
    assert details.locator("h2").inner_text() == "payment charge card"
    assert details.locator("[data-testid=detail-span-id]").inner_text() == sid_hex(6)
    assert details.locator("[data-testid=detail-duration]").inner_text() == "30.0ms"
    assert details.locator("[data-testid=detail-status]").inner_text() == "error: card declined"
    resource = details.locator("[data-testid=resource-attributes]").inner_text()
    assert "service.name\tpayment" in resource and "host.name\tpayment-1" in resource
    scope = details.locator("[data-testid=scope-attributes]").inner_text()
    assert "shop.http 1.4.0" in scope and "scope.flavour\tvanilla" in scope
    events = details.locator("[data-testid=span-events]").inner_text()
    assert "retry" in events and "+15.0ms into the span" in events and "attempt\t2" in events

    row(page, 4).click()
    expect(details.locator("h2")).to_have_text("db SELECT cart")
    assert "db.statement\tSELECT * FROM carts WHERE id = ?" in details.inner_text()
    details.locator("[data-testid=copy-span-id]").click()
    details.locator("[data-testid=copy-span-id]", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == sid_hex(4)
    page.locator("[data-testid=copy-trace-id]").click()
    page.locator("[data-testid=copy-trace-id]", has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == SHOP

    with page.expect_download() as info:
        page.locator("[data-testid=download-trace]").click()
    download = info.value
    assert download.suggested_filename == f"trace-{SHOP}.json"
    doc = json.loads(Path(download.path()).read_text())
    served = orjson.loads(srv.get(f"/jaeger/api/v3/traces/{SHOP}").data)["result"]
    assert doc == served
    assert sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"]) == 6
    shot(page, srv, "trace-details")

    details.locator("button[aria-label=close]").click()
    details.wait_for(state="detached")
    assert not page.problems  # type: ignore[attr-defined]


def test_links_open_the_linked_trace(page: Any, srv: Server) -> None:
    rows = open_trace(page, srv, LINKS)
    rows.first.click()
    links = page.locator("[data-testid=span-links]")
    links.wait_for()
    anchors = links.locator("[data-testid=link-trace]")
    assert anchors.count() == 2
    assert anchors.nth(0).get_attribute("href") == f"/trace/{SHOP}"
    assert anchors.nth(1).get_attribute("href") == f"/trace/{ORPHANS}"
    assert "link.reason\tbatched" in links.inner_text()
    anchors.nth(0).click()
    page.wait_for_url(f"**/trace/{SHOP}")
    page.locator("[data-testid=span-count]", has_text="6").wait_for()
    assert row_ids(page)[0] == sid_hex(1)
    assert not page.problems  # type: ignore[attr-defined]


def test_orphans_and_a_trace_without_a_root_are_shown_marked(page: Any, srv: Server) -> None:
    open_trace(page, srv, ORPHANS)
    assert row_ids(page) == [sid_hex(1), sid_hex(2), sid_hex(3)]
    assert page.locator("[data-testid=orphan-count]").inner_text() == "1"
    marks = page.locator("[data-testid=missing-parent]")
    assert marks.count() == 1
    assert row(page, 2).locator("[data-testid=missing-parent]").inner_text() == "missing parent"
    pads = [row(page, i).locator(".wf-label").evaluate("e => e.style.paddingLeft") for i in (2, 3)]
    assert pads == ["4px", "18px"]  # the orphan heads its own subtree
    assert page.locator("[data-testid=no-root]").count() == 0
    shot(page, srv, "trace-orphans")

    open_trace(page, srv, NO_ROOT)
    assert row_ids(page) == [sid_hex(7), sid_hex(8)]
    page.locator("[data-testid=no-root]").wait_for()
    assert page.locator("[data-testid=orphan-count]").inner_text() == "1"
    assert page.locator("h1 .op").inner_text() == "late part"
    assert not page.problems  # type: ignore[attr-defined]


def test_search_within_the_trace_steps_through_matches(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP)
    row(page, 3).locator("button.toggle").click()  # fold "load cart": its child is hidden
    wait_rows(page, 5)
    box = page.locator("[data-testid=trace-search]")
    box.fill("SELECT")
    count = page.locator("[data-testid=search-count]")
    expect(count).to_have_text("1 of 1")
    wait_rows(page, 6)  # the folded ancestor of the match opened
    expect(row(page, 4)).to_have_class(re.compile(r"\bcurrent-match\b"))

    def at(text: str, sid: int) -> None:
        expect(count).to_have_text(text)
        current = page.locator(".wf-row.current-match")
        expect(current).to_have_attribute("data-span-id", sid_hex(sid))

    box.fill("cart")  # "load cart", "SELECT cart" (and its statement), "reserve stock" (cart)
    at("1 of 3", 3)
    expect(page.locator(".wf-row.match")).to_have_count(3)
    box.press("Enter")
    at("2 of 3", 4)
    box.press("Enter")
    at("3 of 3", 5)
    box.press("Enter")
    at("1 of 3", 3)
    box.press("Shift+Enter")
    at("3 of 3", 5)
    box.fill("payment-1")  # a resource attribute's value
    at("1 of 1", 6)
    box.fill("no such thing")
    expect(count).to_have_text("no match")
    expect(page.locator(".wf-row.match")).to_have_count(0)
    assert not page.problems  # type: ignore[attr-defined]


def test_keyboard_navigation_in_the_waterfall(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP)
    details = page.locator("[data-testid=span-details]")
    row(page, 1).click()
    details.wait_for()
    page.keyboard.press("Escape")
    details.wait_for(state="detached")
    page.keyboard.press("ArrowDown")
    selected_is(page, 2)
    page.keyboard.press("ArrowDown")
    selected_is(page, 3)
    page.keyboard.press("ArrowDown")
    selected_is(page, 4)
    page.keyboard.press("Enter")
    expect(details.locator("h2")).to_have_text("db SELECT cart")
    page.keyboard.press("ArrowUp")  # the open details follow the selection
    expect(details.locator("h2")).to_have_text("cart load cart")
    page.keyboard.press("Escape")
    details.wait_for(state="detached")
    page.keyboard.press("ArrowLeft")  # collapse "load cart"
    wait_rows(page, 5)
    page.keyboard.press("ArrowRight")  # expand it again
    wait_rows(page, 6)
    page.keyboard.press("ArrowRight")  # into its first child
    selected_is(page, 4)
    page.keyboard.press("ArrowLeft")  # a leaf: up to its parent
    selected_is(page, 3)
    page.keyboard.press("ArrowLeft")
    wait_rows(page, 5)
    selected_is(page, 3)
    page.keyboard.press("End")
    selected_is(page, 6)
    page.keyboard.press("Home")
    selected_is(page, 1)
    page.keyboard.press("ArrowLeft")  # fold the root
    wait_rows(page, 1)
    assert not page.problems  # type: ignore[attr-defined]


def test_the_flame_graph_zooms_into_a_subtree(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP, "?view=flame")
    nodes = page.locator("[data-testid=flame-node]")
    nodes.first.wait_for()
    assert page.locator("[data-testid=tab-flame]").get_attribute("aria-selected") == "true"
    assert nodes.count() == 6
    root = page.locator(f"[data-testid=flame-node][data-span-id='{sid_hex(1)}']")
    cart = page.locator(f"[data-testid=flame-node][data-span-id='{sid_hex(3)}']")
    full = root.bounding_box()["width"]
    assert abs(cart.bounding_box()["width"] / full - 0.4) < 0.02  # 40 of 100 ms
    assert cart.bounding_box()["y"] > root.bounding_box()["y"]  # one level down
    shot(page, srv, "trace-flame")
    cart.click()
    page.locator("[data-testid=flame-focus]", has_text="load cart").wait_for()
    wait_ids(page, [sid_hex(3), sid_hex(4)], "flame-node")
    page.locator("[data-testid=span-details] h2", has_text="cart load cart").wait_for()
    canvas = page.locator(".flame-canvas").bounding_box()["width"]  # narrower: details open
    assert canvas < full and abs(cart.bounding_box()["width"] - canvas) < 3  # the focus fills it
    page.locator("[data-testid=flame-trail] button", has_text="Whole trace").click()
    wait_rows(page, 6, "flame-node")
    assert not page.problems  # type: ignore[attr-defined]


def test_the_span_table_sorts(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP, "?view=table")
    page.locator("[data-testid=table-row]").first.wait_for()
    assert row_ids(page, "table-row") == [sid_hex(i) for i in (1, 2, 3, 4, 5, 6)]  # by start
    page.locator("[data-testid=sort-duration]").click()  # longest first
    wait_ids(page, [sid_hex(i) for i in (1, 3, 6, 4, 2, 5)], "table-row")
    page.locator("[data-testid=sort-duration]").click()
    wait_ids(page, [sid_hex(i) for i in (5, 2, 4, 6, 3, 1)], "table-row")
    page.locator("[data-testid=sort-self]").click()  # self: r 12 ms (children cover 88)
    wait_ids(page, [sid_hex(i) for i in (6, 4, 2, 5, 3, 1)], "table-row")
    page.locator("[data-testid=sort-service]").click()  # a-z, ties by start
    wait_ids(page, [sid_hex(i) for i in (2, 3, 5, 4, 1, 6)], "table-row")
    cells = page.locator(f"[data-testid=table-row][data-span-id='{sid_hex(1)}'] .st-cell")
    assert cells.all_inner_texts()[1:] == ["GET /checkout", "100ms", "12.0ms", "+0µs"]
    shot(page, srv, "trace-table")
    assert not page.problems  # type: ignore[attr-defined]


def test_statistics_per_service_and_operation(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP, "?view=stats")
    rows = page.locator("[data-testid=stats-row]")
    rows.first.wait_for()

    def cells(key: str) -> list[str]:
        return page.locator(f"[data-testid=stats-row][data-key='{key}'] td").all_inner_texts()

    # service, spans, total, self, min, avg, max, errors
    assert [c.strip() for c in cells("cart")] == [
        "cart", "2", "58.0ms", "33.0ms", "18.0ms", "29.0ms", "40.0ms", "0",
    ]  # fmt: skip
    assert [c.strip() for c in cells("frontend")][1:4] == ["1", "100ms", "12.0ms"]
    assert [c.strip() for c in cells("payment")][-1] == "1"
    assert rows.count() == 5
    page.locator("[data-testid=stat-sort-errors]").click()
    expect(rows.first).to_have_attribute("data-key", "payment")
    page.locator("[data-testid=stat-sort-service]").click()
    expect(rows.first).to_have_attribute("data-key", "auth")
    keys = [rows.nth(i).get_attribute("data-key") for i in range(5)]
    assert keys == ["auth", "cart", "db", "frontend", "payment"]
    page.locator("[data-testid=group-operation]").click()
    wait_rows(page, 6, "stats-row")
    shot(page, srv, "trace-stats")
    assert not page.problems  # type: ignore[attr-defined]


def test_the_service_graph_of_the_trace(page: Any, srv: Server) -> None:
    open_trace(page, srv, SHOP, "?view=graph")
    nodes = page.locator("[data-testid=graph-node]")
    nodes.first.wait_for()
    services = sorted(n.get_attribute("data-service") for n in nodes.all())
    assert services == ["auth", "cart", "db", "frontend", "payment"]
    edges = {
        (e.get_attribute("data-from"), e.get_attribute("data-to")): e.text_content()
        for e in page.locator("[data-testid=graph-edge]").all()
    }
    assert edges == {
        ("frontend", "auth"): "1 call",
        ("frontend", "cart"): "2 calls",
        ("cart", "db"): "1 call",
        ("frontend", "payment"): "1 call, 1 failed",
    }
    payment = page.locator("[data-testid=graph-node][data-service=payment]").text_content()
    assert "1 span" in payment and "1 error" in payment
    # laid out left to right: callers before callees
    node = "[data-testid=graph-node][data-service={}]"
    x = {s: page.locator(node.format(s)).bounding_box()["x"] for s in services}
    assert x["frontend"] < x["cart"] < x["db"]
    shot(page, srv, "trace-graph")
    # tabs move between modes and keep the URL
    page.locator("[data-testid=tab-timeline]").click()
    page.locator("[data-testid=span-row]").first.wait_for()
    assert page.url.endswith(f"/trace/{SHOP}")
    page.go_back()
    nodes.first.wait_for()
    assert page.url.endswith("?view=graph")
    assert not page.problems  # type: ignore[attr-defined]


FIRST_ROWS = """
window.__firstRows = null;
new MutationObserver((_, obs) => {
  if (document.querySelector('[data-testid=span-row]')) {
    window.__firstRows = performance.now();
    obs.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
"""


def test_a_20000_span_trace_opens_fast_and_scrolls_to_its_end(
    page: Any, srv: Server, traces: dict[str, Any]
) -> None:
    order: list[int] = traces["big_order"]
    page.add_init_script(FIRST_ROWS)
    rows = open_trace(page, srv, BIG_ID)
    first_rows_ms = page.evaluate("window.__firstRows")
    fetched_ms = page.evaluate(
        """performance.getEntriesByType('resource')
            .find(e => e.name.includes('/api/v3/traces/'))?.responseEnd ?? 0"""
    )
    print(
        f"\n20,000-span trace: first rows {first_rows_ms:.0f} ms after navigation"
        f" (its OTLP JSON fully received at {fetched_ms:.0f} ms)"
    )
    assert first_rows_ms < 10_000  # about 1 s here; generous for a busy machine
    assert page.locator("[data-testid=span-count]").inner_text() == str(BIG)
    in_dom = rows.count()
    assert 10 < in_dom < 120  # virtualised: only what is on screen (and a little around)
    assert row_ids(page)[:3] == [sid_hex(i) for i in order[:3]]

    # scrolling reaches the last span, still with few rows in the DOM
    scroller = page.locator("[data-testid=waterfall-rows]")
    scroller.evaluate("e => { e.scrollTop = e.scrollHeight; }")
    row(page, order[-1]).wait_for()
    assert rows.count() < 120
    # the minimap's frame followed the scroll to the bottom of the overview
    frame = page.locator("[data-testid=minimap-frame]").bounding_box()
    minimap = page.locator("[data-testid=minimap]").bounding_box()
    assert frame["y"] + frame["height"] > minimap["y"] + minimap["height"] - 4
    shot(page, srv, "trace-big-end")

    # a click in the middle of the minimap centres the waterfall on the middle rows; keyboard
    # Home and End go to either end
    page.mouse.click(minimap["x"] + 20, minimap["y"] + minimap["height"] / 2)
    position = {f"{sid:016x}": i for i, sid in enumerate(order)}
    page.wait_for_function(
        """([position, middle]) => {
            const shown = [...document.querySelectorAll('[data-testid=span-row]')]
                .map(e => position[e.dataset.spanId]).sort((a, b) => a - b);
            return Math.abs(shown[shown.length >> 1] - middle) < 800;  // a minimap px: 357 rows
        }""",
        arg=[position, BIG // 2],
    )
    assert row(page, order[0]).count() == 0 and row(page, order[-1]).count() == 0
    page.locator("[data-testid=waterfall-rows]").focus()
    page.keyboard.press("Home")
    selected_is(page, order[0])
    page.keyboard.press("End")
    selected_is(page, order[-1])

    # the other modes cope too: the span table is virtualised as well
    page.locator("[data-testid=tab-table]").click()
    page.locator("[data-testid=table-row]").first.wait_for()
    assert page.locator("[data-testid=table-row]").count() < 120
    page.locator("[data-testid=tab-stats]").click()
    page.locator("[data-testid=stats-row]").first.wait_for()
    assert page.locator("[data-testid=stats-row]").count() == 8
    assert not page.problems  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("width", "dark"), [(1400, False), (1400, True), (1000, False), (1000, True)]
)
def test_screenshots_in_both_themes_and_widths(
    browser: Any, srv: Server, width: int, dark: bool
) -> None:
    context, page = open_page(browser, width=width, dark=dark)
    try:
        name = f"{width}-{'dark' if dark else 'light'}"
        open_trace(page, srv, SHOP)
        row(page, 6).click()
        page.locator("[data-testid=span-details]").wait_for()
        # nothing in the row overflows into its neighbours: labels stay inside the timeline
        for sid in SHOP_ORDER:
            label = row(page, sid).locator(".bar-label").bounding_box()
            cell = row(page, sid).locator(".wf-timeline").bounding_box()
            assert (
                cell["x"] <= label["x"]
                and label["x"] + label["width"] <= cell["x"] + cell["width"] + 1
            )
        shot(page, srv, f"trace-{name}")
        content = {"flame": "flame-node", "table": "table-row", "stats": "stats-row"}
        for view in ("flame", "table", "stats", "graph"):
            page.locator(f"[data-testid=tab-{view}]").click()
            page.locator(f"[data-testid={content.get(view, 'graph-node')}]").first.wait_for()
            shot(page, srv, f"trace-{name}-{view}")
        assert not page.problems  # type: ignore[attr-defined]
    finally:
        context.close()
