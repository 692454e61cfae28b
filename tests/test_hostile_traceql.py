"""Hostile input, property-based: the TraceQL front end and planners on any text.

Queries are drawn as token sequences from TraceQL's vocabulary (with hostile literals: NaN,
infinities, huge numbers, bad escapes, deep nesting), as damaged queries of the conformance
corpus, and as raw text. Whatever the text, parsing and validation raise only ``TraceQLError``
subclasses, the search and metrics planners only their ``SearchQueryError`` /
``MetricsQueryError``, tag narrowing (``filter_condition``) nothing, each within bounded time
and memory; an accepted query prints to text that parses back to the same tree.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_traceql_conformance import CORPUS, CORPUS_DATA
from threadline.traceql import TraceQLError, TraceQLSyntaxError, parse, unparse, validate
from threadline.traceql.metrics_plan import MetricsQueryError, compile_metrics
from threadline.traceql.parser import MAX_DEPTH
from threadline.traceql.plan import SearchQueryError, compile_search, filter_condition

HOSTILE = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SECONDS = 5.0
MEMORY = 32 * 2**20

_TOKENS = (
    "{", "}", "(", ")", "[", "]", ",", "|", "&&", "||", "!", "-", "+", "*", "/", "%", "^", "=",
    "!=", ">", ">=", "<", "<=", "=~", "!~", ">>", "<<", "~", "!>>", "!<<", "!~", "&>>", "&<<",
    "&~", "&>", "&<", ".a", "span.x", "resource.service.name", "event.name", "link.traceID",
    "parent.span.x", "span.\"quoted name\"", "duration", "name", "status", "kind", "error", "ok",
    "unset", "server", "client", "nil", "true", "false", "rootName", "traceDuration",
    "nestedSetLeft", "count()", "avg(duration)", "max(span.x)", "rate()", "count_over_time()",
    "quantile_over_time(duration, .5)", "histogram_over_time(duration)", "by", "by(.a)",
    "select(.a)", "coalesce()", "topk(3)", "bottomk(2)", "with(sample=true)", "compare({ })",
    "1", "0", "-1", "1.5", ".5", "1e10", "1e400", "1e-400", "9223372036854775807",
    "9223372036854775808", "99999999999999999999999", "1ms", "1.5h", "99999999999h", "1e3s",
    "nan", "NaN", "inf", "-inf", "Infinity", "minInt", "maxInt", '"x"', '""', '"\\u00e9"',
    '"\\x"', '"\\', '"unterminated', '"(((a*)*)*)*$"', '"["', "`raw`", "#", "\x00", "é", "\n",
)  # fmt: skip
_SEEDS = [q for section in CORPUS_DATA.values() for q in section if isinstance(q, str)]


def bounded(
    call: Callable[[str], Any], query: str, errors: tuple[type[Exception], ...], memory: bool
) -> Any:
    """``call(query)``: its result or the expected error it raised; checks time and memory
    (tracing memory slows deep recursion a lot: long queries check only time)."""
    if memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result: Any = call(query)
    except errors as e:
        assert str(e)
        result = e
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        if memory:
            tracemalloc.stop()
    assert elapsed < SECONDS, f"{elapsed:.1f}s for a query of {len(query)} characters"
    assert peak < MEMORY + 2000 * len(query), f"{peak} bytes for {len(query)} characters"
    return result


def check(query: str, memory: bool = True) -> None:
    root = bounded(lambda q: validate(parse(q)), query, (TraceQLError,), memory)
    if not isinstance(root, TraceQLError):
        again = bounded(parse, unparse(root), (), memory)
        assert again == root, unparse(root)
    bounded(compile_search, query, (SearchQueryError,), memory)
    bounded(compile_metrics, query, (MetricsQueryError,), memory)
    bounded(filter_condition, query, (), memory)


_SPACES = st.sampled_from([" ", "", "  ", "\t"])


@HOSTILE
@given(tokens=st.lists(st.tuples(st.sampled_from(_TOKENS), _SPACES), max_size=25))
def test_token_soup(tokens: list[tuple[str, str]]) -> None:
    check("".join(t + s for t, s in tokens))


@st.composite
def _damaged(draw: st.DrawFn) -> str:
    text = list(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.integers(0, 2))
        if op == 0 and i < len(text):
            del text[i]
        elif op == 1:
            text.insert(i, draw(st.sampled_from(_TOKENS)))
        elif i < len(text):
            text[i] = draw(st.characters())
    return "".join(text)


@pytest.mark.skipif(not _SEEDS, reason=f"no TraceQL conformance corpus at {CORPUS} to damage")
@HOSTILE
@given(query=_damaged())
def test_damaged_corpus_queries(query: str) -> None:
    check(query)


@HOSTILE
@given(query=st.text(max_size=60))
def test_raw_text(query: str) -> None:
    check(query)


_NESTING = [
    ("{ ", " && ", ".a = 1", " }"),
    ("{ ", " || ", ".a = 1", " }"),
    ("{ ", " + ", "1", " = .a }"),
    ("{ ", " ^ ", "2", " = .a }"),
    ("", " >> ", "{ }", ""),
    ("", " && ", "{ }", ""),
    ("", " | ", "{ }", ""),
    ("({ } | rate())", " * ", "2", ""),
]


@pytest.mark.parametrize(("head", "op", "term", "tail"), _NESTING)
@pytest.mark.parametrize("count", [MAX_DEPTH // 2, 3000])
def test_long_queries(head: str, op: str, term: str, tail: str, count: int) -> None:
    check(head + op.join([term] * count) + tail, memory=False)


@pytest.mark.parametrize(("opener", "closer"), [("(", ")"), ("!(", ")"), ("-(", ")")])
@pytest.mark.parametrize("count", [MAX_DEPTH // 2, 3000])
def test_deeply_nested_queries(opener: str, closer: str, count: int) -> None:
    check("{ " + opener * count + ".a" + closer * count + " = 1 }", memory=False)
    check(opener * count + "{ }" + closer * count, memory=False)


def test_nesting_limit_names_the_problem() -> None:
    deep = "{ " + " + ".join(["1"] * (MAX_DEPTH + 5)) + " = .a }"
    with pytest.raises(TraceQLSyntaxError, match="nested too deeply"):
        parse(deep)
    # a long run of && or || is balanced, so generated queries still pass
    wide = "{ " + " || ".join(f'.a = "v{i}"' for i in range(5000)) + " }"
    compile_search(wide)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("{ span.x = nan }", "NaN and infinity"),
        ("{ duration > NaN }", "NaN and infinity"),
        ("{ span.x > Infinity }", "NaN and infinity"),
        ("{ span.x > 1e400 }", "1e400 is out of range"),
        ("{ span.x > 99999999999999999999 }", "out of range"),
        ("{ duration > 99999999999h }", "out of range"),
        ("({ } | rate()) * (1e308 * 10)", "out of range in constant expression"),
        ("({ } | rate()) * (1e308 * 10 - 1e308 * 10)", "out of range in constant expression"),
        ("{ } | quantile_over_time(duration, nan)", '"nan"'),
    ],
)
def test_non_finite_numbers_are_refused(query: str, words: str) -> None:
    for compile_query, error in (
        (compile_search, SearchQueryError),
        (compile_metrics, MetricsQueryError),
    ):
        with pytest.raises(error) as err:
            compile_query(query)
        assert words in str(err.value)


@pytest.mark.parametrize("query", ['{ ."6x" = 1 }', '{ ."0" = 1 }', '{ ."a\ufffdb" = 1 }'])
def test_printed_names_parse_back(query: str) -> None:
    """Found by `make fuzz`: an unscoped name starting with a digit must be printed quoted."""
    check(query)
