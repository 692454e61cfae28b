"""The span row and the log row: the Arrow schemas every component agrees on (one row per
span, one per log record).

Receivers produce record batches of this schema, the WAL stores them, blocks hold them as
Parquet and the querier reads them back. Attributes stay typed: each scope has one map column
per value type, so TraceQL can compare by type; values with no column type of their own
(arrays, key-value lists, bytes) are kept as the serialized OTLP ``AnyValue`` in ``*_attrs_raw``.
Resource, instrumentation scope and span attributes are top-level columns (resource and scope
ones copied onto every span); events and links carry the same typed maps as ``attrs_*``.
"""

from __future__ import annotations

import pyarrow as pa

# tl2: rows in trace-start order with a trace index (tl1: sorted by trace id)
FORMAT_VERSION = "tl2"


def _attr_map_fields(stem: str) -> list[pa.Field]:
    """One map field per attribute value type: ``{stem}_str`` ... ``{stem}_raw``."""
    return [
        pa.field(f"{stem}_str", pa.map_(pa.string(), pa.string()), nullable=False),
        pa.field(f"{stem}_int", pa.map_(pa.string(), pa.int64()), nullable=False),
        pa.field(f"{stem}_float", pa.map_(pa.string(), pa.float64()), nullable=False),
        pa.field(f"{stem}_bool", pa.map_(pa.string(), pa.bool_()), nullable=False),
        pa.field(f"{stem}_raw", pa.map_(pa.string(), pa.binary()), nullable=False),
    ]


def _typed_attr_fields(prefix: str) -> list[pa.Field]:
    return _attr_map_fields(f"{prefix}_attrs")


EVENT_TYPE = pa.struct(
    [
        pa.field("time_unix_nano", pa.int64(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        *_attr_map_fields("attrs"),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
    ]
)

LINK_TYPE = pa.struct(
    [
        pa.field("trace_id", pa.binary(16), nullable=False),
        pa.field("span_id", pa.binary(8), nullable=False),
        pa.field("trace_state", pa.string(), nullable=False),
        *_attr_map_fields("attrs"),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),
    ]
)

SPAN_SCHEMA = pa.schema(
    [
        pa.field("trace_id", pa.binary(16), nullable=False),
        pa.field("span_id", pa.binary(8), nullable=False),
        # null for a root span (absent or empty parent id in OTLP)
        pa.field("parent_span_id", pa.binary(8), nullable=True),
        pa.field("trace_state", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.int8(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),
        pa.field("start_unix_nano", pa.int64(), nullable=False),
        pa.field("duration_nano", pa.int64(), nullable=False),
        pa.field("status_code", pa.int8(), nullable=False),
        pa.field("status_message", pa.string(), nullable=False),
        # resource attribute service.name, "" when absent (it also stays in resource_attrs_str)
        pa.field("service_name", pa.string(), nullable=False),
        pa.field("scope_name", pa.string(), nullable=False),
        pa.field("scope_version", pa.string(), nullable=False),
        *_typed_attr_fields("scope"),
        *_typed_attr_fields("resource"),
        *_typed_attr_fields("span"),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
        pa.field("events", pa.list_(pa.field("item", EVENT_TYPE, nullable=False)), nullable=False),
        pa.field("dropped_events_count", pa.uint32(), nullable=False),
        pa.field("links", pa.list_(pa.field("item", LINK_TYPE, nullable=False)), nullable=False),
        pa.field("dropped_links_count", pa.uint32(), nullable=False),
    ]
)

# one row per log record (OTLP logs, Loki push lines): the same typed attribute maps as spans
# (resource, scope, and the record's own as ``log_attrs_*``); ``body`` is the body as text (a
# string body as it is, any other value as its OTLP/JSON), ``body_raw`` the serialized OTLP
# ``AnyValue`` of a body that is not a string (null for a string body)
LOG_SCHEMA = pa.schema(
    [
        # the record's time; its observed time when the record has none
        pa.field("time_unix_nano", pa.int64(), nullable=False),
        pa.field("observed_time_unix_nano", pa.int64(), nullable=False),
        pa.field("severity_number", pa.int8(), nullable=False),
        pa.field("severity_text", pa.string(), nullable=False),
        pa.field("body", pa.string(), nullable=False),
        pa.field("body_raw", pa.binary(), nullable=True),
        pa.field("event_name", pa.string(), nullable=False),
        # null when the record names no trace / span (absent, empty or all-zero ids)
        pa.field("trace_id", pa.binary(16), nullable=True),
        pa.field("span_id", pa.binary(8), nullable=True),
        pa.field("flags", pa.uint32(), nullable=False),
        # resource attribute service.name, "" when absent (it also stays in resource_attrs_str)
        pa.field("service_name", pa.string(), nullable=False),
        pa.field("scope_name", pa.string(), nullable=False),
        pa.field("scope_version", pa.string(), nullable=False),
        *_typed_attr_fields("scope"),
        *_typed_attr_fields("resource"),
        *_typed_attr_fields("log"),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
    ]
)

# derived per trace when a block is written (see model.trace_structure); blocks hold both
TRACE_COLUMNS = pa.schema(
    [
        pa.field("trace_start_unix_nano", pa.int64(), nullable=False),
        pa.field("trace_duration_nano", pa.int64(), nullable=False),
        pa.field("root_service_name", pa.string(), nullable=False),
        pa.field("root_span_name", pa.string(), nullable=False),
        pa.field("nest_left", pa.int32(), nullable=False),
        pa.field("nest_right", pa.int32(), nullable=False),
        pa.field("nest_parent", pa.int32(), nullable=False),
        pa.field("child_count", pa.int32(), nullable=False),
    ]
)

# hot attributes as columns of their own (see model.dedicated): (column, scope, type, key). Each
# holds a copy of one typed map entry, which the map keeps, so spans read back unchanged
DEDICATED: tuple[tuple[str, str, str, str], ...] = (
    ("span_http_status_code", "span", "int", "http.status_code"),
    ("span_http_response_status_code", "span", "int", "http.response.status_code"),
    ("span_http_method", "span", "str", "http.method"),
    ("span_http_request_method", "span", "str", "http.request.method"),
    ("span_http_route", "span", "str", "http.route"),
    ("span_db_system", "span", "str", "db.system"),
    ("span_rpc_service", "span", "str", "rpc.service"),
)
_ARROW_TYPES = {"str": pa.string(), "int": pa.int64()}
DEDICATED_COLUMNS = pa.schema(
    [pa.field(column, _ARROW_TYPES[kind], nullable=True) for column, _, kind, _ in DEDICATED]
)

ATTR_SCOPES = ("resource", "scope", "span")
ATTR_TYPES = ("str", "int", "float", "bool", "raw")

# array attribute values (which the raw maps keep serialized) as typed lists of their scalar
# elements, one map column per scope and element type, so TraceQL compares elements
# columnwise: ``{scope}_attrs_arr_{type}`` maps a key to its elements of that type
ARRAY_ELEMENT_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
}
ARRAY_COLUMNS = pa.schema(
    [
        pa.field(f"{scope}_attrs_arr_{kind}", pa.map_(pa.string(), pa.list_(t)), nullable=False)
        for scope in ATTR_SCOPES
        for kind, t in ARRAY_ELEMENT_TYPES.items()
    ]
)
# columns derived from the attribute maps when rows are made queryable (in memory, in blocks)
DERIVED_COLUMNS = pa.schema([*DEDICATED_COLUMNS, *ARRAY_COLUMNS])

BLOCK_SCHEMA = pa.schema([*SPAN_SCHEMA, *TRACE_COLUMNS, *DERIVED_COLUMNS])

# OTLP enums as stored in `kind` and `status_code`
SPAN_KIND_NAMES = {
    0: "SPAN_KIND_UNSPECIFIED",
    1: "SPAN_KIND_INTERNAL",
    2: "SPAN_KIND_SERVER",
    3: "SPAN_KIND_CLIENT",
    4: "SPAN_KIND_PRODUCER",
    5: "SPAN_KIND_CONSUMER",
}
STATUS_CODE_NAMES = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
