"""The MCP server at ``/api/mcp`` (streamable HTTP, the ``mcp`` package): read-only tools that
let an AI assistant search traces with TraceQL, run TraceQL metrics, read a trace (whole or as
a summary that fits a context window), list attribute names and values, see the service
graph, the slowest and failing operations of a service, and compare two traces.

Every tool answers for the request's tenant (``X-Scope-OrgID``, checked by the HTTP API's own
middleware, credentials included) and reads its parameters through the HTTP routes' parsers,
so the checks and limits are the same; a refusal becomes a tool error with the same message.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import pyarrow as pa
from aiohttp import web
from aiohttp_asgi import ASGIResource
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from threadline.api.common import parse_time_ns
from threadline.api.metrics import MetricsRoutes
from threadline.api.search import SearchRoutes
from threadline.api.search_tags import SearchTagRoutes
from threadline.api.service_graph import ServiceGraphRoutes
from threadline.config import parse_duration
from threadline.model.ids import parse_trace_id
from threadline.querier.search import SearchError, SearchResult, search_response
from threadline.querier.series import TooManySeries
from threadline.querier.sources import QueryLimitError
from threadline.querier.trace_by_id import TraceFinder
from threadline.tenancy import HEADER, TenantError, resolve_tenant
from threadline.traceql.printer import format_string

PATH = "/api/mcp"
T = TypeVar("T")

TRACEQL = """TraceQL selects spans with filters in braces and combines them:
- `{ resource.service.name = "checkout" }`, `{ span.http.status_code >= 500 }`,
  `{ name = "GET /cart" && duration > 300ms }`, `{ status = error }`, `{ kind = server }`;
  scopes: `resource.`, `span.`, `event.`, `link.`, `instrumentation.`; `.x` is span or resource.
- intrinsics: name, status (ok, error, unset), kind, duration, statusMessage, rootName,
  rootServiceName, traceDuration, trace:id, span:id; regex `=~ "pat.*"`, `!=`, `!~`, `= nil`.
- structure: `{ A } > { B }` (B child of A), `>>` descendant, `<`/`<<` parent/ancestor,
  `~` sibling, `&&`/`||` between spansets (same trace).
- pipelines: `{ } | count() > 10`, `| avg(duration) > 1s`, `| by(resource.service.name)`,
  `| select(span.http.url)`.
- metrics (query_metrics tools): `{ status = error } | rate() by (resource.service.name)`,
  `{ } | quantile_over_time(duration, .5, .99) by (name)`, `count_over_time()`,
  `histogram_over_time(duration)`, `{ } | compare({ status = error })`.
Times: unix seconds, RFC 3339, or a duration back from now such as `1h` or `15m`."""

INSTRUCTIONS = (
    "threadline stores distributed traces (OpenTelemetry spans). Start with list_services or "
    "service_graph to see what exists, list_attribute_names/values to learn the attributes, "
    "search_traces to find requests, get_trace (summary first) to read one, "
    "service_operations for slow or failing operations, compare_traces to tell two apart.\n\n"
    + TRACEQL
)


def _when(text: str | None, default_ns: int, name: str) -> int:
    """Unix ns of a time given as unix seconds/ns, RFC 3339, or a duration back from now."""
    if text is None or not str(text).strip():
        return default_ns
    raw = str(text).strip()
    if raw[-1:].isalpha() and raw[:1].isdigit():  # "1h", "15m", "30s", "2d"
        try:
            return time.time_ns() - int(parse_duration(raw) * 1e9)
        except ValueError:
            pass
    try:
        return parse_time_ns(raw, name)
    except web.HTTPBadRequest as e:
        raise ToolError(e.text or f"invalid {name}") from None


def _seconds(ns: int) -> str:
    return str(ns // 10**9) if ns % 10**9 == 0 else f"{ns // 10**9}.{ns % 10**9:09d}"


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


def _plain(value: dict[str, Any]) -> Any:
    """An OTLP JSON value as plain JSON (``{"intValue": "3"}`` -> 3)."""
    if not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "intValue":
        return int(inner)
    if kind == "arrayValue":
        return [_plain(v) for v in inner.get("values", [])]
    return inner


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


class TraceTools:
    """The tools, over the HTTP API's routes and the trace finder."""

    def __init__(
        self,
        search: SearchRoutes,
        tags: SearchTagRoutes,
        metrics: MetricsRoutes,
        graph: ServiceGraphRoutes,
        finder: TraceFinder,
        multitenancy_enabled: bool,
    ) -> None:
        self.search = search
        self.tags = tags
        self.metrics = metrics
        self.graph = graph
        self.finder = finder
        self.multitenancy_enabled = multitenancy_enabled

    def tenant(self, headers: Mapping[str, str] | None) -> str:
        values = [v for k, v in (headers or {}).items() if k.lower() == HEADER.lower()]
        try:
            return resolve_tenant(values, self.multitenancy_enabled)
        except TenantError as e:
            raise ToolError(e.message) from None

    @staticmethod
    async def answer(work: Callable[[], Awaitable[T]]) -> T:
        """``work()``'s result; the HTTP API's refusals become tool errors with their text."""
        try:
            return await work()
        except web.HTTPException as e:
            raise ToolError(e.text or e.reason) from None
        except (SearchError, TooManySeries, QueryLimitError, ValueError) as e:
            raise ToolError(str(e)) from None

    async def search_traces(
        self, tenant: str, query: str, limit: int, start: str | None, end: str | None
    ) -> dict[str, Any]:
        now = time.time_ns()
        until = _when(end, now, "end")
        since = _when(start, until - 3600 * 10**9, "start")
        p = {"q": query, "limit": str(limit), "start": _seconds(since), "end": _seconds(until)}

        async def run() -> SearchResult:
            return await self.search.engine.search(tenant, *self.search.parse(p))

        result = await self.answer(run)
        doc = search_response(result)
        traces = []
        for t in doc.get("traces", []):
            spans = [s for ss in t.get("spanSets", []) for s in ss["spans"]]
            traces.append(
                {
                    "traceID": t["traceID"],
                    "rootService": t["rootServiceName"],
                    "rootName": t.get("rootTraceName", ""),
                    "start": _iso(int(t["startTimeUnixNano"])),
                    "durationMs": t.get("durationMs", 0),
                    "matchedSpans": sum(ss["matched"] for ss in t.get("spanSets", [])),
                    "examples": [
                        {
                            "spanID": s["spanID"],
                            "name": s.get("name", ""),
                            "durationMs": _ms(int(s["durationNanos"])),
                            **(
                                {
                                    "attributes": {
                                        a["key"]: _plain(a["value"]) for a in s["attributes"]
                                    }
                                }
                                if s.get("attributes")
                                else {}
                            ),
                        }
                        for s in spans[:3]
                    ],
                }
            )
        return {"window": [_iso(since), _iso(until)], "traces": traces}

    async def metrics_range(
        self, tenant: str, query: str, start: str | None, end: str | None, step: str | None
    ) -> dict[str, Any]:
        now = time.time_ns()
        until = _when(end, now, "end")
        since = _when(start, until - 3600 * 10**9, "start")
        p = {"q": query, "start": str(since), "end": str(until)}
        if step:
            p["step"] = step
        return await self.answer(lambda: self.metrics.range_answer(tenant, p))

    async def metrics_instant(
        self, tenant: str, query: str, start: str | None, end: str | None
    ) -> dict[str, Any]:
        now = time.time_ns()
        until = _when(end, now, "end")
        since = _when(start, until - 3600 * 10**9, "start")
        p = {"q": query, "start": str(since), "end": str(until)}
        return await self.answer(lambda: self.metrics.instant_answer(tenant, p))

    async def trace_rows(self, tenant: str, trace_id: str) -> pa.Table:
        try:
            tid = parse_trace_id(trace_id.strip())
        except ValueError as e:
            raise ToolError(str(e)) from None
        table = await self.finder.find(tenant, tid)
        if table is None:
            raise ToolError(f"trace {trace_id} not found")
        return table

    async def get_trace(
        self, tenant: str, trace_id: str, mode: str, max_spans: int
    ) -> dict[str, Any]:
        if mode not in ("summary", "full"):
            raise ToolError('mode must be "summary" or "full"')
        table = await self.trace_rows(tenant, trace_id)
        return trace_document(table, mode, max(1, min(max_spans, 2000)))

    async def compare_traces(self, tenant: str, a: str, b: str) -> dict[str, Any]:
        left = operations(await self.trace_rows(tenant, a))
        right = operations(await self.trace_rows(tenant, b))
        rows = []
        for key in sorted(set(left) | set(right)):
            la, rb = left.get(key), right.get(key)
            rows.append(
                {
                    "service": key[0],
                    "operation": key[1],
                    "spansA": la["spans"] if la else 0,
                    "spansB": rb["spans"] if rb else 0,
                    "totalMsA": la["totalMs"] if la else 0.0,
                    "totalMsB": rb["totalMs"] if rb else 0.0,
                    "errorsA": la["errors"] if la else 0,
                    "errorsB": rb["errors"] if rb else 0,
                }
            )
        rows.sort(key=lambda r: -abs(r["totalMsA"] - r["totalMsB"]))
        return {
            "onlyInA": [f"{s}: {o}" for s, o in sorted(set(left) - set(right))],
            "onlyInB": [f"{s}: {o}" for s, o in sorted(set(right) - set(left))],
            "operations": rows,
        }

    async def service_operations(
        self, tenant: str, service: str, start: str | None, end: str | None
    ) -> dict[str, Any]:
        name = format_string(service)
        base = f"{{ resource.service.name = {name} }}"
        latency = await self.metrics_instant(
            tenant, f"{base} | quantile_over_time(duration, .5, .99) by (name)", start, end
        )
        calls = await self.metrics_instant(
            tenant, f"{base} | count_over_time() by (name)", start, end
        )
        errors = await self.metrics_instant(
            tenant,
            f"{{ resource.service.name = {name} && status = error }} | count_over_time() by (name)",
            start,
            end,
        )
        ops: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"calls": 0, "errors": 0, "p50Ms": None, "p99Ms": None}
        )

        def label(series: dict[str, Any], key: str) -> Any:
            for lbl in series["labels"]:
                if lbl["key"] == key:
                    return next(iter(lbl["value"].values()), None)
            return None

        for s in calls["series"]:
            ops[str(label(s, "name"))]["calls"] = int(s["value"])
        for s in errors["series"]:
            ops[str(label(s, "name"))]["errors"] = int(s["value"])
        for s in latency["series"]:
            p = label(s, "p")
            key = "p50Ms" if float(p) == 0.5 else "p99Ms"
            ops[str(label(s, "name"))][key] = round(s["value"] * 1000, 3)
        rows = [{"operation": op, **v} for op, v in ops.items() if v["calls"]]
        for row in rows:
            row["errorRate"] = round(row["errors"] / row["calls"], 4)
        return {
            "service": service,
            "slowest": sorted(rows, key=lambda r: -(r["p99Ms"] or 0))[:10],
            "failing": sorted(
                (r for r in rows if r["errors"]), key=lambda r: (-r["errorRate"], -r["errors"])
            )[:10],
        }


def operations(table: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (service, span name): spans, total milliseconds and errors of one trace."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    cols = table.select(["service_name", "name", "duration_nano", "status_code"]).to_pylist()
    for row in cols:
        entry = out.setdefault(
            (row["service_name"], row["name"]), {"spans": 0, "totalMs": 0.0, "errors": 0}
        )
        entry["spans"] += 1
        entry["totalMs"] = round(entry["totalMs"] + row["duration_nano"] / 1e6, 3)
        entry["errors"] += row["status_code"] == 2
    return out


_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def trace_document(table: pa.Table, mode: str, max_spans: int) -> dict[str, Any]:
    """A trace for a model to read: in ``summary`` mode its shape (services, errors, the span
    tree as indented lines, the slowest spans), in ``full`` mode its spans with attributes;
    at most ``max_spans`` spans either way, saying how many were left out."""
    rows = table.select(
        [
            "span_id",
            "parent_span_id",
            "service_name",
            "name",
            "kind",
            "start_unix_nano",
            "duration_nano",
            "status_code",
            "status_message",
            "span_attrs_str",
            "span_attrs_int",
            "span_attrs_float",
            "span_attrs_bool",
        ]
    ).to_pylist()
    start = min(r["start_unix_nano"] for r in rows)
    end = max(r["start_unix_nano"] + r["duration_nano"] for r in rows)
    services = Counter(r["service_name"] for r in rows)
    errors = [r for r in rows if r["status_code"] == 2]
    doc: dict[str, Any] = {
        "traceID": table.column("trace_id")[0].as_py().hex(),
        "spans": len(rows),
        "start": _iso(start),
        "durationMs": _ms(end - start),
        "services": dict(services.most_common()),
        "errors": [
            {
                "spanID": r["span_id"].hex(),
                "service": r["service_name"],
                "name": r["name"],
                "message": r["status_message"],
            }
            for r in errors[:20]
        ],
    }
    ids = {r["span_id"] for r in rows}
    children: dict[bytes | None, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        parent = r["parent_span_id"] if r["parent_span_id"] in ids else None
        children[parent].append(r)
    ordered: list[tuple[int, dict[str, Any]]] = []
    stack = [(0, r) for r in reversed(children[None])]
    while stack:
        depth, r = stack.pop()
        ordered.append((depth, r))
        stack.extend((depth + 1, c) for c in reversed(children.get(r["span_id"], [])))
    shown = ordered[:max_spans]
    if mode == "summary":
        doc["tree"] = [
            f"{'  ' * depth}{r['service_name']}: {r['name']} "
            f"[{_KINDS.get(r['kind'], 'unspecified')}] +{_ms(r['start_unix_nano'] - start)}ms "
            f"{_ms(r['duration_nano'])}ms{' ERROR' if r['status_code'] == 2 else ''}"
            f" ({r['span_id'].hex()})"
            for depth, r in shown
        ]
        slowest = sorted(rows, key=lambda r: -r["duration_nano"])[:5]
        doc["slowest"] = [
            {"spanID": r["span_id"].hex(), "name": r["name"], "durationMs": _ms(r["duration_nano"])}
            for r in slowest
        ]
    else:
        doc["spanList"] = [
            {
                "spanID": r["span_id"].hex(),
                "parentSpanID": r["parent_span_id"].hex() if r["parent_span_id"] else None,
                "depth": depth,
                "service": r["service_name"],
                "name": r["name"],
                "kind": _KINDS.get(r["kind"], "unspecified"),
                "startOffsetMs": _ms(r["start_unix_nano"] - start),
                "durationMs": _ms(r["duration_nano"]),
                "status": {0: "unset", 1: "ok", 2: "error"}.get(r["status_code"], "unset"),
                **({"statusMessage": r["status_message"]} if r["status_message"] else {}),
                "attributes": {
                    k: v
                    for col in ("span_attrs_str", "span_attrs_int", "span_attrs_float")
                    for k, v in (r[col] or [])
                }
                | {k: v for k, v in (r["span_attrs_bool"] or [])},
            }
            for depth, r in shown
        ]
    if len(ordered) > len(shown):
        doc["leftOut"] = (
            f"{len(ordered) - len(shown)} more spans not shown (max_spans={max_spans}); "
            "ask again with a larger max_spans, or search within the trace with TraceQL "
            '(`{ trace:id = "<id>" && ... }`)'
        )
    return doc


def build_server(tools: TraceTools) -> MCPServer:
    server = MCPServer("threadline", instructions=INSTRUCTIONS)

    def register(fn: Callable[..., Awaitable[dict[str, Any]]], description: str) -> None:
        server.tool(description=description, structured_output=False)(fn)

    async def search_traces(
        query: str, ctx: Context, limit: int = 20, start: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        return await tools.search_traces(tools.tenant(ctx.headers), query, limit, start, end)

    async def query_metrics(
        query: str,
        ctx: Context,
        start: str | None = None,
        end: str | None = None,
        step: str | None = None,
    ) -> dict[str, Any]:
        tenant = tools.tenant(ctx.headers)
        return await tools.metrics_range(tenant, query, start, end, step)

    async def query_metrics_instant(
        query: str, ctx: Context, start: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        return await tools.metrics_instant(tools.tenant(ctx.headers), query, start, end)

    async def get_trace(
        trace_id: str, ctx: Context, mode: str = "summary", max_spans: int = 200
    ) -> dict[str, Any]:
        return await tools.get_trace(tools.tenant(ctx.headers), trace_id, mode, max_spans)

    async def list_attribute_names(
        ctx: Context, scope: str = "", query: str = "", since: str = "1h"
    ) -> dict[str, Any]:
        tenant = tools.tenant(ctx.headers)
        p = {"scope": scope, "q": query, **_window_params(since)}
        doc = await tools.answer(lambda: tools.tags.names_v2(tenant, p))
        return {"scopes": doc["scopes"]}

    async def list_attribute_values(
        name: str, ctx: Context, query: str = "", since: str = "1h"
    ) -> dict[str, Any]:
        tenant = tools.tenant(ctx.headers)
        p = {"q": query, **_window_params(since)}
        doc = await tools.answer(lambda: tools.tags.values_of_v2(tenant, name, p))
        return {"values": doc["tagValues"]}

    async def list_services(ctx: Context, since: str = "1h") -> dict[str, Any]:
        tenant = tools.tenant(ctx.headers)
        window = _window_params(since)
        doc = await tools.answer(
            lambda: tools.tags.values_of_v2(tenant, "resource.service.name", window)
        )
        return {"services": [v["value"] for v in doc["tagValues"]]}

    async def service_graph(ctx: Context, since: str = "1h") -> dict[str, Any]:
        tenant = tools.tenant(ctx.headers)
        end = time.time_ns()
        start = _when(since, end - 3600 * 10**9, "since")
        return await tools.answer(
            lambda: tools.graph.graph_doc(tenant, start // 10**9, end // 10**9)
        )

    async def service_operations(
        service: str, ctx: Context, start: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        return await tools.service_operations(tools.tenant(ctx.headers), service, start, end)

    async def compare_traces(trace_a: str, trace_b: str, ctx: Context) -> dict[str, Any]:
        return await tools.compare_traces(tools.tenant(ctx.headers), trace_a, trace_b)

    register(
        search_traces,
        "Find traces with TraceQL, newest first: each with its root service and operation, "
        "start, duration and a few matching spans. `query` is TraceQL such as "
        '`{ resource.service.name = "cart" && status = error }`; `limit` traces (default 20); '
        "`start`/`end` as unix seconds, RFC 3339 or `1h` (ago); default the last hour.\n\n"
        + TRACEQL,
    )
    register(
        query_metrics,
        "TraceQL metrics over time (a range query): series of points, e.g. "
        "`{ status = error } | rate() by (resource.service.name)` or "
        "`{ } | quantile_over_time(duration, .99) by (name)`; `step` like `60s` "
        "(default about 240 points). Durations come out in seconds.",
    )
    register(
        query_metrics_instant,
        "TraceQL metrics as one value per series over the whole window (an instant query), "
        "e.g. `{ } | count_over_time() by (resource.service.name)`.",
    )
    register(
        get_trace,
        "Read one trace by its id. `mode=summary` (default) gives its services, errors, "
        "slowest spans and the span tree as indented lines (service: operation [kind] "
        "+offset duration), which keeps large traces readable; `mode=full` lists the spans "
        "with their attributes. At most `max_spans` spans (default 200) are shown.",
    )
    register(
        list_attribute_names,
        "Attribute names seen recently, per scope (resource, span, event, link, "
        "instrumentation, intrinsic); `scope` narrows to one; `query` (a TraceQL filter) to "
        "spans it matches. Use them in TraceQL as `resource.<name>` / `span.<name>`.",
    )
    register(
        list_attribute_values,
        "The values of one attribute, typed, e.g. `name=resource.service.name` or "
        "`span.http.route` or an intrinsic such as `status`; `query` (a TraceQL filter) "
        "narrows to spans it matches.",
    )
    register(list_services, "The services that sent spans recently (`since`, default 1h).")
    register(
        service_graph,
        "Which service calls which, with request and error rates and p50/p95 latency per "
        "service and per call, over the last `since` (default 1h).",
    )
    register(
        service_operations,
        "A service's operations with calls, errors, error rate and p50/p99 latency (estimated "
        "from log2 histograms): the slowest and the failing ones first (default window the "
        "last hour).",
    )
    register(
        compare_traces,
        "Compare two traces: per service and operation, their span counts, total time and "
        "errors, the biggest differences first, and what only one of them has.",
    )
    return server


def _window_params(since: str) -> dict[str, str]:
    end = time.time_ns()
    start = _when(since, end - 3600 * 10**9, "since")
    return {"start": str(start // 10**9), "end": str(end // 10**9 + 1)}


def mount(app: web.Application, tools: TraceTools, prefix: str, host: str) -> str:
    """Serve the MCP server at ``prefix + PATH`` of ``app`` (its middleware, auth included,
    applies); returns the path. Listening on loopback (``host``), requests must name a
    loopback host (the package's DNS rebinding guard)."""
    path = prefix + PATH
    asgi = build_server(tools).streamable_http_app(
        streamable_http_path=path, stateless_http=True, json_response=True, host=host
    )

    async def whole_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # the MCP app routes on the whole path, not one below a mount point
        await asgi({**scope, "root_path": ""} if scope["type"] == "http" else scope, receive, send)

    resource = ASGIResource(whole_path, root_path=path)  # type: ignore[arg-type]
    app.router.register_resource(resource)
    resource.lifespan_mount(app)
    return path
