"""Span rows back into the OTLP model: ``TracesData`` (resource → scope → spans).

Used for one trace at a time (trace by ID), so a per-span loop over Python values is fine here.
Attribute lists are rebuilt from the typed maps grouped by type (string, int, double, bool,
then the raw values), each group in its stored order; the original interleaving of types within
one list is not stored. Timestamps are stored as int64 (OTLP's uint64 wrapped, see
``otlp_decode``) and unwrapped again for the fixed64 OTLP fields.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

_ATTR_TYPES = ("str", "int", "float", "bool", "raw")
_DOUBLE = struct.Struct("<d")
_UINT64 = 0xFFFFFFFFFFFFFFFF


def _u64(v: int) -> int:
    """A stored int64 timestamp as the OTLP uint64 (times of 2**63 ns and later are negative)."""
    return v & _UINT64


def _typed_attrs(source: Mapping[str, Any], stem: str) -> list[KeyValue]:
    """The attributes in the typed maps ``{stem}_str`` ... ``{stem}_raw`` of ``source``.

    ``source`` is a span row (stems ``resource_attrs``, ``scope_attrs``, ``span_attrs``) or one
    event or link of a row (stem ``attrs``).
    """
    out: list[KeyValue] = []
    for key, value in source[f"{stem}_str"]:
        out.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    for key, value in source[f"{stem}_int"]:
        out.append(KeyValue(key=key, value=AnyValue(int_value=value)))
    for key, value in source[f"{stem}_float"]:
        out.append(KeyValue(key=key, value=AnyValue(double_value=value)))
    for key, value in source[f"{stem}_bool"]:
        out.append(KeyValue(key=key, value=AnyValue(bool_value=value)))
    for key, value in source[f"{stem}_raw"]:
        out.append(KeyValue(key=key, value=AnyValue.FromString(value)))
    return out


def _attrs_key(source: Mapping[str, Any], stem: str) -> tuple[Any, ...]:
    """Hashable identity of the typed maps at ``stem``; doubles by their bits (NaN == NaN)."""
    return tuple(
        tuple((k, _DOUBLE.pack(v)) for k, v in source[f"{stem}_{t}"])
        if t == "float"
        else tuple(source[f"{stem}_{t}"])
        for t in _ATTR_TYPES
    )


def _span(row: dict[str, Any]) -> Span:
    span = Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"] or b"",
        trace_state=row["trace_state"],
        name=row["name"],
        kind=row["kind"],
        flags=row["flags"],
        start_time_unix_nano=_u64(row["start_unix_nano"]),
        end_time_unix_nano=_u64(row["start_unix_nano"] + row["duration_nano"]),
        attributes=_typed_attrs(row, "span_attrs"),
        dropped_attributes_count=row["dropped_attributes_count"],
        dropped_events_count=row["dropped_events_count"],
        dropped_links_count=row["dropped_links_count"],
    )
    if row["status_code"] or row["status_message"]:
        span.status.code = row["status_code"]
        span.status.message = row["status_message"]
    for ev in row["events"]:
        span.events.add(
            time_unix_nano=_u64(ev["time_unix_nano"]),
            name=ev["name"],
            attributes=_typed_attrs(ev, "attrs"),
            dropped_attributes_count=ev["dropped_attributes_count"],
        )
    for link in row["links"]:
        span.links.add(
            trace_id=link["trace_id"],
            span_id=link["span_id"],
            trace_state=link["trace_state"],
            attributes=_typed_attrs(link, "attrs"),
            dropped_attributes_count=link["dropped_attributes_count"],
            flags=link["flags"],
        )
    return span


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    # to_pylist holds the GIL throughout (0.75 s for 50k spans); small slices let other threads,
    # the event loop among them, run in between
    for batch in table.to_batches(max_chunksize=1024):
        yield from batch.to_pylist()


def rows_to_traces_data(table: pa.Table) -> TracesData:
    """Group span rows by resource and instrumentation scope, keeping row order within each.

    A resource is identified by its attributes, a scope by its name, version and attributes;
    the resource and the scope are left out when they have nothing to hold.
    """
    out = TracesData()
    resources: dict[tuple[Any, ...], tuple[ResourceSpans, dict[tuple[Any, ...], ScopeSpans]]] = {}
    for row in _rows(table):
        rkey = _attrs_key(row, "resource_attrs")
        entry = resources.get(rkey)
        if entry is None:
            rs = out.resource_spans.add()
            rs.resource.attributes.extend(_typed_attrs(row, "resource_attrs"))
            entry = resources[rkey] = (rs, {})
        rs, scopes = entry
        skey = (row["scope_name"], row["scope_version"], _attrs_key(row, "scope_attrs"))
        ss = scopes.get(skey)
        if ss is None:
            ss = scopes[skey] = rs.scope_spans.add()
            scope_attrs = _typed_attrs(row, "scope_attrs")
            if row["scope_name"] or row["scope_version"] or scope_attrs:
                ss.scope.name = row["scope_name"]
                ss.scope.version = row["scope_version"]
                ss.scope.attributes.extend(scope_attrs)
        ss.spans.append(_span(row))
    return out
