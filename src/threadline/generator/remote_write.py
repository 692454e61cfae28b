"""Prometheus remote write (protocol 1.0) for the generated series.

Owns: the ``prometheus.WriteRequest`` message classes (declared field by field from the public
remote-write spec and built from descriptors at import, in a private descriptor pool), encoding
time series into a snappy-compressed request, and ``RemoteWriter``: one endpoint's bounded
in-memory queue (the oldest samples are dropped past ``capacity``) drained by a background task
that sends requests of at most ``max_samples_per_send`` samples, one tenant per request
(``X-Scope-OrgID``), retrying 5xx/429/connection errors with exponential backoff up to
``max_retries``. Enqueuing never waits, so a slow or dead endpoint cannot hold up ingest; every
sample that is given up on is counted in ``threadline_generator_remote_write_samples_dropped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp
import cramjam

from threadline.config import RemoteWriteConfig
from threadline.generator.registry import TRACE_ID_LABEL, TimeSeries
from threadline.model.protodesc import OPTIONAL, REPEATED, F, declare
from threadline.tenancy import HEADER

log = logging.getLogger(__name__)

_OPTIONAL, _REPEATED = OPTIONAL, REPEATED

# message name -> [(field name, number, type, label, type name)], numbers as Prometheus'
# prompb/types.proto and remote.proto (native histograms, field 4, are never sent)
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "WriteRequest": [
        ("timeseries", 1, F.TYPE_MESSAGE, _REPEATED, ".prometheus.TimeSeries"),
    ],
    "TimeSeries": [
        ("labels", 1, F.TYPE_MESSAGE, _REPEATED, ".prometheus.Label"),
        ("samples", 2, F.TYPE_MESSAGE, _REPEATED, ".prometheus.Sample"),
        ("exemplars", 3, F.TYPE_MESSAGE, _REPEATED, ".prometheus.Exemplar"),
    ],
    "Label": [
        ("name", 1, F.TYPE_STRING, _OPTIONAL, ""),
        ("value", 2, F.TYPE_STRING, _OPTIONAL, ""),
    ],
    "Sample": [
        ("value", 1, F.TYPE_DOUBLE, _OPTIONAL, ""),
        ("timestamp", 2, F.TYPE_INT64, _OPTIONAL, ""),
    ],
    "Exemplar": [
        ("labels", 1, F.TYPE_MESSAGE, _REPEATED, ".prometheus.Label"),
        ("value", 2, F.TYPE_DOUBLE, _OPTIONAL, ""),
        ("timestamp", 3, F.TYPE_INT64, _OPTIONAL, ""),
    ],
}


_CLASSES = declare("threadline/prometheus_remote.proto", "prometheus", _MESSAGES)
WriteRequest = _CLASSES["WriteRequest"]

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "threadline-metrics-generator",
}


def encode(series: Sequence[TimeSeries], send_exemplars: bool = True) -> bytes:
    """The snappy-compressed (block format) protobuf ``WriteRequest`` of ``series``."""
    req = WriteRequest()
    for labels, samples, exemplars in series:
        ts = req.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for value, timestamp in samples:
            ts.samples.add(value=value, timestamp=timestamp)
        if send_exemplars:
            for trace_id, value, timestamp in exemplars:
                ex = ts.exemplars.add(value=value, timestamp=timestamp)
                ex.labels.add(name=TRACE_ID_LABEL, value=trace_id)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def decode(body: bytes) -> Any:
    """The ``WriteRequest`` in a snappy-compressed body (tests, debugging)."""
    req = WriteRequest()
    req.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    return req


class WriterMetrics(Protocol):
    """Where a writer counts (the generator's self-metrics, labelled by endpoint)."""

    def sent(self, remote: str, samples: int) -> None: ...
    def dropped(self, remote: str, reason: str, samples: int) -> None: ...
    def failed_request(self, remote: str, reason: str) -> None: ...
    def queue_size(self, remote: str, samples: int) -> None: ...


def _sample_count(series: Sequence[TimeSeries]) -> int:
    return sum(len(s[1]) for s in series)


class RemoteWriter:
    """One remote-write endpoint: a bounded queue and the task that drains it."""

    def __init__(self, cfg: RemoteWriteConfig, add_org_id: bool, metrics: WriterMetrics) -> None:
        self.cfg = cfg
        self.name = cfg.name or cfg.url
        self.add_org_id = add_org_id
        self.metrics = metrics
        self.queue: deque[tuple[str, TimeSeries, int]] = deque()  # tenant, series, samples
        self.queued = 0
        self.sent_samples = 0
        self.dropped_samples = 0
        self._wake = asyncio.Event()
        self._deadline: float | None = None  # loop time after which a stopping writer gives up

    # -- producer side (event loop, never waits) -------------------------------------------

    def enqueue(self, tenant: str, series: Sequence[TimeSeries]) -> None:
        for ts in series:
            count = len(ts[1])
            self.queue.append((tenant, ts, count))
            self.queued += count
        capacity = self.cfg.queue_config.capacity
        dropped = 0
        while self.queued > capacity and self.queue:
            _, _, count = self.queue.popleft()
            self.queued -= count
            dropped += count
        if dropped:
            self._drop("queue_full", dropped)
        self.metrics.queue_size(self.name, self.queued)
        self._wake.set()

    def _drop(self, reason: str, samples: int) -> None:
        self.dropped_samples += samples
        self.metrics.dropped(self.name, reason, samples)

    def _take(self) -> tuple[str, list[TimeSeries], int]:
        """Up to ``max_samples_per_send`` samples of the tenant at the head of the queue."""
        limit = self.cfg.queue_config.max_samples_per_send
        tenant = self.queue[0][0]
        batch: list[TimeSeries] = []
        samples = 0
        while self.queue and self.queue[0][0] == tenant:
            count = self.queue[0][2]
            if batch and samples + count > limit:
                break
            _, ts, _ = self.queue.popleft()
            batch.append(ts)
            samples += count
        self.queued -= samples
        self.metrics.queue_size(self.name, self.queued)
        return tenant, batch, samples

    # -- the sending task ------------------------------------------------------------------

    def stopping(self, deadline: float) -> None:
        """Finish what is queued by loop time ``deadline``, then give up (counted)."""
        self._deadline = deadline
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.cfg.remote_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if not self.queue:
                    if self._deadline is not None:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self._deadline is not None and loop.time() >= self._deadline:
                    self._drop("shutdown", self.queued)
                    self.queue.clear()
                    self.queued = 0
                    self.metrics.queue_size(self.name, 0)
                    return
                tenant, batch, samples = self._take()
                await self._send(session, tenant, batch, samples)

    async def _send(
        self, session: aiohttp.ClientSession, tenant: str, batch: list[TimeSeries], samples: int
    ) -> None:
        loop = asyncio.get_running_loop()
        body = await asyncio.to_thread(encode, batch, self.cfg.send_exemplars)
        headers = {**HEADERS, **self.cfg.headers}
        if self.add_org_id:
            headers[HEADER] = tenant
        q = self.cfg.queue_config
        backoff = q.min_backoff
        for attempt in range(q.max_retries + 1):
            try:
                async with session.post(self.cfg.url, data=body, headers=headers) as resp:
                    if 200 <= resp.status < 300:
                        self.sent_samples += samples
                        self.metrics.sent(self.name, samples)
                        return
                    text = (await resp.text(errors="replace"))[:300]
                    reason = f"http_{resp.status}"
                    if resp.status != 429 and resp.status < 500:
                        self.metrics.failed_request(self.name, reason)
                        log.warning("remote write to %s refused: %s %s", self.name, reason, text)
                        self._drop("rejected", samples)
                        return
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                reason = "connection"
                text = str(e) or type(e).__name__
            self.metrics.failed_request(self.name, reason)
            if attempt == q.max_retries:
                break
            delay = backoff
            if self._deadline is not None:
                delay = min(delay, self._deadline - loop.time())
                if delay <= 0:
                    break
            log.debug(
                "remote write to %s failed (%s %s); retry in %.2fs", self.name, reason, text, delay
            )
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, q.max_backoff)
        log.warning("remote write to %s failed: %s; %d samples dropped", self.name, text, samples)
        self._drop("retries_exhausted", samples)


async def cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
