"""LogQL evaluated over stored log lines (``logstore``), for Loki's query API.

A line's stream labels are ``service_name``, ``level`` (from its severity) and its resource's
string attributes (dots written as underscores, as Loki names OTLP resource attributes); its
structured metadata are its own string attributes and ``trace_id`` / ``span_id``. Selectors and
line filters run columnwise on Arrow; parser stages (``json``, ``logfmt``), label filters and
``line_format`` run line by line on what is left. Metric queries count per series with sorted
times and ``searchsorted`` at every step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from threadline.logql import ast

Labels = tuple[tuple[str, str], ...]


class LogQLError(ValueError):
    """A query this engine cannot answer (names what); an HTTP 400."""


_LEVELS = ((21, "fatal"), (17, "error"), (13, "warn"), (9, "info"), (5, "debug"), (1, "trace"))


def level_of(number: int, text: str) -> str:
    if text:
        return text.lower()
    for floor, name in _LEVELS:
        if number >= floor:
            return name
    return "unknown"


def label_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def stream_labels(row: dict[str, Any]) -> dict[str, str]:
    out = {label_name(k): v for k, v in row["resource_attrs_str"] if k != "service.name"}
    out["service_name"] = row["service_name"]
    out["level"] = level_of(row["severity_number"], row["severity_text"])
    return out


def _label_column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """The value of stream label ``name`` per line ("" when the line has none)."""
    if name == "service_name":
        return table.column("service_name")
    if name == "level":
        texts = pc.utf8_lower(table.column("severity_text"))
        numbers = table.column("severity_number").to_numpy()
        fallback = np.full(len(numbers), "unknown", dtype=object)
        for floor, level in reversed(_LEVELS):
            fallback[numbers >= floor] = level
        return pc.if_else(pc.equal(texts, ""), pa.array(fallback, pa.string()), texts)
    keys = table.column("resource_attrs_str")
    # a label stands for the attribute whose name it spells with dots made underscores
    values = pc.map_lookup(keys, name, "first")
    if "_" in name:
        for dotted in {name.replace("_", "."), *_dotted_variants(name)}:
            values = pc.coalesce(values, pc.map_lookup(keys, dotted, "first"))
    return pc.fill_null(values, "")


def _dotted_variants(name: str) -> Iterable[str]:
    parts = name.split("_")
    for i in range(1, len(parts)):
        yield ".".join(["_".join(parts[:i]), *parts[i:]])
        yield ".".join([*parts[:i], "_".join(parts[i:])])


def _anchored(regex: str) -> str:
    return f"^(?:{regex})$"


def _matcher_mask(column: pa.ChunkedArray, m: ast.Matcher) -> pa.ChunkedArray:
    if m.type is ast.MatchType.EQ:
        return pc.equal(column, m.value)
    if m.type is ast.MatchType.NEQ:
        return pc.not_equal(column, m.value)
    hit = pc.match_substring_regex(column, _anchored(m.value))
    return hit if m.type is ast.MatchType.RE else pc.invert(hit)


def _line_filter_mask(body: pa.ChunkedArray, f: ast.LineFilter) -> pa.ChunkedArray:
    op = f.op
    if op in (ast.LineFilterOp.CONTAINS, ast.LineFilterOp.NOT_CONTAINS):
        hits = [pc.match_substring(body, v.value) for v in f.values]
    elif op in (ast.LineFilterOp.MATCH, ast.LineFilterOp.NOT_MATCH):
        hits = [pc.match_substring_regex(body, v.value) for v in f.values]
    else:
        raise LogQLError(f"line filter {op.value!r} is not supported yet")
    if any(v.ip for v in f.values):
        raise LogQLError("ip() line filters are not supported yet")
    hit = hits[0]
    for h in hits[1:]:
        hit = pc.or_(hit, h)
    return pc.invert(hit) if op in _NEGATED else hit


_NEGATED = (ast.LineFilterOp.NOT_CONTAINS, ast.LineFilterOp.NOT_MATCH)
_LOGFMT = re.compile(r'([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))')
_TEMPLATE_FIELD = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}_{label_name(k)}" if prefix else label_name(k), v, out)
    elif isinstance(value, list):
        return  # Loki's json parser leaves arrays out
    elif value is None:
        out[prefix] = ""
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    else:
        out[prefix] = str(value)


def _parse_json(line: str, labels: dict[str, str], p: ast.JsonParser) -> None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        labels["__error__"] = "JSONParserErr"
        return
    if p.extractions:
        for e in p.extractions:
            value: Any = doc
            for part in re.findall(r"[^.\[\]\"]+", e.expression):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                labels[e.name] = value if isinstance(value, str) else orjson.dumps(value).decode()
        return
    if isinstance(doc, dict):
        found: dict[str, str] = {}
        _flatten("", doc, found)
        for k, v in found.items():
            labels[f"{k}_extracted" if k in labels and k != "__error__" else k] = v


def _parse_logfmt(line: str, labels: dict[str, str], p: ast.LogfmtParser) -> None:
    found = {m[1]: (m[2] if m[2] is not None else m[3]) for m in _LOGFMT.finditer(line)}
    if p.extractions:
        for e in p.extractions:
            if e.expression in found:
                labels[e.name] = found[e.expression]
        return
    for k, v in found.items():
        if v or "--keep-empty" in p.flags:
            name = label_name(k)
            labels[f"{name}_extracted" if name in labels else name] = v


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_UNITS_NS = {
    "ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
}  # fmt: skip
_UNITS_B = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def _as_number(text: str) -> float | None:
    return float(text) if _NUMBER.match(text.strip()) else None


def _as_unit(text: str, units: dict[str, int]) -> float | None:
    total, pos = 0.0, 0
    text = text.strip().lower()
    for m in re.finditer(r"(\d+(?:\.\d+)?)([a-zµ]+)", text):
        if m.start() != pos or m[2] not in units:
            return None
        total += float(m[1]) * units[m[2]]
        pos = m.end()
    return total if pos == len(text) and text else None


_COMPARE: dict[ast.CompareOp, Callable[[float, float], bool]] = {
    ast.CompareOp.EQ: lambda a, b: a == b,
    ast.CompareOp.NEQ: lambda a, b: a != b,
    ast.CompareOp.GT: lambda a, b: a > b,
    ast.CompareOp.GTE: lambda a, b: a >= b,
    ast.CompareOp.LT: lambda a, b: a < b,
    ast.CompareOp.LTE: lambda a, b: a <= b,
}


def _compare(op: ast.CompareOp, a: float, b: float) -> bool:
    return _COMPARE[op](a, b)


def _label_filter(f: ast.LabelFilter, labels: dict[str, str]) -> bool:
    if isinstance(f, ast.LabelFilterBinary):
        left = _label_filter(f.lhs, labels)
        if f.op is ast.LogicOp.OR:
            return left or _label_filter(f.rhs, labels)
        return left and _label_filter(f.rhs, labels)
    if isinstance(f, ast.StringFilter):
        m = f.matcher
        value = labels.get(m.name, "")
        if m.type is ast.MatchType.EQ:
            return value == m.value
        if m.type is ast.MatchType.NEQ:
            return value != m.value
        hit = re.fullmatch(m.value, value) is not None
        return hit if m.type is ast.MatchType.RE else not hit
    if isinstance(f, ast.NumberFilter):
        number = _as_number(labels.get(f.name, ""))
        return number is not None and _compare(f.op, number, f.value)
    if isinstance(f, ast.DurationFilter):
        ns = _as_unit(labels.get(f.name, ""), _UNITS_NS)
        return ns is not None and _compare(f.op, ns, f.ns)
    if isinstance(f, ast.BytesFilter):
        size = _as_unit(labels.get(f.name, ""), _UNITS_B)
        return size is not None and _compare(f.op, size, f.size)
    raise LogQLError(f"label filter {type(f).__name__} is not supported yet")


@dataclass(slots=True)
class Line:
    ns: int
    text: str
    labels: dict[str, str]


@dataclass
class Selected:
    """The lines a log query keeps, with their labels (stream + extracted)."""

    lines: list[Line] = field(default_factory=list)


def _selector_mask(table: pa.Table, selector: ast.StreamSelector) -> pa.ChunkedArray | None:
    mask = None
    for m in selector.matchers:
        hit = _matcher_mask(_label_column(table, m.name), m)
        mask = hit if mask is None else pc.and_(mask, hit)
    return mask


def select_lines(table: pa.Table, query: ast.LogQuery) -> list[Line]:
    """Evaluate ``query`` over ``table`` (log rows)."""
    mask = _selector_mask(table, query.selector)
    if mask is not None:
        table = table.filter(mask)
    stages = list(query.stages)
    # leading line filters columnwise, on the original line
    while stages and isinstance(stages[0], ast.LineFilter):
        table = table.filter(_line_filter_mask(table.column("body"), stages.pop(0)))
    out: list[Line] = []
    for row in table.to_pylist():
        labels = stream_labels(row)
        metadata = {label_name(k): v for k, v in row["log_attrs_str"]}
        if row["trace_id"]:
            metadata["trace_id"] = row["trace_id"].hex()
        if row["span_id"]:
            metadata["span_id"] = row["span_id"].hex()
        line = Line(row["time_unix_nano"], row["body"], {**labels, **metadata})
        if _run_stages(line, stages):
            out.append(line)
    return out


def _run_stages(line: Line, stages: list[ast.Stage]) -> bool:
    for st in stages:
        if isinstance(st, ast.LineFilter):
            if not _line_matches(line.text, st):
                return False
        elif isinstance(st, ast.JsonParser):
            _parse_json(line.text, line.labels, st)
        elif isinstance(st, ast.LogfmtParser):
            _parse_logfmt(line.text, line.labels, st)
        elif isinstance(st, ast.LabelFilterStage):
            if not _label_filter(st.filter, line.labels):
                return False
        elif isinstance(st, ast.LineFormat):
            line.text = _TEMPLATE_FIELD.sub(lambda m: line.labels.get(m[1], ""), st.template)
            if "{{" in line.text:
                raise LogQLError("line_format supports {{.label}} fields only, for now")
        elif isinstance(st, ast.DropLabels):
            for item in st.items:
                if isinstance(item, str):
                    line.labels.pop(item, None)
        elif isinstance(st, ast.KeepLabels):
            keep = {i for i in st.items if isinstance(i, str)}
            line.labels = {k: v for k, v in line.labels.items() if k in keep}
        elif isinstance(st, ast.Decolorize):
            line.text = re.sub(r"\x1b\[[0-9;]*m", "", line.text)
        else:
            raise LogQLError(f"the {type(st).__name__} stage is not supported yet")
    return True


def _line_matches(text: str, f: ast.LineFilter) -> bool:
    op = f.op
    if op in (ast.LineFilterOp.CONTAINS, ast.LineFilterOp.NOT_CONTAINS):
        hit = any(v.value in text for v in f.values)
    elif op in (ast.LineFilterOp.MATCH, ast.LineFilterOp.NOT_MATCH):
        hit = any(re.search(v.value, text) for v in f.values)
    else:
        raise LogQLError(f"line filter {op.value!r} is not supported yet")
    return not hit if op in _NEGATED else hit


# -- metric queries ------------------------------------------------------------------------------

Series = dict[Labels, np.ndarray]  # labels -> value per step (NaN: no sample)


def _key(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if v != "" and k != "__error__"))


def range_aggregation(lines: list[Line], agg: ast.RangeAggregation, steps: np.ndarray) -> Series:
    rng, offset = agg.range.range_ns, agg.range.offset_ns
    if agg.range.unwrap is not None:
        raise LogQLError("unwrapped range aggregations are not supported yet")
    by: dict[Labels, list[Line]] = {}
    for line in lines:
        by.setdefault(_key(line.labels), []).append(line)
    out: Series = {}
    hi = steps - offset
    lo = hi - rng
    for labels, group in by.items():
        group.sort(key=lambda ln: ln.ns)
        times = np.array([ln.ns for ln in group], dtype=np.int64)
        # a window is (t - range, t]: lines after lo, up to and with hi
        a = np.searchsorted(times, lo, side="right")
        b = np.searchsorted(times, hi, side="right")
        op = agg.op
        if op in (ast.RangeOp.COUNT_OVER_TIME, ast.RangeOp.RATE):
            values = (b - a).astype(np.float64)
        elif op in (ast.RangeOp.BYTES_OVER_TIME, ast.RangeOp.BYTES_RATE):
            sizes = np.concatenate([[0], np.cumsum([len(ln.text.encode()) for ln in group])])
            values = (sizes[b] - sizes[a]).astype(np.float64)
        elif op is ast.RangeOp.ABSENT_OVER_TIME:
            continue
        else:
            raise LogQLError(f"{op.value} is not supported yet")
        if op in (ast.RangeOp.RATE, ast.RangeOp.BYTES_RATE):
            values = values / (rng / 1e9)
        values[b == a] = math.nan  # no line in the window: no sample
        if not np.all(np.isnan(values)):
            out[labels] = values
    if agg.grouping is not None:
        out = _group(out, agg.grouping, np.nansum)
    return out


def _group(series: Series, grouping: ast.Grouping, reduce: Callable[..., Any]) -> Series:
    groups: dict[Labels, list[np.ndarray]] = {}
    for labels, values in series.items():
        if grouping.without:
            key = tuple((k, v) for k, v in labels if k not in grouping.labels)
        else:
            key = tuple((k, v) for k, v in labels if k in grouping.labels)
        groups.setdefault(key, []).append(values)
    out: Series = {}
    for key, rows in groups.items():
        stack = np.vstack(rows)
        present = ~np.all(np.isnan(stack), axis=0)
        values = np.full(stack.shape[1], math.nan)
        with np.errstate(all="ignore"):
            values[present] = reduce(stack[:, present], axis=0)
        out[key] = values
    return out


def _count(stack: np.ndarray, axis: int) -> np.ndarray:
    return np.sum(~np.isnan(stack), axis=axis).astype(np.float64)


_VECTOR: dict[str, Callable[..., Any]] = {
    "sum": np.nansum,
    "avg": np.nanmean,
    "min": np.nanmin,
    "max": np.nanmax,
    "count": _count,
    "stddev": np.nanstd,
    "stdvar": np.nanvar,
}


def _topk(series: Series, k: int, largest: bool, grouping: ast.Grouping | None) -> Series:
    out: Series = {key: np.full_like(v, math.nan) for key, v in series.items()}
    keys = list(series)
    if not keys:
        return {}
    stack = np.vstack([series[key] for key in keys])
    for step in range(stack.shape[1]):
        column = stack[:, step]
        present = np.flatnonzero(~np.isnan(column))
        ranked = sorted(present, key=lambda i: column[i], reverse=largest)[:k]
        for i in ranked:
            out[keys[i]][step] = column[i]
    del grouping
    return {key: v for key, v in out.items() if not np.all(np.isnan(v))}


_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
}


@dataclass
class Evaluator:
    """Evaluates a query over the lines ``fetch(start_ns, end_ns)`` gives."""

    fetch: Callable[[int, int], pa.Table]

    def lines(self, query: ast.LogQuery, start_ns: int, end_ns: int) -> list[Line]:
        return select_lines(self.fetch(start_ns, end_ns), query)

    def metric(self, expr: ast.MetricExpr, steps: np.ndarray) -> Series | float:
        if isinstance(expr, ast.Literal):
            return float(expr.value)
        if isinstance(expr, ast.RangeAggregation):
            r = expr.range
            lo = int(steps.min()) - r.range_ns - r.offset_ns
            hi = int(steps.max()) - r.offset_ns
            return range_aggregation(self.lines(r.query, lo + 1, hi), expr, steps)
        if isinstance(expr, ast.VectorAggregation):
            inner = self.metric(expr.expr, steps)
            if not isinstance(inner, dict):
                raise LogQLError(f"{expr.op.value} needs a range or vector expression")
            op = expr.op.value
            if op in ("topk", "bottomk"):
                return _topk(inner, int(expr.param or 1), op == "topk", expr.grouping)
            if op not in _VECTOR:
                raise LogQLError(f"{op} is not supported yet")
            grouping = expr.grouping or ast.Grouping(without=False, labels=())
            return _group(inner, grouping, _VECTOR[op])
        if isinstance(expr, ast.BinaryOp):
            lhs, rhs = self.metric(expr.lhs, steps), self.metric(expr.rhs, steps)
            fn = _BINARY.get(expr.op.value)
            if fn is None:
                raise LogQLError(f"the {expr.op.value!r} operator is not supported yet")
            if isinstance(lhs, float) and isinstance(rhs, float):
                return float(fn(np.float64(lhs), np.float64(rhs)))
            if isinstance(rhs, float):
                return {k: fn(v, rhs) for k, v in lhs.items()}  # type: ignore[union-attr]
            if isinstance(lhs, float):
                return {k: fn(lhs, v) for k, v in rhs.items()}
            with np.errstate(all="ignore"):
                return {k: fn(v, rhs[k]) for k, v in lhs.items() if k in rhs}
        raise LogQLError(f"{type(expr).__name__} is not supported yet")


# -- results as Loki's API shapes them --------------------------------------------------------

_STREAM_LABELS_DROPPED = frozenset({"trace_id", "span_id"})


def stream_key(line: Line) -> tuple[tuple[str, str], ...]:
    """The line's labels without the per-line trace and span ids (what ``/series`` lists)."""
    return tuple(
        sorted((k, v) for k, v in line.labels.items() if v and k not in _STREAM_LABELS_DROPPED)
    )


def loki_streams(lines: list[Line], limit: int, forward: bool) -> list[dict[str, Any]]:
    """Loki's ``streams`` result: the first ``limit`` lines in time order (newest first unless
    ``forward``), grouped by their labels: stream labels, structured metadata (the trace and
    span ids among them) and parsed labels, as Loki answers without label categories."""
    lines.sort(key=lambda line: line.ns, reverse=not forward)
    by: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
    for line in lines[:limit]:
        key = tuple(sorted((k, v) for k, v in line.labels.items() if v))
        by.setdefault(key, []).append([str(line.ns), line.text])
    return [{"stream": dict(key), "values": values} for key, values in by.items()]


def loki_number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return format(v, "g") if v != int(v) else str(int(v))


def loki_matrix(series: Series | float, steps: np.ndarray) -> list[dict[str, Any]]:
    """Loki's ``matrix`` result: per series, [seconds, value] at the steps that have one."""
    if isinstance(series, float):
        series = {(): np.full(len(steps), series)}
    out = []
    for labels, values in sorted(series.items()):
        points = [
            [t / 1e9, loki_number(v)]
            for t, v in zip(steps.tolist(), values.tolist(), strict=True)
            if not math.isnan(v)
        ]
        if points:
            out.append({"metric": dict(labels), "values": points})
    return out
