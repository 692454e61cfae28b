"""``compare()``: how the attribute values of a selection of spans differ from the rest.

Each source counts, per step, the spans of the selection and of the baseline (the outer query's
other spans) carrying each value of every attribute and of the descriptive intrinsics
(``traceql.metrics_plan.ComparePlan``). Here the counts of all sources are added up and turned
into Tempo 3's series: per attribute, its ``top_n`` most frequent values of each group
(``__meta_type`` = ``baseline`` / ``selection``), one ``*_total`` series per attribute and group
counting every span that has the attribute, and a ``__meta_error = __too_many_values__`` series
for an attribute with more values than ``top_n``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from threadline.querier.series import Series, TooManySeries
from threadline.querier.sources import (
    ROW_NUMBER,
    DataSources,
    Inspected,
    Source,
    SourceCursor,
    not_excluded,
)
from threadline.traceql.field_sql import label_value
from threadline.traceql.metrics_plan import ComparePlan

_NIL = {"stringValue": "nil"}


def _label(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def compare_series(
    sources: DataSources,
    tenant: str,
    plan: ComparePlan,
    start_ns: int,
    end_ns: int,
    step_ns: int,
    max_series: int | None,
) -> tuple[list[Series], Inspected]:
    """The series of ``plan`` over ``(start, end]`` in steps, and what was read."""

    def rows_of(con: SourceCursor, source: Source) -> list[tuple[Any, ...]]:
        query = plan.source_sql(
            source.relation, ROW_NUMBER, start_ns, end_ns, step_ns, not_excluded(source)
        )
        return con.sql(query).fetchall()

    # (selected, attribute) -> value (frozen struct) -> step -> spans
    counts: dict[tuple[bool, str], dict[tuple[Any, ...], dict[int, int]]] = defaultdict(dict)
    inspected = Inspected()
    for source, rows in sources.each(
        tenant, start_ns, end_ns, rows_of, whole_traces=plan.needs_traces
    ):
        inspected.add(source)
        for k, selected, attribute, value, n in rows:
            frozen = tuple(sorted(value.items()))
            per_step = counts[(selected, attribute)].setdefault(frozen, {})
            per_step[k] = per_step.get(k, 0) + n
    steps = range(1, max(1, -(-(end_ns - start_ns) // step_ns)) + 1)

    def points(per_step: dict[int, int]) -> dict[int, float]:
        return {(start_ns + k * step_ns) // 10**6: float(per_step.get(k, 0)) for k in steps}

    out: list[Series] = []
    for (selected, attribute), values in sorted(counts.items(), key=lambda kv: kv[0][1]):
        group = "selection" if selected else "baseline"
        total: dict[int, int] = defaultdict(int)
        for per_step in values.values():
            for k, n in per_step.items():
                total[k] += n
        out.append(
            Series(
                [_label("__meta_type", {"stringValue": f"{group}_total"}), _label(attribute, _NIL)],
                points(total),
            )
        )
        if len(values) > plan.top_n:
            marker = [_label("__meta_error", {"stringValue": "__too_many_values__"})]
            out.append(Series([*marker, _label(attribute, _NIL)], {}))
        ranked = sorted(values.items(), key=lambda kv: (-sum(kv[1].values()), str(kv[0])))
        for frozen, per_step in ranked[: plan.top_n]:
            labels = [
                _label("__meta_type", {"stringValue": group}),
                _label(attribute, label_value(dict(frozen))),
            ]
            out.append(Series(labels, points(per_step)))
        if max_series is not None and len(out) > max_series:
            raise TooManySeries(max_series)
    return out, inspected
