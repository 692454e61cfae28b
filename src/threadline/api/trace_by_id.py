"""Tempo's trace-by-ID routes: ``/api/traces/{id}`` (v1) and ``/api/v2/traces/{id}`` (v2).

JSON follows Tempo's proto3 JSON (base64 ids, enum names, 64-bit ints as strings; v1 names the
resource spans ``batches``); ``Accept: application/protobuf`` gets ``tempopb.Trace`` (v1, wire
compatible with OTLP ``TracesData``) or ``tempopb.TraceByIDResponse`` (v2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pyarrow as pa
from aiohttp import web
from google.protobuf import json_format

from threadline.api.common import parse_unix_seconds, tenant_of, wants_protobuf
from threadline.api.tempopb import TraceByIDResponse
from threadline.model.ids import parse_trace_id
from threadline.model.otlp_encode import rows_to_traces_data
from threadline.querier.trace_by_id import TraceFinder

PROTOBUF = "application/protobuf"
# answers of traces up to this many spans are encoded on the event loop (a thread hop costs
# more than they do); bigger ones in a thread
ENCODE_ON_LOOP_SPANS = 2000


class TraceByIDRoutes:
    def __init__(self, finder: TraceFinder, multitenancy_enabled: bool) -> None:
        self.finder = finder
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(prefix + "/api/traces/{trace_id}", self.v1),
            web.get(prefix + "/api/v2/traces/{trace_id}", self.v2),
        ]

    async def _lookup(self, request: web.Request) -> pa.Table:
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
        return table

    async def _answer(self, request: web.Request, encode: Callable[[pa.Table], bytes]) -> bytes:
        table = await self._lookup(request)
        if table.num_rows <= ENCODE_ON_LOOP_SPANS:
            return encode(table)
        return await asyncio.to_thread(encode, table)  # a big trace must not stall the loop

    async def v1(self, request: web.Request) -> web.Response:
        if wants_protobuf(request):
            body = await self._answer(request, lambda t: rows_to_traces_data(t).SerializeToString())
            return web.Response(body=body, content_type=PROTOBUF)

        def as_json(table: pa.Table) -> bytes:
            doc = json_format.MessageToDict(rows_to_traces_data(table))
            return orjson.dumps({"batches": doc.get("resourceSpans", [])})

        return json_body(await self._answer(request, as_json))

    async def v2(self, request: web.Request) -> web.Response:
        protobuf = wants_protobuf(request)

        def encode(table: pa.Table) -> bytes:
            response = TraceByIDResponse()
            response.trace.resourceSpans.extend(rows_to_traces_data(table).resource_spans)
            response.metrics.inspectedBytes = table.nbytes
            if protobuf:
                return response.SerializeToString()
            return orjson.dumps(json_format.MessageToDict(response))

        body = await self._answer(request, encode)
        if protobuf:
            return web.Response(body=body, content_type=PROTOBUF)
        return json_body(body)


def json_response(doc: object) -> web.Response:
    return json_body(orjson.dumps(doc))


def json_body(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")
