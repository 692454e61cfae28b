"""Loki push bodies (JSON, legacy JSON, snappy protobuf) decoded into log rows: every mapping
rule (labels, service name, levels, structured metadata, trace and span ids from metadata or
the line, timestamps), malformed bodies as ValueErrors naming the problem, python-logging-loki's
wire format, and random bytes never raising anything but ValueError."""

from __future__ import annotations

import datetime
from typing import Any

import cramjam
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.model.loki_push import (
    SEVERITY_NUMBERS,
    DecodedLogs,
    PushRequest,
    decode_loki_push,
    parse_labels,
)
from threadline.model.schema import LOG_SCHEMA

JSON = "application/json"
PROTO = "application/x-protobuf"
NOW = 1_700_000_000_123_456_789
TS = 1_699_999_999_000_000_001
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def push_json(streams: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"streams": streams})


def one(labels: dict[str, Any], *entries: list[Any]) -> DecodedLogs:
    """Decode one JSON stream."""
    return decode_loki_push(push_json([{"stream": labels, "values": list(entries)}]), JSON, NOW)


def rows(decoded: DecodedLogs) -> list[dict[str, Any]]:
    assert decoded.batch.schema == LOG_SCHEMA
    return decoded.batch.to_pylist()


def row(labels: dict[str, Any], *entry: Any) -> dict[str, Any]:
    decoded = one(labels, list(entry))
    assert decoded.rejected == {}
    (only,) = rows(decoded)
    return only


def proto_body(streams: list[tuple[str, list[dict[str, Any]]]], **extra: Any) -> bytes:
    """A snappy-compressed ``PushRequest``: (labels, entries), an entry as keyword arguments
    of ``EntryAdapter`` plus ``ts`` = (seconds, nanos) and ``md`` = [(name, value)]."""
    req = PushRequest(**extra)
    for labels, entries in streams:
        stream = req.streams.add(labels=labels, hash=12345)
        for e in entries:
            entry = stream.entries.add(line=e.get("line", ""))
            if "ts" in e:
                entry.timestamp.seconds, entry.timestamp.nanos = e["ts"]
            for name, value in e.get("md", ()):
                entry.structuredMetadata.add(name=name, value=value)
            for name, value in e.get("parsed", ()):
                entry.parsed.add(name=name, value=value)
    return snappy(req.SerializeToString())


def snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


# --- JSON: the basic mapping ---------------------------------------------------------------


def test_json_stream_lines_become_rows() -> None:
    decoded = one(
        {"service_name": "checkout", "env": "prod", "level": "info"},
        [str(TS), "order placed"],
        [str(TS + 1), "order paid", {"user": "u-1", "region": "eu"}],
    )
    assert isinstance(decoded, DecodedLogs)
    assert (decoded.rejected, decoded.first_error, decoded.bad_ids) == ({}, None, 0)
    first, second = rows(decoded)
    assert first["body"] == "order placed"
    assert first["time_unix_nano"] == TS
    assert first["observed_time_unix_nano"] == NOW
    assert first["service_name"] == "checkout"
    assert first["resource_attrs_str"] == [
        ("service_name", "checkout"),
        ("env", "prod"),
        ("level", "info"),
        ("service.name", "checkout"),
    ]
    assert first["log_attrs_str"] == []
    assert (first["severity_text"], first["severity_number"]) == ("info", 9)
    assert first["trace_id"] is None and first["span_id"] is None
    assert first["body_raw"] is None
    assert (first["event_name"], first["flags"], first["dropped_attributes_count"]) == ("", 0, 0)
    assert (first["scope_name"], first["scope_version"]) == ("", "")
    for stem in ("scope", "resource", "log"):
        for kind in ("int", "float", "bool", "raw"):
            assert first[f"{stem}_attrs_{kind}"] == []
    assert first["scope_attrs_str"] == []
    assert second["time_unix_nano"] == TS + 1
    assert second["log_attrs_str"] == [("user", "u-1"), ("region", "eu")]


def test_empty_lines_and_empty_requests() -> None:
    assert rows(one({"job": "a"}, [str(TS), ""]))[0]["body"] == ""
    for body in (b"{}", b'{"streams": []}', b'{"streams": null}', push_json([{}])):
        decoded = decode_loki_push(body, JSON, NOW)
        assert decoded.batch.num_rows == 0 and decoded.batch.schema == LOG_SCHEMA
    assert decode_loki_push(snappy(b""), None, NOW).batch.num_rows == 0
    # null streams, values and entries are skipped, as Loki skips them
    body = push_json([None, {"stream": {"a": "b"}, "values": None}, {"values": [None, ["1", "x"]]}])
    assert [r["body"] for r in rows(decode_loki_push(body, JSON, NOW))] == ["x"]


def test_media_type_parameters_and_case() -> None:
    body = push_json([{"stream": {"job": "x"}, "values": [[str(TS), "hi"]]}])
    for ct in ("application/json", "application/json; charset=utf-8", " Application/JSON "):
        assert decode_loki_push(body, ct, NOW).batch.num_rows == 1
    with pytest.raises(ValueError, match="snappy"):  # anything else is protobuf, as in Loki
        decode_loki_push(body, "text/plain", NOW)


def test_label_values_as_loki_reads_them() -> None:
    r = row({"a": "x", "n": 21, "f": 1.5, "t": True, "none": None, "empty": ""}, str(TS), "l")
    assert r["resource_attrs_str"] == [("a", "x"), ("n", "21"), ("f", "1.5"), ("t", "true")]


def test_entry_items_past_the_third_are_ignored() -> None:
    r = row({"job": "x"}, str(TS), "line", {"k": "v"}, "extra", 4)
    assert (r["body"], r["log_attrs_str"]) == ("line", [("k", "v")])


def test_many_streams_keep_their_own_labels() -> None:
    body = push_json(
        [
            {"stream": {"app": "a"}, "values": [[str(TS), "1"], [str(TS), "2"]]},
            {"stream": {"app": "b", "level": "error"}, "values": [[str(TS), "3"]]},
        ]
    )
    got = rows(decode_loki_push(body, JSON, NOW))
    assert [(r["body"], r["service_name"], r["severity_number"]) for r in got] == [
        ("1", "a", 0),
        ("2", "a", 0),
        ("3", "b", 17),
    ]


# --- service name --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "service"),
    [
        ({"service_name": "s1", "service.name": "s2", "service": "s3", "app": "s4", "job": "s5"},
         "s1"),
        ({"service.name": "s2", "service": "s3", "app": "s4", "job": "s5"}, "s2"),
        ({"service": "s3", "app": "s4", "job": "s5"}, "s3"),
        ({"app": "s4", "job": "s5"}, "s4"),
        ({"job": "s5", "namespace": "n"}, "s5"),
        ({"service_name": "", "app": "s4"}, "s4"),  # an empty label is no label
        ({"namespace": "n"}, ""),
        ({}, ""),
    ],
)  # fmt: skip
def test_service_name_fallback_order(labels: dict[str, str], service: str) -> None:
    r = row(labels, str(TS), "x")
    assert r["service_name"] == service
    attrs = dict(r["resource_attrs_str"])
    if service:
        assert attrs["service.name"] == service
    else:
        assert "service.name" not in attrs
    assert "" not in attrs.values()


def test_service_name_attribute_always_agrees_with_the_column() -> None:
    r = row({"service_name": "a", "service.name": "b"}, str(TS), "x")
    assert r["service_name"] == "a"
    assert r["resource_attrs_str"] == [("service_name", "a"), ("service.name", "a")]


# --- severity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("trace", 1), ("TRACE", 1), ("debug", 5), ("DEBUG", 5), ("dbg", 5), ("info", 9),
        ("INFO", 9), ("Information", 9), ("warn", 13), ("WARNING", 13), ("Warning", 13),
        ("error", 17), ("ERR", 17), ("err", 17), ("fatal", 21), ("critical", 21),
        ("CRITICAL", 21), ("panic", 21), ("unknown", 0), ("weird", 0),
    ],
)  # fmt: skip
def test_level_spellings(text: str, number: int) -> None:
    for key in ("level", "severity", "detected_level"):
        r = row({"job": "x", key: text}, str(TS), "x")
        assert (r["severity_text"], r["severity_number"]) == (text, number)
        r = row({"job": "x"}, str(TS), "x", {key: text})
        assert (r["severity_text"], r["severity_number"]) == (text, number)


def test_severity_table_matches_otlp() -> None:
    assert {SEVERITY_NUMBERS[k] for k in ("trace", "debug", "info", "warn", "error", "fatal")} == {
        1, 5, 9, 13, 17, 21
    }  # fmt: skip


def test_level_keys_preference_and_metadata_over_labels() -> None:
    r = row({"detected_level": "debug", "severity": "warn", "level": "error"}, str(TS), "x")
    assert r["severity_number"] == 17
    r = row({"detected_level": "debug", "severity": "warn"}, str(TS), "x")
    assert r["severity_number"] == 13
    r = row({"level": "error"}, str(TS), "x", {"detected_level": "info"})
    assert (r["severity_text"], r["severity_number"]) == ("info", 9)
    r = row({"level": "error"}, str(TS), "x", {"level": ""})  # empty: the label's level
    assert r["severity_number"] == 17
    r = row({"job": "x"}, str(TS), "x")
    assert (r["severity_text"], r["severity_number"]) == ("", 0)


# --- structured metadata -------------------------------------------------------------------


def test_structured_metadata_become_log_attributes() -> None:
    r = row({"job": "x"}, str(TS), "x", {"user": "u", "n": 3, "ok": False, "gone": None})
    assert r["log_attrs_str"] == [("user", "u"), ("n", "3"), ("ok", "false")]
    r = row({"job": "x"}, str(TS), "x", {"trace_id": TRACE, "level": "warn"})
    # ids and levels read from metadata stay attributes too
    assert r["log_attrs_str"] == [("trace_id", TRACE), ("level", "warn")]
    r = row({"job": "x"}, str(TS), "x", None)
    assert r["log_attrs_str"] == []


# --- trace and span ids --------------------------------------------------------------------


@pytest.mark.parametrize("tkey", ["trace_id", "traceid", "traceID", "trace-id", "traceId"])
@pytest.mark.parametrize("skey", ["span_id", "spanid", "spanID", "span-id"])
def test_ids_from_structured_metadata(tkey: str, skey: str) -> None:
    r = row({"job": "x"}, str(TS), "no ids here", {tkey: TRACE, skey: SPAN})
    assert (r["trace_id"], r["span_id"]) == (bytes.fromhex(TRACE), bytes.fromhex(SPAN))


@pytest.mark.parametrize(
    "line",
    [
        {"msg": "hi", "trace_id": TRACE, "span_id": SPAN},
        {"msg": "hi", "traceid": TRACE, "spanid": SPAN},
        {"msg": "hi", "traceID": TRACE, "spanID": SPAN},
        {"msg": "hi", "trace-id": TRACE, "span-id": SPAN},
        {"msg": "hi", "otelTraceID": TRACE, "otelSpanID": SPAN, "otelServiceName": "svc"},
        {"message": "hi", "trace": {"id": TRACE}, "span": {"id": SPAN}},  # ECS
        {"message": "hi", "trace.id": TRACE, "span.id": SPAN},  # ECS, flattened
    ],
)
def test_ids_from_a_json_line(line: dict[str, Any]) -> None:
    r = row({"job": "x"}, str(TS), orjson.dumps(line).decode())
    assert (r["trace_id"], r["span_id"]) == (bytes.fromhex(TRACE), bytes.fromhex(SPAN))
    assert r["log_attrs_str"] == []


@pytest.mark.parametrize(
    "line",
    [
        f"level=info msg=hello trace_id={TRACE} span_id={SPAN}",
        f'level=info msg="hello there" trace_id="{TRACE}" span_id="{SPAN}" x=1',
        f"traceID={TRACE} spanID={SPAN}",
        # the OpenTelemetry Python logging instrumentation's default format
        f"2024-05-01 10:00:00,123 INFO [app] [main.py:12] [trace_id={TRACE} span_id={SPAN} "
        "resource.service.name=shop trace_sampled=True] - hello",
    ],
)
def test_ids_from_a_logfmt_line(line: str) -> None:
    r = row({"job": "x"}, str(TS), line)
    assert (r["trace_id"], r["span_id"]) == (bytes.fromhex(TRACE), bytes.fromhex(SPAN))


def test_line_ids_need_the_exact_key() -> None:
    r = row({"job": "x"}, str(TS), f"parent_trace_id={TRACE} my.span_id={SPAN}")
    assert (r["trace_id"], r["span_id"]) == (None, None)
    r = row({"job": "x"}, str(TS), f'{{"msg": "trace_id={TRACE}"}}')  # JSON: keys only
    assert r["trace_id"] is None
    r = row({"job": "x"}, str(TS), "{not json trace_id=" + TRACE)  # not JSON: logfmt
    assert r["trace_id"] == bytes.fromhex(TRACE)


def test_metadata_ids_win_over_the_line_per_id() -> None:
    other = "1" * 32
    r = row({"job": "x"}, str(TS), f"trace_id={other} span_id={SPAN}", {"trace_id": TRACE})
    assert (r["trace_id"], r["span_id"]) == (bytes.fromhex(TRACE), bytes.fromhex(SPAN))


def test_short_ids_are_left_padded() -> None:
    r = row({"job": "x"}, str(TS), "x", {"trace_id": "a3ce929d0e0e4736", "span_id": "ABC"})
    assert r["trace_id"] == bytes(8) + bytes.fromhex("a3ce929d0e0e4736")
    assert r["span_id"] == bytes.fromhex("0000000000000abc")
    r = row({"job": "x"}, str(TS), f"trace_id={TRACE.upper()}")
    assert r["trace_id"] == bytes.fromhex(TRACE)


@pytest.mark.parametrize(
    ("md", "bad"),
    [
        ({"trace_id": "xyz"}, 1),
        ({"trace_id": TRACE + "00"}, 1),  # too long
        ({"trace_id": "4bf9 2f35"}, 1),  # bytes.fromhex would take this one
        ({"trace_id": TRACE, "span_id": "nothex!"}, 1),
        ({"trace_id": "zz", "span_id": "zz"}, 1),  # one line
        ({"trace_id": "0" * 32, "span_id": "0" * 16}, 0),  # all zeros: no id
        ({"trace_id": "0"}, 0),  # OpenTelemetry Python outside a span
        ({"trace_id": ""}, 0),
    ],
)
def test_invalid_ids_are_null_and_counted(md: dict[str, str], bad: int) -> None:
    decoded = one({"job": "x"}, [str(TS), "line kept", md])
    (r,) = rows(decoded)
    assert r["body"] == "line kept"
    assert decoded.bad_ids == bad
    assert decoded.rejected == {}
    if md.get("trace_id") != TRACE:
        assert r["trace_id"] is None
    else:
        assert r["trace_id"] == bytes.fromhex(TRACE)
    assert r["span_id"] is None


def test_invalid_ids_in_lines() -> None:
    decoded = one(
        {"job": "x"},
        [str(TS), '{"trace_id": 12345, "span_id": "' + SPAN + '"}'],
        [str(TS), '{"trace": {"id": "nope"}}'],
        [str(TS), "trace_id=g00d span_id=0"],
        [str(TS), f"trace_id={TRACE}"],
    )
    got = rows(decoded)
    assert decoded.bad_ids == 3
    assert [r["trace_id"] for r in got] == [None, None, None, bytes.fromhex(TRACE)]
    assert got[0]["span_id"] == bytes.fromhex(SPAN)


# --- timestamps ----------------------------------------------------------------------------


def test_missing_or_zero_timestamps_take_the_receive_time() -> None:
    assert row({"job": "x"}, "0", "x")["time_unix_nano"] == NOW
    body = proto_body([('{job="x"}', [{"line": "no ts"}, {"line": "zero", "ts": (0, 0)}])])
    got = rows(decode_loki_push(body, PROTO, NOW))
    assert [(r["time_unix_nano"], r["observed_time_unix_nano"]) for r in got] == [(NOW, NOW)] * 2


def test_json_integer_timestamps_are_accepted() -> None:
    assert row({"job": "x"}, TS, "x")["time_unix_nano"] == TS


@pytest.mark.parametrize(
    "ts",
    ["abc", "", "-1", "1.5e18", " 123", "1_000", "+5", "١٢٣", "9223372036854775808", "9" * 5000,
     -1, 1.5, None, True, {"s": 1}, [1]],
)  # fmt: skip
def test_bad_timestamps_reject_only_their_line(ts: Any) -> None:
    decoded = one({"job": "x"}, [str(TS), "before"], [ts, "bad"], [str(TS), "after"])
    assert decoded.rejected == {"invalid_timestamp": 1}
    assert decoded.rejected_count == 1
    assert decoded.first_error is not None
    assert decoded.first_error.startswith("streams[0].values[1][0]: timestamp")
    assert [r["body"] for r in rows(decoded)] == ["before", "after"]


def test_largest_timestamp() -> None:
    assert row({"job": "x"}, str(2**63 - 1), "x")["time_unix_nano"] == 2**63 - 1


def test_bad_protobuf_timestamps_reject_only_their_line() -> None:
    body = proto_body(
        [
            (
                '{job="x"}',
                [
                    {"line": "ok", "ts": (1, 2)},
                    {"line": "negative", "ts": (-5, 0)},
                    {"line": "bad nanos", "ts": (5, 1_000_000_000)},
                    {"line": "too big", "ts": (2**62, 0)},
                    {"line": "also ok", "ts": (1_700_000_000, 999_999_999)},
                ],
            )
        ]
    )
    decoded = decode_loki_push(body, PROTO, NOW)
    assert decoded.rejected == {"invalid_timestamp": 3}
    assert decoded.first_error is not None
    assert decoded.first_error.startswith("streams[0].entries[1].timestamp")
    got = rows(decoded)
    assert [(r["body"], r["time_unix_nano"]) for r in got] == [
        ("ok", 1_000_000_002),
        ("also ok", 1_700_000_000_999_999_999),
    ]


# --- protobuf ------------------------------------------------------------------------------


def test_protobuf_request() -> None:
    body = proto_body(
        [
            (
                r'{app="shop", level="warning", path="C:\\logs\\a \"b\"", emoji="\U0001F600"}',
                [
                    {
                        "line": "paid",
                        "ts": (1_700_000_000, 5),
                        "md": [("traceID", TRACE), ("spanID", SPAN), ("traceID", "0" * 32)],
                        "parsed": [("ignored", "yes")],
                    },
                    {"line": "", "ts": (1_700_000_001, 0), "md": [("level", "err")]},
                ],
            ),
            ("{}", [{"line": f'{{"otelTraceID": "{TRACE}"}}', "ts": (1, 0)}]),
        ],
        format="loki",
    )
    decoded = decode_loki_push(body, PROTO, NOW)
    assert (decoded.rejected, decoded.bad_ids) == ({}, 0)
    first, second, third = rows(decoded)
    assert first["resource_attrs_str"] == [
        ("app", "shop"),
        ("level", "warning"),
        ("path", 'C:\\logs\\a "b"'),
        ("emoji", "\U0001f600"),
        ("service.name", "shop"),
    ]
    assert (first["service_name"], first["severity_text"], first["severity_number"]) == (
        "shop",
        "warning",
        13,
    )
    assert first["time_unix_nano"] == 1_700_000_000_000_000_005
    # a repeated metadata name keeps its first value
    assert first["log_attrs_str"] == [("traceID", TRACE), ("spanID", SPAN)]
    assert (first["trace_id"], first["span_id"]) == (bytes.fromhex(TRACE), bytes.fromhex(SPAN))
    assert (second["body"], second["severity_number"], second["trace_id"]) == ("", 17, None)
    assert (third["service_name"], third["resource_attrs_str"]) == ("", [])
    assert third["trace_id"] == bytes.fromhex(TRACE)


def test_protobuf_without_a_content_type() -> None:
    body = proto_body([('{job="x"}', [{"line": "a", "ts": (1, 0)}])])
    for ct in (None, "", "application/x-protobuf", "application/protobuf"):
        assert rows(decode_loki_push(body, ct, NOW))[0]["service_name"] == "x"


# --- label strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("{}", []),
        ("  { }  ", []),
        ('{a="b"}', [("a", "b")]),
        ('{a="b", c="d"}', [("a", "b"), ("c", "d")]),
        ('{ a = "b" ,c="d", }', [("a", "b"), ("c", "d")]),
        ("{a='b'}", [("a", "b")]),
        ("{a=`b\\n`}", [("a", "b\\n")]),  # raw: no escapes
        ('{a="line\\nbreak\\ttab\\\\ \\" \\\'"}', [("a", "line\nbreak\ttab\\ \" '")]),
        ('{a="\\x41\\101\\u00e9\\U0001F600\\a\\b\\f\\r\\v"}',
         [("a", "AA\u00e9\U0001f600\a\b\f\r\v")]),
        ('{a="\\xc3\\xa9"}', [("a", "\u00e9")]),  # byte escapes making UTF-8
        ('{a="日本"}', [("a", "日本")]),
        ('{"service.name"="shop", _x9="y"}', [("service.name", "shop"), ("_x9", "y")]),
        ('{a="", b="c"}', [("b", "c")]),  # empty values are no labels
    ],
)  # fmt: skip
def test_parse_labels(text: str, labels: list[tuple[str, str]]) -> None:
    assert parse_labels(text) == labels


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected '{'"),
        ('a="b"', "expected '{'"),
        ('foo{a="b"}', "expected '{'"),
        ("{", "expected a label name"),
        ('{a="b"', "expected ',' or '}'"),
        ('{a="b" c="d"}', "expected ',' or '}'"),
        ('{9a="b"}', "expected a label name"),
        ('{a.b="c"}', "expected '=' after label name 'a'"),
        ('{a b="c"}', "expected '=' after label name 'a'"),
        ('{a!="b"}', "expected '=' after label name 'a'"),
        ('{a=~"b"}', "expected '=' after label name 'a'"),
        ('{a=="b"}', "expected '=' after label name 'a'"),
        ("{a=b}", "expected a quoted value for label 'a'"),
        ('{a="b}', "unterminated quoted string"),
        ('{a="b\nc"}', "unterminated quoted string"),
        ("{a=`b}", "unterminated raw string"),
        ('{a="\\q"}', "invalid escape"),
        ('{a="\\x4"}', "invalid '\\x' escape"),
        ('{a="\\u12"}', "invalid '\\u' escape"),
        ('{a="\\400"}', "invalid octal escape"),
        ('{a="\\18"}', "invalid octal escape"),
        ('{a="\\ud800"}', "is not a Unicode character"),
        ('{a="\\U00110000"}', "is not a Unicode character"),
        ('{a="\\xff"}', "invalid UTF-8"),
        ('{a="b"} x', "unexpected text after '}'"),
        ('{a="b",,}', "expected a label name"),
        ('{a="b", a="c"}', "label name 'a' is repeated"),
    ],
)
def test_bad_label_strings(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="label string") as e:
        parse_labels(text)
    assert problem in str(e.value)


def test_bad_label_string_in_a_request_names_the_stream() -> None:
    body = proto_body([('{a="b"}', []), ('{a="b}', [{"line": "x"}])])
    with pytest.raises(ValueError, match=r"invalid Loki push protobuf: streams\[1\]\.labels: "):
        decode_loki_push(body, PROTO, NOW)


# --- malformed bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "invalid Loki push JSON: "),
        (b"{", "invalid Loki push JSON: "),
        (b'{"streams": [}', "invalid Loki push JSON: "),
        (b"\xff\xfe", "invalid Loki push JSON: "),
        (b"[]", 'expected an object with "streams", got an array'),
        (b'"x"', 'expected an object with "streams", got a string'),
        (b'{"streams": {}}', "streams: expected an array, got an object"),
        (b'{"streams": [1]}', r"streams[0]: expected an object, got a number"),
        (b'{"streams": [{"stream": [], "values": []}]}', "streams[0].stream: expected an object"),
        (b'{"streams": [{"stream": "{a=\\"b\\"}"}]}', "streams[0].stream: expected an object"),
        (b'{"streams": [{"stream": {"a": {}}}]}', "streams[0].stream.a: expected a string, got an"),
        (b'{"streams": [{"stream": {"a": [1]}}]}', "streams[0].stream.a: expected a string"),
        (b'{"streams": [{"values": {}}]}', "streams[0].values: expected an array, got an object"),
        (b'{"streams": [{"values": [["1", "a"], "x"]}]}',
         r'streams[0].values[1]: expected ["<unix ns>", "<line>"]'),
        (b'{"streams": [{"values": [["1"]]}]}', "streams[0].values[0]: expected"),
        (b'{"streams": [{"values": [[]]}]}', "got 0 items"),
        (b'{"streams": [{"values": [["1", 5]]}]}',
         "streams[0].values[0][1]: the line must be a string, got a number"),
        (b'{"streams": [{"values": [["1", null]]}]}', "the line must be a string, got null"),
        (b'{"streams": [{"values": [["1", "a", "md"]]}]}',
         "streams[0].values[0][2]: expected an object of strings, got a string"),
        (b'{"streams": [{"values": [["1", "a", {"k": {"x": 1}}]]}]}',
         "streams[0].values[0][2].k: expected a string, got an object"),
        (b'{"streams": [{"labels": 5}]}', "streams[0].labels: expected a label string"),
        (b'{"streams": [{"labels": "{a=b}"}]}',
         "streams[0].labels: expected a quoted value for label 'a'"),
        (b'{"streams": [{"labels": "{}", "entries": {}}]}', "streams[0].entries: expected an"),
        (b'{"streams": [{"labels": "{}", "entries": [5]}]}', "streams[0].entries[0]: expected"),
        (b'{"streams": [{"labels": "{}", "entries": [{"line": 5}]}]}',
         "streams[0].entries[0].line: expected a string"),
        (b'{"streams": [{"labels": "{}", "entries": [{"line": "", "structuredMetadata": 1}]}]}',
         "streams[0].entries[0].structuredMetadata: expected an array"),
        (b'{"streams": [{"labels": "{}", "entries": [{"structuredMetadata": [{"n": 1}]}]}]}',
         "streams[0].entries[0].structuredMetadata[0]: expected"),
    ],
)  # fmt: skip
def test_malformed_json(body: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid Loki push JSON: ") as e:
        decode_loki_push(body, JSON, NOW)
    assert problem in str(e.value)


def test_a_shape_error_after_a_bad_timestamp_still_fails_the_request() -> None:
    with pytest.raises(ValueError, match=r"streams\[0\]\.values\[1\]\[1\]"):
        one({"job": "x"}, ["bad", "line"], ["1", 7])


def test_malformed_protobuf_bodies() -> None:
    good = PushRequest()
    stream = good.streams.add(labels='{job="x"}')
    stream.entries.add(line="hello world").timestamp.seconds = 1
    raw = good.SerializeToString()
    cases = {
        b"": "not snappy block-compressed",
        b"not snappy at all": "not snappy block-compressed",
        b"\xff\xff\xff\xff\x0f\x00": "header claims 4294967295 bytes",
        bytes(cramjam.snappy.compress(raw)): "not snappy block-compressed",  # framed format
        snappy(raw)[:-3]: "not snappy block-compressed",  # cut compressed bytes
        snappy(raw[:-3]): "invalid Loki push protobuf",  # cut protobuf
        snappy(b"\x0a\x05\x0a\x03\xff\xfe\xfd"): "invalid Loki push protobuf",  # not UTF-8
        snappy(b"\x0a"): "invalid Loki push protobuf",
        snappy(raw + b"\x0b"): "invalid Loki push protobuf",  # a group never ended
    }
    for body, problem in cases.items():
        with pytest.raises(ValueError, match=r"^invalid Loki push ") as e:
            decode_loki_push(body, PROTO, NOW)
        assert problem in str(e.value), (body, str(e.value))
    assert rows(decode_loki_push(snappy(raw), PROTO, NOW))[0]["body"] == "hello world"


# --- python-logging-loki -------------------------------------------------------------------
# python-logging-loki's LokiHandler posts JSON with ``requests`` (``json=payload``). Its
# emitter "1" (``/loki/api/v1/push``) sends the record's tags (handler tags, the level as
# ``severity`` in the 0.3 releases and ``level`` later, ``logger``, ``extra={"tags": ...}``,
# values as given: numbers stay JSON numbers) and ``[str(ns), line]``; emitter "0", the
# default, sends the legacy shape: a label string built as ``name="value"`` joined by ","
# and ``{"ts": <RFC 3339 with microseconds and offset>, "line": ...}``.

PYTHON_LOGGING_LOKI_V1 = (
    b'{"streams": [{"stream": {"application": "my-app", "severity": "error", '
    b'"logger": "my-logger", "service": "my-service", "PER": 21}, '
    b'"values": [["1571237383012345600", "Something happened"]]}]}'
)
PYTHON_LOGGING_LOKI_V0 = (
    b'{"streams": [{"labels": "{application=\\"my-app\\",severity=\\"error\\",'
    b'logger=\\"my-logger\\",service=\\"my-service\\"}", '
    b'"entries": [{"ts": "2019-10-16T17:49:43.012345+03:00", "line": "Something happened"}]}]}'
)


def test_python_logging_loki_v1_body() -> None:
    (r,) = rows(decode_loki_push(PYTHON_LOGGING_LOKI_V1, "application/json", NOW))
    assert r["body"] == "Something happened"
    assert r["time_unix_nano"] == 1571237383012345600
    assert (r["severity_text"], r["severity_number"]) == ("error", 17)
    assert r["service_name"] == "my-service"
    assert r["resource_attrs_str"] == [
        ("application", "my-app"),
        ("severity", "error"),
        ("logger", "my-logger"),
        ("service", "my-service"),
        ("PER", "21"),
        ("service.name", "my-service"),
    ]


def test_python_logging_loki_v0_body() -> None:
    (r,) = rows(decode_loki_push(PYTHON_LOGGING_LOKI_V0, "application/json", NOW))
    when = datetime.datetime(2019, 10, 16, 14, 49, 43, tzinfo=datetime.UTC)
    assert r["time_unix_nano"] == int(when.timestamp()) * 10**9 + 12_345_000
    assert r["body"] == "Something happened"
    assert (r["service_name"], r["severity_number"]) == ("my-service", 17)
    assert ("logger", "my-logger") in r["resource_attrs_str"]


@pytest.mark.parametrize(
    ("ts", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:01.5Z", 1_500_000_000),
        ("1970-01-01T00:00:00.123456789123Z", 123_456_789),
        ("1970-01-01 01:00:00+01:00", 0),
        ("1970-01-01T00:00:00-00:30", 1800 * 10**9),
        ("2024-02-29T12:00:00z", 1_709_208_000 * 10**9),
    ],
)
def test_legacy_rfc3339_timestamps(ts: str, ns: int) -> None:
    body = push_json([{"labels": '{job="x"}', "entries": [{"ts": ts, "line": "l"}]}])
    (r,) = rows(decode_loki_push(body, JSON, NOW))
    assert r["time_unix_nano"] == (ns or NOW)


@pytest.mark.parametrize(
    "ts",
    ["yesterday", "2023-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00",
     "1969-12-31T23:59:59Z", "2024-01-01T00:00:00+25:00", 17, ""],
)  # fmt: skip
def test_legacy_bad_timestamps(ts: Any) -> None:
    body = push_json(
        [{"labels": '{job="x"}', "entries": [{"ts": ts, "line": "bad"}, {"line": "no ts"}]}]
    )
    decoded = decode_loki_push(body, JSON, NOW)
    assert decoded.rejected == {"invalid_timestamp": 1}
    assert decoded.first_error is not None
    assert decoded.first_error.startswith("streams[0].entries[0].ts: ")
    assert [(r["body"], r["time_unix_nano"]) for r in rows(decoded)] == [("no ts", NOW)]


def test_legacy_structured_metadata() -> None:
    body = push_json(
        [
            {
                "labels": '{job="x"}',
                "entries": [
                    {
                        "ts": "2024-01-01T00:00:00Z",
                        "line": "l",
                        "structuredMetadata": [
                            {"name": "trace_id", "value": TRACE},
                            {"name": "trace_id", "value": "dup"},
                        ],
                    }
                ],
            }
        ]
    )
    (r,) = rows(decode_loki_push(body, JSON, NOW))
    assert r["log_attrs_str"] == [("trace_id", TRACE)]
    assert r["trace_id"] == bytes.fromhex(TRACE)


# --- random input --------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_value_error(body: bytes, content_type: str | None) -> None:
    try:
        decoded = decode_loki_push(body, content_type, NOW)
    except ValueError:
        return
    assert decoded.batch.schema == LOG_SCHEMA
    assert decoded.batch.num_rows + decoded.rejected_count >= 0


@FUZZ
@given(st.binary(max_size=512), st.sampled_from([JSON, PROTO, None]))
def test_random_bytes_raise_only_value_error(body: bytes, content_type: str | None) -> None:
    _decodes_or_value_error(body, content_type)


@FUZZ
@given(st.binary(max_size=512))
def test_random_snappy_bytes_raise_only_value_error(raw: bytes) -> None:
    _decodes_or_value_error(snappy(raw), PROTO)


def _sample_raw() -> bytes:
    req = PushRequest()
    stream = req.streams.add(labels='{app="a", level="info"}')
    entry = stream.entries.add(line=f"trace_id={TRACE} hi")
    entry.timestamp.seconds = 5
    entry.structuredMetadata.add(name="span_id", value=SPAN)
    return req.SerializeToString()


_SAMPLE_RAW = _sample_raw()


@FUZZ
@given(st.binary(max_size=256), st.integers(min_value=0, max_value=200))
def test_mutated_protobuf_raises_only_value_error(noise: bytes, at: int) -> None:
    raw = _SAMPLE_RAW[:at] + noise + _SAMPLE_RAW[at:]
    _decodes_or_value_error(snappy(raw), PROTO)


_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)  # fmt: skip
_entries = st.lists(
    st.lists(_json_values, max_size=4)
    | st.tuples(st.text(alphabet="0123456789x", max_size=20), st.text(max_size=40)).map(list),
    max_size=5,
)
_streams = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "stream": st.dictionaries(st.text(max_size=8), _json_values, max_size=4),
            "values": _entries | _json_values,
            "labels": st.text(max_size=30) | _json_values,
            "entries": st.lists(st.dictionaries(st.sampled_from(["ts", "line"]), _json_values))
            | _json_values,
        },
    )
    | _json_values,
    max_size=4,
)


@FUZZ
@given(st.fixed_dictionaries({"streams": _streams}) | _json_values)
def test_random_json_documents_raise_only_value_error(doc: Any) -> None:
    try:
        body = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return  # a number orjson cannot write
    _decodes_or_value_error(body, JSON)


@FUZZ
@given(st.text(alphabet="{}=\"'`\\,=~!ax0u \nU7\u00e9", max_size=40))
def test_random_label_strings_raise_only_value_error(text: str) -> None:
    try:
        labels = parse_labels(text)
    except ValueError:
        return
    assert len({name for name, _ in labels}) == len(labels)
    assert all(value for _, value in labels)
