"""Blocks and in-memory rows are searched in trace-start windows, newest first: the answer of
a small limit is the newest traces of the full answer, for filters that match the newest
traces, only the oldest, or nothing."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from pathlib import Path

import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_requests import add_two_span_trace
from test_ingester_lifecycle import make_ingester
from threadline.config import BlockConfig
from threadline.ingester.ingester import Entry
from threadline.model.otlp_decode import decode_export_request
from threadline.querier.admission import QueryResources, connect
from threadline.querier.search import SearchEngine, SearchWindow, start_windows
from threadline.querier.sources import DataSources
from threadline.storage.backend import LocalBackend
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist
from threadline.traceql.plan import compile_search

TRACES = 3000
BASE = 1_700_000_000 * 10**9


def _table() -> pa.Table:
    """``TRACES`` two-span traces a second apart, random ids; trace n is "slow" when n < 30."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "windows"
    ss = rs.scope_spans.add()
    for n in range(TRACES):
        name = "slow" if n < 30 else f"op-{n % 7}"
        add_two_span_trace(ss, os.urandom(16), BASE + n * 10**9, name)
    return pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])


@pytest.fixture(scope="module", params=["block", "memory", "live"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SearchEngine:
    """The corpus as one block, as one entry of cut traces in the ingester's memory, or as
    live pushes of 100 traces each, pushed out of time order."""
    root: Path = tmp_path_factory.mktemp(request.param)
    if request.param == "block":
        write_block(root, "t1", _table(), BlockConfig(row_group_spans=256))
        blocklist = Blocklist(LocalBackend(root))
        blocklist.load()
        return SearchEngine(DataSources(None, blocklist))
    ingester, blocklist, clock = make_ingester(root)
    table = _table()
    if request.param == "memory":
        ingester._state("t1").head.append(Entry(table, 0, clock.now))
    else:
        pushes = [Entry(table.slice(at, 200), 0, clock.now) for at in range(0, len(table), 200)]
        random.Random(4).shuffle(pushes)
        ingester._state("t1").live.extend(pushes)
    return SearchEngine(DataSources(ingester, blocklist))


def _ids(engine: SearchEngine, query: str, limit: int) -> list[tuple[int, bytes]]:
    result = asyncio.run(engine.search("t1", compile_search(query), SearchWindow(), limit, 3))
    return [(t.start_ns, t.trace_id) for t in result.traces]


def test_a_big_source_is_searched_in_growing_windows(engine: SearchEngine) -> None:
    [source] = engine.sources._sources("t1", None, None)
    source = source.prepared()
    windows = start_windows(source, 2)
    # the live stage (push order): its newest window, then the rest
    assert len(windows) == 2 if source.live is not None and not source.ordered else len(windows) > 2
    assert windows[0][1] is None and windows[-1][0] is None
    for (since, _), (_, before) in itertools.pairwise(windows):
        assert since == before  # no gap, no overlap
    assert start_windows(source, TRACES) == [(None, None)]


@pytest.mark.parametrize(
    ("query", "matching"),
    [
        ('{ resource.service.name = "windows" }', TRACES),
        ('{ name = "op-3" }', len([n for n in range(30, TRACES) if n % 7 == 3])),
        ('{ name = "slow" }', 30),
        ('{ name = "nowhere" }', 0),
    ],
)
@pytest.mark.parametrize("limit", [1, 5, 20, 100])
def test_small_limits_answer_the_newest_of_the_full_answer(
    engine: SearchEngine, query: str, matching: int, limit: int
) -> None:
    everything = _ids(engine, query, 10 * TRACES)
    assert len(everything) == matching
    assert everything == sorted(everything, reverse=True)
    assert _ids(engine, query, limit) == everything[:limit]


def test_query_cursors_keep_block_footers_parsed() -> None:
    """Every source query runs on a cursor of the one database: the footer cache must hold
    there too, or each query parses the footer again (140 of 155 ms on a 650 k-span block)."""
    con = connect(QueryResources())
    cursor = con.cursor()
    setting = "SELECT current_setting('parquet_metadata_cache')"
    assert cursor.sql(setting).fetchall() == [(True,)]
    assert con.cursor().sql(setting).fetchall() == [(True,)]
