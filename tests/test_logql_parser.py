"""LogQL front end: parse -> print -> parse over a corpus, the trees of a representative
subset, Loki's error wording and positions for invalid queries, and arbitrary text.

The valid corpus and the syntax-error messages were checked against Loki's own grammar tables
(``pkg/logql/syntax/syntax.y``); semantic errors that Loki reports without a position point here
at the expression at fault.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.logql import LogQLParseError, parse, unparse
from threadline.logql import ast as A
from threadline.logql.parser import ERR_MATCHERS

VALID: list[str] = [
    '{app="foo"}',
    '{app="foo", env!="dev"}',
    '{app=~"fo.+", env!~"dev|test"}',
    "{ app = `raw\\string` }",
    '{app="a\\"b\\n\\u00e9"}',
    '{APP_1="x", _y="z"}',
    '{app="foo"} |= "error"',
    '{app="foo"} != "debug"',
    '{app="foo"} |~ "err(or)?"',
    '{app="foo"} !~ `^\\s+$`',
    '{app="foo"} |> "<_> error <_>"',
    '{app="foo"} !> "<_> ok"',
    '{app="foo"} |= "a" or "b"',
    '{app="foo"} |= "a" or "b" or "c" != "d"',
    '{app="foo"} != "a" or "b"',
    '{app="foo"} |= ip("192.168.0.0/16")',
    '{app="foo"} != ip("10.0.0.1") or "x"',
    '{app="foo"} |= "a" |~ "b" != "c" !~ "d"',
    '{app="foo"} | json',
    '{app="foo"} | json a="x.y", b',
    '{app="foo"} | json first="items[0]", b="a[\\"k\\"]"',
    '{app="foo"} | logfmt',
    '{app="foo"} | logfmt --strict',
    '{app="foo"} | logfmt --keep-empty --strict',
    '{app="foo"} | logfmt --strict a, b="c"',
    '{app="foo"} | logfmt a="x", b',
    '{app="foo"} | regexp "(?P<method>\\\\w+) (?P<path>\\\\S+)"',
    '{app="foo"} | pattern "<ip> - - <_> \\"<method> <path>\\""',
    '{app="foo"} | unpack',
    '{app="foo"} | json | status = "500"',
    '{app="foo"} | logfmt | level != "debug"',
    '{app="foo"} | logfmt | level =~ "err.*"',
    '{app="foo"} | logfmt | level !~ "debug|info"',
    '{app="foo"} | logfmt | __error__ = ""',
    '{app="foo"} | logfmt | __error__ != ""',
    '{app="foo"} | logfmt | status > 400',
    '{app="foo"} | logfmt | status >= 400',
    '{app="foo"} | logfmt | status < 400',
    '{app="foo"} | logfmt | status <= 400',
    '{app="foo"} | logfmt | status == 200',
    '{app="foo"} | logfmt | status != 200',
    '{app="foo"} | logfmt | status = 200',
    '{app="foo"} | logfmt | ratio > 0.5',
    '{app="foo"} | logfmt | ratio > -1.5',
    '{app="foo"} | logfmt | ratio < +2',
    '{app="foo"} | logfmt | ratio > 1e3',
    '{app="foo"} | logfmt | latency > 250ms',
    '{app="foo"} | logfmt | latency >= 1h30m',
    '{app="foo"} | logfmt | latency < 1.5s',
    '{app="foo"} | logfmt | latency == 10us',
    '{app="foo"} | logfmt | latency > -5m',
    '{app="foo"} | logfmt | size > 20MB',
    '{app="foo"} | logfmt | size <= 1KiB',
    '{app="foo"} | logfmt | size == 2.5KB',
    '{app="foo"} | logfmt | size != 10B',
    '{app="foo"} | logfmt | addr = ip("10.0.0.0/8")',
    '{app="foo"} | logfmt | addr != ip("10.0.0.1-10.0.0.9")',
    '{app="foo"} | logfmt | a = "1" and b = "2"',
    '{app="foo"} | logfmt | a = "1" or b = "2"',
    '{app="foo"} | logfmt | a = "1", b = "2"',
    '{app="foo"} | logfmt | a = "1" b = "2"',
    '{app="foo"} | logfmt | (a = "1" or b = "2") and c > 5',
    '{app="foo"} | logfmt | a = "1" or b = "2", c = "3"',
    '{app="foo"} | logfmt | a = "1" and b = "2" or c = "3"',
    '{app="foo"} | logfmt | a = "1" or b = "2" and c = "3"',
    '{app="foo"} | logfmt | latency >= 250ms or (status_code < 500 and status_code > 200)',
    '{app="foo"} | line_format "{{.level}} {{.msg}}"',
    '{app="foo"} | line_format `{{ .msg | ToUpper }}`',
    '{app="foo"} | label_format a=b',
    '{app="foo"} | label_format a=b, c="{{.d}}"',
    '{app="foo"} | drop a, b',
    '{app="foo"} | drop a, b="c", d=~"e.*"',
    '{app="foo"} | keep a, b',
    '{app="foo"} | keep level, status!="200"',
    '{app="foo"} | decolorize',
    '{app="foo"} |= "x" | json | status >= 500 | line_format "{{.msg}}" '
    "| label_format m=msg | drop x | keep m | decolorize",
    '{app="foo"} # a comment',
    '{app="foo"} # comment\n  |= "x" # another\n  | json',
    '{app="foo"} // go comment',
    '{app="foo"} /* block */ |= "x"',
    '(({app="foo"} | json))',
    'count_over_time({app="foo"}[5m])',
    'rate({app="foo"}[1m])',
    'bytes_over_time({app="foo"}[1h])',
    'bytes_rate({app="foo"}[30s])',
    'absent_over_time({app="foo"}[1d])',
    'rate({app="foo"} |= "error" [5m])',
    'rate({app="foo"} |= "error" | json [5m] offset 1h)',
    'count_over_time({app="foo"}[5m] |= "x")',
    'count_over_time({app="foo"}[5m] offset 1h |= "x" | json)',
    'count_over_time(({app="foo"})[5m])',
    'count_over_time(({app="foo"} |= "x")[5m] offset 5m)',
    'count_over_time(({app="foo"}[5m]))',
    'count_over_time({app="foo"}[5m] offset -1h)',
    'sum_over_time({app="foo"} | json | unwrap bytes_sent [5m])',
    'avg_over_time({app="foo"} | logfmt | unwrap latency [5m]) by (path)',
    'max_over_time({app="foo"} | logfmt | unwrap duration(latency) [5m])',
    'min_over_time({app="foo"} | logfmt | unwrap bytes(size) [5m]) without (pod)',
    'first_over_time({app="foo"} | logfmt | unwrap duration_seconds(t) [5m])',
    'last_over_time({app="foo"} | logfmt | unwrap x | __error__="" [5m])',
    'stddev_over_time({app="foo"} | logfmt | unwrap x | __error__="" | x > 0 [5m])',
    'stdvar_over_time({app="foo"} | logfmt | unwrap x [5m] offset 10m)',
    'quantile_over_time(0.99, {app="foo"} | json | unwrap latency [5m]) by (method)',
    'quantile_over_time(.5, {app="foo"} | json | unwrap latency [5m])',
    'rate({app="foo"} | logfmt | unwrap bytes [1m])',
    'sum_over_time({app="foo"} | json | unwrap latency [5m] offset 1h)',
    'sum_over_time({app="foo"}[5m] | json | unwrap latency)',
    'sum_over_time({app="foo"}[5m] offset 1h | unwrap latency)',
    'sum_over_time(({app="foo"} | unwrap latency)[5m])',
    'sum(rate({app="foo"}[5m]))',
    'sum by (pod) (rate({app="foo"}[5m]))',
    'sum(rate({app="foo"}[5m])) by (pod, ns)',
    'sum without (pod) (rate({app="foo"}[5m]))',
    'sum(rate({app="foo"}[5m])) without ()',
    'sum by () (rate({app="foo"}[5m]))',
    'avg(rate({app="foo"}[5m]))',
    'min(rate({app="foo"}[5m]))',
    'max(rate({app="foo"}[5m]))',
    'count(rate({app="foo"}[5m]))',
    'stddev(rate({app="foo"}[5m]))',
    'stdvar(rate({app="foo"}[5m]))',
    'topk(5, rate({app="foo"}[5m]))',
    'topk(5, sum by (a) (rate({app="foo"}[5m])))',
    'bottomk(3, rate({app="foo"}[5m])) by (a)',
    'sort(rate({app="foo"}[5m]))',
    'sort_desc(sum by (a) (rate({app="foo"}[5m])))',
    'SUM BY (a) (RATE({app="foo"}[5m]))',
    'sum(rate({app="foo"}[5m])) / sum(rate({app="bar"}[5m]))',
    'sum(rate({app="foo"}[5m])) * 100',
    '100 * sum(rate({app="foo"}[5m]))',
    'rate({a="b"}[5m]) + rate({a="b"}[5m]) * 2',
    '(rate({a="b"}[5m]) + rate({a="b"}[5m])) * 2',
    'rate({a="b"}[5m]) - rate({a="b"}[5m]) - rate({a="b"}[5m])',
    'rate({a="b"}[5m]) - (rate({a="b"}[5m]) - rate({a="b"}[5m]))',
    'rate({a="b"}[5m]) ^ 2 ^ 3',
    '(rate({a="b"}[5m]) ^ 2) ^ 3',
    'rate({a="b"}[5m]) % 3',
    'rate({a="b"}[5m]) > 10',
    'rate({a="b"}[5m]) > bool 10',
    'rate({a="b"}[5m]) >= 1 < 5',
    'rate({a="b"}[5m]) == bool rate({a="c"}[5m])',
    'rate({a="b"}[5m]) != 0',
    'rate({a="b"}[5m]) <= 1',
    'rate({a="b"}[5m]) and rate({a="c"}[5m])',
    'rate({a="b"}[5m]) or rate({a="c"}[5m]) unless rate({a="d"}[5m])',
    'rate({a="b"}[5m]) or rate({a="c"}[5m]) and rate({a="d"}[5m])',
    'sum by (a) (rate({a="b"}[5m])) / on (a) group_left (c) sum by (a, c) (rate({a="b"}[5m]))',
    'rate({a="b"}[5m]) * ignoring (x) rate({a="c"}[5m])',
    'rate({a="b"}[5m]) * on () group_right rate({a="c"}[5m])',
    'rate({a="b"}[5m]) > bool on (x) rate({a="c"}[5m])',
    'sum(rate({a="b"}[5m])) or vector(0)',
    "1",
    "-1.5",
    "1 + 2 * 3",
    "(1 + 2) * 3",
    "2 ^ 3 ^ 2",
    "- 2 ^ 2",
    "1 - -1",
    'label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)")',
    "vector(1)",
    'sum(count_over_time({a="b"} |= "x" | json | status >= 500 [5m])) by (path) '
    '/ sum(count_over_time({a="b"}[5m])) by (path) > 0.05',
    'topk(10, sum by (host) (rate({job="x"} | logfmt | level="error" [1m]))) # top hosts',
]

INVALID: list[tuple[str, int, int, str]] = [
    ('{foo="bar"', 1, 11, "syntax error: unexpected $end, expecting } or ,"),
    ('{foo="bar"} |~', 1, 15, "syntax error: unexpected $end, expecting STRING or ip"),
    ('{foo="bar"} "foo"', 1, 13, "syntax error: unexpected STRING"),
    ('{foo="bar"} foo', 1, 13, "syntax error: unexpected IDENTIFIER"),
    ('{foo="bar}', 1, 6, "literal not terminated"),
    ('{1="x"}', 1, 2, "syntax error: unexpected NUMBER, expecting IDENTIFIER or }"),
    ("{foo}", 1, 5, "syntax error: unexpected }, expecting = or =~ or !~ or !="),
    ("{foo=bar}", 1, 6, "syntax error: unexpected IDENTIFIER, expecting STRING"),
    ('{foo="bar",}', 1, 12, "syntax error: unexpected }, expecting IDENTIFIER"),
    ('{foo="bar"} | json |', 1, 21, "syntax error: unexpected $end"),
    ('{foo="bar"} | unwrap x', 1, 15, "syntax error: unexpected unwrap"),
    ('rate({foo="bar"})', 1, 17, "syntax error: unexpected )"),
    ('rate({foo="bar"} | json)', 1, 24, "syntax error: unexpected )"),
    ('sum({foo="bar"})', 1, 16, "syntax error: unexpected )"),
    ('stddev({ foo = "bar" })', 1, 23, "syntax error: unexpected )"),
    ('rate({foo="bar"}[5minutes])', 1, 17, 'unknown unit "minutes" in duration "5minutes"'),
    ('rate({foo="bar"}[5m)', 1, 17, "missing closing ']' in duration"),
    (
        'quantile_over_time(foo, {a="b"}[5m])',
        1,
        20,
        "syntax error: unexpected IDENTIFIER, expecting NUMBER or { or (",
    ),
    ("vector(abc)", 1, 8, "syntax error: unexpected IDENTIFIER, expecting NUMBER"),
    (
        'count without (rate({a="b"}[15s]))',
        1,
        16,
        "syntax error: unexpected RATE, expecting IDENTIFIER or )",
    ),
    ('label_replace(rate({a="b"}[5m]),"")', 1, 35, "syntax error: unexpected ), expecting ,"),
    ('#{app="foo"} | json', 1, 20, "syntax error: unexpected $end"),
    ('-sum(rate({a="b"}[5m]))', 1, 2, "syntax error: unexpected SUM, expecting NUMBER"),
    ("bool 1 > 1", 1, 1, "syntax error: unexpected bool"),
    ('sum by (a) rate({a="b"}[5m])', 1, 12, "syntax error: unexpected RATE, expecting ("),
    ('sum(rate({a="b"}[5m])) by (a) by (b)', 1, 31, "syntax error: unexpected by"),
    ('{a="b"} | logfmt | addr >= ip("1.2.3.4")', 1, 28, "syntax error: unexpected ip"),
    ('{a="b"} | json a=', 1, 18, "syntax error: unexpected $end, expecting STRING"),
    ('{a="b"} | label_format a', 1, 25, "syntax error: unexpected $end, expecting ="),
    ('{a="b"} |= "x" or 5', 1, 19, "syntax error: unexpected NUMBER, expecting STRING or ip"),
    (
        'sum_over_time({a="b"} | unwrap offset [5m])',
        1,
        32,
        "syntax error: unexpected offset, expecting IDENTIFIER or BYTES_CONV or DURATION_CONV "
        "or DURATION_SECONDS_CONV",
    ),
    ('{a="b"}\n  | json\n  | status >', 3, 13, "syntax error: unexpected $end"),
    (
        '{a="b"} | logfmt | a = "1" and = "2"',
        1,
        32,
        "syntax error: unexpected =, expecting IDENTIFIER or (",
    ),
    (
        'rate({a="b"}[5m] offset 1h offset 2h)',
        1,
        28,
        "syntax error: unexpected offset, expecting )",
    ),
    ('topk(5 rate({a="b"}[5m]))', 1, 8, "syntax error: unexpected RATE"),
    ('{a="b"} | line_format 5', 1, 23, "syntax error: unexpected NUMBER, expecting STRING"),
    ('{a="b"} | drop', 1, 15, "syntax error: unexpected $end, expecting IDENTIFIER"),
    (
        'count_over_time({a="b"} |= "x" [5m] |= "y")',
        1,
        37,
        "syntax error: unexpected |=, expecting )",
    ),
    ('{a="b"} | json | x == "y"', 1, 23, "syntax error: unexpected STRING"),
    (
        "{}",
        1,
        1,
        ERR_MATCHERS,
    ),
    (
        '{a=""}',
        1,
        1,
        ERR_MATCHERS,
    ),
    (
        '{a!="b"}',
        1,
        1,
        ERR_MATCHERS,
    ),
    (
        '{a=~".*"}',
        1,
        1,
        ERR_MATCHERS,
    ),
    (
        '{a!~"b|c"}',
        1,
        1,
        ERR_MATCHERS,
    ),
    (
        'count_over_time({a=~".*"}[5m])',
        1,
        1,
        ERR_MATCHERS,
    ),
    ('sum_over_time({a="b"}[5m])', 1, 1, "invalid aggregation sum_over_time without unwrap"),
    (
        'count_over_time({a="b"} | unwrap x [5m])',
        1,
        1,
        "invalid aggregation count_over_time with unwrap",
    ),
    (
        'quantile_over_time({a="b"} | unwrap x [5m])',
        1,
        1,
        "parameter required for operation quantile_over_time",
    ),
    (
        'sum_over_time(50, {a="b"} | unwrap x [5m])',
        1,
        1,
        "parameter 50 not supported for operation sum_over_time",
    ),
    (
        'sum_over_time({a="b"} | unwrap x [5m]) by (a)',
        1,
        1,
        "grouping not allowed for sum_over_time aggregation",
    ),
    (
        'absent_over_time({a="b"}[5m]) by (a)',
        1,
        1,
        "grouping not allowed for absent_over_time aggregation",
    ),
    ('topk(count_over_time({a="b"}[5m]))', 1, 1, "parameter required for operation topk"),
    ('bottomk(1.2, count_over_time({a="b"}[5m]))', 1, 1, "invalid parameter bottomk(1.2,"),
    (
        'topk(0, count_over_time({a="b"}[5m]))',
        1,
        1,
        "invalid parameter (must be greater than 0) topk(0",
    ),
    ('sum(3, count_over_time({a="b"}[5m]))', 1, 1, "unsupported parameter for operation sum(3,"),
    (
        'sort by (a) (count_over_time({a="b"}[5m]))',
        1,
        1,
        "sort and sort_desc doesn't allow grouping by ",
    ),
    (
        '{a="b"} + 1',
        1,
        1,
        "unexpected type for left leg of binary operation (+): *syntax.MatchersExpr",
    ),
    (
        '1 - {a="b"} |= "x"',
        1,
        1,
        "unexpected type for right leg of binary operation (-): *syntax.PipelineExpr",
    ),
    (
        'rate({a="b"}[5m]) or 1',
        1,
        1,
        "unexpected literal for right leg of logical/set binary operation (or): 1.000000",
    ),
    (
        '1 unless rate({a="b"}[5m])',
        1,
        1,
        "unexpected literal for left leg of logical/set binary operation (unless): 1.000000",
    ),
    (
        '{a="b"} | logfmt | status > 0x10',
        1,
        29,
        'unable to parse literal as a float: strconv.ParseFloat: parsing "0x10": invalid syntax',
    ),
    (
        '{a="b"} | regexp "no named groups"',
        1,
        11,
        "invalid regexp parser: at least one named capture must be supplied",
    ),
]

S = 1_000_000_000
M = 60 * S
APP = A.StreamSelector((A.Matcher("app", A.MatchType.EQ, "foo"),))


def sel(*matchers: tuple[str, str, str]) -> A.StreamSelector:
    return A.StreamSelector(tuple(A.Matcher(n, A.MatchType(t), v) for n, t, v in matchers))


def rate(range_ns: int = 5 * M, **kw: object) -> A.RangeAggregation:
    q = A.LogQuery(sel(("a", "=", "b")))
    return A.RangeAggregation(A.RangeOp.RATE, A.LogRange(q, range_ns), **kw)  # type: ignore[arg-type]


def lf(name: str, op: str, value: object) -> A.LabelFilter:
    if isinstance(value, str):
        return A.StringFilter(A.Matcher(name, A.MatchType(op), value))
    return A.NumberFilter(name, A.CompareOp(op), float(value))  # type: ignore[arg-type]


TREES: list[tuple[str, A.Expr]] = [
    ('{app="foo"}', A.LogQuery(APP)),
    (
        '{app=~"fo.+", env!~"dev|test"}',
        A.LogQuery(sel(("app", "=~", "fo.+"), ("env", "!~", "dev|test"))),
    ),
    ("{ app = `raw\\string` }", A.LogQuery(sel(("app", "=", "raw\\string")))),
    ('{app="a\\"b\\n\\u00e9"}', A.LogQuery(sel(("app", "=", 'a"b\né')))),
    (
        '{app="foo"} |= "a" or "b" != "c"',
        A.LogQuery(
            APP,
            (
                A.LineFilter(
                    A.LineFilterOp.CONTAINS, (A.LineFilterValue("a"), A.LineFilterValue("b"))
                ),
                A.LineFilter(A.LineFilterOp.NOT_CONTAINS, (A.LineFilterValue("c"),)),
            ),
        ),
    ),
    (
        '{app="foo"} |= ip("10.0.0.0/8")',
        A.LogQuery(
            APP, (A.LineFilter(A.LineFilterOp.CONTAINS, (A.LineFilterValue("10.0.0.0/8", True),)),)
        ),
    ),
    (
        '{app="foo"} | json a="x.y", b | logfmt --strict --keep-empty | unpack',
        A.LogQuery(
            APP,
            (
                A.JsonParser((A.LabelExtraction("a", "x.y"), A.LabelExtraction("b", "b"))),
                A.LogfmtParser(("--strict", "--keep-empty")),
                A.UnpackParser(),
            ),
        ),
    ),
    (
        '{app="foo"} | regexp "(?P<m>\\\\w+)" | pattern "<_> <x>"',
        A.LogQuery(APP, (A.RegexpParser("(?P<m>\\w+)"), A.PatternParser("<_> <x>"))),
    ),
    (
        '{app="foo"} | latency > 250ms and size >= 20MB or status == 500',
        A.LogQuery(
            APP,
            (
                A.LabelFilterStage(
                    A.LabelFilterBinary(
                        A.LogicOp.OR,
                        A.LabelFilterBinary(
                            A.LogicOp.AND,
                            A.DurationFilter("latency", A.CompareOp.GT, 250_000_000),
                            A.BytesFilter("size", A.CompareOp.GTE, 20_000_000),
                        ),
                        lf("status", "==", 500),
                    )
                ),
            ),
        ),
    ),
    (
        # "," takes everything to its right, as Loki's grammar resolves it
        '{app="foo"} | a="1" or b="2", c > -1.5',
        A.LogQuery(
            APP,
            (
                A.LabelFilterStage(
                    A.LabelFilterBinary(
                        A.LogicOp.OR,
                        lf("a", "=", "1"),
                        A.LabelFilterBinary(A.LogicOp.AND, lf("b", "=", "2"), lf("c", ">", -1.5)),
                    )
                ),
            ),
        ),
    ),
    (
        '{app="foo"} | __error__="" | addr = ip("10.0.0.1") | size < 1KiB',
        A.LogQuery(
            APP,
            (
                A.LabelFilterStage(lf("__error__", "=", "")),
                A.LabelFilterStage(A.IpFilter("addr", A.CompareOp.EQ, "10.0.0.1")),
                A.LabelFilterStage(A.BytesFilter("size", A.CompareOp.LT, 1024)),
            ),
        ),
    ),
    (
        '{app="foo"} | line_format "{{.x}}" | label_format a=b, c="{{.d}}" | drop a, b="c" '
        "| keep d | decolorize",
        A.LogQuery(
            APP,
            (
                A.LineFormat("{{.x}}"),
                A.LabelFormat((A.LabelFmt("a", "b", False), A.LabelFmt("c", "{{.d}}", True))),
                A.DropLabels(("a", A.Matcher("b", A.MatchType.EQ, "c"))),
                A.KeepLabels(("d",)),
                A.Decolorize(),
            ),
        ),
    ),
    (
        'count_over_time({a="b"}[1h] offset 5m)',
        A.RangeAggregation(
            A.RangeOp.COUNT_OVER_TIME, A.LogRange(A.LogQuery(sel(("a", "=", "b"))), 60 * M, 5 * M)
        ),
    ),
    (
        'quantile_over_time(0.99, {app="foo"} | json | unwrap duration(latency) | __error__="" '
        "[5m]) by (method)",
        A.RangeAggregation(
            A.RangeOp.QUANTILE_OVER_TIME,
            A.LogRange(
                A.LogQuery(APP, (A.JsonParser(),)),
                5 * M,
                0,
                A.Unwrap("latency", A.Conversion.DURATION, (lf("__error__", "=", ""),)),
            ),
            0.99,
            A.Grouping(False, ("method",)),
        ),
    ),
    (
        'count_over_time({a="b"}[5m] |= "x")',
        A.RangeAggregation(
            A.RangeOp.COUNT_OVER_TIME,
            A.LogRange(
                A.LogQuery(
                    sel(("a", "=", "b")),
                    (A.LineFilter(A.LineFilterOp.CONTAINS, (A.LineFilterValue("x"),)),),
                ),
                5 * M,
            ),
        ),
    ),
    (
        'topk(5, sum(rate({a="b"}[5m])) without (pod))',
        A.VectorAggregation(
            A.VectorOp.TOPK,
            A.VectorAggregation(A.VectorOp.SUM, rate(), None, A.Grouping(True, ("pod",))),
            5,
        ),
    ),
    (
        'sum by () (rate({a="b"}[5m]))',
        A.VectorAggregation(A.VectorOp.SUM, rate(), None, A.Grouping(False, ())),
    ),
    (
        'rate({a="b"}[5m]) + rate({a="b"}[5m]) * 2 > bool 1',
        A.BinaryOp(
            A.BinOp.GT,
            A.BinaryOp(A.BinOp.ADD, rate(), A.BinaryOp(A.BinOp.MUL, rate(), A.Literal(2.0))),
            A.Literal(1.0),
            return_bool=True,
        ),
    ),
    (
        'rate({a="b"}[5m]) or rate({a="b"}[5m]) and rate({a="b"}[5m])',
        A.BinaryOp(A.BinOp.OR, rate(), A.BinaryOp(A.BinOp.AND, rate(), rate())),
    ),
    (
        "2 ^ 3 ^ 2",
        A.BinaryOp(
            A.BinOp.POW, A.Literal(2.0), A.BinaryOp(A.BinOp.POW, A.Literal(3.0), A.Literal(2.0))
        ),
    ),
    ("- 2 ^ 2", A.BinaryOp(A.BinOp.POW, A.Literal(-2.0), A.Literal(2.0))),
    (
        'rate({a="b"}[5m]) / on (a) group_left (c) rate({a="b"}[5m])',
        A.BinaryOp(
            A.BinOp.DIV, rate(), rate(), matching=A.VectorMatching(True, ("a",), "left", ("c",))
        ),
    ),
    (
        'sum(rate({a="b"}[5m])) or vector(0)',
        A.BinaryOp(A.BinOp.OR, A.VectorAggregation(A.VectorOp.SUM, rate()), A.VectorLiteral(0.0)),
    ),
]


@pytest.mark.parametrize("query", VALID)
def test_valid_query_round_trips(query: str) -> None:
    tree = parse(query)
    text = unparse(tree)
    assert parse(text) == tree, text
    assert unparse(parse(text)) == text


@pytest.mark.parametrize(("query", "tree"), TREES, ids=[q for q, _ in TREES])
def test_tree(query: str, tree: A.Expr) -> None:
    assert parse(query) == tree
    assert parse(unparse(tree)) == tree


def test_positions() -> None:
    tree = parse('{a="b"}\n  | json\n  | x > 1')
    assert isinstance(tree, A.LogQuery)
    stage = tree.stages[1]
    assert (stage.line, stage.column) == (3, 5)
    assert tree.selector.matchers[0].column == 2


def test_corpus_size() -> None:
    assert len(VALID) >= 80
    assert len(INVALID) >= 30


@pytest.mark.parametrize(("query", "line", "column", "message"), INVALID)
def test_invalid_query(query: str, line: int, column: int, message: str) -> None:
    with pytest.raises(LogQLParseError) as info:
        parse(query)
    e = info.value
    assert (e.message, e.line, e.column) == (message, line, column)
    assert str(e) == f"parse error at line {line}, col {column}: {message}"


_TOKENS = (
    "{", "}", "(", ")", "[5m]", "[", "]", ",", "|", "|=", "!=", "|~", "!~", "|>", "!>", "=", "=~",
    "==", ">", ">=", "<", "<=", "+", "-", "*", "/", "%", "^", "or", "and", "unless", "by",
    "without", "bool", "on", "ignoring", "group_left", "offset", "json", "logfmt", "--strict",
    "regexp", "pattern", "unpack", "line_format", "label_format", "drop", "keep", "decolorize",
    "unwrap", "ip(", "duration(", "bytes(", "rate(", "sum(", "topk(", "quantile_over_time(",
    "sum_over_time(", "vector(", "label_replace(", "a", "__error__", '"x"', '""', "`r`", '"\\q"',
    '"unterminated', "5", "0.99", "1e999", "0x10", "5m", "-5m", "20MB", "1.5s", "#", "/*", "\n",
    "é", "\x00",
)  # fmt: skip
HOSTILE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _check(text: str) -> None:
    try:
        tree = parse(text)
    except LogQLParseError as e:
        assert e.line >= 1 and e.column >= 1
        return
    assert parse(unparse(tree)) == tree


@HOSTILE
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map(" ".join))
def test_token_soup_raises_only_parse_errors(text: str) -> None:
    _check(text)


@HOSTILE
@given(st.text(max_size=80))
def test_random_text_raises_only_parse_errors(text: str) -> None:
    _check(text)


@HOSTILE
@given(st.sampled_from(VALID), st.integers(0, 200), st.integers(0, 3))
def test_damaged_queries_raise_only_parse_errors(query: str, at: int, cut: int) -> None:
    at %= len(query) + 1
    _check(query[:at] + query[at + cut :])


def test_deep_nesting_is_a_parse_error() -> None:
    with pytest.raises(LogQLParseError):
        parse("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(LogQLParseError):
        parse('{a="b"} | ' + "(" * 5000 + 'x="y"' + ")" * 5000)
