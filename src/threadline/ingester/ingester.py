"""The ingester: durable pushes into the WAL, live traces in memory, cutting them into blocks.

Per tenant, span rows move through three in-memory stages, all visible to queries:
``live`` (traces that got spans within ``trace_idle_period``, for at most ``trace_live_period``)
→ ``head`` (idle traces waiting for the block to fill) → ``flushing`` (being written as a block).
A block is written when the head holds ``max_block_bytes`` or is ``max_block_duration`` old, or on
``flush``. Every in-memory entry remembers the oldest WAL segment its rows came from; a segment is
deleted once no in-memory row comes from it, i.e. all its rows are in durable blocks. Replay after
a crash drops the rows that a block already holds (matched by trace and span id).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import Counter

from threadline.config import Config, TenantLimits
from threadline.ingester.records import AppliedLimits, RecordKind, decode_record, encode_record
from threadline.ingester.trace_sizes import Admitted, TraceSizes
from threadline.ingester.wal import WAL, WALUnavailable, list_segments, read_segment, segment_path
from threadline.model.otlp_decode import decode_export_request
from threadline.model.schema import SPAN_SCHEMA
from threadline.selfmetrics import SelfMetrics
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist, remove_dead_staging
from threadline.storage.files import fsync_path

log = logging.getLogger(__name__)


T = TypeVar("T")
_ENTRY_SEQ = itertools.count()
# idle traces are cut from live into head entries of about this size: few enough that queries
# prepare each once (they never change), small enough that a block is several of them
HEAD_ENTRY_BYTES = 16 * 2**20


@dataclass(slots=True, weakref_slot=True)
class Entry:
    """Span rows held in memory, the oldest WAL segment they came from and their arrival."""

    table: pa.Table
    min_seg: int
    arrival: float
    nbytes: int = field(init=False)
    # unique per entry made (queries cache what they built from a set of entries)
    seq: int = field(init=False, default_factory=lambda: next(_ENTRY_SEQ))
    _traces: int | None = field(init=False, default=None)
    _range: tuple[int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        # buffer sizes, not Table.nbytes: that one de-duplicates buffers and costs a scan
        self.nbytes = self.table.get_total_buffer_size()

    @property
    def span_range(self) -> tuple[int, int]:
        """(earliest start, latest end) of the entry's spans (computed once)."""
        if self._range is None:
            starts = self.table.column("start_unix_nano")
            ends = pc.add(starts, self.table.column("duration_nano"))
            self._range = (pc.min(starts).as_py(), pc.max(ends).as_py())
        return self._range

    @property
    def traces(self) -> int:
        """Distinct trace ids in this entry (computed once: entries never change)."""
        if self._traces is None:
            self._traces = pc.count_distinct(self.table.column("trace_id")).as_py()
        return self._traces


@dataclass(slots=True)
class TenantState:
    live: list[Entry] = field(default_factory=list)
    head: list[Entry] = field(default_factory=list)
    head_since: float | None = None
    flushing: list[Entry] = field(default_factory=list)
    sizes: TraceSizes = field(default_factory=TraceSizes)  # bytes of each live trace
    failures: int = 0  # block writes failed in a row (the backend is unreachable)
    retry_at: float = 0.0  # no new block write before this (backoff after failures)
    # odd while rows move between live, head, flushing and blocks (on the event loop's
    # thread), so that readers in other threads can see one consistent picture
    version: int = 0

    def entries(self) -> list[Entry]:
        return [*self.live, *self.head, *self.flushing]

    @contextlib.contextmanager
    def moving(self) -> Iterator[None]:
        """Around a change that moves rows from one place to another."""
        self.version += 1
        try:
            yield
        finally:
            self.version += 1

    def consistent(self, read: Callable[[], T]) -> T:
        """``read()`` (from another thread) retried until no move happened during it."""
        while True:
            before = self.version
            if not before & 1:
                got = read()
                if self.version == before:
                    return got
            time.sleep(0)

    @staticmethod
    def nbytes(entries: list[Entry]) -> int:
        return sum(e.nbytes for e in entries)


def _concat(entries: list[Entry]) -> pa.Table:
    return pa.concat_tables([e.table for e in entries]) if entries else SPAN_SCHEMA.empty_table()


def _merge(entries: list[Entry], arrival: float) -> Entry:
    return Entry(_concat(entries), min(e.min_seg for e in entries), arrival)


class IngesterBacklogFull(Exception):
    """Spans held in memory (acknowledged in the WAL, not yet in blocks) reached
    ``ingester.max_unflushed_bytes``, e.g. because the backend is unreachable: receivers answer
    HTTP 503 / gRPC UNAVAILABLE so that clients retry later."""


class FlushFailed(Exception):
    """``flush`` could not write every cut trace to the backend: the spans stay in memory and
    the WAL, and the block write is retried in the background with backoff."""


class Ingester:
    def __init__(
        self, cfg: Config, blocklist: Blocklist, metrics: SelfMetrics, wal_dir: Path
    ) -> None:
        self.cfg = cfg
        self.icfg = cfg.ingester
        self.blocklist = blocklist
        self.metrics = metrics
        self.wal_dir = wal_dir
        self.tenants: dict[str, TenantState] = {}
        self.wal: WAL | None = None
        self._cut_lock = asyncio.Lock()
        self._held_bytes = 0  # bytes of all in-memory entries, re-counted at every flush check
        self._room = asyncio.Event()
        self.clock: Callable[[], float] = time.monotonic
        # where blocks for object storage are assembled before upload
        self.staging_dir = cfg.data_dir / "staging"
        self.flush_failures = Counter(
            "threadline_ingester_flush_failures",
            "Block writes (uploads) that failed and will be retried, per tenant.",
            ["tenant"],
            registry=metrics.registry,
        )

    # -- start-up -------------------------------------------------------------------------------

    def start(self) -> None:
        """Replay the WAL into memory, then open a fresh segment for new writes."""
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        remove_dead_staging(self.staging_dir, at_start=True)
        segments = self.replay(repair=True)
        first = (segments[-1] + 1) if segments else 0
        self.wal = WAL(
            self.wal_dir,
            first,
            fsync=self.cfg.wal.fsync,
            segment_bytes=self.cfg.wal.segment_bytes,
            on_fsync=self.metrics.wal_fsync_seconds.observe,
            on_error=lambda op: self.metrics.wal_failures.labels(op).inc(),
        )
        self._delete_unneeded_segments()

    def replay(self, repair: bool) -> list[int]:
        """Load the WAL's spans that no block holds yet; returns the segments read.

        With ``repair`` a torn tail is cut off the segment (a read-only reader leaves it).
        """
        segments = list_segments(self.wal_dir) if self.wal_dir.is_dir() else []
        replayed: dict[str, list[Entry]] = {}
        now = self.clock()
        for seg in segments:
            for payload in read_segment(segment_path(self.wal_dir, seg), truncate_torn_tail=repair):
                try:
                    rec = decode_record(payload)
                    applied, body = None, rec.body
                    if rec.kind is RecordKind.OTLP_LIMITED:
                        applied, body = AppliedLimits.decode(body)
                    batch = decode_export_request(body).batch
                except ValueError:
                    log.exception("WAL segment %d: skipping a record that cannot be read", seg)
                    continue
                self.metrics.wal_replayed_records.inc()
                if applied is not None:
                    batch = applied.apply(batch)
                if batch.num_rows:
                    table = pa.Table.from_batches([batch])
                    replayed.setdefault(rec.tenant, []).append(Entry(table, seg, now))
        for tenant, entries in replayed.items():
            merged = _merge(entries, now)
            merged.table = self._drop_rows_in_blocks(tenant, merged.table, merged.min_seg)
            if merged.table.num_rows:
                self._state(tenant).live.append(merged)
        return segments

    def _drop_rows_in_blocks(self, tenant: str, table: pa.Table, min_seg: int) -> pa.Table:
        """Remove rows a block already holds (a crash between block write and WAL cleanup)."""
        candidates = [b for b in self.blocklist.blocks(tenant) if b.meta.wal_through >= min_seg]
        if not candidates or table.num_rows == 0:
            return table
        keys = ["trace_id", "span_id"]
        stored = pa.concat_tables([b.read_table(columns=keys) for b in candidates])
        stored = stored.group_by(keys).aggregate([])
        # join on the keys and a row number only: Acero cannot carry map columns through a join
        rows = table.select(keys).append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        kept = rows.join(stored, keys=keys, join_type="left anti").column("_row")
        return table.take(kept)

    def _state(self, tenant: str) -> TenantState:
        state = self.tenants.get(tenant)
        if state is None:
            state = self.tenants[tenant] = TenantState()
        return state

    # -- write path -----------------------------------------------------------------------------

    async def push(
        self,
        tenant: str,
        otlp: bytes | memoryview,
        batch: pa.RecordBatch,
        applied: AppliedLimits | None = None,
    ) -> None:
        """Make ``batch`` (decoded from ``otlp``, then cut by ``applied`` limits) durable and
        visible; returns once fsynced."""
        assert self.wal is not None
        # backpressure: the block writer is behind, so acks slow down instead of memory growing;
        # past ``backlog_wait`` (block writes failing) the push is refused, nothing is written
        while self._held_bytes > self.icfg.max_unflushed_bytes:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), timeout=self.icfg.backlog_wait)
            except TimeoutError:
                raise IngesterBacklogFull(
                    f"ingester backlog full: {self._held_bytes} bytes of spans wait to be "
                    f"written to blocks (limit ingester.max_unflushed_bytes = "
                    f"{self.icfg.max_unflushed_bytes}); retry later"
                ) from None
        # a failed write (disk full) raises WALUnavailable here, and nothing of the push is kept
        ticket, seg = self.wal.write(*encode_record(tenant, otlp, applied))
        entry = None
        if batch.num_rows:
            entry = Entry(pa.Table.from_batches([batch]), seg, self.clock())
            self._state(tenant).live.append(entry)
            self._held_bytes += entry.nbytes
        try:
            await self.wal.wait_durable(ticket)
        except WALUnavailable:
            if entry is not None:
                self._drop_refused(tenant, entry)
            raise

    def _drop_refused(self, tenant: str, entry: Entry) -> None:
        """Take the rows of a push whose fsync failed out of memory again: it is refused."""
        state = self._state(tenant)
        for stage in (state.live, state.head):
            for i, held in enumerate(stage):
                if held is entry:
                    del stage[i]
                    self._held_bytes -= entry.nbytes
                    if not state.head:
                        state.head_since = None
                    return
        # cut together with other rows meanwhile: a retry may store these spans twice
        log.warning(
            "tenant %s: %d spans of a refused push stay in memory", tenant, entry.table.num_rows
        )

    def admit(
        self, tenant: str, trace_ids: pa.Array, span_bytes: float, limits: TenantLimits
    ) -> Admitted:
        """Which spans the tenant's per-trace and live-trace limits let in (counted in)."""
        return self._state(tenant).sizes.admit(
            trace_ids,
            span_bytes,
            limits.global_.max_bytes_per_trace,
            limits.ingestion.max_traces_per_user,
        )

    # -- lifecycle: live → head → block -------------------------------------------------------

    def _cut_idle(self, state: TenantState, now: float, everything: bool) -> None:
        """Move traces idle for ``trace_idle_period`` (or live too long) from live to head."""
        if not state.live:
            return
        if everything:
            moved, kept = state.live, []
        else:
            idle_cutoff = now - self.icfg.trace_idle_period
            old = [e for e in state.live if e.arrival <= idle_cutoff]
            if not old:
                return
            recent = [e for e in state.live if e.arrival > idle_cutoff]
            live_cutoff = now - self.icfg.trace_live_period
            moved, kept = [], list(recent)
            # traces still getting spans stay live, unless live past trace_live_period
            young = [e for e in old if e.arrival > live_cutoff]
            moved.extend(e for e in old if e.arrival <= live_cutoff)
            active = pc.unique(_concat(recent).column("trace_id")) if recent else None
            if active is None or not young:
                moved.extend(young)
            else:
                mask = pc.is_in(_concat(young).column("trace_id"), value_set=active)
                offset = 0
                for e in young:
                    still = mask.slice(offset, e.table.num_rows)
                    offset += e.table.num_rows
                    if not pc.any(still).as_py():
                        moved.append(e)  # the common case: no copy
                        continue
                    moved.append(Entry(e.table.filter(pc.invert(still)), e.min_seg, e.arrival))
                    kept.append(Entry(e.table.filter(still), e.min_seg, e.arrival))
        moved = [e for e in moved if e.table.num_rows]
        with state.moving():
            state.live = [e for e in kept if e.table.num_rows]
            if moved:
                self._into_head(state, moved)
        if not state.live:
            state.sizes = TraceSizes()
        elif moved:
            state.sizes.forget(pa.chunked_array([e.table.column("trace_id") for e in moved]))
        if moved and state.head_since is None:
            state.head_since = now

    def _into_head(self, state: TenantState, moved: list[Entry]) -> None:
        """Append cut rows to head as entries of about ``HEAD_ENTRY_BYTES`` (the last head
        entry is topped up while smaller), each holding whole cut traces where it can."""
        cap = min(HEAD_ENTRY_BYTES, self.icfg.max_block_bytes)
        groups: list[list[Entry]] = []
        size = cap
        if state.head and state.head[-1].nbytes < cap:
            last = state.head.pop()
            groups.append([last])
            size = last.nbytes
        for e in moved:
            if size >= cap:
                groups.append([])
                size = 0
            groups[-1].append(e)
            size += e.nbytes
        for group in groups:
            arrival = max(e.arrival for e in group)
            state.head.append(group[0] if len(group) == 1 else _merge(group, arrival))

    def _head_full(self, state: TenantState, now: float) -> bool:
        if not state.head or now < state.retry_at:
            return False
        if state.failures:
            return True  # retry a failed block write once its backoff is over
        if TenantState.nbytes(state.head) >= self.icfg.max_block_bytes:
            return True
        return state.head_since is not None and now - state.head_since >= (
            self.icfg.max_block_duration
        )

    def _backlog_full(self) -> bool:
        return self._held_bytes > self.icfg.max_unflushed_bytes

    async def tick(self) -> None:
        """One flush check: cut idle traces, write full head blocks. While the backlog is over
        ``max_unflushed_bytes`` every trace is cut and written at once, whatever the size and
        age of the head, so that waiting pushes get room instead of waiting for a full block."""
        for tenant, state in list(self.tenants.items()):
            self._cut_idle(state, self.clock(), everything=self._backlog_full())
            # keep the writer busy while it is behind, rather than waiting for the next check
            while self._head_full(state, self.clock()) or (
                self._backlog_full() and state.head and self.clock() >= state.retry_at
            ):
                await self._write_head(tenant)
                self._cut_idle(state, self.clock(), everything=self._backlog_full())
        self.update_gauges()

    async def flush(self, tenant: str | None = None) -> None:
        """Cut every live trace (of ``tenant``, or of all) into a block now (Tempo's /flush).

        Returns once those spans are in durable blocks; raises ``FlushFailed`` naming the
        backend's error when a block write failed (it is retried in the background).
        """
        now = self.clock()
        failed: list[str] = []
        for name, state in list(self.tenants.items()):
            if tenant is not None and name != tenant:
                continue
            self._cut_idle(state, now, everything=True)
            # in blocks of at most max_block_bytes; a write already under way (a flush check's)
            # is waited for, and its rows written again here if it failed
            while True:
                error = await self._write_head(name)
                if error is not None:
                    failed.append(f"tenant {name}: {error}")
                    break
                if not state.head:
                    break
        self.update_gauges()
        if failed:
            raise FlushFailed(
                f"writing blocks to the {self.blocklist.backend.describe()} backend failed "
                f"({'; '.join(failed)}); the spans stay in the WAL and the write is retried "
                f"in the background"
            )

    def behind(self) -> bool:
        """Whether a full block waits for the block writer (it is not keeping up)."""
        return any(
            TenantState.nbytes(state.head) >= self.icfg.max_block_bytes
            for state in list(self.tenants.values())
        )

    async def _write_head(self, tenant: str) -> Exception | None:
        """Write (part of) the tenant's head as a block; returns the error if that failed."""
        async with self._cut_lock:
            state = self._state(tenant)
            if not state.head:
                return None
            # at most max_block_bytes per block: a writer that fell behind must not turn its
            # backlog into one huge block (and a working set that grows with the backlog)
            taken, size = 0, 0
            while taken < len(state.head) and (taken == 0 or size < self.icfg.max_block_bytes):
                size += state.head[taken].nbytes
                taken += 1
            with state.moving():
                state.flushing, state.head = state.head[:taken], state.head[taken:]
            if not state.head:
                state.head_since = None
            entries = state.flushing
            table = _concat(entries)
            wal_through = self.wal.current_segment if self.wal else -1
            caches = self.blocklist.caches
            try:
                meta = await asyncio.to_thread(
                    write_block,
                    self.blocklist.backend,
                    tenant,
                    table,
                    self.cfg.storage.block,
                    wal_through=wal_through,
                    staging_dir=self.staging_dir,
                    cache=caches.ranges if caches is not None else None,
                )
            except Exception as e:
                state.failures += 1
                backoff = min(
                    self.icfg.flush_retry_max_backoff,
                    self.icfg.flush_retry_min_backoff * 2 ** (state.failures - 1),
                )
                state.retry_at = self.clock() + backoff
                self.flush_failures.labels(tenant).inc()
                log.error(
                    "writing a block for tenant %s failed (%s); keeping %d rows in memory and "
                    "the WAL, retrying in %.1fs",
                    tenant,
                    e,
                    table.num_rows,
                    backoff,
                )
                with state.moving():
                    state.head = [*entries, *state.head]
                    state.flushing = []
                state.head_since = state.head_since or self.clock()
                return e
            state.failures = 0
            state.retry_at = 0.0
            block = self.blocklist.new_block(meta)
            with state.moving():  # the rows are in the block list, and no longer in memory
                self.blocklist.add(block)
                state.flushing = []
            self._recount()
            self.metrics.blocks_written.labels(tenant).inc()
            self.metrics.block_spans_written.labels(tenant).inc(meta.total_spans)
            log.info(
                "tenant %s: wrote block %s (%d spans, %d traces, %d bytes)",
                tenant,
                meta.block_id,
                meta.total_spans,
                meta.total_objects,
                meta.size,
            )
        self._delete_unneeded_segments()
        return None

    def _delete_unneeded_segments(self) -> None:
        if self.wal is None:
            return
        held = [e.min_seg for s in self.tenants.values() for e in s.entries()]
        oldest_needed = min(held) if held else self.wal.current_segment
        self.wal.delete_segments_before(oldest_needed)

    # -- read path ------------------------------------------------------------------------------

    def find_trace(self, tenant: str, trace_id: bytes) -> list[pa.Table]:
        """Rows of ``trace_id`` held in memory for ``tenant``."""
        state = self.tenants.get(tenant)
        if state is None:
            return []
        needle = pa.scalar(trace_id, pa.binary(16))
        out = []
        for e in state.entries():
            rows = e.table.filter(pc.equal(e.table.column("trace_id"), needle))
            if rows.num_rows:
                out.append(rows)
        return out

    def _recount(self) -> None:
        self._held_bytes = sum(TenantState.nbytes(s.entries()) for s in self.tenants.values())
        if self._held_bytes <= self.icfg.max_unflushed_bytes:
            self._room.set()

    def update_gauges(self) -> None:
        self._recount()
        for tenant, state in self.tenants.items():
            entries = state.entries()
            # a trace whose spans arrived in several pushes may be counted once per push
            self.metrics.live_traces.labels(tenant).set(sum(e.traces for e in entries))
            self.metrics.live_bytes.labels(tenant).set(TenantState.nbytes(entries))

    async def run(self, stop: asyncio.Event) -> None:
        """Flush checks every ``flush_check_period`` until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.icfg.flush_check_period)
            if stop.is_set():
                break
            try:
                await self.tick()
            except Exception:
                log.exception("flush check failed")

    def close(self) -> None:
        if self.wal is not None:
            self.wal.close()
            self.wal = None

    async def shutdown(self) -> bool:
        """A graceful stop: write every held span to blocks, then close the WAL.

        Once everything is in blocks the WAL's segments are deleted, so the next start replays
        nothing; returns False (and keeps the WAL for replay) when a block write failed.
        """
        try:
            await self.flush()
        except FlushFailed as e:
            log.warning("stopping with spans not yet in blocks (%s); the WAL keeps them", e)
        drained = not any(state.entries() for state in self.tenants.values())
        self.close()
        if drained:
            for seg in list_segments(self.wal_dir):
                segment_path(self.wal_dir, seg).unlink(missing_ok=True)
            fsync_path(self.wal_dir)
        return drained
