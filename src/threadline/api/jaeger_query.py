"""Jaeger's classic query API under ``/jaeger/api/`` (what Jaeger UI 1.x and Grafana's Jaeger
data source call): services, operations, trace search, trace by id, dependencies, the OTLP/JSON
``transform`` behind the UI's upload (the Monitor tab's metrics: ``jaeger_monitor``)."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from aiohttp import web
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from threadline.api.common import MAX_NS, ForeignQueryRoutes, duration_param, int_param
from threadline.api.jaeger_json import jaeger_trace, split_traces
from threadline.model.ids import parse_trace_id
from threadline.model.otlp_encode import rows_to_traces_data
from threadline.model.otlp_json import otlp_json_to_protobuf
from threadline.querier.search import SearchWindow
from threadline.querier.span_search import SpanQuery

PREFIX = "/jaeger/api"
_KIND_NAMES = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
DEFAULT_LIMIT = 100
DAY_US = 86_400 * 10**6


def envelope(data: Any, total: int = 0, errors: list[dict[str, Any]] | None = None) -> Any:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def _pretty(request: web.Request) -> bool:
    """Jaeger's ``prettyPrint`` parameter: any value but empty and ``false`` indents the JSON
    (the UI's "Trace JSON" views open ``/api/traces/{id}?prettyPrint=true``)."""
    return request.query.get("prettyPrint", "") not in ("", "false")


def _reply(request: web.Request, doc: Any) -> web.Response:
    body = json.dumps(doc, indent=4).encode() if _pretty(request) else orjson.dumps(doc)
    return web.Response(body=body, content_type="application/json")


def jaeger_error(status: int, message: str) -> web.HTTPException:
    """Jaeger's error answer: the envelope with ``errors``, the status as its code."""
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 501: web.HTTPNotImplemented}[status]
    return cls(
        body=orjson.dumps(envelope(None, errors=[{"code": status, "msg": message}])),
        content_type="application/json",
    )


def _bad_param(message: str) -> web.HTTPException:
    return jaeger_error(400, message)


def _int(request: web.Request, name: str, default: int, maximum: int) -> int:
    value = int_param(request, name, default, maximum=maximum, error=_bad_param)
    assert value is not None
    return value


def _duration_ns(request: web.Request, name: str) -> int | None:
    return duration_param(request, name, error=_bad_param)


def _tags(request: web.Request) -> dict[str, str]:
    tags: dict[str, str] = {}
    for raw in request.query.getall("tags", []):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise jaeger_error(400, f"malformed 'tags' parameter, expecting JSON: {raw}") from None
        if not isinstance(doc, dict):
            raise jaeger_error(400, "malformed 'tags' parameter: expecting a JSON object")
        tags.update({str(k): str(v) for k, v in doc.items()})
    for raw in request.query.getall("tag", []):
        key, sep, value = raw.partition(":")
        if not sep:
            raise jaeger_error(400, f"malformed 'tag' parameter, expecting key:value: {raw}")
        tags[key] = value
    return tags


class JaegerQueryRoutes(ForeignQueryRoutes):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PREFIX + "/services", self.services),
            web.get(PREFIX + "/services/{service}/operations", self.service_operations),
            web.get(PREFIX + "/operations", self.operations),
            web.get(PREFIX + "/traces", self.search),
            web.get(PREFIX + "/traces/{trace_id}", self.trace),
            web.get(PREFIX + "/dependencies", self.dependencies),
            web.post(PREFIX + "/transform", self.transform),
        ]

    async def services(self, request: web.Request) -> web.Response:
        names = await self.tag_finder.services(self._tenant(request))
        return _reply(request, envelope(names, total=len(names)))

    async def service_operations(self, request: web.Request) -> web.Response:
        ops = await self.tag_finder.operations(self._tenant(request), request.match_info["service"])
        names = sorted({name for name, _ in ops})
        return _reply(request, envelope(names, total=len(names)))

    async def operations(self, request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        if not service:
            raise jaeger_error(400, "parameter 'service' is required")
        kind = request.query.get("spanKind", "")
        ops = await self.tag_finder.operations(self._tenant(request), service)
        data = [
            {"name": name, "spanKind": _KIND_NAMES.get(k, "unspecified")}
            for name, k in ops
            if not kind or _KIND_NAMES.get(k) == kind
        ]
        return _reply(request, envelope(data, total=len(data)))

    async def _traces(self, tenant: str, ids: list[bytes]) -> tuple[list[Any], list[bytes]]:
        found, missing = [], []
        for trace_id in ids:
            table = await self.finder.find(tenant, trace_id)
            if table is None:
                missing.append(trace_id)
            else:
                found.append(jaeger_trace(rows_to_traces_data(table)))
        return found, missing

    def _trace_id(self, text: str) -> bytes:
        try:
            return parse_trace_id(text)
        except ValueError as e:
            raise jaeger_error(400, str(e)) from None

    async def trace(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        found, _ = await self._traces(tenant, [self._trace_id(request.match_info["trace_id"])])
        if not found:
            raise jaeger_error(404, "trace not found")
        return _reply(request, envelope(found))

    async def search(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        if ids := request.query.getall("traceID", []):
            found, missing = await self._traces(tenant, [self._trace_id(i) for i in ids])
            errors = [{"msg": "trace not found", "traceID": m.hex()} for m in missing]
            return _reply(request, envelope(found, errors=errors or None))
        service = request.query.get("service", "")
        if not service:
            raise jaeger_error(400, "parameter 'service' is required")
        now_us = time.time_ns() // 1000
        end_us = _int(request, "end", now_us, MAX_NS // 1000)
        start_us = _int(request, "start", max(0, end_us - 2 * DAY_US), MAX_NS // 1000)
        # Jaeger has no maximum; more than the querier's search maximum is cut to it
        limit = min(_int(request, "limit", DEFAULT_LIMIT, MAX_NS), self.max_result_limit)
        query = SpanQuery(
            service=service,
            operation=request.query.get("operation") or None,
            tags=_tags(request),
            min_duration_ns=_duration_ns(request, "minDuration"),
            max_duration_ns=_duration_ns(request, "maxDuration"),
        )
        if (
            query.min_duration_ns is not None
            and query.max_duration_ns is not None
            and query.max_duration_ns < query.min_duration_ns
        ):
            raise jaeger_error(400, "'maxDuration' should be greater than 'minDuration'")
        window = SearchWindow(start_us * 1000, end_us * 1000)
        result = await self.engine.search(tenant, query.plan(), window, max(limit, 1), 1)
        found, _ = await self._traces(tenant, [t.trace_id for t in result.traces])
        return _reply(request, envelope(found))

    async def dependencies(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        end_ms = _int(request, "endTs", time.time_ns() // 10**6, MAX_NS // 10**6)
        lookback_ms = _int(request, "lookback", 86_400_000, MAX_NS // 10**6)
        edges = await self.dependency_finder.edges(
            tenant, (end_ms - lookback_ms) * 10**6, end_ms * 10**6
        )
        data = [
            {"parent": parent, "child": child, "callCount": edge.calls}
            for (parent, child), edge in sorted(edges.items())
        ]
        return _reply(request, envelope(data))

    async def transform(self, request: web.Request) -> web.Response:
        """OTLP/JSON (the UI's upload of an OTLP file) as Jaeger traces, one per trace id."""
        try:
            data = TracesData.FromString(otlp_json_to_protobuf(await request.read()))
        except ValueError as e:
            raise jaeger_error(400, str(e)) from None
        return _reply(request, envelope([jaeger_trace(t) for t in split_traces(data)]))
