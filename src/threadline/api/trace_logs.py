"""``GET /api/traces/{traceID}/logs`` (optionally ``spanID``, ``start``, ``end`` in unix
seconds): the log lines of a trace in time order, each as an OTLP/JSON log record with its
service, resource and scope."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
from aiohttp import web

from threadline.api.common import parse_unix_seconds, tenant_of
from threadline.api.trace_by_id import json_response
from threadline.logstore.store import LogStore
from threadline.model.ids import hex_id_to_bytes, parse_trace_id
from threadline.model.otlp_json_encode import json_attributes


def log_record_json(row: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "timeUnixNano": str(row["time_unix_nano"]),
        "observedTimeUnixNano": str(row["observed_time_unix_nano"]),
        "severityNumber": row["severity_number"],
        "severityText": row["severity_text"],
        "body": row["body"],
        "serviceName": row["service_name"],
        "attributes": json_attributes(row, "log_attrs"),
        "resource": {"attributes": json_attributes(row, "resource_attrs")},
        "scope": {
            "name": row["scope_name"],
            "version": row["scope_version"],
            "attributes": json_attributes(row, "scope_attrs"),
        },
    }
    if row["trace_id"]:
        doc["traceId"] = row["trace_id"].hex()
    if row["span_id"]:
        doc["spanId"] = row["span_id"].hex()
    if row["event_name"]:
        doc["eventName"] = row["event_name"]
    return doc


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [log_record_json(row) for row in table.to_pylist()]


class TraceLogsRoutes:
    def __init__(self, logs: LogStore, multitenancy_enabled: bool) -> None:
        self.logs = logs
        self.multitenancy_enabled = multitenancy_enabled

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [web.get(prefix + "/api/traces/{trace_id}/logs", self.trace_logs)]

    async def trace_logs(self, request: web.Request) -> web.Response:
        tenant = tenant_of(request, self.multitenancy_enabled)
        try:
            trace_id = parse_trace_id(request.match_info["trace_id"])
            raw_span = request.query.get("spanID")
            span_id = hex_id_to_bytes(raw_span, "spanID") if raw_span else None
            if span_id is not None and len(span_id) != 8:
                raise ValueError(f"spanID {raw_span!r} is not 16 hex characters")
        except ValueError as e:
            raise web.HTTPBadRequest(text=str(e)) from None
        start = parse_unix_seconds(request, "start")
        end = parse_unix_seconds(request, "end")
        table = await asyncio.to_thread(
            self.logs.trace_logs,
            tenant,
            trace_id,
            span_id,
            start * 10**9 if start is not None else None,
            end * 10**9 + 10**9 - 1 if end is not None else None,
        )
        return json_response({"logs": await asyncio.to_thread(_records, table)})
