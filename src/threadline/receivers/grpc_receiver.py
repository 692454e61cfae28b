"""What every gRPC front door shares: one unary method taking the request as raw bytes, the
tenant from ``x-scope-orgid`` metadata, the size limit, at most
``distributor.max_concurrent_rpcs`` calls at once (more are refused with RESOURCE_EXHAUSTED
naming the key, and counted; past twice the limit gRPC itself refuses them before their
messages are read, so a flood of calls cannot hold unbounded memory), and the distributor's
errors mapped to gRPC status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import NoReturn

import grpc

from threadline.auth import Authenticator, AuthError, call_tenant
from threadline.distributor.distributor import Distributor, InvalidInput, Overloaded, PushResult
from threadline.distributor.limits import LimitExceeded
from threadline.tenancy import TenantError

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
# the HTTP statuses of tenant and auth refusals, as gRPC codes (anything else: invalid)
_CODES = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}


class RawGrpcReceiver:
    """Subclasses name ``service``, ``method``, ``protocol`` and implement ``handle``."""

    service = ""
    method = ""
    protocol = ""

    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.max_request_bytes = max_request_bytes
        self.max_concurrent_rpcs = distributor.ingester.cfg.distributor.max_concurrent_rpcs
        self.server: grpc.aio.Server | None = None
        self.active = 0  # calls being handled
        self.auth: Authenticator | None = None  # with auth on: set before start

    async def handle(self, request: bytes, tenant: str, context: grpc.aio.ServicerContext) -> bytes:
        raise NotImplementedError

    async def refuse(
        self, context: grpc.aio.ServicerContext, code: grpc.StatusCode, reason: str, message: str
    ) -> NoReturn:
        self.distributor.refuse(self.protocol, reason)
        await context.abort(code, message)
        raise AssertionError("abort returns only by raising")

    async def push(self, tenant: str, otlp: bytes, context: grpc.aio.ServicerContext) -> PushResult:
        """Hand OTLP bytes to the distributor; its errors become gRPC errors (counted there)."""
        return await self.guarded(context, self.distributor.push_otlp(tenant, otlp, self.protocol))

    async def guarded(
        self, context: grpc.aio.ServicerContext, pushing: Awaitable[PushResult]
    ) -> PushResult:
        """``pushing``'s result; the distributor's errors become gRPC errors."""
        try:
            return await pushing
        except InvalidInput as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Overloaded as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        except LimitExceeded as e:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        raise AssertionError("abort returns only by raising")

    async def _call(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if self.active >= self.max_concurrent_rpcs:
            await self.refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "concurrency_limit",
                f"too many calls at once: {self.active} {self.service} calls are being handled "
                f"(limit distributor.max_concurrent_rpcs = {self.max_concurrent_rpcs}); "
                "retry later",
            )
        self.active += 1
        try:
            return await self._admitted(request, context)
        finally:
            self.active -= 1

    async def _admitted(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            metadata = context.invocation_metadata() or ()
            tenant = call_tenant(metadata, self.auth, self.multitenancy_enabled, "write")
        except (AuthError, TenantError) as e:
            reason = "unauthenticated" if isinstance(e, AuthError) else "invalid_tenant"
            await self.refuse(context, _CODES.get(e.status, _INVALID), reason, e.message)
        if len(request) > self.max_request_bytes:
            await self.refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too_large",
                f"request of {len(request)} bytes is over the limit of "
                f"{self.max_request_bytes} bytes",
            )
        return await self.handle(request, tenant, context)

    def method_handler(self) -> grpc.RpcMethodHandler:
        """The method: unary, on raw bytes (a streaming receiver overrides this)."""
        return grpc.unary_unary_rpc_method_handler(
            self._call, request_deserializer=None, response_serializer=None
        )

    async def start(
        self,
        host: str,
        port: int,
        credentials: grpc.ServerCredentials | None = None,
        also: Iterable[RawGrpcReceiver] = (),
    ) -> int:
        """Listen on ``host:port`` (with TLS when ``credentials`` are given), serving ``also``'s
        services on the same port; returns the port."""
        self.server = grpc.aio.server(
            options=[
                # grpc itself refuses beyond twice the limit; up to that we refuse and count
                ("grpc.max_receive_message_length", 2 * self.max_request_bytes),
                ("grpc.max_send_message_length", 4 * 2**20),
                # gRPC binds with SO_REUSEPORT unless told not to: a second server on the same
                # port would silently take a share of the pushes
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=2 * self.max_concurrent_rpcs,
        )
        for receiver in (self, *also):
            handler = grpc.method_handlers_generic_handler(
                receiver.service, {receiver.method: receiver.method_handler()}
            )
            self.server.add_generic_rpc_handlers((handler,))
        address = f"{host}:{port}"
        if credentials is None:
            bound = self.server.add_insecure_port(address)
        else:
            bound = self.server.add_secure_port(address, credentials)
        if bound == 0:
            raise OSError(f"cannot listen for {self.service} on {host}:{port}")
        await self.server.start()
        return bound

    async def stop(self, grace: float = 2.0) -> None:
        """Stop taking calls; calls under way get ``grace`` seconds to finish."""
        if self.server is not None:
            await self.server.stop(grace=grace)
