"""LogQL parser: hand-written recursive descent with precedence climbing, and LogQLParseError.

Owns the grammar of Loki's ``syntax.y`` and the checks Loki makes while parsing:

* metric expressions, lowest to highest: ``or`` < ``and unless`` < ``== != > >= < <=`` <
  ``+ -`` < ``* / %`` < ``^`` (right); each operator may take ``bool``, ``on (..)`` /
  ``ignoring (..)`` and ``group_left (..)`` / ``group_right (..)``; a sign belongs to a number
  literal only (``-sum(..)`` is an error, ``- 2 ^ 2`` is ``(-2) ^ 2``);
* log queries: a selector, then line filters, parsers, label filters and formatters; after a
  log query ``!=`` and ``or`` continue a line filter, as Loki's parser shifts;
* label filters: ``or`` < ``and``; ``,`` and juxtaposition mean ``and`` and take everything to
  their right (``a or b, c`` is ``a or (b and c)``), which is how Loki's grammar resolves them;
* a range is ``selector [pipeline] [| unwrap ..] [5m] [offset 1h]``, or the range right after
  the selector with the pipeline after it, or with the log part in parentheses.

Errors raise :class:`LogQLParseError` worded as Loki's: syntax errors name the unexpected
token (``unexpected IDENTIFIER``, ``unexpected $end``) and, where Loki's parser lists at most
four, the expected ones; they are raised at once. Loki's semantic errors (unwrap, parameters,
grouping, binary operands, selectors that can match everything) are collected while parsing
and the first one in a pre-order walk is raised at the end, as Loki validates after parsing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from threadline.logql import ast as A
from threadline.logql.lexer import Lexer, Token, TokenKind

MAX_DEPTH = 200
"""Deepest nesting accepted: the printer and later stages walk the tree recursively."""

ERR_MATCHERS = (
    "queries require at least one regexp or equality matcher that does not have an "
    'empty-compatible value. For instance, app=~".*" does not meet this requirement, but '
    'app=~".+" will'
)


class LogQLParseError(Exception):
    """The text is not a LogQL query Loki would accept.

    ``line`` and ``column`` are 1-based; ``message`` is Loki's (``syntax error: unexpected ),
    expecting ,``) and ``str(error)`` is worded as Loki words it: ``parse error at line 1,
    col 9: <message>``. Loki reports its semantic errors without a position; here they point
    at the expression at fault.
    """

    def __init__(self, message: str, line: int, column: int) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"parse error at line {line}, col {column}: {message}")


_BINOPS: dict[str, A.BinOp] = {op.value: op for op in A.BinOp}
_LINE_FILTERS: dict[str, A.LineFilterOp] = {op.value: op for op in A.LineFilterOp}
_MATCH_TYPES: dict[str, A.MatchType] = {op.value: op for op in A.MatchType}
_COMPARE: dict[str, A.CompareOp] = {
    ">": A.CompareOp.GT,
    ">=": A.CompareOp.GTE,
    "<": A.CompareOp.LT,
    "<=": A.CompareOp.LTE,
    "!=": A.CompareOp.NEQ,
    "=": A.CompareOp.EQ,
    "==": A.CompareOp.EQ,
}
_RANGE_OPS = frozenset(op.value for op in A.RangeOp)
_VECTOR_OPS = frozenset(op.value for op in A.VectorOp)
_CONVERSIONS = frozenset(c.value for c in A.Conversion)
_PARSER_STAGES = frozenset(
    [
        "json",
        "logfmt",
        "regexp",
        "pattern",
        "unpack",
        "line_format",
        "label_format",
        "decolorize",
        "drop",
        "keep",
    ]
)
_GO_FLOAT = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_INT = 2**63 - 1


def go_float(text: str) -> float | str:
    """Go ``strconv.ParseFloat`` of a NUMBER token: the value, or Go's error text."""
    if not _GO_FLOAT.fullmatch(text):
        return f'strconv.ParseFloat: parsing "{text}": invalid syntax'
    value = float(text)
    if math.isinf(value):
        return f'strconv.ParseFloat: parsing "{text}": value out of range'
    return value


def format_go_float(value: float) -> str:
    """Go's ``%f``: six decimals."""
    return f"{value:f}"


def matches_empty(m: A.Matcher) -> bool:
    """Whether the matcher accepts the empty value (Prometheus' ``Matcher.Matches("")``).

    A regex Python cannot compile is taken as not matching the empty value.
    """
    if m.type is A.MatchType.EQ:
        return m.value == ""
    if m.type is A.MatchType.NEQ:
        return m.value != ""
    try:
        hit = re.fullmatch(m.value, "", re.DOTALL) is not None
    except (re.error, RecursionError, OverflowError, ValueError):
        return m.type is A.MatchType.NRE
    return hit if m.type is A.MatchType.RE else not hit


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = Lexer(text).tokenize()
        self.i = 0
        self.prev_end = 0
        self.depth = 0
        # semantic errors: (offset, -end_offset, order, error), raised in pre-order at the end
        self.deferred: list[tuple[int, int, int, LogQLParseError]] = []

    # ------------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 0) -> Token:
        j = min(self.i + ahead, len(self.tokens) - 1)
        for k in range(self.i, j + 1):
            tok = self.tokens[k]
            if tok.kind is TokenKind.ERROR:
                raise LogQLParseError(str(tok.value), tok.line, tok.column)
            if tok.kind is TokenKind.EOF:
                return tok
        return self.tokens[j]

    def advance(self) -> Token:
        tok = self.peek()
        if tok.kind is not TokenKind.EOF:
            self.i += 1
        self.prev_end = tok.end
        return tok

    def at(self, op: str) -> bool:
        return self.peek().is_op(op)

    def at_keyword(self, word: str) -> bool:
        return self.peek().is_keyword(word)

    def accept(self, op: str) -> Token | None:
        return self.advance() if self.at(op) else None

    def expect(self, op: str, *expected: str) -> Token:
        if not self.at(op):
            raise self.unexpected(*expected)
        return self.advance()

    def expect_kind(self, kind: TokenKind, *expected: str) -> Token:
        if self.peek().kind is not kind:
            raise self.unexpected(*expected)
        return self.advance()

    def unexpected(self, *expected: str) -> LogQLParseError:
        tok = self.peek()
        message = f"syntax error: unexpected {tok.describe()}"
        if expected:
            message += ", expecting " + " or ".join(expected)
        return LogQLParseError(message, tok.line, tok.column)

    def span(self, start: Token | A.Node, end: int | None = None) -> dict[str, int]:
        return {
            "line": start.line,
            "column": start.column,
            "offset": start.offset,
            "end_offset": self.prev_end if end is None else end,
        }

    def defer(self, node: A.Node, message: str, order: int = 0) -> None:
        error = LogQLParseError(message, node.line, node.column)
        self.deferred.append((node.offset, -node.end_offset, order, error))

    def nest(self, parse: Callable[[], Any]) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            tok = self.peek()
            raise LogQLParseError(
                f"query is nested too deeply (more than {MAX_DEPTH} levels)", tok.line, tok.column
            )
        try:
            return parse()
        finally:
            self.depth -= 1

    # ------------------------------------------------------------------ root

    def root(self) -> A.Expr:
        expr = self.expr(1)
        if self.peek().kind is not TokenKind.EOF:
            raise self.unexpected()
        if isinstance(expr, A.LogQuery):
            self.check_selector(expr, expr)
        if self.deferred:
            raise min(self.deferred, key=lambda d: d[:3])[3]
        return expr

    # ------------------------------------------------------------------ metric expressions

    def expr(self, min_prec: int) -> A.Expr:
        left = self.nest(self.operand)
        while True:
            tok = self.peek()
            op = self.binop_at(tok)
            if op is None or op.precedence < min_prec:
                return left
            self.advance()
            return_bool = False
            if self.at_keyword("bool"):
                self.advance()
                return_bool = True
            matching = self.vector_matching()
            right = self.nest(lambda o=op: self.expr(o.precedence + (o is not A.BinOp.POW)))
            node = A.BinaryOp(op, left, right, return_bool, matching, **self.span(left))  # type: ignore[arg-type]
            self.check_binop(node, left, right)
            left = node

    def binop_at(self, tok: Token) -> A.BinOp | None:
        if tok.kind is TokenKind.KEYWORD and tok.value in ("or", "and", "unless"):
            return _BINOPS[str(tok.value)]
        if tok.kind is TokenKind.OP and tok.text in _BINOPS:
            return _BINOPS[tok.text]
        return None

    def vector_matching(self) -> A.VectorMatching | None:
        tok = self.peek()
        if not (tok.is_keyword("on") or tok.is_keyword("ignoring")):
            return None
        self.advance()
        self.expect("(", "(")
        labels = self.labels()
        group: str | None = None
        include: tuple[str, ...] = ()
        side = self.peek()
        if side.is_keyword("group_left") or side.is_keyword("group_right"):
            self.advance()
            group = "left" if side.value == "group_left" else "right"
            if self.accept("("):
                include = self.labels()
        return A.VectorMatching(tok.value == "on", labels, group, include, **self.span(tok))

    def check_binop(self, node: A.BinaryOp, left: A.Expr, right: A.Expr) -> None:
        op = node.op.value
        for side, leg in (("left", left), ("right", right)):
            if isinstance(leg, A.LogQuery):
                kind = "PipelineExpr" if leg.stages else "MatchersExpr"
                self.defer(
                    node,
                    f"unexpected type for {side} leg of binary operation ({op}): *syntax.{kind}",
                )
                return
        if node.op.is_set:
            for side, leg in (("left", left), ("right", right)):
                if isinstance(leg, A.Literal):
                    self.defer(
                        node,
                        f"unexpected literal for {side} leg of logical/set binary operation "
                        f"({op}): {format_go_float(leg.value)}",
                    )
                    return

    def metric_expr(self) -> A.MetricExpr:
        """An expression that must be a metric query (a log query there is a syntax error)."""
        expr = self.expr(1)
        if isinstance(expr, A.LogQuery):
            raise self.unexpected()
        return expr

    def operand(self) -> A.Expr:
        tok = self.peek()
        if tok.is_op("{"):
            return self.log_query(in_range=False)[0]
        if tok.is_op("("):
            self.advance()
            inner = self.expr(1)
            self.expect(")")
            return inner
        if tok.kind is TokenKind.NUMBER or tok.is_op("-") or tok.is_op("+"):
            return self.literal()
        if tok.kind is TokenKind.KEYWORD:
            word = str(tok.value)
            if word in _RANGE_OPS:
                return self.range_aggregation()
            if word in _VECTOR_OPS:
                return self.vector_aggregation()
            if word == "vector":
                return self.vector_literal()
            if word == "label_replace":
                return self.label_replace()
        raise self.unexpected()

    def number(self) -> tuple[Token, float]:
        tok = self.expect_kind(TokenKind.NUMBER)
        value = go_float(tok.text)
        if isinstance(value, str):
            raise LogQLParseError(
                f"unable to parse literal as a float: {value}", tok.line, tok.column
            )
        return tok, value

    def literal(self) -> A.Literal:
        start = self.peek()
        sign = 1.0
        if start.is_op("-") or start.is_op("+"):
            self.advance()
            sign = -1.0 if start.text == "-" else 1.0
            if self.peek().kind is not TokenKind.NUMBER:
                raise self.unexpected("NUMBER")
        _, value = self.number()
        return A.Literal(sign * value, **self.span(start))

    def vector_literal(self) -> A.VectorLiteral:
        kw = self.advance()
        self.expect("(", "(")
        tok = self.expect_kind(TokenKind.NUMBER, "NUMBER")
        self.expect(")", ")")
        value = go_float(tok.text)
        node = A.VectorLiteral(0.0 if isinstance(value, str) else value, **self.span(kw))
        if isinstance(value, str):
            self.defer(node, f"unable to parse vectorExpr as a float: {value}")
        return node

    def label_replace(self) -> A.LabelReplace:
        kw = self.advance()
        self.expect("(", "(")
        expr = self.nest(self.metric_expr)
        args: list[str] = []
        for i in range(4):
            self.expect(",", *((",",) if i else ()))  # after the expression: an operator too
            args.append(str(self.expect_kind(TokenKind.STRING, "STRING").value))
        self.expect(")")
        return A.LabelReplace(expr, *args, **self.span(kw))

    def grouping(self) -> A.Grouping | None:
        tok = self.peek()
        if not (tok.is_keyword("by") or tok.is_keyword("without")):
            return None
        self.advance()
        self.expect("(", "(")
        labels = self.labels()
        return A.Grouping(tok.value == "without", labels, **self.span(tok))

    def labels(self) -> tuple[str, ...]:
        """``a, b)`` or ``)``, after an opening parenthesis."""
        if self.accept(")"):
            return ()
        names = [str(self.expect_kind(TokenKind.IDENT, "IDENTIFIER", ")").value)]
        while self.accept(","):
            names.append(str(self.expect_kind(TokenKind.IDENT, "IDENTIFIER").value))
        self.expect(")", ",", ")")
        return tuple(names)

    def vector_aggregation(self) -> A.VectorAggregation:
        kw = self.advance()
        op = A.VectorOp(str(kw.value))
        grouping = self.grouping()
        self.expect("(", "(")
        param_tok: Token | None = None
        if self.peek().kind is TokenKind.NUMBER and self.peek(1).is_op(","):
            param_tok = self.advance()
            self.advance()
        expr = self.nest(self.metric_expr)
        self.expect(")")
        if grouping is None:
            grouping = self.grouping()
        param: int | None = None
        message: str | None = None
        if op.takes_param:
            if param_tok is None:
                message = f"parameter required for operation {op}"
            elif not param_tok.text.isdigit() or int(param_tok.text) > _MAX_INT:
                message = f"invalid parameter {op}({param_tok.text},"
            elif int(param_tok.text) <= 0:
                message = f"invalid parameter (must be greater than 0) {op}({param_tok.text}"
            else:
                param = int(param_tok.text)
        elif param_tok is not None:
            message = f"unsupported parameter for operation {op}({param_tok.text},"
        node = A.VectorAggregation(op, expr, param, grouping, **self.span(kw))
        if message is not None:
            self.defer(node, message)
        elif op in (A.VectorOp.SORT, A.VectorOp.SORT_DESC) and grouping and grouping.labels:
            self.defer(node, "sort and sort_desc doesn't allow grouping by ")
        return node

    def range_aggregation(self) -> A.RangeAggregation:
        kw = self.advance()
        op = A.RangeOp(str(kw.value))
        self.expect("(", "(")
        param_tok: Token | None = None
        first = True
        if self.peek().kind is TokenKind.NUMBER:
            param_tok = self.advance()
            self.expect(",", ",")
            first = False
        log_range = self.nest(lambda: self.log_range(first))
        self.expect(")", ")")
        grouping = self.grouping()
        param: float | None = None
        message: str | None = None
        if param_tok is not None:
            if op is not A.RangeOp.QUANTILE_OVER_TIME:
                message = f"parameter {param_tok.text} not supported for operation {op}"
            else:
                value = go_float(param_tok.text)
                if isinstance(value, str):
                    message = f"invalid parameter for operation {op}: {value}"
                else:
                    param = value
        elif op is A.RangeOp.QUANTILE_OVER_TIME:
            message = f"parameter required for operation {op}"
        if message is None:
            if grouping is not None and not op.takes_grouping:
                message = f"grouping not allowed for {op} aggregation"
            elif log_range.unwrap is not None and not op.takes_unwrap:
                message = f"invalid aggregation {op} with unwrap"
            elif log_range.unwrap is None and op.needs_unwrap:
                message = f"invalid aggregation {op} without unwrap"
        node = A.RangeAggregation(op, log_range, param, grouping, **self.span(kw))
        if message is not None:
            self.defer(node, message)
        else:
            self.check_selector(node, log_range.query)
        return node

    def check_selector(self, node: A.Node, query: A.LogQuery) -> None:
        if all(matches_empty(m) for m in query.selector.matchers):
            self.defer(node, ERR_MATCHERS, order=1)

    # ------------------------------------------------------------------ ranges

    def log_range(self, first: bool = False) -> A.LogRange:
        """A range; ``first``: it is a range function's first argument (a number could be)."""
        start = self.peek()
        if start.is_op("("):
            self.advance()
            if self.at("("):
                inner = self.nest(self.log_range)
                self.expect(")", ")")
                return inner
            if not self.at("{"):
                raise self.unexpected("{", "(")
            query, unwrap = self.log_query(in_range=True)
            if self.peek().kind is TokenKind.RANGE:  # "(" a whole range ")"
                node = self.finish_range(start, query, unwrap)
                self.expect(")", ")")
                return node
            self.expect(")", *(("RANGE", ")", "|") if unwrap is not None else ()))
            if self.peek().kind is not TokenKind.RANGE:
                raise self.unexpected("RANGE")
            range_ns = int(self.advance().value)  # type: ignore[call-overload]
            offset = self.offset()
            if not query.stages and unwrap is None and self.at("|"):
                # "(" selector ")" RANGE [offset] | unwrap ...
                if not self.peek(1).is_keyword("unwrap"):
                    self.advance()
                    raise self.unexpected("unwrap")
                unwrap = self.unwrap()
            return A.LogRange(query, range_ns, offset, unwrap, **self.span(start))
        if not start.is_op("{"):
            raise self.unexpected(*(("NUMBER", "{", "(") if first else ("{", "(")))
        query, unwrap = self.log_query(in_range=True)
        if self.peek().kind is not TokenKind.RANGE:
            raise self.unexpected(*(("RANGE", "|") if unwrap is not None else ()))
        return self.finish_range(start, query, unwrap)

    def finish_range(self, start: Token, query: A.LogQuery, unwrap: A.Unwrap | None) -> A.LogRange:
        """At the range: ``[5m] [offset 1h]``, then the pipeline if it did not come before."""
        range_ns = int(self.advance().value)  # type: ignore[call-overload]
        offset = self.offset()
        if query.stages or unwrap is not None:
            return A.LogRange(query, range_ns, offset, unwrap, **self.span(start))
        stages, unwrap = self.pipeline(in_range=True)
        query = A.LogQuery(query.selector, stages, **self.span(start))
        return A.LogRange(query, range_ns, offset, unwrap, **self.span(start))

    def offset(self) -> int:
        if not self.at_keyword("offset"):
            return 0
        self.advance()
        tok = self.expect_kind(TokenKind.DURATION, "DURATION")
        return int(tok.value)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ log queries

    def log_query(self, *, in_range: bool) -> tuple[A.LogQuery, A.Unwrap | None]:
        start = self.peek()
        selector = self.selector()
        if in_range and self.peek().kind is TokenKind.RANGE:
            return A.LogQuery(selector, (), **self.span(start)), None
        stages, unwrap = self.pipeline(in_range=in_range)
        return A.LogQuery(selector, stages, **self.span(start)), unwrap

    def selector(self) -> A.StreamSelector:
        open_tok = self.expect("{")
        matchers: list[A.Matcher] = []
        if not self.accept("}"):
            if self.peek().kind is not TokenKind.IDENT:
                raise self.unexpected("IDENTIFIER", "}")
            matchers.append(self.matcher())
            while self.accept(","):
                if self.peek().kind is not TokenKind.IDENT:
                    raise self.unexpected("IDENTIFIER")
                matchers.append(self.matcher())
            self.expect("}", "}", ",")
        return A.StreamSelector(tuple(matchers), **self.span(open_tok))

    def matcher(self) -> A.Matcher:
        name = self.advance()
        tok = self.peek()
        if not (tok.kind is TokenKind.OP and tok.text in _MATCH_TYPES):
            raise self.unexpected("=", "=~", "!~", "!=")
        self.advance()
        value = self.expect_kind(TokenKind.STRING, "STRING")
        return A.Matcher(
            str(name.value), _MATCH_TYPES[tok.text], str(value.value), **self.span(name)
        )

    def pipeline(self, *, in_range: bool) -> tuple[tuple[A.Stage, ...], A.Unwrap | None]:
        stages: list[A.Stage] = []
        while True:
            tok = self.peek()
            if tok.kind is TokenKind.OP and tok.text in _LINE_FILTERS:
                stages.append(self.line_filter())
            elif tok.is_op("|"):
                nxt = self.peek(1)
                if in_range and nxt.is_keyword("unwrap"):
                    return tuple(stages), self.unwrap()
                self.advance()
                stages.append(self.stage())
            else:
                return tuple(stages), None

    def line_filter(self) -> A.LineFilter:
        tok = self.advance()
        values = [self.line_filter_value()]
        while self.at_keyword("or"):
            self.advance()
            values.append(self.line_filter_value())
        return A.LineFilter(_LINE_FILTERS[tok.text], tuple(values), **self.span(tok))

    def line_filter_value(self) -> A.LineFilterValue:
        tok = self.peek()
        if tok.kind is TokenKind.STRING:
            self.advance()
            return A.LineFilterValue(str(tok.value), **self.span(tok))
        if tok.is_keyword("ip"):
            self.advance()
            self.expect("(", "(")
            value = self.expect_kind(TokenKind.STRING, "STRING")
            self.expect(")", ")")
            return A.LineFilterValue(str(value.value), True, **self.span(tok))
        raise self.unexpected("STRING", "ip")

    def stage(self) -> A.Stage:
        tok = self.peek()
        if tok.kind is TokenKind.KEYWORD and tok.value in _PARSER_STAGES:
            self.advance()
            word = str(tok.value)
            if word == "json":
                return A.JsonParser(self.extractions(), **self.span(tok))
            if word == "logfmt":
                flags: list[str] = []
                while self.peek().kind is TokenKind.FLAG:
                    flags.append(str(self.advance().value))
                return A.LogfmtParser(tuple(flags), self.extractions(), **self.span(tok))
            if word in ("regexp", "pattern", "line_format"):
                value = str(self.expect_kind(TokenKind.STRING, "STRING").value)
                if word == "regexp":
                    return self.regexp_parser(tok, value)
                if word == "pattern":
                    return A.PatternParser(value, **self.span(tok))
                return A.LineFormat(value, **self.span(tok))
            if word == "unpack":
                return A.UnpackParser(**self.span(tok))
            if word == "decolorize":
                return A.Decolorize(**self.span(tok))
            if word == "label_format":
                return self.label_format(tok)
            items = self.named_matchers()
            if word == "drop":
                return A.DropLabels(items, **self.span(tok))
            return A.KeepLabels(items, **self.span(tok))
        if tok.kind is TokenKind.IDENT or tok.is_op("("):
            return A.LabelFilterStage(self.label_filter(1), **self.span(tok))
        raise self.unexpected()

    def regexp_parser(self, tok: Token, pattern: str) -> A.RegexpParser:
        try:
            compiled = re.compile(pattern)
        except (re.error, RecursionError, OverflowError, ValueError):
            compiled = None  # Go's syntax is not Python's: leave the pattern to the engine
        if compiled is not None and not compiled.groupindex:
            raise LogQLParseError(
                "invalid regexp parser: at least one named capture must be supplied",
                tok.line,
                tok.column,
            )
        return A.RegexpParser(pattern, **self.span(tok))

    def extractions(self) -> tuple[A.LabelExtraction, ...]:
        if self.peek().kind is not TokenKind.IDENT:
            return ()
        items = [self.extraction()]
        while self.accept(","):
            items.append(self.extraction())
        return tuple(items)

    def extraction(self) -> A.LabelExtraction:
        name = self.expect_kind(TokenKind.IDENT, "IDENTIFIER")
        if self.accept("="):
            value = self.expect_kind(TokenKind.STRING, "STRING")
            return A.LabelExtraction(str(name.value), str(value.value), **self.span(name))
        return A.LabelExtraction(str(name.value), str(name.value), **self.span(name))

    def label_format(self, kw: Token) -> A.LabelFormat:
        items = [self.label_fmt()]
        while self.accept(","):
            items.append(self.label_fmt())
        return A.LabelFormat(tuple(items), **self.span(kw))

    def label_fmt(self) -> A.LabelFmt:
        dst = self.expect_kind(TokenKind.IDENT, "IDENTIFIER")
        self.expect("=", "=")
        tok = self.peek()
        if tok.kind is TokenKind.IDENT:
            self.advance()
            return A.LabelFmt(str(dst.value), str(tok.value), False, **self.span(dst))
        if tok.kind is TokenKind.STRING:
            self.advance()
            return A.LabelFmt(str(dst.value), str(tok.value), True, **self.span(dst))
        raise self.unexpected("IDENTIFIER", "STRING")

    def named_matchers(self) -> tuple[str | A.Matcher, ...]:
        items = [self.named_matcher()]
        while self.accept(","):
            items.append(self.named_matcher())
        return tuple(items)

    def named_matcher(self) -> str | A.Matcher:
        name = self.peek()
        if name.kind is not TokenKind.IDENT:
            raise self.unexpected("IDENTIFIER")
        tok = self.peek(1)
        if tok.kind is TokenKind.OP and tok.text in _MATCH_TYPES:
            return self.matcher()
        self.advance()
        return str(name.value)

    def unwrap(self) -> A.Unwrap:
        self.advance()  # |
        kw = self.advance()  # unwrap
        tok = self.peek()
        conversion: A.Conversion | None = None
        if tok.kind is TokenKind.KEYWORD and tok.value in _CONVERSIONS:
            self.advance()
            conversion = A.Conversion(str(tok.value))
            self.expect("(", "(")
            label = self.expect_kind(TokenKind.IDENT, "IDENTIFIER")
            self.expect(")", ")")
        else:
            label = self.expect_kind(
                TokenKind.IDENT,
                "IDENTIFIER",
                "BYTES_CONV",
                "DURATION_CONV",
                "DURATION_SECONDS_CONV",
            )
        filters: list[A.LabelFilter] = []
        while self.at("|"):
            self.advance()
            tok = self.peek()
            if not (tok.kind is TokenKind.IDENT or tok.is_op("(")):
                raise self.unexpected("IDENTIFIER", "(")
            filters.append(self.label_filter(1))
        return A.Unwrap(str(label.value), conversion, tuple(filters), **self.span(kw))

    # ------------------------------------------------------------------ label filters

    def label_filter(self, min_prec: int, operand: bool = False) -> A.LabelFilter:
        """``operand``: after ``and``/``or``/``,``/``(``, where only a filter can come."""
        left = self.nest(lambda: self.label_filter_primary(operand))
        while True:
            tok = self.peek()
            if tok.is_op(",") or tok.kind is TokenKind.IDENT or tok.is_op("("):
                # "," and juxtaposition: "and" with everything to the right
                self.accept(",")
                right = self.nest(lambda: self.label_filter(1, operand=True))
                left = A.LabelFilterBinary(A.LogicOp.AND, left, right, **self.span(left))
                continue
            if tok.is_keyword("and") or tok.is_keyword("or"):
                prec = 2 if tok.value == "and" else 1
                if prec < min_prec:
                    return left
                self.advance()
                right = self.nest(lambda p=prec: self.label_filter(p + 1, operand=True))
                op = A.LogicOp(str(tok.value))
                left = A.LabelFilterBinary(op, left, right, **self.span(left))
                continue
            return left

    def label_filter_primary(self, operand: bool) -> A.LabelFilter:
        tok = self.peek()
        if tok.is_op("("):
            self.advance()
            inner = self.label_filter(1, operand=True)
            self.expect(")")
            return inner
        if tok.kind is not TokenKind.IDENT:
            raise self.unexpected(*(("IDENTIFIER", "(") if operand else ()))
        name = str(tok.value)
        op_tok = self.peek(1)
        if op_tok.kind is not TokenKind.OP or op_tok.text not in (*_MATCH_TYPES, *_COMPARE):
            self.advance()
            raise self.unexpected()
        self.advance()
        self.advance()
        op = op_tok.text
        value = self.peek()
        if op in ("=~", "!~") or (op in ("=", "!=") and value.kind is TokenKind.STRING):
            self.expect_kind(TokenKind.STRING, "STRING")
            matcher = A.Matcher(name, _MATCH_TYPES[op], str(value.value), **self.span(tok))
            return A.StringFilter(matcher, **self.span(tok))
        if op in ("=", "!=") and value.is_keyword("ip"):
            self.advance()
            self.expect("(", "(")
            pattern = self.expect_kind(TokenKind.STRING, "STRING")
            self.expect(")", ")")
            return A.IpFilter(name, _COMPARE[op], str(pattern.value), **self.span(tok))
        cmp = _COMPARE[op]
        if value.kind is TokenKind.DURATION:
            self.advance()
            return A.DurationFilter(name, cmp, int(value.value), **self.span(tok))  # type: ignore[call-overload]
        if value.kind is TokenKind.BYTES:
            self.advance()
            return A.BytesFilter(name, cmp, int(value.value), **self.span(tok))  # type: ignore[call-overload]
        if value.kind is TokenKind.NUMBER or value.is_op("+") or value.is_op("-"):
            literal = self.literal()
            return A.NumberFilter(name, cmp, literal.value, **self.span(tok))
        raise self.unexpected()


def parse(text: str) -> A.Expr:
    """Parse a LogQL query: a :class:`~threadline.logql.ast.LogQuery` or a metric expression.

    Raises :class:`LogQLParseError` (with line and column) for anything Loki would refuse.
    """
    try:
        return _Parser(text).root()
    except RecursionError:
        raise LogQLParseError("query is nested too deeply", 1, 1) from None


def parse_log_query(text: str) -> A.LogQuery:
    """Parse a query that must be a log query."""
    expr = parse(text)
    if not isinstance(expr, A.LogQuery):
        raise LogQLParseError("only log selector is supported", expr.line, expr.column)
    return expr


def parse_metric_query(text: str) -> A.MetricExpr:
    """Parse a query that must be a metric query."""
    expr = parse(text)
    if isinstance(expr, A.LogQuery):
        raise LogQLParseError("only sample expression supported", expr.line, expr.column)
    return expr
