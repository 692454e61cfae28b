"""LogQL syntax tree: frozen, slotted dataclasses for log and metric queries.

Shape of a parsed query (``parse`` returns a :data:`Expr`)::

    log query:   LogQuery(selector, stages)
      selector:  StreamSelector(matchers)        "{app="x", env=~"p.*"}"; Matcher(name, type, value)
      stages:    LineFilter(op, values)          "|= "a" or "b"": values are LineFilterValue(value,
                                                 ip), alternatives; a negated op (!= !~ !>) means
                                                 "none of them"
               | JsonParser(extractions)         "| json" / "| json a="x.y", b": LabelExtraction
               | LogfmtParser(flags, extractions)"| logfmt --strict a, b"
               | RegexpParser(pattern) | PatternParser(pattern) | UnpackParser()
               | LabelFilterStage(filter)        "| latency > 250ms and status = "5xx""
               | LineFormat(template) | LabelFormat(items: LabelFmt(dst, value, template))
               | DropLabels(items) | KeepLabels(items)  items: a name (str) or a Matcher
               | Decolorize()

    label filters (LabelFilterStage, Unwrap.post_filters):
        StringFilter(matcher)                    "name = "v"", "name !~ "re""
      | NumberFilter(name, op, value: float)     "status >= 400"
      | DurationFilter(name, op, ns: int)        "latency > 250ms"
      | BytesFilter(name, op, size: int)         "size > 20MB"
      | IpFilter(name, op, pattern)              "addr = ip("10.0.0.0/8")"; op is == or !=
      | LabelFilterBinary(op, lhs, rhs)          op AND (written "and", "," or nothing) or OR

    metric query (MetricExpr):
        RangeAggregation(op, range, param, grouping)
                                                 "quantile_over_time(0.99, {..} | unwrap x [5m])"
          range: LogRange(query, range_ns, offset_ns, unwrap)
                 unwrap: Unwrap(label, conversion, post_filters)
      | VectorAggregation(op, expr, param, grouping)   "topk(5, sum by (a) (rate(...)))"
      | BinaryOp(op, lhs, rhs, return_bool, matching)  Prometheus precedence; matching is
                                                 VectorMatching(on, labels, group, include)
      | Literal(value)                           "1.5"; a sign belongs to the number
      | VectorLiteral(value)                     "vector(1)"
      | LabelReplace(expr, dst, replacement, src, regex)

``grouping`` is None when not written; ``Grouping(without=False, labels=())`` is ``by ()``.
Every node carries ``line``/``column`` (1-based, start of its text) and ``offset``/
``end_offset`` (slice of the query text); they are keyword-only and take no part in equality, so
trees built by hand compare equal to parsed ones. Durations are int nanoseconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union


def _pos(default: int) -> int:
    return field(default=default, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all nodes: source position (not part of equality or repr)."""

    line: int = _pos(0)
    column: int = _pos(0)
    offset: int = _pos(-1)
    end_offset: int = _pos(-1)


# ---------------------------------------------------------------------------- operators


class MatchType(enum.StrEnum):
    EQ = "="
    NEQ = "!="
    RE = "=~"
    NRE = "!~"


class LineFilterOp(enum.StrEnum):
    CONTAINS = "|="
    NOT_CONTAINS = "!="
    MATCH = "|~"
    NOT_MATCH = "!~"
    PATTERN = "|>"
    NOT_PATTERN = "!>"

    @property
    def negated(self) -> bool:
        return self in (LineFilterOp.NOT_CONTAINS, LineFilterOp.NOT_MATCH, LineFilterOp.NOT_PATTERN)


class CompareOp(enum.StrEnum):
    """Comparison of a label filter (``=`` is read as ``==``)."""

    EQ = "=="
    NEQ = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="


class LogicOp(enum.StrEnum):
    AND = "and"
    OR = "or"


class Conversion(enum.StrEnum):
    BYTES = "bytes"
    DURATION = "duration"
    DURATION_SECONDS = "duration_seconds"


class RangeOp(enum.StrEnum):
    COUNT_OVER_TIME = "count_over_time"
    RATE = "rate"
    RATE_COUNTER = "rate_counter"
    BYTES_OVER_TIME = "bytes_over_time"
    BYTES_RATE = "bytes_rate"
    ABSENT_OVER_TIME = "absent_over_time"
    SUM_OVER_TIME = "sum_over_time"
    AVG_OVER_TIME = "avg_over_time"
    MAX_OVER_TIME = "max_over_time"
    MIN_OVER_TIME = "min_over_time"
    FIRST_OVER_TIME = "first_over_time"
    LAST_OVER_TIME = "last_over_time"
    STDDEV_OVER_TIME = "stddev_over_time"
    STDVAR_OVER_TIME = "stdvar_over_time"
    QUANTILE_OVER_TIME = "quantile_over_time"

    @property
    def takes_unwrap(self) -> bool:
        """May run over an unwrapped range."""
        return self not in (
            RangeOp.COUNT_OVER_TIME,
            RangeOp.BYTES_OVER_TIME,
            RangeOp.BYTES_RATE,
        )

    @property
    def needs_unwrap(self) -> bool:
        """Runs only over an unwrapped range."""
        return self not in (
            RangeOp.COUNT_OVER_TIME,
            RangeOp.RATE,
            RangeOp.BYTES_OVER_TIME,
            RangeOp.BYTES_RATE,
            RangeOp.ABSENT_OVER_TIME,
        )

    @property
    def takes_grouping(self) -> bool:
        return self in (
            RangeOp.AVG_OVER_TIME,
            RangeOp.STDDEV_OVER_TIME,
            RangeOp.STDVAR_OVER_TIME,
            RangeOp.QUANTILE_OVER_TIME,
            RangeOp.MAX_OVER_TIME,
            RangeOp.MIN_OVER_TIME,
            RangeOp.FIRST_OVER_TIME,
            RangeOp.LAST_OVER_TIME,
        )


class VectorOp(enum.StrEnum):
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT = "count"
    STDDEV = "stddev"
    STDVAR = "stdvar"
    TOPK = "topk"
    BOTTOMK = "bottomk"
    SORT = "sort"
    SORT_DESC = "sort_desc"

    @property
    def takes_param(self) -> bool:
        return self in (VectorOp.TOPK, VectorOp.BOTTOMK)


class BinOp(enum.StrEnum):
    OR = "or"
    AND = "and"
    UNLESS = "unless"
    EQ = "=="
    NEQ = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    POW = "^"

    @property
    def precedence(self) -> int:
        """Prometheus' levels: or < and unless < comparisons < + - < * / % < ^ (right)."""
        return _PRECEDENCE[self]

    @property
    def is_comparison(self) -> bool:
        return _PRECEDENCE[self] == 3

    @property
    def is_set(self) -> bool:
        return _PRECEDENCE[self] <= 2


_PRECEDENCE = {
    BinOp.OR: 1,
    BinOp.AND: 2,
    BinOp.UNLESS: 2,
    **dict.fromkeys([BinOp.EQ, BinOp.NEQ, BinOp.GT, BinOp.GTE, BinOp.LT, BinOp.LTE], 3),
    BinOp.ADD: 4,
    BinOp.SUB: 4,
    BinOp.MUL: 5,
    BinOp.DIV: 5,
    BinOp.MOD: 5,
    BinOp.POW: 6,
}


# ---------------------------------------------------------------------------- log queries


@dataclass(frozen=True, slots=True)
class Matcher(Node):
    name: str
    type: MatchType
    value: str


@dataclass(frozen=True, slots=True)
class StreamSelector(Node):
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True, slots=True)
class LineFilterValue(Node):
    """One alternative of a line filter: a string, or ``ip("...")`` when ``ip``."""

    value: str
    ip: bool = False


@dataclass(frozen=True, slots=True)
class LineFilter(Node):
    op: LineFilterOp
    values: tuple[LineFilterValue, ...]


@dataclass(frozen=True, slots=True)
class LabelExtraction(Node):
    """``name="expression"``; a bare ``name`` has expression == name."""

    name: str
    expression: str


@dataclass(frozen=True, slots=True)
class JsonParser(Node):
    extractions: tuple[LabelExtraction, ...] = ()


@dataclass(frozen=True, slots=True)
class LogfmtParser(Node):
    flags: tuple[str, ...] = ()  # "--strict", "--keep-empty", as written
    extractions: tuple[LabelExtraction, ...] = ()


@dataclass(frozen=True, slots=True)
class RegexpParser(Node):
    pattern: str


@dataclass(frozen=True, slots=True)
class PatternParser(Node):
    pattern: str


@dataclass(frozen=True, slots=True)
class UnpackParser(Node):
    pass


@dataclass(frozen=True, slots=True)
class StringFilter(Node):
    matcher: Matcher


@dataclass(frozen=True, slots=True)
class NumberFilter(Node):
    name: str
    op: CompareOp
    value: float


@dataclass(frozen=True, slots=True)
class DurationFilter(Node):
    name: str
    op: CompareOp
    ns: int


@dataclass(frozen=True, slots=True)
class BytesFilter(Node):
    name: str
    op: CompareOp
    size: int


@dataclass(frozen=True, slots=True)
class IpFilter(Node):
    name: str
    op: CompareOp  # EQ or NEQ
    pattern: str


@dataclass(frozen=True, slots=True)
class LabelFilterBinary(Node):
    op: LogicOp
    lhs: LabelFilter
    rhs: LabelFilter


LabelFilter = Union[  # noqa: UP007 (a runtime alias used in isinstance checks)
    StringFilter, NumberFilter, DurationFilter, BytesFilter, IpFilter, LabelFilterBinary
]


@dataclass(frozen=True, slots=True)
class LabelFilterStage(Node):
    filter: LabelFilter


@dataclass(frozen=True, slots=True)
class LineFormat(Node):
    template: str


@dataclass(frozen=True, slots=True)
class LabelFmt(Node):
    """``dst=src`` (rename, ``template`` False) or ``dst="{{...}}"`` (``template`` True)."""

    dst: str
    value: str
    template: bool


@dataclass(frozen=True, slots=True)
class LabelFormat(Node):
    items: tuple[LabelFmt, ...]


@dataclass(frozen=True, slots=True)
class DropLabels(Node):
    items: tuple[str | Matcher, ...]


@dataclass(frozen=True, slots=True)
class KeepLabels(Node):
    items: tuple[str | Matcher, ...]


@dataclass(frozen=True, slots=True)
class Decolorize(Node):
    pass


Stage = Union[  # noqa: UP007
    LineFilter,
    JsonParser,
    LogfmtParser,
    RegexpParser,
    PatternParser,
    UnpackParser,
    LabelFilterStage,
    LineFormat,
    LabelFormat,
    DropLabels,
    KeepLabels,
    Decolorize,
]


@dataclass(frozen=True, slots=True)
class LogQuery(Node):
    selector: StreamSelector
    stages: tuple[Stage, ...] = ()


# ---------------------------------------------------------------------------- metric queries


@dataclass(frozen=True, slots=True)
class Grouping(Node):
    without: bool
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unwrap(Node):
    label: str
    conversion: Conversion | None = None
    post_filters: tuple[LabelFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class LogRange(Node):
    query: LogQuery
    range_ns: int
    offset_ns: int = 0
    unwrap: Unwrap | None = None


@dataclass(frozen=True, slots=True)
class RangeAggregation(Node):
    op: RangeOp
    range: LogRange
    param: float | None = None  # quantile_over_time's quantile
    grouping: Grouping | None = None


@dataclass(frozen=True, slots=True)
class VectorAggregation(Node):
    op: VectorOp
    expr: MetricExpr
    param: int | None = None  # topk / bottomk's k
    grouping: Grouping | None = None


@dataclass(frozen=True, slots=True)
class VectorMatching(Node):
    """``on (a)`` / ``ignoring (a)``, then ``group_left (b)`` / ``group_right`` (group)."""

    on: bool
    labels: tuple[str, ...]
    group: str | None = None  # "left" or "right"
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BinaryOp(Node):
    op: BinOp
    lhs: MetricExpr
    rhs: MetricExpr
    return_bool: bool = False
    matching: VectorMatching | None = None


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: float


@dataclass(frozen=True, slots=True)
class VectorLiteral(Node):
    value: float


@dataclass(frozen=True, slots=True)
class LabelReplace(Node):
    expr: MetricExpr
    dst: str
    replacement: str
    src: str
    regex: str


MetricExpr = Union[  # noqa: UP007
    RangeAggregation, VectorAggregation, BinaryOp, Literal, VectorLiteral, LabelReplace
]
Expr = Union[LogQuery, MetricExpr]  # noqa: UP007
