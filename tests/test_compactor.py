"""Compaction: planning by window/level/limits, merging traces split across blocks, dropping
exact duplicates, the visibility order that keeps concurrent queries exact, and cleanup."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from storage_helpers import table, trace_id
from threadline.compactor import compactor as compactor_module
from threadline.compactor.compactor import Compactor
from threadline.config import Config
from threadline.model.dedupe import drop_duplicate_spans
from threadline.storage import faults
from threadline.storage.backend import LocalBackend
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist
from threadline.storage.bloom import probe_hashes

HOUR_NS = 3600 * 10**9


def setup(tmp_path: Path, **compaction: object) -> tuple[Config, Blocklist, Compactor]:
    cfg = Config.model_validate(
        {"data_dir": str(tmp_path), "compactor": {"compaction": compaction}}
    )
    blocklist = Blocklist(LocalBackend(tmp_path / "blocks"), index_builder=True)
    blocklist.load()
    return cfg, blocklist, Compactor(cfg, blocklist)


def write(cfg: Config, blocklist: Blocklist, tenant: str, data: pa.Table) -> str:
    meta = write_block(blocklist.backend, tenant, data, cfg.storage.block)
    blocklist.add(blocklist.new_block(meta))
    return meta.block_id


def visible_spans(blocklist: Blocklist, tenant: str) -> int:
    return sum(b.meta.total_spans for b in blocklist.blocks(tenant))


def test_traces_split_over_blocks_end_up_together_and_duplicates_go(tmp_path: Path) -> None:
    cfg, blocklist, compactor = setup(tmp_path)
    now = time.time_ns()
    write(cfg, blocklist, "t", table([1, 2, 3], range(1, 4), now))
    write(cfg, blocklist, "t", table([1, 2, 3], range(4, 9), now))
    # exact duplicates of block 1 (a retried push) and one span id with different content
    write(cfg, blocklist, "t", table([1, 2], range(1, 4), now))
    write(cfg, blocklist, "t", table([3], range(2, 3), now, attr="changed"))
    report = compactor.run_cycle()
    assert report.compactions == 1 and report.blocks_in == 4
    (block,) = blocklist.blocks("t")
    assert block.meta.compaction_level == 1
    assert block.meta.total_spans == 3 * 8 + 1  # 6 exact duplicates dropped, 1 kept
    assert block.meta.total_objects == 3
    assert len(block.meta.compacted_from) == 4
    data = block.read_table()
    ids = data.column("trace_id").to_pylist()
    assert ids == sorted(ids)
    for n in (1, 2):
        rows = block.find_trace(trace_id(n), probe_hashes(trace_id(n)))
        assert rows is not None and rows.num_rows == 8
        trace = data.filter(pc.equal(data.column("trace_id"), pa.scalar(trace_id(n))))
        # per-trace columns recomputed over the merged trace: the root is span 1, it has 7
        # children, and the nested set covers all 8 spans
        root = trace.filter(pc.equal(trace.column("nest_parent"), -1))
        assert root.num_rows == 1
        assert root.column("nest_left")[0].as_py() == 1
        assert root.column("nest_right")[0].as_py() == 16
        assert root.column("child_count")[0].as_py() == 7
        assert set(trace.column("root_span_name").to_pylist()) == {"op-1"}
    assert compactor.metrics.duplicates.labels("t")._value.get() == 6


def test_compaction_waits_while_told_to_defer(tmp_path: Path) -> None:
    cfg, blocklist, _ = setup(tmp_path)
    busy = [True]
    compactor = Compactor(cfg, blocklist, defer=lambda: busy[0])
    now = time.time_ns()
    for n in range(3):
        write(cfg, blocklist, "t", table([n], range(1, 9), now))
    report = compactor.run_cycle()
    assert report.compactions == 0 and len(blocklist.blocks("t")) == 3
    assert compactor.metrics.deferred._value.get() == 1
    busy[0] = False
    report = compactor.run_cycle()
    assert report.compactions == 1 and len(blocklist.blocks("t")) == 1


def test_a_stop_abandons_the_job_under_way_before_it_writes(tmp_path: Path) -> None:
    cfg, blocklist, _ = setup(tmp_path)
    compactor = Compactor(cfg, blocklist)
    # the stop arrives once the job has started (its inputs are being read)
    compactor.defer = lambda: compactor.stopping.set() or False
    now = time.time_ns()
    inputs = {write(cfg, blocklist, "t", table([n], range(1, 9), now)) for n in range(3)}
    report = compactor.run_cycle()
    assert report.compactions == 0
    assert {b.id for b in blocklist.blocks("t")} == inputs
    on_disk = {p.name for p in (tmp_path / "blocks" / "t").iterdir() if p.is_dir()}
    assert on_disk == inputs
    # and a stopping compactor starts no tenant at all
    compactor.defer = None
    assert compactor.run_cycle().compactions == 0
    compactor.stopping.clear()
    assert compactor.run_cycle().compactions == 1


def test_dedupe_keeps_same_id_with_different_content() -> None:
    now = time.time_ns()
    a = table([7], range(1, 3), now)
    b = table([7], range(1, 3), now, attr="other")
    merged, dropped = drop_duplicate_spans(pa.concat_tables([a, a, b]))
    assert dropped == 2
    assert merged.num_rows == 4


def test_plan_respects_window_level_and_limits(tmp_path: Path) -> None:
    cfg, blocklist, compactor = setup(
        tmp_path, compaction_window="1h", max_input_blocks=3, min_input_blocks=2
    )
    now_ns = time.time_ns()
    old = now_ns - 5 * HOUR_NS
    for i in range(5):
        write(cfg, blocklist, "t", table([i], range(1, 3), now_ns))
    write(cfg, blocklist, "t", table([10], range(1, 3), old))
    write(cfg, blocklist, "t", table([11], range(1, 3), old - 2 * HOUR_NS))  # another window
    jobs = compactor.plan(blocklist.blocks("t"), now_ns / 1e9)
    # 5 fresh blocks, max 3 per job: 3 + 2; the two old blocks are in different windows
    assert sorted(len(j) for j in jobs) == [2, 3]
    sizes = sum(b.meta.size for b in blocklist.blocks("t"))
    _cfg2, _, small = setup(tmp_path / "x", max_block_bytes=sizes // 10)
    assert small.plan(blocklist.blocks("t"), now_ns / 1e9) == []
    compactor.run_cycle()
    levels = sorted(b.meta.compaction_level for b in blocklist.blocks("t"))
    # 3 + 2 fresh blocks -> two level-1 blocks -> one level-2 block; old windows alone
    assert levels == [0, 0, 2], levels
    assert visible_spans(blocklist, "t") == 7 * 2
    # in the active window a fresh level-0 block is not merged into the level-2 one
    write(cfg, blocklist, "t", table([12], range(1, 3), now_ns))
    assert compactor.plan(blocklist.blocks("t"), now_ns / 1e9) == []


def test_visibility_order_keeps_concurrent_queries_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At every step of a compaction, what a reader sees holds each span exactly once: this
    process's block list, and a separate reader that only reads the tenant index or lists."""
    cfg, blocklist, compactor = setup(tmp_path)
    now = time.time_ns()
    for i in range(4):
        write(cfg, blocklist, "t", table([i, 100], range(1 + 2 * i, 3 + 2 * i), now))
    total = 4 * 4
    compactor.run_cycle(compact=False)  # writes the tenant index
    seen: list[tuple[str, int, int]] = []

    def check(point: str) -> None:
        other = Blocklist(LocalBackend(tmp_path / "blocks"))  # another process, listing
        other.load(remove_unfinished=False)
        seen.append((point, visible_spans(blocklist, "t"), visible_spans(other, "t")))

    monkeypatch.setattr(compactor_module, "crash_point", check)
    monkeypatch.setattr("threadline.storage.backend.crash_point", check)
    compactor.run_cycle()
    points = [p for p, _, _ in seen]
    assert points == ["compaction:before_meta", "compaction:after_write", "compaction:after_mark"]
    for point, mine, other in seen:
        assert mine == total, (point, mine)
        assert other == total, (point, other)
    # a reader that relies on the tenant index agrees once the index is rewritten
    reader = Blocklist(LocalBackend(tmp_path / "blocks"))
    reader.load(remove_unfinished=False)
    assert reader.index_reads == 1 and reader.listings == 0
    assert [b.id for b in reader.blocks("t")] == [b.id for b in blocklist.blocks("t")]
    assert visible_spans(reader, "t") == total


def test_interrupted_compaction_is_finished_and_inputs_deleted_after_grace(
    tmp_path: Path,
) -> None:
    cfg, blocklist, _compactor = setup(tmp_path, compacted_block_retention="1h")
    now = time.time_ns()
    inputs = [write(cfg, blocklist, "t", table([i], range(1, 5), now)) for i in range(3)]
    # a compaction that stopped right after writing its output: inputs not marked
    merged = pa.concat_tables([blocklist.find(i).read_table() for i in inputs])  # type: ignore[union-attr]
    meta = write_block(blocklist.backend, "t", merged, cfg.storage.block, compacted_from=inputs)
    fresh = Blocklist(LocalBackend(tmp_path / "blocks"), index_builder=True)
    fresh.load()
    assert [b.id for b in fresh.blocks("t")] == [meta.block_id]
    c2 = Compactor(cfg, fresh)
    report = c2.run_cycle(compact=False)
    assert report.finished == 3
    assert {m.block_id for m in fresh.compacted("t")} == set(inputs)
    blocks_dir = tmp_path / "blocks" / "t"
    for i in inputs:
        assert (blocks_dir / i / "meta.compacted.json").exists()
        assert not (blocks_dir / i / "meta.json").exists()
    # within the grace period the inputs stay readable; after it they are deleted
    assert c2.run_cycle(compact=False).deleted == 0
    report = c2.run_cycle(now=time.time() + 2 * 3600, compact=False)
    assert report.deleted == 3
    assert sorted(p.name for p in blocks_dir.iterdir() if p.is_dir()) == [meta.block_id]


def test_unfinished_uploads_are_deleted_after_a_while(tmp_path: Path) -> None:
    cfg, blocklist, compactor = setup(tmp_path, compacted_block_retention="1m")
    blocklist.backend.write("t/partial/data.parquet", b"PAR1 ...")
    write(cfg, blocklist, "t", table([1], range(1, 3)))
    assert compactor.run_cycle(compact=False).orphans_deleted == 0  # may still be uploading
    report = compactor.run_cycle(now=time.time() + 3600, compact=False)
    assert report.orphans_deleted == 1
    assert not (tmp_path / "blocks" / "t" / "partial").exists()


def test_crash_points_are_named_and_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    faults.crash_point("compaction:after_write")  # no env var: nothing happens
    monkeypatch.setenv(faults.ENV, "something:else")
    faults.crash_point("compaction:after_write")
