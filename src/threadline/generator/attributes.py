"""Attribute values of span rows for the generator's processors, read column-wise.

Owns: finding a set of attribute keys in a batch's typed attribute maps (``{scope}_attrs_str``
/ ``_int`` / ``_float`` / ``_bool``) with one ``index_in`` per map column for all keys at once,
giving per key a string column (null where absent or empty). Like Tempo's FindAttributeValue,
scopes are searched in the order given (resource before span) and non-string values are turned
into text (``5432``, ``12.5``, ``true``). An empty string counts as absent. Prometheus label-name
sanitizing lives here too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VALUE_TYPES = ("str", "int", "float", "bool")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """A valid Prometheus label name: invalid characters become ``_``; a leading digit gets a
    ``_`` in front."""
    label = _INVALID_LABEL_CHARS.sub("_", name) or "_"
    return "_" + label if label[0].isdigit() else label


def dimension_label(name: str, reserved: Collection[str]) -> str:
    """The label of a configured dimension: sanitized, and ``__``-prefixed when it would
    collide with one of the processor's own labels (e.g. ``status.code`` → ``__status_code``)."""
    label = sanitize_label_name(name)
    return "__" + label if label in reserved else label


def _scatter(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array:
    """An ``n``-row column holding ``values[i]`` at ``rows[i]`` (the first one when a row
    repeats) and null elsewhere."""
    pos = np.full(n, -1, dtype=np.int64)
    pos[rows[::-1]] = np.arange(len(rows) - 1, -1, -1, dtype=np.int64)
    return values.take(pa.array(pos, mask=pos < 0))


class Found:
    """Attribute values found in a batch, per scope and key (see ``lookup``)."""

    def __init__(self, n: int, by_scope: dict[str, dict[str, pa.Array]]) -> None:
        self.n = n
        self.by_scope = by_scope

    def get(self, key: str, scopes: Sequence[str] = ("resource", "span")) -> pa.Array:
        """The value of ``key`` in each row, from the first of ``scopes`` that has it."""
        columns = [c for s in scopes if (c := self.by_scope.get(s, {}).get(key)) is not None]
        if not columns:
            return pa.nulls(self.n, pa.string())
        return columns[0] if len(columns) == 1 else pc.coalesce(*columns)


def lookup(
    batch: pa.RecordBatch, keys: Sequence[str], scopes: Sequence[str] = ("resource", "span")
) -> Found:
    """Find ``keys`` in the attribute maps of ``scopes``: one pass over each typed map column
    for all keys. Values are text; absent and empty values are null."""
    n = batch.num_rows
    wanted = list(dict.fromkeys(keys))
    by_scope: dict[str, dict[str, pa.Array]] = {}
    if not wanted or n == 0:
        return Found(n, by_scope)
    value_set = pa.array(wanted, pa.string())
    names = batch.schema.names
    for scope in scopes:
        in_scope: dict[str, pa.Array] = {}
        for vtype in VALUE_TYPES:
            column_name = f"{scope}_attrs_{vtype}"
            if column_name not in names:
                continue
            col = batch.column(column_name)
            offsets = col.offsets.to_numpy()
            start, end = int(offsets[0]), int(offsets[-1])
            if end == start:
                continue
            which = pc.index_in(col.keys.slice(start, end - start), value_set=value_set)
            if which.null_count == len(which):
                continue
            which_np = which.fill_null(-1).to_numpy()
            hits = np.flatnonzero(which_np >= 0)
            rows = np.searchsorted(offsets, hits + start, side="right") - 1
            values = col.items.slice(start, end - start).take(pa.array(hits))
            if vtype != "str":
                values = pc.cast(values, pa.string())
            key_of_hit = which_np[hits]
            for key_index in np.unique(key_of_hit).tolist():
                sel = key_of_hit == key_index
                if sel.all():
                    column = _scatter(values, rows, n)
                else:
                    column = _scatter(values.filter(pa.array(sel)), rows[sel], n)
                key = wanted[key_index]
                prev = in_scope.get(key)
                in_scope[key] = column if prev is None else pc.coalesce(prev, column)
        by_scope[scope] = {
            key: pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
            for key, column in in_scope.items()
        }
    return Found(n, by_scope)


def first_of(columns: Sequence[pa.Array], n: int) -> pa.Array:
    """Row-wise the first non-null value of ``columns`` (all null when there are none)."""
    if not columns:
        return pa.nulls(n, pa.string())
    if len(columns) == 1:
        return columns[0]
    return pc.coalesce(*columns)
