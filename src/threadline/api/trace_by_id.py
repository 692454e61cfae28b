"""Tempo's trace-by-ID routes: ``/api/traces/{id}`` (v1) and ``/api/v2/traces/{id}`` (v2).

JSON follows Tempo's proto3 JSON (base64 ids, enum names, 64-bit ints as strings; v1 names the
resource spans ``batches``); ``Accept: application/protobuf`` gets ``tempopb.Trace`` (v1, wire
compatible with OTLP ``TracesData``) or ``tempopb.TraceByIDResponse`` (v2).
"""

from __future__ import annotations

import orjson
import pyarrow as pa
from aiohttp import web
from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from threadline.api.common import parse_unix_seconds, tenant_of, wants_protobuf
from threadline.api.tempopb import TraceByIDResponse
from threadline.model.ids import parse_trace_id
from threadline.model.otlp_encode import rows_to_traces_data
from threadline.querier.trace_by_id import TraceFinder

PROTOBUF = "application/protobuf"


class TraceByIDRoutes:
    def __init__(self, finder: TraceFinder, multitenancy_enabled: bool) -> None:
        self.finder = finder
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(prefix + "/api/traces/{trace_id}", self.v1),
            web.get(prefix + "/api/v2/traces/{trace_id}", self.v2),
        ]

    async def _lookup(self, request: web.Request) -> tuple[TracesData, pa.Table]:
        tenant = tenant_of(request, self.multitenancy_enabled)
        try:
            trace_id = parse_trace_id(request.match_info["trace_id"])
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        start = parse_unix_seconds(request, "start")
        end = parse_unix_seconds(request, "end")
        if start is not None and end is not None and end <= start:
            raise web.HTTPBadRequest(text="invalid start/end: end must be after start")
        table = await self.finder.find(
            tenant,
            trace_id,
            start * 10**9 if start is not None else None,
            end * 10**9 if end is not None else None,
        )
        if table is None:
            raise web.HTTPNotFound()
        return rows_to_traces_data(table), table

    async def v1(self, request: web.Request) -> web.Response:
        traces, _ = await self._lookup(request)
        if wants_protobuf(request):
            return web.Response(body=traces.SerializeToString(), content_type=PROTOBUF)
        doc = json_format.MessageToDict(traces)
        return json_response({"batches": doc.get("resourceSpans", [])})

    async def v2(self, request: web.Request) -> web.Response:
        traces, table = await self._lookup(request)
        response = TraceByIDResponse()
        response.trace.resourceSpans.extend(traces.resource_spans)
        response.metrics.inspectedBytes = table.nbytes
        if wants_protobuf(request):
            return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)
        return json_response(json_format.MessageToDict(response))


def json_response(doc: object) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")
