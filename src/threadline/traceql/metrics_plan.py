"""TraceQL metrics queries (``{ ... } | rate() by (...)``) as SQL over one source.

The spanset part compiles as for search; each matched span is then given its time bucket
(right-closed ``(start + (k-1)·step, start + k·step]`` by span start), its group labels (the
``by()`` attributes as OTLP JSON values) and, for the ``*_over_time`` functions, its value
(durations in seconds). Per (group, bucket) the source returns mergeable partial states —
count, sum, min, max, log2-histogram counts and an exemplar (the slowest span) — so that the
querier can combine blocks and live data before computing rates, averages and quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.traceql import parse_and_validate
from threadline.traceql.ast import (
    Attribute,
    BinaryOperator,
    Intrinsic,
    MetricsAggregate,
    MetricsMath,
    MetricsOp,
    MetricsPipeline,
    MetricsStages,
    Node,
    SecondStage,
    SpansetFilter,
    Static,
    Type,
    type_of,
)
from threadline.traceql.errors import TraceQLError
from threadline.traceql.field_sql import CompileError, channels, condition
from threadline.traceql.field_sql import label_sql as group_sql
from threadline.traceql.plan import SearchQueryError, spanset_sql
from threadline.traceql.printer import unparse
from threadline.traceql.sql import bucket_sql

_HISTOGRAM_FUNCTIONS = (MetricsOp.QUANTILE_OVER_TIME, MetricsOp.HISTOGRAM_OVER_TIME)


class MetricsQueryError(SearchQueryError):
    pass


@dataclass(frozen=True, slots=True)
class MetricsPlan:
    # the matched spans: a condition on ``base`` rows for a lone ``{ ... }`` (no join needed),
    # else SQL of the matched relation over ``base``
    span_filter: str | None
    spans_sql: str | None
    function: MetricsOp
    value_sql: str | None  # per-span numeric value, None for rate/count_over_time
    is_duration: bool  # the value is a duration: buckets in ns, reported in seconds
    label_keys: tuple[str, ...]
    label_sql: tuple[str, ...]  # per label, a struct to group by (see field_sql.label_sql)
    quantiles: tuple[float, ...]
    stages: tuple[SecondStage, ...]

    def source_sql(
        self,
        relation: str,
        row_number: str,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        max_series: int | None = None,
    ) -> str:
        """Partial states per (labels, bucket, histogram bucket) for one source.

        The last column, ``g``, numbers the series each row belongs to (1, 2, ...); with
        ``max_series``, rows of series past ``max_series + 1`` are not returned, so a query
        grouped by a near-unique value yields a bounded answer that shows it is over."""
        labels = "".join(f", {expr} AS l{i}" for i, expr in enumerate(self.label_sql))
        label_cols = "".join(f", l{i}" for i in range(len(self.label_sql)))
        histogram = self.function in _HISTOGRAM_FUNCTIONS
        bucket = bucket_sql("raw_v") if histogram else "NULL::INTEGER"
        keep = "v IS NOT NULL" if self.value_sql else "true"
        start, end, step = int(start_ns), int(end_ns), int(step_ns)
        # a series per label set, times the histogram buckets or the quantiles asked for
        series_keys = [f"l{i}" for i in range(len(self.label_sql))]
        if self.function is MetricsOp.HISTOGRAM_OVER_TIME:
            series_keys.append("hb")
        series = f"dense_rank() OVER (ORDER BY {', '.join(series_keys)})" if series_keys else "1"
        cut = ""
        if max_series is not None:
            per_label_set = max(1, len(self.quantiles))
            cut = f" WHERE g * {per_label_set} <= {int(max_series) + per_label_set}"
        if self.span_filter is not None:
            spans, rows = "", f"base WHERE {self.span_filter}"
        else:
            spans = (
                f"matched AS ({self.spans_sql}),\npicked AS (SELECT DISTINCT rid FROM matched),\n"
            )
            rows = "picked JOIN base USING (rid)"
        return f"""
WITH base AS NOT MATERIALIZED (
  SELECT *, {row_number} AS rid FROM {relation}
  WHERE start_unix_nano > {start} AND start_unix_nano <= {end}
),
{spans}v AS (
  SELECT ((start_unix_nano - {start}) + {step} - 1) // {step} AS k,
         CAST({self.value_sql or "NULL"} AS DOUBLE) AS v,
         CAST({self.raw_value_sql()} AS DOUBLE) AS raw_v,
         trace_id, span_id, start_unix_nano, duration_nano{labels}
  FROM {rows}
),
states AS (
  SELECT k{label_cols}, {bucket} AS hb, count(*) AS n, sum(v) AS s, min(v) AS lo,
         max(v) AS hi,
         arg_max(struct_pack(t := trace_id, sp := span_id, ts := start_unix_nano,
                             v := coalesce(v, duration_nano / 1e9)),
                 duration_nano) AS ex
  FROM v WHERE {keep} GROUP BY ALL
),
numbered AS (SELECT *, {series} AS g FROM states)
SELECT * FROM numbered{cut}
"""

    def raw_value_sql(self) -> str:
        """The value in its stored unit (ns for durations): what histogram buckets use."""
        if self.value_sql is None:
            return "NULL"
        return f"({self.value_sql}) * 1e9" if self.is_duration else self.value_sql


def _numeric(node: Node) -> tuple[str, bool]:
    """SQL of a numeric attribute's value (durations in seconds) and whether it is a duration."""
    ch = channels(node)  # type: ignore[arg-type]
    if "duration" in ch.by_type:
        return f"({ch.by_type['duration']}) / 1e9", True
    parts = [ch.by_type[t] for t in ("float", "int") if t in ch.by_type]
    if not parts:
        raise CompileError(f"{unparse(node)} is not numeric")
    doubles = ", ".join(f"CAST({p} AS DOUBLE)" for p in parts)
    return (parts[0] if len(parts) == 1 else f"coalesce({doubles})"), False


@dataclass(frozen=True, slots=True)
class MathPlan:
    """``lhs op rhs`` between metrics expressions (or a number), matched by labels."""

    op: BinaryOperator
    lhs: MetricsExpression
    rhs: MetricsExpression


@dataclass(frozen=True, slots=True)
class StagesPlan:
    """Second stages (topk, filters) applied after arithmetic."""

    expr: MetricsExpression
    stages: tuple[SecondStage, ...]


MetricsExpression = MetricsPlan | MathPlan | StagesPlan | float


def _pipeline_plan(expr: MetricsPipeline, query: str) -> MetricsPlan:
    fn = expr.function
    if not isinstance(fn, MetricsAggregate):
        raise MetricsQueryError("compare() is not supported yet")
    try:
        stages = expr.pipeline.stages
        span_filter = spans = None
        if len(stages) == 1 and isinstance(stages[0], SpansetFilter):
            span_filter = condition(stages[0].expr)
        else:
            spans = spanset_sql(expr.pipeline, query)
        value_sql, is_duration = (None, False)
        if fn.attribute is not None:
            value_sql, is_duration = _numeric(fn.attribute)
            if type_of(fn.attribute) is Type.DURATION:
                is_duration = True
        label_keys = tuple(_label_key(a) for a in fn.by)
        label_sql = tuple(group_sql(a)[0] for a in fn.by)
    except CompileError as e:
        raise MetricsQueryError(f"unsupported query: {e}") from None
    return MetricsPlan(
        span_filter,
        spans,
        fn.op,
        value_sql,
        is_duration,
        label_keys,
        label_sql,
        fn.quantiles,
        expr.stages,
    )


def _plan(node: Node, query: str) -> MetricsExpression:
    if isinstance(node, MetricsPipeline):
        return _pipeline_plan(node, query)
    if isinstance(node, MetricsMath):
        return MathPlan(node.op, _plan(node.lhs, query), _plan(node.rhs, query))
    if isinstance(node, MetricsStages):
        return StagesPlan(_plan(node.expr, query), node.stages)
    if isinstance(node, Static):
        return float(node.value)  # type: ignore[arg-type]
    raise MetricsQueryError(f"unexpected metrics expression {type(node).__name__}")


def compile_metrics(query: str) -> MetricsExpression:
    """The plan of a TraceQL metrics query; raises MetricsQueryError with a usable message."""
    try:
        root = parse_and_validate(query)
    except TraceQLError as e:
        raise MetricsQueryError(str(e)) from None
    if not root.is_metrics:
        raise MetricsQueryError(
            "not a metrics query: end the pipeline with a function such as | rate()"
        )
    return _plan(root.expr, query)


def _label_key(node: Attribute | Intrinsic) -> str:
    return unparse(node)
