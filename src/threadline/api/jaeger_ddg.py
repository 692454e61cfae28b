"""The data of Jaeger UI's deep dependency graph, ``GET /analytics/v1/dependencies`` (also under
``/jaeger``): the call paths through a service (and operation), as (service, operation) pairs
from a root span down to a leaf, read from recent traces that pass through it, each with a
trace that took it (``exemplar_trace_id``). Jaeger itself leaves this route to an analytics
backend; here it comes from the stored traces."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import orjson
import pyarrow as pa
from aiohttp import web

from threadline.api.common import ForeignQueryRoutes
from threadline.api.jaeger_query import jaeger_error
from threadline.querier.search import SearchWindow
from threadline.querier.span_search import SpanQuery

ROUTE = "/analytics/v1/dependencies"
TRACES = 100  # traces read per answer, the newest through the focal service
WINDOW_NS = 3600 * 10**9  # the window when the UI sends start=0 / end=0


def trace_paths(table: pa.Table) -> list[tuple[tuple[str, str], ...]]:
    """Every root-to-leaf path of one trace's spans, as (service, operation) pairs."""
    rows = table.select(["span_id", "parent_span_id", "service_name", "name"]).to_pylist()
    ids = {r["span_id"] for r in rows}
    children: dict[bytes | None, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        children[r["parent_span_id"] if r["parent_span_id"] in ids else None].append(r)
    out = []
    stack = [(r, ((r["service_name"], r["name"]),)) for r in children[None]]
    while stack:
        row, path = stack.pop()
        below = children.get(row["span_id"], [])
        if not below:
            out.append(path)
        for child in below:
            stack.append((child, (*path, (child["service_name"], child["name"]))))
    return out


class DeepDependencyRoutes(ForeignQueryRoutes):
    def routes(self) -> list[web.RouteDef]:
        return [web.get(ROUTE, self.dependencies), web.get("/jaeger" + ROUTE, self.dependencies)]

    async def dependencies(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        service = request.query.get("service", "")
        if not service:
            raise jaeger_error(400, "parameter 'service' is required")
        operation = request.query.get("operation") or None
        try:
            start_ms = int(request.query.get("start") or 0)
            end_ms = int(request.query.get("end") or 0)
        except ValueError:
            raise jaeger_error(400, "start and end must be unix milliseconds") from None
        end_ns = end_ms * 10**6 if end_ms > 0 else time.time_ns()
        start_ns = start_ms * 10**6 if start_ms > 0 else end_ns - WINDOW_NS
        query = SpanQuery(service=service, operation=operation)
        result = await self.engine.search(
            tenant, query.plan(), SearchWindow(start_ns, end_ns), TRACES, 1
        )
        tables = await self._span_rows(tenant, [t.trace_id for t in result.traces])
        exemplars: dict[tuple[tuple[str, str], ...], str] = {}
        for trace, table in zip(result.traces, tables, strict=True):
            if table is None:
                continue
            for path in trace_paths(table):
                focal = any(s == service and (operation is None or o == operation) for s, o in path)
                if focal:
                    exemplars.setdefault(path, trace.trace_id.hex())
        doc = {
            "dependencies": [
                {
                    "path": [{"service": s, "operation": o} for s, o in path],
                    "attributes": [{"key": "exemplar_trace_id", "value": trace_id}],
                }
                for path, trace_id in sorted(exemplars.items())
            ]
        }
        return web.Response(body=orjson.dumps(doc), content_type="application/json")
