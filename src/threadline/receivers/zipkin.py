"""Zipkin receiver: ``POST /api/v2/spans`` (JSON or proto3) and ``POST /api/v1/spans`` (v1 JSON).

Bodies are translated to OTLP at the door (``threadline.model.zipkin``) and handed to the
distributor like any OTLP push. Answers as zipkin-server does: ``202 Accepted`` with an empty
body once the spans are durable; errors in plain text naming the problem (400 bad body, 401 no
tenant, 413 too large, 415 unsupported content type or encoding), each counted by protocol.
A request without ``Content-Type`` is read as JSON, as zipkin-server reads it.

Translation is compiled (``threadline.model._zipkin_otlp``, about 1.5 µs per JSON span on one
core) and runs on the event loop. Worker processes, which the pure-Python translation needed,
now cost more than they save: shipping a 1,000-span body to a worker and its OTLP bytes back
takes about as long as translating it here, and a worker thread would hold the GIL throughout.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from threadline.distributor.distributor import Distributor, InvalidInput, Overloaded
from threadline.distributor.limits import LimitExceeded
from threadline.model.zipkin import (
    zipkin_v1_json_to_otlp,
    zipkin_v2_json_to_otlp,
    zipkin_v2_proto_to_otlp,
)
from threadline.receivers.http_body import BodyError, admitted_body
from threadline.tenancy import HEADER, TenantError, resolve_tenant

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
_PROTOBUF_TYPES = (PROTOBUF, "application/protobuf")
V2_JSON, V2_PROTO, V1_JSON = "zipkin_json", "zipkin_proto", "zipkin_v1_json"


class ZipkinReceiver:
    """The Zipkin HTTP routes, pushing to ``distributor``."""

    def __init__(
        self, distributor: Distributor, multitenancy_enabled: bool, max_request_bytes: int
    ) -> None:
        self.distributor = distributor
        self.multitenancy_enabled = multitenancy_enabled
        self.max_request_bytes = max_request_bytes

    async def close(self) -> None:
        """Nothing to stop (kept for the server's shutdown sequence)."""

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v2/spans", self.spans_v2),
            web.post("/api/v1/spans", self.spans_v1),
        ]

    def _error(self, protocol: str, status: int, message: str, reason: str) -> web.Response:
        self.distributor.refuse(protocol, reason)
        return web.Response(status=status, text=message + "\n")

    async def spans_v2(self, request: web.Request) -> web.Response:
        content_type = request.content_type if "Content-Type" in request.headers else JSON
        if content_type == JSON:
            return await self._ingest(request, V2_JSON, zipkin_v2_json_to_otlp, "invalid_json")
        if content_type in _PROTOBUF_TYPES:
            return await self._ingest(
                request, V2_PROTO, zipkin_v2_proto_to_otlp, "invalid_protobuf"
            )
        return self._error(
            V2_JSON,
            415,
            f"unsupported Content-Type {content_type!r}: use {JSON} or {PROTOBUF}",
            "bad_content_type",
        )

    async def spans_v1(self, request: web.Request) -> web.Response:
        content_type = request.content_type if "Content-Type" in request.headers else JSON
        if content_type == JSON:
            return await self._ingest(request, V1_JSON, zipkin_v1_json_to_otlp, "invalid_json")
        hint = " (Zipkin v1 thrift is not supported)" if "thrift" in content_type else ""
        return self._error(
            V1_JSON,
            415,
            f"unsupported Content-Type {content_type!r}{hint}: use {JSON}",
            "bad_content_type",
        )

    async def _ingest(
        self,
        request: web.Request,
        protocol: str,
        translate: Callable[[bytes], bytes],
        invalid_reason: str,
    ) -> web.Response:
        try:
            tenant = resolve_tenant(request.headers.getall(HEADER, []), self.multitenancy_enabled)
        except TenantError as e:
            return self._error(protocol, e.status, e.message, "invalid_tenant")
        limit = self.max_request_bytes
        try:
            async with admitted_body(request, limit, self.distributor, protocol) as body:
                try:
                    otlp = translate(body)
                except ValueError as e:
                    return self._error(protocol, 400, str(e), invalid_reason)
                await self.distributor.push_otlp(tenant, otlp, protocol)
        except BodyError as e:
            return self._error(protocol, e.status, e.message, e.reason)
        except InvalidInput as e:
            # counted by the distributor already
            return web.Response(status=400, text=f"{e}\n")
        except Overloaded as e:  # counted by the distributor; clients retry a 503
            return web.Response(status=503, text=f"{e}\n")
        except LimitExceeded as e:  # counted by the distributor
            return web.Response(status=429, text=f"{e}\n")
        # Zipkin has no partial success: spans the distributor rejected are counted there
        return web.Response(status=202)
