"""Jaeger v2's ``api_v3`` over HTTP under ``/jaeger/api/v3/`` (what Jaeger UI 2.15+ searches
with): services, operations, trace search and trace by id as OTLP/JSON (``{"result": ...}``,
ids in hex, enums as numbers), and the trace summaries the UI's search page lists.

Parameters as Jaeger 2.19+ names them (``query.serviceName`` ...), the snake_case names of
earlier releases as aliases; times in RFC 3339 (nanoseconds kept), durations as Go writes
them. Errors as Jaeger's gateway writes them: ``{"error": {"httpCode": N, "message": ...}}``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from aiohttp import web

from threadline.api.common import ForeignQueryRoutes
from threadline.api.trace_by_id import ENCODE_ON_LOOP_SPANS
from threadline.config import parse_duration
from threadline.model.ids import parse_trace_id
from threadline.model.otlp_json_encode import rows_to_otlp_json
from threadline.querier.search import SearchWindow
from threadline.querier.span_search import SpanQuery

PREFIX = "/jaeger/api/v3"
DEFAULT_DEPTH = 100
# OTLP span kinds as Jaeger v2 names them (an unspecified kind reads as internal)
KINDS = {0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)")


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}[status]
    body = orjson.dumps({"error": {"httpCode": status, "message": message}}) + b"\n"
    return cls(body=body, headers={"Content-Type": "text/plain; charset=utf-8"})


def _reply(doc: Any) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _param(request: web.Request, *names: str) -> str | None:
    """The first of ``names`` given (the canonical name, then its aliases)."""
    for name in names:
        value = request.query.get(name)
        if value is not None and value != "":
            return value
    return None


def rfc3339_ns(text: str, name: str) -> int:
    """Unix nanoseconds of an RFC 3339 time, fractions to the nanosecond."""
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        raise _error(400, f"malformed parameter {name}: {text!r} is not an RFC 3339 time")
    zone = "+00:00" if m[3] in ("Z", "z") else m[3]
    try:
        stamp = dt.datetime.fromisoformat(m[1] + zone)
    except ValueError as e:
        raise _error(400, f"malformed parameter {name}: {e}") from None
    return int(stamp.timestamp()) * 10**9 + int((m[2] or "0").ljust(9, "0"))


def _duration_ns(request: web.Request, *names: str) -> int | None:
    raw = _param(request, *names)
    if raw is None:
        return None
    try:
        return int(parse_duration(raw) * 1e9)
    except ValueError:
        raise _error(400, f"malformed parameter {names[0]}: {raw!r} is not a duration") from None


def trace_summary(table: pa.Table) -> dict[str, Any]:
    """Jaeger's TraceSummary of one trace's span rows."""
    parents = table.column("parent_span_id")
    ids = table.column("span_id")
    errors = pc.equal(table.column("status_code"), 2)
    starts = table.column("start_unix_nano")
    ends = pc.add(starts, table.column("duration_nano"))
    services = table.column("service_name")
    has_parent = pc.is_valid(parents)
    orphans = pc.and_(has_parent, pc.invert(pc.is_in(parents, value_set=ids.combine_chunks())))
    roots = pc.invert(has_parent)
    root_rows = pc.indices_nonzero(roots).to_pylist() or pc.indices_nonzero(orphans).to_pylist()
    root = min(root_rows, key=lambda i: starts[i].as_py()) if root_rows else 0
    out: dict[str, Any] = {
        "traceId": table.column("trace_id")[0].as_py().hex(),
        "rootServiceName": services[root].as_py(),
        "rootOperationName": table.column("name")[root].as_py(),
        "minStartTimeUnixNano": str(pc.min(starts).as_py()),
        "maxEndTimeUnixNano": str(pc.max(ends).as_py()),
        "spanCount": table.num_rows,
        "errorSpanCount": pc.sum(errors).as_py() or 0,
        "orphanSpanCount": pc.sum(orphans).as_py() or 0,
    }
    per_service = (
        pa.table({"s": services, "e": errors})
        .group_by("s")
        .aggregate([("e", "count"), ("e", "sum")])
        .sort_by("s")
        .to_pylist()
    )
    out["services"] = [
        {"name": row["s"], "spanCount": row["e_count"], "errorSpanCount": row["e_sum"]}
        for row in per_service
    ]
    return _without_zeros(out)


def _without_zeros(doc: dict[str, Any]) -> dict[str, Any]:
    """As Jaeger's JSON encoder leaves out zero scalars."""
    out = {}
    for key, value in doc.items():
        if isinstance(value, list):
            value = [_without_zeros(v) if isinstance(v, dict) else v for v in value]
        elif value == 0 or value == "":
            continue
        out[key] = value
    return out


class JaegerV3Routes(ForeignQueryRoutes):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PREFIX + "/services", self.services),
            web.get(PREFIX + "/operations", self.operations),
            web.get(PREFIX + "/traces", self.find_traces),
            web.get(PREFIX + "/traces/{trace_id}", self.get_trace),
            web.get(PREFIX + "/trace-summaries", self.trace_summaries),
        ]

    async def services(self, request: web.Request) -> web.Response:
        return _reply({"services": await self.tag_finder.services(self._tenant(request))})

    async def operations(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        kind = (_param(request, "spanKind", "span_kind") or "").lower()
        service = request.query.get("service")
        services = [service] if service else await self.tag_finder.services(tenant)
        found: set[tuple[str, str]] = set()
        for name in services:
            for op, k in await self.tag_finder.operations(tenant, name):
                found.add((op, KINDS.get(k, "internal")))
        ops = [{"name": n, "spanKind": k} for n, k in sorted(found) if not kind or k == kind]
        return _reply({"operations": ops})

    def _trace_id(self, text: str) -> bytes:
        try:
            return parse_trace_id(text)
        except ValueError:
            pass
        try:  # Jaeger also takes ids in base64 (standard or URL-safe)
            padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
            raw = base64.b64decode(padded, validate=True)
        except ValueError:
            raw = b""
        if 0 < len(raw) <= 16:
            return raw.rjust(16, b"\0")
        raise _error(400, f"malformed parameter trace_id: {text!r} is not a trace id")

    async def get_trace(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        trace_id = self._trace_id(request.match_info["trace_id"])
        start = _param(request, "startTime", "start_time")
        end = _param(request, "endTime", "end_time")
        start_ns = rfc3339_ns(start, "startTime") if start else None
        end_ns = rfc3339_ns(end, "endTime") if end else None
        table = await self.finder.find(tenant, trace_id, start_ns, end_ns)
        if table is None:
            raise _error(404, "No traces found")
        if table.num_rows <= ENCODE_ON_LOOP_SPANS:
            return _reply({"result": rows_to_otlp_json(table)})
        # a big trace must not stall the loop
        return _reply({"result": await asyncio.to_thread(rows_to_otlp_json, table)})

    async def _search(self, request: web.Request) -> list[pa.Table]:
        """The span rows of the traces a search finds, newest first."""
        tenant = self._tenant(request)
        low = _param(request, "query.startTimeMin", "query.start_time_min")
        high = _param(request, "query.startTimeMax", "query.start_time_max")
        if low is None or high is None:
            raise _error(400, "query.startTimeMin and query.startTimeMax are required")
        start_ns = rfc3339_ns(low, "query.startTimeMin")
        end_ns = rfc3339_ns(high, "query.startTimeMax")
        if end_ns <= start_ns:
            raise _error(400, "query.startTimeMin must be before query.startTimeMax")
        depth_text = _param(request, "query.searchDepth", "query.search_depth", "query.num_traces")
        try:
            depth = int(depth_text) if depth_text is not None else DEFAULT_DEPTH
        except ValueError:
            raise _error(400, f"malformed parameter query.searchDepth: {depth_text!r}") from None
        if depth <= 0:
            raise _error(400, "query.searchDepth must be greater than 0")
        attributes: dict[str, str] = {}
        if raw := request.query.get("query.attributes"):
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                doc = None
            if not isinstance(doc, dict):
                raise _error(400, "malformed parameter query.attributes: expected a JSON object")
            attributes = {str(k): str(v) for k, v in doc.items()}
        query = SpanQuery(
            service=_param(request, "query.serviceName", "query.service_name"),
            operation=_param(request, "query.operationName", "query.operation_name"),
            tags=attributes,
            min_duration_ns=_duration_ns(request, "query.durationMin", "query.duration_min"),
            max_duration_ns=_duration_ns(request, "query.durationMax", "query.duration_max"),
        )
        window = SearchWindow(start_ns, end_ns)
        limit = min(depth, self.max_result_limit)
        result = await self.engine.search(tenant, query.plan(), window, limit, 1)
        tables = await self._span_rows(tenant, [t.trace_id for t in result.traces])
        return [t for t in tables if t is not None]

    async def find_traces(self, request: web.Request) -> web.Response:
        tables = await self._search(request)
        if not tables:
            raise _error(404, "No traces found")

        def encode() -> dict[str, Any]:
            docs = [rows_to_otlp_json(t) for t in tables]
            return {"resourceSpans": [rs for doc in docs for rs in doc["resourceSpans"]]}

        return _reply({"result": await asyncio.to_thread(encode)})

    async def trace_summaries(self, request: web.Request) -> web.Response:
        tables = await self._search(request)
        return _reply({"summaries": [trace_summary(t) for t in tables]})
