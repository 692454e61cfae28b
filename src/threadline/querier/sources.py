"""What a query reads: a tenant's blocks and live data, as DuckDB table expressions.

Blocks are Parquet files that already carry the per-trace columns; live data is the ingester's
in-memory rows, sorted and given the same columns here, then registered with DuckDB as an Arrow
table. Queries are written once against the block schema and run unchanged over both.

Set-up is paid once, not per query: one DuckDB database serves every query (its Parquet
footer cache keeps each block's metadata parsed; queries run on cursors of it), and the live
table of a tenant is rebuilt only when the ingester's entries changed since the last query.
Sources are visited newest first, so a search can stop as soon as no unvisited source can
change its answer (``each``'s ``enough``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import duckdb
import pyarrow as pa

from threadline.ingester.ingester import Entry, Ingester
from threadline.model.dedicated import add_dedicated_columns, attribute_keys
from threadline.model.schema import BLOCK_SCHEMA, DEDICATED, SPAN_SCHEMA
from threadline.model.trace_structure import add_trace_columns
from threadline.querier.sql import AttributeColumns, resolve_attributes
from threadline.storage.block_fs import BlockFileSystem, block_url
from threadline.storage.block_reader import DATA_FILE, Block
from threadline.storage.block_writer import sort_spans
from threadline.storage.blocklist import Blocklist

T = TypeVar("T")
LIVE = "live_spans"  # the name live data is registered under
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


def live_table(entries: Sequence[Entry]) -> pa.Table:
    """In-memory entries' rows with the block columns (and the row number)."""
    table = pa.concat_tables([e.table for e in entries]).select(SPAN_SCHEMA.names)
    table = add_dedicated_columns(add_trace_columns(sort_spans(table))).cast(BLOCK_SCHEMA)
    return table.append_column(ROW_NUMBER, pa.array(range(table.num_rows), pa.int64()))


class LiveSnapshots:
    """The newest live table of each tenant, kept until the ingester's entries change (entries
    never change once made; their sequence numbers say which ones a table was built from)."""

    def __init__(self, ingester: Ingester | None) -> None:
        self.ingester = ingester
        self._lock = threading.Lock()
        self._tables: dict[str, tuple[tuple[int, ...], str, pa.Table, AttributeColumns]] = {}
        self._built = itertools.count()

    def get(self, tenant: str) -> tuple[str, pa.Table, AttributeColumns] | None:
        """(snapshot key, table, its attributes) of the tenant's live rows, or None."""
        state = self.ingester.tenants.get(tenant) if self.ingester is not None else None
        entries = state.entries() if state is not None else []
        if not entries:
            with self._lock:
                self._tables.pop(tenant, None)
            return None
        seqs = tuple(e.seq for e in entries)
        with self._lock:
            hit = self._tables.get(tenant)
            if hit is not None and hit[0] == seqs:
                return hit[1:]
        table = live_table(entries)
        key = f"live:{next(self._built)}"
        columns = attribute_columns(attribute_keys(table), _LIVE_DEDICATED)
        with self._lock:
            self._tables[tenant] = (seqs, key, table, columns)
        return key, table, columns


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class QueryResources:
    """What one query may use: DuckDB threads, memory, and where it may spill."""

    memory_limit: int = 2 * 2**30
    spill_dir: str | None = None
    threads: int = 2


def connect(resources: QueryResources) -> duckdb.DuckDBPyConnection:
    config: dict[str, object] = {
        "threads": resources.threads,
        "memory_limit": f"{resources.memory_limit // 2**20}MB",
    }
    if resources.spill_dir:
        config["temp_directory"] = resources.spill_dir
    con = duckdb.connect(config=config)
    # blocks never change: their parsed footers are kept across queries (a setting of the
    # Parquet extension, which loads on first use)
    con.execute("LOAD parquet; SET parquet_metadata_cache = true")
    return con


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
        self._db: duckdb.DuckDBPyConnection | None = None
        self._remote = BlockFileSystem(())
        self._block_columns: dict[str, AttributeColumns] = {}
        self._db_lock = threading.Lock()

    def database(self) -> duckdb.DuckDBPyConnection:
        with self._db_lock:
            if self._db is None:
                self._db = connect(self.resources)
                self._db.register_filesystem(self._remote)
            return self._db

    def _sources(self, tenant: str, start_ns: int | None, end_ns: int | None) -> list[Source]:
        """Sources overlapping the window, newest first (live data first of all)."""
        sources = []
        live = self.live.get(tenant)
        if live is not None:
            key, table, columns = live
            sources.append(Source(LIVE, None, table.nbytes, 2**63 - 1, key, table, columns))
        for block in sorted(
            self.blocklist.blocks(tenant, start_ns, end_ns),
            key=lambda b: b.meta.end_unix_nano,
            reverse=True,
        ):
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
        return sources

    def each(
        self,
        tenant: str,
        start_ns: int | None,
        end_ns: int | None,
        work: Callable[[SourceCursor, Source], T],
        enough: Callable[[list[tuple[Source, T]], Source], bool] | None = None,
    ) -> list[tuple[Source, T]]:
        """``work(cursor, source)`` for every source in the window, in source order (newest
        first). With ``enough``, sources are visited in rounds of as many as run at once, and
        the rest are skipped once ``enough(results so far, next source)`` is true."""
        sources = self._sources(tenant, start_ns, end_ns)
        db = self.database()
        workers = max(1, min(len(sources), self.resources.threads))

        def run(source: Source) -> tuple[Source, T]:
            con = db.cursor()
            try:
                if source.live is not None:
                    con.register(LIVE, source.live)
                return source, work(SourceCursor(con, source.columns), source)
            finally:
                con.close()

        if workers == 1:
            done: list[tuple[Source, T]] = []
            for s in sources:
                if enough is not None and done and enough(done, s):
                    break
                done.append(run(s))
            return done
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="query") as pool:
            if enough is None:
                return list(pool.map(run, sources))
            done = []
            for at in range(0, len(sources), workers):
                if done and enough(done, sources[at]):
                    break
                done.extend(pool.map(run, sources[at : at + workers]))
            return done
