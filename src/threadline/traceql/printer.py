"""Canonical TraceQL text for a syntax tree: ``parse(unparse(tree)) == tree`` for parsed trees.

Non-leaf operands are always parenthesised, so the text does not depend on precedence.
Stage texts follow Tempo's spelling where Tempo shows them to users (``count()``,
``by(resource.service.name)``), so they can be used as ``SpanSet.attributes`` keys.
"""

from __future__ import annotations

import math

from threadline.traceql import ast as A
from threadline.traceql.lexer import MIN_INT, is_attribute_rune

_DURATION_UNITS = (
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
)
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def format_duration(ns: int) -> str:
    """``90m``, ``1500ms``: the largest unit that divides the value exactly."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    for unit, size in _DURATION_UNITS:
        if ns % size == 0:
            return f"{sign}{ns // size}{unit}"
    raise AssertionError("unreachable")


def format_string(s: str) -> str:
    out = []
    for c in s:
        if c in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def format_float(f: float) -> str:
    if math.isinf(f) or math.isnan(f):
        raise ValueError(f"{f} cannot be written in TraceQL")
    text = repr(f)
    return text if ("." in text or "e" in text) else text + ".0"


def format_static(s: A.Static) -> str:
    v = s.value
    match s.type:
        case A.Type.INT:
            return "minInt" if v == MIN_INT else str(v)
        case A.Type.FLOAT:
            return format_float(float(v))  # type: ignore[arg-type]
        case A.Type.STRING:
            return format_string(str(v))
        case A.Type.BOOL:
            return "true" if v else "false"
        case A.Type.NIL:
            return "nil"
        case A.Type.DURATION:
            return format_duration(int(v))  # type: ignore[call-overload]
        case A.Type.STATUS | A.Type.KIND:
            return str(v.value)  # type: ignore[attr-defined]
    raise ValueError(f"cannot print a static of type {s.type}")


def format_attribute(a: A.Attribute) -> str:
    prefix = "parent." if a.parent else ""
    if a.scope is not A.Scope.NONE:
        prefix += a.scope.value + "."
    elif not a.parent:
        prefix = "."
    name = a.name
    # ".6x" would lex as the number .6 followed by x
    leading_digit = prefix == "." and "0" <= name[:1] <= "9"
    if not name or leading_digit or '"' in name or not all(is_attribute_rune(c) for c in name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return prefix + name


def _leaf(node: A.Node) -> str:
    if isinstance(node, A.Static | A.Attribute | A.Intrinsic | A.Aggregate | A.SpansetFilter):
        return unparse(node)
    return "(" + unparse(node) + ")"


def _stages(stages: tuple[A.SecondStage, ...]) -> str:
    out = []
    for s in stages:
        if isinstance(s, A.TopK):
            out.append(f" | {s.op}({s.k})")
        else:
            out.append(f" {s.op} {format_static(s.value)}")
    return "".join(out)


def unparse(node: A.Node) -> str:
    """TraceQL text of any node."""
    match node:
        case A.Root():
            text = unparse(node.expr)
            if node.hints:
                text += " with(" + ", ".join(unparse(h) for h in node.hints) + ")"
            return text
        case A.Hint():
            return f"{node.name}={format_static(node.value)}"
        case A.Static():
            return format_static(node)
        case A.Attribute():
            return format_attribute(node)
        case A.Intrinsic():
            return node.name.value
        case A.BinaryOp() | A.ScalarOp() | A.ScalarFilter():
            return f"{_leaf(node.lhs)} {node.op} {_leaf(node.rhs)}"
        case A.UnaryOp():
            return f"{node.op}{_leaf(node.operand)}"
        case A.SpansetFilter():
            return "{ " + unparse(node.expr) + " }"
        case A.SpansetOperation():
            return f"{_leaf(node.lhs)} {node.op} {_leaf(node.rhs)}"
        case A.Pipeline():
            return " | ".join(unparse(s) for s in node.stages)
        case A.Aggregate():
            return f"{node.op}({'' if node.expr is None else unparse(node.expr)})"
        case A.ScalarPipeline():
            return f"{unparse(node.pipeline)} | {unparse(node.aggregate)}"
        case A.GroupBy():
            return f"by({unparse(node.expr)})"
        case A.Coalesce():
            return "coalesce()"
        case A.Select():
            return "select(" + ", ".join(unparse(a) for a in node.attributes) + ")"
        case A.MetricsAggregate():
            args = [] if node.attribute is None else [unparse(node.attribute)]
            args += [format_float(q) for q in node.quantiles]
            text = f"{node.op}({', '.join(args)})"
            if node.by:
                text += " by (" + ", ".join(unparse(a) for a in node.by) + ")"
            return text
        case A.MetricsCompare():
            args = [unparse(node.filter)]
            if node.top_n != 10 or node.start_ns or node.end_ns:
                args.append(str(node.top_n))
            if node.start_ns or node.end_ns:
                args += [str(node.start_ns), str(node.end_ns)]
            return f"compare({', '.join(args)})"
        case A.TopK():
            return f"{node.op}({node.k})"
        case A.MetricsFilter():
            return f"{node.op} {format_static(node.value)}"
        case A.MetricsPipeline():
            return f"{unparse(node.pipeline)} | {unparse(node.function)}{_stages(node.stages)}"
        case A.MetricsMath():
            return f"{_metrics_operand(node.lhs)} {node.op} {_metrics_operand(node.rhs)}"
        case A.MetricsStages():
            inner = node.expr
            text = unparse(inner) if isinstance(inner, A.MetricsMath) else _metrics_operand(inner)
            return text + _stages(node.stages)
    raise TypeError(f"cannot print {type(node).__name__}")


def _metrics_operand(node: A.Node) -> str:
    if isinstance(node, A.Static):
        return format_static(node)
    return "(" + unparse(node) + ")"
