"""Queries over the ingester's in-memory rows: each cut entry prepared once, the live stage
rebuilt only when it changed, concurrent queries sharing one build, nothing kept after a block
holds the rows."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import pyarrow.compute as pc
import pytest

from otlp_requests import SPANS_PER_TRACE
from test_ingester_lifecycle import make_ingester, push
from threadline.ingester import ingester as ingester_module
from threadline.querier.search import SearchEngine, SearchWindow
from threadline.querier.sources import DataSources, LiveSnapshots
from threadline.traceql.plan import compile_search


def test_cut_entries_are_prepared_once_and_dropped_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        ing, blocklist, clock = make_ingester(
            tmp_path, trace_idle_period="1s", max_block_duration="1h"
        )
        snapshots = LiveSnapshots(ing)
        builds: list[int] = []
        build = snapshots._build
        monkeypatch.setattr(snapshots, "_build", lambda e: builds.append(len(e)) or build(e))
        for n in range(4):
            await push(ing, n)
        clock.now += 2
        await ing.tick()  # four traces cut into one head entry
        await push(ing, 4)  # one live trace
        parts = snapshots.parts("t")
        assert builds == []  # nothing is built before a query reads it
        # the head entry's span time is known, so a search can stop before it; live is open
        (cut,) = ing.tenants["t"].head
        ends = pc.add(cut.table["start_unix_nano"], cut.table["duration_nano"])
        assert parts[1].end_unix_nano == pc.max(ends).as_py()
        assert parts[1].start_unix_nano == pc.min(cut.table["start_unix_nano"]).as_py()
        assert parts[0].end_unix_nano == 2**63 - 1
        first = [p.prepare() for p in parts]
        assert [p.table.num_rows for p in first] == [8, 32]
        assert builds == [1, 1]
        head = first[1].table
        starts = head["trace_start_unix_nano"].to_pylist()
        assert starts == sorted(starts)  # prepared in trace-start order

        again = [p.prepare() for p in snapshots.parts("t")]
        assert [a is b for a, b in zip(again, first, strict=True)] == [True, True]
        assert builds == [1, 1]

        await push(ing, 5)  # only the live stage changed
        third = [p.prepare() for p in snapshots.parts("t")]
        assert third[0] is not first[0] and third[1] is first[1]
        assert third[0].table.num_rows == 16
        assert builds == [1, 1, 2]

        await ing.flush()  # everything in a block: nothing prepared is kept
        del first, again, third, head, parts, cut
        gc.collect()
        assert snapshots.parts("t") == []
        assert not snapshots._slots
        assert len(blocklist.blocks("t")) == 1
        ing.close()

    asyncio.run(run())


class WaiterCount(threading.Event):
    """An event that counts the threads that waited on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiters = 0
        self._count = threading.Condition()

    def wait(self, timeout: float | None = None) -> bool:
        with self._count:
            self.waiters += 1
            self._count.notify_all()
        return super().wait(timeout)

    def reaches(self, n: int) -> bool:
        with self._count:
            return self._count.wait_for(lambda: self.waiters >= n, timeout=30)


def test_concurrent_queries_share_one_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fill() -> None:
        for n in range(20):
            await push(ing, n)

    ing, _, _ = make_ingester(tmp_path, trace_idle_period="1h")
    asyncio.run(fill())
    snapshots = LiveSnapshots(ing)
    builds = 0
    build = snapshots._build
    entered = threading.Event()
    release = threading.Event()

    def slow_build(entries: list) -> object:
        nonlocal builds
        builds += 1
        entered.set()
        assert release.wait(30)
        return build(entries)

    monkeypatch.setattr(snapshots, "_build", slow_build)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(snapshots.parts("t")[0].prepare()))
        for _ in range(6)
    ]
    threads[0].start()
    assert entered.wait(30)  # the first query is building ...
    slot = snapshots._live["t"].slot
    slot.done = waited = WaiterCount()
    for t in threads[1:]:
        t.start()  # ... the others arrive meanwhile and wait for it
    assert waited.reaches(5)
    release.set()
    for t in threads:
        t.join(30)
    assert builds == 1
    assert len(results) == 6 and all(r is results[0] for r in results)
    ing.close()


def test_a_newest_first_search_prepares_only_what_it_visits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingester_module, "HEAD_ENTRY_BYTES", 1)  # every cut its own entry

    async def run() -> None:
        ing, blocklist, clock = make_ingester(
            tmp_path, trace_idle_period="1s", max_block_duration="1h"
        )
        newest = b""
        for n in range(5):
            newest = await push(ing, n)
            clock.now += 2
            await ing.tick()
        assert len(ing.tenants["t"].head) == 5 and not ing.tenants["t"].live
        sources = DataSources(ing, blocklist)
        built: list[int] = []
        build = sources.live._build
        monkeypatch.setattr(sources.live, "_build", lambda e: built.append(len(e)) or build(e))
        engine = SearchEngine(sources)
        found = await engine.search("t", compile_search("{ }"), SearchWindow(), 1, 3)
        assert [t.trace_id for t in found.traces] == [newest]
        assert built == [1]  # the newest entry only
        found = await engine.search("t", compile_search("{ }"), SearchWindow(), 5, 3)
        assert len(found.traces) == 5 and len(built) == 5
        ing.close()

    asyncio.run(run())


def test_live_stage_rebuilds_are_spaced_by_their_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every push changes the live stage; a query reuses the newest build when it holds all
    the query saw, and a new build waits until LIVE_BUILD_SPACING times the last build's
    duration has passed since that one started."""

    async def fill(n: int) -> None:
        await push(ing, n)

    ing, _, _ = make_ingester(tmp_path, trace_idle_period="1h")
    asyncio.run(fill(0))
    snapshots = LiveSnapshots(ing)
    now = [100.0]
    slept: list[float] = []
    snapshots.clock = lambda: now[0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    snapshots.sleep = sleep
    build = snapshots._build

    def slow_build(entries: list) -> object:
        now[0] += 1.0  # each build "takes" a second
        return build(entries)

    monkeypatch.setattr(snapshots, "_build", slow_build)
    first = snapshots.parts("t")[0].prepare()  # built 100 → 101
    assert snapshots.parts("t")[0].prepare() is first and slept == []
    asyncio.run(fill(1))
    second = snapshots.parts("t")[0].prepare()
    assert slept == [1.0]  # started at 102: twice the last build's second after 100
    assert second is not first and second.table.num_rows == 2 * SPANS_PER_TRACE
    ing.close()
