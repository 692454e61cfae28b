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

from test_ingester_lifecycle import make_ingester, push
from threadline.querier.sources import LiveSnapshots


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
        monkeypatch.setattr(
            snapshots, "_build", lambda e, live: builds.append(len(e)) or build(e, live)
        )
        for n in range(4):
            await push(ing, n)
        clock.now += 2
        await ing.tick()  # four traces cut into one head entry
        await push(ing, 4)  # one live trace
        first = snapshots.get("t")
        assert [p.table.num_rows for p in first] == [8, 32]
        assert builds == [1, 1]
        # the head entry's span time is known, so a search can stop before it; live is open
        head = first[1].table
        assert (
            first[1].end_unix_nano
            == pc.max(pc.add(head["trace_start_unix_nano"], head["trace_duration_nano"])).as_py()
        )
        assert first[0].end_unix_nano == 2**63 - 1

        again = snapshots.get("t")
        assert [a is b for a, b in zip(again, first, strict=True)] == [True, True]
        assert builds == [1, 1]

        await push(ing, 5)  # only the live stage changed
        third = snapshots.get("t")
        assert third[0] is not first[0] and third[1] is first[1]
        assert third[0].table.num_rows == 16
        assert builds == [1, 1, 2]

        await ing.flush()  # everything in a block: nothing prepared is kept
        del first, again, third, head
        gc.collect()
        assert snapshots.get("t") == []
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

    def slow_build(entries: list, live: bool) -> object:
        nonlocal builds
        builds += 1
        entered.set()
        assert release.wait(30)
        return build(entries, live)

    monkeypatch.setattr(snapshots, "_build", slow_build)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(snapshots.get("t")[0])) for _ in range(6)
    ]
    threads[0].start()
    assert entered.wait(30)  # the first query is building ...
    (slot,) = snapshots._slots.values()
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
