"""TraceQL search queries as search plans: SQL over ``base`` returning matched spansets.

Every spanset expression becomes a relation of rows ``(trace_id, sset, rid, labels)``: one row
per matched span, ``sset`` naming the spanset within the trace (``by()`` groups) and ``labels``
the spanset's attributes (group and aggregate results, a list of OTLP JSON key-values).
Pipelines thread a relation through their stages; spanset operators combine two relations per
trace; structural operators compare the nested-set columns of the spans, so ``>>`` is a range
test rather than a tree walk. All of it runs inside DuckDB, per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from threadline.traceql import parse_and_validate, sql
from threadline.traceql.ast import (
    Aggregate,
    AggregateOp,
    Attribute,
    Coalesce,
    GroupBy,
    Intrinsic,
    IntrinsicName,
    Node,
    Pipeline,
    Root,
    ScalarFilter,
    Select,
    SpansetFilter,
    SpansetOperation,
    SpansetOperator,
    Static,
    Type,
    walk,
)
from threadline.traceql.errors import TraceQLError
from threadline.traceql.field_sql import (
    CompileError,
    channels,
    condition,
    present,
    value_json,
)


@dataclass(frozen=True, slots=True)
class ReturnedAttribute:
    """An attribute shown on returned spans: the response key and SQL giving its value as
    OTLP JSON AnyValue text (NULL when the span has none)."""

    key: str
    sql: str


@dataclass(frozen=True, slots=True)
class Plan:
    sql: str  # SELECT trace_id, sset, rid, labels (VARCHAR[] of JSON, or NULL) ... FROM base
    attributes: tuple[ReturnedAttribute, ...] = ()
    # the answer depends on more of a trace than each span (structure, aggregates, root...):
    # traces split across sources are searched whole
    whole_traces: bool = False


class QueryError(ValueError):
    """A query that cannot be planned; the message is for the user (HTTP 400)."""


ROW = "trace_id, sset, rid, labels"
# intrinsics not echoed on returned spans (Tempo leaves them out: they are shown elsewhere)
_NOT_RETURNED = {
    IntrinsicName.NAME,
    IntrinsicName.DURATION,
    IntrinsicName.TRACE_DURATION,
    IntrinsicName.ROOT_NAME,
    IntrinsicName.ROOT_SERVICE_NAME,
    IntrinsicName.TRACE_ID,
    IntrinsicName.SPAN_ID,
    IntrinsicName.EVENT_NAME,
    IntrinsicName.EVENT_TIME_SINCE_START,
    IntrinsicName.LINK_SPAN_ID,
    IntrinsicName.LINK_TRACE_ID,
}
# structural operators: SQL relating a left span "a" and a right span "b" of the same trace
_RELATION = {
    ">": "b.nest_parent = a.nest_left",
    "<": "a.nest_parent = b.nest_left",
    ">>": "a.nest_left < b.nest_left AND b.nest_right < a.nest_right",
    "<<": "b.nest_left < a.nest_left AND a.nest_right < b.nest_right",
    "~": "a.nest_parent = b.nest_parent AND a.nest_parent >= 0 AND a.rid <> b.rid",
}


class SearchQueryError(QueryError):
    """A query that cannot be searched; the message is for the user."""


@dataclass
class _Compiler:
    source: str
    ctes: list[tuple[str, str]] = field(default_factory=list)
    names: count = field(default_factory=count)

    def cte(self, body: str) -> str:
        name = f"s{next(self.names)}"
        self.ctes.append((name, body))
        return name

    def text(self, node: Node) -> str:
        if 0 <= node.offset < node.end_offset:
            return self.source[node.offset : node.end_offset]
        return ""

    # -- spansets -------------------------------------------------------------------------------

    def filter(self, node: SpansetFilter, incoming: str | None) -> str:
        cond = condition(node.expr)
        if incoming is None:
            return self.cte(
                f"SELECT trace_id, '' AS sset, rid, []::VARCHAR[] AS labels FROM base WHERE {cond}"
            )
        return self.cte(
            f"SELECT i.trace_id, i.sset, i.rid, i.labels FROM {incoming} i "
            f"JOIN base USING (rid) WHERE {cond}"
        )

    def operand(self, node: Node, incoming: str | None) -> str:
        if isinstance(node, SpansetFilter):
            return self.filter(node, incoming)
        if isinstance(node, SpansetOperation):
            return self.operation(node, incoming)
        if isinstance(node, Pipeline):
            return self.pipeline(node, incoming)
        raise CompileError(f"unexpected spanset operand {type(node).__name__}")

    def operation(self, node: SpansetOperation, incoming: str | None) -> str:
        left = self.operand(node.lhs, incoming)
        right = self.operand(node.rhs, incoming)
        op = node.op
        if op is SpansetOperator.AND:
            return self.cte(
                f"SELECT {ROW} FROM {left} WHERE trace_id IN (SELECT trace_id FROM {right}) "
                f"UNION ALL SELECT {ROW} FROM {right} r WHERE trace_id IN "
                f"(SELECT trace_id FROM {left}) AND rid NOT IN (SELECT rid FROM {left})"
            )
        if op is SpansetOperator.UNION:
            return self.cte(
                f"SELECT {ROW} FROM {left} UNION ALL SELECT {ROW} FROM {right} "
                f"WHERE rid NOT IN (SELECT rid FROM {left})"
            )
        base_op = op.value.lstrip("!&")
        related = _RELATION[base_op]
        with_nests = (
            "SELECT x.trace_id, x.sset, x.rid, x.labels, base.nest_left, base.nest_right, "
            "base.nest_parent FROM {} x JOIN base USING (rid)"
        )
        a_rel = self.cte(with_nests.format(left))
        b_rel = self.cte(with_nests.format(right))
        exists = f"EXISTS (SELECT 1 FROM {a_rel} a WHERE a.trace_id = b.trace_id AND {related})"
        if op.is_negated:
            return self.cte(
                f"SELECT b.trace_id, b.sset, b.rid, b.labels FROM {b_rel} b WHERE NOT {exists}"
            )
        rights = f"SELECT b.trace_id, b.sset, b.rid, b.labels FROM {b_rel} b WHERE {exists}"
        if not op.is_union:
            return self.cte(rights)
        lefts = (
            f"SELECT a.trace_id, a.sset, a.rid, a.labels FROM {a_rel} a WHERE EXISTS "
            f"(SELECT 1 FROM {b_rel} b WHERE a.trace_id = b.trace_id AND {related})"
        )
        matched_right = self.cte(rights)
        return self.cte(
            f"SELECT {ROW} FROM {matched_right} UNION ALL SELECT {ROW} FROM ({lefts}) l "
            f"WHERE rid NOT IN (SELECT rid FROM {matched_right})"
        )

    # -- pipelines ------------------------------------------------------------------------------

    def pipeline(self, node: Pipeline, incoming: str | None) -> str:
        current = incoming
        for stage in node.stages:
            if isinstance(stage, SpansetFilter):
                current = self.filter(stage, current)
            elif isinstance(stage, SpansetOperation):
                current = self.operation(stage, current)
            elif isinstance(stage, ScalarFilter):
                agg = stage.lhs
                if current is None and isinstance(agg, Aggregate) and agg.expr is not None:
                    # a pipeline that starts with an aggregate matches the spans it reads
                    # (Tempo's rule): avg(span.x) > 1 returns the spans that have span.x
                    current = self.cte(
                        "SELECT trace_id, '' AS sset, rid, []::VARCHAR[] AS labels FROM base "
                        f"WHERE {present(agg.expr)}"
                    )
                current = self.scalar_filter(stage, self.all_spans(current))
            elif isinstance(stage, GroupBy):
                current = self.group_by(stage, self.all_spans(current))
            elif isinstance(stage, Coalesce):
                current = self.cte(
                    f"SELECT DISTINCT trace_id, '' AS sset, rid, []::VARCHAR[] AS labels "
                    f"FROM {self.all_spans(current)}"
                )
            elif isinstance(stage, Select):
                continue  # only changes what returned spans show
            else:
                raise CompileError(f"unexpected pipeline stage {type(stage).__name__}")
        return self.all_spans(current)

    def all_spans(self, current: str | None) -> str:
        if current is not None:
            return current
        return self.cte("SELECT trace_id, '' AS sset, rid, []::VARCHAR[] AS labels FROM base")

    def scalar_filter(self, node: ScalarFilter, current: str) -> str:
        if not isinstance(node.lhs, Aggregate) or not isinstance(node.rhs, Static):
            raise CompileError("only 'aggregate comparison value' filters are supported")
        agg, rhs = node.lhs, node.rhs
        if agg.op is AggregateOp.COUNT:
            value = "count(*)"
            as_json = "json_object('intValue', CAST(g.v AS VARCHAR))"
        else:
            num = channels(agg.expr)  # type: ignore[arg-type]
            parts = [num.by_type[t] for t in ("float", "int", "duration") if t in num.by_type]
            if not parts:
                raise CompileError(f"{agg.op.value}() needs a numeric argument")
            arg = (
                parts[0]
                if len(parts) == 1
                else f"coalesce({', '.join(f'CAST({p} AS DOUBLE)' for p in parts)})"
            )
            value = f"{agg.op.value}({arg})"
            as_json = "json_object('doubleValue', CAST(g.v AS DOUBLE))"
        if rhs.type not in (Type.INT, Type.FLOAT, Type.DURATION):
            raise CompileError("aggregates compare with numbers or durations")
        limit = sql.number(rhs.value)  # type: ignore[arg-type]
        sym = {"=": "=", "!=": "<>"}.get(node.op.value, node.op.value)
        key = sql.string(self.text(agg) or f"{agg.op.value}()")
        label = f"json_object('key', {key}, 'value', {as_json})::VARCHAR"
        return self.cte(
            f"SELECT c.trace_id, c.sset, c.rid, list_append(c.labels, {label}) AS labels "
            f"FROM {current} c JOIN (SELECT i.trace_id, i.sset, {value} AS v FROM {current} i "
            f"JOIN base USING (rid) GROUP BY i.trace_id, i.sset) g "
            f"ON g.trace_id = c.trace_id AND g.sset = c.sset WHERE g.v {sym} {limit}"
        )

    def group_by(self, node: GroupBy, current: str) -> str:
        value = value_json(node.expr)
        key = sql.string(self.text(node) or "by()")
        return self.cte(
            f"SELECT c.trace_id, c.sset || chr(31) || coalesce({value}, 'nil') AS sset, c.rid, "
            f"list_append(c.labels, json_object('key', {key}, 'value', "
            f"coalesce({value}, '{{}}')::JSON)::VARCHAR) AS labels "
            f"FROM {current} c JOIN base USING (rid)"
        )


def _returned_attributes(root: Root) -> tuple[ReturnedAttribute, ...]:
    seen: dict[str, ReturnedAttribute] = {}
    for node in walk(root.expr):
        if isinstance(node, Attribute) and not node.parent:
            key, target = node.name, node
        elif isinstance(node, Intrinsic) and node.name not in _NOT_RETURNED:
            key, target = node.name.value.removeprefix("span:"), node
        else:
            continue
        if key not in seen:
            try:
                seen[key] = ReturnedAttribute(key, value_json(target))
            except CompileError:
                continue
    return tuple(seen.values())


# intrinsics whose value depends on other spans of the trace
_TRACE_LEVEL = {
    IntrinsicName.TRACE_DURATION,
    IntrinsicName.ROOT_NAME,
    IntrinsicName.ROOT_SERVICE_NAME,
    IntrinsicName.NESTED_SET_LEFT,
    IntrinsicName.NESTED_SET_RIGHT,
    IntrinsicName.NESTED_SET_PARENT,
    IntrinsicName.CHILD_COUNT,
}


def needs_whole_traces(expr: Node) -> bool:
    """Whether the answer for a span depends on other spans of its trace: then a trace split
    across sources must be searched whole."""
    for node in walk(expr):
        if isinstance(node, SpansetOperation | ScalarFilter):
            return True
        if isinstance(node, Intrinsic) and node.name in _TRACE_LEVEL:
            return True
    return False


def compile_search(query: str) -> Plan:
    """The search plan of a TraceQL query; raises SearchQueryError with a usable message."""
    try:
        root = parse_and_validate(query)
    except TraceQLError as e:
        raise SearchQueryError(str(e)) from None
    if root.is_metrics:
        raise SearchQueryError(
            "metrics queries (rate(), count_over_time() ...) go to /api/metrics/query_range"
        )
    try:
        return Plan(
            spanset_sql(root.expr, query),  # type: ignore[arg-type]
            _returned_attributes(root),
            whole_traces=needs_whole_traces(root.expr),
        )
    except CompileError as e:
        raise SearchQueryError(f"unsupported query: {e}") from None


def spanset_sql(pipeline: Pipeline, source: str) -> str:
    """SQL over ``base`` returning the spans ``pipeline`` matches, as ``trace_id, sset, rid,
    labels`` rows (``source`` is the query text, for stage labels). Raises CompileError."""
    compiler = _Compiler(source)
    result = compiler.pipeline(pipeline, None)
    ctes = ",\n".join(f"{name} AS ({body})" for name, body in compiler.ctes)
    body = f"WITH {ctes}\nSELECT {ROW} FROM {result}" if ctes else f"SELECT {ROW} FROM {result}"
    return f"SELECT * FROM ({body})"


def filter_condition(query: str) -> str | None:
    """SQL for the spans a lone ``{ ... }`` filter selects (tag narrowing), or None when
    ``query`` is not such a filter: Tempo then answers unfiltered rather than failing."""
    try:
        root = parse_and_validate(query)
    except TraceQLError:
        return None
    stages = root.expr.stages if isinstance(root.expr, Pipeline) else ()
    if len(stages) != 1 or not isinstance(stages[0], SpansetFilter):
        return None
    try:
        return condition(stages[0].expr)
    except CompileError:
        return None
