"""Canonical LogQL text for a syntax tree: ``parse(unparse(tree)) == tree`` for parsed trees.

Owns printing only. Operands are parenthesised only where precedence needs it; label filters
are joined with ``and``/``or`` (never ``,``); numeric label filters print ``==``; strings are
double-quoted with Go escapes whatever quotes the query used; durations take the largest
exact unit (``90m``, ``1500ms``), sizes are printed in bytes (``20000000B``).
"""

from __future__ import annotations

import math

from threadline.logql import ast as A

# Go-quoted strings and exact durations are written the same way in TraceQL
from threadline.traceql.printer import format_duration, format_string


def format_number(value: float) -> str:
    """A float as a LogQL number literal (``5``, ``0.99``, ``-1.5``, ``1e+20``)."""
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"{value} cannot be written in LogQL")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_matcher(m: A.Matcher) -> str:
    return f"{m.name}{m.type}{format_string(m.value)}"


def format_selector(s: A.StreamSelector) -> str:
    return "{" + ", ".join(format_matcher(m) for m in s.matchers) + "}"


def format_grouping(g: A.Grouping) -> str:
    return ("without" if g.without else "by") + " (" + ", ".join(g.labels) + ")"


def _line_filter_value(v: A.LineFilterValue) -> str:
    text = format_string(v.value)
    return f"ip({text})" if v.ip else text


def _extractions(items: tuple[A.LabelExtraction, ...]) -> str:
    out = []
    for e in items:
        out.append(e.name if e.name == e.expression else f"{e.name}={format_string(e.expression)}")
    return ", ".join(out)


def _named(items: tuple[str | A.Matcher, ...]) -> str:
    return ", ".join(i if isinstance(i, str) else format_matcher(i) for i in items)


def format_label_filter(f: A.LabelFilter) -> str:
    match f:
        case A.StringFilter():
            return format_matcher(f.matcher)
        case A.NumberFilter():
            return f"{f.name} {f.op} {format_number(f.value)}"
        case A.DurationFilter():
            return f"{f.name} {f.op} {format_duration(f.ns)}"
        case A.BytesFilter():
            return f"{f.name} {f.op} {f.size}B"
        case A.IpFilter():
            op = "=" if f.op is A.CompareOp.EQ else "!="
            return f"{f.name}{op}ip({format_string(f.pattern)})"
        case A.LabelFilterBinary():
            prec = _LOGIC_PREC[f.op]
            lhs = format_label_filter(f.lhs)
            rhs = format_label_filter(f.rhs)
            if isinstance(f.lhs, A.LabelFilterBinary) and _LOGIC_PREC[f.lhs.op] < prec:
                lhs = f"({lhs})"
            if isinstance(f.rhs, A.LabelFilterBinary) and _LOGIC_PREC[f.rhs.op] <= prec:
                rhs = f"({rhs})"
            return f"{lhs} {f.op} {rhs}"
    raise TypeError(f"cannot print {type(f).__name__}")


_LOGIC_PREC = {A.LogicOp.OR: 1, A.LogicOp.AND: 2}


def format_stage(s: A.Stage) -> str:
    match s:
        case A.LineFilter():
            return f"{s.op} " + " or ".join(_line_filter_value(v) for v in s.values)
        case A.JsonParser():
            return "| json" + (" " + _extractions(s.extractions) if s.extractions else "")
        case A.LogfmtParser():
            parts = ["| logfmt", *s.flags]
            if s.extractions:
                parts.append(_extractions(s.extractions))
            return " ".join(parts)
        case A.RegexpParser():
            return f"| regexp {format_string(s.pattern)}"
        case A.PatternParser():
            return f"| pattern {format_string(s.pattern)}"
        case A.UnpackParser():
            return "| unpack"
        case A.LabelFilterStage():
            return "| " + format_label_filter(s.filter)
        case A.LineFormat():
            return f"| line_format {format_string(s.template)}"
        case A.LabelFormat():
            items = (
                f"{i.dst}={format_string(i.value) if i.template else i.value}" for i in s.items
            )
            return "| label_format " + ", ".join(items)
        case A.DropLabels():
            return "| drop " + _named(s.items)
        case A.KeepLabels():
            return "| keep " + _named(s.items)
        case A.Decolorize():
            return "| decolorize"
    raise TypeError(f"cannot print {type(s).__name__}")


def format_log_query(q: A.LogQuery) -> str:
    return " ".join([format_selector(q.selector), *(format_stage(s) for s in q.stages)])


def format_unwrap(u: A.Unwrap) -> str:
    label = f"{u.conversion}({u.label})" if u.conversion else u.label
    return " ".join([f"| unwrap {label}", *("| " + format_label_filter(f) for f in u.post_filters)])


def format_range(r: A.LogRange) -> str:
    text = format_log_query(r.query)
    if r.unwrap is not None:
        text += " " + format_unwrap(r.unwrap)
    if r.query.stages or r.unwrap is not None:
        text += " "
    text += f"[{format_duration(r.range_ns)}]"
    if r.offset_ns:
        text += f" offset {format_duration(r.offset_ns)}"
    return text


def _operand(node: A.MetricExpr, parent: A.BinOp, right: bool) -> str:
    text = unparse(node)
    if isinstance(node, A.BinaryOp):
        prec, parent_prec = node.op.precedence, parent.precedence
        right_assoc = parent is A.BinOp.POW
        if prec < parent_prec or (prec == parent_prec and right != right_assoc):
            return f"({text})"
    return text


def _modifiers(node: A.BinaryOp) -> str:
    parts = [str(node.op)]
    if node.return_bool:
        parts.append("bool")
    m = node.matching
    if m is not None:
        parts.append(("on" if m.on else "ignoring") + " (" + ", ".join(m.labels) + ")")
        if m.group is not None:
            parts.append(f"group_{m.group} (" + ", ".join(m.include) + ")")
    return " ".join(parts)


def unparse(node: A.Expr) -> str:
    """LogQL text of a log or metric query."""
    match node:
        case A.LogQuery():
            return format_log_query(node)
        case A.RangeAggregation():
            args = [format_range(node.range)]
            if node.param is not None:
                args.insert(0, format_number(node.param))
            text = f"{node.op}({', '.join(args)})"
            if node.grouping is not None:
                text += " " + format_grouping(node.grouping)
            return text
        case A.VectorAggregation():
            text = str(node.op)
            if node.grouping is not None:
                text += " " + format_grouping(node.grouping) + " "
            args = [unparse(node.expr)]
            if node.param is not None:
                args.insert(0, str(node.param))
            return f"{text}({', '.join(args)})"
        case A.BinaryOp():
            lhs = _operand(node.lhs, node.op, right=False)
            rhs = _operand(node.rhs, node.op, right=True)
            return f"{lhs} {_modifiers(node)} {rhs}"
        case A.Literal():
            return format_number(node.value)
        case A.VectorLiteral():
            return f"vector({format_number(node.value)})"
        case A.LabelReplace():
            args = [node.dst, node.replacement, node.src, node.regex]
            quoted = ", ".join(format_string(a) for a in args)
            return f"label_replace({unparse(node.expr)}, {quoted})"
    raise TypeError(f"cannot print {type(node).__name__}")
