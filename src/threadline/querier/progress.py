"""A query run in a worker thread that tells how far it got: its progress reports, as they
come, then its result, as one async stream (the streaming gRPC answers are made from it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

P = TypeVar("P")
R = TypeVar("R")


async def with_progress(run: Callable[[Callable[[P], None]], R]) -> AsyncIterator[P | R]:
    """``run(report)`` in a thread: each ``report(p)`` is yielded, then what ``run``
    returns (or raises)."""
    loop = asyncio.get_running_loop()
    told: asyncio.Queue[P] = asyncio.Queue()

    def report(p: P) -> None:
        loop.call_soon_threadsafe(told.put_nowait, p)

    running = asyncio.ensure_future(asyncio.to_thread(run, report))
    try:
        while not running.done():
            waiting = asyncio.ensure_future(told.get())
            await asyncio.wait({waiting, running}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                yield waiting.result()
            else:
                waiting.cancel()
        # reports scheduled before the end arrive before it
        await asyncio.sleep(0)
        while not told.empty():
            yield told.get_nowait()
        yield running.result()
    finally:
        if not running.done():
            running.cancel()
