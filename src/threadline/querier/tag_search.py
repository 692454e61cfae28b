"""The legacy tag search (``/api/search?tags=...``) as a search plan.

``tags`` is logfmt: ``service.name=cart http.url="/api/x y"``. Well-known keys match their
columns (substring for service and span names, as Tempo does); any other key matches a span or
resource attribute of that name exactly, whatever its type. A trace matches when every tag is
matched by some span of it; its matching spans form the returned spanset.
"""

from __future__ import annotations

import shlex

from threadline.querier.span_search import attribute_equals
from threadline.traceql import sql
from threadline.traceql.plan import Plan, QueryError

_STATUS = {"unset": 0, "ok": 1, "error": 2}


class TagSearchError(QueryError):
    pass


def parse_logfmt(text: str) -> dict[str, str]:
    try:
        parts = shlex.split(text)
    except ValueError as e:
        raise TagSearchError(f"invalid tags {text!r}: {e}") from None
    out: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise TagSearchError(f"invalid tags: {part!r} is not key=value")
        if key in out:
            raise TagSearchError(f"invalid tags: duplicate key {key!r}")
        out[key] = value
    return out


def _like(column: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE {sql.string('%' + escaped + '%')} ESCAPE '\\'"


def _condition(key: str, value: str) -> str:
    if key == "service.name":
        return _like("service_name", value)
    if key == "name":
        return _like("name", value)
    if key == "root.name":
        return _like("root_span_name", value)
    if key == "root.service.name":
        return _like("root_service_name", value)
    if key == "status.code":
        if value not in _STATUS:
            raise TagSearchError(f"invalid status.code {value!r}: use unset, ok or error")
        return f"status_code = {_STATUS[value]}"
    if key == "error" and value == "true":
        return "status_code = 2"
    return attribute_equals(key, value)


def tag_search_plan(tags: dict[str, str]) -> Plan:
    if not tags:
        return Plan(
            "SELECT trace_id, '' AS sset, rid, NULL AS labels FROM base "
            "QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY start_unix_nano) = 1"
        )
    conditions = [_condition(k, v) for k, v in tags.items()]
    every = " AND ".join(f"bool_or({c})" for c in conditions)
    return Plan(
        f"SELECT trace_id, '' AS sset, rid, NULL AS labels FROM base "
        f"WHERE ({' OR '.join(conditions)}) AND trace_id IN "
        f"(SELECT trace_id FROM base GROUP BY trace_id HAVING {every})"
    )
