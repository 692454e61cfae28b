"""Queries over the ingester's in-memory rows: each cut entry prepared once, the live stage
brought up to date (not rebuilt) when it changed, concurrent queries sharing one update,
nothing kept after a block holds the rows."""

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
from threadline.ingester.ingester import TenantState
from threadline.querier import live_stage
from threadline.querier.live_stage import LiveStage
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
        assert builds == [1]  # the head entry (the live stage is kept up to date apart)
        head = first[1].table
        starts = head["trace_start_unix_nano"].to_pylist()
        assert starts == sorted(starts) and first[1].ordered  # a cut entry: in trace-start order
        assert not first[0].ordered  # the live stage: in push order

        again = [p.prepare() for p in snapshots.parts("t")]
        assert [a is b for a, b in zip(again, first, strict=True)] == [True, True]
        assert builds == [1]

        await push(ing, 5)  # only the live stage changed
        third = [p.prepare() for p in snapshots.parts("t")]
        assert third[0] is not first[0] and third[1] is first[1]
        assert third[0].table.num_rows == 16
        assert builds == [1]

        await ing.flush()  # everything in a block: nothing prepared is kept
        del first, again, third, head, parts, cut
        gc.collect()
        assert snapshots.parts("t") == []
        assert not snapshots._slots and not snapshots._stages
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


def test_concurrent_queries_share_one_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fill() -> None:
        for n in range(20):
            await push(ing, n)

    ing, _, _ = make_ingester(tmp_path, trace_idle_period="1h")
    asyncio.run(fill())
    snapshots = LiveSnapshots(ing)
    updates = 0
    apply = LiveStage._apply
    entered = threading.Event()
    release = threading.Event()

    def slow_apply(stage: LiveStage, entries: list) -> None:
        nonlocal updates
        updates += 1
        entered.set()
        assert release.wait(30)
        apply(stage, entries)

    monkeypatch.setattr(LiveStage, "_apply", slow_apply)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(snapshots.parts("t")[0].prepare()))
        for _ in range(6)
    ]
    threads[0].start()
    assert entered.wait(30)  # the first query is updating the stage ...
    for t in threads[1:]:
        t.start()  # ... the others arrive meanwhile (or after): they reuse its answer
    release.set()
    for t in threads:
        t.join(30)
    assert updates == 1
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


def test_a_push_costs_the_next_query_only_its_own_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live stage is brought up to date, not rebuilt: after one more push, the trace
    columns are worked out for that push's trace alone."""

    async def fill(n: int) -> None:
        await push(ing, n)

    ing, _, _ = make_ingester(tmp_path, trace_idle_period="1h")
    for n in range(20):
        asyncio.run(fill(n))
    snapshots = LiveSnapshots(ing)
    traced: list[int] = []
    add = live_stage.add_trace_columns
    monkeypatch.setattr(
        live_stage, "add_trace_columns", lambda t, o: traced.append(t.num_rows) or add(t, o)
    )
    first = snapshots.parts("t")[0].prepare()
    assert traced == [20 * SPANS_PER_TRACE]
    asyncio.run(fill(20))
    second = snapshots.parts("t")[0].prepare()
    assert traced == [20 * SPANS_PER_TRACE, SPANS_PER_TRACE]
    assert second.table.num_rows == 21 * SPANS_PER_TRACE
    rebuilt = LiveSnapshots(ing).parts("t")[0].prepare()
    assert second.table.drop_columns(["file_row_number"]).equals(
        rebuilt.table.drop_columns(["file_row_number"])
    )
    assert first.table.num_rows == 20 * SPANS_PER_TRACE
    ing.close()


def test_a_reader_never_sees_rows_half_moved() -> None:
    """Rows move between live, head, flushing and blocks on the event loop's thread; readers
    in query threads retry until they saw no move (else a row could show twice or not at
    all)."""
    state = TenantState()
    seen: list[int] = []
    moves = [True]  # one move, during the first read

    def read() -> int:
        seen.append(state.version)
        if moves and moves.pop():
            with state.moving():
                pass
        return len(seen)

    assert state.consistent(read) == 2 and seen == [0, 2]

    inside, release = threading.Event(), threading.Event()

    def mover() -> None:
        with state.moving():
            inside.set()
            assert release.wait(30)

    seen.clear()
    t = threading.Thread(target=mover)
    t.start()
    assert inside.wait(30)
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(state.consistent(read)))
    reader.start()
    reader.join(0.2)  # (a bounded look: the reader must still be waiting)
    assert reader.is_alive() and not seen  # nothing is read while a move is under way
    release.set()
    t.join(30)
    reader.join(30)
    assert got == [1] and seen == [4]
