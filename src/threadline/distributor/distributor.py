"""The distributor: validates a tenant's OTLP spans, counts them and hands them to the ingester.

Receivers call ``push_otlp`` with OTLP protobuf bytes and map its outcome to their protocol:
``InvalidInput`` → HTTP 400 / gRPC INVALID_ARGUMENT; a ``PushResult`` with rejected spans →
an OTLP partial-success response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from threadline.ingester.ingester import Ingester, IngesterBacklogFull
from threadline.model.otlp_decode import decode_export_request
from threadline.selfmetrics import SelfMetrics


class Overloaded(Exception):
    """The spans cannot be taken now (the ingester's backlog is full); clients should retry:
    HTTP 503 / gRPC UNAVAILABLE."""


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
    def __init__(self, ingester: Ingester, metrics: SelfMetrics) -> None:
        self.ingester = ingester
        self.metrics = metrics
        self.consumers: list[BatchConsumer] = []

    def refuse(self, protocol: str, reason: str) -> None:
        """Count a request refused whole (bad body, wrong content type, too large ...)."""
        self.metrics.requests_refused.labels(protocol, reason).inc()

    async def push_otlp(self, tenant: str, data: bytes, protocol: str) -> PushResult:
        self.metrics.bytes_received.labels(tenant, protocol).inc(len(data))
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
