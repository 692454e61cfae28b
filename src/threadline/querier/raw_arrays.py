"""The DuckDB functions that read array attribute values kept serialized (event and link
attributes have no array columns): ``tl_array_str(raw)``, ``tl_array_int``, ``tl_array_float``,
``tl_array_bool``, each a value's elements of that type, read in batches by the compiled
``model._any_arrays`` (``traceql.sql.raw_array`` writes the calls)."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa

from threadline.model.dedicated import array_lists
from threadline.model.schema import ARRAY_ELEMENT_TYPES
from threadline.traceql.sql import RAW_ARRAY_FUNCTION

_SQL_TYPES = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN"}


def _reader(index: int) -> Callable[[pa.ChunkedArray | pa.Array], pa.Array]:
    def read(raw: pa.ChunkedArray | pa.Array) -> pa.Array:
        values = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
        return array_lists(values.cast(pa.binary()))[index]

    return read


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Add the functions to the database of ``con``."""
    for index, kind in enumerate(ARRAY_ELEMENT_TYPES):
        con.create_function(
            RAW_ARRAY_FUNCTION + kind,
            _reader(index),  # type: ignore[arg-type]
            ["BLOB"],
            f"{_SQL_TYPES[kind]}[]",
            type="arrow",
            null_handling="special",  # a value without elements of the type gives NULL
        )
