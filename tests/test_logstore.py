"""The log store on its own (a real WAL and local backend in a temporary directory): blocks cut
by size and flush, retention per tenant, small blocks merged without a line counted twice —
also when a merge stopped before deleting what it replaced — and a restart replaying only what
no block holds."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from threadline.config import load_config
from threadline.logstore.store import PREFIX, LogBacklogFull, LogStore
from threadline.model.otlp_logs import decode_logs_request
from threadline.storage.backend import LocalBackend

T0 = 1_700_000_000_000_000_000


def batch(trace: bytes, lines: int, t0: int = T0) -> object:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    kv = rl.resource.attributes.add(key="service.name")
    kv.value.string_value = "svc"
    sl = rl.scope_logs.add()
    for i in range(lines):
        rec = sl.log_records.add(time_unix_nano=t0 + i, trace_id=trace, span_id=os.urandom(8))
        rec.body.string_value = f"line {i}"
    return decode_logs_request(req.SerializeToString()).batch


def store(tmp_path: Path, **logs: object) -> LogStore:
    cfg = load_config(overrides={"data_dir": str(tmp_path), "logs": logs})
    s = LogStore(cfg, LocalBackend(tmp_path / "blocks"), tmp_path / "wal-logs")
    s.start()
    return s


def bodies(s: LogStore, tenant: str, trace: bytes) -> list[str]:
    return s.trace_logs(tenant, trace).column("body").to_pylist()


def test_small_blocks_are_merged_and_counted_once(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path, compact_after_blocks=3, max_block_lines=100)
        trace = os.urandom(16)
        for k in range(4):
            await s.push("t", batch(trace, 5, T0 + k * 1000))
            await s.flush("t")
        assert len(s.blocks["t"]) == 4
        await s.maintain(now_ns=T0)
        assert len(s.blocks["t"]) == 1 and s.blocks["t"][0].lines == 20
        assert len(bodies(s, "t", trace)) == 20
        await s.shutdown()
        again = store(tmp_path)
        assert len(again.blocks["t"]) == 1 and len(bodies(again, "t", trace)) == 20
        await again.shutdown()

    asyncio.run(run())


def test_a_merge_stopped_before_deleting_its_inputs_counts_once(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path)
        trace = os.urandom(16)
        for k in range(2):
            await s.push("t", batch(trace, 3, T0 + k * 1000))
            await s.flush("t")
        inputs = list(s.blocks["t"])
        table = s.trace_logs("t", trace)
        # as a merge leaves it when stopped right after writing its block
        s._write_table(
            "t", table, max(b.seq_through for b in inputs), tuple(b.block_id for b in inputs)
        )
        await s.shutdown()
        again = store(tmp_path)
        assert len(again.blocks["t"]) == 1 and len(bodies(again, "t", trace)) == 6
        keys = {i.key for i in again.backend.list(f"{PREFIX}/t/")}
        assert not any(b.block_id in k for b in inputs for k in keys)  # deleted at start
        await again.shutdown()

    asyncio.run(run())


def test_retention_deletes_old_blocks_per_tenant(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path, block_retention="1h", block_retention_by_tenant={"keep": "48h"})
        trace = os.urandom(16)
        for tenant in ("t", "keep"):
            await s.push(tenant, batch(trace, 2))
            await s.flush(tenant)
        await s.maintain(now_ns=T0 + 2 * 3600 * 10**9)
        assert bodies(s, "t", trace) == [] and len(bodies(s, "keep", trace)) == 2
        assert not s.backend.list(f"{PREFIX}/t/")
        await s.shutdown()

    asyncio.run(run())


def test_a_restart_replays_only_lines_no_block_holds(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path)
        trace = os.urandom(16)
        await s.push("t", batch(trace, 3))
        await s.flush("t")
        await s.push("t", batch(trace, 2, T0 + 10))  # live only, in the WAL
        s.wal.close()  # as a crash leaves it: nothing more written
        again = store(tmp_path)
        assert len(bodies(again, "t", trace)) == 5
        assert sum(e.batch.num_rows for e in again.live["t"]) == 2
        await again.shutdown()

    asyncio.run(run())


def test_an_empty_push_writes_nothing(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path)
        await s.push("t", batch(os.urandom(16), 0))
        assert "t" not in s.live
        await s.shutdown()

    asyncio.run(run())


def test_pushes_wait_for_block_writes_past_the_backlog_limit(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path, max_unflushed_bytes=1, max_block_lines=10**6)
        trace = os.urandom(16)
        await s.push("t", batch(trace, 50))  # fits (nothing held before it)
        assert s._held > 1
        await s.push("t", batch(trace, 50))  # waits until the first is in a block
        assert len(s.blocks["t"]) >= 1
        assert len(bodies(s, "t", trace)) == 100
        await s.shutdown()

    asyncio.run(run())


def test_a_push_is_refused_when_no_room_comes(tmp_path: Path) -> None:
    async def run() -> None:
        s = store(tmp_path, max_unflushed_bytes=1)
        s.backlog_wait = 0.2

        async def never(tenant: str) -> None:  # block writes stuck (backend down)
            await asyncio.sleep(3600)

        s._cut = never  # type: ignore[method-assign]
        trace = os.urandom(16)
        await s.push("t", batch(trace, 5))
        with pytest.raises(LogBacklogFull, match=r"logs\.max_unflushed_bytes"):
            await s.push("t", batch(trace, 5))
        assert len(bodies(s, "t", trace)) == 5  # the refused push wrote nothing
        s.wal.close()

    asyncio.run(run())
