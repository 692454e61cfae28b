"""OTLP/gRPC logs: ``opentelemetry.proto.collector.logs.v1.LogsService/Export``, served on the
OTLP gRPC port beside the trace service."""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from threadline.model.otlp_logs import decode_logs_request
from threadline.receivers.grpc_receiver import RawGrpcReceiver

_EMPTY_RESPONSE = ExportLogsServiceResponse().SerializeToString()


class OTLPLogsGrpcReceiver(RawGrpcReceiver):
    service = "opentelemetry.proto.collector.logs.v1.LogsService"
    method = "Export"
    protocol = "otlp_logs_grpc"

    async def handle(self, request: bytes, tenant: str, context: grpc.aio.ServicerContext) -> bytes:
        try:
            decoded = decode_logs_request(request)
        except ValueError as e:
            await self.refuse(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_protobuf", str(e))
        pushing = self.distributor.push_logs(tenant, decoded, len(request), self.protocol)
        result = await self.guarded(context, pushing)
        if not result.rejected:
            return _EMPTY_RESPONSE
        response = ExportLogsServiceResponse()
        response.partial_success.rejected_log_records = result.rejected
        response.partial_success.error_message = result.message
        return response.SerializeToString()
