"""TraceQL parser: hand-written recursive descent with precedence climbing.

Two expression grammars share one token stream:

* field expressions (inside ``{ }``, aggregate arguments, ``by()``), lowest to highest:
  ``&& ||`` (one level, left) < comparisons ``= != < <= > >= =~ !~`` (left) < ``+ -`` (left;
  prefix ``-`` binds here too) < prefix ``!`` < ``* / %`` (left) < ``^`` (right);
* query expressions (everything outside braces): ``|`` < ``&& ||`` < comparisons and
  structural operators (``> >> < << ~ !> !>> !< !<< !~ &> &>> &< &<< &~ = != <= >=``) <
  ``+ -`` < ``* / %`` < ``^``; prefix ``-`` applies to numbers only.

Query operands have a *kind* (spanset expression, parenthesised pipeline, aggregate, constant,
metrics function, ...) and each operator accepts only some combinations of kinds, as Tempo's
grammar does: ``{ a } > { b }`` is a structural operation, ``count() > 2`` a scalar filter,
``{ } | rate() > 10`` a metrics filter, ``({ } | rate()) * 2`` metrics arithmetic, while
``{ } > 10`` or ``{ } | rate() + 5`` are syntax errors. Constants in scalar and metrics
positions are folded here (int arithmetic truncates like Go: ``1 / 2`` is 0).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from threadline.traceql import ast as A
from threadline.traceql.errors import TraceQLSyntaxError
from threadline.traceql.lexer import MAX_INT, MIN_INT, Lexer, Token, TokenKind

# ---------------------------------------------------------------------------- kinds of operands

SPANSET = "a spanset expression"
PIPE_EXPR = "a parenthesised pipeline"
AGG = "an aggregate expression"
CONST = "a constant"
SCALAR_FILTER = "a scalar filter"
STAGE = "a pipeline stage"
PIPELINE = "a pipeline"
SCALAR_PIPE = "a parenthesised aggregate pipeline"
SCALAR_PIPE_FILTER = "a comparison of aggregate pipelines"
METRICS_FN = "a metrics function"
SECOND = "a second-stage function"
METRICS = "a metrics query"
METRICS_FILTERED = "a filtered metrics query"

_QUERY_PREC = {
    "|": 1,
    "&&": 2,
    "||": 2,
    **dict.fromkeys(
        [
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "=~",
            "!~",
            ">>",
            "<<",
            "~",
            "!>",
            "!<",
            "!>>",
            "!<<",
            "&>",
            "&<",
            "&>>",
            "&<<",
            "&~",
        ],
        3,
    ),
    "+": 4,
    "-": 4,
    "*": 6,
    "/": 6,
    "%": 6,
    "^": 7,
}
_FIELD_PREC = {
    "||": 1,
    "&&": 1,
    **dict.fromkeys(["=", "!=", "<", "<=", ">", ">=", "=~", "!~"], 2),
    "+": 3,
    "-": 3,
    "*": 5,
    "/": 5,
    "%": 5,
    "^": 6,
}
_PREFIX_NEG_OPERAND = 4  # prefix "-" sits at the "+ -" level: its operand takes * / % ^
_PREFIX_NOT_OPERAND = 5  # prefix "!" sits above "+ -": its operand takes * / % ^

_SPANSET_OPS = {op.value: op for op in A.SpansetOperator}

_EXPECT_QUERY = 'a spanset filter "{ ... }", a pipeline stage or a metrics query'
_EXPECT_STAGE = (
    "a pipeline stage, such as { ... }, count() > 1, by(...), select(...), coalesce(), "
    "rate() or topk(5)"
)
_EXPECT_SPANSET = 'a spanset filter "{ ... }" or a parenthesised pipeline'
_EXPECT_SCALAR = "a number, a duration, an aggregate such as count() or a parenthesised query"
_EXPECT_EITHER = 'a spanset filter "{ ... }", a number, a duration or an aggregate'


def _expected_after(op: str) -> str:
    if op == "|":
        return _EXPECT_STAGE
    if op in (">", "<"):
        return _EXPECT_EITHER
    if op in _SPANSET_OPS and op != "!~":
        return _EXPECT_SPANSET
    return _EXPECT_SCALAR


_COMPARISONS = frozenset(["=", "!=", "<", "<=", ">", ">="])
_ARITHMETIC = frozenset(["+", "-", "*", "/", "%", "^"])
_METRICS_ARITHMETIC = frozenset(["+", "-", "*", "/"])

_STATIC_KEYWORDS: dict[str, tuple[A.Type, object]] = {
    "true": (A.Type.BOOL, True),
    "false": (A.Type.BOOL, False),
    "nil": (A.Type.NIL, None),
    **{s.value: (A.Type.STATUS, s) for s in A.Status},
    **{k.value: (A.Type.KIND, k) for k in A.Kind},
}
_NAMED_INTS = {"minInt": MIN_INT, "maxInt": MAX_INT}
_NOT_NUMBERS = frozenset({"nan", "inf", "infinity"})
_CHAINED = frozenset({A.BinaryOperator.AND, A.BinaryOperator.OR})
_BALANCE_OVER = 32  # longer runs of one of _CHAINED are joined as a balanced tree
_AGGREGATES = frozenset(op.value for op in A.AggregateOp)
_METRICS_FUNCTIONS = frozenset(op.value for op in A.MetricsOp) | {"compare"}
_SECOND_STAGE = frozenset(op.value for op in A.SecondStageOp)


@dataclass(slots=True)
class _Q:
    """A parsed query operand: its kind, AST node and extent."""

    kind: str
    node: Any
    start: Token
    end: int
    paren: bool = False
    stages: tuple[_Q, ...] = ()  # PIPELINE: the stages
    phase: str = ""  # PIPELINE: search | scalar | metrics | math
    filters: tuple[A.MetricsFilter, ...] = ()  # METRICS_FN, SECOND, METRICS_FILTERED


def _is_nil(node: object) -> bool:
    return isinstance(node, A.Static) and node.type is A.Type.NIL


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = Lexer(text).tokenize()
        self.i = 0
        self.prev_end = 0

    # ------------------------------------------------------------------ token helpers

    def peek(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is TokenKind.ERROR:
            raise TraceQLSyntaxError(
                str(tok.value), tok.line, tok.column, found=f'"{tok.text}"' if tok.text else None
            )
        return tok

    def advance(self) -> Token:
        tok = self.peek()
        if tok.kind is not TokenKind.EOF:
            self.i += 1
        self.prev_end = tok.end
        return tok

    def at(self, op: str) -> bool:
        tok = self.peek()
        return tok.kind is TokenKind.OP and tok.text == op

    def at_keyword(self, word: str) -> bool:
        tok = self.peek()
        return tok.kind is TokenKind.KEYWORD and tok.text == word

    def accept(self, op: str) -> Token | None:
        return self.advance() if self.at(op) else None

    def expect(self, op: str, expected: str | None = None) -> Token:
        if not self.at(op):
            raise self.unexpected(expected or f'"{op}"')
        return self.advance()

    def unexpected(self, expected: str) -> TraceQLSyntaxError:
        tok = self.peek()
        found = tok.describe()
        return TraceQLSyntaxError(
            f"unexpected {found}, expected {expected}",
            tok.line,
            tok.column,
            found=found,
            expected=expected,
        )

    def error_at(self, where: Token | A.Node, message: str) -> TraceQLSyntaxError:
        if isinstance(where, Token):
            found = where.describe()
        else:
            found = " ".join(self.text[where.offset : where.end_offset].split()) or None
        return TraceQLSyntaxError(message, where.line, where.column, found=found)

    def span(self, start: Token | A.Node, end: int | None = None) -> dict[str, int]:
        return {
            "line": start.line,
            "column": start.column,
            "offset": start.offset,
            "end_offset": self.prev_end if end is None else end,
        }

    # ------------------------------------------------------------------ root

    def root(self) -> A.Root:
        first = self.peek()
        q = self.query(1)
        hints: list[A.Hint] = []
        while self.at_keyword("with"):
            hints.extend(self.hints())
        if self.peek().kind is not TokenKind.EOF:
            raise self.unexpected('an operator, "with(...)" or the end of the query')
        expr = self.finish(q)
        return A.Root(expr, tuple(hints), source=self.text, **self.span(first))

    def finish(self, q: _Q) -> A.Pipeline | A.MetricsExpr:
        """The root expression for a complete query operand."""
        k = q.kind
        if k in (SPANSET, SCALAR_FILTER, SCALAR_PIPE_FILTER):
            return A.Pipeline((q.node,), **self.span(q.start, q.end))
        if k is PIPE_EXPR:
            if isinstance(q.node, A.Pipeline):
                return q.node
            return A.Pipeline((q.node,), **self.span(q.start, q.end))
        if k is STAGE:
            self.check_first_stage(q)
            return A.Pipeline((q.node,), **self.span(q.start, q.end))
        if k is PIPELINE:
            if q.phase == "search":
                return self.search_pipeline(q.stages)
            if q.phase == "scalar":
                raise self.naked_aggregate(q.stages[-1])
            if q.phase == "metrics":
                return self.metrics_pipeline(q)
            first = q.stages[0]
            stages = list(first.filters)
            for s in q.stages[1:]:
                stages.append(s.node)
                stages.extend(s.filters)
            return self.with_stages(first.node, tuple(stages), q.start, q.end)
        if k is METRICS:
            return q.node
        if k is METRICS_FILTERED:
            return self.with_stages(q.node, q.filters, q.start, q.end)
        raise self.bad_stage(q, first=True)

    # ------------------------------------------------------------------ query expressions

    def query(self, min_prec: int, expected: str = _EXPECT_QUERY) -> _Q:
        left = self.operand(expected)
        while True:
            tok = self.peek()
            if tok.kind is not TokenKind.OP:
                return left
            prec = _QUERY_PREC.get(tok.text)
            if prec is None or prec < min_prec:
                return left
            self.advance()
            right = self.query(prec if tok.text == "^" else prec + 1, _expected_after(tok.text))
            left = self.combine(tok, left, right)

    def operand(self, expected: str) -> _Q:
        tok = self.peek()
        if tok.kind is TokenKind.OP:
            if tok.text == "{":
                node = self.spanset_filter()
                return _Q(SPANSET, node, tok, self.prev_end)
            if tok.text == "(":
                self.advance()
                inner = self.query(1)
                self.expect(")", 'an operator or ")"')
                return self.parenthesised(inner, tok)
            if tok.text == "-":
                self.advance()
                inner = self.operand("a number or duration")
                if inner.kind is not CONST:
                    raise self.error_at(
                        tok, "unary minus can only be applied to a number or duration here"
                    )
                value = self.negate(tok, inner.node)
                return _Q(CONST, value, tok, self.prev_end)
        elif tok.kind in (TokenKind.INT, TokenKind.FLOAT, TokenKind.DURATION):
            self.advance()
            return _Q(CONST, self.static(tok), tok, tok.end)
        elif tok.kind is TokenKind.KEYWORD:
            word = tok.text
            if word in _AGGREGATES:
                return _Q(AGG, self.aggregate(), tok, self.prev_end)
            if word == "by":
                return _Q(STAGE, self.group_by(), tok, self.prev_end)
            if word == "coalesce":
                return _Q(STAGE, self.coalesce(), tok, self.prev_end)
            if word == "select":
                return _Q(STAGE, self.select(), tok, self.prev_end)
            if word in _METRICS_FUNCTIONS:
                return _Q(METRICS_FN, self.metrics_function(), tok, self.prev_end)
            if word in _SECOND_STAGE:
                return _Q(SECOND, self.second_stage(), tok, self.prev_end)
        raise self.unexpected(expected)

    def parenthesised(self, inner: _Q, open_tok: Token) -> _Q:
        end = self.prev_end
        k = inner.kind
        if k in (SPANSET, PIPE_EXPR, AGG, CONST, SCALAR_PIPE, METRICS):
            return dataclasses.replace(inner, start=open_tok, end=end, paren=True)
        if k is SCALAR_FILTER or k is STAGE:
            if k is STAGE:
                self.check_first_stage(inner)
            node = A.Pipeline((inner.node,), **self.span(inner.start, inner.end))
            return _Q(PIPE_EXPR, node, open_tok, end, paren=True)
        if k is PIPELINE:
            if inner.phase == "search":
                return _Q(PIPE_EXPR, self.search_pipeline(inner.stages), open_tok, end, True)
            if inner.phase == "scalar":
                pipeline = self.search_pipeline(inner.stages[:-1])
                agg = inner.stages[-1].node
                node = A.ScalarPipeline(pipeline, agg, **self.span(inner.start, inner.end))
                return _Q(SCALAR_PIPE, node, open_tok, end, True)
            if inner.phase == "metrics":
                return _Q(METRICS, self.metrics_pipeline(inner), open_tok, end, True)
            raise self.error_at(
                inner.stages[1].start,
                "topk()/bottomk() after metrics arithmetic must come at the end of the query, "
                "outside the parentheses",
            )
        if k is METRICS_FILTERED:
            raise self.error_at(
                open_tok,
                "a comparison on metrics arithmetic must come at the end of the query, "
                "outside the parentheses",
            )
        if k is SCALAR_PIPE_FILTER:
            raise self.error_at(
                open_tok, "a comparison of parenthesised pipelines cannot be put in parentheses"
            )
        raise self.bad_stage(inner, first=True)

    def combine(self, tok: Token, left: _Q, right: _Q) -> _Q:
        op = tok.text
        if op == "|":
            return self.pipe(left, right)
        kinds = (left.kind, right.kind)
        if op in _SPANSET_OPS and all(k in (SPANSET, PIPE_EXPR) for k in kinds):
            return self.spanset_operation(tok, left, right)
        if op in _COMPARISONS:
            q = self.comparison(tok, left, right)
            if q is not None:
                return q
        elif op in _ARITHMETIC:
            q = self.arithmetic(tok, left, right)
            if q is not None:
                return q
        if all(k in (SPANSET, PIPE_EXPR) for k in kinds):
            raise self.error_at(
                tok,
                f'"{op}" is not a spanset operator; spansets combine with '
                "&& || > >> < << ~ !> !>> !< !<< !~ &> &>> &< &<< &~",
            )
        if METRICS_FN in kinds and op in _ARITHMETIC:
            raise self.error_at(
                tok,
                f'"{op}" cannot be applied to an unparenthesised metrics function; '
                "put the metrics query in parentheses: ({ } | rate()) * 2",
            )
        if METRICS in kinds and op in _ARITHMETIC and op not in _METRICS_ARITHMETIC:
            raise self.error_at(tok, f'"{op}" cannot combine metrics queries; use + - * or /')
        raise self.error_at(tok, f'"{op}" cannot combine {left.kind} and {right.kind}')

    def spanset_operation(self, tok: Token, left: _Q, right: _Q) -> _Q:
        op = _SPANSET_OPS[tok.text]
        span = self.span(left.start, right.end)
        if left.kind is SPANSET and right.kind is SPANSET:
            node = A.SpansetOperation(op, left.node, right.node, **span)
            return _Q(SPANSET, node, left.start, right.end)
        for side in (left, right):
            if side.kind is SPANSET and not side.paren:
                raise self.error_at(
                    side.start,
                    "a spanset filter combined with a parenthesised pipeline must be in "
                    "parentheses too, e.g. ({ .a }) && ({ .b } | count() > 1)",
                )
        node = A.SpansetOperation(
            op, self.pipeline_operand(left), self.pipeline_operand(right), **span
        )
        return _Q(PIPE_EXPR, node, left.start, right.end)

    def pipeline_operand(self, q: _Q) -> A.Pipeline | A.SpansetOperation:
        if q.kind is PIPE_EXPR:
            return q.node
        return A.Pipeline((q.node,), **self.span(q.start, q.end))

    def comparison(self, tok: Token, left: _Q, right: _Q) -> _Q | None:
        op = A.BinaryOperator(tok.text)
        lk, rk = left.kind, right.kind
        span = self.span(left.start, right.end)
        if lk in (AGG, CONST) and rk in (AGG, CONST):
            if lk is CONST and rk is CONST:
                raise self.error_at(
                    tok,
                    "comparing two constants is not a query; compare an aggregate such as "
                    "count() or avg(duration), or use a spanset filter { ... }",
                )
            node = A.ScalarFilter(op, left.node, right.node, **span)
            return _Q(SCALAR_FILTER, node, left.start, right.end)
        if lk is SCALAR_PIPE and rk in (SCALAR_PIPE, CONST):
            node = A.ScalarFilter(op, left.node, right.node, **span)
            return _Q(SCALAR_PIPE_FILTER, node, left.start, right.end)
        if lk in (METRICS_FN, SECOND, METRICS, METRICS_FILTERED):
            if rk is not CONST:
                raise self.error_at(
                    right.start, "a metrics result can only be compared with a number or duration"
                )
            f = A.MetricsFilter(op, right.node, **self.span(tok, right.end))
            kind = METRICS_FILTERED if lk is METRICS else lk
            return _Q(kind, left.node, left.start, right.end, filters=(*left.filters, f))
        return None

    def arithmetic(self, tok: Token, left: _Q, right: _Q) -> _Q | None:
        op = A.BinaryOperator(tok.text)
        lk, rk = left.kind, right.kind
        span = self.span(left.start, right.end)
        if lk is CONST and rk is CONST:
            value = self.fold(tok, op, left.node, right.node)
            return _Q(CONST, A.Static(value.type, value.value, **span), left.start, right.end)
        if lk in (AGG, CONST) and rk in (AGG, CONST):
            node = A.ScalarOp(op, left.node, right.node, **span)
            return _Q(AGG, node, left.start, right.end)
        if lk is SCALAR_PIPE and rk is SCALAR_PIPE:
            node = A.ScalarOp(op, left.node, right.node, **span)
            return _Q(SCALAR_PIPE, node, left.start, right.end)
        if lk in (METRICS, CONST) and rk in (METRICS, CONST):
            if tok.text not in _METRICS_ARITHMETIC:
                raise self.error_at(
                    tok, f'"{tok.text}" cannot combine metrics queries; use + - * or /'
                )
            for side in (left, right):
                if side.kind is CONST and side.node.type is A.Type.DURATION:
                    raise self.error_at(
                        side.start, "a duration cannot be used as a number in metrics arithmetic"
                    )
            node = A.MetricsMath(op, left.node, right.node, **span)
            return _Q(METRICS, node, left.start, right.end)
        return None

    def pipe(self, left: _Q, right: _Q) -> _Q:
        if left.kind is PIPELINE:
            chain = left
        else:
            chain = _Q(PIPELINE, None, left.start, left.end, stages=(left,))
            chain.phase = self.first_phase(left)
        phase = chain.phase
        if phase == "search":
            if right.kind in (SPANSET, SCALAR_FILTER, STAGE):
                pass
            elif right.kind is AGG and isinstance(right.node, A.Aggregate) and not right.paren:
                phase = "scalar"
            elif right.kind is METRICS_FN:
                phase = "metrics"
            else:
                raise self.bad_stage(right, first=False)
        elif phase == "scalar":
            raise self.naked_aggregate(chain.stages[-1])
        elif right.kind is not SECOND:
            raise self.error_at(
                right.start,
                "only topk(), bottomk() or a comparison can follow a metrics function",
            )
        return _Q(
            PIPELINE, None, chain.start, right.end, stages=(*chain.stages, right), phase=phase
        )

    def first_phase(self, q: _Q) -> str:
        if q.kind in (SPANSET, SCALAR_FILTER):
            return "search"
        if q.kind is STAGE:
            self.check_first_stage(q)
            return "search"
        if q.kind in (METRICS, METRICS_FILTERED):
            return "math"
        raise self.bad_stage(q, first=True)

    def check_first_stage(self, q: _Q) -> None:
        if isinstance(q.node, A.Coalesce):
            raise self.error_at(q.start, "a pipeline cannot start with coalesce()")

    def naked_aggregate(self, q: _Q) -> TraceQLSyntaxError:
        return self.error_at(
            q.start,
            "an aggregate must be compared to a value, e.g. count() > 1 "
            "(only a parenthesised pipeline may end with a bare aggregate)",
        )

    def bad_stage(self, q: _Q, *, first: bool) -> TraceQLSyntaxError:
        k = q.kind
        if k is AGG:
            msg = "an aggregate must be compared to a value, e.g. count() > 1"
        elif k is CONST:
            msg = "a constant is not a query"
        elif k is METRICS_FN:
            name = q.start.text
            msg = f"{name}() needs a spanset pipeline before it, e.g. {{ }} | {name}()"
        elif k is SECOND:
            msg = "topk() and bottomk() can only follow a metrics function: { } | rate() | topk(5)"
        elif k is SCALAR_PIPE:
            msg = "a parenthesised aggregate pipeline must be compared: ({ } | count()) > 1"
        elif k is PIPE_EXPR and not first:
            msg = "a parenthesised pipeline cannot be a pipeline stage"
        elif first:
            msg = f"{k} cannot be followed by |"
        else:
            msg = f"{k} cannot be used as a pipeline stage"
        return self.error_at(q.start, msg)

    def search_pipeline(self, stages: tuple[_Q, ...]) -> A.Pipeline:
        return A.Pipeline(
            tuple(s.node for s in stages), **self.span(stages[0].start, stages[-1].end)
        )

    def metrics_pipeline(self, chain: _Q) -> A.MetricsPipeline:
        index = next(i for i, s in enumerate(chain.stages) if s.kind is METRICS_FN)
        fn = chain.stages[index]
        stages: list[A.SecondStage] = list(fn.filters)
        for s in chain.stages[index + 1 :]:
            stages.append(s.node)
            stages.extend(s.filters)
        pipeline = self.search_pipeline(chain.stages[:index])
        return A.MetricsPipeline(
            pipeline, fn.node, tuple(stages), **self.span(chain.start, chain.end)
        )

    def with_stages(
        self, expr: A.MetricsExpr, stages: tuple[A.SecondStage, ...], start: Token, end: int
    ) -> A.MetricsExpr:
        if not stages:
            return expr
        span = self.span(start, end)
        if isinstance(expr, A.MetricsPipeline):
            return dataclasses.replace(expr, stages=expr.stages + stages, **span)
        return A.MetricsStages(expr, stages, **span)

    # ------------------------------------------------------------------ constants

    def negate(self, tok: Token, value: A.Static) -> A.Static:
        v = -value.value  # type: ignore[operator]
        if value.type is A.Type.INT and v > MAX_INT:
            raise self.error_at(tok, "integer overflow in constant expression")
        return A.Static(value.type, v, **self.span(tok))

    def fold(self, tok: Token, op: A.BinaryOperator, a: A.Static, b: A.Static) -> A.Static:
        if op.value not in _METRICS_ARITHMETIC:
            raise self.error_at(tok, f'"{op}" cannot be used between two constants here')
        if A.Type.DURATION in (a.type, b.type):
            raise self.error_at(
                tok, "durations cannot be used in arithmetic here; write the resulting duration"
            )
        x, y = a.value, b.value
        if a.type is A.Type.INT and b.type is A.Type.INT:
            assert isinstance(x, int) and isinstance(y, int)
            if op is A.BinaryOperator.DIV:
                if y == 0:
                    raise self.error_at(tok, "division by zero")
                q = abs(x) // abs(y)
                v = q if (x < 0) == (y < 0) else -q
            else:
                v = {"+": x + y, "-": x - y, "*": x * y}[op.value]
            if not MIN_INT <= v <= MAX_INT:
                raise self.error_at(tok, "integer overflow in constant expression")
            return A.Static(A.Type.INT, v)
        fx, fy = float(x), float(y)  # type: ignore[arg-type]
        if op is A.BinaryOperator.DIV:
            if fy == 0:
                raise self.error_at(tok, "division by zero")
            v = fx / fy
        else:
            v = {"+": fx + fy, "-": fx - fy, "*": fx * fy}[op.value]
        if not math.isfinite(v):  # an infinity here could only become NaN in a later fold
            raise self.error_at(tok, "number out of range in constant expression")
        return A.Static(A.Type.FLOAT, v)

    def static(self, tok: Token) -> A.Static:
        kind_types = {
            TokenKind.STRING: A.Type.STRING,
            TokenKind.INT: A.Type.INT,
            TokenKind.FLOAT: A.Type.FLOAT,
            TokenKind.DURATION: A.Type.DURATION,
        }
        if tok.kind in kind_types:
            return A.Static(kind_types[tok.kind], tok.value, **self.span(tok, tok.end))
        typ, value = _STATIC_KEYWORDS[tok.text]
        return A.Static(typ, value, **self.span(tok, tok.end))

    def named_constant(self, tok: Token, *, in_field: bool) -> A.Static:
        if tok.text in _NAMED_INTS:
            return A.Static(A.Type.INT, _NAMED_INTS[tok.text], **self.span(tok, tok.end))
        message = f"unknown identifier: {tok.text}"
        if tok.text.lower() in _NOT_NUMBERS:
            message += " (TraceQL numbers are finite: NaN and infinity cannot be written)"
        elif in_field:
            message += (
                f" (attributes need a scope: .{tok.text}, span.{tok.text} or "
                f"resource.{tok.text}; strings need quotes)"
            )
        raise self.error_at(tok, message)

    # ------------------------------------------------------------------ field expressions

    def spanset_filter(self) -> A.SpansetFilter:
        open_tok = self.expect("{", 'a spanset filter "{ ... }"')
        if self.accept("}"):
            true = A.Static(A.Type.BOOL, True, **self.span(open_tok))
            return A.SpansetFilter(true, **self.span(open_tok))
        expr = self.field_expression()
        self.expect("}", 'an operator or "}"')
        return A.SpansetFilter(expr, **self.span(open_tok))

    def field_expression(self) -> A.FieldExpr:
        """A complete field expression (not nil on its own)."""
        expr = self.field(1)
        self.no_nil(expr)
        return expr

    def no_nil(self, expr: A.FieldExpr) -> None:
        if _is_nil(expr):
            raise self.error_at(expr, "nil can only be compared with = or !=")

    def field(self, min_prec: int) -> A.FieldExpr:
        # a run of one chained operator (a && b && ...) is collected, then joined by _join
        operands = [(self.field_unary(), self.prev_end)]
        run_op: A.BinaryOperator | None = None
        while True:
            tok = self.peek()
            prec = _FIELD_PREC.get(tok.text) if tok.kind is TokenKind.OP else None
            if prec is None or prec < min_prec:
                return self._join(run_op, operands)
            self.advance()
            right = self.field(prec if tok.text == "^" else prec + 1)
            op = A.BinaryOperator(tok.text)
            if op not in (A.BinaryOperator.EQ, A.BinaryOperator.NEQ):
                if run_op is None:
                    self.no_nil(operands[0][0])
                self.no_nil(right)
            if op in _CHAINED and run_op in (None, op):
                run_op = op
                operands.append((right, self.prev_end))
                continue
            left = self._join(run_op, operands)
            if op in _CHAINED:
                run_op, operands = op, [(left, operands[-1][1]), (right, self.prev_end)]
            else:
                run_op = None
                operands = [(A.BinaryOp(op, left, right, **self.span(left)), self.prev_end)]

    def _join(
        self, op: A.BinaryOperator | None, operands: list[tuple[A.FieldExpr, int]]
    ) -> A.FieldExpr:
        """Operands (with the offset where each ends) joined by ``op``, left to right.

        A long run (a generated ``a = 1 || a = 2 || ...``) becomes a balanced tree instead of
        a left-leaning one: ``&&`` and ``||`` are associative, and a tree as deep as the run is
        long would be refused by the depth limit.
        """
        if op is None:
            return operands[0][0]
        if len(operands) > _BALANCE_OVER:
            mid = len(operands) // 2
            lhs, rhs = self._join(op, operands[:mid]), self._join(op, operands[mid:])
            return A.BinaryOp(op, lhs, rhs, **self.span(lhs, operands[-1][1]))
        node = operands[0][0]
        for right, end in operands[1:]:
            node = A.BinaryOp(op, node, right, **self.span(operands[0][0], end))
        return node

    def field_unary(self) -> A.FieldExpr:
        tok = self.peek()
        if tok.kind is TokenKind.OP and tok.text in ("!", "-"):
            self.advance()
            operand = self.field(_PREFIX_NOT_OPERAND if tok.text == "!" else _PREFIX_NEG_OPERAND)
            self.no_nil(operand)
            return A.UnaryOp(A.UnaryOperator(tok.text), operand, **self.span(tok))
        return self.field_primary()

    def field_primary(self) -> A.FieldExpr:
        tok = self.peek()
        kind = tok.kind
        if kind is TokenKind.OP and tok.text == "(":
            self.advance()
            expr = self.field(1)
            self.expect(")", 'an operator or ")"')
            self.no_nil(expr)
            return expr
        if kind in (TokenKind.STRING, TokenKind.INT, TokenKind.FLOAT, TokenKind.DURATION):
            self.advance()
            return self.static(tok)
        if kind is TokenKind.KEYWORD and tok.text in _STATIC_KEYWORDS:
            self.advance()
            return self.static(tok)
        if kind is TokenKind.IDENT:
            self.advance()
            return self.named_constant(tok, in_field=True)
        return self.attribute_ref("a field expression")

    def attribute_ref(self, expected: str) -> A.AttributeRef:
        """An attribute, an unscoped intrinsic or a scoped intrinsic."""
        tok = self.peek()
        if tok.kind is TokenKind.ATTRIBUTE:
            self.advance()
            scope, parent, name = tok.value  # type: ignore[misc]
            return A.Attribute(scope, name, parent, **self.span(tok))
        if tok.kind is TokenKind.KEYWORD:
            if tok.text in A.UNSCOPED_INTRINSICS:
                self.advance()
                return A.Intrinsic(A.UNSCOPED_INTRINSICS[tok.text], **self.span(tok))
            if tok.text == "childCount":
                raise self.error_at(tok, 'unexpected "childCount": write span:childCount')
        if tok.kind is TokenKind.SCOPE:
            self.advance()
            name_tok = self.peek()
            key = (str(tok.value), name_tok.text)
            if name_tok.kind in (TokenKind.KEYWORD, TokenKind.IDENT) and key in A.SCOPED_INTRINSICS:
                self.advance()
                return A.Intrinsic(A.SCOPED_INTRINSICS[key], **self.span(tok))
            names = ", ".join(n for s, n in A.SCOPED_INTRINSICS if s == tok.value)
            raise self.unexpected(f"one of {names} after {tok.text}")
        raise self.unexpected(expected)

    # ------------------------------------------------------------------ stages and functions

    def field_argument(self) -> A.FieldExpr:
        if self.at(")"):
            raise self.unexpected("a field expression")
        expr = self.field_expression()
        self.expect(")", 'an operator or ")"')
        return expr

    def aggregate(self) -> A.Aggregate:
        kw = self.advance()
        self.expect("(")
        op = A.AggregateOp(kw.text)
        if op is A.AggregateOp.COUNT:
            self.expect(")", '")" (count() takes no argument)')
            return A.Aggregate(op, None, **self.span(kw))
        expr = self.field_argument()
        return A.Aggregate(op, expr, **self.span(kw))

    def group_by(self) -> A.GroupBy:
        kw = self.advance()
        self.expect("(")
        expr = self.field_argument()
        return A.GroupBy(expr, **self.span(kw))

    def coalesce(self) -> A.Coalesce:
        kw = self.advance()
        self.expect("(")
        self.expect(")", '")" (coalesce() takes no argument)')
        return A.Coalesce(**self.span(kw))

    def attribute_list(self) -> tuple[A.AttributeRef, ...]:
        expected = "an attribute or intrinsic, such as span.http.method or name"
        items = [self.attribute_ref(expected)]
        while self.accept(","):
            items.append(self.attribute_ref(expected))
        self.expect(")", '"," or ")"')
        return tuple(items)

    def select(self) -> A.Select:
        kw = self.advance()
        self.expect("(")
        return A.Select(self.attribute_list(), **self.span(kw))

    def integer_argument(self, expected: str) -> int:
        tok = self.peek()
        if tok.kind is not TokenKind.INT:
            raise self.unexpected(expected)
        self.advance()
        return int(tok.value)  # type: ignore[call-overload]

    def metrics_function(self) -> A.MetricsAggregate | A.MetricsCompare:
        kw = self.advance()
        self.expect("(")
        if kw.text == "compare":
            selection = self.spanset_filter()
            top_n, start, end = 10, 0, 0
            if self.accept(","):
                top_n = self.integer_argument("the number of top values (an integer)")
                if self.accept(","):
                    start = self.integer_argument("a start time in unix nanoseconds")
                    self.expect(",", '"," and an end time (compare() takes both or neither)')
                    end = self.integer_argument("an end time in unix nanoseconds")
            self.expect(")", '"," or ")"')
            return A.MetricsCompare(selection, top_n, start, end, **self.span(kw))
        op = A.MetricsOp(kw.text)
        attribute: A.AttributeRef | None = None
        quantiles: list[float] = []
        if op.takes_attribute:
            attribute = self.attribute_ref("an attribute or intrinsic, such as span:duration")
            if op is A.MetricsOp.QUANTILE_OVER_TIME:
                self.expect(",", '"," and quantiles, e.g. quantile_over_time(duration, .99, .5)')
                quantiles.append(self.number_argument())
                while self.accept(","):
                    quantiles.append(self.number_argument())
                self.expect(")", '"," or ")"')
            else:
                self.expect(")")
        else:
            self.expect(")", f'")" ({kw.text}() takes no argument)')
        by: tuple[A.AttributeRef, ...] = ()
        if self.at_keyword("by"):
            self.advance()
            self.expect("(")
            by = self.attribute_list()
        return A.MetricsAggregate(op, attribute, tuple(quantiles), by, **self.span(kw))

    def number_argument(self) -> float:
        tok = self.peek()
        if tok.kind not in (TokenKind.INT, TokenKind.FLOAT):
            raise self.unexpected("a number")
        self.advance()
        return float(tok.value)  # type: ignore[arg-type]

    def second_stage(self) -> A.TopK:
        kw = self.advance()
        self.expect("(")
        k = self.integer_argument("a positive integer")
        self.expect(")")
        return A.TopK(A.SecondStageOp(kw.text), k, **self.span(kw))

    def hints(self) -> list[A.Hint]:
        self.advance()  # with
        self.expect("(")
        hints = [self.hint()]
        while self.accept(","):
            hints.append(self.hint())
        self.expect(")", '"," or ")"')
        return hints

    def hint(self) -> A.Hint:
        name = self.peek()
        if name.kind is not TokenKind.IDENT:
            raise self.unexpected("a hint name, such as most_recent")
        self.advance()
        self.expect("=")
        tok = self.peek()
        if tok.kind in (TokenKind.STRING, TokenKind.INT, TokenKind.FLOAT, TokenKind.DURATION) or (
            tok.kind is TokenKind.KEYWORD and tok.text in _STATIC_KEYWORDS and tok.text != "nil"
        ):
            self.advance()
            value = self.static(tok)
        elif tok.kind is TokenKind.IDENT:
            self.advance()
            value = self.named_constant(tok, in_field=False)
        else:
            raise self.unexpected("a literal value")
        return A.Hint(name.text, value, **self.span(name))


MAX_DEPTH = 256
"""Deepest syntax tree accepted: everything after the parser (validation, planning, printing)
walks the tree recursively, and stays well inside Python's recursion limit below this depth."""


def _check_depth(root: A.Root) -> None:
    stack: list[tuple[A.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            line, column = (node.line, node.column) if node.line > 0 else (1, 1)
            raise TraceQLSyntaxError(
                f"query is nested too deeply (more than {MAX_DEPTH} levels)", line, column
            )
        stack.extend((child, depth + 1) for child in A.children(node))


def parse(text: str) -> A.Root:
    """Parse a TraceQL query. Raises TraceQLSyntaxError (with line and column)."""
    try:
        root = _Parser(text).root()
    except RecursionError:
        raise TraceQLSyntaxError("query is nested too deeply", 1, 1) from None
    _check_depth(root)
    return root
