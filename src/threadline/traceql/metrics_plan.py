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
    Hint,
    Intrinsic,
    MetricsCompare,
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
from threadline.traceql.field_sql import (
    KIND_NAMES_SQL,
    STATUS_NAMES_SQL,
    CompileError,
    channels,
    condition,
)
from threadline.traceql.field_sql import label_sql as group_sql
from threadline.traceql.plan import SearchQueryError, needs_whole_traces, spanset_sql
from threadline.traceql.printer import unparse
from threadline.traceql.sql import bucket_sql

_HISTOGRAM_FUNCTIONS = (MetricsOp.QUANTILE_OVER_TIME, MetricsOp.HISTOGRAM_OVER_TIME)


class MetricsQueryError(SearchQueryError):
    pass


_SAMPLE_BUCKETS = 1_000_000


@dataclass(frozen=True, slots=True)
class Sampling:
    """``with(sample=…)``, ``with(span_sample=…)``, ``with(trace_sample=…)``: the fractions of
    traces and of spans read (chosen by a hash of their ids, so the same query reads the same
    ones), and for ``sample=true`` the level (``"traces"`` or ``"spans"``) whose fraction is
    chosen per source, from its size."""

    traces: float = 1.0
    spans: float = 1.0
    adaptive: str | None = None

    @property
    def scale(self) -> float:
        """What counts and sums read are multiplied by to estimate the whole."""
        return 1.0 / (self.traces * self.spans)

    def resolved(self, source_spans: int, wanted_spans: int) -> Sampling:
        """The sampling of a source of ``source_spans`` spans, ``adaptive`` decided so that
        about ``wanted_spans`` of them are read."""
        if self.adaptive is None:
            return self
        fraction = min(1.0, wanted_spans / max(1, source_spans))
        fraction = max(fraction, 1 / _SAMPLE_BUCKETS)
        if self.adaptive == "traces":
            return Sampling(fraction * self.traces, self.spans)
        return Sampling(self.traces, fraction * self.spans)

    def sql(self) -> str:
        """The condition on ``base`` rows that keeps the sampled ones."""
        cond = ["true"]
        # span ids are unique only within their trace
        for ids, fraction in (("trace_id", self.traces), ("trace_id, span_id", self.spans)):
            if fraction < 1:
                kept = max(1, round(fraction * _SAMPLE_BUCKETS))
                cond.append(f"hash({ids}) % {_SAMPLE_BUCKETS} < {kept}")
        return " AND ".join(cond)


NO_SAMPLING = Sampling()


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
    sampling: Sampling = NO_SAMPLING
    # the answer for a span depends on other spans of its trace (structure, spanset
    # operators, aggregates, trace-level intrinsics): traces split across sources are
    # answered whole, and a sample is taken of traces, not spans
    needs_traces: bool = False

    def source_sql(
        self,
        relation: str,
        row_number: str,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        max_series: int | None = None,
        keep: str = "true",
    ) -> str:
        """Partial states per (labels, bucket, histogram bucket) for one source, of its rows
        where ``keep`` holds (the querier leaves out traces it answers whole elsewhere).

        The last column, ``g``, numbers the series each row belongs to (1, 2, ...); with
        ``max_series``, rows of series past ``max_series + 1`` are not returned, so a query
        grouped by a near-unique value yields a bounded answer that shows it is over."""
        labels = "".join(f", {expr} AS l{i}" for i, expr in enumerate(self.label_sql))
        label_cols = "".join(f", l{i}" for i in range(len(self.label_sql)))
        histogram = self.function in _HISTOGRAM_FUNCTIONS
        bucket = bucket_sql("raw_v") if histogram else "NULL::INTEGER"
        valued = "v IS NOT NULL" if self.value_sql else "true"
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
        spans, rows = _matched_rows(self.span_filter, self.spans_sql)
        return f"""
WITH base AS NOT MATERIALIZED (
  SELECT *, {row_number} AS rid FROM {relation}
  WHERE start_unix_nano > {start} AND start_unix_nano <= {end} AND {self.sampling.sql()}
    AND {keep}
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
  FROM v WHERE {valued} GROUP BY ALL
),
numbered AS (SELECT *, {series} AS g FROM states)
SELECT * FROM numbered{cut}
"""

    def raw_value_sql(self) -> str:
        """The value in its stored unit (ns for durations): what histogram buckets use."""
        if self.value_sql is None:
            return "NULL"
        return f"({self.value_sql}) * 1e9" if self.is_duration else self.value_sql


def _matched_rows(span_filter: str | None, spans_sql: str | None) -> tuple[str, str]:
    """(CTEs to add, rows to read) for the matched spans of a metrics query's spanset part."""
    if span_filter is not None:
        return "", f"base WHERE {span_filter}"
    return (
        f"matched AS ({spans_sql}),\npicked AS (SELECT DISTINCT rid FROM matched),\n",
        "picked JOIN base USING (rid)",
    )


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


# the intrinsics ``compare()`` breaks down (label, SQL giving a string; '' counts as absent):
# Tempo's, less ids, times and durations
_COMPARED_INTRINSICS = (
    ("name", "name"),
    ("status", STATUS_NAMES_SQL),
    ("statusMessage", "status_message"),
    ("kind", KIND_NAMES_SQL),
    ("rootName", "root_span_name"),
    ("rootServiceName", "root_service_name"),
    ("instrumentation:name", "scope_name"),
    ("instrumentation:version", "scope_version"),
)
# attribute maps it breaks down: (label prefix, map column stem); the typed struct field each
_COMPARED_MAPS = (("span.", "span"), ("resource.", "resource"), ("instrumentation.", "scope"))
_STRUCT = {"str": "s", "int": "i", "float": "f", "bool": "b"}
_STRUCT_TYPES = {"s": "VARCHAR", "i": "BIGINT", "f": "DOUBLE", "b": "BOOLEAN"}


def _typed(field: str, value: str) -> str:
    """A value as the struct ``field_sql.label_sql`` groups by: one field set, others NULL."""
    fields = ", ".join(
        f"{f} := {value if f == field else 'NULL::' + t}" for f, t in _STRUCT_TYPES.items()
    )
    return f"struct_pack({fields})"


@dataclass(frozen=True, slots=True)
class ComparePlan:
    """``{ outer } | compare({ selection }, top_n, start, end)``: per step, how many spans of
    the selection and of the rest of the outer query's spans (the baseline) carry each value
    of every attribute (Tempo 3's answer)."""

    span_filter: str | None
    spans_sql: str | None
    selection: str  # SQL true on the selection's spans
    top_n: int
    window: tuple[int, int] | None  # the selection's span-start window (start, end]
    needs_traces: bool = False  # as MetricsPlan's

    def source_sql(
        self,
        relation: str,
        row_number: str,
        start_ns: int,
        end_ns: int,
        step_ns: int,
        keep: str = "true",
    ) -> str:
        """Rows ``(k, selected, attribute, value struct, spans)`` for one source, of its rows
        where ``keep`` holds."""
        start, end, step = int(start_ns), int(end_ns), int(step_ns)
        selected = self.selection
        if self.window is not None:
            lo, hi = self.window
            selected = f"({selected} AND start_unix_nano > {lo} AND start_unix_nano <= {hi})"
        spans, rows = _matched_rows(self.span_filter, self.spans_sql)
        parts = [
            f"SELECT k, sel, '{label}' AS a, {_typed('s', f'CAST({expr} AS VARCHAR)')} AS v "
            f"FROM v WHERE coalesce({expr}, '') <> ''"
            for label, expr in _COMPARED_INTRINSICS
        ]
        parts += [
            f"SELECT k, sel, '{prefix}' || e.key AS a, {_typed(field, 'e.value')} AS v FROM "
            f"(SELECT k, sel, unnest(map_entries({stem}_attrs_{kind})) AS e FROM v)"
            for prefix, stem in _COMPARED_MAPS
            for kind, field in _STRUCT.items()
        ]
        union = "\n  UNION ALL ".join(parts)
        return f"""
WITH base AS NOT MATERIALIZED (
  SELECT *, {row_number} AS rid FROM {relation}
  WHERE start_unix_nano > {start} AND start_unix_nano <= {end} AND {keep}
),
{spans}v AS (
  SELECT *, ((start_unix_nano - {start}) + {step} - 1) // {step} AS k,
         coalesce({selected}, false) AS sel
  FROM {rows}
),
attrs AS (
  {union}
)
SELECT k, sel, a, v, count(*) AS n FROM attrs GROUP BY ALL
"""


MetricsExpression = MetricsPlan | ComparePlan | MathPlan | StagesPlan | float


def _spans(expr: MetricsPipeline, query: str) -> tuple[str | None, str | None]:
    """(condition on base rows for a lone filter, else SQL of the matched relation)."""
    stages = expr.pipeline.stages
    if len(stages) == 1 and isinstance(stages[0], SpansetFilter):
        return condition(stages[0].expr), None
    return None, spanset_sql(expr.pipeline, query)


def _compare_plan(expr: MetricsPipeline, fn: MetricsCompare, query: str) -> ComparePlan:
    if not 1 <= fn.top_n <= 1000:
        raise MetricsQueryError("compare() topN must be between 1 and 1000")
    window = None
    if fn.start_ns or fn.end_ns:
        if fn.start_ns <= 0 or fn.end_ns <= 0:
            raise MetricsQueryError(
                "compare() timestamps must be positive integer unix nanoseconds"
            )
        if fn.end_ns <= fn.start_ns:
            raise MetricsQueryError("compare() end timestamp must be greater than start timestamp")
        window = (fn.start_ns, fn.end_ns)
    try:
        span_filter, spans = _spans(expr, query)
        selection = condition(fn.filter.expr)
    except CompileError as e:
        raise MetricsQueryError(f"unsupported query: {e}") from None
    return ComparePlan(span_filter, spans, selection, fn.top_n, window, needs_whole_traces(expr))


def _sampling(hints: tuple[Hint, ...], needs_traces: bool) -> Sampling:
    """The sampling the hints ask for (the validator has checked their values)."""
    traces = spans = 1.0
    adaptive = None
    for h in hints:
        value = h.value.value
        if h.name == "trace_sample":
            traces = float(value)  # type: ignore[arg-type]
        elif h.name == "span_sample":
            spans = float(value)  # type: ignore[arg-type]
        elif h.name == "sample" and value is True:
            adaptive = "traces" if needs_traces else "spans"
        elif h.name == "sample" and value is not False:
            if needs_traces:
                traces = float(value)  # type: ignore[arg-type]
            else:
                spans = float(value)  # type: ignore[arg-type]
    return Sampling(traces, spans, adaptive)


def _pipeline_plan(
    expr: MetricsPipeline, query: str, hints: tuple[Hint, ...] = ()
) -> MetricsPlan | ComparePlan:
    fn = expr.function
    if isinstance(fn, MetricsCompare):
        return _compare_plan(expr, fn, query)
    try:
        span_filter, spans = _spans(expr, query)
        value_sql, is_duration = (None, False)
        if fn.attribute is not None:
            value_sql, is_duration = _numeric(fn.attribute)
            if type_of(fn.attribute) is Type.DURATION:
                is_duration = True
        label_keys = tuple(_label_key(a) for a in fn.by)
        label_sql = tuple(group_sql(a)[0] for a in fn.by)
    except CompileError as e:
        raise MetricsQueryError(f"unsupported query: {e}") from None
    needs_traces = needs_whole_traces(expr)
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
        _sampling(hints, needs_traces),
        needs_traces,
    )


def _plan(node: Node, query: str, hints: tuple[Hint, ...] = ()) -> MetricsExpression:
    if isinstance(node, MetricsPipeline):
        return _pipeline_plan(node, query, hints)
    if isinstance(node, MetricsMath):
        return MathPlan(node.op, _plan(node.lhs, query, hints), _plan(node.rhs, query, hints))
    if isinstance(node, MetricsStages):
        return StagesPlan(_plan(node.expr, query, hints), node.stages)
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
    return _plan(root.expr, query, root.hints)


def _label_key(node: Attribute | Intrinsic) -> str:
    return unparse(node)
