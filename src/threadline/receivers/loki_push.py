"""Loki's push API on the HTTP API port: ``POST /loki/api/v1/push`` with JSON or
snappy-compressed protobuf (as Promtail, Alloy and Loki's clients send), so existing shippers
can point at threadline. Answers as Loki does: 204 on success, a plain-text reason otherwise."""

from __future__ import annotations

import time

from aiohttp import web

from threadline.distributor.distributor import Distributor, InvalidInput, Overloaded
from threadline.distributor.limits import LimitExceeded
from threadline.http_server import writes
from threadline.model.loki_push import decode_loki_push
from threadline.model.otlp_logs import DecodedLogs
from threadline.receivers.http_body import BodyError, admitted_body
from threadline.tenancy import HEADER, TenantError, resolve_tenant

PROTOCOL = "loki_push"


class LokiPushReceiver:
    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.max_request_bytes = max_request_bytes

    def routes(self, prefix: str = "") -> list[web.RouteDef]:
        return [web.post(prefix + "/loki/api/v1/push", self.push)]

    def _refuse(self, status: int, message: str, reason: str) -> web.Response:
        self.distributor.refuse(PROTOCOL, reason)
        return web.Response(status=status, text=message + "\n")

    @writes
    async def push(self, request: web.Request) -> web.Response:
        try:
            tenant = resolve_tenant(request.headers.getall(HEADER, []), self.multitenancy_enabled)
        except TenantError as e:
            return self._refuse(e.status, e.message, "invalid_tenant")
        content_type = request.content_type
        try:
            async with admitted_body(
                request, self.max_request_bytes, self.distributor, PROTOCOL
            ) as body:
                try:
                    loki = decode_loki_push(body, content_type, time.time_ns())
                except ValueError as e:
                    return self._refuse(400, str(e), "invalid_body")
                decoded = DecodedLogs(loki.batch, loki.rejected, loki.first_error)
                await self.distributor.push_logs(tenant, decoded, len(body), PROTOCOL)
        except BodyError as e:
            return self._refuse(e.status, e.message, e.reason)
        except InvalidInput as e:
            return web.Response(status=400, text=f"{e}\n")
        except Overloaded as e:
            return web.Response(status=503, text=f"{e}\n")
        except LimitExceeded as e:
            return web.Response(status=429, text=f"{e}\n")
        return web.Response(status=204)
