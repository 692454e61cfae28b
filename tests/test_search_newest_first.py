"""Searches visit live data and blocks newest first and stop once the newest ``limit`` traces are
certain; the answer is the same as a search that reads everything. Live data is prepared once
and reused by later queries until new spans arrive."""

from __future__ import annotations

import os
import time
from urllib.parse import quote

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from otlp_requests import add_two_span_trace

BATCHES = 6  # each its own block, minutes apart; one more batch stays live
PER_BATCH = 3
MINUTE = 60 * 10**9


def push_batch(server: Server, base_ns: int, batch: int) -> list[str]:
    """``PER_BATCH`` two-span traces starting ``batch`` minutes after ``base_ns``; their ids,
    newest first."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "newest-first"
    ss = rs.scope_spans.add()
    ids = []
    for k in range(PER_BATCH):
        trace_id = os.urandom(16)
        start = base_ns + batch * MINUTE + k * 10**9
        add_two_span_trace(ss, trace_id, start, f"op-{batch}")
        ids.append(trace_id.hex().lstrip("0"))
    r = server.request(
        "POST",
        server.otlp_http + "/v1/traces",
        body=req.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status == 200, r.data
    return ids[::-1]


@pytest.fixture(scope="module")
def newest(server: Server) -> list[str]:
    """Every trace id, newest first; the last batch is live, the others in one block each."""
    base = time.time_ns() - (BATCHES + 2) * MINUTE
    out: list[str] = []
    for batch in range(BATCHES + 1):
        out = push_batch(server, base, batch) + out
        if batch < BATCHES:
            server.flush()
    return out


def search(server: Server, limit: int, q: str = '{ resource.service.name = "newest-first" }'):
    r = server.get(f"/api/search?q={quote(q)}&limit={limit}")
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def test_a_small_limit_reads_only_the_newest_sources(server: Server, newest: list[str]) -> None:
    doc = search(server, PER_BATCH)
    assert [t["traceID"] for t in doc["traces"]] == newest[:PER_BATCH]
    # live data holds them all: at most the block searched beside it in the same round
    assert doc["metrics"]["totalBlocks"] <= 1

    doc = search(server, PER_BATCH * 2 + 1)
    assert [t["traceID"] for t in doc["traces"]] == newest[: PER_BATCH * 2 + 1]
    assert doc["metrics"]["totalBlocks"] < BATCHES


def test_a_limit_past_everything_reads_every_block(server: Server, newest: list[str]) -> None:
    doc = search(server, 100)
    assert [t["traceID"] for t in doc["traces"]] == newest
    assert doc["metrics"]["totalBlocks"] == BATCHES


def test_a_filter_matching_only_old_traces_goes_on_to_old_blocks(
    server: Server, newest: list[str]
) -> None:
    doc = search(server, 20, '{ name = "op-0" }')
    assert [t["traceID"] for t in doc["traces"]] == newest[-PER_BATCH:]
    assert doc["metrics"]["totalBlocks"] == BATCHES


def test_live_data_prepared_for_one_query_is_renewed_when_spans_arrive(
    server: Server, newest: list[str]
) -> None:
    before = search(server, 1)
    assert [t["traceID"] for t in before["traces"]] == newest[:1]
    assert search(server, 1) == before  # the same live rows answer the same
    later = push_batch(server, time.time_ns() - MINUTE, 0)
    assert [t["traceID"] for t in search(server, 1)["traces"]] == later[:1]


@pytest.mark.parametrize("hint", ["", " with(most_recent=true)"])
def test_pages_follow_on_in_time(server: Server, newest: list[str], hint: str) -> None:
    """Each page ends a nanosecond before the oldest trace of the last one: together the pages
    are every trace, newest first, once (traces pushed later by another test start after the
    first page's end)."""
    anchor = search(server, 1, '{ name = "op-6" }')["traces"][0]
    end = int(anchor["startTimeUnixNano"])
    q = '{ resource.service.name = "newest-first" }' + hint
    seen: list[str] = []
    while True:
        url = f"/api/search?q={quote(q)}&limit=4&end={end // 10**9}.{end % 10**9:09d}"
        r = server.get(url)
        assert r.status == 200, r.data
        page = orjson.loads(r.data).get("traces", [])
        if not page:
            break
        assert len(page) <= 4
        seen += [t["traceID"] for t in page]
        end = int(page[-1]["startTimeUnixNano"]) - 1
    assert seen == newest
