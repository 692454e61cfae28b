"""The server's own Prometheus metrics (``/metrics``), one registry per running app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SelfMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.spans_received = Counter(
            "threadline_distributor_spans_received",
            "Spans accepted by the distributor.",
            ["tenant", "protocol"],
            registry=r,
        )
        self.bytes_received = Counter(
            "threadline_distributor_bytes_received",
            "Request bytes received by the distributor (after decompression).",
            ["tenant", "protocol"],
            registry=r,
        )
        self.log_lines_received = Counter(
            "threadline_distributor_log_lines_received",
            "Log lines accepted, by tenant and protocol.",
            ["tenant", "protocol"],
            registry=r,
        )
        self.log_lines_refused = Counter(
            "threadline_discarded_log_lines",
            "Log lines refused, by reason.",
            ["tenant", "reason"],
            registry=r,
        )
        self.spans_refused = Counter(
            "threadline_discarded_spans",
            "Spans refused, by reason.",
            ["tenant", "reason"],
            registry=r,
        )
        self.attributes_truncated = Counter(
            "threadline_distributor_attributes_truncated",
            "Attribute keys and values cut to ingestion.max_attribute_bytes, per tenant.",
            ["tenant"],
            registry=r,
        )
        self.requests_refused = Counter(
            "threadline_receiver_refused_requests",
            "Requests refused whole, by protocol and reason.",
            ["protocol", "reason"],
            registry=r,
        )
        self.wal_fsync_seconds = Histogram(
            "threadline_wal_fsync_duration_seconds",
            "Time of one WAL group-commit fsync.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.wal_failures = Counter(
            "threadline_wal_failures",
            "WAL writes and fsyncs that failed (disk full, I/O error); their pushes were refused.",
            ["op"],
            registry=r,
        )
        self.inflight_bytes = Gauge(
            "threadline_distributor_inflight_bytes",
            "Bytes of push requests being decoded or pushed (distributor.max_inflight_bytes).",
            registry=r,
        )
        self.wal_replayed_records = Counter(
            "threadline_wal_replayed_records", "WAL records replayed at start.", registry=r
        )
        self.blocks_written = Counter(
            "threadline_ingester_blocks_written",
            "Blocks written by the ingester.",
            ["tenant"],
            registry=r,
        )
        self.block_spans_written = Counter(
            "threadline_ingester_block_spans_written",
            "Spans written into blocks.",
            ["tenant"],
            registry=r,
        )
        self.live_traces = Gauge(
            "threadline_ingester_live_traces",
            "Traces held in memory (live and not yet in a written block).",
            ["tenant"],
            registry=r,
        )
        self.live_bytes = Gauge(
            "threadline_ingester_live_bytes",
            "Bytes of span rows held in memory.",
            ["tenant"],
            registry=r,
        )
