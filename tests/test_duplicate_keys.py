"""Repeated attribute keys: the first occurrence in each list wins, and queries keep working.

OTLP forbids a key twice in one attribute list, but senders do it. Stored as received, one such
span made DuckDB refuse the whole map column ("Arrow map contains duplicate key") and so every
query over live data. The decoder keeps only the first occurrence of a key per list (whatever
the value types) and counts the rest; these tests check that at every attribute level, in short
and long lists, in DuckDB and through a real server.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any
from urllib.parse import quote

import duckdb
import grpc
import orjson
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from conftest import Server
from test_otlp_decode import assert_matches_oracle, f_bytes
from threadline.model.otlp_decode import decode_export_request
from threadline.model.schema import ATTR_SCOPES, ATTR_TYPES

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def repeated(tag: str) -> list[KeyValue]:
    """An attribute list repeating keys within a type and across types; first values tagged."""
    return [
        kv("k", string_value=f"{tag}-first"),
        kv("n", int_value=1),
        kv("k", string_value="second"),  # same key, same type
        kv("k", int_value=7),  # same key, other types
        kv("k", double_value=1.5),
        kv("k", bool_value=True),
        kv("k", array_value=ArrayValue()),
        kv("n", string_value="not an int"),  # an int key repeated as a string
        kv("", bool_value=False),
        kv("", bool_value=True),  # the empty key repeated
        kv("raw", bytes_value=b"\x01"),
        kv("raw", bytes_value=b"\x02"),
        KeyValue(key="novalue"),
        kv("novalue", string_value="later"),
        kv(f"{tag}.unique", string_value="u"),
    ]


# what repeated(tag) keeps, by type, and how many entries it drops
def expected(tag: str) -> dict[str, list[tuple[str, Any]]]:
    return {
        "str": [("k", f"{tag}-first"), (f"{tag}.unique", "u")],
        "int": [("n", 1)],
        "float": [],
        "bool": [("", False)],
        "raw": [("raw", AnyValue(bytes_value=b"\x01").SerializeToString()), ("novalue", b"")],
    }


DROPPED_PER_LIST = 9


def every_level_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(repeated("resource"))
    ss = rs.scope_spans.add()
    ss.scope.name = "lib"
    ss.scope.attributes.extend(repeated("scope"))
    for i in range(2):
        sp = ss.spans.add(
            trace_id=b"T" * 16, span_id=bytes([i + 1]) * 8, name=f"s{i}", end_time_unix_nano=5
        )
        sp.attributes.extend(repeated("span"))
        sp.events.add(name="e").attributes.extend(repeated("event"))
        sp.links.add(trace_id=b"L" * 16, span_id=b"l" * 8).attributes.extend(repeated("link"))
    return req


def test_repeated_keys_at_every_level_keep_the_first_occurrence() -> None:
    got = assert_matches_oracle(every_level_request().SerializeToString())
    assert got is not None
    rows = got.batch.to_pylist()
    assert len(rows) == 2
    for row in rows:
        for scope in ATTR_SCOPES:
            assert {t: row[f"{scope}_attrs_{t}"] for t in ATTR_TYPES} == expected(scope)
        for item, tag in ((row["events"][0], "event"), (row["links"][0], "link")):
            assert {t: item[f"attrs_{t}"] for t in ATTR_TYPES} == expected(tag)
    # resource and scope lists once each (not once per span), span, event, link per span
    assert got.duplicate_attributes == DROPPED_PER_LIST * (2 + 3 * 2)


def every_map_column_query() -> str:
    top = [f"{scope}_attrs_{t}" for scope in ATTR_SCOPES for t in ATTR_TYPES]
    nested = [f"{n}.attrs_{t}" for n in ("e", "l") for t in ATTR_TYPES]
    return (
        f"SELECT name, {', '.join(top)}, {', '.join(nested)}, "
        "span_attrs_str['k'], span_attrs_int['n'], e.attrs_str['k'], l.attrs_bool[''] "
        "FROM (SELECT *, unnest(events) AS e, unnest(links) AS l FROM t) ORDER BY name"
    )


def test_duckdb_reads_every_map_column() -> None:
    batch = decode_export_request(every_level_request().SerializeToString()).batch
    con = duckdb.connect()
    con.register("t", pa.Table.from_batches([batch]))
    rows = con.execute(every_map_column_query()).fetchall()
    assert [r[0] for r in rows] == ["s0", "s1"]
    assert rows[0][-4:] == ("span-first", 1, "event-first", False)
    assert con.execute("SELECT * FROM t").fetchall()  # every column, nested ones included
    # resource.k, as TraceQL would ask for it
    assert con.execute("SELECT resource_attrs_str['k'] FROM t").fetchall() == [
        ("resource-first",),
        ("resource-first",),
    ]


def test_one_bad_span_among_good_ones_is_queryable() -> None:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(50):
        sp = ss.spans.add(trace_id=b"T" * 16, span_id=(i + 1).to_bytes(8, "big"), name=f"s{i}")
        sp.attributes.extend([kv("i", int_value=i), kv("k", string_value="v")])
        if i == 17:
            sp.attributes.append(kv("i", int_value=-1))
    got = decode_export_request(req.SerializeToString())
    assert got.duplicate_attributes == 1
    con = duckdb.connect()
    con.register("t", pa.Table.from_batches([got.batch]))
    assert con.execute("SELECT sum(span_attrs_int['i']) FROM t").fetchone() == (sum(range(50)),)


def random_long_request(seed: int) -> ExportTraceServiceRequest:
    """Attribute lists of 0 to 300 entries from a small pool of keys, at every level.

    Past 16 entries the decoder looks keys up in a hash set instead of searching the list, so
    the lengths cross that point; the same keys also come back in the next list of each kind
    (they are all kept there).
    """
    rnd = random.Random(seed)
    pool = [f"key.{i}" for i in range(rnd.choice([3, 40, 400]))] + ["", "k"]

    def attrs() -> list[KeyValue]:
        out = []
        for _ in range(rnd.choice([0, 1, 5, 15, 16, 17, 40, 300])):
            key = rnd.choice(pool)
            value = rnd.choice(
                [
                    AnyValue(string_value=str(rnd.random())),
                    AnyValue(int_value=rnd.getrandbits(63)),
                    AnyValue(double_value=rnd.random()),
                    AnyValue(bool_value=rnd.random() < 0.5),
                    AnyValue(bytes_value=rnd.randbytes(3)),
                ]
            )
            out.append(KeyValue(key=key, value=value))
        return out

    req = ExportTraceServiceRequest()
    for _ in range(rnd.randrange(1, 3)):
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(attrs())
        for _ in range(rnd.randrange(1, 3)):
            ss = rs.scope_spans.add()
            ss.scope.attributes.extend(attrs())
            for _ in range(rnd.randrange(1, 4)):
                sp = ss.spans.add(
                    trace_id=rnd.randbytes(16) if rnd.random() < 0.85 else b"",
                    span_id=rnd.randbytes(8),
                )
                for _ in range(rnd.randrange(3)):
                    sp.events.add(name="e").attributes.extend(attrs())
                sp.attributes.extend(attrs())
                for _ in range(rnd.randrange(3)):
                    ln = sp.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8))
                    ln.attributes.extend(attrs())
    return req


@pytest.mark.parametrize("seed", range(40))
def test_long_lists_match_the_oracle(seed: int) -> None:
    got = assert_matches_oracle(random_long_request(seed).SerializeToString())
    assert got is not None
    con = duckdb.connect()
    con.register("t", pa.Table.from_batches([got.batch]))
    con.execute(every_map_column_query()).fetchall()


def test_lists_continue_across_merged_occurrences() -> None:
    # a scope (and a resource) in two occurrences is one attribute list: protobuf merges them
    a1 = f_bytes(3, kv("a", string_value="1").SerializeToString())
    a2 = f_bytes(3, kv("a", int_value=2).SerializeToString())
    b = f_bytes(3, kv("b", int_value=3).SerializeToString())
    span = Span(trace_id=b"T" * 16, span_id=b"S" * 8).SerializeToString()
    scope_spans = f_bytes(1, a1) + f_bytes(2, span) + f_bytes(1, a2 + b)
    r1 = f_bytes(1, kv("r", int_value=1).SerializeToString())
    r2 = f_bytes(1, kv("r", int_value=2).SerializeToString())
    data = f_bytes(1, f_bytes(1, r1) + f_bytes(2, scope_spans) + f_bytes(1, r2))
    got = assert_matches_oracle(data)
    assert got is not None
    (row,) = got.batch.to_pylist()
    assert (row["scope_attrs_str"], row["scope_attrs_int"]) == ([("a", "1")], [("b", 3)])
    assert row["resource_attrs_int"] == [("r", 1)]
    assert got.duplicate_attributes == 2


def test_the_same_keys_in_the_next_list_are_kept() -> None:
    keys = [f"key{i}" for i in range(100)]  # long lists: hash sets, emptied per list
    req = ExportTraceServiceRequest()
    for r in range(2):
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(kv(k, int_value=r) for k in keys)
        ss = rs.scope_spans.add()
        for s in range(2):
            sp = ss.spans.add(trace_id=b"T" * 16, span_id=bytes([r + 1, s + 1]) * 4)
            sp.attributes.extend(kv(k, int_value=s) for k in keys * 2)
            for e in range(2):
                sp.events.add().attributes.extend(kv(k, int_value=e) for k in keys)
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    for row in got.batch.to_pylist():
        assert len(row["resource_attrs_int"]) == len(row["span_attrs_int"]) == 100
        assert [len(ev["attrs_int"]) for ev in row["events"]] == [100, 100]
    assert got.duplicate_attributes == 4 * 100  # the second half of each span's list


def test_repeats_in_a_rejected_span_are_not_counted() -> None:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i, trace_id in enumerate((b"T" * 16, b"bad", b"T" * 16)):
        sp = ss.spans.add(trace_id=trace_id, span_id=bytes([i + 1]) * 8, name=f"s{i}")
        sp.attributes.extend([kv("k", int_value=i), kv("k", int_value=-1)])
        sp.events.add().attributes.extend([kv("e", int_value=i)] * 30)
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    assert got.batch.column("name").to_pylist() == ["s0", "s2"]
    assert got.batch.column("span_attrs_int").to_pylist() == [[("k", 0)], [("k", 2)]]
    assert got.duplicate_attributes == 2 * (1 + 29)


def test_repeated_keys_are_still_checked() -> None:
    # a left-out entry must still be well formed, as protobuf requires
    bad_value = f_bytes(1, b"k") + f_bytes(2, f_bytes(1, b"\xff"))
    span = (
        f_bytes(1, b"T" * 16)
        + f_bytes(2, b"S" * 8)
        + f_bytes(9, kv("k", string_value="ok").SerializeToString())
        + f_bytes(9, bad_value)
    )
    with pytest.raises(ValueError, match="not valid UTF-8"):
        decode_export_request(f_bytes(1, f_bytes(2, f_bytes(2, span))))


def test_huge_list_of_distinct_keys_is_not_quadratic() -> None:
    # 200k distinct keys of one length in one span: a linear search per key would take
    # minutes; the hash set keeps it well under a second (the bound is loose for slow hosts)
    n = 200_000
    attrs = b"".join(f_bytes(9, f_bytes(1, b"%08d" % i)) for i in range(n))
    dup = b"".join(f_bytes(9, f_bytes(1, b"%08d" % i)) for i in range(0, n, 2))
    span = f_bytes(1, b"T" * 16) + f_bytes(2, b"S" * 8) + attrs + dup
    data = f_bytes(1, f_bytes(2, f_bytes(2, span)))
    start = time.perf_counter()
    got = decode_export_request(data)
    elapsed = time.perf_counter() - start
    assert got.duplicate_attributes == n // 2
    assert len(got.batch.column("span_attrs_raw")[0]) == n
    assert elapsed < 10, elapsed


# ---------------------------------------------------------------------------------------
# through a real server: one bad span must not break queries over live data
# ---------------------------------------------------------------------------------------


def _request(service: str, trace_id: bytes, attrs: list[KeyValue]) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", string_value=service), *attrs])
    ss = rs.scope_spans.add()
    ss.scope.name = "dup-lib"
    ss.scope.attributes.extend(attrs)
    now = time.time_ns()
    sp = ss.spans.add(
        trace_id=trace_id,
        span_id=os.urandom(7) + b"\x01",
        name=f"{service}-op",
        start_time_unix_nano=now - 1_000_000,
        end_time_unix_nano=now,
    )
    sp.attributes.extend(attrs)
    sp.events.add(name="ev", time_unix_nano=now).attributes.extend(attrs)
    sp.links.add(trace_id=os.urandom(16), span_id=os.urandom(8)).attributes.extend(attrs)
    return req.SerializeToString()


def _get(server: Server, path: str) -> Any:
    r = server.get(path)
    assert r.status == 200, (path, r.status, r.data[:500])
    return orjson.loads(r.data)


def _found(server: Server, q: str) -> set[str]:
    doc = _get(server, f"/api/search?q={quote(q)}&limit=100&spss=10")
    return {t["traceID"] for t in doc.get("traces", [])}


def test_server_queries_work_with_a_span_with_repeated_keys(server: Server) -> None:
    call = grpc.insecure_channel(server.grpc_target).unary_unary(EXPORT)
    good_id = b"\x11" + os.urandom(15)
    bad_id = b"\x22" + os.urandom(15)
    call(_request("dup-good", good_id, [kv("dup.key", string_value="only")]), timeout=10)
    bad_attrs = [
        kv("dup.key", string_value="first"),
        kv("dup.key", string_value="second"),
        kv("dup.key", int_value=3),
    ]
    call(_request("dup-bad", bad_id, bad_attrs), timeout=10)
    good, bad = good_id.hex(), bad_id.hex()

    # live data (the ingester's in-memory spans), then the same after a flush to a block
    for stage in ("live", "block"):
        assert _found(server, "{ }") >= {good, bad}, stage
        assert _found(server, '{ resource.service.name = "dup-good" }') == {good}, stage
        assert _found(server, '{ span.dup.key = "first" }') == {bad}, stage
        assert _found(server, '{ span.dup.key = "second" }') == set(), stage
        assert _found(server, "{ span.dup.key = 3 }") == set(), stage
        assert _found(server, '{ resource.dup.key = "first" }') == {bad}, stage
        assert _found(server, '{ event.dup.key = "first" }') == {bad}, stage
        assert _found(server, '{ link.dup.key = "first" }') == {bad}, stage
        assert _found(server, '{ instrumentation.dup.key = "first" }') == {bad}, stage
        scopes = {s["name"]: s["tags"] for s in _get(server, "/api/v2/search/tags")["scopes"]}
        assert "dup.key" in scopes["span"] and "dup.key" in scopes["resource"], stage
        values = _get(server, "/api/v2/search/tag/span.dup.key/values")["tagValues"]
        assert {"type": "string", "value": "first"} in values, stage
        assert {"type": "string", "value": "second"} not in values, stage
        assert _get(server, f"/api/traces/{bad}")["batches"], stage
        server.flush()
