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

from threadline.distributor.limits import LimitExceeded, RateLimiter
from threadline.ingester.ingester import Ingester, IngesterBacklogFull
from threadline.ingester.records import AppliedLimits
from threadline.ingester.wal import WALUnavailable
from threadline.logstore.store import LogBacklogFull, LogStore
from threadline.model.otlp_decode import decode_export_request
from threadline.model.otlp_logs import DecodedLogs
from threadline.model.truncate import truncate_attributes
from threadline.overrides import Overrides
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
        self,
        ingester: Ingester,
        metrics: SelfMetrics,
        inflight_wait: float = INFLIGHT_WAIT,
        overrides: Overrides | None = None,
    ) -> None:
        self.ingester = ingester
        self.metrics = metrics
        self.consumers: list[BatchConsumer] = []
        self.inflight = InflightBudget(
            ingester.cfg.distributor.max_inflight_bytes, metrics.inflight_bytes.set
        )
        self.inflight_wait = inflight_wait
        self.overrides = overrides or Overrides(ingester.cfg.overrides)
        self.rate = RateLimiter()
        self.logs: LogStore | None = None  # set when logs are enabled

    async def push_logs(
        self, tenant: str, decoded: DecodedLogs, nbytes: int, protocol: str
    ) -> PushResult:
        """Store decoded log lines; returns once they are durable (see ``LogStore.push``)."""
        self.metrics.bytes_received.labels(tenant, protocol).inc(nbytes)
        if self.logs is None:
            self.refuse(protocol, "logs_disabled")
            raise InvalidInput(
                "this server does not take logs (logs.enabled is false)", "logs_disabled"
            )
        for reason, count in decoded.rejected.items():
            self.metrics.log_lines_refused.labels(tenant, reason).inc(count)
        batch = decoded.batch
        if batch.num_rows == 0 and decoded.rejected_count:
            self.refuse(protocol, "all_lines_invalid")
            raise InvalidInput(
                f"all {decoded.rejected_count} log records were rejected: {decoded.first_error}",
                "all_lines_invalid",
            )
        async with self.admit(nbytes, protocol):
            try:
                await self.logs.push(tenant, batch)
            except LogBacklogFull as e:
                self.refuse(protocol, "backlog_full")
                raise Overloaded(str(e)) from None
            except WALUnavailable as e:  # disk full or failing: nothing of the push is kept
                self.refuse(protocol, "wal_unavailable")
                raise Overloaded(str(e)) from None
        self.metrics.log_lines_received.labels(tenant, protocol).inc(batch.num_rows)
        message = ""
        if decoded.rejected_count:
            message = (
                f"{decoded.rejected_count} of {decoded.rejected_count + batch.num_rows} log "
                f"records rejected; first: {decoded.first_error}"
            )
        return PushResult(batch.num_rows, decoded.rejected_count, message)

    def refuse(self, protocol: str, reason: str) -> None:
        """Count a request refused whole (bad body, wrong content type, too large ...)."""
        self.metrics.requests_refused.labels(protocol, reason).inc()

    @contextlib.asynccontextmanager
    async def admit(self, nbytes: int, protocol: str, wait: bool = False) -> AsyncIterator[None]:
        """Hold ``nbytes`` of the in-flight budget for the request handled inside (a nested
        ``admit`` or ``push_otlp`` takes only what it needs beyond that, without waiting unless
        ``wait``: for bytes not yet read); raises ``Overloaded`` naming the limit if no room came
        within ``inflight_wait``."""
        task = asyncio.current_task()
        owner, held = _held.get()
        if owner is not task:
            held = 0
        extra = max(0, nbytes - held)
        if held and not wait:
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
        batch = decoded.batch
        if batch.num_rows == 0 and decoded.rejected_count:
            self.refuse(protocol, "all_spans_invalid")
            raise InvalidInput(
                f"all {decoded.rejected_count} spans were rejected: {decoded.first_error}",
                "all_spans_invalid",
            )
        limited, applied, limited_why = self._limit(tenant, data, batch, protocol)
        if limited.num_rows:
            try:
                await self.ingester.push(tenant, data, limited, applied)
            except IngesterBacklogFull as e:
                self.refuse(protocol, "backlog_full")
                raise Overloaded(str(e)) from None
            except WALUnavailable as e:  # disk full or failing: nothing of the push is kept
                self.refuse(protocol, "wal_unavailable")
                raise Overloaded(str(e)) from None
            self.metrics.spans_received.labels(tenant, protocol).inc(limited.num_rows)
            for consume in self.consumers:
                consume(tenant, limited)
        refused = decoded.rejected_count + batch.num_rows - limited.num_rows
        message = ""
        if refused:
            first = decoded.first_error or limited_why
            message = (
                f"{refused} of {decoded.rejected_count + batch.num_rows} spans rejected; "
                f"first: {first}"
            )
        return PushResult(limited.num_rows, refused, message)

    def _limit(
        self, tenant: str, data: bytes, batch: pa.RecordBatch, protocol: str
    ) -> tuple[pa.RecordBatch, AppliedLimits | None, str]:
        """The tenant's limits applied to a push: refused whole (``LimitExceeded``, counted) or
        cut to the spans and attribute lengths they allow; with what was applied (for the WAL)
        and why spans were refused."""
        limits = self.overrides.limits(tenant)
        ing = limits.ingestion
        spans = batch.num_rows

        def refuse(reason: str, message: str) -> LimitExceeded:
            self.refuse(protocol, reason)
            self.metrics.spans_refused.labels(tenant, reason).inc(spans)
            return LimitExceeded(message, reason)

        if not self.rate.allow(tenant, len(data), ing.rate_limit_bytes, ing.burst_size_bytes):
            raise refuse(
                "rate_limited",
                f"ingestion rate limit of tenant {tenant!r} exceeded: {len(data)} bytes over "
                f"ingestion.rate_limit_bytes = {ing.rate_limit_bytes} bytes/s "
                f"(burst_size_bytes = {ing.burst_size_bytes}); retry later",
            )
        if ing.max_spans_per_request and spans > ing.max_spans_per_request:
            raise refuse(
                "too_many_spans",
                f"the request holds {spans} spans, over ingestion.max_spans_per_request = "
                f"{ing.max_spans_per_request} of tenant {tenant!r}; send smaller batches",
            )
        admitted = self.ingester.admit(
            tenant, batch.column("trace_id"), len(data) / max(spans, 1), limits
        )
        keep, why = admitted.keep, ""
        if keep is not None:
            for reason, count in (
                ("trace_too_large", admitted.too_large),
                ("live_traces_exceeded", admitted.too_many_traces),
            ):
                if count:
                    self.metrics.spans_refused.labels(tenant, reason).inc(count)
            if admitted.too_large:
                why = (
                    f"trace too large: a trace of tenant {tenant!r} is over "
                    f"global.max_bytes_per_trace = {limits.global_.max_bytes_per_trace} bytes"
                )
            else:
                why = (
                    f"too many live traces: tenant {tenant!r} has "
                    f"ingestion.max_traces_per_user = {ing.max_traces_per_user} live traces"
                )
            if not keep.any():
                self.refuse(protocol, "trace_limits")
                raise LimitExceeded(why, "trace_limits")
            batch = batch.filter(pa.array(keep))
        batch, truncated = truncate_attributes(batch, ing.max_attribute_bytes)
        if truncated:
            self.metrics.attributes_truncated.labels(tenant).inc(truncated)
        if keep is None and not truncated:
            return batch, None, why
        return batch, AppliedLimits(keep, ing.max_attribute_bytes if truncated else 0), why
