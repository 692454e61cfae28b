"""The distributor: validates a tenant's OTLP spans, counts them and hands them to the ingester.

Receivers call ``push_otlp`` with OTLP protobuf bytes and map its outcome to their protocol:
``InvalidInput`` → HTTP 400 / gRPC INVALID_ARGUMENT; ``Overloaded`` → HTTP 503 / gRPC
UNAVAILABLE; a ``PushResult`` with rejected spans → an OTLP partial-success response.

At most ``distributor.max_inflight_bytes`` of requests are decoded and pushed at once (a request
holds its bytes until the ingester has acknowledged or refused it, including while it waits for
the ingester's backlog): past it a push waits up to ``INFLIGHT_WAIT`` for room, in arrival order,
then is refused as ``Overloaded``. A receiver that reads a body can take the bytes before reading
it (``async with distributor.admit(declared_size, protocol)``), so that bodies waiting for room
are not read into memory either; ``push_otlp`` inside it then takes only what the decoded body
adds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import pyarrow as pa

from threadline.ingester.ingester import Ingester, IngesterBacklogFull
from threadline.ingester.wal import WALUnavailable
from threadline.model.otlp_decode import decode_export_request
from threadline.selfmetrics import SelfMetrics

# how long a push waits for in-flight room before it is refused
INFLIGHT_WAIT = 1.0
# bytes of the in-flight budget that ``admit`` took for a request, and its task (tasks it starts
# inherit the variable, but not the bytes)
_held: ContextVar[tuple[object, int]] = ContextVar("inflight_held", default=(None, 0))


class Overloaded(Exception):
    """The spans cannot be taken now (the ingester's backlog is full, the WAL cannot write, too
    many request bytes in flight); clients should retry: HTTP 503 / gRPC UNAVAILABLE."""


class InflightBudget:
    """Bytes of requests in flight, bounded; waiters get room in arrival order."""

    def __init__(self, limit: int, on_change: Callable[[int], None]) -> None:
        self.limit = limit
        self.used = 0
        self._on_change = on_change
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        # a request larger than the whole budget gets in alone rather than never
        return self.used == 0 or self.used + n <= self.limit

    def add(self, n: int) -> None:
        """Take ``n`` bytes now, room or not."""
        self.used += n
        self._on_change(self.used)

    async def acquire(self, n: int, timeout: float) -> bool:
        """Take ``n`` bytes, waiting up to ``timeout`` for room; False if there was none."""
        if not self._waiters and self._fits(n):
            self.add(n)
            return True
        waiter = (n, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter[1]
        except BaseException as e:
            admitted = waiter[1].done() and not waiter[1].cancelled()
            if admitted and isinstance(e, TimeoutError):
                return True  # room came just as the wait ended
            if admitted:
                self.release(n)
            else:
                self._waiters.remove(waiter)
                self._wake()  # a big waiter gone may let smaller ones behind it in
            if isinstance(e, TimeoutError):
                return False
            raise
        return True

    def release(self, n: int) -> None:
        self.used -= n
        self._on_change(self.used)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            n, fut = self._waiters.popleft()
            if not fut.done():
                self.add(n)
                fut.set_result(None)


class InvalidInput(Exception):
    """The request cannot be accepted at all; the message names what is wrong."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PushResult:
    accepted: int
    rejected: int
    message: str  # "" when every span was accepted


# sees every accepted batch once it is durable: (tenant, span rows)
BatchConsumer = Callable[[str, pa.RecordBatch], None]


class Distributor:
    def __init__(
        self, ingester: Ingester, metrics: SelfMetrics, inflight_wait: float = INFLIGHT_WAIT
    ) -> None:
        self.ingester = ingester
        self.metrics = metrics
        self.consumers: list[BatchConsumer] = []
        self.inflight = InflightBudget(
            ingester.cfg.distributor.max_inflight_bytes, metrics.inflight_bytes.set
        )
        self.inflight_wait = inflight_wait

    def refuse(self, protocol: str, reason: str) -> None:
        """Count a request refused whole (bad body, wrong content type, too large ...)."""
        self.metrics.requests_refused.labels(protocol, reason).inc()

    @contextlib.asynccontextmanager
    async def admit(self, nbytes: int, protocol: str) -> AsyncIterator[None]:
        """Hold ``nbytes`` of the in-flight budget for the request handled inside (a nested
        ``admit`` or ``push_otlp`` takes only what it needs beyond that, without waiting);
        raises ``Overloaded`` naming the limit if no room came within ``inflight_wait``."""
        task = asyncio.current_task()
        owner, held = _held.get()
        if owner is not task:
            held = 0
        extra = max(0, nbytes - held)
        if held:
            self.inflight.add(extra)  # the memory is taken already: count it, don't wait
        elif not await self.inflight.acquire(extra, self.inflight_wait):
            self.refuse(protocol, "inflight_limit")
            raise Overloaded(
                f"too many request bytes in flight: {self.inflight.used} bytes are being "
                f"decoded or pushed (limit distributor.max_inflight_bytes = "
                f"{self.inflight.limit}); retry later"
            )
        token = _held.set((task, held + extra))
        try:
            yield
        finally:
            _held.reset(token)
            self.inflight.release(extra)

    async def push_otlp(self, tenant: str, data: bytes, protocol: str) -> PushResult:
        self.metrics.bytes_received.labels(tenant, protocol).inc(len(data))
        async with self.admit(len(data), protocol):
            return await self._push(tenant, data, protocol)

    async def _push(self, tenant: str, data: bytes, protocol: str) -> PushResult:
        try:
            decoded = decode_export_request(data)
        except ValueError as e:
            self.refuse(protocol, "invalid_protobuf")
            raise InvalidInput(str(e), "invalid_protobuf") from None
        for reason, count in decoded.rejected.items():
            self.metrics.spans_refused.labels(tenant, reason).inc(count)
        accepted = decoded.batch.num_rows
        if accepted == 0 and decoded.rejected_count:
            self.refuse(protocol, "all_spans_invalid")
            raise InvalidInput(
                f"all {decoded.rejected_count} spans were rejected: {decoded.first_error}",
                "all_spans_invalid",
            )
        if accepted:
            try:
                await self.ingester.push(tenant, data, decoded.batch)
            except IngesterBacklogFull as e:
                self.refuse(protocol, "backlog_full")
                raise Overloaded(str(e)) from None
            except WALUnavailable as e:  # disk full or failing: nothing of the push is kept
                self.refuse(protocol, "wal_unavailable")
                raise Overloaded(str(e)) from None
            self.metrics.spans_received.labels(tenant, protocol).inc(accepted)
            for consume in self.consumers:
                consume(tenant, decoded.batch)
        message = ""
        if decoded.rejected_count:
            message = (
                f"{decoded.rejected_count} of {decoded.rejected_count + accepted} spans rejected; "
                f"first: {decoded.first_error}"
            )
        return PushResult(accepted, decoded.rejected_count, message)
