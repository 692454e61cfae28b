"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

Requests arrive as raw bytes (no protobuf object is built here); the distributor decodes them
straight into columns.
"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from threadline.receivers.grpc_receiver import RawGrpcReceiver

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
PROTOCOL = "otlp_grpc"
_EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()


class OTLPGrpcReceiver(RawGrpcReceiver):
    service = SERVICE
    method = "Export"
    protocol = PROTOCOL

    async def handle(self, request: bytes, tenant: str, context: grpc.aio.ServicerContext) -> bytes:
        result = await self.push(tenant, request, context)
        if not result.rejected:
            return _EMPTY_RESPONSE
        response = ExportTraceServiceResponse()
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.message
        return response.SerializeToString()
