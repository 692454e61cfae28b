"""SQL text of the plans the TraceQL front end and the querier write for DuckDB: literals
(always quoted here), attribute placeholders, histogram buckets.

Attribute lookups are written as placeholders (``attr``) that each source resolves for the
rows it holds (``querier.attribute_columns``): a dedicated column where the source has one,
NULL when no row of the source has the key (so the map is not read at all), else the map lookup.
"""

from __future__ import annotations

import math
import re

MARK = "\x01"  # delimits attribute placeholders; never left raw inside a literal
TERM = "\x02"  # delimits a term that is false where its attributes are missing (``if_present``)
TERM_PATTERN = re.compile("\x02([^\x02]*)\x02")
PLACEHOLDER = re.compile("\x01([a-z]+)_attrs_([a-z_]+)\x1f([0-9a-f]*)\x01")


def string(value: str) -> str:
    quoted = "'" + value.replace("'", "''") + "'"
    if MARK in value or TERM in value:
        quoted = quoted.replace(MARK, "' || chr(1) || '").replace(TERM, "' || chr(2) || '")
        return "(" + quoted + ")"
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


def if_present(term: str) -> str:
    """``term``, which becomes ``false`` in a source lacking every attribute it looks up: so
    a rarely used alternative (array elements) costs nothing where it cannot match."""
    return f"{TERM}{term}{TERM}"


def map_lookup(scope: str, kind: str, name: str) -> str:
    """The typed map lookup of attribute ``name`` (NULL when missing)."""
    return f"{scope}_attrs_{kind}[{string(name)}]"


def bucket_sql(value: str) -> str:
    """SQL for the log2 bucket of a positive value (values below 1 go to bucket 0): the
    mergeable form of latency distributions (``querier.histogram``)."""
    return f"CAST(ceil(log2(greatest({value}, 1))) AS INTEGER)"


def raw_array(kind: str, raw: str) -> str:
    """The elements of type ``kind`` (``str``, ``int``, ``float``, ``bool``) of the serialized
    array value ``raw`` (SQL of a BLOB), a list, NULL when it has none: for attributes whose
    arrays have no columns of their own (events', links'); the querier registers the
    functions (``querier.raw_arrays``)."""
    return f"{RAW_ARRAY_FUNCTION}{kind}({raw})"


RAW_ARRAY_FUNCTION = "tl_array_"
