"""The metrics generator: per-tenant processors fed by the distributor, and their upkeep.

Owns: ``MetricsGenerator.consume`` (the distributor's ``BatchConsumer``: every durable batch of
a tenant whose processors are on goes through that tenant's span-metrics and service-graphs
processors, on the event loop, columnar; a processor error is logged and counted, never passed
to the push). Batches are not processed one by one: a tenant's batches are held until they
reach ``batch_rows`` spans or ``max_delay`` has passed, then the columns the processors read
are concatenated and processed at once, so the fixed cost of each Arrow/numpy call is shared
by many spans (series are at most ``max_delay`` late; exposition, collection and the expiry
sweep process what is held first). Also owns the background tasks (expiry sweep of pending
service-graph edges; collection of every series into the remote-write queues each
``collection_interval``, with stale-series removal; one sending task per remote-write
endpoint), the exposition of a tenant's series, and the generator's self-metrics on the
server's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Sequence

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Gauge

from threadline.config import MetricsGeneratorConfig
from threadline.generator.registry import Registry
from threadline.generator.remote_write import RemoteWriter, cancel
from threadline.generator.service_graphs import GraphStats, ServiceGraphsProcessor
from threadline.generator.span_metrics import SpanMetricsProcessor

log = logging.getLogger(__name__)

INSTANCE_LABEL = "__metrics_gen_instance"
SPAN_METRICS = "span-metrics"
SERVICE_GRAPHS = "service-graphs"


class GeneratorSelfMetrics:
    """The generator's own counters, registered in the server's self-metrics registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.spans = Counter(
            "threadline_generator_spans_received",
            "Spans handed to the metrics generator.",
            ["tenant"],
            registry=r,
        )
        self.consume_seconds = Counter(
            "threadline_generator_consume_seconds",
            "CPU time the generator's processors spent (on the event loop thread).",
            ["tenant"],
            registry=r,
        )
        self.errors = Counter(
            "threadline_generator_processor_errors",
            "Batches a processor failed on (logged; the push itself succeeded).",
            ["tenant"],
            registry=r,
        )
        self.edges = Counter(
            "threadline_generator_service_graph_edges",
            "Edges opened in the pending store (one half waiting for the other).",
            ["tenant"],
            registry=r,
        )
        self.expired_edges = Counter(
            "threadline_generator_service_graph_expired_edges",
            "Pending edges that expired before their counterpart came, by the side present.",
            ["tenant", "side"],
            registry=r,
        )
        self.dropped_spans = Counter(
            "threadline_generator_service_graph_dropped_spans",
            "Spans dropped because the pending-edge store was full.",
            ["tenant"],
            registry=r,
        )
        self.active_series = Gauge(
            "threadline_generator_active_series",
            "Generated series held.",
            ["tenant"],
            registry=r,
        )
        self.removed_series = Counter(
            "threadline_generator_stale_series_removed",
            "Series removed after stale_duration without updates.",
            ["tenant"],
            registry=r,
        )
        self.rw_sent = Counter(
            "threadline_generator_remote_write_samples_sent",
            "Samples accepted by a remote-write endpoint.",
            ["remote"],
            registry=r,
        )
        self.rw_dropped = Counter(
            "threadline_generator_remote_write_samples_dropped",
            "Samples given up on: queue_full, retries_exhausted, rejected, shutdown.",
            ["remote", "reason"],
            registry=r,
        )
        self.rw_failed = Counter(
            "threadline_generator_remote_write_failed_requests",
            "Remote-write requests that failed (each attempt), by reason.",
            ["remote", "reason"],
            registry=r,
        )
        self.rw_queue = Gauge(
            "threadline_generator_remote_write_queue_samples",
            "Samples waiting in a remote-write queue.",
            ["remote"],
            registry=r,
        )

    # the WriterMetrics protocol
    def sent(self, remote: str, samples: int) -> None:
        self.rw_sent.labels(remote).inc(samples)

    def dropped(self, remote: str, reason: str, samples: int) -> None:
        self.rw_dropped.labels(remote, reason).inc(samples)

    def failed_request(self, remote: str, reason: str) -> None:
        self.rw_failed.labels(remote, reason).inc()

    def queue_size(self, remote: str, samples: int) -> None:
        self.rw_queue.labels(remote).set(samples)


# the columns the processors read (batches held together are concatenated on these only)
_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "name",
    "kind",
    "flags",
    "duration_nano",
    "status_code",
    "status_message",
    "service_name",
    "dropped_attributes_count",
)
_ATTR_COLUMNS = tuple(
    f"{scope}_attrs_{vtype}"
    for scope in ("resource", "span")
    for vtype in ("str", "int", "float", "bool", "raw")
)


def combine(batches: Sequence[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """The processors' columns of ``batches`` as one batch (per schema, should they differ)."""
    if len(batches) == 1:
        return list(batches)
    out: list[pa.RecordBatch] = []
    group: list[pa.RecordBatch] = []
    for batch in batches:
        if group and not batch.schema.equals(group[0].schema):
            out.append(_concat(group))
            group = []
        group.append(batch)
    out.append(_concat(group))
    return out


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    names = [c for c in (*_SPAN_COLUMNS, *_ATTR_COLUMNS) if c in batches[0].schema.names]
    table = pa.Table.from_batches([b.select(names) for b in batches]).combine_chunks()
    return pa.RecordBatch.from_arrays(
        [
            col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)
            for col in table.columns
        ],
        names=names,
    )


class TenantGenerator:
    """One tenant's registry and processors, and the batches held for them."""

    def __init__(
        self,
        tenant: str,
        processors: Sequence[str],
        cfg: MetricsGeneratorConfig,
        metrics: GeneratorSelfMetrics,
        batch_rows: int = 8192,
    ) -> None:
        self.tenant = tenant
        self.batch_rows = batch_rows
        self.held: list[pa.RecordBatch] = []
        self.held_rows = 0
        self.registry = Registry(cfg.registry.max_active_series)
        self.span_metrics: SpanMetricsProcessor | None = None
        self.service_graphs: ServiceGraphsProcessor | None = None
        if SPAN_METRICS in processors:
            self.span_metrics = SpanMetricsProcessor(cfg.processor.span_metrics, self.registry)
        if SERVICE_GRAPHS in processors:
            stats = GraphStats(
                edges=metrics.edges.labels(tenant),
                expired_client=metrics.expired_edges.labels(tenant, "client"),
                expired_server=metrics.expired_edges.labels(tenant, "server"),
                dropped_spans=metrics.dropped_spans.labels(tenant),
            )
            self.service_graphs = ServiceGraphsProcessor(
                cfg.processor.service_graphs, self.registry, stats
            )
        self.spans = metrics.spans.labels(tenant)
        self.consume_seconds = metrics.consume_seconds.labels(tenant)
        self.errors = metrics.errors.labels(tenant)

    def consume(self, batch: pa.RecordBatch) -> bool:
        """Hold ``batch``; process what is held once it reaches ``batch_rows`` spans. Returns
        whether batches are still held (then the caller arranges a later ``flush``)."""
        self.held.append(batch)
        self.held_rows += batch.num_rows
        if self.held_rows >= self.batch_rows:
            self.flush()
        return bool(self.held)

    def flush(self) -> None:
        """Process the held batches."""
        if not self.held:
            return
        t0 = time.thread_time()
        held, rows = self.held, self.held_rows
        self.held, self.held_rows = [], 0
        now = time.time()
        try:
            batches = combine(held)
        except Exception:
            self.errors.inc()
            log.exception("generator could not combine batches of tenant %s", self.tenant)
            batches = held
        for batch in batches:
            for processor in (self.span_metrics, self.service_graphs):
                if processor is None:
                    continue
                try:
                    processor.consume(batch, now)
                except Exception:
                    self.errors.inc()
                    log.exception("generator %s failed on tenant %s", processor, self.tenant)
        self.spans.inc(rows)
        self.consume_seconds.inc(time.thread_time() - t0)

    def expire(self) -> None:
        self.flush()
        if self.service_graphs is not None:
            try:
                self.service_graphs.expire(time.time())
            except Exception:
                self.errors.inc()
                log.exception("service-graph expiry failed for tenant %s", self.tenant)


class MetricsGenerator:
    """All tenants' generators; ``consume`` is the distributor's BatchConsumer."""

    def __init__(
        self,
        cfg: MetricsGeneratorConfig,
        self_registry: CollectorRegistry | None = None,
        instance: str | None = None,
        batch_rows: int = 8192,
        max_delay: float = 0.1,
    ) -> None:
        self.cfg = cfg
        self.batch_rows = batch_rows
        self.max_delay = max_delay
        self._flush_timers: dict[str, asyncio.TimerHandle] = {}
        self.instance = instance or socket.gethostname()
        self.metrics = GeneratorSelfMetrics(self_registry)
        self.tenants: dict[str, TenantGenerator] = {}
        storage = cfg.storage
        self.writers = [
            RemoteWriter(rw, storage.remote_write_add_org_id_header, self.metrics)
            for rw in storage.remote_write
        ]
        extra = {**cfg.registry.external_labels, INSTANCE_LABEL: self.instance}
        self.extra_labels = tuple(sorted(extra.items()))
        self._tasks: list[asyncio.Task[None]] = []
        self._writer_tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    @property
    def enabled(self) -> bool:
        """Whether any tenant can have processors (else nothing needs to be registered)."""
        return bool(self.cfg.processors) or any(o.processors for o in self.cfg.overrides.values())

    def processors_for(self, tenant: str) -> list[str]:
        override = self.cfg.overrides.get(tenant)
        if override is not None and override.processors is not None:
            return list(override.processors)
        return list(self.cfg.processors)

    def tenant(self, tenant: str) -> TenantGenerator | None:
        """The tenant's generator, made on first use; None when its processors are off."""
        gen = self.tenants.get(tenant)
        if gen is None:
            processors = self.processors_for(tenant)
            if not processors:
                return None
            gen = TenantGenerator(tenant, processors, self.cfg, self.metrics, self.batch_rows)
            self.tenants[tenant] = gen
        return gen

    def consume(self, tenant: str, batch: pa.RecordBatch) -> None:
        gen = self.tenants.get(tenant) or self.tenant(tenant)
        if gen is None or not gen.consume(batch) or tenant in self._flush_timers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (direct use): held until flush() or render()
            return
        self._flush_timers[tenant] = loop.call_later(self.max_delay, self._timed_flush, tenant)

    def _timed_flush(self, tenant: str) -> None:
        self._flush_timers.pop(tenant, None)
        gen = self.tenants.get(tenant)
        if gen is not None:
            gen.flush()

    def flush(self) -> None:
        """Process every tenant's held batches now."""
        for timer in self._flush_timers.values():
            timer.cancel()
        self._flush_timers.clear()
        for gen in list(self.tenants.values()):
            gen.flush()

    def render(self, tenant: str, openmetrics: bool = False) -> str:
        gen = self.tenants.get(tenant)
        if gen is None:
            return "# EOF\n" if openmetrics else ""
        gen.flush()
        return gen.registry.render(openmetrics) or ("# EOF\n" if openmetrics else "")

    # -- upkeep ----------------------------------------------------------------------------

    def sweep(self) -> None:
        for gen in list(self.tenants.values()):
            gen.expire()

    def collect(self) -> int:
        """Drop stale series, then queue every series for remote write; returns series queued."""
        now = time.time()
        cutoff = now - self.cfg.registry.stale_duration
        now_ms = int(now * 1000)
        queued = 0
        for tenant, gen in list(self.tenants.items()):
            gen.flush()
            removed = gen.registry.purge(cutoff)
            if removed:
                self.metrics.removed_series.labels(tenant).inc(removed)
            self.metrics.active_series.labels(tenant).set(gen.registry.active_series)
            if not self.writers:
                continue
            series = gen.registry.collect(now_ms, self.extra_labels)
            for writer in self.writers:
                writer.enqueue(tenant, series)
            queued += len(series)
        return queued

    async def _every(self, seconds: float, work: str) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
            if self._stopping.is_set():
                return
            try:
                self.sweep() if work == "sweep" else self.collect()
            except Exception:
                log.exception("generator %s failed", work)

    async def start(self) -> None:
        if not self.enabled:
            return
        wait = self.cfg.processor.service_graphs.wait
        sweep_every = min(2.0, max(wait / 2, 0.05))
        self._tasks.append(asyncio.create_task(self._every(sweep_every, "sweep")))
        self._tasks.append(
            asyncio.create_task(self._every(self.cfg.registry.collection_interval, "collect"))
        )
        self._writer_tasks = [asyncio.create_task(w.run()) for w in self.writers]

    async def stop(self) -> None:
        """Stop the loops; queue a last collection and give the writers
        ``remote_write_flush_deadline`` to send what is queued."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for task in self._tasks:
            await cancel(task)
        self.flush()
        if not self._writer_tasks:
            return
        try:
            self.collect()
        except Exception:
            log.exception("generator final collection failed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.storage.remote_write_flush_deadline
        for writer in self.writers:
            writer.stopping(deadline)
        _, late = await asyncio.wait(
            self._writer_tasks, timeout=self.cfg.storage.remote_write_flush_deadline + 1.0
        )
        for task in late:
            await cancel(task)
