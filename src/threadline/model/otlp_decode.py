"""OTLP trace ingest decoding: serialized ``ExportTraceServiceRequest`` -> span rows.

This module owns the typed entry point of the ingest hot path. The work is done by the
compiled kernel ``threadline.model._otlp_columns`` (a protobuf wire-format reader that fills
Arrow buffers directly); this wrapper only normalizes the input and packages the result.

Output: a ``pyarrow.RecordBatch`` with exactly ``threadline.model.schema.SPAN_SCHEMA``, one row
per accepted span in request order, resource and scope fields (including their attributes)
copied onto every span. Mapping rules beyond what the schema says:

* Attributes of every level (resource ``resource_attrs_*``, instrumentation scope
  ``scope_attrs_*``, span ``span_attrs_*``, each event's and link's ``attrs_*``) follow the
  same rules: values go to the map column of their type (string/int/double/bool); array,
  key-value list and bytes values, values with no type set and profile-only
  ``string_value_strindex`` values go to ``*_raw`` as the serialized ``AnyValue`` exactly as
  received. Order within each type is kept; the order across types is not kept.
* Keys are unique within each attribute list: only the first occurrence of a key is stored,
  whatever the value types (a key first seen with a string value and again with an int keeps
  only the string). OTLP forbids repeated keys, and one repeated key in a map column makes
  DuckDB refuse the whole column. The dropped entries are counted in
  ``DecodedSpans.duplicate_attributes``.
* ``service_name`` is the ``service.name`` resource attribute when its (first) value is a
  string, else "" (so it always equals ``resource_attrs_str['service.name']`` or "").
* ``parent_span_id`` is null when absent, empty or all zeros.
* A link trace id that is not 16 bytes (span id not 8 bytes) is stored as 16 (8) zero bytes.
* ``kind`` and ``status_code`` keep the low 8 bits of the enum value; the uint64 timestamps
  are stored as int64 (``duration_nano`` = end - start).
* Resource/scope ``dropped_attributes_count``, entity refs and schema URLs are validated but
  not stored.

Spans are rejected (left out, counted per reason) for: ``invalid_trace_id`` (not 16 bytes, or
all zeros), ``invalid_span_id`` (not 8 bytes, or all zeros), ``invalid_parent_span_id``
(non-empty and not 8 bytes), ``end_before_start``. Malformed protobuf anywhere in the request
(also inside rejected spans and raw values: invalid wire format, invalid UTF-8 in a string
field, nesting deeper than 100 levels) raises ``ValueError``. The decoder
accepts exactly the bytes the protobuf library accepts, with its semantics for field order,
repeated fields, merged messages and unknown fields (checked by property tests against it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from threadline.model import _otlp_columns

REJECT_REASONS: tuple[str, ...] = (
    "invalid_trace_id",
    "invalid_span_id",
    "invalid_parent_span_id",
    "end_before_start",
)


@dataclass(frozen=True, slots=True)
class DecodedSpans:
    """Result of decoding one export request."""

    batch: pa.RecordBatch
    """Accepted spans, ``SPAN_SCHEMA``."""
    rejected: dict[str, int]
    """Rejection reason -> number of spans rejected for it (only reasons that occurred)."""
    first_error: str | None
    """Message describing the first rejected span, None when nothing was rejected."""
    duplicate_attributes: int = 0
    """Attributes left out because their key was already in the same attribute list.

    Counts what the request held: a resource's or scope's attribute list once (not once per
    span it is copied onto), span, event and link attributes of accepted spans only (a
    rejected span is dropped whole and counted in ``rejected``).
    """

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


def decode_export_request(data: bytes | bytearray | memoryview) -> DecodedSpans:
    """Decode a serialized OTLP ``ExportTraceServiceRequest`` into span rows.

    Raises ``ValueError("invalid OTLP protobuf: ...")`` when ``data`` is not a valid message.
    The GIL is released while the bytes are parsed.
    """
    if isinstance(data, memoryview) and (
        data.format != "B" or data.ndim != 1 or not data.c_contiguous
    ):
        data = data.cast("B") if data.c_contiguous else data.tobytes()
    batch, rejected, first_error, duplicates = _otlp_columns.decode(data)
    return DecodedSpans(
        batch=batch,
        rejected=rejected,
        first_error=first_error,
        duplicate_attributes=duplicates,
    )
