"""Ingester lifecycle, in process with a controlled clock: live → head → block, WAL cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow as pa
import pytest

from otlp_requests import SPANS_PER_TRACE, trace_request
from threadline.config import Config
from threadline.ingester import ingester as ingester_module
from threadline.ingester.ingester import Ingester
from threadline.ingester.wal import list_segments
from threadline.model.otlp_decode import decode_export_request
from threadline.selfmetrics import SelfMetrics
from threadline.storage.blocklist import Blocklist


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_ingester(tmp_path: Path, **ingester_cfg: object) -> tuple[Ingester, Blocklist, Clock]:
    cfg = Config.model_validate(
        {"data_dir": str(tmp_path), "ingester": ingester_cfg, "wal": {"segment_bytes": 1}}
    )
    blocklist = Blocklist(tmp_path / "blocks")
    blocklist.load()
    ingester = Ingester(cfg, blocklist, SelfMetrics(), tmp_path / "wal")
    clock = Clock()
    ingester.clock = clock
    ingester.start()
    return ingester, blocklist, clock


async def push(ingester: Ingester, n: int) -> bytes:
    body, trace = trace_request(n)
    await ingester.push("t", body, decode_export_request(body).batch)
    return bytes.fromhex(trace)


def rows(ingester: Ingester, blocklist: Blocklist, trace: bytes) -> int:
    live = sum(t.num_rows for t in ingester.find_trace("t", trace))
    stored = 0
    for block in blocklist.blocks("t"):
        data = block.parquet().read(columns=["trace_id"])
        stored += data.filter(
            pa.compute.equal(data["trace_id"], pa.scalar(trace, pa.binary(16)))
        ).num_rows
    return live + stored


def test_idle_traces_move_to_a_block_at_max_block_duration(tmp_path: Path) -> None:
    async def run() -> None:
        ing, blocklist, clock = make_ingester(
            tmp_path, trace_idle_period="5s", max_block_duration="30s"
        )
        first = await push(ing, 1)
        clock.now += 6  # trace 1 is now idle
        active = await push(ing, 2)
        await ing.tick()
        state = ing.tenants["t"]
        assert [e.table.num_rows for e in state.head] == [SPANS_PER_TRACE]
        assert sum(e.table.num_rows for e in state.live) == SPANS_PER_TRACE
        assert not blocklist.blocks("t")  # the head block is not old enough yet
        clock.now += 31
        await ing.tick()  # head is 31 s old: written; trace 2 went idle meanwhile and joined it
        blocks = blocklist.blocks("t")
        assert len(blocks) == 1
        assert blocks[0].meta.total_objects == 2
        assert rows(ing, blocklist, first) == rows(ing, blocklist, active) == SPANS_PER_TRACE
        assert not ing.tenants["t"].entries()
        # every segment holding those spans is gone; only the current one is left
        assert list_segments(tmp_path / "wal") == [ing.wal.current_segment]
        ing.close()

    asyncio.run(run())


def test_active_trace_stays_live_until_trace_live_period(tmp_path: Path) -> None:
    async def run() -> None:
        ing, _, clock = make_ingester(
            tmp_path, trace_idle_period="5s", trace_live_period="20s", max_block_duration="1h"
        )
        body, _ = trace_request(7)
        batch = decode_export_request(body).batch
        await ing.push("t", body, batch.slice(0, 4))
        for _ in range(3):
            clock.now += 6
            await ing.push("t", body, batch.slice(4, 1))  # the trace keeps getting spans
            await ing.tick()
        state = ing.tenants["t"]
        assert not state.head  # still active: nothing cut
        clock.now += 6  # the first spans are now 24 s old: past trace_live_period
        await ing.push("t", body, batch.slice(4, 1))
        await ing.tick()
        assert sum(e.table.num_rows for e in state.head) >= 4
        ing.close()

    asyncio.run(run())


def test_head_is_written_when_it_reaches_max_block_bytes(tmp_path: Path) -> None:
    async def run() -> None:
        ing, blocklist, clock = make_ingester(
            tmp_path, trace_idle_period="1s", max_block_duration="1h", max_block_bytes="20KiB"
        )
        for n in range(3):
            await push(ing, n)
        clock.now += 2
        await ing.tick()
        assert not blocklist.blocks("t")  # under 20 KiB
        for n in range(3, 40):
            await push(ing, n)
        clock.now += 2
        await ing.tick()
        blocks = blocklist.blocks("t")
        # written in blocks of about max_block_bytes each, never one block of the whole backlog
        assert len(blocks) >= 2
        assert all(b.meta.total_objects < 40 for b in blocks)
        held = sum(e.traces for e in ing.tenants["t"].entries())
        assert sum(b.meta.total_objects for b in blocks) + held == 40
        # what is left is less than one more block
        assert sum(e.nbytes for e in ing.tenants["t"].entries()) < 20 * 1024
        ing.close()

    asyncio.run(run())


def test_behind_while_a_full_block_waits_for_the_writer(tmp_path: Path) -> None:
    async def run() -> None:
        ing, blocklist, clock = make_ingester(
            tmp_path, trace_idle_period="1s", max_block_duration="1h", max_block_bytes="20KiB"
        )
        for n in range(40):
            await push(ing, n)
        assert not ing.behind()  # live traces are not a backlog
        state = ing.tenants["t"]
        state.head, state.live = state.live, []  # cut, as a tick does, but not yet written
        assert ing.behind()
        clock.now += 2
        await ing.tick()
        assert blocklist.blocks("t") and not ing.behind()
        ing.close()

    asyncio.run(run())


def test_flush_writes_everything_in_bounded_blocks(tmp_path: Path) -> None:
    async def run() -> None:
        ing, blocklist, _ = make_ingester(
            tmp_path, trace_idle_period="1h", max_block_duration="1h", max_block_bytes="20KiB"
        )
        for n in range(40):
            await push(ing, n)
        await ing.flush()
        blocks = blocklist.blocks("t")
        assert len(blocks) >= 2  # bounded blocks ...
        assert sum(b.meta.total_objects for b in blocks) == 40  # ... holding every trace
        assert not ing.tenants["t"].entries()
        ing.close()

    asyncio.run(run())


def test_cut_traces_join_head_in_few_bounded_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingester_module, "HEAD_ENTRY_BYTES", 24 * 1024)

    async def run() -> None:
        ing, _, clock = make_ingester(tmp_path, trace_idle_period="1s", max_block_duration="1h")
        for n in range(3):
            await push(ing, n)
        clock.now += 2
        await ing.tick()
        state = ing.tenants["t"]
        # three pushes, one head entry
        assert [e.table.num_rows for e in state.head] == [3 * SPANS_PER_TRACE]
        first = state.head[0]
        for n in range(3, 60):
            await push(ing, n)
        clock.now += 2
        await ing.tick()
        # the small entry was topped up (a new entry: queries prepared the old one), the rest
        # cut into entries of about HEAD_ENTRY_BYTES: many pushes each
        assert state.head[0] is not first
        assert sum(e.table.num_rows for e in state.head) == 60 * SPANS_PER_TRACE
        push_bytes = first.nbytes // 3
        assert 1 < len(state.head) < 20
        assert all(e.nbytes < 24 * 1024 + push_bytes for e in state.head)
        assert all(e.traces * SPANS_PER_TRACE == e.table.num_rows for e in state.head)
        ing.close()

    asyncio.run(run())
