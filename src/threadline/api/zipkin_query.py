"""Zipkin's query API under ``/zipkin/api/v2/`` and ``/zipkin/config.json`` (for Zipkin Lens)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from threadline.api.common import MAX_NS, ForeignQueryRoutes, int_param
from threadline.api.zipkin_json import zipkin_spans
from threadline.model.ids import parse_trace_id
from threadline.model.otlp_encode import rows_to_traces_data
from threadline.querier.search import SearchWindow
from threadline.querier.span_search import SpanQuery, attribute_equals
from threadline.traceql import sql

PREFIX = "/zipkin/api/v2"
DAY_MS = 86_400_000
MAX_MS = MAX_NS // 10**6
UI_CONFIG = {
    "environment": "",
    "queryLimit": 10,
    "defaultLookback": 900000,
    "searchEnabled": True,
    "logsUrl": None,
    "supportUrl": None,
    "archivePostUrl": None,
    "archiveUrl": None,
    "dependency": {"enabled": True, "lowErrorRate": 0.5, "highErrorRate": 0.75},
}


def _reply(doc: Any) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _int(request: web.Request, name: str, default: int | None, maximum: int) -> int | None:
    return int_param(request, name, default, maximum=maximum)


def _required(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise web.HTTPBadRequest(text=f"{name} is required")
    return value


_ERROR_STATUS = "status_code = 2"
# the ``error`` tag the API shows for an error status: its message, or "true"
_ERROR_TEXT = "coalesce(nullif(status_message, ''), 'true')"
_STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}


def annotation_conditions(query: str) -> list[str]:
    """Zipkin's annotationQuery: ``key=value`` terms match a tag, bare words a tag key or an
    annotation (event) name; terms are joined by `` and ``. The tags the API makes of a span's
    status (``error``, ``otel.status_code``) match that status, however it was ingested."""
    out = []
    for term in (t.strip() for t in query.split(" and ")):
        if not term:
            continue
        key, sep, value = term.partition("=")
        if key == "error":
            if sep:
                shown = f"({_ERROR_STATUS} AND {_ERROR_TEXT} = {sql.string(value)})"
                out.append(f"({shown} OR {attribute_equals(key, value)})")
            else:
                out.append(f"({_ERROR_STATUS} OR {_has_tag(key)})")
        elif key == "otel.status_code" and sep and value in _STATUS_CODES:
            out.append(f"status_code = {_STATUS_CODES[value]}")
        elif sep:
            out.append(attribute_equals(key, value))
        else:
            named = f"len(list_filter(events, lambda x: x.name = {sql.string(key)})) > 0"
            out.append(f"({_has_tag(key)} OR {named})")
    return out


def _has_tag(key: str) -> str:
    return " OR ".join(
        f"{sql.attr(scope, kind, key)} IS NOT NULL"
        for scope in ("span", "resource")
        for kind in ("str", "int", "float", "bool")
    )


class ZipkinQueryRoutes(ForeignQueryRoutes):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/zipkin/config.json", self.config),
            web.get(PREFIX + "/services", self.services),
            web.get(PREFIX + "/spans", self.span_names),
            web.get(PREFIX + "/remoteServices", self.remote_services),
            web.get(PREFIX + "/traces", self.traces),
            web.get(PREFIX + "/trace/{trace_id}", self.trace),
            web.get(PREFIX + "/traceMany", self.trace_many),
            web.get(PREFIX + "/dependencies", self.dependencies),
            web.get(PREFIX + "/autocompleteKeys", self.autocomplete_keys),
            web.get(PREFIX + "/autocompleteValues", self.autocomplete_values),
        ]

    async def config(self, request: web.Request) -> web.Response:
        return _reply(UI_CONFIG)

    async def services(self, request: web.Request) -> web.Response:
        return _reply(await self.tag_finder.services(self._tenant(request)))

    async def span_names(self, request: web.Request) -> web.Response:
        service = _required(request, "serviceName")
        ops = await self.tag_finder.operations(self._tenant(request), service)
        return _reply(sorted({name for name, _ in ops}))

    async def remote_services(self, request: web.Request) -> web.Response:
        """The remote services (``peer.service``) that spans of ``serviceName`` called."""
        service = _required(request, "serviceName")
        values = await self.tag_finder.values(
            self._tenant(request),
            "span",
            "peer.service",
            where=f"service_name = {sql.string(service)}",
        )
        return _reply(sorted({v.value for v in values}))

    async def _spans_of(self, tenant: str, trace_id: bytes) -> list[dict[str, Any]] | None:
        table = await self.finder.find(tenant, trace_id)
        return None if table is None else zipkin_spans(rows_to_traces_data(table))

    def _id(self, text: str) -> bytes:
        try:
            return parse_trace_id(text)
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None

    async def trace(self, request: web.Request) -> web.Response:
        text = request.match_info["trace_id"]
        spans = await self._spans_of(self._tenant(request), self._id(text))
        if spans is None:
            raise web.HTTPNotFound(text=f"{text} not found")
        return _reply(spans)

    async def trace_many(self, request: web.Request) -> web.Response:
        ids = [i for i in request.query.get("traceIds", "").split(",") if i]
        if len(ids) < 2 or len(set(ids)) != len(ids):
            raise web.HTTPBadRequest(text="traceIds should be at least two unique trace IDs")
        tenant = self._tenant(request)
        found = [await self._spans_of(tenant, self._id(i)) for i in ids]
        return _reply([spans for spans in found if spans is not None])

    async def traces(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        end_ms = _int(request, "endTs", time.time_ns() // 10**6, MAX_MS) or 0
        lookback_ms = _int(request, "lookback", DAY_MS, MAX_MS) or DAY_MS
        # Zipkin has no maximum; more than the querier's search maximum is cut to it
        limit = min(_int(request, "limit", 10, MAX_NS) or 10, self.max_result_limit)
        min_us = _int(request, "minDuration", None, MAX_NS // 1000)
        max_us = _int(request, "maxDuration", None, MAX_NS // 1000)
        query = SpanQuery(
            min_duration_ns=min_us * 1000 if min_us is not None else None,
            max_duration_ns=max_us * 1000 if max_us is not None else None,
        )
        # Zipkin lower-cases these names when storing and querying: match them in any case
        if service := request.query.get("serviceName"):
            known = await self.tag_finder.services(tenant)
            names = [sql.string(s) for s in known if s.lower() == service.lower()]
            if not names:
                return _reply([])
            query.conditions.append(f"service_name IN ({', '.join(names)})")
        if span_name := request.query.get("spanName"):
            query.conditions.append(f"lower(name) = {sql.string(span_name.lower())}")
        if remote := request.query.get("remoteServiceName"):
            peer = sql.attr("span", "str", "peer.service")
            query.conditions.append(
                f"coalesce(lower({peer}) = {sql.string(remote.lower())}, false)"
            )
        if annotations := request.query.get("annotationQuery"):
            query.conditions.extend(annotation_conditions(annotations))
        window = SearchWindow((end_ms - lookback_ms) * 10**6, end_ms * 10**6)
        result = await self.engine.search(tenant, query.plan(), window, limit, 1)
        found = [await self._spans_of(tenant, t.trace_id) for t in result.traces]
        return _reply([spans for spans in found if spans])

    async def dependencies(self, request: web.Request) -> web.Response:
        end_ms = _int(request, "endTs", None, MAX_MS)
        if end_ms is None:
            raise web.HTTPBadRequest(text="endTs is required")
        lookback_ms = _int(request, "lookback", DAY_MS, MAX_MS) or DAY_MS
        edges = await self.dependency_finder.edges(
            self._tenant(request), (end_ms - lookback_ms) * 10**6, end_ms * 10**6
        )
        return _reply(
            [
                {"parent": p, "child": c, "callCount": e.calls, "errorCount": e.errors}
                for (p, c), e in sorted(edges.items())
            ]
        )

    async def autocomplete_keys(self, request: web.Request) -> web.Response:
        names = await self.tag_finder.names(self._tenant(request))
        return _reply(sorted(set(names["span"]) | set(names["resource"])))

    async def autocomplete_values(self, request: web.Request) -> web.Response:
        key = _required(request, "key")
        values = await self.tag_finder.values(self._tenant(request), None, key)
        return _reply(sorted({v.value for v in values}))
