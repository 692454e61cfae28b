"""OpenCensus receiver: the agent's ``opencensus.proto.agent.trace.v1.TraceService/Export``.

Off unless ``distributor.receivers.opencensus.port`` (``--opencensus-port``) is set; the
OpenCensus agent's usual port is 55678. ``Export`` is a bidirectional stream: the client sends
``ExportTraceServiceRequest`` messages (the first one with a ``node``; later ones may leave out
``node`` and ``resource`` and keep the previous ones), and gets one empty
``ExportTraceServiceResponse`` per message, written only once that message's spans are in the
WAL (fsynced), like every other receiver's answer. ``Config`` is not offered (UNIMPLEMENTED),
as in the OpenTelemetry Collector.

Each message is translated to OTLP at the edge (``threadline.model.opencensus``) and pushed to
the distributor. As for the other gRPC receivers (``RawGrpcReceiver``): the tenant comes from
``x-scope-orgid`` metadata and the credential from ``authorization`` (both read once per
stream), a stream counts as one call for ``distributor.max_concurrent_rpcs``, each message is
held to ``distributor.max_request_bytes``, and errors end the stream with a status: a message
that does not decode or a first message without ``node`` → INVALID_ARGUMENT, too large or
over a limit → RESOURCE_EXHAUSTED, WAL unavailable or overloaded → UNAVAILABLE. Messages
acknowledged before the error are kept.

On a graceful stop, streams waiting for their next message end at once (status OK) and a
message being handled is finished and acknowledged first, so long-lived exporter streams do not
hold the stop for ``server.graceful_shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from threadline.distributor.distributor import Distributor
from threadline.model.opencensus import (
    TRACE_SERVICE,
    ExportStream,
    ExportTraceServiceResponse,
    ProtocolViolation,
)
from threadline.receivers.grpc_receiver import RawGrpcReceiver

PROTOCOL = "opencensus"
_EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()
# messages larger than this are translated in a worker thread (per-span Python work), so
# the event loop keeps serving other calls meanwhile
_THREAD_BYTES = 64 * 2**10


class OpenCensusReceiver(RawGrpcReceiver):
    """``TraceService/Export`` as a stream of raw message bytes."""

    service = TRACE_SERVICE
    method = "Export"
    protocol = PROTOCOL

    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        super().__init__(distributor, multitenancy_enabled, max_request_bytes)
        self._stopping = asyncio.Event()

    async def _export(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> None:
        # the shared admission of a call (concurrency limit, tenant, credentials), which then
        # runs ``handle`` for the whole stream; messages are read through ``context.read``
        await self._call(b"", context)

    async def handle(self, request: bytes, tenant: str, context: grpc.aio.ServicerContext) -> bytes:
        stream = ExportStream()
        while (message := await self._next(context)) is not None:
            if len(message) > self.max_request_bytes:
                await self.refuse(
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "too_large",
                    f"message of {len(message)} bytes is over the limit of "
                    f"{self.max_request_bytes} bytes",
                )
            try:
                if len(message) > _THREAD_BYTES:
                    otlp, count = await asyncio.to_thread(stream.translate, message)
                else:
                    otlp, count = stream.translate(message)
            except ProtocolViolation as e:
                await self.refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "no_node", str(e))
            except ValueError as e:
                await self.refuse(
                    context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_protobuf", str(e)
                )
            if count:
                await self.push(tenant, otlp, context)
            await context.write(_EMPTY_RESPONSE)
        return b""

    async def _next(self, context: grpc.aio.ServicerContext) -> bytes | None:
        """The stream's next message; None at its end or when the receiver stops."""
        if self._stopping.is_set():
            return None
        read = asyncio.ensure_future(context.read())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((read, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not read.done():
                read.cancel()
                read.add_done_callback(_retrieve)
        if read.cancelled() or not read.done():
            return None
        message = read.result()
        return None if message is grpc.aio.EOF else message

    def method_handler(self) -> grpc.RpcMethodHandler:
        return grpc.stream_stream_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=None
        )

    async def stop(self, grace: float = 2.0) -> None:
        """Idle streams end now; a message being handled gets ``grace`` seconds to finish."""
        self._stopping.set()
        await super().stop(grace)


def _retrieve(task: asyncio.Future[object]) -> None:
    """Take the outcome of a read given up at stop, so that asyncio does not report it."""
    if not task.cancelled():
        task.exception()
