"""What one source holds of the attributes a query looks up, and the query's attribute
placeholders (``traceql.sql.attr``) resolved for it: a dedicated column where the source has
one, NULL when no row of the source has the key (so the map is not read at all), else the map
lookup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from threadline.traceql.sql import MARK, PLACEHOLDER, TERM, TERM_PATTERN, map_lookup

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

    def absent(self, scope: str, kind: str, name: str) -> bool:
        """Whether no row of the source has attribute ``name`` of this kind."""
        column = f"{scope}_attrs_{kind}"
        if (column, name) in self.dedicated:
            return False
        if self.keys is None:  # blocks that list no keys predate the array columns
            return kind.startswith("arr_")
        return name not in self.keys.get(column, frozenset())

    def lookup(self, scope: str, kind: str, name: str) -> str:
        dedicated = self.dedicated.get((f"{scope}_attrs_{kind}", name))
        if dedicated is not None:
            return dedicated
        if self.absent(scope, kind, name):
            return f"CAST(NULL AS {_SQL_TYPES[kind]})"
        return map_lookup(scope, kind, name)


def resolve_attributes(query: str, columns: AttributeColumns) -> str:
    """``query`` with every ``attr`` placeholder replaced by SQL for a source of ``columns``."""
    if TERM in query:

        def term(m: re.Match[str]) -> str:
            found = PLACEHOLDER.findall(m[1])
            if found and all(columns.absent(s, k, bytes.fromhex(n).decode()) for s, k, n in found):
                return "false"
            return m[1]

        query = TERM_PATTERN.sub(term, query)
    if MARK not in query:
        return query
    return PLACEHOLDER.sub(
        lambda m: columns.lookup(m[1], m[2], bytes.fromhex(m[3]).decode()), query
    )
