"""TraceQL syntax tree: frozen, slotted dataclasses plus static type inference.

Shape of a parsed query (``parse`` returns a :class:`Root`)::

    Root(expr, hints)                     hints: tuple[Hint(name, value: Static)], from with(...)
      expr is a search query or a metrics query:

    search:  Pipeline(stages)             always a Pipeline, even for a lone "{ ... }"
      stage:   SpansetFilter(expr)        "{ expr }"; "{ }" holds Static(BOOL, True)
             | SpansetOperation(op, lhs, rhs)
                                          lhs/rhs: SpansetFilter | SpansetOperation | Pipeline
                                          (a Pipeline operand is a parenthesised pipeline,
                                          "({ .a } | count() > 1) && ({ .b })"; it runs on the
                                          same input spanset as a filter operand would)
             | ScalarFilter(op, lhs, rhs) "count() > 2"; op is a comparison; the supported
                                          shape is lhs Aggregate, rhs Static (validate refuses
                                          the rest as unsupported)
             | GroupBy(expr)              "by(resource.service.name)"
             | Coalesce()                 "coalesce()"
             | Select(attributes)         "select(span.a, name)"; Attribute / Intrinsic items
      Aggregate(op, expr)                 count() has expr None; avg/min/max/sum a field expr
      ScalarOp(op, lhs, rhs)              arithmetic over aggregates and numeric Statics
      ScalarPipeline(pipeline, aggregate) "({ } | count())", only inside unsupported filters

    metrics: MetricsPipeline(pipeline, function, stages)
                                          "{ } | rate() by (x) | topk(5) > 10"
               function: MetricsAggregate(op, attribute, quantiles, by)
                       | MetricsCompare(filter, top_n, start_ns, end_ns)
               stages:   tuple of TopK(op, k) / MetricsFilter(op, value), applied in order
           | MetricsMath(op, lhs, rhs)    "({ } | rate()) * 100"; op is + - * /; an operand is a
                                          metrics expression or a numeric Static (int/float,
                                          already constant-folded; use float(value))
           | MetricsStages(expr, stages)  second stages after arithmetic:
                                          "({ } | rate()) + ({ } | rate()) | topk(5)"

    field expressions (inside { }, aggregates, by()):
        Static(type, value)               INT int, FLOAT float, STRING str, BOOL bool,
                                          NIL None, DURATION int nanoseconds, STATUS Status,
                                          KIND Kind
      | Attribute(scope, name, parent)    scope NONE for ".x" (unscoped lookup); parent=True for
                                          "parent.x" (refused by validate)
      | Intrinsic(name)                   IntrinsicName; old and scoped spellings give the same
                                          node ("duration" == "span:duration")
      | BinaryOp(op, lhs, rhs)            BinaryOperator: || && = != < <= > >= =~ !~ + - * / % ^
      | UnaryOp(op, operand)              UnaryOperator: ! -

Comparisons with nil stay BinaryOp with a Static NIL operand (only with = or !=, the parser
enforces that): ``x != nil`` means "x exists", ``x = nil`` "x is missing", and
``nil = nil`` / ``nil != nil`` are always false. Field expressions are not constant-folded
(``{ 1 + 1 = 2 }`` keeps its BinaryOp); constants in scalar-filter and metrics positions are
folded by the parser, as Tempo does (``avg(.a) > 1 - 3`` has rhs Static(INT, -2)).

Every node carries ``line``/``column`` (1-based, start of its text) and ``offset``/
``end_offset`` (slice of the query text); they are keyword-only, default to 0/-1, and take no
part in equality, so trees built by hand compare equal to parsed ones. ``type_of`` infers the
static :class:`Type` of field and scalar expressions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Union


class Type(enum.Enum):
    """Static type of an expression. ATTRIBUTE = an attribute whose type is known at runtime."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    NIL = "nil"
    DURATION = "duration"
    STATUS = "status"
    KIND = "kind"
    ATTRIBUTE = "attribute"
    SPANSET = "spanset"

    @property
    def is_numeric(self) -> bool:
        return self in (Type.INT, Type.FLOAT, Type.DURATION)


class Status(enum.Enum):
    ERROR = "error"
    OK = "ok"
    UNSET = "unset"


class Kind(enum.Enum):
    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class Scope(enum.Enum):
    """Attribute scope; NONE is the unscoped ``.name`` form."""

    NONE = "none"
    SPAN = "span"
    RESOURCE = "resource"
    EVENT = "event"
    LINK = "link"
    INSTRUMENTATION = "instrumentation"


class IntrinsicName(enum.Enum):
    """Intrinsic fields. The value is Tempo's canonical spelling (also the response key)."""

    DURATION = "duration"
    NAME = "name"
    STATUS = "status"
    STATUS_MESSAGE = "statusMessage"
    KIND = "kind"
    CHILD_COUNT = "span:childCount"
    SPAN_ID = "span:id"
    PARENT_ID = "span:parentID"
    TRACE_DURATION = "traceDuration"
    ROOT_NAME = "rootName"
    ROOT_SERVICE_NAME = "rootServiceName"
    TRACE_ID = "trace:id"
    EVENT_NAME = "event:name"
    EVENT_TIME_SINCE_START = "event:timeSinceStart"
    LINK_TRACE_ID = "link:traceID"
    LINK_SPAN_ID = "link:spanID"
    INSTRUMENTATION_NAME = "instrumentation:name"
    INSTRUMENTATION_VERSION = "instrumentation:version"
    NESTED_SET_LEFT = "nestedSetLeft"
    NESTED_SET_RIGHT = "nestedSetRight"
    NESTED_SET_PARENT = "nestedSetParent"
    PARENT = "parent"  # parsed, refused by validate

    @property
    def type(self) -> Type:
        return _INTRINSIC_TYPES[self]

    @property
    def is_trace_level(self) -> bool:
        """Same value for every span of a trace."""
        return self in (
            IntrinsicName.TRACE_DURATION,
            IntrinsicName.ROOT_NAME,
            IntrinsicName.ROOT_SERVICE_NAME,
            IntrinsicName.TRACE_ID,
        )


_INTRINSIC_TYPES = {
    IntrinsicName.DURATION: Type.DURATION,
    IntrinsicName.NAME: Type.STRING,
    IntrinsicName.STATUS: Type.STATUS,
    IntrinsicName.STATUS_MESSAGE: Type.STRING,
    IntrinsicName.KIND: Type.KIND,
    IntrinsicName.CHILD_COUNT: Type.INT,
    IntrinsicName.SPAN_ID: Type.STRING,
    IntrinsicName.PARENT_ID: Type.STRING,
    IntrinsicName.TRACE_DURATION: Type.DURATION,
    IntrinsicName.ROOT_NAME: Type.STRING,
    IntrinsicName.ROOT_SERVICE_NAME: Type.STRING,
    IntrinsicName.TRACE_ID: Type.STRING,
    IntrinsicName.EVENT_NAME: Type.STRING,
    IntrinsicName.EVENT_TIME_SINCE_START: Type.DURATION,
    IntrinsicName.LINK_TRACE_ID: Type.STRING,
    IntrinsicName.LINK_SPAN_ID: Type.STRING,
    IntrinsicName.INSTRUMENTATION_NAME: Type.STRING,
    IntrinsicName.INSTRUMENTATION_VERSION: Type.STRING,
    IntrinsicName.NESTED_SET_LEFT: Type.INT,
    IntrinsicName.NESTED_SET_RIGHT: Type.INT,
    IntrinsicName.NESTED_SET_PARENT: Type.INT,
    IntrinsicName.PARENT: Type.NIL,
}

# Every spelling the language accepts. Unscoped (legacy) forms:
UNSCOPED_INTRINSICS: dict[str, IntrinsicName] = {
    "duration": IntrinsicName.DURATION,
    "name": IntrinsicName.NAME,
    "status": IntrinsicName.STATUS,
    "statusMessage": IntrinsicName.STATUS_MESSAGE,
    "kind": IntrinsicName.KIND,
    "traceDuration": IntrinsicName.TRACE_DURATION,
    "rootName": IntrinsicName.ROOT_NAME,
    "rootServiceName": IntrinsicName.ROOT_SERVICE_NAME,
    "nestedSetLeft": IntrinsicName.NESTED_SET_LEFT,
    "nestedSetRight": IntrinsicName.NESTED_SET_RIGHT,
    "nestedSetParent": IntrinsicName.NESTED_SET_PARENT,
    "parent": IntrinsicName.PARENT,
}

# Scoped forms, keyed by (scope, name) as in "span:duration".
SCOPED_INTRINSICS: dict[tuple[str, str], IntrinsicName] = {
    ("trace", "duration"): IntrinsicName.TRACE_DURATION,
    ("trace", "rootName"): IntrinsicName.ROOT_NAME,
    ("trace", "rootService"): IntrinsicName.ROOT_SERVICE_NAME,
    ("trace", "id"): IntrinsicName.TRACE_ID,
    ("span", "duration"): IntrinsicName.DURATION,
    ("span", "name"): IntrinsicName.NAME,
    ("span", "kind"): IntrinsicName.KIND,
    ("span", "status"): IntrinsicName.STATUS,
    ("span", "statusMessage"): IntrinsicName.STATUS_MESSAGE,
    ("span", "id"): IntrinsicName.SPAN_ID,
    ("span", "parentID"): IntrinsicName.PARENT_ID,
    ("span", "childCount"): IntrinsicName.CHILD_COUNT,
    ("event", "name"): IntrinsicName.EVENT_NAME,
    ("event", "timeSinceStart"): IntrinsicName.EVENT_TIME_SINCE_START,
    ("link", "traceID"): IntrinsicName.LINK_TRACE_ID,
    ("link", "spanID"): IntrinsicName.LINK_SPAN_ID,
    ("instrumentation", "name"): IntrinsicName.INSTRUMENTATION_NAME,
    ("instrumentation", "version"): IntrinsicName.INSTRUMENTATION_VERSION,
}


class BinaryOperator(enum.StrEnum):
    """Operators of field expressions, scalar filters and metrics arithmetic."""

    OR = "||"
    AND = "&&"
    EQ = "="
    NEQ = "!="
    LT = "<"
    LTE = "<="
    GT = ">"
    GTE = ">="
    REGEX = "=~"
    NOT_REGEX = "!~"
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    POW = "^"

    @property
    def is_logical(self) -> bool:
        return self in (BinaryOperator.OR, BinaryOperator.AND)

    @property
    def is_comparison(self) -> bool:
        return self in _COMPARISONS

    @property
    def is_regex(self) -> bool:
        return self in (BinaryOperator.REGEX, BinaryOperator.NOT_REGEX)

    @property
    def is_arithmetic(self) -> bool:
        return self in _ARITHMETIC

    @property
    def is_boolean(self) -> bool:
        """The result is a bool (logical, comparison or regex operator)."""
        return not self.is_arithmetic


_COMPARISONS = frozenset(["=", "!=", "<", "<=", ">", ">="])
_ARITHMETIC = frozenset(["+", "-", "*", "/", "%", "^"])


class UnaryOperator(enum.StrEnum):
    NOT = "!"
    NEG = "-"


class SpansetOperator(enum.StrEnum):
    AND = "&&"
    UNION = "||"
    CHILD = ">"
    PARENT = "<"
    DESCENDANT = ">>"
    ANCESTOR = "<<"
    SIBLING = "~"
    NOT_CHILD = "!>"
    NOT_PARENT = "!<"
    NOT_DESCENDANT = "!>>"
    NOT_ANCESTOR = "!<<"
    NOT_SIBLING = "!~"
    UNION_CHILD = "&>"
    UNION_PARENT = "&<"
    UNION_DESCENDANT = "&>>"
    UNION_ANCESTOR = "&<<"
    UNION_SIBLING = "&~"

    @property
    def is_structural(self) -> bool:
        return self not in (SpansetOperator.AND, SpansetOperator.UNION)

    @property
    def is_negated(self) -> bool:
        return self.value.startswith("!")

    @property
    def is_union(self) -> bool:
        """Structural operators that return the matching spans of both sides."""
        return self.value.startswith("&") and self is not SpansetOperator.AND


class AggregateOp(enum.StrEnum):
    COUNT = "count"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    SUM = "sum"


class MetricsOp(enum.StrEnum):
    RATE = "rate"
    COUNT_OVER_TIME = "count_over_time"
    MIN_OVER_TIME = "min_over_time"
    MAX_OVER_TIME = "max_over_time"
    AVG_OVER_TIME = "avg_over_time"
    SUM_OVER_TIME = "sum_over_time"
    QUANTILE_OVER_TIME = "quantile_over_time"
    HISTOGRAM_OVER_TIME = "histogram_over_time"

    @property
    def takes_attribute(self) -> bool:
        return self not in (MetricsOp.RATE, MetricsOp.COUNT_OVER_TIME)


class SecondStageOp(enum.StrEnum):
    TOPK = "topk"
    BOTTOMK = "bottomk"


def _pos(default: int) -> int:
    return field(default=default, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all nodes: source position (not part of equality or repr)."""

    line: int = _pos(0)
    column: int = _pos(0)
    offset: int = _pos(-1)
    end_offset: int = _pos(-1)


# ---------------------------------------------------------------------------- field expressions


@dataclass(frozen=True, slots=True)
class Static(Node):
    """A literal. DURATION values are int nanoseconds; STATUS/KIND values are enums."""

    type: Type
    value: object


@dataclass(frozen=True, slots=True)
class Attribute(Node):
    """``span.x`` / ``resource.x`` / ... / ``.x`` (scope NONE) / ``parent.[span.|resource.]x``."""

    scope: Scope
    name: str
    parent: bool = False


@dataclass(frozen=True, slots=True)
class Intrinsic(Node):
    name: IntrinsicName


@dataclass(frozen=True, slots=True)
class BinaryOp(Node):
    op: BinaryOperator
    lhs: FieldExpr
    rhs: FieldExpr


@dataclass(frozen=True, slots=True)
class UnaryOp(Node):
    op: UnaryOperator
    operand: FieldExpr


FieldExpr = Union[Static, Attribute, Intrinsic, BinaryOp, UnaryOp]  # noqa: UP007
AttributeRef = Union[Attribute, Intrinsic]  # noqa: UP007

# ---------------------------------------------------------------------------- spansets


@dataclass(frozen=True, slots=True)
class SpansetFilter(Node):
    expr: FieldExpr


@dataclass(frozen=True, slots=True)
class SpansetOperation(Node):
    op: SpansetOperator
    lhs: SpansetOperand
    rhs: SpansetOperand


# ---------------------------------------------------------------------------- pipeline stages


@dataclass(frozen=True, slots=True)
class Aggregate(Node):
    op: AggregateOp
    expr: FieldExpr | None = None


@dataclass(frozen=True, slots=True)
class ScalarOp(Node):
    """Arithmetic in a scalar filter: operands are aggregates, numeric Statics, ScalarOps or
    ScalarPipelines."""

    op: BinaryOperator
    lhs: ScalarExpr
    rhs: ScalarExpr


@dataclass(frozen=True, slots=True)
class ScalarPipeline(Node):
    """``( pipeline | aggregate )``: the aggregate of a parenthesised pipeline."""

    pipeline: Pipeline
    aggregate: Aggregate


@dataclass(frozen=True, slots=True)
class ScalarFilter(Node):
    op: BinaryOperator
    lhs: ScalarExpr
    rhs: ScalarExpr


@dataclass(frozen=True, slots=True)
class GroupBy(Node):
    expr: FieldExpr


@dataclass(frozen=True, slots=True)
class Coalesce(Node):
    pass


@dataclass(frozen=True, slots=True)
class Select(Node):
    attributes: tuple[AttributeRef, ...]


@dataclass(frozen=True, slots=True)
class Pipeline(Node):
    stages: tuple[Stage, ...]


ScalarExpr = Union[Aggregate, ScalarOp, Static, ScalarPipeline]  # noqa: UP007
SpansetExpr = Union[SpansetFilter, SpansetOperation]  # noqa: UP007
SpansetOperand = Union[SpansetFilter, SpansetOperation, Pipeline]  # noqa: UP007
Stage = Union[SpansetFilter, SpansetOperation, ScalarFilter, GroupBy, Coalesce, Select]  # noqa: UP007

# ---------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class MetricsAggregate(Node):
    """First-stage metrics function. ``attribute`` is None for rate/count_over_time;
    ``quantiles`` only for quantile_over_time; ``by`` holds the group-by attributes."""

    op: MetricsOp
    attribute: AttributeRef | None = None
    quantiles: tuple[float, ...] = ()
    by: tuple[AttributeRef, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricsCompare(Node):
    """``compare({filter}[, top_n[, start_ns, end_ns]])``; start/end 0 = the query range."""

    filter: SpansetFilter
    top_n: int = 10
    start_ns: int = 0
    end_ns: int = 0


@dataclass(frozen=True, slots=True)
class TopK(Node):
    """``| topk(k)`` / ``| bottomk(k)``, per timestamp."""

    op: SecondStageOp
    k: int


@dataclass(frozen=True, slots=True)
class MetricsFilter(Node):
    """``> 10`` after a metrics function: keep points satisfying ``point op value``."""

    op: BinaryOperator
    value: Static

    @property
    def threshold(self) -> float:
        """The value as a float; durations in seconds (metrics report durations in seconds)."""
        if self.value.type is Type.DURATION:
            return int(self.value.value) / 1e9  # type: ignore[call-overload]
        return float(self.value.value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MetricsPipeline(Node):
    pipeline: Pipeline
    function: MetricsAggregate | MetricsCompare
    stages: tuple[SecondStage, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricsMath(Node):
    op: BinaryOperator
    lhs: MetricsOperand
    rhs: MetricsOperand


@dataclass(frozen=True, slots=True)
class MetricsStages(Node):
    expr: MetricsExpr
    stages: tuple[SecondStage, ...]


SecondStage = Union[TopK, MetricsFilter]  # noqa: UP007
MetricsExpr = Union[MetricsPipeline, MetricsMath, MetricsStages]  # noqa: UP007
MetricsOperand = Union[MetricsPipeline, MetricsMath, MetricsStages, Static]  # noqa: UP007

# ---------------------------------------------------------------------------- root


@dataclass(frozen=True, slots=True)
class Hint(Node):
    name: str
    value: Static


@dataclass(frozen=True, slots=True)
class Root(Node):
    expr: Pipeline | MetricsExpr
    hints: tuple[Hint, ...] = ()
    source: str = field(default="", compare=False, repr=False)

    @property
    def is_metrics(self) -> bool:
        return not isinstance(self.expr, Pipeline)

    def hint(self, name: str) -> Static | None:
        """The value of the first hint called ``name``, or None."""
        for h in self.hints:
            if h.name == name:
                return h.value
        return None


# ---------------------------------------------------------------------------- helpers


def children(node: Node) -> Iterator[Node]:
    """Direct child nodes, in source order."""
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield item


def walk(node: Node) -> Iterator[Node]:
    """``node`` and all its descendants, depth first, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def references_span(expr: Node) -> bool:
    """True when the expression reads an attribute or intrinsic (not only constants)."""
    return any(isinstance(n, Attribute | Intrinsic) for n in walk(expr))


def is_nil(expr: Node) -> bool:
    return isinstance(expr, Static) and expr.type is Type.NIL


def _arithmetic_type(lhs: Type, rhs: Type) -> Type:
    if lhs is Type.ATTRIBUTE:
        return rhs
    if rhs is Type.ATTRIBUTE or not (lhs.is_numeric and rhs.is_numeric):
        return lhs
    if Type.DURATION in (lhs, rhs):
        return Type.DURATION
    if Type.FLOAT in (lhs, rhs):
        return Type.FLOAT
    return Type.INT


def type_of(expr: Node) -> Type:
    """Static type of a field or scalar expression (or SPANSET for spanset expressions).

    Arithmetic on two numeric types gives DURATION if either is a duration, else FLOAT if
    either is a float, else INT; an ATTRIBUTE operand takes the other operand's type.
    ``avg`` of an int is FLOAT; ``count()`` is INT. Raises TypeError for metrics nodes.
    """
    match expr:
        case Static():
            return expr.type
        case Attribute():
            return Type.ATTRIBUTE
        case Intrinsic():
            return expr.name.type
        case BinaryOp() | ScalarFilter() if expr.op.is_boolean:
            return Type.BOOL
        case BinaryOp() | ScalarOp():
            return _arithmetic_type(type_of(expr.lhs), type_of(expr.rhs))
        case UnaryOp():
            if expr.op is UnaryOperator.NOT:
                return Type.BOOL
            return type_of(expr.operand)
        case Aggregate():
            if expr.op is AggregateOp.COUNT or expr.expr is None:
                return Type.INT
            t = type_of(expr.expr)
            if expr.op is AggregateOp.AVG and t is Type.INT:
                return Type.FLOAT
            return t
        case ScalarPipeline():
            return type_of(expr.aggregate)
        case SpansetFilter() | SpansetOperation() | Pipeline():
            return Type.SPANSET
    raise TypeError(f"{type(expr).__name__} has no static value type")
