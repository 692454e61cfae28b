"""What a query reads: a tenant's blocks and live data, as DuckDB table expressions.

Blocks are Parquet files that already carry the per-trace columns; live data is the ingester's
in-memory rows, given the same columns here (cut entries sorted as blocks are, the live stage in
push order), then registered with DuckDB as an Arrow table. Queries are written once against
the block schema and run unchanged over both.

Set-up is paid once, not per query: one DuckDB database serves every query (its Parquet
footer cache keeps each block's metadata parsed; queries run on cursors of it), and each
in-memory entry of the ingester is prepared once (``LiveSnapshots``); only the live stage, which
every push changes, is brought up to date incrementally, when a query finds it changed.
Sources are visited newest first, so a search can stop as soon as no unvisited source can
change its answer (``each``'s ``enough``).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache, partial
from typing import TypeVar

import duckdb
import pyarrow as pa

from threadline.ingester.ingester import Entry, Ingester
from threadline.model.dedicated import attribute_keys
from threadline.model.schema import DEDICATED
from threadline.querier.admission import Admission, QueryResources
from threadline.querier.attribute_columns import AttributeColumns, resolve_attributes
from threadline.querier.live_stage import (
    LiveStage,
    block_rows,
    build_live_table,
    unique_trace_ids,
)
from threadline.querier.whole_traces import (
    BlockHashCache,
    MemoryRows,
    SplitTraces,
    split_traces,
)
from threadline.storage.block_fs import BlockFileSystem, block_url
from threadline.storage.block_reader import DATA_FILE, Block
from threadline.storage.blocklist import Blocklist

T = TypeVar("T")
# told the results so far and every source to visit, after each round of a visit
Progress = Callable[[list[tuple["Source", T]], list["Source"]], None]
LIVE = "live_spans"  # the name live data is registered under
EXCLUDED = "excluded_traces"  # the name a source's ``excluded`` is registered under
# every source has this column: the row's number within the source (DuckDB's name for Parquet)
ROW_NUMBER = "file_row_number"


@dataclass(frozen=True, slots=True)
class Source:
    """One table a query runs over: ``relation`` is SQL usable after FROM."""

    relation: str
    block: Block | None  # None for live data
    nbytes: int
    end_unix_nano: int
    # what the source's answers may be cached under: the block id, or one live snapshot's
    key: str = ""
    live: pa.Table | None = None
    columns: AttributeColumns = field(default_factory=AttributeColumns)
    # in-memory rows not yet prepared: ``live``, ``key``, ``columns`` and ``ordered`` come
    # from this
    prepare: Callable[[], Prepared] | None = None
    ordered: bool = False
    # the distinct trace ids of in-memory rows (worked out when first asked for)
    trace_ids: Callable[[], pa.Array] | None = None
    # traces a query leaves out here (table ``EXCLUDED``): they are read whole elsewhere
    excluded: pa.Table | None = None

    def prepared(self) -> Source:
        """This source with its in-memory rows built (once; shared with other queries)."""
        if self.prepare is None:
            return self
        p = self.prepare()
        return replace(
            self,
            key=p.key,
            live=p.table,
            columns=p.columns,
            ordered=p.ordered,
            trace_ids=p.trace_ids,
            prepare=None,
        )

    @property
    def time_ordered(self) -> bool:
        """Rows in trace-start order, then trace id: blocks from format tl2 on, and cut
        in-memory entries (the live stage, which every push changes, is in push order)."""
        return self.ordered if self.block is None else self.block.indexed


class SourceCursor:
    """A cursor for one source: the attribute placeholders of its queries are resolved for
    that source (dedicated columns, keys it lacks)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, columns: AttributeColumns) -> None:
        self.con = con
        self.columns = columns

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        return self.con.sql(resolve_attributes(query, self.columns))

    def execute(self, query: str) -> duckdb.DuckDBPyConnection:
        return self.con.execute(resolve_attributes(query, self.columns))

    def show_live(self, rows: pa.Table) -> None:
        """Make ``rows`` (part of an in-memory source) what its next queries read."""
        self.con.register(LIVE, rows)


def attribute_columns(
    keys: Mapping[str, Sequence[str]] | None, dedicated: Sequence[str]
) -> AttributeColumns:
    """What a source of these map keys (None: unknown) and dedicated columns holds."""
    present = set(dedicated)
    return AttributeColumns(
        None if keys is None else {column: frozenset(k) for column, k in keys.items()},
        {
            (f"{scope}_attrs_{kind}", key): column
            for column, scope, kind, key in DEDICATED
            if column in present
        },
    )


_LIVE_DEDICATED = [column for column, *_ in DEDICATED]


@dataclass(frozen=True, slots=True)
class Prepared:
    """In-memory rows made queryable: the table (block columns) and its attributes."""

    key: str
    table: pa.Table
    columns: AttributeColumns
    trace_ids: Callable[[], pa.Array]  # the distinct trace ids, worked out when first asked for
    ordered: bool = False  # rows in a block's order (trace start, trace id)


@dataclass(frozen=True, slots=True)
class MemoryPart:
    """A part of the in-memory rows: the span time it covers (``end`` is open for the live
    stage, whose traces may still grow) and how to get it prepared (built on first use)."""

    start_unix_nano: int
    end_unix_nano: int
    nbytes: int
    prepare: Callable[[], Prepared]


class _Slot:
    """One table being built or built: concurrent queries needing it wait for one build."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Prepared | None = None
        self.error: BaseException | None = None

    def fill(self, build: Callable[[], Prepared], on_error: Callable[[], None]) -> Prepared:
        """Build the value (``on_error`` runs if that fails) and wake the waiters."""
        try:
            self.value = build()
        except BaseException as e:
            self.error = e
            on_error()
            raise
        finally:
            self.done.set()
        return self.value

    def result(self) -> Prepared:
        """The value once built (by another thread, perhaps), or its build's error."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


_OPEN_END = 2**63 - 1


@dataclass(slots=True)
class _TenantStage:
    """A tenant's live stage and what queries were last given of it."""

    stage: LiveStage = field(default_factory=LiveStage)
    prepared: Prepared | None = None


class LiveSnapshots:
    """The ingester's in-memory rows of a tenant as prepared tables.

    Head and flushing entries hold whole cut traces and never change: each is prepared once
    and dropped when the ingester drops the entry (it is in a block then). The live stage
    changes with every push: it is kept per tenant (``LiveStage``) and brought up to date by
    the query that needs it, which redoes only what changed since the last update (the new
    entries, and the trace columns of traces that gained or lost rows). Concurrent queries
    take turns; one that finds the stage as it needs it does no work.
    """

    def __init__(self, ingester: Ingester | None) -> None:
        self.ingester = ingester
        self._lock = threading.Lock()
        self._slots: dict[tuple[int, ...], _Slot] = {}
        self._stages: dict[str, _TenantStage] = {}
        self._built = itertools.count()

    def consistent(self, tenant: str, read: Callable[[], T]) -> T:
        """``read()``, retried until no rows moved between memory and blocks meanwhile (so
        reading ``parts`` and then the block list shows every row once)."""
        state = self.ingester.tenants.get(tenant) if self.ingester is not None else None
        return read() if state is None else state.consistent(read)

    def parts(self, tenant: str) -> list[MemoryPart]:
        """The tenant's in-memory rows, live stage first, then head entries newest first;
        each is prepared when a query first reads it."""
        state = self.ingester.tenants.get(tenant) if self.ingester is not None else None
        if state is None:
            return []
        live, cut = state.consistent(lambda: (list(state.live), [*state.head, *state.flushing]))
        out = []
        if live:
            start = min(e.span_range[0] for e in live)
            nbytes = sum(e.nbytes for e in live)
            prepare = partial(self._live_stage, tenant, live)
            out.append(MemoryPart(start, _OPEN_END, nbytes, prepare))
        else:
            with self._lock:
                self._stages.pop(tenant, None)
        for e in reversed(cut):
            start, end = e.span_range
            out.append(MemoryPart(start, end, e.nbytes, partial(self._prepared, (e.seq,), [e])))
        return out

    def _live_stage(self, tenant: str, seen: list[Entry]) -> Prepared:
        """The live stage holding exactly the entries in ``seen``."""
        with self._lock:
            tenant_stage = self._stages.setdefault(tenant, _TenantStage())
        with tenant_stage.stage.lock:
            table, keys, changed = tenant_stage.stage.update(seen)
            if changed or tenant_stage.prepared is None:
                tenant_stage.prepared = self._made(table, keys, tenant_stage.stage.trace_ids())
            return tenant_stage.prepared

    def _prepared(self, key: tuple[int, ...], entries: list[Entry]) -> Prepared:
        with self._lock:
            slot = self._slots.get(key)
            owner = slot is None
            if slot is None:
                slot = self._slots[key] = _Slot()
                # built from entries that never change: dropped with the (first) entry
                weakref.finalize(entries[0], self._forget, key)
        if owner:
            return slot.fill(partial(self._build, entries), partial(self._forget, key))
        return slot.result()

    def _forget(self, key: tuple[int, ...]) -> None:
        with self._lock:
            self._slots.pop(key, None)

    def _build(self, entries: list[Entry]) -> Prepared:
        return self.made(build_live_table(entries, ordered=True))

    def made(self, table: pa.Table) -> Prepared:
        """Rows in a block's order (never changed) as a prepared table."""
        ids = cache(partial(unique_trace_ids, table))
        return self._made(table, attribute_keys(table), ids, ordered=True)

    def _made(
        self,
        table: pa.Table,
        keys: dict[str, list[str]],
        trace_ids: Callable[[], pa.Array],
        ordered: bool = False,
    ) -> Prepared:
        rows = table.append_column(ROW_NUMBER, pa.array(range(table.num_rows), pa.int64()))
        columns = attribute_columns(keys, _LIVE_DEDICATED)
        return Prepared(f"mem:{next(self._built)}", rows, columns, trace_ids, ordered)


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


class DataSources:
    """A tenant's data for queries: the ingester's live rows and the block list, plus the
    resources queries share. ``each`` runs a piece of work on every source, newest first,
    blocks in parallel, each worker on its own cursor of the one database."""

    def __init__(
        self,
        ingester: Ingester | None,
        blocklist: Blocklist,
        resources: QueryResources | None = None,
    ) -> None:
        self.ingester = ingester
        self.blocklist = blocklist
        self.resources = resources or QueryResources()
        self.live = LiveSnapshots(ingester)
        self._remote = BlockFileSystem(())
        self.admission = Admission(self.resources, lambda db: db.register_filesystem(self._remote))
        self._block_columns: dict[str, AttributeColumns] = {}
        self._block_hashes = BlockHashCache()
        # a tenant's query time limit in seconds and memory limit in bytes (the app sets them
        # from the overrides)
        self.query_timeout: Callable[[str], float] = lambda tenant: 120.0
        self.query_memory_limit: Callable[[str], int] = lambda tenant: 512 * 2**20
        # per tenant: the sources last gathered from, their split traces, those prepared
        self._split: dict[str, tuple[tuple[str, ...], SplitTraces | None, Prepared | None]] = {}
        self._db_lock = threading.Lock()

    def _sources(self, tenant: str, start_ns: int | None, end_ns: int | None) -> list[Source]:
        """Sources overlapping the window, newest first (live data first of all)."""
        parts, blocks = self.live.consistent(
            tenant,
            lambda: (self.live.parts(tenant), self.blocklist.blocks(tenant, start_ns, end_ns)),
        )
        sources = [
            Source(LIVE, None, p.nbytes, p.end_unix_nano, prepare=p.prepare)
            for p in parts
            if (end_ns is None or p.start_unix_nano <= end_ns)
            and (start_ns is None or p.end_unix_nano >= start_ns)
        ]
        for block in blocks:
            # local blocks are read in place; remote ones in ranges, through the block cache
            if block.path is None:
                self._remote.add(block)
                path = block_url(block)
            else:
                path = str(block.path / DATA_FILE)
            relation = f"read_parquet({_quote(path)}, file_row_number=true)"
            columns = self._block_columns.get(block.id)
            if columns is None:
                meta = block.meta
                columns = attribute_columns(meta.attribute_keys, meta.dedicated_columns)
                self._block_columns[block.id] = columns
            sources.append(
                Source(
                    relation,
                    block,
                    block.meta.size,
                    block.meta.end_unix_nano,
                    block.id,
                    None,
                    columns,
                )
            )
        # newest first; the live stage (open end) leads
        return sorted(sources, key=lambda s: s.end_unix_nano, reverse=True)

    def _whole_traces(self, tenant: str, sources: list[Source]) -> list[Source]:
        """``sources`` with the traces held by more than one of them gathered into a source
        of their own (first) and left out of the others (``whole_traces``). Worked out again
        only when the sources changed (a push, a flush, a compaction)."""
        sources = [s.prepared() for s in sources]
        key = tuple(s.key for s in sources)
        with self._db_lock:
            last = self._split.get(tenant)
        if last is not None and last[0] == key:
            split, whole = last[1], last[2]
        else:
            rows = [
                MemoryRows(s.key, s.live, s.trace_ids())
                for s in sources
                if s.live is not None and s.trace_ids is not None
            ]
            blocks = [s.block for s in sources if s.block is not None]
            # split or not is judged against all the tenant's blocks, whatever the window, so
            # that queries of different windows share the hashes
            hashes = self._block_hashes.of(tenant, self.blocklist.blocks(tenant))
            split = split_traces(blocks, rows, hashes)
            whole = None if split is None else self.live.made(block_rows(split.rows))
            with self._db_lock:
                self._split[tenant] = (key, split, whole)
        if split is None or whole is None:
            return sources
        first = Source(LIVE, None, whole.table.nbytes, _OPEN_END, whole.key, whole.table)
        out = [replace(first, columns=whole.columns, ordered=True, trace_ids=whole.trace_ids)]
        for s in sources:
            out.append(replace(s, excluded=split.ids) if s.key in split.held else s)
        return out

    def each(
        self,
        tenant: str,
        start_ns: int | None,
        end_ns: int | None,
        work: Callable[[SourceCursor, Source], T],
        enough: Callable[[list[tuple[Source, T]], Source], bool] | None = None,
        whole_traces: bool = False,
        progress: Progress[T] | None = None,
    ) -> list[tuple[Source, T]]:
        """``work(cursor, source)`` for every source in the window, in source order (newest
        first). With ``enough``, sources are visited in rounds (the newest alone, then as many
        as run at once), and the rest are skipped once ``enough(results so far, next source)``
        is true. In-memory sources are prepared when visited. With ``whole_traces``, traces
        held by several sources are worked on whole, in a source of their own (visited first)
        that the other sources' ``excluded`` names. ``progress(results so far, every
        source)`` is told after each round."""
        asked = self.query_memory_limit(tenant)
        limit = min(asked, self.resources.memory_limit)
        key = "overrides.read.query_memory_limit" if asked <= limit else "querier.memory_limit"
        guard = _Guard(self.query_timeout(tenant), limit, key)
        with guard, self.admission.run(tenant, limit, guard.check) as db:
            sources = self._sources(tenant, start_ns, end_ns)
            if whole_traces:
                sources = self._whole_traces(tenant, sources)
            return self._visit(db, sources, guard, work, enough, progress)

    def _visit(
        self,
        db: duckdb.DuckDBPyConnection,
        sources: list[Source],
        guard: _Guard,
        work: Callable[[SourceCursor, Source], T],
        enough: Callable[[list[tuple[Source, T]], Source], bool] | None,
        progress: Progress[T] | None = None,
    ) -> list[tuple[Source, T]]:
        workers = max(1, min(len(sources), self.resources.threads))

        def run(source: Source) -> tuple[Source, T]:
            guard.check()
            source = source.prepared()
            con = db.cursor()
            guard.watch(con)
            try:
                guard.check()
                if source.live is not None:
                    con.register(LIVE, source.live)
                if source.excluded is not None:
                    con.register(EXCLUDED, source.excluded)
                return source, work(SourceCursor(con, source.columns), source)
            finally:
                guard.unwatch(con)
                con.close()

        done: list[tuple[Source, T]] = []
        if workers == 1:
            for s in sources:
                if enough is not None and done and enough(done, s):
                    break
                done.append(run(s))
                if progress is not None:
                    progress(done, sources)
            return done
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="query") as pool:
            if enough is None and progress is None:
                return list(pool.map(run, sources))
            # the newest source alone first: it often holds the whole answer
            at = 0
            while at < len(sources):
                if enough is not None and done and enough(done, sources[at]):
                    break
                step = 1 if at == 0 else workers
                done.extend(pool.map(run, sources[at : at + step]))
                at += step
                if progress is not None:
                    progress(done, sources)
            return done


def not_excluded(source: Source) -> str:
    """SQL true on the rows of ``source`` whose trace is not answered whole elsewhere (its
    ``excluded``, registered as EXCLUDED)."""
    if source.excluded is None:
        return "true"
    return f"trace_id NOT IN (SELECT trace_id FROM {EXCLUDED})"


@dataclass(slots=True)
class Inspected:
    """What a query read, for its answer's metrics: bytes, sources (its jobs), blocks and
    their bytes."""

    bytes: int = 0
    jobs: int = 0
    blocks: int = 0
    block_bytes: int = 0

    def add(self, source: Source) -> None:
        self.bytes += source.nbytes
        self.jobs += 1
        if source.block is not None:
            self.blocks += 1
            self.block_bytes += source.nbytes

    def __add__(self, other: Inspected) -> Inspected:
        return Inspected(
            self.bytes + other.bytes,
            self.jobs + other.jobs,
            self.blocks + other.blocks,
            self.block_bytes + other.block_bytes,
        )


class QueryLimitError(Exception):
    """A query stopped by a limit; the message names the limit (answered 400)."""


def _size(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


class _Guard:
    """One query's limits while it runs: past its time limit its DuckDB cursors are
    interrupted and it ends with a QueryLimitError; so does a query that ran out of memory."""

    def __init__(self, timeout: float, memory_limit: int, memory_key: str) -> None:
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.memory_key = memory_key  # the config key that set memory_limit
        self._lock = threading.Lock()
        self._cursors: set[duckdb.DuckDBPyConnection] = set()
        self._expired = threading.Event()
        self._done = threading.Event()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Guard:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        self._timer.cancel()
        self._done.set()
        if error is None:
            return  # finished (an interrupt always ends the query with an error)
        if self._expired.is_set():
            raise QueryLimitError(
                f"the query ran longer than {self.timeout:g}s and was stopped (limit "
                "overrides.read.query_timeout): narrow its time range or make it more selective"
            ) from None
        if isinstance(error, duckdb.OutOfMemoryException) or "Out of Memory" in str(error):
            raise QueryLimitError(
                f"the query needs more memory than the {_size(self.memory_limit)} it may use "
                f"(limit {self.memory_key}): narrow its time range or make it more selective"
            ) from None

    def _expire(self) -> None:
        """Interrupt the query's cursors, again and again until it ends: an interrupt that
        comes before a statement starts does not stop that statement."""
        self._expired.set()
        while True:
            with self._lock:
                for con in self._cursors:
                    con.interrupt()
            if self._done.wait(0.02):
                return

    def check(self) -> None:
        if self._expired.is_set():
            raise QueryLimitError("query timed out")  # replaced on the way out

    def watch(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._cursors.add(con)

    def unwatch(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._cursors.discard(con)
