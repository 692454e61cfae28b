"""The queue in front of the query databases: tenants in turn, first come first served within
a tenant, a query's memory limit reserved from what all queries may use together, and a query
that gives up while waiting leaves the queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from threadline.querier.admission import Admission, QueryResources

MiB = 2**20


class Held:
    """A query that has started (or is waiting to) and holds its database until let go."""

    def __init__(self, admission: Admission, tenant: str, memory: int, log: list[str]) -> None:
        self.started = threading.Event()
        self.finish = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(admission, tenant, memory, log))
        self.thread.start()

    def _run(self, admission: Admission, tenant: str, memory: int, log: list[str]) -> None:
        try:
            with admission.run(tenant, memory) as db:
                log.append(tenant)
                self.started.set()
                assert db.execute("SELECT 42").fetchone() == (42,)
                self.finish.wait(30)
        except BaseException as e:
            self.error = e

    def done(self) -> None:
        self.finish.set()
        self.thread.join(30)
        assert self.error is None


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not met")


@pytest.fixture
def one_at_a_time() -> Iterator[Admission]:
    yield Admission(QueryResources(memory_limit=64 * MiB, threads=1, max_concurrent_queries=1))


def test_tenants_take_turns(one_at_a_time: Admission) -> None:
    log: list[str] = []
    first = Held(one_at_a_time, "a", MiB, log)
    first.started.wait(10)
    queued: list[Held] = []
    for tenant in ("a", "a", "a", "b", "b", "c"):
        queued.append(Held(one_at_a_time, tenant, MiB, log))
        n = len(queued)
        wait_for(lambda: one_at_a_time.waiting == n)  # noqa: B023 - n is read at once
    first.done()
    while queued:  # let each go once it is the one running
        wait_for(lambda: any(q.started.is_set() for q in queued))
        (running,) = [q for q in queued if q.started.is_set()]
        queued.remove(running)
        running.done()
    # a's burst does not hold back b and c: after a's running query, one each in turn
    assert log == ["a", "a", "b", "c", "a", "b", "a"]


def test_memory_limits_add_up_to_the_total() -> None:
    admission = Admission(QueryResources(memory_limit=64 * MiB, threads=1))
    log: list[str] = []
    big = Held(admission, "a", 40 * MiB, log)
    big.started.wait(10)
    small = Held(admission, "b", 20 * MiB, log)
    small.started.wait(10)  # 40 + 20 fit in 64
    other = Held(admission, "c", 40 * MiB, log)
    wait_for(lambda: admission.waiting == 1)
    assert not other.started.is_set() and admission.running == 2
    big.done()
    other.started.wait(10)
    assert admission.running == 2
    small.done()
    other.done()
    # a limit above the total is cut to it, and such a query runs alone
    huge = Held(admission, "d", 10 * 2**30, log)
    huge.started.wait(10)
    huge.done()
    assert admission.running == 0


def test_a_query_that_gives_up_leaves_the_queue(one_at_a_time: Admission) -> None:
    log: list[str] = []
    first = Held(one_at_a_time, "a", MiB, log)
    first.started.wait(10)
    calls = 0

    class GaveUp(Exception):
        pass

    def stop() -> None:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise GaveUp

    with pytest.raises(GaveUp), one_at_a_time.run("b", MiB, stop):
        pass
    assert one_at_a_time.waiting == 0
    first.done()
    after = Held(one_at_a_time, "c", MiB, log)
    after.started.wait(10)
    after.done()
    assert log == ["a", "c"]


def test_each_query_gets_its_memory_limit_in_its_database() -> None:
    admission = Admission(QueryResources(memory_limit=256 * MiB, threads=1))
    for limit in (100, 30, 100):
        with admission.run("a", limit * MiB) as db:
            (value,) = db.execute("SELECT current_setting('memory_limit')").fetchone()
            assert value.replace(" ", "") in {f"{limit}.0MiB", f"{limit}MiB"}, value
