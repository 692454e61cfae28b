"""Tag discovery: attribute names per scope and the typed values of one attribute.

Answers cover live data and every block in the window. Blocks never change, so what was found
in a block is cached by block id and each block is scanned at most once per question.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from threadline.querier.answer_cache import AnswerCache
from threadline.querier.sources import DataSources, Inspected, Source, SourceCursor
from threadline.traceql import sql

# TraceQL attribute scopes, all stored as typed maps; the unscoped form searches the first two
MAP_SCOPES = ("resource", "span", "instrumentation", "event", "link")
UNSCOPED = ("resource", "span")
_MAP_TYPES = (("str", "string"), ("int", "int"), ("float", "float"), ("bool", "bool"))

INTRINSIC_TAGS = sorted(
    [
        "duration",
        "event:name",
        "instrumentation:name",
        "instrumentation:version",
        "kind",
        "name",
        "rootName",
        "rootServiceName",
        "span:duration",
        "span:id",
        "span:kind",
        "span:name",
        "span:parentID",
        "span:status",
        "span:statusMessage",
        "status",
        "statusMessage",
        "trace:duration",
        "trace:id",
        "trace:rootName",
        "trace:rootService",
        "traceDuration",
    ]
)
_KEYWORDS = {
    "status": ["error", "ok", "unset"],
    "kind": ["client", "consumer", "internal", "producer", "server", "unspecified"],
}
# intrinsics whose values come from one string column
_INTRINSIC_COLUMNS = {
    "name": "name",
    "span:name": "name",
    "statusMessage": "status_message",
    "span:statusMessage": "status_message",
    "rootName": "root_span_name",
    "trace:rootName": "root_span_name",
    "rootServiceName": "root_service_name",
    "trace:rootService": "root_service_name",
    "instrumentation:name": "scope_name",
    "instrumentation:version": "scope_version",
}


@dataclass(frozen=True, slots=True)
class TagValue:
    type: str  # string | int | float | bool | keyword
    value: str


def _scope_rows(relation: str, scope: str, where: str) -> tuple[str, str]:
    """(rows to read, prefix of the scope's map columns in them) for spans matching ``where``."""
    if scope in ("event", "link"):
        nested = "events" if scope == "event" else "links"
        return f"(SELECT unnest({nested}) AS x FROM {relation} WHERE {where})", "x.attrs"
    column = {"resource": "resource", "span": "span", "instrumentation": "scope"}[scope]
    return f"(SELECT * FROM {relation} WHERE {where})", f"{column}_attrs"


def _names_sql(relation: str, scope: str, where: str) -> str:
    rows, prefix = _scope_rows(relation, scope, where)
    parts = [
        f"SELECT DISTINCT unnest(map_keys({prefix}_{t})) AS k FROM {rows}"
        for t in ("str", "int", "float", "bool", "raw")
    ]
    return " UNION ".join(parts)


def _values_sql(relation: str, scope: str, name: str, where: str) -> list[tuple[str, str]]:
    rows, prefix = _scope_rows(relation, scope, where)
    out = []
    for col, type_name in _MAP_TYPES:
        if scope == "resource" and name == "service.name" and col == "str":
            value = "nullif(service_name, '')"  # a column of its own: no map is read
        elif scope in ("resource", "span", "instrumentation"):
            # a dedicated column where the source has one, nothing where it lacks the key
            value = sql.attr(prefix.removesuffix("_attrs"), col, name)
        else:
            value = f"{prefix}_{col}[{sql.string(name)}]"
        out.append(
            (
                type_name,
                f"SELECT DISTINCT CAST({value} AS VARCHAR) FROM {rows} WHERE {value} IS NOT NULL",
            )
        )
        # the elements of array values (model.schema.ARRAY_COLUMNS; events' and links',
        # which have no such columns, read from their serialized values)
        if scope in ("event", "link"):
            items = sql.raw_array(col, f"x.attrs_raw[{sql.string(name)}]")
        else:
            items = sql.attr(prefix.removesuffix("_attrs"), f"arr_{col}", name)
        out.append(
            (
                type_name,
                f"SELECT DISTINCT CAST(el AS VARCHAR) FROM "
                f"(SELECT unnest({items}) AS el FROM {rows} WHERE {items} IS NOT NULL)",
            )
        )
    return out


class TagFinder:
    def __init__(self, sources: DataSources) -> None:
        self.sources = sources
        self._cache = AnswerCache()

    def _collect(
        self,
        tenant: str,
        window: tuple[int | None, int | None],
        question: str,
        compute: Callable[[SourceCursor, Source], frozenset[Any]],
        inspected: Inspected | None = None,
    ) -> set[Any]:
        """The union of ``compute`` over every source; block answers come from the cache.
        ``inspected`` is told of every source."""

        def answer(con: SourceCursor, source: Source) -> frozenset[Any]:
            key = (source.key, question)  # a block, or one snapshot of the live rows
            hit = self._cache.get(key)
            if hit is None:
                hit = compute(con, source)
                self._cache.put(key, hit)
            return hit  # type: ignore[return-value]

        out: set[Any] = set()
        for source, found in self.sources.each(tenant, *window, answer):
            out |= found
            if inspected is not None:
                inspected.add(source)
        return out

    async def names(
        self,
        tenant: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        where: str = "true",
        inspected: Inspected | None = None,
    ) -> dict[str, list[str]]:
        """Attribute names per scope (``resource``, ``span``) on spans matching ``where``."""

        def compute(con: SourceCursor, source: Source) -> frozenset[Any]:
            return frozenset(
                (scope, row[0])
                for scope in MAP_SCOPES
                for row in con.sql(_names_sql(source.relation, scope, where)).fetchall()
            )

        found = await asyncio.to_thread(
            self._collect, tenant, (start_ns, end_ns), f"names:{where}", compute, inspected
        )
        return {scope: sorted(n for s, n in found if s == scope) for scope in MAP_SCOPES}

    async def values(
        self,
        tenant: str,
        scope: str | None,
        name: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        where: str = "true",
        inspected: Inspected | None = None,
    ) -> list[TagValue]:
        """Typed values of attribute ``name`` in ``scope`` (None: span and resource), or of an
        intrinsic when ``scope`` is ``"intrinsic"``, on spans matching ``where``."""
        if scope == "intrinsic":
            base = name.removeprefix("span:")
            if base in _KEYWORDS:
                return [TagValue("keyword", v) for v in _KEYWORDS[base]]
            column = _INTRINSIC_COLUMNS.get(name)
            if column is None:
                return []

            def compute(con: SourceCursor, source: Source) -> frozenset[Any]:
                query = (
                    f"SELECT DISTINCT {column} FROM {source.relation} "
                    f"WHERE {column} != '' AND ({where})"
                )
                return frozenset(TagValue("string", r[0]) for r in con.sql(query).fetchall())

            question = f"intrinsic:{column}:{where}"
        else:
            scopes = UNSCOPED if scope is None else (scope,)

            def compute(con: SourceCursor, source: Source) -> frozenset[Any]:
                return frozenset(
                    TagValue(type_name, row[0])
                    for s in scopes
                    for type_name, query in _values_sql(source.relation, s, name, where)
                    for row in con.sql(query).fetchall()
                )

            question = f"values:{','.join(scopes)}:{name}:{where}"
        found = await asyncio.to_thread(
            self._collect, tenant, (start_ns, end_ns), question, compute, inspected
        )
        return sorted(found, key=lambda v: (v.type, v.value))

    async def services(
        self, tenant: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[str]:
        """Service names (``service.name`` of the resource) seen in the window."""

        def compute(con: SourceCursor, source: Source) -> frozenset[Any]:
            query = f"SELECT DISTINCT service_name FROM {source.relation} WHERE service_name != ''"
            return frozenset(r[0] for r in con.sql(query).fetchall())

        found = await asyncio.to_thread(
            self._collect, tenant, (start_ns, end_ns), "services", compute
        )
        return sorted(found)

    async def operations(
        self, tenant: str, service: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[tuple[str, int]]:
        """(span name, OTLP kind) pairs of one service."""

        def compute(con: SourceCursor, source: Source) -> frozenset[Any]:
            query = (
                f"SELECT DISTINCT name, kind FROM {source.relation} "
                f"WHERE service_name = {sql.string(service)}"
            )
            return frozenset((r[0], r[1]) for r in con.sql(query).fetchall())

        found = await asyncio.to_thread(
            self._collect, tenant, (start_ns, end_ns), f"operations:{service}", compute
        )
        return sorted(found)
