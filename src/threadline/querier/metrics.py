"""TraceQL metrics over stored traces: run a metrics plan on every source, merge the partial
states per (labels, bucket), then compute the function and apply the second stages.

Quantiles are estimated from log2 buckets with exponential interpolation inside the bucket
(as Tempo does); rate and count series get a 0 for every bucket without spans.
"""

from __future__ import annotations

import asyncio
import math
import operator
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import orjson

from threadline.querier.answer_cache import AnswerCache
from threadline.querier.histogram import quantile
from threadline.querier.metrics_compare import compare_series
from threadline.querier.progress import with_progress
from threadline.querier.series import Series, TooManySeries
from threadline.querier.sources import (
    ROW_NUMBER,
    DataSources,
    Inspected,
    Source,
    SourceCursor,
    not_excluded,
)
from threadline.traceql.ast import BinaryOperator, MetricsFilter, MetricsOp, SecondStageOp, TopK
from threadline.traceql.field_sql import label_value
from threadline.traceql.metrics_plan import (
    ComparePlan,
    MetricsExpression,
    MetricsPlan,
    StagesPlan,
)

_COMPARE = {
    BinaryOperator.EQ: operator.eq,
    BinaryOperator.NEQ: operator.ne,
    BinaryOperator.GT: operator.gt,
    BinaryOperator.GTE: operator.ge,
    BinaryOperator.LT: operator.lt,
    BinaryOperator.LTE: operator.le,
}
MAX_EXEMPLARS = 100


@dataclass(slots=True)
class MetricsProgress:
    """A metrics query under way: its series from the sources read so far."""

    series: list[Series]
    inspected: Inspected
    completed_jobs: int
    total_jobs: int


def _live_spans(source: Source) -> int:
    return source.live.num_rows if source.live is not None else 0


@dataclass(slots=True)
class _State:
    count: float = 0  # spans (estimated, under sampling)
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    histogram: Counter[int] = field(default_factory=Counter)
    exemplar: dict[str, Any] | None = None

    def add(self, n: float, s: float | None, lo: float | None, hi: float | None) -> None:
        self.count += n
        if s is not None:
            self.total += s
        if lo is not None:
            self.low = min(self.low, lo)
        if hi is not None:
            self.high = max(self.high, hi)


_NO_END = 2**63 - 1


class MetricsEngine:
    def __init__(self, sources: DataSources, adaptive_sample_spans: int = 250_000) -> None:
        self.sources = sources
        # with(sample=true): spans to read of each source (querier.adaptive_sample_spans)
        self.adaptive_sample_spans = adaptive_sample_spans
        # per block, query and step: partial states by absolute bucket (see ``_states``)
        self._cache = AnswerCache()

    def _states(
        self,
        tenant: str,
        plan: MetricsPlan,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        max_series: int | None,
        report: Callable[[MetricsProgress], None] | None = None,
    ) -> tuple[dict[tuple[Any, ...], _State], Inspected]:
        """The partial states of every source merged, and what was read; with ``report``,
        the series so far after each round of sources."""
        per_label_set = max(1, len(plan.quantiles))

        def rows_of(con: SourceCursor, source: Source) -> tuple[float, list[tuple[Any, ...]]]:
            """The source's partial states, and what their counts and sums are scaled by
            (its sampling)."""
            spans = source.block.meta.total_spans if source.block else _live_spans(source)
            sampling = plan.sampling.resolved(spans, self.adaptive_sample_spans)
            sampled = replace(plan, sampling=sampling)
            return sampled.sampling.scale, _partial_states(con, source, sampled)

        def _partial_states(
            con: SourceCursor, source: Source, plan: MetricsPlan
        ) -> list[tuple[Any, ...]]:
            block = source.block
            keep = not_excluded(source)
            if (
                block is not None
                and source.excluded is None  # what is left out changes with the live data
                and start_ns % step_ns == 0
                and block.meta.start_unix_nano > start_ns
                and block.meta.end_unix_nano <= end_ns
            ):
                # a block inside a step-aligned window: its states are counted in buckets
                # from time 0 and kept, so the next query (the window moved on) reuses them
                key = (block.id, plan, step_ns, max_series)
                cached = self._cache.get(key)
                if cached is None:
                    query = plan.source_sql(
                        source.relation, ROW_NUMBER, 0, _NO_END, step_ns, max_series
                    )
                    cached = con.sql(query).fetchall()
                    self._cache.put(key, cached)
                shift = start_ns // step_ns
                rows = [(r[0] - shift, *r[1:]) for r in cast(list[tuple[Any, ...]], cached)]
            else:
                query = plan.source_sql(
                    source.relation, ROW_NUMBER, start_ns, end_ns, step_ns, max_series, keep
                )
                rows = con.sql(query).fetchall()
            # each source is cut at one series past the limit in its SQL: over means refused
            if (
                max_series is not None
                and max((r[-1] for r in rows), default=0) * per_label_set > max_series
            ):
                raise TooManySeries(max_series)
            return rows

        states: dict[tuple[Any, ...], _State] = {}
        series: set[tuple[Any, ...]] = set()
        inspected = Inspected()
        n_labels = len(plan.label_sql)
        histogram = plan.function is MetricsOp.HISTOGRAM_OVER_TIME
        absorbed = 0

        def absorb(done: list[tuple[Source, tuple[float, list[tuple[Any, ...]]]]]) -> None:
            nonlocal absorbed
            for source, (scale, rows) in done[absorbed:]:
                merge(source, scale, rows)
            absorbed = len(done)

        def told(done: list[tuple[Source, Any]], every: list[Source]) -> None:
            if report is None:
                return
            absorb(done)
            snapshot = self._series(plan, states, start_ns, end_ns, step_ns)
            report(MetricsProgress(snapshot, replace(inspected), len(done), len(every)))

        def merge(source: Source, scale: float, rows: list[tuple[Any, ...]]) -> None:
            inspected.add(source)
            for row in rows:
                k, hb = row[0], row[1 + n_labels]
                # label structs come back as dicts: frozen to (key, value) pairs to hash
                labels = tuple(
                    tuple(sorted(v.items())) if v else None for v in row[1 : 1 + n_labels]
                )
                n, s, lo, hi, ex = row[2 + n_labels : 7 + n_labels]
                state = states.setdefault((labels, k), _State())
                if scale != 1:
                    n, s = n * scale, None if s is None else s * scale
                state.add(n, s, lo, hi)
                if hb is not None:
                    state.histogram[hb] += n
                if ex is not None and (state.exemplar is None or ex["v"] > state.exemplar["v"]):
                    state.exemplar = ex
                if max_series is not None:
                    series.add((labels, hb) if histogram else labels)
            # sources may each be under the limit and together over it
            if max_series is not None and len(series) * per_label_set > max_series:
                raise TooManySeries(max_series)

        visited = self.sources.each(
            tenant, start_ns, end_ns, rows_of, whole_traces=plan.needs_traces, progress=told
        )
        absorb(visited)
        return states, inspected

    def _series(
        self,
        plan: MetricsPlan,
        states: dict[tuple[Any, ...], _State],
        start_ns: int,
        end_ns: int,
        step_ns: int,
    ) -> list[Series]:
        fn = plan.function
        buckets = max(1, -(-(end_ns - start_ns) // step_ns))
        by_labels: dict[tuple[Any, ...], dict[int, _State]] = {}
        for (labels, k), state in states.items():
            by_labels.setdefault(labels, {})[k] = state
        out: list[Series] = []
        for labels, per_bucket in sorted(by_labels.items(), key=lambda kv: str(kv[0])):
            base_labels = [
                {"key": key, "value": label_value(dict(v) if v else None)}
                for key, v in zip(plan.label_keys, labels, strict=True)
            ] or [{"key": "__name__", "value": {"stringValue": fn.value}}]
            dense = fn in (MetricsOp.RATE, MetricsOp.COUNT_OVER_TIME)
            for series_labels, which in _variants(plan, base_labels, per_bucket):
                points: dict[int, float] = {}
                exemplars = []
                for k in range(1, buckets + 1) if dense else sorted(per_bucket):
                    state = per_bucket.get(k)
                    value = self._value(plan, state, which, step_ns)
                    if value is None or math.isnan(value):
                        continue
                    points[(start_ns + k * step_ns) // 10**6] = value
                    if state and state.exemplar and len(exemplars) < MAX_EXEMPLARS:
                        exemplars.append(_exemplar_json(state.exemplar))
                if points:
                    out.append(Series(series_labels, points, exemplars))
        for stage in plan.stages:
            out = _apply_stage(stage, out)
        return out

    @staticmethod
    def _value(plan: MetricsPlan, state: _State | None, which: Any, step_ns: int) -> float | None:
        fn = plan.function
        if fn is MetricsOp.RATE:
            return (state.count if state else 0) / (step_ns / 1e9)
        if fn is MetricsOp.COUNT_OVER_TIME:
            return float(state.count if state else 0)
        if state is None or state.count == 0:
            return None
        if fn is MetricsOp.SUM_OVER_TIME:
            return state.total
        if fn is MetricsOp.MIN_OVER_TIME:
            return state.low
        if fn is MetricsOp.MAX_OVER_TIME:
            return state.high
        if fn is MetricsOp.AVG_OVER_TIME:
            return state.total / state.count
        if fn is MetricsOp.QUANTILE_OVER_TIME:
            return quantile(state.histogram, which, 1e9 if plan.is_duration else 1.0)
        if fn is MetricsOp.HISTOGRAM_OVER_TIME:
            return float(state.histogram.get(which, 0)) or None
        return None

    def _run(
        self,
        tenant: str,
        expr: MetricsExpression,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        max_series: int | None,
    ) -> tuple[list[Series] | float, Inspected]:
        if isinstance(expr, float):
            return expr, Inspected()
        if isinstance(expr, ComparePlan):
            return compare_series(self.sources, tenant, expr, start_ns, end_ns, step_ns, max_series)
        if isinstance(expr, MetricsPlan):
            states, inspected = self._states(tenant, expr, start_ns, end_ns, step_ns, max_series)
            return self._series(expr, states, start_ns, end_ns, step_ns), inspected
        if isinstance(expr, StagesPlan):
            value, inspected = self._run(tenant, expr.expr, start_ns, end_ns, step_ns, max_series)
            series = value if isinstance(value, list) else []
            for stage in expr.stages:
                series = _apply_stage(stage, series)
            return series, inspected
        lhs, a = self._run(tenant, expr.lhs, start_ns, end_ns, step_ns, max_series)
        rhs, b = self._run(tenant, expr.rhs, start_ns, end_ns, step_ns, max_series)
        return combine(expr.op, lhs, rhs), a + b

    async def stream_range(
        self,
        tenant: str,
        expr: MetricsExpression,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        max_series: int | None = None,
    ) -> AsyncIterator[MetricsProgress | tuple[list[Series], Inspected]]:
        """As ``query_range``, and before its answer, for a query of one pipeline, the series
        so far after each round of sources."""

        def run(
            report: Callable[[MetricsProgress], None],
        ) -> tuple[list[Series] | float, Inspected]:
            if not isinstance(expr, MetricsPlan):
                return self._run(tenant, expr, start_ns, end_ns, step_ns, max_series)
            states, inspected = self._states(
                tenant, expr, start_ns, end_ns, step_ns, max_series, report
            )
            return self._series(expr, states, start_ns, end_ns, step_ns), inspected

        async for step in with_progress(run):
            if isinstance(step, MetricsProgress):
                yield step
            else:
                value, inspected = step
                yield (value if isinstance(value, list) else []), inspected

    async def query_range(
        self,
        tenant: str,
        expr: MetricsExpression,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        max_series: int | None = None,
    ) -> tuple[list[Series], Inspected]:
        """Series over ``(start, end]`` in buckets of ``step``, and what was read.

        Raises ``TooManySeries`` when a part of the query would make more than ``max_series``
        series; that is found in each source's SQL, before any series is built."""
        value, inspected = await asyncio.to_thread(
            self._run, tenant, expr, start_ns, end_ns, step_ns, max_series
        )
        return (value if isinstance(value, list) else []), inspected


_ARITHMETIC = {
    BinaryOperator.ADD: operator.add,
    BinaryOperator.SUB: operator.sub,
    BinaryOperator.MUL: operator.mul,
    BinaryOperator.DIV: operator.truediv,
}


def _label_key(series: Series) -> tuple[str, ...]:
    return tuple(sorted(orjson.dumps(lbl).decode() for lbl in series.labels))


def _unlabeled(series: list[Series]) -> bool:
    return len(series) == 1 and [lbl["key"] for lbl in series[0].labels] == ["__name__"]


def combine(
    op: BinaryOperator, lhs: list[Series] | float, rhs: list[Series] | float
) -> list[Series] | float:
    """``lhs op rhs`` per timestamp: series with identical labels are matched, an unlabeled
    side (or a number) applies to every series of the other; a missing point or a division
    by zero gives no point."""
    fn = _ARITHMETIC[op]

    def apply(x: float, y: float) -> float | None:
        try:
            return fn(x, y)
        except ZeroDivisionError:
            return None

    if isinstance(lhs, float) and isinstance(rhs, float):
        result = apply(lhs, rhs)
        return math.nan if result is None else result
    if isinstance(rhs, float) or isinstance(lhs, float):
        series, number = (lhs, rhs) if isinstance(rhs, float) else (rhs, lhs)
        assert isinstance(series, list) and isinstance(number, float)
        out = []
        for s in series:
            pts = {}
            for t, v in s.points.items():
                r = apply(v, number) if series is lhs else apply(number, v)
                if r is not None and not math.isnan(r):
                    pts[t] = r
            if pts:
                out.append(Series(s.labels, pts, s.exemplars))
        return out
    pairs: list[tuple[Series, Series, Series]] = []  # (left, right, labels from)
    if _unlabeled(rhs):
        pairs = [(s, rhs[0], s) for s in lhs]
    elif _unlabeled(lhs):
        pairs = [(lhs[0], s, s) for s in rhs]
    else:
        by_key = {_label_key(s): s for s in rhs}
        pairs = [(s, by_key[_label_key(s)], s) for s in lhs if _label_key(s) in by_key]
    out = []
    for left, right, labelled in pairs:
        pts = {}
        for t, v in left.points.items():
            if t in right.points:
                r = apply(v, right.points[t])
                if r is not None and not math.isnan(r):
                    pts[t] = r
        if pts:
            out.append(Series(labelled.labels, pts, left.exemplars))
    return out


def _variants(
    plan: MetricsPlan, labels: list[dict[str, Any]], per_bucket: dict[int, _State]
) -> list[tuple[list[dict[str, Any]], Any]]:
    """The series one label set yields: one per quantile or histogram bucket, else one."""
    if plan.function is MetricsOp.QUANTILE_OVER_TIME:
        return [([*labels, {"key": "p", "value": {"doubleValue": q}}], q) for q in plan.quantiles]
    if plan.function is MetricsOp.HISTOGRAM_OVER_TIME:
        scale = 1e9 if plan.is_duration else 1.0
        hbs = sorted({hb for st in per_bucket.values() for hb in st.histogram})
        return [
            ([*labels, {"key": "__bucket", "value": {"doubleValue": 2**hb / scale}}], hb)
            for hb in hbs
        ]
    return [(labels, None)]


def _exemplar_json(ex: dict[str, Any]) -> dict[str, Any]:
    return {
        "labels": [
            {"key": "trace:id", "value": {"stringValue": ex["t"].hex()}},
            {"key": "span:id", "value": {"stringValue": ex["sp"].hex()}},
        ],
        "value": ex["v"],
        "timestampMs": str(ex["ts"] // 10**6),
    }


def _apply_stage(stage: Any, series: list[Series]) -> list[Series]:
    if isinstance(stage, MetricsFilter):
        test = _COMPARE[stage.op]
        for s in series:
            s.points = {t: v for t, v in s.points.items() if test(v, stage.threshold)}
        return [s for s in series if s.points]
    if isinstance(stage, TopK):
        keep: set[tuple[int, int]] = set()
        timestamps = {t for s in series for t in s.points}
        for t in timestamps:
            ranked = sorted(
                ((s.points[t], i) for i, s in enumerate(series) if t in s.points),
                reverse=stage.op is SecondStageOp.TOPK,
            )
            keep.update((i, t) for _, i in ranked[: stage.k])
        for i, s in enumerate(series):
            s.points = {t: v for t, v in s.points.items() if (i, t) in keep}
        return [s for s in series if s.points]
    return series


def series_json(series: list[Series]) -> list[dict[str, Any]]:
    out = []
    for s in series:
        doc: dict[str, Any] = {
            "labels": s.labels,
            "samples": [{"timestampMs": str(t), "value": v} for t, v in sorted(s.points.items())],
        }
        if s.exemplars:
            doc["exemplars"] = s.exemplars
        out.append(doc)
    return out
