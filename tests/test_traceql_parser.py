"""TraceQL front end: exact tree shapes, literals, scopes, intrinsics, errors and validation."""

from __future__ import annotations

import pytest

from threadline.traceql import (
    Aggregate,
    AggregateOp,
    Attribute,
    BinaryOp,
    BinaryOperator,
    Coalesce,
    GroupBy,
    Hint,
    Intrinsic,
    IntrinsicName,
    Kind,
    MetricsAggregate,
    MetricsCompare,
    MetricsFilter,
    MetricsMath,
    MetricsOp,
    MetricsPipeline,
    MetricsStages,
    Pipeline,
    Root,
    ScalarFilter,
    ScalarOp,
    ScalarPipeline,
    Scope,
    SecondStageOp,
    Select,
    SpansetFilter,
    SpansetOperation,
    SpansetOperator,
    Static,
    Status,
    TopK,
    TraceQLError,
    TraceQLSyntaxError,
    TraceQLUnsupportedError,
    TraceQLValidationError,
    Type,
    UnaryOp,
    UnaryOperator,
    compile_regex,
    parse,
    parse_and_validate,
    references_span,
    type_of,
    unparse,
    validate,
    walk,
)
from threadline.traceql.lexer import TokenKind, parse_duration, tokenize

Op = BinaryOperator
SOp = SpansetOperator
S = 1_000_000_000
MS = 1_000_000


# ---------------------------------------------------------------------------- builders


def i(v: int) -> Static:
    return Static(Type.INT, v)


def f(v: float) -> Static:
    return Static(Type.FLOAT, v)


def s(v: str) -> Static:
    return Static(Type.STRING, v)


def d(ns: int) -> Static:
    return Static(Type.DURATION, ns)


TRUE = Static(Type.BOOL, True)
FALSE = Static(Type.BOOL, False)
NIL = Static(Type.NIL, None)


def attr(name: str, scope: Scope = Scope.NONE, parent: bool = False) -> Attribute:
    return Attribute(scope, name, parent)


def intr(name: IntrinsicName) -> Intrinsic:
    return Intrinsic(name)


def b(op: str, lhs, rhs) -> BinaryOp:
    return BinaryOp(Op(op), lhs, rhs)


def neg(x) -> UnaryOp:
    return UnaryOp(UnaryOperator.NEG, x)


def not_(x) -> UnaryOp:
    return UnaryOp(UnaryOperator.NOT, x)


def flt(expr) -> SpansetFilter:
    return SpansetFilter(expr)


def pipe(*stages) -> Pipeline:
    return Pipeline(tuple(stages))


def field_expr(query: str):
    """The expression of a query made of one spanset filter."""
    root = parse(query)
    assert isinstance(root.expr, Pipeline)
    (stage,) = root.expr.stages
    assert isinstance(stage, SpansetFilter)
    return stage.expr


def metrics(query: str):
    root = parse(query)
    assert root.is_metrics
    return root.expr


def syntax_error(query: str) -> TraceQLSyntaxError:
    with pytest.raises(TraceQLSyntaxError) as info:
        parse(query)
    return info.value


def validation_error(query: str) -> TraceQLValidationError:
    with pytest.raises(TraceQLValidationError) as info:
        validate(parse(query))
    return info.value


COUNT = Aggregate(AggregateOp.COUNT)
EMPTY = pipe(flt(TRUE))


# ---------------------------------------------------------------------------- field precedence


def test_and_or_share_one_left_associative_level() -> None:
    assert field_expr("{ .a = 1 || .b = 2 && .c = 3 }") == b(
        "&&", b("||", b("=", attr("a"), i(1)), b("=", attr("b"), i(2))), b("=", attr("c"), i(3))
    )
    assert field_expr("{ .a || .b && .c }") == b("&&", b("||", attr("a"), attr("b")), attr("c"))
    assert field_expr("{ .a && .b || .c }") == b("||", b("&&", attr("a"), attr("b")), attr("c"))


def test_arithmetic_precedence_and_power_is_right_associative() -> None:
    assert field_expr("{ 1 + 2 * 3 ^ 2 = .x }") == b(
        "=", b("+", i(1), b("*", i(2), b("^", i(3), i(2)))), attr("x")
    )
    assert field_expr("{ 2 ^ 3 ^ 2 = .x }") == b("=", b("^", i(2), b("^", i(3), i(2))), attr("x"))
    assert field_expr("{ .a * .b + .c }") == b("+", b("*", attr("a"), attr("b")), attr("c"))
    assert field_expr("{ .a + .b ^ .c }") == b("+", attr("a"), b("^", attr("b"), attr("c")))
    assert field_expr("{ .a - .b - .c = 0 }") == b(
        "=", b("-", b("-", attr("a"), attr("b")), attr("c")), i(0)
    )
    assert field_expr("{ .a % 2 / 3 = 0 }") == b("=", b("/", b("%", attr("a"), i(2)), i(3)), i(0))


def test_comparisons_bind_tighter_than_logic_and_looser_than_arithmetic() -> None:
    assert field_expr("{ .a = .b && .c }") == b("&&", b("=", attr("a"), attr("b")), attr("c"))
    assert field_expr("{ .a + 1 > .b * 2 }") == b(
        ">", b("+", attr("a"), i(1)), b("*", attr("b"), i(2))
    )
    assert field_expr('{ .a =~ "x" || .a !~ "y" }') == b(
        "||", b("=~", attr("a"), s("x")), b("!~", attr("a"), s("y"))
    )


def test_unary_not_binds_tighter_than_comparison_and_plus() -> None:
    assert field_expr("{ !.a = .b }") == b("=", not_(attr("a")), attr("b"))
    assert field_expr("{ .a = !.b && .c }") == b(
        "&&", b("=", attr("a"), not_(attr("b"))), attr("c")
    )
    assert field_expr("{ !.a * .b = 1 }") == b("=", not_(b("*", attr("a"), attr("b"))), i(1))
    assert field_expr("{ !(.a && .b) }") == not_(b("&&", attr("a"), attr("b")))


def test_unary_minus_sits_at_the_plus_minus_level() -> None:
    assert field_expr("{ -.a = 2 }") == b("=", neg(attr("a")), i(2))
    assert field_expr("{ -.a * 2 = 1 }") == b("=", neg(b("*", attr("a"), i(2))), i(1))
    assert field_expr("{ -.a + 2 = 1 }") == b("=", b("+", neg(attr("a")), i(2)), i(1))
    assert field_expr("{ .a * -.b * .c = 1 }") == b(
        "=", b("*", attr("a"), neg(b("*", attr("b"), attr("c")))), i(1)
    )
    assert field_expr("{ -1 = 2 }") == b("=", neg(i(1)), i(2))


def test_unary_minus_on_durations() -> None:
    assert field_expr("{ -5s < duration }") == b("<", neg(d(5 * S)), intr(IntrinsicName.DURATION))
    assert field_expr("{ duration > -(1s - 2m) }") == b(
        ">", intr(IntrinsicName.DURATION), neg(b("-", d(S), d(120 * S)))
    )
    # in scalar and metrics positions constants are folded, keeping the duration type
    root = parse("max(duration) > -1s")
    assert root.expr == pipe(
        ScalarFilter(Op.GT, Aggregate(AggregateOp.MAX, intr(IntrinsicName.DURATION)), d(-S))
    )
    fn = MetricsAggregate(MetricsOp.MAX_OVER_TIME, intr(IntrinsicName.DURATION))
    assert metrics("({} | max_over_time(duration)) > -10s") == MetricsPipeline(
        EMPTY, fn, (MetricsFilter(Op.GT, d(-10 * S)),)
    )


def test_parentheses_override_precedence() -> None:
    assert field_expr("{ (.a + .b) * .c = 1 }") == b(
        "=", b("*", b("+", attr("a"), attr("b")), attr("c")), i(1)
    )
    assert field_expr("{ .a || (.b && .c) }") == b("||", attr("a"), b("&&", attr("b"), attr("c")))


def test_nil_comparisons() -> None:
    assert field_expr("{ .foo != nil }") == b("!=", attr("foo"), NIL)
    assert field_expr("{ nil = .foo }") == b("=", NIL, attr("foo"))
    assert field_expr("{ nil != nil }") == b("!=", NIL, NIL)
    for query in ("{ nil }", "{ .a > nil }", "{ !nil }", "{ nil + 1 = 2 }", "max(nil) > 1"):
        assert "nil can only be compared" in syntax_error(query).message, query


def test_empty_filter_is_true() -> None:
    assert parse("{ }").expr == EMPTY
    assert parse("{}").expr == EMPTY


# ---------------------------------------------------------------------------- spansets


def test_spanset_operator_precedence_and_associativity() -> None:
    a, bb, c = flt(attr("a")), flt(attr("b")), flt(attr("c"))
    assert parse("{ .a } > { .b } && { .c }").expr == pipe(
        SpansetOperation(SOp.AND, SpansetOperation(SOp.CHILD, a, bb), c)
    )
    assert parse("{ .a } && { .b } >> { .c }").expr == pipe(
        SpansetOperation(SOp.AND, a, SpansetOperation(SOp.DESCENDANT, bb, c))
    )
    assert parse("{ .a } >> { .b } ~ { .c }").expr == pipe(
        SpansetOperation(SOp.SIBLING, SpansetOperation(SOp.DESCENDANT, a, bb), c)
    )
    assert parse("{ .a } || { .b } && { .c }").expr == pipe(
        SpansetOperation(SOp.AND, SpansetOperation(SOp.UNION, a, bb), c)
    )
    assert parse("{ .a } >> ({ .b } ~ { .c })").expr == pipe(
        SpansetOperation(SOp.DESCENDANT, a, SpansetOperation(SOp.SIBLING, bb, c))
    )


@pytest.mark.parametrize("op", [o.value for o in SpansetOperator])
def test_every_spanset_operator(op: str) -> None:
    expected = pipe(SpansetOperation(SOp(op), flt(TRUE), flt(FALSE)))
    assert parse(f"{{ true }} {op} {{ false }}").expr == expected
    assert parse(f"{{true}}{op}{{false}}").expr == expected


def test_spanset_operator_flags() -> None:
    assert not SOp.AND.is_structural and SOp.DESCENDANT.is_structural
    assert SOp.NOT_SIBLING.is_negated and not SOp.SIBLING.is_negated
    assert SOp.UNION_DESCENDANT.is_union and not SOp.AND.is_union


def test_wrapped_pipelines_combine_with_spanset_operators() -> None:
    wrapped = pipe(flt(TRUE), ScalarFilter(Op.GT, COUNT, i(1)), flt(FALSE))
    q = "({ true } | count() > 1 | { false }) >> ({ true } | count() > 1 | { false })"
    assert parse(q).expr == pipe(SpansetOperation(SOp.DESCENDANT, wrapped, wrapped))
    # a parenthesised filter next to a wrapped pipeline becomes a one-stage pipeline
    assert parse("({ .a }) && ({ true } | count() > 1 | { false })").expr == pipe(
        SpansetOperation(SOp.AND, pipe(flt(attr("a"))), wrapped)
    )
    err = syntax_error("{ .a } && ({ true } | count() > 1)")
    assert (err.line, err.column) == (1, 1)
    assert "must be in parentheses too" in err.message


def test_parenthesised_pipeline_at_the_root_is_the_pipeline() -> None:
    assert parse("({ .a } | count() > 1)").expr == pipe(
        flt(attr("a")), ScalarFilter(Op.GT, COUNT, i(1))
    )
    assert parse("({ .a })").expr == pipe(flt(attr("a")))


# ---------------------------------------------------------------------------- pipelines


def test_pipeline_with_scalar_filter_by_select_coalesce() -> None:
    q = (
        "{ status = error } | by(resource.service.name) | count() > 2 "
        "| select(span.http.method, name) | coalesce()"
    )
    assert parse(q).expr == pipe(
        flt(b("=", intr(IntrinsicName.STATUS), Static(Type.STATUS, Status.ERROR))),
        GroupBy(attr("service.name", Scope.RESOURCE)),
        ScalarFilter(Op.GT, COUNT, i(2)),
        Select((attr("http.method", Scope.SPAN), intr(IntrinsicName.NAME))),
        Coalesce(),
    )


def test_pipelines_may_start_with_scalar_filter_by_or_select() -> None:
    avg = Aggregate(AggregateOp.AVG, attr("field"))
    assert parse("avg(.field) > 1").expr == pipe(ScalarFilter(Op.GT, avg, i(1)))
    assert parse("count() = 1 | { true }").expr == pipe(ScalarFilter(Op.EQ, COUNT, i(1)), flt(TRUE))
    assert parse("by(.a) | { true }").expr == pipe(GroupBy(attr("a")), flt(TRUE))
    assert parse("select(.a)").expr == pipe(Select((attr("a"),)))


def test_scalar_filter_shapes() -> None:
    agg = Aggregate(AggregateOp.MAX, b("*", b("+", i(1), attr("a")), i(2)))
    assert parse("{ true } | max((1 + .a) * 2) = 1").expr == pipe(
        flt(TRUE), ScalarFilter(Op.EQ, agg, i(1))
    )
    # constants on the right are folded with Go's int semantics
    assert parse("avg(.field) > 1 - 3").expr.stages[0].rhs == i(-2)
    assert parse("min(span:childCount) < 2 / 6").expr.stages[0].rhs == i(0)
    assert parse("count() > 7 / -2").expr.stages[0].rhs == i(-3)
    assert parse("count() > 1.0 / 4").expr.stages[0].rhs == f(0.25)
    # aggregate arithmetic is kept as ScalarOp (validation refuses it as unsupported)
    assert parse("min(.a) + 2 * max(.b) > 1").expr == pipe(
        ScalarFilter(
            Op.GT,
            ScalarOp(
                Op.ADD,
                Aggregate(AggregateOp.MIN, attr("a")),
                ScalarOp(Op.MUL, i(2), Aggregate(AggregateOp.MAX, attr("b"))),
            ),
            i(1),
        )
    )


def test_scalar_pipeline_comparison() -> None:
    lhs = ScalarPipeline(pipe(flt(attr("a"))), COUNT)
    rhs = ScalarPipeline(pipe(flt(attr("b"))), COUNT)
    assert parse("({ .a } | count()) > ({ .b } | count())").expr == pipe(
        ScalarFilter(Op.GT, lhs, rhs)
    )


def test_hints() -> None:
    root = parse("{ } | rate() with(sample=0.1, most_recent=true) with(exemplars=5, job=`x`)")
    assert root.hints == (
        Hint("sample", f(0.1)),
        Hint("most_recent", TRUE),
        Hint("exemplars", i(5)),
        Hint("job", s("x")),
    )
    assert root.hint("sample") == f(0.1)
    assert root.hint("missing") is None
    assert parse("{ } with (most_recent=true)").hints == (Hint("most_recent", TRUE),)
    assert parse("{ } with(debug=maxInt)").hint("debug") == i(2**63 - 1)


# ---------------------------------------------------------------------------- metrics


def test_metrics_functions() -> None:
    dur = intr(IntrinsicName.DURATION)
    path = attr("http.path", Scope.SPAN)
    assert metrics("{} | rate()") == MetricsPipeline(EMPTY, MetricsAggregate(MetricsOp.RATE))
    assert metrics("{} | count_over_time() by (name, span.http.path)") == MetricsPipeline(
        EMPTY,
        MetricsAggregate(MetricsOp.COUNT_OVER_TIME, by=(intr(IntrinsicName.NAME), path)),
    )
    assert metrics("{} | quantile_over_time(duration, 0, .9, 1) by (span.http.path)") == (
        MetricsPipeline(
            EMPTY,
            MetricsAggregate(MetricsOp.QUANTILE_OVER_TIME, dur, (0.0, 0.9, 1.0), (path,)),
        )
    )
    for op in ("min", "max", "avg", "sum", "histogram"):
        expected = MetricsAggregate(MetricsOp(f"{op}_over_time"), dur)
        assert metrics(f"{{}} | {op}_over_time(span:duration)").function == expected


def test_compare() -> None:
    sel = flt(b("=", intr(IntrinsicName.STATUS), Static(Type.STATUS, Status.ERROR)))
    assert metrics("{} | compare({status=error})").function == MetricsCompare(sel)
    assert metrics("{} | compare({status=error}, 5)").function == MetricsCompare(sel, 5)
    assert metrics("{} | compare({status=error}, 5, 10, 20)").function == MetricsCompare(
        sel, 5, 10, 20
    )
    assert "both or neither" in syntax_error("{} | compare({status=error}, 5, 10)").message


def test_second_stages_and_filters_chain_in_order() -> None:
    root = metrics("{} | rate() by (name) > 0 | topk(5) <= 10 | bottomk(3)")
    assert root == MetricsPipeline(
        EMPTY,
        MetricsAggregate(MetricsOp.RATE, by=(intr(IntrinsicName.NAME),)),
        (
            MetricsFilter(Op.GT, i(0)),
            TopK(SecondStageOp.TOPK, 5),
            MetricsFilter(Op.LTE, i(10)),
            TopK(SecondStageOp.BOTTOMK, 3),
        ),
    )
    flt_ = metrics("{} | avg_over_time(duration) > 1500ms").stages[0]
    assert flt_.threshold == 1.5
    assert MetricsFilter(Op.GT, f(2.5)).threshold == 2.5


def test_metrics_math_and_constant_folding() -> None:
    rate = MetricsPipeline(EMPTY, MetricsAggregate(MetricsOp.RATE))
    count = MetricsPipeline(EMPTY, MetricsAggregate(MetricsOp.COUNT_OVER_TIME))
    assert metrics("({} | rate()) / ({} | count_over_time())") == MetricsMath(Op.DIV, rate, count)
    assert metrics("(1 / 2) + ({} | rate())") == MetricsMath(Op.ADD, i(0), rate)
    assert metrics("(1.0 / 2.0) + ({} | rate())") == MetricsMath(Op.ADD, f(0.5), rate)
    assert metrics("-2 - 20 / ({} | rate())") == MetricsMath(
        Op.SUB, i(-2), MetricsMath(Op.DIV, i(20), rate)
    )
    assert metrics("5 + ({} | rate()) * 10") == MetricsMath(
        Op.ADD, i(5), MetricsMath(Op.MUL, rate, i(10))
    )
    assert metrics("({} | rate()) * -1.5") == MetricsMath(Op.MUL, rate, f(-1.5))
    # a wrapped pipeline keeps its own second stages
    inner = MetricsPipeline(EMPTY, MetricsAggregate(MetricsOp.RATE), (MetricsFilter(Op.GT, i(6)),))
    assert metrics("({} | rate() > 6) * 100 > 5") == MetricsStages(
        MetricsMath(Op.MUL, inner, i(100)), (MetricsFilter(Op.GT, i(5)),)
    )
    # second stages after arithmetic
    assert metrics("({} | rate()) + ({} | rate()) | topk(5) > 10") == MetricsStages(
        MetricsMath(Op.ADD, rate, rate),
        (TopK(SecondStageOp.TOPK, 5), MetricsFilter(Op.GT, i(10))),
    )
    # a comparison on one wrapped pipeline is just one more stage of that pipeline
    assert metrics("({} | rate()) > 10") == MetricsPipeline(
        EMPTY, MetricsAggregate(MetricsOp.RATE), (MetricsFilter(Op.GT, i(10)),)
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{} | rate() + 5", "put the metrics query in parentheses"),
        ("({} | rate()) % 10", "use + - * or /"),
        ("({} | rate()) * 10s", "duration cannot be used as a number"),
        ("({} | rate()) > (10s * 2)", "durations cannot be used in arithmetic"),
        ("({} | rate()) * (1 / 0)", "division by zero"),
        ("({} | rate()) * (9223372036854775807 + 1)", "integer overflow"),
        ("2 * 3", "a constant is not a query"),
        ("{} | topk(10)", "can only follow a metrics function"),
        ("rate()", "needs a spanset pipeline before it"),
        ("(({} | rate()) > 5) * 2", "outside the parentheses"),
        ("({} | rate()) + ({} | rate()) | by(.a)", "only topk(), bottomk() or a comparison"),
    ],
)
def test_metrics_syntax_errors(query: str, message: str) -> None:
    assert message in syntax_error(query).message


# ---------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"hello"', s("hello")),
        ('"tab\\tquote\\"back\\\\slash"', s('tab\tquote"back\\slash')),
        ('"\\u00e9\\x41\\101\\n"', s("éAA\n")),
        ("`raw \\n string`", s("raw \\n string")),
        ("``", s("")),
        ("42", i(42)),
        ("0", i(0)),
        ("maxInt", i(2**63 - 1)),
        ("minInt", i(-(2**63))),
        ("1.5", f(1.5)),
        (".99", f(0.99)),
        ("1e3", f(1000.0)),
        ("2.5E-1", f(0.25)),
        ("true", TRUE),
        ("false", FALSE),
        ("ok", Static(Type.STATUS, Status.OK)),
        ("error", Static(Type.STATUS, Status.ERROR)),
        ("unset", Static(Type.STATUS, Status.UNSET)),
        ("unspecified", Static(Type.KIND, Kind.UNSPECIFIED)),
        ("internal", Static(Type.KIND, Kind.INTERNAL)),
        ("server", Static(Type.KIND, Kind.SERVER)),
        ("client", Static(Type.KIND, Kind.CLIENT)),
        ("producer", Static(Type.KIND, Kind.PRODUCER)),
        ("consumer", Static(Type.KIND, Kind.CONSUMER)),
    ],
)
def test_literals(text: str, expected: Static) -> None:
    assert field_expr(f"{{ .x = {text} }}") == b("=", attr("x"), expected)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("100ms", 100 * MS),
        ("1s", S),
        ("1h30m", 90 * 60 * S),
        ("1.5s", 1500 * MS),
        ("2.5m", 150 * S),
        ("500us", 500_000),
        ("500µs", 500_000),
        ("10ns", 10),
        ("1d", 86_400 * S),
        ("1w", 7 * 86_400 * S),
        ("1y", 365 * 86_400 * S),
        ("2d12h", 60 * 3600 * S),
        ("1m30s500ms", 90 * S + 500 * MS),
        (".5s", 500 * MS),
        ("1h1.5m", 3600 * S + 90 * S),
    ],
)
def test_durations(text: str, ns: int) -> None:
    assert field_expr(f"{{ duration > {text} }}") == b(">", intr(IntrinsicName.DURATION), d(ns))
    assert parse_duration(text) == ns


def test_number_followed_by_a_non_unit_is_not_a_duration() -> None:
    assert parse_duration("1x") is None
    err = syntax_error("{ duration > 3x }")
    assert (err.column, err.found) == (15, '"x"')


def test_out_of_range_numbers() -> None:
    assert "out of range" in syntax_error("{ .a = 9223372036854775808 }").message
    assert "out of range" in syntax_error("{ .a = 1e999 }").message
    assert "exponent has no digits" in syntax_error("{ .a = 1e }").message


def test_unknown_identifier() -> None:
    err = syntax_error("{ attribute = 4 }")
    assert err.message.startswith("unknown identifier: attribute")
    assert (err.line, err.column) == (1, 3)
    assert syntax_error("{ 1 + 2 * 3 ^ 2 = x }").message.startswith("unknown identifier: x")


# ---------------------------------------------------------------------------- scopes, names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("span.http.method", attr("http.method", Scope.SPAN)),
        ("resource.service.name", attr("service.name", Scope.RESOURCE)),
        ("event.exception.message", attr("exception.message", Scope.EVENT)),
        ("link.opentracing.ref_type", attr("opentracing.ref_type", Scope.LINK)),
        ("instrumentation.language", attr("language", Scope.INSTRUMENTATION)),
        (".http.method", attr("http.method")),
        ("parent.a", attr("a", parent=True)),
        ("parent.span.a", attr("a", Scope.SPAN, parent=True)),
        ("parent.resource.a", attr("a", Scope.RESOURCE, parent=True)),
        ("span.duration", attr("duration", Scope.SPAN)),
        (".duration", attr("duration")),
        ("span.span.x", attr("span.x", Scope.SPAN)),
        (
            "span.http.request.header.x-forwarded-for",
            attr("http.request.header.x-forwarded-for", Scope.SPAN),
        ),
        (".a+1", attr("a+1")),
        (".a:b/c*d%e-f.g", attr("a:b/c*d%e-f.g")),
        ('span."foo bar"', attr("foo bar", Scope.SPAN)),
        ('span.attribute."name with space"', attr("attribute.name with space", Scope.SPAN)),
        ('."a\\"b"', attr('a"b')),
        ('."a\\\\b"', attr("a\\b")),
        ('."x{y}"', attr("x{y}")),
    ],
)
def test_attribute_scopes_and_names(text: str, expected: Attribute) -> None:
    assert field_expr(f"{{ {text} = 1 }}") == b("=", expected, i(1))


def test_attribute_names_stop_at_operator_characters() -> None:
    assert field_expr("{ .a=1 }") == b("=", attr("a"), i(1))
    assert field_expr("{ .a!=.b }") == b("!=", attr("a"), attr("b"))
    assert field_expr("{ .a&&.b||.c }") == b("||", b("&&", attr("a"), attr("b")), attr("c"))
    assert field_expr("{ .a^2>1 }") == b(">", b("^", attr("a"), i(2)), i(1))
    assert field_expr("{ .a + 1 = 2 }") == b("=", b("+", attr("a"), i(1)), i(2))
    assert parse("{ } | select(.a,.b)").expr.stages[1] == Select((attr("a"), attr("b")))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("duration", IntrinsicName.DURATION),
        ("span:duration", IntrinsicName.DURATION),
        ("name", IntrinsicName.NAME),
        ("span:name", IntrinsicName.NAME),
        ("status", IntrinsicName.STATUS),
        ("span:status", IntrinsicName.STATUS),
        ("statusMessage", IntrinsicName.STATUS_MESSAGE),
        ("span:statusMessage", IntrinsicName.STATUS_MESSAGE),
        ("kind", IntrinsicName.KIND),
        ("span:kind", IntrinsicName.KIND),
        ("span:id", IntrinsicName.SPAN_ID),
        ("span:parentID", IntrinsicName.PARENT_ID),
        ("span:childCount", IntrinsicName.CHILD_COUNT),
        ("traceDuration", IntrinsicName.TRACE_DURATION),
        ("trace:duration", IntrinsicName.TRACE_DURATION),
        ("rootName", IntrinsicName.ROOT_NAME),
        ("trace:rootName", IntrinsicName.ROOT_NAME),
        ("rootServiceName", IntrinsicName.ROOT_SERVICE_NAME),
        ("trace:rootService", IntrinsicName.ROOT_SERVICE_NAME),
        ("trace:id", IntrinsicName.TRACE_ID),
        ("event:name", IntrinsicName.EVENT_NAME),
        ("event:timeSinceStart", IntrinsicName.EVENT_TIME_SINCE_START),
        ("link:traceID", IntrinsicName.LINK_TRACE_ID),
        ("link:spanID", IntrinsicName.LINK_SPAN_ID),
        ("instrumentation:name", IntrinsicName.INSTRUMENTATION_NAME),
        ("instrumentation:version", IntrinsicName.INSTRUMENTATION_VERSION),
        ("nestedSetLeft", IntrinsicName.NESTED_SET_LEFT),
        ("nestedSetRight", IntrinsicName.NESTED_SET_RIGHT),
        ("nestedSetParent", IntrinsicName.NESTED_SET_PARENT),
        ("parent", IntrinsicName.PARENT),
    ],
)
def test_intrinsic_spellings(text: str, name: IntrinsicName) -> None:
    assert field_expr(f"{{ {text} != nil }}") == b("!=", intr(name), NIL)
    assert parse(f"select({text})").expr == pipe(Select((intr(name),)))


@pytest.mark.parametrize(
    "query",
    [
        "{ trace:status = error }",
        "{ trace:kind = server }",
        "{ trace:name = 1 }",
        "{ trace:rootServiceName = 1 }",
        "{ span:rootName = 1 }",
        "{ span:traceID = 1 }",
        "{ link:id = 1 }",
        "{ childCount = 1 }",
        "{ rootService = 1 }",
        "{ id = 1 }",
    ],
)
def test_invalid_intrinsic_spellings(query: str) -> None:
    syntax_error(query)


def test_intrinsic_types() -> None:
    assert IntrinsicName.DURATION.type is Type.DURATION
    assert IntrinsicName.CHILD_COUNT.type is Type.INT
    assert IntrinsicName.STATUS.type is Type.STATUS
    assert IntrinsicName.KIND.type is Type.KIND
    assert IntrinsicName.TRACE_ID.type is Type.STRING
    assert IntrinsicName.ROOT_NAME.is_trace_level and not IntrinsicName.NAME.is_trace_level


# ---------------------------------------------------------------------------- lexing details


def test_comments_are_skipped() -> None:
    q = "{ .a = 1 // the first\n /* a block\n comment */ && .b = 2 } // end"
    assert field_expr(q) == b("&&", b("=", attr("a"), i(1)), b("=", attr("b"), i(2)))
    assert "comment not terminated" in syntax_error("{ .a = 1 } /* open").message


def test_greedy_operators() -> None:
    ops = ["!>>", "!<<", "&>>", "&<<", "!>", "!<", "&>", "&<", "&~", "!~", "=~", "!="]
    ops += [">=", "<=", ">>", "<<", "&&", "||"]
    assert [t.text for t in tokenize(" ".join(ops))][:-1] == ops
    assert [t.text for t in tokenize("a==b")][:4] == ["a", "=", "=", "b"]


def test_token_positions() -> None:
    toks = tokenize('{\n  span.a = "x"\n}')
    assert [(t.kind, t.line, t.column) for t in toks] == [
        (TokenKind.OP, 1, 1),
        (TokenKind.ATTRIBUTE, 2, 3),
        (TokenKind.OP, 2, 10),
        (TokenKind.STRING, 2, 12),
        (TokenKind.OP, 3, 1),
        (TokenKind.EOF, 3, 2),
    ]


def test_node_positions() -> None:
    q = "{ .a = 1 }\n| count() > 2"
    root = parse(q)
    sf, sc = root.expr.stages
    assert (sf.line, sf.column) == (1, 1)
    assert (sf.expr.rhs.line, sf.expr.rhs.column) == (1, 8)
    assert (sc.line, sc.column) == (2, 3)
    assert q[sc.offset : sc.end_offset] == "count() > 2"
    assert q[sf.expr.offset : sf.expr.end_offset] == ".a = 1"
    # positions do not take part in equality
    assert sf == flt(b("=", attr("a"), i(1)))


# ---------------------------------------------------------------------------- syntax errors


def test_error_message_shape() -> None:
    err = syntax_error("{ .a < }")
    assert (
        str(err) == 'syntax error at line 1, column 8: unexpected "}", expected a field expression'
    )
    assert (err.line, err.column, err.found, err.expected) == (1, 8, '"}"', "a field expression")
    assert isinstance(err, TraceQLError)


def test_error_positions_on_multi_line_queries() -> None:
    err = syntax_error('{ .a = "x" &&\n  .b = }')
    assert (err.line, err.column) == (2, 8)
    err = syntax_error("{ .a = 1 }\n| count(.a) > 1")
    assert (err.line, err.column) == (2, 9)
    assert err.message == 'unexpected ".a", expected ")" (count() takes no argument)'
    err = syntax_error("{ .a }\n  | { span. }")
    assert (err.line, err.column) == (2, 7)
    assert err.message == 'expected an attribute name after "span."'


@pytest.mark.parametrize(
    ("query", "column", "found", "expected"),
    [
        ("{ .a < 3", 9, "end of query", 'an operator or "}"'),
        ("{ (.a < 3 }", 11, '"}"', 'an operator or ")"'),
        ("{ .attribute == 4 }", 15, '"="', "a field expression"),
        ("select(.a", 10, "end of query", '"," or ")"'),
        ("{ true } | count = 1", 18, '"="', '"("'),
        ("({} | rate()) + 5 100", 19, '"100"', 'an operator, "with(...)" or the end of the query'),
        ("{} | rate() | topk(-1)", 20, '"-"', "a positive integer"),
        ("{ } | ", 7, "end of query", None),
    ],
)
def test_syntax_error_details(query: str, column: int, found: str, expected: str | None) -> None:
    err = syntax_error(query)
    assert (err.line, err.column, err.found) == (1, column, found)
    if expected is not None:
        assert err.expected == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("coalesce() | { true }", "cannot start with coalesce()"),
        ("{ true } | count()", "must be compared"),
        ("count() > 3 && { true }", "cannot combine a scalar filter and a spanset expression"),
        ("{ true } = { true }", "is not a spanset operator"),
        ("3 = 2", "comparing two constants"),
        ("{ .a } | by(.a, .b)", 'expected an operator or ")"'),
        ('{ "unterminated }', "string literal not terminated"),
        ('{ "bad \\q" }', "unknown escape sequence"),
        ('{ ."open = 1 }', "unterminated quoted attribute name"),
        ('{ ."a\\nb" = 1 }', "invalid escape in quoted attribute name"),
        ("{ .a = 1 } @", "unexpected character '@'"),
        ("", "unexpected end of query"),
    ],
)
def test_syntax_error_messages(query: str, message: str) -> None:
    assert message in syntax_error(query).message


def test_lexing_errors_are_reported_after_earlier_syntax_errors() -> None:
    err = syntax_error("{ == } @")
    assert err.column == 3


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "query",
    [
        '{ .a = 1 } with(most_recent="yes")',
        "{ } | rate() with(sample=2)",
        "{ } | rate() with(sample=0)",
        '{ } | rate() with(span_sample="x")',
        "{ } | rate() with(trace_sample=true)",
        "{ } | rate() with(exemplars=1.5)",
        "{ } | rate() with(extrapolate=1)",
        "{ } | quantile_over_time(duration, 1.5)",
        "{ } | sum_over_time(name)",
        "{ } | histogram_over_time(status)",
        "{ } | compare({ }, 0)",
        "{ } | compare({ }, 1001)",
        "{ } | compare({ }, 10, 20, 10)",
        "{ } | compare({ 1 })",
        "({ } | compare({ })) * 2",
        "{ .a =~ .b }",
        '{ .a =~ "a)|(b" }',
        "{ true } | by(1 + 2)",
        '{ } | max("a" + 1) > 1',
        "{ } | max(name) > 1",
        "({ } | count()) + ({ } | max(1)) = 1",
    ],
)
def test_validation_errors(query: str) -> None:
    validation_error(query)


@pytest.mark.parametrize(
    "query",
    [
        "{ } with(most_recent=true)",
        "{ } | rate() with(sample=true, span_sample=0.5, trace_sample=1, exemplars=false)",
        "{ } | rate() with(exemplars=10, extrapolate=true, job_size=100, unknown=`x`)",
        "{ } | quantile_over_time(span:duration, 0, .5, 1) by (.a, .b, .c, .d)",
        "{ } | rate() by (.a, .b, .c, .d, .e)",
        "{ } | compare({ status = error }, 5, 1000, 2000)",
        '{ .a =~ "(?i)foo.*" }',
        '{ span:id = "0001" && trace:id = "ab" }',
        "{ .a + 1 > .b * 2.5 }",
        "{ } | sum_over_time(span.bytes)",
    ],
)
def test_validation_accepts(query: str) -> None:
    parse_and_validate(query)


@pytest.mark.parametrize(
    "query",
    [
        "{ } | rate() by (.a, .b, .c, .d, .e, .f)",
        "{ } | histogram_over_time(duration) by (.a, .b, .c, .d, .e)",
        "{ } | select(parent.a)",
        "{ } | by(parent)",
        "{ } | rate() by (parent.a)",
    ],
)
def test_unsupported(query: str) -> None:
    with pytest.raises(TraceQLUnsupportedError) as info:
        parse_and_validate(query)
    assert "not" in info.value.message and "supported" in info.value.message


def test_validation_error_points_at_the_offending_node() -> None:
    err = validation_error('{ .a = 1 &&\n  .b = "x" + 1 }')
    assert (err.line, err.column) == (2, 8)
    assert '`"x"` (string)' in err.message and "`1` (int)" in err.message
    assert str(err).startswith("invalid query at line 2, column 8: ")
    err = validation_error("{ status }")
    assert (err.line, err.column) == (1, 3)
    assert "must be a condition" in err.message and "status" in err.message


def test_validation_of_hand_built_trees_quotes_printed_text() -> None:
    root = Root(pipe(flt(b("=", i(1), s("a")))))
    with pytest.raises(TraceQLValidationError) as info:
        validate(root)
    assert '`"a"` (string)' in info.value.message


def test_compile_regex_is_anchored_and_dotall() -> None:
    assert compile_regex("bar").fullmatch("bar")
    assert not compile_regex("bar").fullmatch("foobar")
    assert compile_regex(".*bar.*").fullmatch("foo\nbar")
    assert compile_regex("(?i)foo").fullmatch("FOO")


# ---------------------------------------------------------------------------- types and helpers


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ .a }", Type.ATTRIBUTE),
        ("{ 1 + 2 }", Type.INT),
        ("{ 1 + 2.0 }", Type.FLOAT),
        ("{ 2 * 1s }", Type.DURATION),
        ("{ .a + 1 }", Type.INT),
        ("{ 1.5 + .a }", Type.FLOAT),
        ("{ .a + .b }", Type.ATTRIBUTE),
        ("{ .a = 1 }", Type.BOOL),
        ('{ .a =~ "x" }', Type.BOOL),
        ("{ !.a }", Type.BOOL),
        ("{ -duration }", Type.DURATION),
        ("{ name }", Type.STRING),
        ("{ status }", Type.STATUS),
        ("{ kind }", Type.KIND),
        ("{ nil = nil }", Type.BOOL),
        ("{ parent }", Type.NIL),
    ],
)
def test_type_of_field_expressions(query: str, expected: Type) -> None:
    assert type_of(field_expr(query)) is expected


def test_type_of_scalar_and_spanset_expressions() -> None:
    assert type_of(COUNT) is Type.INT
    assert type_of(Aggregate(AggregateOp.AVG, intr(IntrinsicName.CHILD_COUNT))) is Type.FLOAT
    assert type_of(Aggregate(AggregateOp.AVG, intr(IntrinsicName.DURATION))) is Type.DURATION
    assert type_of(Aggregate(AggregateOp.SUM, attr("a"))) is Type.ATTRIBUTE
    assert type_of(ScalarFilter(Op.GT, COUNT, i(1))) is Type.BOOL
    assert type_of(ScalarPipeline(EMPTY, COUNT)) is Type.INT
    assert type_of(flt(TRUE)) is Type.SPANSET
    assert type_of(EMPTY) is Type.SPANSET
    with pytest.raises(TypeError):
        type_of(MetricsAggregate(MetricsOp.RATE))


def test_walk_and_references_span() -> None:
    root = parse("{ .a = 1 } >> { name = `x` } | by(resource.b)")
    names = [n.name for n in walk(root) if isinstance(n, Attribute | Intrinsic)]
    assert names == ["a", IntrinsicName.NAME, "b"]
    assert references_span(field_expr("{ 1 + .a = 2 }"))
    assert not references_span(field_expr("{ 1 + 1 = 2 }"))


# ---------------------------------------------------------------------------- printing


@pytest.mark.parametrize(
    "query",
    [
        "{ .a = 1 || .b = 2 && .c = 3 }",
        '{ span."foo bar" = "v\\n" && resource.x =~ "a.*" }',
        "{ -5s < duration && .x != nil && nil = .y }",
        "{ .a } > { .b } && { .c }",
        "({ .a }) && ({ .b } | count() > 1)",
        "{ status = error } | by(resource.service.name) | avg(duration) > 20ms | coalesce()",
        '{ } | select(span:id, parent.span.a, ."x y")',
        "{ } | quantile_over_time(duration, .99, .5) by (name) | topk(5) > 1.5",
        "{ } | compare({ status = error }, 5, 1, 2)",
        "-2 - 20 / ({} | rate())",
        "(({} | rate()) * 10) + 5 > 50 | topk(1) with(sample=0.5, most_recent=true)",
        "{ .a = minInt && .b = 1.0 && .c = 1e20 && .d = 90m }",
        "({ .a } | count()) > ({ .b } | count())",
    ],
)
def test_round_trip(query: str) -> None:
    tree = parse(query)
    assert parse(unparse(tree)) == tree


def test_canonical_texts() -> None:
    assert (
        unparse(parse("{ .a = 1 || .b = 2 && .c = 3 }")) == "{ ((.a = 1) || (.b = 2)) && (.c = 3) }"
    )
    assert unparse(Aggregate(AggregateOp.COUNT)) == "count()"
    assert unparse(GroupBy(attr("service.name", Scope.RESOURCE))) == "by(resource.service.name)"
    assert unparse(d(90 * 60 * S)) == "90m"
    assert unparse(d(1500 * MS)) == "1500ms"
    assert unparse(attr('a"b c')) == '."a\\"b c"'


def test_long_generated_queries() -> None:
    terms = [f'.a = "v{n}"' for n in range(5000)]
    root = parse_and_validate("{ " + " || ".join(terms) + " }")
    assert len([n for n in walk(root) if isinstance(n, Attribute)]) == 5000
    err = validation_error("{ " + " || ".join(terms) + ' || .b =~ "[" }')
    assert "invalid regular expression" in err.message
    deep = "(" * 200 + "{ .a }" + ")" * 200
    assert parse(deep).expr == pipe(flt(attr("a")))
