"""Where and when queries run: a pool of DuckDB databases, one query in each at a time, so that
a query's memory limit is its database's own (DuckDB's limit is per database); and a queue in
front of it that takes tenants in turn, so one tenant's burst of queries cannot hold back
another's.

A query waits for a database and for its memory: the limits of the queries running at once add
up to no more than ``querier.memory_limit``, and at most ``querier.max_concurrent_queries`` run
together. The queue is first come, first served within a tenant and round robin across
tenants; the query at the head waits for room rather than being overtaken, so a big query is
never starved by small ones. Databases are reused newest first, so their Parquet footer caches
stay warm.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import duckdb

from threadline.querier import raw_arrays


@dataclass(frozen=True, slots=True)
class QueryResources:
    """What queries may use: DuckDB threads per query, the memory of all queries running at
    once, how many run at once, and where they may spill."""

    memory_limit: int = 2 * 2**30
    spill_dir: str | None = None
    threads: int = 2
    max_concurrent_queries: int = 8


def connect(
    resources: QueryResources, memory_limit: int | None = None
) -> duckdb.DuckDBPyConnection:
    config: dict[str, object] = {
        "threads": resources.threads,
        "memory_limit": f"{(memory_limit or resources.memory_limit) // 2**20}MiB",
    }
    if resources.spill_dir:
        config["temp_directory"] = resources.spill_dir
    con = duckdb.connect(config=config)
    # blocks never change: their parsed footers are kept across queries (a setting of the
    # Parquet extension, which loads on first use)
    con.execute("LOAD parquet; SET GLOBAL parquet_metadata_cache = true")
    # the join-order optimizer took 21 of the 32 ms of a windowed search over a 650 k-span
    # block (planning, not running); the plans as written were as fast or faster for every
    # search and metrics shape measured (bench/search.py)
    con.execute("SET disabled_optimizers = 'join_order'")
    raw_arrays.register(con)
    return con


@dataclass(eq=False, slots=True)
class _Ticket:
    tenant: str
    memory: int
    granted: threading.Event = field(default_factory=threading.Event)
    db: duckdb.DuckDBPyConnection | None = None


class Admission:
    """Runs each query in a database of its own, once there is room for it."""

    def __init__(
        self,
        resources: QueryResources,
        prepare: Callable[[duckdb.DuckDBPyConnection], None] = lambda db: None,
    ) -> None:
        self.resources = resources
        self.prepare = prepare
        self._lock = threading.Lock()
        self._free: list[duckdb.DuckDBPyConnection] = []
        self._limits: dict[int, int] = {}  # id(db) -> its memory limit
        self._made = 0
        self._running = 0
        self._reserved = 0
        self._waiting: dict[str, deque[_Ticket]] = {}
        self._turn: deque[str] = deque()  # tenants with waiting queries, next first

    @contextlib.contextmanager
    def run(
        self, tenant: str, memory: int, stop: Callable[[], None] = lambda: None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A database whose memory limit is ``memory`` (at most ``querier.memory_limit``),
        once the query's turn has come; while it waits, ``stop()`` is called now and then
        and may raise to give up."""
        ticket = _Ticket(tenant, min(memory, self.resources.memory_limit))
        with self._lock:
            queue = self._waiting.setdefault(tenant, deque())
            if not queue:
                self._turn.append(tenant)
            queue.append(ticket)
            self._grant()
        try:
            while not ticket.granted.wait(0.05):
                stop()
        except BaseException:
            with self._lock:
                if not ticket.granted.is_set():
                    self._withdraw(ticket)
                    self._grant()
                    raise
            self._release(ticket)
            raise
        db = ticket.db
        assert db is not None
        try:
            if self._limits.get(id(db)) != ticket.memory:
                db.execute(f"SET memory_limit = '{max(1, ticket.memory // 2**20)}MiB'")
                self._limits[id(db)] = ticket.memory
            yield db
        finally:
            self._release(ticket)

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._waiting.values())

    def _fits(self, ticket: _Ticket) -> bool:
        if self._running >= max(1, self.resources.max_concurrent_queries):
            return False
        return self._running == 0 or self._reserved + ticket.memory <= self.resources.memory_limit

    def _grant(self) -> None:
        """Start the waiting queries there is room for, tenants in turn (lock held)."""
        while self._turn:
            tenant = self._turn[0]
            queue = self._waiting[tenant]
            ticket = queue[0]
            if not self._fits(ticket):
                return
            queue.popleft()
            self._turn.popleft()
            if queue:
                self._turn.append(tenant)
            else:
                del self._waiting[tenant]
            if self._free:
                ticket.db = self._free.pop()
            else:
                ticket.db = connect(self.resources, ticket.memory)
                self._limits[id(ticket.db)] = ticket.memory
                self.prepare(ticket.db)
                self._made += 1
            self._running += 1
            self._reserved += ticket.memory
            ticket.granted.set()

    def _withdraw(self, ticket: _Ticket) -> None:
        """Take a query that gave up out of the queue (lock held)."""
        queue = self._waiting.get(ticket.tenant)
        if queue is None or ticket not in queue:
            return
        queue.remove(ticket)
        if not queue:
            del self._waiting[ticket.tenant]
            self._turn.remove(ticket.tenant)

    def _release(self, ticket: _Ticket) -> None:
        with self._lock:
            assert ticket.db is not None
            self._running -= 1
            self._reserved -= ticket.memory
            self._free.append(ticket.db)  # the newest last: taken first
            ticket.db = None
            self._grant()
