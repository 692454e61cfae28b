"""SQL text helpers for the DuckDB queries the querier builds (literals are always quoted here).

Attribute lookups are written as placeholders (``attr``) that each source resolves for the
rows it holds (``resolve_attributes``): a dedicated column where the source has one, NULL when
no row of the source has the key (so the map is not read at all), else the map lookup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

MARK = "\x01"  # delimits attribute placeholders; never left raw inside a literal
_PLACEHOLDER = re.compile("\x01([a-z]+)_attrs_([a-z_]+)\x1f([0-9a-f]*)\x01")
_SQL_TYPES = {
    "str": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "raw": "BLOB",
    # array elements (model.schema.ARRAY_COLUMNS)
    "arr_str": "VARCHAR[]",
    "arr_int": "BIGINT[]",
    "arr_float": "DOUBLE[]",
    "arr_bool": "BOOLEAN[]",
}


def string(value: str) -> str:
    quoted = "'" + value.replace("'", "''") + "'"
    if MARK in value:
        return "(" + quoted.replace(MARK, "' || chr(1) || '") + ")"
    return quoted


def number(value: int | float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "'NaN'::DOUBLE"
        if math.isinf(value):
            return "'Infinity'::DOUBLE" if value > 0 else "'-Infinity'::DOUBLE"
        return repr(value) + "::DOUBLE"
    return str(int(value))


def attr(scope: str, kind: str, name: str) -> str:
    """Attribute ``name`` of type ``kind`` (NULL when missing), as a placeholder that
    ``resolve_attributes`` turns into SQL for one source."""
    return f"{MARK}{scope}_attrs_{kind}\x1f{name.encode().hex()}{MARK}"


def map_lookup(scope: str, kind: str, name: str) -> str:
    """The typed map lookup of attribute ``name`` (NULL when missing)."""
    return f"{scope}_attrs_{kind}[{string(name)}]"


class AttributeColumns:
    """What one source holds: the keys of each attribute map (None: not known, read the map)
    and the dedicated columns that hold attributes, by (map column, key)."""

    def __init__(
        self,
        keys: Mapping[str, frozenset[str]] | None = None,
        dedicated: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.keys = keys
        self.dedicated = dedicated or {}

    def lookup(self, scope: str, kind: str, name: str) -> str:
        column = f"{scope}_attrs_{kind}"
        dedicated = self.dedicated.get((column, name))
        if dedicated is not None:
            return dedicated
        # blocks that list no keys predate the array columns
        unknown_array = self.keys is None and kind.startswith("arr_")
        if unknown_array or (
            self.keys is not None and name not in self.keys.get(column, frozenset())
        ):
            return f"CAST(NULL AS {_SQL_TYPES[kind]})"
        return map_lookup(scope, kind, name)


def resolve_attributes(query: str, columns: AttributeColumns) -> str:
    """``query`` with every ``attr`` placeholder replaced by SQL for a source of ``columns``."""
    if MARK not in query:
        return query
    return _PLACEHOLDER.sub(
        lambda m: columns.lookup(m[1], m[2], bytes.fromhex(m[3]).decode()), query
    )
