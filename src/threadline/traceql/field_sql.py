"""Field expressions (what sits inside ``{ }``) as DuckDB SQL over span rows.

An attribute's type is only known per span, so an expression compiles to *channels*: one SQL
expression per runtime type it may have (``str``, ``int``, ``float``, ``bool``, ``status``,
``kind``, ``duration``), each NULL on spans where the value is missing or of another type.
A comparison is true when some pair of compatible channels compares true, so a missing
attribute or a type mismatch never matches (TraceQL's rule), and ``nil`` tests look at every
channel. Boolean results are never NULL: every comparison is wrapped in ``coalesce(.., false)``.

Event and link intrinsics (``event:name``, ``link:traceID`` ...) are true when any of the
span's events or links matches; they compile to a ``list_filter`` over the nested column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from threadline.traceql import sql
from threadline.traceql.ast import (
    Attribute,
    BinaryOp,
    BinaryOperator,
    FieldExpr,
    Intrinsic,
    IntrinsicName,
    Kind,
    Scope,
    Static,
    Status,
    Type,
    UnaryOp,
    UnaryOperator,
)

NUMERIC = ("int", "float", "duration")
STATUS_CODES = {Status.UNSET: 0, Status.OK: 1, Status.ERROR: 2}
KIND_CODES = {
    Kind.UNSPECIFIED: 0,
    Kind.INTERNAL: 1,
    Kind.SERVER: 2,
    Kind.CLIENT: 3,
    Kind.PRODUCER: 4,
    Kind.CONSUMER: 5,
}
STATUS_NAMES_SQL = "CASE status_code WHEN 2 THEN 'error' WHEN 1 THEN 'ok' ELSE 'unset' END"
KIND_NAMES_SQL = (
    "CASE kind WHEN 1 THEN 'internal' WHEN 2 THEN 'server' WHEN 3 THEN 'client' "
    "WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' ELSE 'unspecified' END"
)

_INTRINSICS: dict[IntrinsicName, tuple[str, str]] = {
    IntrinsicName.DURATION: ("duration", "duration_nano"),
    IntrinsicName.NAME: ("str", "name"),
    IntrinsicName.STATUS: ("status", "status_code"),
    IntrinsicName.STATUS_MESSAGE: ("str", "status_message"),
    IntrinsicName.KIND: ("kind", "kind"),
    IntrinsicName.CHILD_COUNT: ("int", "child_count"),
    IntrinsicName.SPAN_ID: ("str", "lower(hex(span_id))"),
    IntrinsicName.PARENT_ID: ("str", "lower(hex(parent_span_id))"),
    IntrinsicName.TRACE_DURATION: ("duration", "trace_duration_nano"),
    IntrinsicName.ROOT_NAME: ("str", "root_span_name"),
    IntrinsicName.ROOT_SERVICE_NAME: ("str", "root_service_name"),
    IntrinsicName.TRACE_ID: ("str", "lower(hex(trace_id))"),
    IntrinsicName.INSTRUMENTATION_NAME: ("str", "scope_name"),
    IntrinsicName.INSTRUMENTATION_VERSION: ("str", "scope_version"),
    IntrinsicName.NESTED_SET_LEFT: ("int", "nest_left"),
    IntrinsicName.NESTED_SET_RIGHT: ("int", "nest_right"),
    IntrinsicName.NESTED_SET_PARENT: ("int", "nest_parent"),
}
# per-event / per-link intrinsics: (list column, channel, SQL over the element "x")
_NESTED: dict[IntrinsicName, tuple[str, str, str]] = {
    IntrinsicName.EVENT_NAME: ("events", "str", "x.name"),
    IntrinsicName.EVENT_TIME_SINCE_START: (
        "events",
        "duration",
        "x.time_unix_nano - start_unix_nano",
    ),
    IntrinsicName.LINK_TRACE_ID: ("links", "str", "lower(hex(x.trace_id))"),
    IntrinsicName.LINK_SPAN_ID: ("links", "str", "lower(hex(x.span_id))"),
}
_MAP_CHANNELS = (("str", "str"), ("int", "int"), ("float", "float"), ("bool", "bool"))


class CompileError(ValueError):
    """A query this engine cannot run; the message says what and why."""


@dataclass(frozen=True, slots=True)
class Channels:
    """SQL per runtime type; ``raw`` (array/kvlist/bytes values) only matters for nil tests;
    ``arrays`` gives, per element type, the list of an array value's elements of that type."""

    by_type: dict[str, str]
    raw: tuple[str, ...] = ()
    nested: str | None = None  # "events"/"links" when the expression reads element "x"
    arrays: dict[str, str] = field(default_factory=dict)


_COLUMN_PREFIX = {
    Scope.SPAN: ("span",),
    Scope.RESOURCE: ("resource",),
    Scope.INSTRUMENTATION: ("scope",),
    # unscoped: span first, then resource (Tempo's rule: never scope, event or link attributes)
    Scope.NONE: ("span", "resource"),
}
_NESTED_SCOPES = {Scope.EVENT: "events", Scope.LINK: "links"}


def _attribute(node: Attribute) -> Channels:
    if node.parent:
        raise CompileError("parent.* attributes are not supported")
    if node.scope in _NESTED_SCOPES:
        key = sql.string(node.name)
        by_type = {channel: f"x.attrs_{column}[{key}]" for channel, column in _MAP_CHANNELS}
        raw = f"x.attrs_raw[{key}]"
        arrays = {channel: sql.raw_array(channel, raw) for channel, _ in _MAP_CHANNELS}
        return Channels(by_type, raw=(raw,), nested=_NESTED_SCOPES[node.scope], arrays=arrays)
    if node.scope is Scope.RESOURCE and node.name == "service.name":
        # a column of its own: map lookups per row cost ten times more
        return Channels(
            {"str": "nullif(service_name, '')"}, raw=(sql.attr("resource", "raw", node.name),)
        )
    scopes = _COLUMN_PREFIX[node.scope]

    def first(column: str) -> str:
        lookups = [sql.attr(s, column, node.name) for s in scopes]
        return lookups[0] if len(lookups) == 1 else f"coalesce({', '.join(lookups)})"

    by_type = {channel: first(column) for channel, column in _MAP_CHANNELS}
    arrays = {channel: first(f"arr_{channel}") for channel, _ in _MAP_CHANNELS}
    raw = tuple(sql.attr(s, "raw", node.name) for s in scopes)
    return Channels(by_type, raw=raw, arrays=arrays)


def _static(node: Static) -> Channels:
    t, v = node.type, node.value
    if t is Type.STRING:
        return Channels({"str": sql.string(str(v))})
    if t is Type.INT:
        return Channels({"int": sql.number(int(v))})  # type: ignore[call-overload]
    if t is Type.FLOAT:
        return Channels({"float": sql.number(float(v))})  # type: ignore[arg-type]
    if t is Type.BOOL:
        return Channels({"bool": "true" if v else "false"})
    if t is Type.DURATION:
        return Channels({"duration": sql.number(int(v))})  # type: ignore[call-overload]
    if t is Type.STATUS:
        return Channels({"status": str(STATUS_CODES[v])})  # type: ignore[index]
    if t is Type.KIND:
        return Channels({"kind": str(KIND_CODES[v])})  # type: ignore[index]
    return Channels({})  # nil


def channels(node: FieldExpr) -> Channels:
    if isinstance(node, Static):
        return _static(node)
    if isinstance(node, Attribute):
        return _attribute(node)
    if isinstance(node, Intrinsic):
        if node.name in _NESTED:
            column, channel, expr = _NESTED[node.name]
            return Channels({channel: expr}, nested=column)
        if node.name not in _INTRINSICS:
            raise CompileError(f"{node.name.value} is not supported")
        channel, column = _INTRINSICS[node.name]
        return Channels({channel: column})
    if isinstance(node, UnaryOp):
        inner = channels(node.operand)
        if node.op is UnaryOperator.NOT:
            # NULL (no boolean value) stays NULL: a missing attribute matches nothing
            b = inner.by_type.get("bool")
            return Channels({"bool": f"(NOT ({b}))"} if b else {}, nested=inner.nested)
        neg = {t: f"(-({e}))" for t, e in inner.by_type.items() if t in NUMERIC}
        return Channels(neg, nested=inner.nested)
    if isinstance(node, BinaryOp):
        return _binary(node)
    raise CompileError(f"unexpected expression {type(node).__name__}")


def truthy(ch: Channels) -> str:
    """SQL that is true exactly when the expression is boolean true (never NULL)."""
    b = ch.by_type.get("bool")
    if b is None:
        return "false"
    if ch.nested:  # a bare event/link attribute: true when any element has it true
        return f"(len(list_filter({ch.nested}, lambda x: coalesce({b}, false))) > 0)"
    return f"coalesce({b}, false)"


def _numeric_view(ch: Channels) -> tuple[str | None, str | None]:
    """(integer-valued SQL, double SQL) of a numeric expression; either may be None."""
    ints = [ch.by_type[t] for t in ("int", "duration") if t in ch.by_type]
    whole = ints[0] if len(ints) == 1 else (f"coalesce({', '.join(ints)})" if ints else None)
    parts = [f"CAST({e} AS DOUBLE)" for e in ints]
    if "float" in ch.by_type:
        parts.insert(0, ch.by_type["float"])
    real = None if not parts else parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    return whole, real


def _nested_of(a: Channels, b: Channels) -> str | None:
    if a.nested and b.nested and a.nested != b.nested:
        raise CompileError("an expression cannot mix event and link fields")
    return a.nested or b.nested


def _arith(op: BinaryOperator, a: Channels, b: Channels) -> Channels:
    nested = _nested_of(a, b)
    ai, af = _numeric_view(a)
    bi, bf = _numeric_view(b)
    out: dict[str, str] = {}
    is_duration = "duration" in a.by_type or "duration" in b.by_type
    int_channel = "duration" if is_duration else "int"
    if ai and bi and op is not BinaryOperator.POW:
        sym = {"/": "//"}.get(op.value, op.value)
        expr = f"(({ai}) {sym} NULLIF({bi}, 0))" if op in ("/", "%") else f"(({ai}) {sym} ({bi}))"
        out[int_channel] = expr
    if af and bf:
        if op is BinaryOperator.POW:
            out["float"] = f"pow({af}, {bf})"
        elif op in ("/", "%"):
            out["float"] = f"(({af}) {op.value} NULLIF({bf}, 0))"
        else:
            out["float"] = f"(({af}) {op.value} ({bf}))"
    return Channels(out, nested=nested)


def _exists(ch: Channels) -> str:
    parts = [f"{e} IS NOT NULL" for e in (*ch.by_type.values(), *ch.raw)]
    return "(" + " OR ".join(parts) + ")" if parts else "false"


_FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _element_terms(op: BinaryOperator, arrays: dict[str, str], b: Channels) -> list[str]:
    """Terms true when some element of an array value compares true with ``b`` (element by
    element, typed as scalars are): ``!=`` and ``!~`` hold when some element differs."""
    terms = []
    for t, items in arrays.items():
        cond = compare(op, Channels({t: "el"}), b)
        if cond != "false":
            terms.append(f"len(list_filter({items}, lambda el: {cond})) > 0")
    return terms


def compare(op: BinaryOperator, a: Channels, b: Channels) -> str:
    """SQL boolean (never NULL) for ``a op b``."""
    if not b.by_type and not b.raw:  # x = nil / x != nil
        return f"(NOT {_exists(a)})" if op is BinaryOperator.EQ else _exists(a)
    if not a.by_type and not a.raw:
        return f"(NOT {_exists(b)})" if op is BinaryOperator.EQ else _exists(b)
    if b.arrays and not a.arrays and not op.is_regex:
        a, b, op = b, a, BinaryOperator(_FLIPPED.get(op.value, op.value))
    if a.arrays and not b.arrays:
        scalar = compare(op, Channels(a.by_type), b)
        terms = [sql.if_present(f"coalesce({t}, false)") for t in _element_terms(op, a.arrays, b)]
        if not terms:
            return scalar
        return "(" + " OR ".join([scalar, *terms]) + ")"
    if op.is_regex:
        la, lb = a.by_type.get("str"), b.by_type.get("str")
        if la is None or lb is None:
            return "false"
        match = f"regexp_full_match({la}, {lb}, 's')"  # Tempo: fully anchored, (?s)
        return f"coalesce({'NOT ' if op is BinaryOperator.NOT_REGEX else ''}{match}, false)"
    sym = {"=": "=", "!=": "<>"}.get(op.value, op.value)
    terms = []
    for t in ("str", "bool", "status", "kind"):
        if t in a.by_type and t in b.by_type:
            if t in ("bool", "status", "kind") and op not in ("=", "!="):
                continue
            terms.append(f"({a.by_type[t]}) {sym} ({b.by_type[t]})")
    ai, af = _numeric_view(a)
    bi, bf = _numeric_view(b)
    if ai and bi:
        terms.append(f"({ai}) {sym} ({bi})")
    # mixed int/float pairs compare as doubles
    if af and bf and ("float" in a.by_type or "float" in b.by_type):
        terms.append(f"({af}) {sym} ({bf})")
    if not terms:
        return "false"
    return "coalesce(" + " OR ".join(f"coalesce({t}, false)" for t in terms) + ", false)"


# ids compared as bytes: (column, width); a literal may omit leading zeros (as Tempo prints
# trace ids) or be a 64-bit id, so it is left-padded to the column's width
_ID_BYTES: dict[IntrinsicName, tuple[str, int]] = {
    IntrinsicName.TRACE_ID: ("trace_id", 16),
    IntrinsicName.SPAN_ID: ("span_id", 8),
    IntrinsicName.PARENT_ID: ("parent_span_id", 8),
    IntrinsicName.LINK_TRACE_ID: ("x.trace_id", 16),
    IntrinsicName.LINK_SPAN_ID: ("x.span_id", 8),
}
_HEX = frozenset("0123456789abcdef")


def _id_comparison(node: BinaryOp) -> str | None:
    """SQL for ``id = "hex"`` / ``id != "hex"`` as a byte comparison, or None when ``node``
    is not one (a literal that is no id of that width compares as text: never equal)."""
    if node.op not in (BinaryOperator.EQ, BinaryOperator.NEQ):
        return None
    pair = (node.lhs, node.rhs)
    ids = [n for n in pair if isinstance(n, Intrinsic) and n.name in _ID_BYTES]
    texts = [n for n in pair if isinstance(n, Static) and n.type is Type.STRING]
    if len(ids) != 1 or len(texts) != 1:
        return None
    column, width = _ID_BYTES[ids[0].name]  # type: ignore[union-attr]
    digits = str(texts[0].value).lower()
    if not digits or len(digits) > 2 * width or not set(digits) <= _HEX:
        return None
    sym = "=" if node.op is BinaryOperator.EQ else "<>"
    return f"coalesce({column} {sym} unhex('{digits.rjust(2 * width, '0')}'), false)"


def _binary(node: BinaryOp) -> Channels:
    op = node.op
    if op.is_logical:
        a, b = channels(node.lhs), channels(node.rhs)
        joiner = " AND " if op is BinaryOperator.AND else " OR "
        return Channels({"bool": f"({truthy(a)}{joiner}{truthy(b)})"})
    a, b = channels(node.lhs), channels(node.rhs)
    if op.is_arithmetic:
        return _arith(op, a, b)
    nested = _nested_of(a, b)
    cond = _id_comparison(node) or compare(op, a, b)
    if nested:
        cond = f"(len(list_filter({nested}, lambda x: {cond})) > 0)"
    return Channels({"bool": cond})


def present(expr: FieldExpr) -> str:
    """SQL true on spans where ``expr`` has a value (of any type)."""
    ch = channels(expr)
    if ch.nested:
        return f"(len(list_filter({ch.nested}, lambda x: {_exists(ch)})) > 0)"
    return _exists(ch)


def condition(expr: FieldExpr) -> str:
    """The SQL boolean for a spanset filter's expression over one span row."""
    return truthy(channels(expr))


def value_json(expr: FieldExpr) -> str:
    """SQL giving an OTLP JSON AnyValue (text) of the expression, NULL when it has no value."""
    if isinstance(expr, Intrinsic) and expr.name is IntrinsicName.STATUS:
        return f"json_object('stringValue', {STATUS_NAMES_SQL})"
    if isinstance(expr, Intrinsic) and expr.name is IntrinsicName.KIND:
        return f"json_object('stringValue', {KIND_NAMES_SQL})"
    ch = channels(expr)
    if ch.nested:
        raise CompileError("event and link fields cannot be grouped or selected")
    cases = []
    for t, e in ch.by_type.items():
        if t == "str":
            cases.append(f"WHEN {e} IS NOT NULL THEN json_object('stringValue', {e})")
        elif t in ("int", "duration"):
            cases.append(f"WHEN {e} IS NOT NULL THEN json_object('intValue', CAST({e} AS VARCHAR))")
        elif t == "float":
            cases.append(f"WHEN {e} IS NOT NULL THEN json_object('doubleValue', {e})")
        elif t == "bool":
            cases.append(f"WHEN {e} IS NOT NULL THEN json_object('boolValue', {e})")
    if ch.arrays:
        # an array's elements, grouped by type (their order across types is not kept)
        names = {"str": "stringValue", "int": "intValue", "float": "doubleValue"}
        parts, present = [], []
        for t, items in ch.arrays.items():
            value = "CAST(el AS VARCHAR)" if t == "int" else "el"
            name = names.get(t, "boolValue")
            parts.append(
                f"coalesce(list_transform({items}, lambda el: json_object('{name}', {value})), [])"
            )
            present.append(f"{items} IS NOT NULL")
        values = parts[0] if len(parts) == 1 else f"list_concat({', '.join(parts)})"
        cases.append(
            f"WHEN {' OR '.join(present)} THEN "
            f"json_object('arrayValue', json_object('values', {values}))"
        )
    if not cases:
        return "NULL"
    return "CAST(CASE " + " ".join(cases) + " END AS VARCHAR)"


def label_sql(expr: FieldExpr) -> tuple[str, str | None]:
    """SQL of a grouping value as ``struct(s, i, f, b)`` (one field set, or none for nil) and
    the enum it holds if it is a status or kind: cheap to group by; ``label_value`` turns the
    grouped struct into an OTLP JSON value."""
    if isinstance(expr, Intrinsic) and expr.name is IntrinsicName.STATUS:
        return f"struct_pack(s := {STATUS_NAMES_SQL})", None
    if isinstance(expr, Intrinsic) and expr.name is IntrinsicName.KIND:
        return f"struct_pack(s := {KIND_NAMES_SQL})", None
    ch = channels(expr)
    if ch.nested:
        raise CompileError("event and link fields cannot be grouped or selected")
    fields = {"s": ch.by_type.get("str"), "f": ch.by_type.get("float"), "b": ch.by_type.get("bool")}
    ints = [ch.by_type[t] for t in ("int", "duration") if t in ch.by_type]
    fields["i"] = ints[0] if ints else None
    packed = ", ".join(f"{k} := {v}" for k, v in fields.items() if v is not None)
    return (f"struct_pack({packed})" if packed else "NULL"), None


def label_value(value: dict[str, object] | None) -> dict[str, object]:
    """The OTLP JSON value of a struct made by ``label_sql`` ({} for nil)."""
    if not value:
        return {}
    for key, name in (
        ("s", "stringValue"),
        ("i", "intValue"),
        ("f", "doubleValue"),
        ("b", "boolValue"),
    ):
        v = value.get(key)
        if v is not None:
            return {name: str(v) if key == "i" else v}
    return {}
