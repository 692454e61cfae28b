"""LogQL front end: lexer, parser, syntax tree and printer, for Loki's query API.

``parse(text)`` gives a :class:`~threadline.logql.ast.LogQuery` or a metric expression, or
raises :class:`LogQLParseError` with Loki's wording and a 1-based line and column;
``unparse(tree)`` prints canonical LogQL that parses back to the same tree. See ``ast`` for the
tree shape. The package imports nothing from the query engine: evaluation lives elsewhere.
"""

from __future__ import annotations

from threadline.logql import ast
from threadline.logql.ast import Expr, LogQuery, MetricExpr
from threadline.logql.parser import (
    LogQLParseError,
    parse,
    parse_log_query,
    parse_metric_query,
)
from threadline.logql.printer import unparse

__all__ = [
    "Expr",
    "LogQLParseError",
    "LogQuery",
    "MetricExpr",
    "ast",
    "parse",
    "parse_log_query",
    "parse_metric_query",
    "unparse",
]
