"""Load for the ingest benchmarks: paced HTTP posting, load processes, server sampling.

Each benchmark's load process builds its own pre-serialized templates, waits for the common
start (``wait_for_start``) and sends for ``seconds``; ``run_clients`` starts those processes,
samples the server every second while they run (RSS, spans received, spans in blocks) and
collects what they acknowledged.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from server import BenchServer

RECEIVED = "threadline_distributor_spans_received_total"
WRITTEN = "threadline_ingester_block_spans_written_total"


class Body(Protocol):
    spans: int

    def fresh_copy(self) -> bytes: ...


class Pacer:
    """Spreads requests evenly at ``rate`` spans per second (no pacing when ``rate`` is 0)."""

    def __init__(self, rate: float = 0) -> None:
        self.rate = rate
        self.next_at = time.monotonic()

    async def wait(self, spans: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        slot = self.next_at = max(self.next_at, now - 1.0)  # no bursts after a stall
        self.next_at += spans / self.rate
        if slot > now:
            await asyncio.sleep(slot - now)


async def http_load(
    url: str,
    tpls: Sequence[Body],
    until: float,
    inflight: int,
    headers: dict[str, str],
    accepted: int,
    pacer: Pacer | None = None,
) -> int:
    """POST fresh copies of ``tpls`` with ``inflight`` requests at a time until ``until``;
    returns the spans acknowledged (status ``accepted``). A 503 is retried a little later, as
    exporters do; any other status fails the run."""
    import aiohttp

    pacer = pacer or Pacer()
    acked = 0
    async with aiohttp.ClientSession() as session:

        async def worker(k: int) -> None:
            nonlocal acked
            i = k
            while time.monotonic() < until:
                tpl = tpls[i % len(tpls)]
                await pacer.wait(tpl.spans)
                async with session.post(url, data=tpl.fresh_copy(), headers=headers) as r:
                    if r.status == 503:
                        await asyncio.sleep(0.2)
                        continue
                    if r.status != accepted:
                        raise RuntimeError(f"push failed: {r.status} {await r.text()}")
                acked += tpl.spans
                i += inflight

        await asyncio.gather(*(worker(k) for k in range(inflight)))
    return acked


def wait_for_start(start_at: float, seconds: float) -> float:
    """Sleep until the common start (wall clock); the monotonic time the load must stop."""
    while time.time() < start_at:
        time.sleep(0.01)
    return time.monotonic() + seconds


@dataclass
class LoadRun:
    acked: int
    elapsed: float
    cpu_percent: int
    rss: list[int]
    samples: list[tuple[float, float, float]]  # (time, spans received, spans in blocks)


def run_clients(
    server: BenchServer,
    target: Callable[..., None],
    args: Callable[[int], tuple[Any, ...]],
    clients: int,
    seconds: float,
    warmup: float = 15,
) -> LoadRun:
    """Run ``target(*args(seed), start_at, seconds, queue)`` in ``clients`` processes; each puts
    the spans it got acknowledged on the queue. ``warmup``: seconds for them to get ready."""
    q: mp.Queue = mp.Queue()
    start_at = time.time() + warmup
    loaders = [
        mp.Process(target=target, args=(*args(seed), start_at, seconds, q))
        for seed in range(clients)
    ]
    for p in loaders:
        p.start()
    while time.time() < start_at:
        time.sleep(0.01)
    proc = server.process()
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    rss: list[int] = []
    samples: list[tuple[float, float, float]] = []
    while any(p.is_alive() for p in loaders) and time.monotonic() - t0 < seconds + 60:
        time.sleep(1.0)
        rss.append(proc.memory_info().rss)
        samples.append((time.monotonic(), server.metric(RECEIVED), server.metric(WRITTEN)))
    elapsed = time.monotonic() - t0
    cpu1 = proc.cpu_times()
    acked = sum(q.get() for _ in loaders)
    for p in loaders:
        p.join()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return LoadRun(acked, elapsed, round(100 * cpu / elapsed), rss, samples)
