"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``POST /v1/logs`` with ``application/x-protobuf``
or ``application/json``.

Answers in the request's encoding, as the OTLP/HTTP spec asks: an ``Export*ServiceResponse`` on
success (with ``partial_success`` when spans or log records were rejected), a
``google.rpc.Status`` on error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from threadline.distributor.distributor import Distributor, InvalidInput, Overloaded, PushResult
from threadline.distributor.limits import LimitExceeded
from threadline.model.otlp_json import otlp_json_to_protobuf
from threadline.model.otlp_logs import decode_logs_request, otlp_logs_json_to_protobuf
from threadline.model.protowire import bytes_field, varint_field
from threadline.receivers.http_body import BodyError, admitted_body
from threadline.tenancy import HEADER, TenantError, resolve_tenant

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code values used in error bodies
_CODES = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


def _status_body(content_type: str, status: int, message: str) -> bytes:
    """A serialized ``google.rpc.Status{code=1, message=2}`` in the request's encoding."""
    code = _CODES.get(status, 2)
    if content_type == JSON:
        return orjson.dumps({"code": code, "message": message})
    return varint_field(1, code) + bytes_field(2, message.encode())


class OTLPHttpReceiver:
    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.max_request_bytes = max_request_bytes

    def routes(self) -> list[web.RouteDef]:
        out = [web.post("/v1/traces", self.export)]
        if self.distributor.logs is not None:
            out.append(web.post("/v1/logs", self.export_logs))
        return out

    def _error(self, content_type: str, status: int, message: str, reason: str) -> web.Response:
        self.distributor.refuse(self.protocol(content_type), reason)
        return web.Response(
            status=status,
            body=_status_body(content_type, status, message),
            content_type=content_type if content_type in (PROTOBUF, JSON) else "text/plain",
        )

    @staticmethod
    def protocol(content_type: str, signal: str = "") -> str:
        return f"otlp{signal}_http_json" if content_type == JSON else f"otlp{signal}_http_protobuf"

    async def export(self, request: web.Request) -> web.Response:
        return await self._export(request, "", otlp_json_to_protobuf, self.distributor.push_otlp)

    async def export_logs(self, request: web.Request) -> web.Response:
        async def push(tenant: str, body: bytes, protocol: str) -> PushResult:
            try:
                decoded = decode_logs_request(body)
            except ValueError as e:
                self.distributor.refuse(protocol, "invalid_protobuf")
                raise InvalidInput(str(e), "invalid_protobuf") from None
            return await self.distributor.push_logs(tenant, decoded, len(body), protocol)

        return await self._export(request, "_logs", otlp_logs_json_to_protobuf, push)

    async def _export(
        self,
        request: web.Request,
        signal: str,
        json_to_protobuf: Callable[[bytes], bytes],
        push: Callable[[str, bytes, str], Awaitable[PushResult]],
    ) -> web.Response:
        content_type = request.content_type
        if content_type not in (PROTOBUF, JSON):
            return self._error(
                JSON,
                415,
                f"unsupported Content-Type {content_type!r}: use {PROTOBUF} or {JSON}",
                "bad_content_type",
            )
        try:
            tenant = resolve_tenant(request.headers.getall(HEADER, []), self.multitenancy_enabled)
        except TenantError as e:
            return self._error(content_type, e.status, e.message, "invalid_tenant")
        protocol = self.protocol(content_type, signal)
        limit = self.max_request_bytes
        try:
            async with admitted_body(request, limit, self.distributor, protocol) as body:
                if content_type == JSON:
                    try:
                        body = json_to_protobuf(body)
                    except ValueError as e:
                        return self._error(content_type, 400, str(e), "invalid_json")
                result = await push(tenant, body, protocol)
        except BodyError as e:
            return self._error(content_type, e.status, e.message, e.reason)
        except InvalidInput as e:
            # the distributor has counted it already
            return web.Response(
                status=400, body=_status_body(content_type, 400, str(e)), content_type=content_type
            )
        except Overloaded as e:  # counted by the distributor; OTLP clients retry a 503
            return web.Response(
                status=503, body=_status_body(content_type, 503, str(e)), content_type=content_type
            )
        except LimitExceeded as e:  # counted by the distributor; a 429 is retried later
            return web.Response(
                status=429, body=_status_body(content_type, 429, str(e)), content_type=content_type
            )
        response: Message
        if signal:
            response = ExportLogsServiceResponse()
            if result.rejected:
                response.partial_success.rejected_log_records = result.rejected
                response.partial_success.error_message = result.message
        else:
            response = ExportTraceServiceResponse()
            if result.rejected:
                response.partial_success.rejected_spans = result.rejected
                response.partial_success.error_message = result.message
        if content_type == JSON:
            payload = orjson.dumps(json_format.MessageToDict(response))
        else:
            payload = response.SerializeToString()
        return web.Response(body=payload, content_type=content_type)
