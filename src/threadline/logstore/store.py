"""The log store: log records kept as spans are, through the same parts. A push is written to
the logs' own WAL (``data/wal-logs``) and acknowledged once fsynced; its rows are then live in
memory; a tenant's live rows become one Parquet block (``.logs/<tenant>/<id>.parquet`` in the
blocks' backend, rows by trace id then time, with a JSON meta holding the time range and a
bloom filter of the trace ids) when enough are held, when the oldest is old enough, at a
flush and at a graceful stop. Each WAL record carries a sequence number and each block the
last one it holds, so a restart replays exactly what no block holds yet. Maintenance deletes
blocks past the retention and merges a tenant's small blocks: the merged block names the
blocks it replaces, so a stop between writing it and deleting them never counts a line twice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from threadline.config import Config
from threadline.ingester.wal import WAL, list_segments, read_segment, segment_path
from threadline.model.schema import LOG_SCHEMA
from threadline.storage.backend import Backend, BackendError
from threadline.storage.bloom import BloomFilter, probe_hashes

log = logging.getLogger(__name__)

PREFIX = ".logs"  # beside the tenants' span blocks; never a tenant (no tenant starts with ".")
_RECORD = struct.Struct("<QH")  # sequence number, tenant length
_ROW_GROUP_LINES = 8192


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


@dataclass(slots=True)
class LogBlockMeta:
    tenant: str
    block_id: str
    lines: int
    min_time: int
    max_time: int
    seq_through: int
    bloom: BloomFilter
    replaces: tuple[str, ...] = ()

    @property
    def data_key(self) -> str:
        return f"{PREFIX}/{self.tenant}/{self.block_id}.parquet"

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "lines": self.lines,
                "min_time": self.min_time,
                "max_time": self.max_time,
                "seq_through": self.seq_through,
                "replaces": list(self.replaces),
                "bloom_bits": self.bloom.bits,
                "bloom_hashes": self.bloom.hashes,
                "bloom": base64.b64encode(self.bloom.to_bytes()).decode(),
            }
        )

    @classmethod
    def from_json(cls, tenant: str, block_id: str, raw: bytes) -> LogBlockMeta:
        doc = orjson.loads(raw)
        bloom = BloomFilter.from_bytes(
            doc["bloom_bits"], doc["bloom_hashes"], base64.b64decode(doc["bloom"])
        )
        return cls(
            tenant, block_id, doc["lines"], doc["min_time"], doc["max_time"],
            doc["seq_through"], bloom, tuple(doc.get("replaces", ())),
        )  # fmt: skip


class LogBacklogFull(Exception):
    """Live lines reached ``logs.max_unflushed_bytes`` and block writes did not make room in
    time: the push is refused (HTTP 503 / gRPC UNAVAILABLE) so that clients retry later."""


@dataclass(slots=True)
class _Live:
    batch: pa.RecordBatch
    seq: int
    segment: int
    arrived: float


class LogStore:
    def __init__(self, cfg: Config, backend: Backend, wal_dir: Path) -> None:
        self.cfg = cfg.logs
        self.block_cfg = cfg.storage.block
        self.backlog_wait = cfg.ingester.backlog_wait
        self._held = 0  # bytes of live batches
        self._room = asyncio.Event()
        self._kicked: asyncio.Future[None] | None = None
        self.backend = backend
        self.wal_dir = wal_dir
        self.fsync = cfg.wal.fsync
        self.segment_bytes = cfg.wal.segment_bytes
        self.wal: WAL | None = None
        self.live: dict[str, list[_Live]] = {}
        self.blocks: dict[str, list[LogBlockMeta]] = {}
        self._seq = 0
        self._lock = threading.Lock()  # live lists: pushes on the loop, cuts in threads
        self._cutting: dict[str, asyncio.Lock] = {}  # one block write per tenant at a time

    # -- start ---------------------------------------------------------------------------------

    def start(self, read_only: bool = False) -> None:
        """Read the blocks' metas, replay what no block holds, open the WAL (``read_only``:
        leave the WAL alone, as a running server may own it; nothing can be pushed)."""
        for tenant in self.backend.list_dirs(PREFIX + "/"):
            self.blocks[tenant] = self._read_metas(tenant, delete_replaced=not read_only)
        through = {t: max((b.seq_through for b in bs), default=0) for t, bs in self.blocks.items()}
        self._seq = max(through.values(), default=0)
        segments = list_segments(self.wal_dir) if self.wal_dir.is_dir() else []
        now = time.monotonic()
        for seg in segments:
            path = segment_path(self.wal_dir, seg)
            for payload in read_segment(path, truncate_torn_tail=not read_only):
                try:
                    seq, tenant, batch = self._decode(payload)
                except (ValueError, pa.ArrowInvalid, struct.error):
                    log.exception("logs WAL segment %d: skipping a record that cannot be read", seg)
                    continue
                self._seq = max(self._seq, seq)
                if seq > through.get(tenant, 0) and batch.num_rows:
                    self.live.setdefault(tenant, []).append(_Live(batch, seq, seg, now))
        self._held = sum(e.batch.nbytes for es in self.live.values() for e in es)
        if read_only:
            return
        first = (segments[-1] + 1) if segments else 1
        self.wal = WAL(self.wal_dir, first, fsync=self.fsync, segment_bytes=self.segment_bytes)

    def _read_metas(self, tenant: str, delete_replaced: bool = True) -> list[LogBlockMeta]:
        out = []
        for info in self.backend.list(f"{PREFIX}/{tenant}/"):
            name = info.key.rsplit("/", 1)[-1]
            if not name.endswith(".json"):
                continue
            try:
                out.append(LogBlockMeta.from_json(tenant, name[:-5], self.backend.read(info.key)))
            except (ValueError, KeyError, OSError):
                log.exception("log block meta %s cannot be read: left out", info.key)
        replaced = {r for b in out for r in b.replaces}
        for b in out:
            if b.block_id in replaced and delete_replaced:  # a merge stopped before deleting
                self._delete_block(b)
        return sorted((b for b in out if b.block_id not in replaced), key=lambda b: b.min_time)

    def _delete_block(self, b: LogBlockMeta) -> None:
        # the meta first: a block without one is never read
        self.backend.delete(f"{PREFIX}/{b.tenant}/{b.block_id}.json")
        self.backend.delete(b.data_key)

    @staticmethod
    def _decode(payload: bytes) -> tuple[int, str, pa.RecordBatch]:
        seq, tlen = _RECORD.unpack_from(payload, 0)
        start = _RECORD.size
        tenant = payload[start : start + tlen].decode()
        reader = ipc.open_stream(memoryview(payload)[start + tlen :])
        return seq, tenant, reader.read_next_batch()

    # -- write path ----------------------------------------------------------------------------

    async def push(self, tenant: str, batch: pa.RecordBatch) -> None:
        """Returns once ``batch`` is durable in the WAL (raises ``WALUnavailable`` if not)."""
        if not batch.num_rows:
            return
        assert self.wal is not None
        # pushes faster than blocks are written wait here: memory stays bounded
        if self._held > self.cfg.max_unflushed_bytes:
            self._kick()
            deadline = time.monotonic() + self.backlog_wait
            while self._held > self.cfg.max_unflushed_bytes:
                self._room.clear()
                left = deadline - time.monotonic()
                try:
                    await asyncio.wait_for(self._room.wait(), timeout=max(left, 0))
                except TimeoutError:
                    raise LogBacklogFull(
                        f"log backlog full: {self._held} bytes of lines wait to be written to "
                        f"blocks (logs.max_unflushed_bytes = {self.cfg.max_unflushed_bytes}); "
                        "retry later"
                    ) from None
        t = tenant.encode()
        with self._lock:
            self._seq += 1
            seq = self._seq
        ticket, segment = self.wal.write(_RECORD.pack(seq, len(t)) + t, _ipc(batch))
        await self.wal.wait_durable(ticket)
        with self._lock:
            self.live.setdefault(tenant, []).append(_Live(batch, seq, segment, time.monotonic()))
            self._held += batch.nbytes

    def _kick(self) -> None:
        """Start writing the biggest tenant's lines now (once at a time)."""
        if self._kicked is None or self._kicked.done():
            with self._lock:
                sizes = {t: sum(e.batch.nbytes for e in es) for t, es in self.live.items() if es}
            if sizes:
                self._kicked = asyncio.ensure_future(self._cut(max(sizes, key=sizes.__getitem__)))

    async def tick(self) -> None:
        """Cut the blocks that are due."""
        now = time.monotonic()
        for tenant, entries in list(self.live.items()):
            if not entries:
                continue
            rows = sum(e.batch.num_rows for e in entries)
            if (
                rows >= self.cfg.max_block_lines
                or now - entries[0].arrived >= self.cfg.max_block_duration
            ):
                await self._cut(tenant)

    async def flush(self, tenant: str | None = None) -> None:
        for name in [tenant] if tenant is not None else list(self.live):
            if self.live.get(name):
                await self._cut(name)

    async def _cut(self, tenant: str) -> None:
        async with self._cutting.setdefault(tenant, asyncio.Lock()):
            with self._lock:
                taken = list(self.live.get(tenant, []))
            if not taken:
                return
            meta = await asyncio.to_thread(self._write_block, tenant, taken)
            self._taken(tenant, taken, meta)
        self._delete_unneeded_segments()

    def _taken(self, tenant: str, taken: list[_Live], meta: LogBlockMeta) -> None:
        with self._lock:
            self._held -= sum(e.batch.nbytes for e in taken)
            self.live[tenant] = self.live.get(tenant, [])[len(taken) :]
            self.blocks.setdefault(tenant, []).append(meta)
        if self._held <= self.cfg.max_unflushed_bytes:
            self._room.set()

    def _write_block(self, tenant: str, taken: list[_Live]) -> LogBlockMeta:
        table = pa.Table.from_batches([e.batch for e in taken])
        return self._write_table(tenant, table, max(e.seq for e in taken))

    def _write_table(
        self, tenant: str, table: pa.Table, seq_through: int, replaces: tuple[str, ...] = ()
    ) -> LogBlockMeta:
        # by trace, then time: a trace's lines lie together, so row-group statistics find them;
        # a block covers a short time (see max_block_duration), so time ranges prune blocks
        order = [("trace_id", "ascending", "at_end"), ("time_unix_nano", "ascending")]
        table = table.take(pc.sort_indices(table, order))
        ids = table.column("trace_id").drop_null()
        bloom = BloomFilter.for_count(len(ids), self.block_cfg.bloom_false_positive)
        if len(ids):
            bloom.add(ids)
        times = table.column("time_unix_nano")
        meta = LogBlockMeta(
            tenant, str(uuid.uuid4()), table.num_rows, pc.min(times).as_py(), pc.max(times).as_py(),
            seq_through, bloom, replaces,
        )  # fmt: skip
        sink = io.BytesIO()
        pq.write_table(
            table, sink, compression="zstd", compression_level=self.block_cfg.zstd_level,
            row_group_size=_ROW_GROUP_LINES,
        )  # fmt: skip
        self.backend.write(meta.data_key, sink.getvalue())
        # the meta last: a block without one is not read, and its lines stay in the WAL
        self.backend.write(f"{PREFIX}/{tenant}/{meta.block_id}.json", meta.to_json())
        return meta

    def _delete_unneeded_segments(self) -> None:
        if self.wal is None:
            return
        with self._lock:
            held = [e.segment for entries in self.live.values() for e in entries]
        self.wal.delete_segments_before(min(held) if held else self.wal.current_segment)

    def _source(self, b: LogBlockMeta) -> str | io.BytesIO:
        local = self.backend.local_path(b.data_key)
        return str(local) if local is not None else io.BytesIO(self.backend.read(b.data_key))

    def _read_block(self, b: LogBlockMeta) -> pa.Table:
        return pq.read_table(self._source(b)).select(LOG_SCHEMA.names).cast(LOG_SCHEMA)

    def _read_trace(self, b: LogBlockMeta, trace_id: bytes) -> pa.Table:
        """The row groups of ``b`` whose trace-id range holds ``trace_id`` (rows are by trace:
        usually one); pyarrow's own filters read every row group."""
        pf = pq.ParquetFile(self._source(b))
        md = pf.metadata
        col = pf.schema_arrow.get_field_index("trace_id")
        groups = []
        for g in range(md.num_row_groups):
            st = md.row_group(g).column(col).statistics
            if st is None or not st.has_min_max or st.min <= trace_id <= st.max:
                groups.append(g)
        if not groups:
            return pa.Table.from_batches([], schema=LOG_SCHEMA)
        return pf.read_row_groups(groups).select(LOG_SCHEMA.names).cast(LOG_SCHEMA)

    def retention(self, tenant: str) -> float:
        return self.cfg.block_retention_by_tenant.get(tenant, self.cfg.block_retention)

    async def maintain(self, now_ns: int | None = None) -> None:
        """Delete blocks past their tenant's retention, then merge small blocks."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        for tenant in list(self.blocks):
            async with self._cutting.setdefault(tenant, asyncio.Lock()):
                cutoff = now_ns - int(self.retention(tenant) * 1e9)
                with self._lock:
                    expired = [b for b in self.blocks[tenant] if b.max_time < cutoff]
                    self.blocks[tenant] = [b for b in self.blocks[tenant] if b.max_time >= cutoff]
                for b in expired:
                    await asyncio.to_thread(self._delete_block, b)
                await self._compact(tenant)

    async def _compact(self, tenant: str) -> None:
        with self._lock:
            small = [b for b in self.blocks.get(tenant, []) if b.lines < self.cfg.max_block_lines]
        if len(small) < self.cfg.compact_after_blocks:
            return
        picked: list[LogBlockMeta] = []
        for b in small:
            if picked and sum(p.lines for p in picked) + b.lines > self.cfg.compacted_block_lines:
                break
            picked.append(b)
        if len(picked) < 2:
            return

        def merge() -> LogBlockMeta:
            table = pa.concat_tables([self._read_block(b) for b in picked])
            through = max(b.seq_through for b in picked)
            merged = self._write_table(tenant, table, through, tuple(b.block_id for b in picked))
            for b in picked:
                self._delete_block(b)
            return merged

        merged = await asyncio.to_thread(merge)
        gone = {b.block_id for b in picked}
        with self._lock:
            kept = [b for b in self.blocks[tenant] if b.block_id not in gone]
            self.blocks[tenant] = sorted([*kept, merged], key=lambda b: b.min_time)

    async def run(self, stop: asyncio.Event, period: float) -> None:
        last_maintenance = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)
            try:
                await self.tick()
            except Exception:  # a failed block write leaves the lines live and in the WAL
                log.exception("writing a log block failed; retrying at the next check")
            if time.monotonic() - last_maintenance >= self.cfg.maintenance_period:
                last_maintenance = time.monotonic()
                try:
                    await self.maintain()
                except Exception:  # the blocks are as they were; tried again next period
                    log.exception("log block retention or compaction failed")

    async def shutdown(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("writing log blocks at stop failed: the lines stay in the WAL")
        if self.wal is not None:
            self.wal.close()

    # -- read path -----------------------------------------------------------------------------

    def between(self, tenant: str, start_ns: int, end_ns: int) -> pa.Table:
        """Every line of ``tenant`` with ``start_ns <= time <= end_ns`` (any order)."""
        with self._lock:
            live = [e.batch for e in self.live.get(tenant, [])]
            blocks = [b for b in self.blocks.get(tenant, []) if b.max_time >= start_ns]
        parts = [pa.Table.from_batches(live, schema=LOG_SCHEMA)] if live else []
        for b in blocks:
            if b.min_time > end_ns:
                continue
            try:
                parts.append(self._read_block(b))
            except (FileNotFoundError, BackendError):  # merged away meanwhile: read again
                return self.between(tenant, start_ns, end_ns)
        if not parts:
            return pa.Table.from_batches([], schema=LOG_SCHEMA)
        table = pa.concat_tables(parts)
        times = table.column("time_unix_nano")
        keep = pc.and_(pc.greater_equal(times, start_ns), pc.less_equal(times, end_ns))
        return table.filter(keep)

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted({*self.live, *self.blocks})

    def trace_logs(
        self, tenant: str, trace_id: bytes, span_id: bytes | None = None,
        start_ns: int | None = None, end_ns: int | None = None,
    ) -> pa.Table:  # fmt: skip
        """The lines of ``trace_id`` (and ``span_id``) in time order."""
        try:
            return self._trace_logs(tenant, trace_id, span_id, start_ns, end_ns)
        except (FileNotFoundError, BackendError):
            # a merge replaced a block while it was read: the new list has its lines
            return self._trace_logs(tenant, trace_id, span_id, start_ns, end_ns)

    def _trace_logs(
        self, tenant: str, trace_id: bytes, span_id: bytes | None,
        start_ns: int | None, end_ns: int | None,
    ) -> pa.Table:  # fmt: skip
        parts: list[pa.Table] = []
        with self._lock:
            live = list(self.live.get(tenant, []))
            blocks = list(self.blocks.get(tenant, []))
        for e in live:
            t = pa.Table.from_batches([e.batch])
            parts.append(t.filter(_matches(t, trace_id, span_id)))
        probe = probe_hashes(trace_id)
        for b in blocks:
            if start_ns is not None and b.max_time < start_ns:
                continue
            if end_ns is not None and b.min_time > end_ns:
                continue
            if not b.bloom.may_contain(probe):
                continue
            rows = self._read_trace(b, trace_id)
            parts.append(rows.filter(_matches(rows, trace_id, span_id)))
        if not parts:
            return pa.Table.from_batches([], schema=LOG_SCHEMA)
        table = pa.concat_tables([p.select(LOG_SCHEMA.names).cast(LOG_SCHEMA) for p in parts])
        if start_ns is not None:
            table = table.filter(pc.greater_equal(table.column("time_unix_nano"), start_ns))
        if end_ns is not None:
            table = table.filter(pc.less_equal(table.column("time_unix_nano"), end_ns))
        return table.take(pc.sort_indices(table, [("time_unix_nano", "ascending")]))


def _matches(table: pa.Table, trace_id: bytes, span_id: bytes | None) -> pa.ChunkedArray:
    hit = pc.fill_null(
        pc.equal(table.column("trace_id"), pa.scalar(trace_id, pa.binary(16))), False
    )
    if span_id is not None:
        same = pc.equal(table.column("span_id"), pa.scalar(span_id, pa.binary(8)))
        hit = pc.and_(hit, pc.fill_null(same, False))
    return hit
