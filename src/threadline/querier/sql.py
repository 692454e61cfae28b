"""SQL text helpers for the DuckDB queries the querier builds (literals are always quoted here)."""

from __future__ import annotations

import math


def string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def number(value: int | float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "'NaN'::DOUBLE"
        if math.isinf(value):
            return "'Infinity'::DOUBLE" if value > 0 else "'-Infinity'::DOUBLE"
        return repr(value) + "::DOUBLE"
    return str(int(value))


def attr(scope: str, kind: str, name: str) -> str:
    """The typed map lookup of attribute ``name`` (NULL when missing)."""
    return f"{scope}_attrs_{kind}[{string(name)}]"
