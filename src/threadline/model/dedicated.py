"""Columns derived from the attribute maps (hot attributes, array elements), and the
attribute keys a set of span rows holds.

``add_dedicated_columns`` copies the attributes nearly every search filters on (``DEDICATED``
in the schema: http status, method and route, db system ...) out of the typed maps into
columns of their own, so a filter on one reads a narrow column instead of decoding a map, and
splits array values (kept serialized in the raw maps) into typed element lists
(``ARRAY_COLUMNS``), read by the compiled ``_any_arrays``.
``attribute_keys`` lists the keys of every attribute map: a query over rows that lack a key
does not read that map at all (see ``querier.attribute_columns``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.model._any_arrays import array_elements
from threadline.model.schema import (
    ARRAY_COLUMNS,
    ARRAY_ELEMENT_TYPES,
    ATTR_SCOPES,
    ATTR_TYPES,
    DEDICATED,
    DEDICATED_COLUMNS,
)

MAP_COLUMNS = (
    *(f"{scope}_attrs_{kind}" for scope in ATTR_SCOPES for kind in ATTR_TYPES),
    *ARRAY_COLUMNS.names,
)


def _lookup(maps: pa.MapArray, keys: pa.Array) -> list[pa.Array]:
    """The value of each of ``keys`` in every row's map (the first entry if repeated, null
    when absent): one pass over the map's entries for all keys together."""
    n = len(maps)
    offsets = maps.offsets.to_numpy()
    lo, hi = int(offsets[0]), int(offsets[-1])
    row_of = np.repeat(np.arange(n), np.diff(offsets))  # the row of each entry from ``lo``
    which = pc.fill_null(pc.index_in(maps.keys.slice(lo, hi - lo), value_set=keys), -1)
    which = which.to_numpy()
    out = []
    for k in range(len(keys)):
        at = np.flatnonzero(which == k)
        positions = np.full(n, -1, dtype=np.int64)
        # reversed: where a key repeats within a map, the first entry is written last
        positions[row_of[at[::-1]]] = at[::-1] + lo
        out.append(maps.items.take(pa.array(positions, mask=positions < 0)))
    return out


def _elements(kind: str, element_type: pa.DataType, which: np.ndarray, values: Any) -> pa.Array:
    """The elements ``array_elements`` found of one type, as an Arrow array."""
    if kind == "str":
        str_offsets, str_data = values
        return pa.StringArray.from_buffers(
            len(which), pa.py_buffer(str_offsets), pa.py_buffer(str_data)
        )
    return pa.array(values, element_type)


def array_lists(raw: pa.BinaryArray) -> list[pa.ListArray]:
    """Per element type (``ARRAY_ELEMENT_TYPES``), each serialized AnyValue's array elements
    of that type as a list, null where it has none (not an array, or null)."""
    n = len(raw)
    value_offsets = np.frombuffer(raw.buffers()[1], np.int32, n + 1, raw.offset * 4)
    data = raw.buffers()[2]
    found = array_elements(value_offsets, memoryview(data) if data else b"", 0, n)
    out = []
    for (kind, element_type), (which, values) in zip(
        ARRAY_ELEMENT_TYPES.items(), found, strict=True
    ):
        counts = np.bincount(which, minlength=n) if len(which) else np.zeros(n, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        elements = (
            _elements(kind, element_type, which, values)
            if len(which)
            else pa.array([], element_type)
        )
        out.append(
            pa.ListArray.from_arrays(pa.array(offsets), elements, mask=pa.array(counts == 0))
        )
    return out


def _array_maps(raw: pa.MapArray) -> list[pa.MapArray]:
    """The ``ARRAY_COLUMNS`` of one scope from its raw map: per element type, each row's
    array-valued keys with their elements of that type (keys with none are left out)."""
    n = len(raw)
    offsets = raw.offsets.to_numpy()
    lo, hi = int(offsets[0]), int(offsets[-1])
    items = raw.items
    value_offsets = np.frombuffer(items.buffers()[1], np.int32, len(items) + 1, items.offset * 4)
    data = items.buffers()[2]
    found = array_elements(value_offsets, memoryview(data) if data else b"", lo, hi)
    row_of: np.ndarray | None = None
    no_entries = pa.array(np.zeros(n + 1, np.int32))
    out = []
    for (kind, element_type), (which, values) in zip(
        ARRAY_ELEMENT_TYPES.items(), found, strict=True
    ):
        list_type = pa.list_(element_type)
        if len(which) == 0:  # the usual case: no array has an element of this type
            empty = pa.array([], list_type)
            out.append(pa.MapArray.from_arrays(no_entries, pa.array([], pa.string()), empty))
            continue
        elements = _elements(kind, element_type, which, values)
        entries, firsts = np.unique(which, return_index=True)
        list_offsets = np.append(firsts, len(which)).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(list_offsets), elements)
        if row_of is None:  # the row of each entry from ``lo``
            row_of = np.repeat(np.arange(n), np.diff(offsets))
        per_row = np.bincount(row_of[entries - lo], minlength=n)
        map_offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
        keys = raw.keys.take(pa.array(entries, pa.int64()))
        out.append(pa.MapArray.from_arrays(pa.array(map_offsets), keys, lists))
    return out


def add_dedicated_columns(table: pa.Table) -> pa.Table:
    """``table`` with the ``DEDICATED_COLUMNS`` (null where a span lacks the key) and the
    ``ARRAY_COLUMNS`` appended."""
    by_map: dict[str, list[int]] = {}
    for i, (_, scope, kind, _) in enumerate(DEDICATED):
        by_map.setdefault(f"{scope}_attrs_{kind}", []).append(i)
    chunks: list[list[pa.Array]] = [[] for _ in DEDICATED]
    for name, members in by_map.items():
        keys = pa.array([DEDICATED[i][3] for i in members], pa.string())
        for maps in table.column(name).chunks:  # chunk by chunk: combining maps copies them
            for i, array in zip(members, _lookup(maps, keys), strict=True):
                chunks[i].append(array)
    for field, parts in zip(DEDICATED_COLUMNS, chunks, strict=True):
        column = pa.chunked_array([p.cast(field.type) for p in parts], field.type)
        table = table.append_column(field, column)
    fields = iter(ARRAY_COLUMNS)
    for scope in ATTR_SCOPES:
        per_type: list[list[pa.Array]] = [[] for _ in ARRAY_ELEMENT_TYPES]
        for raw in table.column(f"{scope}_attrs_raw").chunks:
            for parts, maps in zip(per_type, _array_maps(raw), strict=True):
                parts.append(maps)
        for parts in per_type:
            field = next(fields)
            table = table.append_column(field, pa.chunked_array(parts, field.type))
    return table


def attribute_keys(table: pa.Table) -> dict[str, list[str]]:
    """The distinct keys of each attribute map column of ``table``, sorted."""
    out: dict[str, list[str]] = {}
    for name in MAP_COLUMNS:
        if name not in table.column_names:  # span rows without the derived columns
            out[name] = []
            continue
        chunks = [c.keys for c in table.column(name).chunks if len(c)]
        keys = pc.unique(pa.chunked_array(chunks, pa.string())) if chunks else []
        out[name] = sorted(k for k in (keys.to_pylist() if chunks else ()) if k is not None)
    return out
