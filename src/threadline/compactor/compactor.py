"""The compactor: merging a tenant's small blocks into bigger ones, retention, cleanup.

One cycle (every ``compactor.compaction.compaction_cycle``), per tenant:

1. poll the backend (this process builds the tenant index);
2. finish compactions a crash interrupted: inputs of a visible compacted block that are not
   marked compacted yet are marked now;
3. retention: blocks whose newest span is older than ``block_retention`` are marked compacted;
4. compaction: blocks whose end falls in the same ``compaction_window`` are merged, at most
   ``max_input_blocks`` at a time, within ``max_block_bytes`` and ``max_compaction_objects``.
   In the window being written now only blocks of one compaction level are merged together (so
   fresh level-0 blocks are merged with each other, not re-merged into one ever-growing block);
   older windows are merged regardless of level. The output's level is the highest input's + 1.
   Spans of one trace from several blocks end up together (the block writer sorts by trace id
   and recomputes the per-trace columns), and exact duplicate spans are dropped;
5. cleanup: compacted blocks older than ``compacted_block_retention`` are deleted, as are
   unfinished uploads (no meta file) older than that (at least ``ORPHAN_MIN_AGE``).

The order that keeps queries exact (see ``Blocklist``): the output block is written completely,
``meta.json`` last, and names its inputs; from that moment readers hide the inputs. Only then are
the inputs marked compacted, and only after the grace period deleted, so a query that started
on the inputs can still read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter

from threadline.config import Config
from threadline.model.dedupe import drop_duplicate_spans
from threadline.model.schema import SPAN_SCHEMA
from threadline.storage.backend import COMPACTED_META_FILE, META_FILE, Backend
from threadline.storage.block_reader import Block
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist, TenantPoll
from threadline.storage.faults import crash_point
from threadline.storage.meta import BlockMeta, CompactedBlockMeta

log = logging.getLogger(__name__)

# unfinished uploads are left alone at least this long: another process may still be uploading
ORPHAN_MIN_AGE = 600.0


def mark_compacted(backend: Backend, meta: BlockMeta, now: float) -> CompactedBlockMeta:
    """Write ``meta.compacted.json``, then remove ``meta.json`` (a block with both counts as
    compacted)."""
    cmeta = CompactedBlockMeta.from_meta(meta, now)
    prefix = f"{meta.tenant_id}/{meta.block_id}/"
    backend.write(prefix + COMPACTED_META_FILE, cmeta.to_json())
    backend.delete(prefix + META_FILE)
    return cmeta


@dataclass(slots=True)
class CycleReport:
    compactions: int = 0
    blocks_in: int = 0
    spans_in: int = 0
    duplicates_dropped: int = 0
    expired: int = 0
    deleted: int = 0
    orphans_deleted: int = 0
    finished: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.compactions = Counter(
            "threadline_compactor_compactions",
            "Compaction jobs done.",
            ["tenant"],
            registry=registry,
        )
        self.blocks_compacted = Counter(
            "threadline_compactor_blocks_compacted",
            "Input blocks merged into bigger ones.",
            ["tenant"],
            registry=registry,
        )
        self.spans_merged = Counter(
            "threadline_compactor_spans_merged",
            "Spans read by compactions.",
            ["tenant"],
            registry=registry,
        )
        self.duplicates = Counter(
            "threadline_compactor_duplicate_spans_dropped",
            "Exact duplicate spans dropped while compacting.",
            ["tenant"],
            registry=registry,
        )
        self.deleted = Counter(
            "threadline_compactor_blocks_deleted",
            "Blocks deleted (reason: compacted, retention, unfinished).",
            ["tenant", "reason"],
            registry=registry,
        )
        self.expired = Counter(
            "threadline_compactor_blocks_expired",
            "Blocks past block_retention, marked for deletion.",
            ["tenant"],
            registry=registry,
        )
        self.deferred = Counter(
            "threadline_compactor_jobs_deferred",
            "Compaction jobs put off to a later cycle because ingest needed the CPU.",
            registry=registry,
        )
        self.failures = Counter(
            "threadline_compactor_failures",
            "Compactor cycles or jobs that failed.",
            registry=registry,
        )


class CompactionStopped(Exception):
    """The process is stopping: the job was abandoned before it changed anything."""


class Compactor:
    def __init__(
        self,
        cfg: Config,
        blocklist: Blocklist,
        registry: CollectorRegistry | None = None,
        staging_dir: Path | None = None,
        defer: Callable[[], bool] | None = None,
    ) -> None:
        """``defer``: when it answers True, compaction jobs wait for a later cycle (in the
        monolith: while the ingester's block writer is behind, which compaction would slow
        further); retention and clean-up still run."""
        self.cfg = cfg
        self.defer = defer
        self.ccfg = cfg.compactor.compaction
        self.blocklist = blocklist
        self.backend = blocklist.backend
        self.staging_dir = staging_dir or cfg.data_dir / "staging"
        self.metrics = _Metrics(registry or CollectorRegistry())
        self.cycles = 0
        # set when the process stops: a cycle (in a thread) gives up between jobs and tenants,
        # and a job before it writes anything, so a stop never waits for a whole cycle
        self.stopping = threading.Event()

    # -- policy -------------------------------------------------------------------------------

    def retention_for(self, tenant: str) -> float:
        override = self.cfg.compactor.overrides.get(tenant)
        if override is not None and override.block_retention is not None:
            return override.block_retention
        return self.ccfg.block_retention

    def plan(self, blocks: list[Block], now: float) -> list[list[Block]]:
        """Compaction jobs over ``blocks`` (one tenant's visible blocks), each 2+ blocks."""
        c = self.ccfg
        window_ns = max(1, int(c.compaction_window * 1e9))
        active = int(now * 1e9) // window_ns
        groups: dict[tuple[int, int], list[Block]] = {}
        for b in blocks:
            if b.meta.size >= c.max_block_bytes or b.meta.total_objects >= c.max_compaction_objects:
                continue  # full already
            window = b.meta.end_unix_nano // window_ns
            level = b.meta.compaction_level if window >= active else -1
            groups.setdefault((window, level), []).append(b)
        jobs = []
        for key in sorted(groups):
            group = sorted(groups[key], key=lambda b: (b.meta.start_unix_nano, b.id))
            current: list[Block] = []
            size = objects = 0
            for b in group:
                full = (
                    len(current) >= c.max_input_blocks
                    or size + b.meta.size > c.max_block_bytes
                    or objects + b.meta.total_objects > c.max_compaction_objects
                )
                if current and full:
                    if len(current) >= c.min_input_blocks:
                        jobs.append(current)
                    current, size, objects = [], 0, 0
                current.append(b)
                size += b.meta.size
                objects += b.meta.total_objects
            if len(current) >= c.min_input_blocks:
                jobs.append(current)
        return jobs

    # -- work ---------------------------------------------------------------------------------

    def compact(self, blocks: list[Block], now: float | None = None) -> BlockMeta:
        """Merge ``blocks`` (one tenant's) into one new block; mark the inputs compacted."""
        now = time.time() if now is None else now
        tenant = blocks[0].tenant
        assert all(b.tenant == tenant for b in blocks)
        names = SPAN_SCHEMA.names

        def read(block: Block) -> pa.Table:
            return block.read_table(columns=names).select(names).cast(SPAN_SCHEMA)

        # Parquet decoding releases the GIL: small inputs are read side by side
        with ThreadPoolExecutor(max_workers=min(4, len(blocks))) as pool:
            tables = list(pool.map(read, blocks))
        # one chunk: sorting and de-duplicating take() over many chunks is several times slower
        table = pa.concat_tables(tables).combine_chunks()
        spans_in = table.num_rows
        table, dropped = drop_duplicate_spans(table)
        if self.stopping.is_set():
            raise CompactionStopped
        caches = self.blocklist.caches
        meta = write_block(
            self.backend,
            tenant,
            table,
            self.cfg.storage.block.model_copy(
                update={"row_group_spans": self.ccfg.row_group_spans}
            ),
            wal_through=max(b.meta.wal_through for b in blocks),
            compaction_level=max(b.meta.compaction_level for b in blocks) + 1,
            compacted_from=[b.id for b in blocks],
            staging_dir=self.staging_dir,
            crash_prefix="compaction",
            cache=caches.ranges if caches is not None else None,
        )
        # visible from here on: readers hide the inputs (they are named in compactedFrom)
        self.blocklist.add(self.blocklist.new_block(meta))
        crash_point("compaction:after_write")
        marked = []
        for i, b in enumerate(blocks):
            marked.append(mark_compacted(self.backend, b.meta, now))
            if i == 0:
                crash_point("compaction:after_mark")
        self.blocklist.mark_compacted(tenant, marked)
        self.metrics.compactions.labels(tenant).inc()
        self.metrics.blocks_compacted.labels(tenant).inc(len(blocks))
        self.metrics.spans_merged.labels(tenant).inc(spans_in)
        self.metrics.duplicates.labels(tenant).inc(dropped)
        log.info(
            "tenant %s: compacted %d blocks (%d spans, %d duplicates dropped) into %s "
            "(level %d, %d spans, %d bytes)",
            tenant,
            len(blocks),
            spans_in,
            dropped,
            meta.block_id,
            meta.compaction_level,
            meta.total_spans,
            meta.size,
        )
        return meta

    def finish_interrupted(self, tenant: str, now: float) -> int:
        """Mark inputs of visible compacted blocks that a crash left unmarked."""
        hidden = self.blocklist.hidden(tenant)
        blocks = [b for b in self.blocklist.all_live(tenant) if b.id in hidden]
        if not blocks:
            return 0
        marked = [mark_compacted(self.backend, b.meta, now) for b in blocks]
        self.blocklist.mark_compacted(tenant, marked)
        log.info("tenant %s: finished an interrupted compaction (%d inputs)", tenant, len(marked))
        return len(marked)

    def apply_retention(self, tenant: str, now: float) -> int:
        cutoff_ns = int((now - self.retention_for(tenant)) * 1e9)
        expired = [b for b in self.blocklist.all_live(tenant) if b.meta.end_unix_nano < cutoff_ns]
        if not expired:
            return 0
        marked = [mark_compacted(self.backend, b.meta, now) for b in expired]
        self.blocklist.mark_compacted(tenant, marked)
        self.metrics.expired.labels(tenant).inc(len(marked))
        log.info("tenant %s: %d blocks past retention marked for deletion", tenant, len(marked))
        return len(marked)

    def cleanup(self, tenant: str, now: float) -> tuple[int, int]:
        """Delete compacted blocks past the grace period and old unfinished uploads."""
        grace = self.ccfg.compacted_block_retention
        deleted = 0
        for cmeta in self.blocklist.compacted(tenant):
            if now - cmeta.compacted_unix >= grace:
                self.backend.delete_block(tenant, cmeta.block_id)
                self.blocklist.forget(tenant, cmeta.block_id)
                deleted += 1
        orphans = 0
        for block_id, modified in self.blocklist.orphans(tenant).items():
            if now - modified >= max(grace, ORPHAN_MIN_AGE):
                log.warning("tenant %s: deleting unfinished upload %s", tenant, block_id)
                self.backend.delete_block(tenant, block_id)
                self.blocklist.forget(tenant, block_id)
                orphans += 1
        if deleted:
            self.metrics.deleted.labels(tenant, "compacted").inc(deleted)
        if orphans:
            self.metrics.deleted.labels(tenant, "unfinished").inc(orphans)
        return deleted, orphans

    def compact_tenant(self, tenant: str, now: float, report: CycleReport) -> None:
        deadline = time.monotonic() + self.ccfg.max_time_per_tenant
        while time.monotonic() < deadline:
            jobs = self.plan(self.blocklist.blocks(tenant), now)
            if not jobs:
                return
            for job in jobs:
                if self.stopping.is_set():
                    return
                if self.defer is not None and self.defer():
                    self.metrics.deferred.inc()
                    return
                try:
                    meta = self.compact(job, now)
                except CompactionStopped:
                    return
                report.compactions += 1
                report.blocks_in += len(job)
                report.spans_in += sum(b.meta.total_spans for b in job)
                report.duplicates_dropped += sum(b.meta.total_spans for b in job) - (
                    meta.total_spans
                )
                report.outputs.append(meta.block_id)
                if time.monotonic() >= deadline:
                    return

    def _write_index(self, tenant: str) -> None:
        poll = TenantPoll(
            live={b.id: b.meta for b in self.blocklist.all_live(tenant)},
            compacted={m.block_id: m for m in self.blocklist.compacted(tenant)},
        )
        try:
            self.blocklist.write_index(tenant, poll)
        except OSError:
            log.exception("tenant %s: writing the tenant index failed", tenant)

    def run_cycle(
        self,
        now: float | None = None,
        *,
        compact: bool = True,
        retention: bool = True,
        cleanup: bool = True,
        tenants: list[str] | None = None,
    ) -> CycleReport:
        """One full cycle over every tenant (blocking: run it in a thread)."""
        started = time.monotonic()
        report = CycleReport()
        self.blocklist.poll()
        for tenant in tenants or self.blocklist.tenants_in_backend():
            if self.stopping.is_set():
                break
            t_now = time.time() if now is None else now
            before = (len(self.blocklist.all_live(tenant)), len(self.blocklist.compacted(tenant)))
            report.finished += self.finish_interrupted(tenant, t_now)
            if retention:
                report.expired += self.apply_retention(tenant, t_now)
            if compact:
                self.compact_tenant(tenant, t_now, report)
            if cleanup:
                deleted, orphans = self.cleanup(tenant, t_now)
                report.deleted += deleted
                report.orphans_deleted += orphans
            after = (len(self.blocklist.all_live(tenant)), len(self.blocklist.compacted(tenant)))
            if self.blocklist.index_builder and (before != after or report.outputs):
                self._write_index(tenant)
        if cleanup:
            report.orphans_deleted += self.blocklist.remove_unfinished()
        self.cycles += 1
        report.seconds = time.monotonic() - started
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """Cycles every ``compaction_cycle`` until ``stop`` is set (the first one at once)."""

        async def watch() -> None:
            await stop.wait()
            self.stopping.set()

        watcher = asyncio.create_task(watch())
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self.run_cycle)
                except Exception:
                    self.metrics.failures.inc()
                    log.exception("compaction cycle failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.ccfg.compaction_cycle)
        finally:
            watcher.cancel()
