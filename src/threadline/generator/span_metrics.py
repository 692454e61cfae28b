"""The span-metrics processor: Tempo's ``traces_spanmetrics_*`` series from span rows.

Owns: per batch, grouping the spans by (service, span_name, span_kind, status_code, configured
dimensions) with Arrow/numpy and adding each group's calls, latency histogram (seconds,
negative durations count as 0, exemplar ``traceID`` per bucket) and size to the tenant's
registry; and the per-span size estimate behind ``traces_spanmetrics_size_total``.

Size estimate: Tempo adds the protobuf size of the OTLP ``Span`` message. The row no longer has
the bytes, so the size is recomputed column-wise from what the row holds, the way protobuf
would encode it: ids, name, kind, start/end times, trace state, flags, status, and every span
attribute (``KeyValue`` framing, key, and the ``AnyValue`` with its string, varint int, double,
bool or raw serialized value). Events and links are not counted (their columns are being
reworked), so spans that carry them are reported smaller than Tempo would report them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from threadline.config import SpanMetricsProcessorConfig
from threadline.generator.attributes import dimension_label, lookup
from threadline.generator.registry import EnumColumn, Registry, fixed_width_bytes, group_rows
from threadline.model.schema import SPAN_KIND_NAMES, STATUS_CODE_NAMES

CALLS = "traces_spanmetrics_calls_total"
LATENCY = "traces_spanmetrics_latency"
SIZE = "traces_spanmetrics_size_total"
INTRINSIC_LABELS = ("service", "span_name", "span_kind", "status_code")
# labels a dimension may not take (Tempo's intrinsic dimensions, on or off)
RESERVED_LABELS = frozenset((*INTRINSIC_LABELS, "status_message", "job", "instance"))


def _enum_names(names: dict[int, str]) -> list[str]:
    """Name of every int8 code as a uint8 index; unknown codes print as their number, as Go's
    protobuf enum ``String()`` does."""
    out = []
    for i in range(256):
        signed = i if i < 128 else i - 256
        out.append(names.get(signed, str(signed)))
    return out


KIND_NAMES = _enum_names(SPAN_KIND_NAMES)
STATUS_NAMES = _enum_names(STATUS_CODE_NAMES)


_VARINT_LIMITS = np.array([1 << bits for bits in range(7, 64, 7)], dtype=np.uint64)


def _varint_len(values: np.ndarray) -> np.ndarray:
    """Bytes of the protobuf varint of each value (negative int64: 10)."""
    return np.searchsorted(_VARINT_LIMITS, values.view(np.uint64), side="right") + 1


def _len_varint_len(lengths: np.ndarray) -> np.ndarray:
    """Bytes of the varint of each length (lengths stay below 2**28)."""
    return 1 + (lengths >= 128) + (lengths >= 16384) + (lengths >= 2097152)


def _framed(payload: np.ndarray) -> np.ndarray:
    """A length-delimited field: tag (1 byte) + length varint + payload."""
    return 1 + _len_varint_len(payload) + payload


def _offsets(arr: pa.Array) -> np.ndarray:
    """The value offsets of a (possibly sliced) string/binary array, zero-copy."""
    dtype = (
        np.int64
        if pa.types.is_large_binary(arr.type) or pa.types.is_large_string(arr.type)
        else np.int32
    )
    buf = arr.buffers()[1]
    return np.frombuffer(buf, dtype=dtype)[arr.offset : arr.offset + len(arr) + 1]


def _lengths(arr: pa.Array) -> np.ndarray:
    """Byte length of each string of a (possibly sliced) string/binary array."""
    return np.diff(_offsets(arr)).astype(np.int64, copy=False)


def _per_row(offsets: np.ndarray, child_offsets: np.ndarray) -> np.ndarray:
    """Per row, the bytes of the strings a map column's rows hold in one child (keys or
    values), from the offsets alone."""
    return (child_offsets[offsets[1:]] - child_offsets[offsets[:-1]]).astype(np.int64)


def _map_sizes(col: pa.Array, vtype: str) -> np.ndarray:
    """Per row, the encoded bytes of the span attributes held in one typed map column.

    Each ``KeyValue`` is framed as tag + length + (key field) + (value field, an ``AnyValue``);
    with lengths below 128 every length prefix is one byte, so a row's total follows from the
    summed key/value bytes and the entry count. The few long entries get their exact varint
    lengths added separately."""
    offsets = col.offsets.to_numpy().astype(np.int64, copy=False)
    start, end = int(offsets[0]), int(offsets[-1])
    if end == start:
        return np.zeros(len(offsets) - 1, dtype=np.int64)
    count = np.diff(offsets)
    key_offsets = _offsets(col.keys)
    size = _per_row(offsets, key_offsets)
    items = col.items
    if vtype == "float":  # key field 2, AnyValue field 2, double 9, KeyValue frame 2
        return size + 15 * count
    if vtype == "bool":
        return size + 8 * count
    if vtype == "int":
        varint = _varint_len(items.to_numpy(zero_copy_only=False)[start:end])
        cumulative = np.zeros(end - start + 1, dtype=np.int64)
        np.cumsum(varint, out=cumulative[1:])
        rel = offsets - start
        return size + 7 * count + cumulative[rel[1:]] - cumulative[rel[:-1]]
    value_offsets = _offsets(items)
    size += _per_row(offsets, value_offsets)
    # strings: 2 (frame) + 2 (key field) + 2 (AnyValue field) + 2 (string field); raw values
    # are a serialized AnyValue already
    size += (8 if vtype == "str" else 6) * count
    key_len = np.diff(key_offsets[start : end + 1])
    value_len = np.diff(value_offsets[start : end + 1])
    long = np.flatnonzero(key_len + value_len >= 100)
    if len(long):
        k = key_len[long].astype(np.int64)
        v = value_len[long].astype(np.int64)
        any_value = _framed(v) if vtype == "str" else v
        exact = _framed(_framed(k) + _framed(any_value))
        short = k + v + (8 if vtype == "str" else 6)
        rows = np.searchsorted(offsets, long + start, side="right") - 1
        np.add.at(size, rows, exact - short)
    return size


def span_sizes(batch: pa.RecordBatch) -> np.ndarray:
    """Estimated protobuf size in bytes of each row's OTLP ``Span`` (see the module doc)."""
    n = batch.num_rows
    size = np.full(n, 18 + 10 + 9 + 9, dtype=np.int64)  # trace id, span id, start, end
    size += np.where(
        batch.column("parent_span_id").is_valid().to_numpy(zero_copy_only=False), 10, 0
    )
    size += np.where((name := _lengths(batch.column("name"))) > 0, _framed(name), 0)
    size += np.where(batch.column("kind").to_numpy(zero_copy_only=False) != 0, 2, 0)
    state = _lengths(batch.column("trace_state"))
    size += np.where(state > 0, _framed(state), 0)
    message = _lengths(batch.column("status_message"))
    code = batch.column("status_code").to_numpy(zero_copy_only=False)
    status = np.where(message > 0, _framed(message), 0) + np.where(code != 0, 2, 0)
    size += np.where(status > 0, _framed(status), 0)
    names = batch.schema.names
    if "flags" in names:
        size += np.where(batch.column("flags").to_numpy(zero_copy_only=False) != 0, 6, 0)
    if "dropped_attributes_count" in names:
        dropped = batch.column("dropped_attributes_count").to_numpy(zero_copy_only=False)
        size += np.where(dropped != 0, 1 + _varint_len(dropped.astype(np.uint64)), 0)
    for vtype in ("str", "int", "float", "bool", "raw"):
        name_ = f"span_attrs_{vtype}"
        if name_ in names:
            size += _map_sizes(batch.column(name_), vtype)
    return size


class SpanMetricsProcessor:
    def __init__(self, cfg: SpanMetricsProcessorConfig, registry: Registry) -> None:
        self.dimensions: Sequence[str] = list(cfg.dimensions)
        self.dimension_labels = [dimension_label(d, RESERVED_LABELS) for d in self.dimensions]
        labels = (*INTRINSIC_LABELS, *self.dimension_labels)
        self.calls = registry.counter(CALLS, "Spans seen, per label set.", labels)
        self.latency = registry.histogram(
            LATENCY, "Span durations in seconds.", labels, cfg.histogram_buckets
        )
        self.size = registry.counter(SIZE, "Estimated OTLP size of the spans in bytes.", labels)

    def consume(self, batch: pa.RecordBatch, now: float) -> None:
        n = batch.num_rows
        if n == 0:
            return
        kind = batch.column("kind").to_numpy(zero_copy_only=False).view(np.uint8)
        status = batch.column("status_code").to_numpy(zero_copy_only=False).view(np.uint8)
        columns: list[pa.Array | EnumColumn] = [
            batch.column("service_name"),
            batch.column("name"),
            EnumColumn(kind, KIND_NAMES),
            EnumColumn(status, STATUS_NAMES),
        ]
        if self.dimensions:
            found = lookup(batch, self.dimensions)
            columns.extend(found.get(d) for d in self.dimensions)
        groups = group_rows(columns, n)
        durations = batch.column("duration_nano").to_numpy(zero_copy_only=False)
        seconds = np.maximum(durations, 0) / 1e9
        calls = np.bincount(groups.gid, minlength=groups.count).astype(np.float64)
        self.calls.add(groups, calls, now)
        trace_ids = fixed_width_bytes(batch.column("trace_id"), 16)
        self.latency.observe(groups, seconds, trace_ids, now)
        sizes = np.bincount(groups.gid, weights=span_sizes(batch), minlength=groups.count)
        self.size.add(groups, sizes, now)
