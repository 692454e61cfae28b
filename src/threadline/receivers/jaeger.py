"""Jaeger receivers: thrift over HTTP, the api_v2 gRPC collector and the agent's UDP ports.

Each decodes the Jaeger payload, translates it to an OTLP ``ExportTraceServiceRequest`` at the
edge (``threadline.model.jaeger``) and hands that to the distributor, so nothing downstream
knows the spans came from Jaeger.

* ``POST /api/traces`` (default port 14268): a TBinaryProtocol ``jaeger.Batch`` with
  ``Content-Type: application/x-thrift`` or ``application/vnd.apache.thrift.binary``; answers
  ``202 Accepted`` (empty body). Another content type is 415 (Jaeger itself says 400), a body
  that does not decode is 400 with a plain-text message; a query string is ignored.
* gRPC ``jaeger.api_v2.CollectorService/PostSpans`` (default 14250): answers an empty
  ``PostSpansResponse``; INVALID_ARGUMENT when the request does not decode.
* Agent UDP, compact thrift (6831) and binary thrift (6832): each datagram is a oneway
  ``Agent.emitBatch`` call. UDP has no answer, so a datagram that cannot be used is dropped and
  counted in ``threadline_receiver_refused_requests_total``.

The tenant comes from ``X-Scope-OrgID`` (HTTP) / ``x-scope-orgid`` metadata (gRPC) as for OTLP.

Translation is compiled and holds the GIL throughout (about 1 µs per span), so it runs on the
event loop: a worker thread would not let anything else run meanwhile, only add a hand-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Literal

import grpc
from aiohttp import web

from threadline.distributor.distributor import Distributor, InvalidInput, Overloaded
from threadline.distributor.limits import LimitExceeded
from threadline.model.jaeger import (
    COLLECTOR_SERVICE,
    PostSpansResponse,
    ThriftProtocol,
    agent_message_to_otlp,
    post_spans_to_otlp,
    thrift_batch_to_otlp,
)
from threadline.receivers.grpc_receiver import RawGrpcReceiver
from threadline.receivers.http_body import BodyError, admitted_body
from threadline.tenancy import HEADER, SINGLE_TENANT, TenantError, resolve_tenant

log = logging.getLogger(__name__)

THRIFT_CONTENT_TYPES = ("application/x-thrift", "application/vnd.apache.thrift.binary")
HTTP_PROTOCOL = "jaeger_thrift_http"
GRPC_PROTOCOL = "jaeger_grpc"
_EMPTY_RESPONSE = PostSpansResponse().SerializeToString()


class JaegerThriftHttpReceiver:
    """``POST /api/traces`` with a binary-thrift ``Batch`` (Jaeger collector's HTTP endpoint)."""

    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.max_request_bytes = max_request_bytes

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/traces", self.post)]

    def _error(self, status: int, message: str, reason: str) -> web.Response:
        self.distributor.refuse(HTTP_PROTOCOL, reason)
        return web.Response(status=status, text=message)

    async def post(self, request: web.Request) -> web.Response:
        content_type = request.content_type
        if content_type not in THRIFT_CONTENT_TYPES:
            return self._error(
                415,
                f"unsupported Content-Type {content_type!r}: send a binary-thrift jaeger Batch "
                f"as {' or '.join(THRIFT_CONTENT_TYPES)}",
                "bad_content_type",
            )
        try:
            tenant = resolve_tenant(request.headers.getall(HEADER, []), self.multitenancy_enabled)
        except TenantError as e:
            return self._error(e.status, e.message, "invalid_tenant")
        limit = self.max_request_bytes
        try:
            async with admitted_body(request, limit, self.distributor, HTTP_PROTOCOL) as body:
                try:
                    otlp, _ = thrift_batch_to_otlp(body)
                except ValueError as e:
                    msg = f"cannot decode the request body: {e}"
                    return self._error(400, msg, "invalid_thrift")
                await self.distributor.push_otlp(tenant, otlp, HTTP_PROTOCOL)
        except BodyError as e:
            return self._error(e.status, e.message, e.reason)
        except InvalidInput as e:  # counted by the distributor
            return web.Response(status=400, text=str(e))
        except Overloaded as e:  # counted by the distributor; clients retry a 503
            return web.Response(status=503, text=str(e))
        except LimitExceeded as e:  # counted by the distributor
            return web.Response(status=429, text=str(e))
        return web.Response(status=202)


class JaegerGrpcReceiver(RawGrpcReceiver):
    """``jaeger.api_v2.CollectorService/PostSpans`` over gRPC; the request arrives as bytes."""

    service = COLLECTOR_SERVICE
    method = "PostSpans"
    protocol = GRPC_PROTOCOL

    async def handle(self, request: bytes, tenant: str, context: grpc.aio.ServicerContext) -> bytes:
        try:
            otlp, _ = post_spans_to_otlp(request)
        except ValueError as e:
            await self.refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_protobuf", str(e))
        await self.push(tenant, otlp, context)
        return _EMPTY_RESPONSE


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: JaegerAgentReceiver) -> None:
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.receiver.datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("jaeger agent UDP socket error: %s", exc)


class JaegerAgentReceiver:
    """The Jaeger agent's UDP port: one ``Agent.emitBatch`` call message per datagram.

    UDP carries no acknowledgement, so a datagram is decoded in the handler and pushed in the
    background (the handler never waits for the WAL's fsync). A datagram that cannot be
    decoded is dropped and counted as refused (reason ``invalid_thrift``); so is one arriving
    while ``max_pending`` pushes are still in flight (``overloaded``).

    Tenancy: a datagram has no headers, so it cannot say which tenant it belongs to. With
    multitenancy off its spans go to ``single-tenant``; with multitenancy on every datagram is
    refused (counted with reason ``no_tenant``) — send to the HTTP or gRPC receivers instead.
    """

    def __init__(
        self,
        distributor: Distributor,
        multitenancy_enabled: bool,
        protocol: Literal["compact", "binary"],
        max_pending: int = 1024,
    ) -> None:
        if protocol not in ("compact", "binary"):
            raise ValueError(f"unknown agent thrift protocol {protocol!r}")
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.thrift: ThriftProtocol = protocol
        self.protocol = f"jaeger_agent_{protocol}"
        self.max_pending = max_pending
        self.transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on UDP ``host:port``; returns the bound port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(self), local_addr=(host, port)
        )
        self.transport = transport
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):  # room for bursts while the loop is busy elsewhere
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 2**20)
        return int(sock.getsockname()[1])

    def datagram(self, data: bytes) -> None:
        if self.multitenancy_enabled:
            self.distributor.refuse(self.protocol, "no_tenant")
            return
        if len(self._pending) >= self.max_pending:
            self.distributor.refuse(self.protocol, "overloaded")
            return
        try:
            otlp, count = agent_message_to_otlp(data, self.thrift)
        except ValueError as e:
            self.distributor.refuse(self.protocol, "invalid_thrift")
            log.debug("dropped a Jaeger agent datagram: %s", e)
            return
        except Exception:  # never let one datagram take the receiver down
            self.distributor.refuse(self.protocol, "invalid_thrift")
            log.exception("dropped a Jaeger agent datagram that could not be translated")
            return
        if not count:
            return
        task = asyncio.get_running_loop().create_task(self._push(otlp))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _push(self, otlp: bytes) -> None:
        try:
            await self.distributor.push_otlp(SINGLE_TENANT, otlp, self.protocol)
        except (InvalidInput, Overloaded, LimitExceeded) as e:  # counted; UDP can't answer
            log.debug("Jaeger agent datagram refused: %s", e)
        except Exception:
            log.exception("pushing a Jaeger agent datagram failed")

    async def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=5)
            for task in late:
                task.cancel()
