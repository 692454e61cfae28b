"""The web UI's trace comparison (/compare/<a>/<b>) in a real browser, against a server holding
three traces of one shape sent with the OpenTelemetry SDK at fixed times: B drops A's "send
receipt", adds "score order", runs "SELECT cart" twice and "load cart" 30 ms slower; C is A with
"check token" 6 ms faster. The page must show exactly those differences, in the graph and the
table, follow its inputs in the URL, and be readable in light and dark at two widths (the cards
do not overlap, nothing is cut off). Screenshots are kept next to the server's log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from conftest import Server
from otel_helpers import send, trace_hex
from ui_browser import launch, open_page, shot, ui_server

MS = 1_000_000
TIMES = "\N{MULTIPLICATION SIGN}"
MINUS = "\N{MINUS SIGN}"  # the page writes a negative change with it

# (service, operation, start ms, end ms, index of the parent in this list or None)
Shape = list[tuple[str, str, int, int, int | None]]

A: Shape = [
    ("shop", "GET /order", 0, 100, None),
    ("auth", "check token", 2, 12, 0),
    ("cart", "load cart", 15, 35, 0),
    ("db", "SELECT cart", 18, 30, 2),
    ("mail", "send receipt", 40, 60, 0),
]
B: Shape = [
    ("shop", "GET /order", 0, 100, None),
    ("auth", "check token", 2, 12, 0),
    ("cart", "load cart", 15, 65, 0),
    ("db", "SELECT cart", 18, 30, 2),
    ("db", "SELECT cart", 35, 47, 2),
    ("fraud", "score order", 70, 80, 0),
]
C: Shape = [
    ("shop", "GET /order", 0, 100, None),
    ("auth", "check token", 2, 6, 0),
    ("cart", "load cart", 15, 35, 0),
    ("db", "SELECT cart", 18, 30, 2),
    ("mail", "send receipt", 40, 60, 0),
]

# what the page must say about A against B, per operation: (presence, count, timing)
A_VS_B = {
    "GET /order": ("both", "same", "same"),
    "check token": ("both", "same", "same"),
    "load cart": ("both", "same", "slower"),
    "SELECT cart": ("both", "more-b", "same"),
    "send receipt": ("only-a", "more-a", ""),
    "score order": ("only-b", "more-b", ""),
}
A_VS_C = {name: ("both", "same", "same") for name in ("GET /order", "load cart", "SELECT cart")}
A_VS_C |= {"check token": ("both", "same", "faster"), "send receipt": ("both", "same", "same")}


def build(shape: Shape, base_ns: int) -> list[ReadableSpan]:
    """One trace of ``shape``, its spans from one provider per service, at fixed times."""
    memory = InMemorySpanExporter()
    tracers: dict[str, Tracer] = {}
    providers: list[TracerProvider] = []
    for service in dict.fromkeys(s for s, *_ in shape):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
        tracers[service] = provider.get_tracer("tests.compare")
    made: list[otel_trace.Span] = []
    for service, name, start, _end, parent in shape:
        context = None if parent is None else otel_trace.set_span_in_context(made[parent])
        kind = SpanKind.SERVER if parent is None else SpanKind.CLIENT
        span = tracers[service].start_span(
            name, context=context, kind=kind, start_time=base_ns + start * MS
        )
        made.append(span)
    for span, (*_, end, _parent) in zip(made, shape, strict=True):
        span.end(end_time=base_ns + end * MS)
    for provider in providers:
        provider.shutdown()
    return sorted(memory.get_finished_spans(), key=lambda s: s.parent is not None)


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = ui_server(tmp_path_factory, "ui-compare")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def traces(srv: Server) -> dict[str, str]:
    exporter = OTLPSpanExporter(endpoint=srv.grpc_target, insecure=True)
    base = (time.time_ns() // 1000) * 1000 - 60_000 * MS  # a minute ago, whole microseconds
    ids: dict[str, str] = {}
    for label, shape, offset in (("a", A, 0), ("b", B, 1000), ("c", C, 2000)):
        spans = build(shape, base + offset * MS)
        send(exporter, spans)
        ids[label] = trace_hex(spans)
        n = len(shape)
        wait_until(lambda i=ids[label], n=n: srv.span_count(i) == n)
    exporter.shutdown()
    return ids


@pytest.fixture(scope="module")
def browser(traces: dict[str, str]) -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, page = open_page(browser)
    yield page
    context.close()


def nodes(page: Any, count: int) -> dict[str, tuple[str, str, str]]:
    """Once ``count`` nodes are shown: each one's (presence, count, timing) by operation."""
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=diff-node]').length === {count}"
    )
    found = page.locator("[data-testid=diff-node]").evaluate_all(
        "els => els.map(e => [e.dataset.name, e.dataset.presence, e.dataset.count,"
        " e.dataset.timing])"
    )
    return {name: (presence, n, timing) for name, presence, n, timing in found}


def node(page: Any, name: str) -> Any:
    return page.locator(f"[data-testid=diff-node][data-name='{name}']")


def text(page: Any, testid: str) -> str:
    return page.locator(f"[data-testid={testid}]").inner_text().strip()


def test_the_graph_shows_what_b_changed(page: Any, srv: Server, traces: dict[str, str]) -> None:
    page.goto(f"{srv.api}/compare/{traces['a']}/{traces['b']}")
    page.locator("[data-testid=diff-graph]").wait_for()
    assert nodes(page, 6) == A_VS_B
    # the summary
    assert text(page, "spans-a") == "5" and text(page, "spans-b") == "6"
    assert text(page, "duration-a") == text(page, "duration-b") == "100ms"
    assert text(page, "spans-change") == "+1 (+20%)"
    assert text(page, "duration-change") == "no change"
    assert [text(page, f"count-{k}") for k in ("added", "removed", "changed", "unchanged")] == [
        "1",
        "1",
        "2",
        "2",
    ]
    assert text(page, "count-breakdown") == "1 slower, 1 more in B"
    # the cards: A's and B's spans side by side, what changed and by how much
    load = node(page, "load cart")
    assert load.locator("[data-testid=side-a]").inner_text().split() == ["A", "20.0ms"]
    assert load.locator("[data-testid=side-b]").inner_text().split() == ["B", "50.0ms"]
    assert load.locator("[data-testid=change-badge]").all_inner_texts() == ["slower in B"]
    assert load.locator("[data-testid=delta]").inner_text() == "+30.0ms (+150%)"
    select = node(page, "SELECT cart")
    assert select.locator("[data-testid=side-b]").inner_text().split() == [
        "B",
        "2",
        TIMES,
        "12.0ms",
    ]
    assert select.locator("[data-testid=change-badge]").all_inner_texts() == ["more in B"]
    assert select.locator("[data-testid=delta]").count() == 0  # same mean duration
    receipt = node(page, "send receipt")
    assert receipt.locator("[data-testid=change-badge]").all_inner_texts() == ["only in A"]
    assert receipt.locator("[data-testid=side-b]").inner_text().split() == ["B", "—"]
    score = node(page, "score order")
    assert score.locator("[data-testid=change-badge]").all_inner_texts() == ["only in B"]
    assert score.locator("[data-testid=side-a]").inner_text().split() == ["A", "—"]
    for same in ("GET /order", "check token"):
        assert node(page, same).locator("[data-testid=change-badge]").count() == 0
    # laid out left to right: children to the right of their parent
    root_box = node(page, "GET /order").bounding_box()
    assert all(
        node(page, n).bounding_box()["x"] > root_box["x"] + 100 for n in A_VS_B if n != "GET /order"
    )
    assert node(page, "SELECT cart").bounding_box()["x"] > load.bounding_box()["x"] + 100
    shot(page, srv, "compare-graph")

    # a node's spans
    select.click()
    details = page.locator("[data-testid=node-spans]")
    details.wait_for()
    assert details.locator("tbody tr").count() == 3  # one in A, two in B
    assert "GET /order" in details.locator(".node-path").inner_text()

    # changes only: the unchanged "check token" goes, the root stays (it leads to changes)
    page.locator("[data-testid=only-changes]").check()
    assert set(nodes(page, 5)) == set(A_VS_B) - {"check token"}
    assert not page.problems  # type: ignore[attr-defined]


def test_the_table_shows_the_same(page: Any, srv: Server, traces: dict[str, str]) -> None:
    page.goto(f"{srv.api}/compare/{traces['a']}/{traces['b']}")
    page.locator("[data-testid=view-tree]").click()
    page.locator("[data-testid=diff-tree]").wait_for()
    assert nodes(page, 6) == A_VS_B
    rows = page.locator("[data-testid=diff-node]")
    names = [rows.nth(i).get_attribute("data-name") for i in range(6)]
    assert names == [
        "GET /order",
        "check token",
        "load cart",
        "SELECT cart",
        "send receipt",
        "score order",
    ]
    pad = [
        rows.nth(i).locator(".diff-label").evaluate("e => e.style.paddingLeft") for i in range(6)
    ]
    assert pad == ["8px", "26px", "26px", "44px", "26px", "26px"]
    cells = node(page, "load cart").locator("td").all_inner_texts()
    assert [c.strip() for c in cells[1:3]] == ["20.0ms", "50.0ms"]
    assert "slower in B" in cells[3] and "+30.0ms (+150%)" in cells[3]
    shot(page, srv, "compare-tree")
    assert not page.problems  # type: ignore[attr-defined]


def test_changing_an_input_follows_in_the_url_and_view(
    page: Any, srv: Server, traces: dict[str, str]
) -> None:
    a, b, c = traces["a"], traces["b"], traces["c"]
    page.goto(f"{srv.api}/compare/{a}/{b}")
    assert nodes(page, 6) == A_VS_B
    field = page.locator("[data-testid=compare-b]")
    assert field.input_value() == b
    field.fill(f"{srv.api}/trace/{c}")  # a pasted link works as well as an id
    field.press("Enter")
    page.wait_for_url(re.compile(f"/compare/{a}/{c}$"))
    assert nodes(page, 5) == A_VS_C
    token = node(page, "check token")
    assert token.locator("[data-testid=change-badge]").all_inner_texts() == ["faster in B"]
    assert token.locator("[data-testid=delta]").inner_text() == f"{MINUS}6.00ms ({MINUS}60%)"
    assert text(page, "count-changed") == "1"
    assert field.input_value() == c

    page.locator("[data-testid=compare-swap]").click()  # C against A: slower
    page.wait_for_url(re.compile(f"/compare/{c}/{a}$"))
    page.wait_for_function(
        "document.querySelector(\"[data-name='check token']\")?.dataset.timing === 'slower'"
    )
    assert token.locator("[data-testid=delta]").inner_text() == "+6.00ms (+150%)"

    page.go_back()  # history holds each comparison
    page.wait_for_url(re.compile(f"/compare/{a}/{c}$"))
    page.wait_for_function(
        "document.querySelector(\"[data-name='check token']\")?.dataset.timing === 'faster'"
    )
    page.go_back()
    page.wait_for_url(re.compile(f"/compare/{a}/{b}$"))
    assert nodes(page, 6) == A_VS_B
    assert field.input_value() == b
    assert not page.problems  # type: ignore[attr-defined]


def test_compare_without_ids_asks_for_them(page: Any, srv: Server, traces: dict[str, str]) -> None:
    page.goto(srv.api + "/")
    page.locator("nav a", has_text="Compare").click()
    page.locator("[data-testid=compare-hint]").wait_for()
    assert page.locator("[data-testid=diff-node]").count() == 0
    page.locator("[data-testid=compare-a]").fill("not a trace")
    page.locator("[data-testid=compare-submit]").click()
    assert "A: a trace id" in text(page, "compare-input-error")
    page.locator("[data-testid=compare-a]").fill(traces["a"])
    page.locator("[data-testid=compare-submit]").click()
    page.wait_for_url(re.compile(f"/compare/{traces['a']}$"))
    assert "Enter trace B" in text(page, "compare-hint")
    page.locator("[data-testid=compare-b]").fill(traces["b"].upper())
    page.locator("[data-testid=compare-b]").press("Enter")
    page.wait_for_url(re.compile(f"/compare/{traces['a']}/{traces['b']}$"))
    assert nodes(page, 6) == A_VS_B
    shot(page, srv, "compare-inputs")
    assert not page.problems  # type: ignore[attr-defined]


def test_a_missing_trace_says_which(page: Any, srv: Server, traces: dict[str, str]) -> None:
    page.goto(f"{srv.api}/compare/{traces['a']}/{'ab' * 16}")
    error = page.locator("[data-testid=compare-error-b]")
    error.wait_for()
    assert "No traces found" in error.inner_text()
    assert page.locator("[data-testid=compare-error-a]").count() == 0


def overlaps(boxes: list[dict[str, float]]) -> list[tuple[int, int]]:
    def hit(p: dict[str, float], q: dict[str, float]) -> bool:
        return (
            p["x"] < q["x"] + q["width"]
            and q["x"] < p["x"] + p["width"]
            and p["y"] < q["y"] + q["height"]
            and q["y"] < p["y"] + p["height"]
        )

    return [
        (i, j)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if hit(boxes[i], boxes[j])
    ]


@pytest.mark.parametrize("width", [1400, 1000])
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_readable_in_light_and_dark(
    browser: Any, srv: Server, traces: dict[str, str], width: int, dark: bool
) -> None:
    context, page = open_page(browser, width=width, dark=dark)
    try:
        page.goto(f"{srv.api}/compare/{traces['a']}/{traces['b']}")
        assert nodes(page, 6) == A_VS_B
        cards = page.locator("[data-testid=diff-node]")
        assert not overlaps([cards.nth(i).bounding_box() for i in range(6)])
        # nothing in a card is cut off (the names are short), nor in the summary
        cut = page.evaluate(
            "[...document.querySelectorAll('.diff-card > *, .trace-card-head, .trace-card dd')]"
            ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
        )
        assert cut == []
        # the trace ids in the summary each fit on one line
        lines = page.locator(".trace-card .trace-id").evaluate_all(
            "els => els.map(e => e.getClientRects().length)"
        )
        assert lines == [1, 1]
        summary = [
            page.locator(f"[data-testid={t}]").bounding_box()
            for t in ("trace-card-a", "trace-card-b")
        ]
        summary.append(page.locator(".diff-totals").bounding_box())
        assert not overlaps(summary)
        scheme = "dark" if dark else "light"
        shot(page, srv, f"compare-graph-{scheme}-{width}")
        node(page, "load cart").click()
        page.locator("[data-testid=node-spans]").wait_for()
        shot(page, srv, f"compare-details-{scheme}-{width}")
        page.locator("[data-testid=view-tree]").click()
        page.locator("[data-testid=diff-tree]").wait_for()
        shot(page, srv, f"compare-tree-{scheme}-{width}")
        assert not page.problems  # type: ignore[attr-defined]
    finally:
        context.close()
