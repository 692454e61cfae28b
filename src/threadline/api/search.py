"""Tempo's search route: ``GET /api/search`` with TraceQL (``q``) or legacy ``tags``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from threadline.api.common import (
    Params,
    duration_param,
    go_duration,
    int_param,
    params,
    tenant_of,
    unix_time_ns_param,
    use_form,
    wants_protobuf,
)
from threadline.api.tempopb import search_response_protobuf
from threadline.api.trace_by_id import PROTOBUF, json_response
from threadline.config import QuerierConfig
from threadline.querier.search import (
    SearchEngine,
    SearchError,
    SearchQuery,
    SearchWindow,
    search_response,
)
from threadline.querier.tag_search import parse_logfmt, tag_search_plan
from threadline.traceql.plan import Plan, QueryError

_KNOWN = {"q", "tags", "minDuration", "maxDuration", "limit", "spss", "start", "end"}


def _uint(request: Params, name: str, default: int, maximum: int, refusal: str) -> int:
    """A count parameter; one over ``maximum`` is refused with ``refusal`` (Tempo's words)."""
    value = int_param(request, name, default, minimum=1, maximum=2**63 - 1)
    assert value is not None
    if value > maximum:
        raise web.HTTPBadRequest(text=refusal.format(value=value, maximum=maximum))
    return value


class SearchRoutes:
    def __init__(
        self,
        engine: SearchEngine,
        compile_traceql: Callable[[str], Plan],
        multitenancy_enabled: bool,
        limits: QuerierConfig,
    ) -> None:
        self.engine = engine
        self.compile_traceql = compile_traceql
        self.multitenancy_enabled = multitenancy_enabled
        self.limits = limits

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(prefix + "/api/search", self.search),
            web.post(prefix + "/api/search", self.search_form),
        ]

    async def search_form(self, request: web.Request) -> web.Response:
        """``POST /api/search`` with the parameters in a form body (a query too long for a
        URL), and in the URL too."""
        use_form(request, await request.post())
        return await self.search(request)

    def _plan(self, request: Params) -> Plan:
        q = params(request).get("q")
        tags = params(request).get("tags")
        if q is not None and tags is not None:
            raise web.HTTPBadRequest(
                text="invalid request: can't specify tags and q in the same query"
            )
        limit = self.limits.max_query_expression_size_bytes
        if q is not None and len(q.encode()) > limit:
            raise web.HTTPBadRequest(
                text=f"TraceQL expression exceeds the configured maximum size of {limit} bytes, "
                "reduce the query expression size or contact your system administrator "
                "(querier.max_query_expression_size_bytes)"
            )
        try:
            if q is not None and q.strip():
                return self.compile_traceql(q)
            if tags is not None:
                return tag_search_plan(parse_logfmt(tags))
            # old Grafana sends tags as plain parameters
            legacy = {k: v for k, v in params(request).items() if k not in _KNOWN}
            return tag_search_plan(legacy)
        except QueryError as e:
            raise web.HTTPBadRequest(text=str(e)) from None

    def parse(self, request: Params) -> SearchQuery:
        """The search a request asks for; raises ``HTTPBadRequest`` naming what is wrong."""
        lim = self.limits
        limit = _uint(
            request,
            "limit",
            lim.default_result_limit,
            lim.max_result_limit,
            "limit {value} exceeds max limit {maximum} (querier.max_result_limit)",
        )
        spss = _uint(
            request,
            "spss",
            lim.default_spans_per_span_set,
            lim.max_spans_per_span_set,
            "spans per span set exceeds {maximum}. received {value} "
            "(querier.max_spans_per_span_set)",
        )
        max_window = lim.max_search_duration
        start = unix_time_ns_param(request, "start")
        end = unix_time_ns_param(request, "end")
        if start is not None and end is not None:
            if end <= start:
                raise web.HTTPBadRequest(text="invalid start/end: end must be after start")
            if end - start > max_window * 10**9:
                raise web.HTTPBadRequest(
                    text=f"range specified by start and end exceeds {go_duration(max_window)}. "
                    f"received start={start // 10**9} end={end // 10**9} "
                    "(querier.max_search_duration)"
                )
        window = SearchWindow(
            start,
            end,
            duration_param(request, "minDuration"),
            duration_param(request, "maxDuration"),
        )
        if (
            window.min_duration_ns is not None
            and window.max_duration_ns is not None
            and window.min_duration_ns > window.max_duration_ns
        ):
            raise web.HTTPBadRequest(text="invalid minDuration/maxDuration: min is over max")
        return SearchQuery(self._plan(request), window, limit, spss)

    async def search(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        query = self.parse(request)
        try:
            result = await self.engine.search(tenant, *query)
        except SearchError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        doc = search_response(result)
        if wants_protobuf(request):
            return web.Response(body=search_response_protobuf(doc), content_type=PROTOBUF)
        return json_response(doc)
