"""Truncating attribute keys and values longer than a limit, columnar.

Every map column of the span row (span, resource and scope attributes, and those of events and
links, nested in lists of structs) holds its keys and values as flat string/binary arrays, so a
batch is checked with one length kernel per array and rebuilt only where something is too long;
strings are cut on a UTF-8 character boundary, so they stay valid text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _longest(arr: pa.Array, limit: int) -> int:
    """The longest value of a string/binary array, or 0 when none can be over ``limit``."""
    _, offsets, data = arr.buffers()
    if len(arr) == 0 or data is None or data.size <= limit:
        return 0
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    return int(np.max(ends[1:] - ends[:-1]))


def _truncate_leaf(arr: pa.Array, limit: int) -> tuple[pa.Array, int]:
    if _longest(arr, limit) <= limit:
        return arr, 0
    lengths = pc.binary_length(arr)
    too_long = pc.greater(lengths, limit)
    n = pc.sum(too_long).as_py() or 0
    if not n:
        return arr, 0
    is_text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    values = arr.to_pylist()  # only batches holding an over-long value get here
    for i in np.flatnonzero(too_long.to_numpy(zero_copy_only=False)):
        # text is cut on a character boundary: a partial last character is dropped
        values[i] = (
            values[i].encode()[:limit].decode(errors="ignore") if is_text else values[i][:limit]
        )
    return pa.array(values, arr.type), n


def _truncate(arr: pa.Array, limit: int, in_map: bool) -> tuple[pa.Array, int]:
    t = arr.type
    if pa.types.is_map(t):
        keys, k = _truncate(arr.keys, limit, True)
        items, v = _truncate(arr.items, limit, True)
        if not (k or v):
            return arr, 0
        rebuilt = pa.MapArray.from_arrays(arr.offsets, keys, items, type=t, mask=arr.is_null())
        return rebuilt, k + v
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        values, n = _truncate(arr.values, limit, in_map)
        if not n:
            return arr, 0
        cls = pa.ListArray if pa.types.is_list(t) else pa.LargeListArray
        return cls.from_arrays(arr.offsets, values, type=t, mask=arr.is_null()), n
    if pa.types.is_struct(t):
        children, total = [], 0
        for i in range(t.num_fields):
            child, n = _truncate(arr.field(i), limit, in_map)
            children.append(child)
            total += n
        if not total:
            return arr, 0
        fields = [t.field(i) for i in range(t.num_fields)]
        return pa.StructArray.from_arrays(children, fields=fields, mask=arr.is_null()), total
    if in_map and (pa.types.is_string(t) or pa.types.is_binary(t)):
        return _truncate_leaf(arr, limit)
    return arr, 0


def truncate_attributes(batch: pa.RecordBatch, limit: int) -> tuple[pa.RecordBatch, int]:
    """``batch`` with attribute keys and values cut to ``limit`` bytes, and how many were cut
    (``limit`` 0: nothing is cut)."""
    if limit <= 0 or batch.num_rows == 0:
        return batch, 0
    columns, total = [], 0
    for column in batch.columns:
        cut, n = _truncate(column, limit, False)
        columns.append(cut)
        total += n
    if not total:
        return batch, 0
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema), total
