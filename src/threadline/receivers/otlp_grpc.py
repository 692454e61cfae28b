"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Requests arrive as raw bytes (no protobuf object is built here); the distributor decodes them
straight into columns.
"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from threadline.distributor.distributor import Distributor, InvalidInput, Overloaded
from threadline.tenancy import HEADER, TenantError, resolve_tenant

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
PROTOCOL = "otlp_grpc"
_EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()


class OTLPGrpcReceiver:
    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.max_request_bytes = max_request_bytes
        self.server: grpc.aio.Server | None = None

    def _tenant(self, context: grpc.aio.ServicerContext) -> str:
        header = None
        for key, value in context.invocation_metadata() or ():
            if key == HEADER.lower():
                header = value if isinstance(value, str) else value.decode()
        return resolve_tenant(header, self.multitenancy_enabled)

    async def export(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            tenant = self._tenant(context)
        except TenantError as e:
            self.distributor.refuse(PROTOCOL, "invalid_tenant")
            code = (
                grpc.StatusCode.UNAUTHENTICATED
                if e.status == 401
                else grpc.StatusCode.INVALID_ARGUMENT
            )
            await context.abort(code, e.message)
        if len(request) > self.max_request_bytes:
            self.distributor.refuse(PROTOCOL, "too_large")
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request of {len(request)} bytes is over the limit of "
                f"{self.max_request_bytes} bytes",
            )
        try:
            result = await self.distributor.push_otlp(tenant, request, PROTOCOL)
        except InvalidInput as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Overloaded as e:  # counted by the distributor
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        if not result.rejected:
            return _EMPTY_RESPONSE
        response = ExportTraceServiceResponse()
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.message
        return response.SerializeToString()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port``; returns the bound port."""
        self.server = grpc.aio.server(
            options=[
                # grpc itself refuses beyond twice the limit; up to that we refuse and count
                ("grpc.max_receive_message_length", 2 * self.max_request_bytes),
                ("grpc.max_send_message_length", 4 * 2**20),
            ]
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    self.export, request_deserializer=None, response_serializer=None
                )
            },
        )
        self.server.add_generic_rpc_handlers((handler,))
        bound = self.server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
        await self.server.start()
        return bound

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=2)
