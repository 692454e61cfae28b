"""Span rows back into the OTLP model: ``TracesData`` (resource → scope → spans).

Used for one trace at a time (trace by ID), so a per-span loop over Python values is fine here.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData


def _typed_attrs(row: dict[str, Any], prefix: str) -> list[KeyValue]:
    out: list[KeyValue] = []
    for key, value in row[f"{prefix}_attrs_str"]:
        out.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    for key, value in row[f"{prefix}_attrs_int"]:
        out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
    for key, value in row[f"{prefix}_attrs_float"]:
        out.append(KeyValue(key=key, value=AnyValue(double_value=value)))
    for key, value in row[f"{prefix}_attrs_bool"]:
        out.append(KeyValue(key=key, value=AnyValue(bool_value=value)))
    for key, value in row[f"{prefix}_attrs_raw"]:
        out.append(KeyValue(key=key, value=AnyValue.FromString(value)))
    return out


def _raw_attrs(raw: bytes) -> list[KeyValue]:
    # stored as the wire bytes of repeated field 1 (KeyValue), which is Resource's layout
    return list(Resource.FromString(raw).attributes) if raw else []


def _resource_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(tuple(row[f"resource_attrs_{t}"]) for t in ("str", "int", "float", "bool", "raw"))


def _span(row: dict[str, Any]) -> Span:
    span = Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"] or b"",
        trace_state=row["trace_state"],
        name=row["name"],
        kind=row["kind"],
        flags=row["flags"],
        start_time_unix_nano=row["start_unix_nano"],
        end_time_unix_nano=row["start_unix_nano"] + row["duration_nano"],
        attributes=_typed_attrs(row, "span"),
        dropped_attributes_count=row["dropped_attributes_count"],
        dropped_events_count=row["dropped_events_count"],
        dropped_links_count=row["dropped_links_count"],
    )
    if row["status_code"] or row["status_message"]:
        span.status.code = row["status_code"]
        span.status.message = row["status_message"]
    for ev in row["events"]:
        span.events.add(
            time_unix_nano=ev["time_unix_nano"],
            name=ev["name"],
            attributes=_raw_attrs(ev["attrs"]),
            dropped_attributes_count=ev["dropped_attributes_count"],
        )
    for link in row["links"]:
        span.links.add(
            trace_id=link["trace_id"],
            span_id=link["span_id"],
            trace_state=link["trace_state"],
            attributes=_raw_attrs(link["attrs"]),
            dropped_attributes_count=link["dropped_attributes_count"],
            flags=link["flags"],
        )
    return span


def rows_to_traces_data(table: pa.Table) -> TracesData:
    """Group span rows by resource and instrumentation scope, keeping row order within each."""
    out = TracesData()
    resources: dict[tuple[Any, ...], tuple[ResourceSpans, dict[tuple[str, str], ScopeSpans]]] = {}
    for row in table.to_pylist():
        rkey = _resource_key(row)
        entry = resources.get(rkey)
        if entry is None:
            rs = out.resource_spans.add()
            rs.resource.attributes.extend(_typed_attrs(row, "resource"))
            entry = resources[rkey] = (rs, {})
        rs, scopes = entry
        skey = (row["scope_name"], row["scope_version"])
        ss = scopes.get(skey)
        if ss is None:
            ss = scopes[skey] = rs.scope_spans.add()
            if skey != ("", ""):
                ss.scope.name, ss.scope.version = skey
        ss.spans.append(_span(row))
    return out
