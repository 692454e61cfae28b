"""The web UI's speed in a real browser: Debian's Chromium, driven by Playwright, against a real
``threadline serve`` holding a shop-like corpus (5 million spans by default, over the last hour,
pushed as ``search.py`` does) and one trace of 20,000 spans.

Timed from navigation start (``performance.now()`` in the page), each over ``--runs`` fresh
page loads on a warm server:

- **search**: the search page at ``/`` until it is interactive (the editor is up and the
  newest traces of the last hour are listed), then until the span and error counts are in;
- **trace**: ``/trace/<id>`` of the 20,000-span trace until its first rows are drawn, and the
  DOM rows then present (virtualised: far fewer than spans); then scrolling to its last span.

Targets (issue 14): search interactive under 1 s with 5 million spans stored; the
20,000-span trace drawn under 1.5 s. Prints one JSON object. ``--spans 200000`` is a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).parent))

from search import EXPORT, Template, push
from server import HOST, BenchServer

CHROMIUM = "/usr/bin/chromium"
BIG = 20_000


def big_trace(trace_id: bytes, spans: int) -> bytes:
    """One trace: a root with a fan-out of ten per level, over three services."""
    req = ExportTraceServiceRequest()
    now = time.time_ns() - 30 * 10**9
    for s, service in enumerate(("gateway", "orders", "inventory")):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        ss = rs.scope_spans.add()
        for i in range(s, spans, 3):
            span = ss.spans.add()
            span.trace_id, span.span_id = trace_id, (i + 1).to_bytes(8, "big")
            if i:
                span.parent_span_id = (1 + (i - 1) // 10).to_bytes(8, "big")
            span.name = f"step-{i % 40}"
            span.kind = 2 if i == 0 else 3
            start = now + i * 50_000
            span.start_time_unix_nano, span.end_time_unix_nano = start, start + 2_000_000
    return req.SerializeToString()


def last_in_tree_order(spans: int) -> int:
    """The id of the span drawn last: the last child of the last child ... of the root."""
    last = 1
    while (last - 1) * 10 + 2 <= spans:
        last = min((last - 1) * 10 + 11, spans)
    return last


def stats(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"p50_ms": round(float(np.median(a)), 1), "max_ms": round(float(a.max()), 1)}


def time_pages(api: str, trace_hex: str, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    search_ready: list[float] = []
    counts_in: list[float] = []
    trace_drawn: list[float] = []
    scrolled: list[float] = []
    dom_rows: list[int] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(120_000)
        for i in range(runs + 1):  # the first load warms the server's caches and is not kept
            page.goto(api + "/", wait_until="commit")
            page.wait_for_function(
                "document.querySelector('[data-testid=query-editor] .cm-content') &&"
                " document.querySelectorAll('[data-testid=results] tbody tr').length > 0"
            )
            ready = page.evaluate("performance.now()")
            page.wait_for_function(
                "[...document.querySelectorAll('[data-testid=trace-spans]')]"
                ".every(e => /^\\d+$/.test(e.innerText.trim()))"
            )
            counted = page.evaluate("performance.now()")
            page.goto(f"{api}/trace/{trace_hex}", wait_until="commit")
            page.wait_for_function("document.querySelectorAll('[data-testid=span-row]').length > 0")
            drawn = page.evaluate("performance.now()")
            rows = page.evaluate("document.querySelectorAll('[data-testid=span-row]').length")
            t0 = page.evaluate("performance.now()")
            page.evaluate(
                "(() => { const s = document.querySelector('[data-testid=waterfall-rows]')"
                " ?? document.scrollingElement; s.scrollTop = s.scrollHeight; })()"
            )
            page.wait_for_function(
                f"[...document.querySelectorAll('[data-testid=span-row]')]"
                f".some(e => e.dataset.spanId === '{last_in_tree_order(BIG):016x}')"
            )
            t1 = page.evaluate("performance.now()")
            if i:
                search_ready.append(ready)
                counts_in.append(counted)
                trace_drawn.append(drawn)
                scrolled.append(t1 - t0)
                dom_rows.append(rows)
        browser.close()
    return {
        "search_interactive": stats(search_ready),
        "search_counts_in": stats(counts_in),
        "trace_20k_first_rows": stats(trace_drawn),
        "trace_20k_scroll_to_last": stats(scrolled),
        "trace_20k_dom_rows": max(dom_rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--data-dir", type=Path, help="empty directory (default: a temp dir)")
    args = ap.parse_args()

    rng = random.Random(5)
    window_s = 3000  # within the UI's default "last hour"
    requests = -(-args.spans // 1000)
    slot_ns = window_s * 10**9 // requests
    tpls = [Template(rng, 1000, slot_ns) for _ in range(48)]
    window_start = time.time_ns() - window_s * 10**9 - 60 * 10**9
    temp_root = Path(tempfile.mkdtemp(prefix="tl-ui-")) if args.data_dir is None else None
    data_dir = args.data_dir or temp_root / "data"  # type: ignore[operator]
    server = BenchServer(data_dir, {"compactor": {"enabled": False}}).start()
    result: dict[str, Any] = {"benchmark": "ui", "cpus": os.cpu_count()}
    try:
        t0 = time.monotonic()
        target = f"{HOST}:{server.grpc_port}"
        acked = asyncio.run(
            push(target, tpls, requests, window_start, slot_ns, args.inflight, [], rng)
        )
        trace_id = os.urandom(16)
        grpc.insecure_channel(target).unary_unary(EXPORT)(big_trace(trace_id, BIG), timeout=120)
        result["stored"] = {"spans": acked + BIG, "ingest_seconds": round(time.monotonic() - t0, 1)}
        result |= time_pages(server.api, trace_id.hex(), args.runs)
    finally:
        server.stop()
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
