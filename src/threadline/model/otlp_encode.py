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

import duckdb
import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

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


Scope = tuple[dict[str, Any], list[dict[str, Any]]]
"""A scope's first row (for its name, version and attributes) and all its rows, in order."""


def group_rows(table: pa.Table) -> list[tuple[dict[str, Any], list[Scope]]]:
    """Span rows grouped by resource and instrumentation scope, in order of first appearance,
    keeping row order within each: (a resource's first row, its scopes).

    A resource is identified by its attributes, a scope by its name, version and attributes.
    The rows of a big table carry span columns only (resource and scope columns are read from
    each group's first row; a row's are never needed apart from its group's).
    """
    if table.num_rows >= _HASHED_GROUPING_ROWS:
        return _group_hashed(table)
    resources: dict[tuple[Any, ...], tuple[dict[str, Any], dict[tuple[Any, ...], Scope]]] = {}
    for row in _rows(table):
        rkey = _attrs_key(row, "resource_attrs")
        entry = resources.get(rkey)
        if entry is None:
            entry = resources[rkey] = (row, {})
        skey = (row["scope_name"], row["scope_version"], _attrs_key(row, "scope_attrs"))
        scope = entry[1].get(skey)
        if scope is None:
            scope = entry[1][skey] = (row, [])
        scope[1].append(row)
    return [(first, list(scopes.values())) for first, scopes in resources.values()]


# from this many rows on, groups are told apart by DuckDB's hash of the resource and scope
# columns (converting those columns row by row to compare them costs most of the encoding)
_HASHED_GROUPING_ROWS = 1000
_DB = duckdb.connect()


def _group_hashed(table: pa.Table) -> list[tuple[dict[str, Any], list[Scope]]]:
    rcols = [c for c in table.column_names if c.startswith("resource_")]
    scols = [c for c in table.column_names if c.startswith("scope_")]
    cursor = _DB.cursor()
    try:
        cursor.register("spans", table.select(rcols + scols))
        keys = cursor.sql(
            f"SELECT hash({', '.join(rcols)}) AS r, hash({', '.join(scols)}) AS s FROM spans"
        ).to_arrow_table()
    finally:
        cursor.close()
    r_keys = keys.column("r").to_pylist()
    s_keys = keys.column("s").to_pylist()
    resources: dict[int, tuple[int, dict[int, tuple[int, list[dict[str, Any]]]]]] = {}
    span_cols = [c for c in table.column_names if c not in rcols and c not in scols]
    for i, row in enumerate(_rows(table.select(span_cols))):
        entry = resources.get(r_keys[i])
        if entry is None:
            entry = resources[r_keys[i]] = (i, {})
        scope = entry[1].get(s_keys[i])
        if scope is None:
            scope = entry[1][s_keys[i]] = (i, [])
        scope[1].append(row)
    firsts = sorted(
        {i for r, scopes in resources.values() for i in (r, *(s for s, _ in scopes.values()))}
    )
    heads = dict(zip(firsts, table.select(rcols + scols).take(firsts).to_pylist(), strict=True))
    return [
        (heads[r], [(heads[s], rows) for s, rows in scopes.values()])
        for r, scopes in resources.values()
    ]


def rows_to_traces_data(table: pa.Table) -> TracesData:
    """Span rows as ``TracesData`` (see ``group_rows``); the resource and the scope are left out
    when they have nothing to hold."""
    out = TracesData()
    for first, scopes in group_rows(table):
        rs = out.resource_spans.add()
        rs.resource.attributes.extend(_typed_attrs(first, "resource_attrs"))
        for scope_row, rows in scopes:
            ss = rs.scope_spans.add()
            scope_attrs = _typed_attrs(scope_row, "scope_attrs")
            if scope_row["scope_name"] or scope_row["scope_version"] or scope_attrs:
                ss.scope.name = scope_row["scope_name"]
                ss.scope.version = scope_row["scope_version"]
                ss.scope.attributes.extend(scope_attrs)
            ss.spans.extend(_span(row) for row in rows)
    return out
