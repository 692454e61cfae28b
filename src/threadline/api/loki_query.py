"""Loki's query API over the stored log lines, for Grafana's Loki data source and ``logcli``:
``/loki/api/v1/query_range``, ``/query``, ``/labels``, ``/label/{name}/values``, ``/series`` and
``/index/stats`` (GET and POST form), LogQL through ``querier.logql``. A LogQL parse error is a
400 with Loki's wording and position."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from aiohttp import web

from threadline.api.common import parse_time_ns, tenant_of
from threadline.api.trace_by_id import json_response
from threadline.config import parse_duration
from threadline.logql import LogQLParseError, ast, parse
from threadline.logstore.store import LogStore
from threadline.querier.logql import (
    Evaluator,
    LogQLError,
    Series,
    label_name,
    loki_matrix,
    loki_number,
    loki_streams,
    select_lines,
    stream_key,
)

PREFIX = "/loki/api/v1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
DEFAULT_LOOKBACK_NS = 3600 * 10**9


def _success(data: Any) -> web.Response:
    return json_response({"status": "success", "data": data})


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message + "\n")


class LokiQueryRoutes:
    def __init__(self, logs: LogStore, multitenancy_enabled: bool) -> None:
        self.logs = logs
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self, prefix: str = "") -> list[web.RouteDef]:
        out = []
        for path, handler in (
            ("/query_range", self.query_range),
            ("/query", self.query),
            ("/labels", self.labels),
            ("/label/{name}/values", self.label_values),
            ("/series", self.series),
            ("/index/stats", self.index_stats),
        ):
            out += [
                web.get(prefix + PREFIX + path, handler),
                web.post(prefix + PREFIX + path, handler),
            ]
        return out

    # -- parameters --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    @staticmethod
    def _window(params: dict[str, str]) -> tuple[int, int]:
        end = parse_time_ns(params["end"], "end") if params.get("end") else time.time_ns()
        start = (
            parse_time_ns(params["start"], "start")
            if params.get("start")
            else end - DEFAULT_LOOKBACK_NS
        )
        if end < start:
            raise _bad("the end timestamp must not be before the start time")
        return start, end

    @staticmethod
    def _query(params: dict[str, str]) -> ast.Expr:
        text = params.get("query")
        if not text:
            raise _bad("query is required")
        try:
            return parse(text)
        except LogQLParseError as e:
            raise _bad(str(e)) from None

    @staticmethod
    def _limit(params: dict[str, str]) -> int:
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise _bad(f"invalid limit {params.get('limit')!r}: an integer") from None
        if limit <= 0 or limit > MAX_LIMIT:
            raise _bad(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        return limit

    def _evaluator(self, tenant: str) -> Evaluator:
        return Evaluator(lambda lo, hi: self.logs.between(tenant, lo, hi))

    # -- queries -----------------------------------------------------------------------------

    async def query_range(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        params = await self._params(request)
        expr = self._query(params)
        start, end = self._window(params)
        if isinstance(expr, ast.LogQuery):
            limit = self._limit(params)
            forward = params.get("direction", "backward").lower() == "forward"
            lines = await asyncio.to_thread(self._evaluator(tenant).lines, expr, start, end)
            return _success(
                {"resultType": "streams", "result": loki_streams(lines, limit, forward)}
            )
        step_ns = self._step(params, start, end)
        steps = np.arange(start, end + 1, step_ns, dtype=np.int64)
        series = await self._metric(tenant, expr, steps)
        return _success({"resultType": "matrix", "result": loki_matrix(series, steps)})

    async def query(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        params = await self._params(request)
        expr = self._query(params)
        at = parse_time_ns(params["time"], "time") if params.get("time") else time.time_ns()
        if isinstance(expr, ast.LogQuery):
            raise _bad("log queries are not supported as an instant query type, use query_range")
        steps = np.array([at], dtype=np.int64)
        series = await self._metric(tenant, expr, steps)
        if isinstance(series, float):
            return _success({"resultType": "scalar", "result": [at / 1e9, loki_number(series)]})
        result = [
            {"metric": dict(labels), "value": [at / 1e9, loki_number(values[0])]}
            for labels, values in sorted(series.items())
            if not math.isnan(values[0])
        ]
        return _success({"resultType": "vector", "result": result})

    @staticmethod
    def _step(params: dict[str, str], start: int, end: int) -> int:
        raw = params.get("step")
        if raw:
            try:
                step = int(parse_duration(raw) * 1e9)
            except ValueError:
                raise _bad(f"invalid step {raw!r}: a duration such as 15s or seconds") from None
        else:  # as Loki picks one: about 250 points, at least a second
            step = max(10**9, math.ceil((end - start) / 250 / 10**9) * 10**9)
        if step <= 0:
            raise _bad("zero or negative query resolution step widths are not accepted")
        if (end - start) / step > 11_000:
            raise _bad(
                "exceeded maximum resolution of 11,000 points per timeseries: "
                "try decreasing the query resolution (?step=XX)"
            )
        return step

    async def _metric(self, tenant: str, expr: ast.Expr, steps: np.ndarray) -> Series | float:
        try:
            return await asyncio.to_thread(self._evaluator(tenant).metric, expr, steps)  # type: ignore[arg-type]
        except LogQLError as e:
            raise _bad(str(e)) from None

    # -- metadata ----------------------------------------------------------------------------

    async def _table(self, request: web.Request) -> tuple[pa.Table, dict[str, str]]:
        tenant = tenant_of(request, self.multitenancy_enabled)
        params = await self._params(request)
        start, end = self._window(params)
        return await asyncio.to_thread(self.logs.between, tenant, start, end), params

    async def labels(self, request: web.Request) -> web.Response:
        table, _ = await self._table(request)
        names = {"service_name", "level"} if table.num_rows else set()
        chunks = table.column("resource_attrs_str").chunks
        keys = {k for chunk in chunks for k in pc.unique(chunk.keys).to_pylist()}
        names |= {label_name(k) for k in keys if k != "service.name"}
        return _success(sorted(names))

    async def label_values(self, request: web.Request) -> web.Response:
        table, params = await self._table(request)
        name = request.match_info["name"]
        expr = self._query(params) if params.get("query") else ast.LogQuery(ast.StreamSelector(()))
        if not isinstance(expr, ast.LogQuery):
            raise _bad("query must be a log stream selector")
        lines = await asyncio.to_thread(select_lines, table, expr)
        return _success(sorted({v for line in lines if (v := line.labels.get(name, ""))}))

    async def series(self, request: web.Request) -> web.Response:
        table, params = await self._table(request)
        matches = request.query.getall("match[]", []) or (
            [params["match[]"]] if params.get("match[]") else []
        )
        if not matches:
            raise _bad("at least one match[] selector is required")
        found: set[tuple[tuple[str, str], ...]] = set()
        for text in matches:
            try:
                expr = parse(text)
            except LogQLParseError as e:
                raise _bad(str(e)) from None
            if not isinstance(expr, ast.LogQuery):
                raise _bad("match[] must be a log stream selector")
            for line in await asyncio.to_thread(select_lines, table, expr):
                found.add(stream_key(line))
        return _success([dict(labels) for labels in sorted(found)])

    async def index_stats(self, request: web.Request) -> web.Response:
        table, params = await self._table(request)
        expr = self._query(params)
        if not isinstance(expr, ast.LogQuery):
            raise _bad("query must be a log stream selector")
        lines = await asyncio.to_thread(select_lines, table, expr)
        streams = {stream_key(line) for line in lines}
        return json_response(
            {
                "streams": len(streams),
                "chunks": len(streams),
                "entries": len(lines),
                "bytes": sum(len(line.text.encode()) for line in lines),
            }
        )
