"""Semantic checks on a parsed TraceQL query.

``validate(root)`` raises ``TraceQLValidationError`` for queries that cannot mean anything
(type errors, invalid regexes, aggregates over constants, topk(0), ...) and
``TraceQLUnsupportedError`` for what Tempo parses but refuses (``parent``, scalar filters
other than ``aggregate op literal``, comparisons of parenthesised pipelines, more group-by
attributes than Tempo allows). Checks run depth first, left to right, so the first error in
the text is reported, and children are checked before their parent (as Tempo does, which is
why ``{ 1 >= parent }`` is unsupported rather than a type error).

``compile_regex`` is the regex semantics of ``=~``/``!~``: fully anchored, ``.`` matches
newlines (Tempo's ``^(?s:re)$``). Python's ``re`` stands in for RE2; leading global flags
such as ``(?i)`` are accepted.
"""

from __future__ import annotations

import re

from threadline.traceql import ast as A
from threadline.traceql.errors import (
    TraceQLUnsupportedError,
    TraceQLValidationError,
)
from threadline.traceql.printer import unparse

MAX_GROUP_BYS = 5  # Tempo's maxGroupBys; quantile/histogram reserve one for the bucket label
MAX_COMPARE_TOP_N = 1000

_LEADING_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")
_T = A.Type
_Op = A.BinaryOperator

_ARTICLES = {
    _T.INT: "an int",
    _T.FLOAT: "a float",
    _T.STRING: "a string",
    _T.BOOL: "a boolean",
    _T.NIL: "nil",
    _T.DURATION: "a duration",
    _T.STATUS: "a status",
    _T.KIND: "a kind",
    _T.ATTRIBUTE: "an attribute",
    _T.SPANSET: "a spanset",
}


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile a TraceQL regex; use ``.fullmatch``. Raises ``re.error`` if invalid."""
    flags = ""
    m = _LEADING_FLAGS.match(pattern)
    if m and set(m.group(1)) <= set("ims"):
        flags, pattern = m.group(1), pattern[m.end() :]
    re.compile(pattern)  # check it alone first, so that "a)|(b" cannot pair with the wrapper
    return re.compile(f"(?{flags}s:{pattern})")


def _operator_valid(op: A.BinaryOperator, t: A.Type) -> bool:
    """Tempo's binaryTypeValid: which operators each static type supports."""
    if t is _T.ATTRIBUTE:
        return True
    if t is _T.BOOL:
        return op in (_Op.AND, _Op.OR, _Op.EQ, _Op.NEQ)
    if t.is_numeric:
        return op.is_arithmetic or op.is_comparison
    if t is _T.STRING:
        return op.is_comparison or op.is_regex
    if t in (_T.NIL, _T.STATUS, _T.KIND):
        return op in (_Op.EQ, _Op.NEQ)
    return False


def _types_match(a: A.Type, b: A.Type) -> bool:
    return _T.ATTRIBUTE in (a, b) or a is b or (a.is_numeric and b.is_numeric) or _T.NIL in (a, b)


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    # ------------------------------------------------------------------ messages

    def text(self, node: A.Node) -> str:
        if self.source and 0 <= node.offset < node.end_offset <= len(self.source):
            return " ".join(self.source[node.offset : node.end_offset].split())
        try:
            return unparse(node)
        except (TypeError, ValueError, RecursionError):
            return type(node).__name__

    def invalid(self, node: A.Node, message: str) -> TraceQLValidationError:
        return TraceQLValidationError(message, node.line, node.column)

    def unsupported(self, node: A.Node, message: str) -> TraceQLUnsupportedError:
        return TraceQLUnsupportedError(message, node.line, node.column)

    def described(self, node: A.Node) -> str:
        t = A.type_of(node)
        return f"`{self.text(node)}` ({t.value})"

    # ------------------------------------------------------------------ root

    def root(self, root: A.Root) -> None:
        if isinstance(root.expr, A.Pipeline):
            self.pipeline(root.expr)
        else:
            self.metrics(root.expr)
            self.compare_alone(root.expr)
        for hint in root.hints:
            self.hint(hint)

    # ------------------------------------------------------------------ search

    def pipeline(self, p: A.Pipeline) -> None:
        for stage in p.stages:
            self.stage(stage)

    def stage(self, s: A.Node) -> None:
        match s:
            case A.SpansetFilter():
                self.spanset_filter(s)
            case A.SpansetOperation():
                self.stage(s.lhs)
                self.stage(s.rhs)
            case A.Pipeline():
                self.pipeline(s)
            case A.ScalarFilter():
                self.scalar_filter(s)
            case A.GroupBy():
                if not A.references_span(s.expr):
                    raise self.invalid(
                        s,
                        f"by() must group on something that depends on the span, such as an "
                        f"attribute or intrinsic; `{self.text(s.expr)}` is a constant",
                    )
                self.field(s.expr)
            case A.Coalesce():
                pass
            case A.Select():
                for attribute in s.attributes:
                    self.field(attribute)
            case _:
                raise TypeError(f"unexpected pipeline stage {type(s).__name__}")

    def spanset_filter(self, f: A.SpansetFilter) -> None:
        self.field(f.expr)
        t = A.type_of(f.expr)
        if t not in (_T.BOOL, _T.ATTRIBUTE):
            raise self.invalid(
                f.expr,
                f"the expression inside {{ }} must be a condition, but `{self.text(f.expr)}` is "
                f"{_ARTICLES[t]}; compare it with something, e.g. {{ status = error }}",
            )

    def field(self, e: A.Node) -> None:
        match e:
            case A.Static():
                pass
            case A.Attribute():
                if e.parent:
                    raise self.unsupported(
                        e, f"`{self.text(e)}`: the parent scope is not yet supported"
                    )
            case A.Intrinsic():
                if e.name is A.IntrinsicName.PARENT:
                    raise self.unsupported(e, "the parent intrinsic is not yet supported")
            case A.UnaryOp():
                self.field(e.operand)
                self.unary(e)
            case A.BinaryOp():
                # walk down the left spine iteratively: long "a || b || c ..." chains are
                # left-nested and can be thousands deep
                spine = [e]
                while isinstance(spine[-1].lhs, A.BinaryOp):
                    spine.append(spine[-1].lhs)
                self.field(spine[-1].lhs)
                for node in reversed(spine):
                    self.field(node.rhs)
                    self.binary(node)
            case _:
                raise TypeError(f"unexpected field expression {type(e).__name__}")

    def unary(self, e: A.UnaryOp) -> None:
        t = A.type_of(e.operand)
        if t is _T.ATTRIBUTE:
            return
        if e.op is A.UnaryOperator.NEG and not t.is_numeric:
            raise self.invalid(
                e,
                f"unary - needs a number or duration, but {self.described(e.operand)} is not one",
            )
        if e.op is A.UnaryOperator.NOT and t is not _T.BOOL:
            raise self.invalid(e, f"! needs a boolean, but {self.described(e.operand)} is not one")

    def binary(self, e: A.BinaryOp) -> None:
        op = e.op
        if A.is_nil(e.lhs) or A.is_nil(e.rhs):
            other = e.rhs if A.is_nil(e.lhs) else e.lhs
            if op is _Op.EQ:
                self.nil_equality(e, other)
            return
        lt, rt = A.type_of(e.lhs), A.type_of(e.rhs)
        if not _types_match(lt, rt):
            raise self.invalid(
                e,
                f"cannot use {op} between {self.described(e.lhs)} and {self.described(e.rhs)}: "
                "the operands must have compatible types",
            )
        for side, t in ((e.lhs, lt), (e.rhs, rt)):
            if not _operator_valid(op, t):
                raise self.invalid(e, self.operator_message(op, side, t))
        if op.is_regex:
            self.regex(e)

    def operator_message(self, op: A.BinaryOperator, side: A.Node, t: A.Type) -> str:
        message = f"{op} cannot be used with {_ARTICLES[t]}: {self.described(side)}"
        if t in (_T.STATUS, _T.KIND):
            message += f"; {t.value} values can only be compared with = or !="
        elif op.is_regex:
            message += f"; {op} matches strings"
        elif t is _T.BOOL:
            message += "; booleans support && || = !="
        return message

    def nil_equality(self, e: A.BinaryOp, other: A.Node) -> None:
        if isinstance(other, A.Intrinsic):
            raise self.invalid(
                e,
                f"`{self.text(e)}` can never match: intrinsics such as {other.name.value} "
                "always have a value (only attributes can be missing)",
            )
        if (
            isinstance(other, A.Attribute)
            and other.scope is A.Scope.RESOURCE
            and other.name == "service.name"
            and not other.parent
        ):
            raise self.invalid(
                e, f"`{self.text(e)}` is never true: resource.service.name is always set"
            )

    def regex(self, e: A.BinaryOp) -> None:
        rhs = e.rhs
        if not (isinstance(rhs, A.Static) and rhs.type is _T.STRING):
            raise self.invalid(
                rhs,
                f"the right-hand side of {e.op} must be a string literal, not `{self.text(rhs)}`",
            )
        try:
            compile_regex(str(rhs.value))
        except re.error as err:
            raise self.invalid(rhs, f"invalid regular expression {self.text(rhs)}: {err}") from None

    # ------------------------------------------------------------------ scalar filters

    def scalar_filter(self, f: A.ScalarFilter) -> None:
        self.scalar(f.lhs)
        self.scalar(f.rhs)
        lt, rt = A.type_of(f.lhs), A.type_of(f.rhs)
        if not _types_match(lt, rt) or not (
            _operator_valid(f.op, lt) and _operator_valid(f.op, rt)
        ):
            raise self.invalid(
                f,
                f"cannot compare {self.described(f.lhs)} with {self.described(f.rhs)}",
            )
        if any(isinstance(n, A.ScalarPipeline) for n in A.walk(f)):
            raise self.unsupported(
                f, "comparing the aggregates of parenthesised pipelines is not yet supported"
            )
        if not isinstance(f.lhs, A.Aggregate) or not isinstance(f.rhs, A.Static):
            raise self.unsupported(
                f,
                f"`{self.text(f)}` is not yet supported: scalar filters must have the form "
                "aggregate op literal, e.g. count() > 2 or avg(duration) > 1s",
            )

    def scalar(self, e: A.Node) -> None:
        match e:
            case A.Static():
                pass
            case A.Aggregate():
                self.aggregate(e)
            case A.ScalarOp():
                self.scalar(e.lhs)
                self.scalar(e.rhs)
                lt, rt = A.type_of(e.lhs), A.type_of(e.rhs)
                if not _types_match(lt, rt) or not (
                    _operator_valid(e.op, lt) and _operator_valid(e.op, rt)
                ):
                    raise self.invalid(
                        e,
                        f"cannot use {e.op} between {self.described(e.lhs)} and "
                        f"{self.described(e.rhs)}",
                    )
            case A.ScalarPipeline():
                if isinstance(e.pipeline, A.Pipeline):
                    self.pipeline(e.pipeline)
                self.aggregate(e.aggregate)
            case _:
                raise TypeError(f"unexpected scalar expression {type(e).__name__}")

    def aggregate(self, a: A.Aggregate) -> None:
        if a.expr is None:
            return
        self.field(a.expr)
        t = A.type_of(a.expr)
        if t is not _T.ATTRIBUTE and not t.is_numeric:
            raise self.invalid(
                a,
                f"{a.op}() needs a numeric field expression, but {self.described(a.expr)} "
                "is not numeric",
            )
        if not A.references_span(a.expr):
            raise self.invalid(
                a,
                f"{a.op}() must aggregate something that depends on the span, such as an "
                f"attribute or intrinsic; `{self.text(a.expr)}` is a constant",
            )

    # ------------------------------------------------------------------ metrics

    def metrics(self, e: A.Node) -> None:
        match e:
            case A.Static():
                pass
            case A.MetricsPipeline():
                self.pipeline(e.pipeline)
                self.metrics_function(e.function)
                self.second_stages(e.stages)
            case A.MetricsMath():
                self.metrics(e.lhs)
                self.metrics(e.rhs)
            case A.MetricsStages():
                self.metrics(e.expr)
                self.second_stages(e.stages)
            case _:
                raise TypeError(f"unexpected metrics expression {type(e).__name__}")

    def metrics_function(self, fn: A.MetricsAggregate | A.MetricsCompare) -> None:
        if isinstance(fn, A.MetricsCompare):
            self.spanset_filter(fn.filter)
            if not 1 <= fn.top_n <= MAX_COMPARE_TOP_N:
                raise self.invalid(
                    fn,
                    f"compare() top number of values must be an integer between 1 and "
                    f"{MAX_COMPARE_TOP_N}, not {fn.top_n}",
                )
            if (fn.start_ns or fn.end_ns) and (fn.start_ns <= 0 or fn.end_ns <= 0):
                raise self.invalid(
                    fn, "compare() timestamps must be positive integer unix nanoseconds"
                )
            if (fn.start_ns or fn.end_ns) and fn.end_ns <= fn.start_ns:
                raise self.invalid(
                    fn, "compare() end timestamp must be greater than the start timestamp"
                )
            return
        if fn.attribute is not None:
            self.field(fn.attribute)
            t = A.type_of(fn.attribute)
            if t is not _T.ATTRIBUTE and not t.is_numeric:
                raise self.invalid(
                    fn.attribute,
                    f"{fn.op}() needs a numeric attribute or intrinsic, but "
                    f"{self.described(fn.attribute)} is not numeric",
                )
        for attribute in fn.by:
            self.field(attribute)
        limit = MAX_GROUP_BYS
        if fn.op in (A.MetricsOp.QUANTILE_OVER_TIME, A.MetricsOp.HISTOGRAM_OVER_TIME):
            limit -= 1
        if len(fn.by) > limit:
            raise self.unsupported(
                fn, f"{fn.op}() by more than {limit} attributes is not supported"
            )
        for q in fn.quantiles:
            if not 0 <= q <= 1:
                raise self.invalid(fn, f"quantile must be between 0 and 1: {q:g}")

    def second_stages(self, stages: tuple[A.SecondStage, ...]) -> None:
        for s in stages:
            if isinstance(s, A.TopK) and s.k <= 0:
                raise self.invalid(s, f"{s.op}() limit must be greater than 0")

    def compare_alone(self, expr: A.MetricsExpr) -> None:
        """compare() cannot be combined with second stages or arithmetic."""
        if isinstance(expr, A.MetricsPipeline) and not expr.stages:
            return
        for node in A.walk(expr):
            if isinstance(node, A.MetricsCompare):
                raise self.invalid(
                    node,
                    "compare() cannot be used with second stage functions, filters or arithmetic",
                )

    # ------------------------------------------------------------------ hints

    def hint(self, h: A.Hint) -> None:
        t = h.value.type
        v = h.value.value
        fraction = t in (_T.FLOAT, _T.INT) and 0 < v <= 1  # type: ignore[operator]
        match h.name:
            case "most_recent" | "extrapolate":
                if t is not _T.BOOL:
                    raise self.invalid(h, f"hint {h.name} must be true or false")
            case "sample":
                if t is not _T.BOOL and not fraction:
                    raise self.invalid(h, "hint sample must be true, false or a fraction in (0, 1]")
            case "span_sample" | "trace_sample":
                if not fraction:
                    raise self.invalid(h, f"hint {h.name} must be a fraction in (0, 1]")
            case "exemplars":
                if t is not _T.BOOL and not (t is _T.INT and v >= 0):  # type: ignore[operator]
                    raise self.invalid(
                        h, "hint exemplars must be a non-negative integer, true or false"
                    )


def validate(root: A.Root) -> A.Root:
    """Check a parsed query; returns it unchanged, or raises TraceQLValidationError /
    TraceQLUnsupportedError (both with line and column)."""
    try:
        _Validator(root.source).root(root)
    except RecursionError:
        raise TraceQLValidationError("query is nested too deeply", 1, 1) from None
    return root
