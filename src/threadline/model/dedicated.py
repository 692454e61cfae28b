"""Hot attributes as columns, and the attribute keys a set of span rows holds.

``add_dedicated_columns`` copies the attributes nearly every search filters on (``DEDICATED``
in the schema: http status, method and route, db system ...) out of the typed maps into
columns of their own, so a filter on one reads a narrow column instead of decoding a map.
``attribute_keys`` lists the keys of every attribute map: a query over rows that lack a key
does not read that map at all (see ``querier.sql.resolve_attributes``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from threadline.model.schema import ATTR_SCOPES, ATTR_TYPES, DEDICATED, DEDICATED_COLUMNS

MAP_COLUMNS = tuple(f"{scope}_attrs_{kind}" for scope in ATTR_SCOPES for kind in ATTR_TYPES)


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


def add_dedicated_columns(table: pa.Table) -> pa.Table:
    """``table`` with the ``DEDICATED_COLUMNS`` appended (null where a span lacks the key)."""
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
    return table


def attribute_keys(table: pa.Table) -> dict[str, list[str]]:
    """The distinct keys of each attribute map column of ``table``, sorted."""
    out: dict[str, list[str]] = {}
    for name in MAP_COLUMNS:
        chunks = [c.keys for c in table.column(name).chunks if len(c)]
        keys = pc.unique(pa.chunked_array(chunks, pa.string())) if chunks else []
        out[name] = sorted(k for k in (keys.to_pylist() if chunks else ()) if k is not None)
    return out
