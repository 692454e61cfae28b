"""What a query reads: a tenant's blocks and live data, as DuckDB table expressions.

Blocks are Parquet files that already carry the per-trace columns; live data is the ingester's
in-memory rows, sorted and given the same columns here, then registered with DuckDB as an Arrow
table. Queries are written once against the block schema and run unchanged over both.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import duckdb
import pyarrow as pa

from threadline.ingester.ingester import Ingester
from threadline.model.schema import BLOCK_SCHEMA, SPAN_SCHEMA
from threadline.model.trace_structure import add_trace_columns
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


def live_table(ingester: Ingester | None, tenant: str) -> pa.Table | None:
    """The tenant's in-memory rows with the block columns, or None if there are none."""
    if ingester is None:
        return None
    state = ingester.tenants.get(tenant)
    entries = state.entries() if state is not None else []
    if not entries:
        return None
    table = pa.concat_tables([e.table for e in entries]).select(SPAN_SCHEMA.names)
    table = add_trace_columns(sort_spans(table)).cast(BLOCK_SCHEMA)
    return table.append_column(ROW_NUMBER, pa.array(range(table.num_rows), pa.int64()))


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
    return duckdb.connect(config=config)


class DataSources:
    """A tenant's data for queries: the ingester's live rows and the block list, plus the
    resources a query gets. ``each`` runs a piece of work on every source, blocks in
    parallel, each worker with its own DuckDB connection."""

    def __init__(
        self,
        ingester: Ingester | None,
        blocklist: Blocklist,
        resources: QueryResources | None = None,
    ) -> None:
        self.ingester = ingester
        self.blocklist = blocklist
        self.resources = resources or QueryResources()

    def _sources(
        self, live: pa.Table | None, tenant: str, start_ns: int | None, end_ns: int | None
    ) -> list[Source]:
        """Sources overlapping the window, newest first (live data first of all)."""
        sources = []
        if live is not None:
            sources.append(Source(LIVE, None, live.nbytes, 2**63 - 1))
        for block in sorted(
            self.blocklist.blocks(tenant, start_ns, end_ns),
            key=lambda b: b.meta.end_unix_nano,
            reverse=True,
        ):
            # local blocks are read in place; remote ones in ranges, through the block cache
            path = block_url(block) if block.path is None else str(block.path / DATA_FILE)
            relation = f"read_parquet({_quote(path)}, file_row_number=true)"
            sources.append(Source(relation, block, block.meta.size, block.meta.end_unix_nano))
        return sources

    def each(
        self,
        tenant: str,
        start_ns: int | None,
        end_ns: int | None,
        work: Callable[[duckdb.DuckDBPyConnection, Source], T],
    ) -> list[tuple[Source, T]]:
        """``work(connection, source)`` for every source in the window, in source order."""
        live = live_table(self.ingester, tenant)
        sources = self._sources(live, tenant, start_ns, end_ns)
        workers = max(1, min(len(sources), self.resources.threads))
        each_gets = replace(
            self.resources,
            memory_limit=self.resources.memory_limit // workers,
            threads=max(1, self.resources.threads // workers),
        )

        def run(source: Source) -> tuple[Source, T]:
            con = connect(each_gets)
            try:
                if source.block is None:
                    con.register(LIVE, live)
                elif source.block.remote:
                    con.register_filesystem(BlockFileSystem([source.block]))
                return source, work(con, source)
            finally:
                con.close()

        if workers == 1:
            return [run(s) for s in sources]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="query") as pool:
            return list(pool.map(run, sources))
