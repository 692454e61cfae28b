"""Tests for threadline.model.otlp_decode.

The oracle is the protobuf library's own parse of the same bytes: every decoded row is
compared with values computed from the parsed ``ExportTraceServiceRequest`` by the small
reference decoder below, and bytes the protobuf library rejects must be rejected too. The
reference keeps the first occurrence of a key in each attribute list and counts the others.
"""

from __future__ import annotations

import random
import struct
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from threadline.model.otlp_decode import DecodedSpans, decode_export_request
from threadline.model.schema import ATTR_SCOPES, ATTR_TYPES, SPAN_SCHEMA

MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------------------------------
# wire-format helpers (to build inputs the protobuf classes cannot produce)
# ---------------------------------------------------------------------------------------


def varint(v: int) -> bytes:
    v &= MASK64
    out = bytearray()
    while True:
        low = v & 0x7F
        v >>= 7
        if v:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(num: int, wt: int) -> bytes:
    return varint(num << 3 | wt)


def f_varint(num: int, v: int) -> bytes:
    return tag(num, 0) + varint(v)


def f_fixed64(num: int, v: int) -> bytes:
    return tag(num, 1) + struct.pack("<Q", v & MASK64)


def f_fixed32(num: int, v: int) -> bytes:
    return tag(num, 5) + struct.pack("<I", v & 0xFFFFFFFF)


def f_bytes(num: int, payload: bytes) -> bytes:
    return tag(num, 2) + varint(len(payload)) + payload


def f_group(num: int, body: bytes) -> bytes:
    return tag(num, 3) + body + tag(num, 4)


# unknown fields of every wire type, including a (deprecated) group with a nested group
UNKNOWN = (
    f_varint(1000, 7)
    + f_fixed64(1001, 1)
    + f_bytes(1002, b"junk")
    + f_fixed32(1003, 5)
    + f_group(1004, f_varint(1, 1) + f_group(2, f_bytes(3, b"x")))
)


# ---------------------------------------------------------------------------------------
# reference decoder over the protobuf library's parse
# ---------------------------------------------------------------------------------------


def wrap(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def fbits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


class RefCounter:
    """Attributes the reference left out for repeating a key of their list."""

    def __init__(self) -> None:
        self.duplicates = 0


def ref_attrs(kvs: Any, counter: RefCounter) -> dict[str, list[tuple[str, Any]]]:
    """Typed maps of an attribute list: the first occurrence of each key, whatever its type."""
    out: dict[str, list[tuple[str, Any]]] = {t: [] for t in ATTR_TYPES}
    seen: set[str] = set()
    for kv in kvs:
        if kv.key in seen:
            counter.duplicates += 1
            continue
        seen.add(kv.key)
        which = kv.value.WhichOneof("value")
        if which == "string_value":
            out["str"].append((kv.key, kv.value.string_value))
        elif which == "int_value":
            out["int"].append((kv.key, kv.value.int_value))
        elif which == "double_value":
            out["float"].append((kv.key, fbits(kv.value.double_value)))
        elif which == "bool_value":
            out["bool"].append((kv.key, kv.value.bool_value))
        else:
            out["raw"].append((kv.key, kv.value))
    return out


def ref_nested_attrs(kvs: Any, counter: RefCounter) -> dict[str, list[tuple[str, Any]]]:
    """An event's or link's attributes: the fields ``attrs_str`` ... ``attrs_raw``."""
    return {f"attrs_{t}": v for t, v in ref_attrs(kvs, counter).items()}


def ref_rejection(sp: Span) -> tuple[str, str] | None:
    where = f"span {sp.name!r}: "
    if len(sp.trace_id) != 16:
        return "invalid_trace_id", f"{where}trace id must be 16 bytes, got {len(sp.trace_id)}"
    if not any(sp.trace_id):
        return "invalid_trace_id", f"{where}trace id must not be all zeros"
    if len(sp.span_id) != 8:
        return "invalid_span_id", f"{where}span id must be 8 bytes, got {len(sp.span_id)}"
    if not any(sp.span_id):
        return "invalid_span_id", f"{where}span id must not be all zeros"
    if sp.parent_span_id and len(sp.parent_span_id) != 8:
        n = len(sp.parent_span_id)
        return "invalid_parent_span_id", f"{where}parent span id must be 8 bytes or empty, got {n}"
    if sp.end_time_unix_nano < sp.start_time_unix_nano:
        return "end_before_start", (
            f"{where}end time {sp.end_time_unix_nano} is before start time "
            f"{sp.start_time_unix_nano}"
        )
    return None


def reference_decode(
    req: ExportTraceServiceRequest,
) -> tuple[list[dict[str, Any]], dict[str, int], str | None, int]:
    """Rows, rejections, first error and the number of attributes left out as duplicates."""
    rows: list[dict[str, Any]] = []
    rejected: dict[str, int] = {}
    first_error = None
    counter = RefCounter()  # resource and scope lists count once, spans only when accepted
    for rs in req.resource_spans:
        res = ref_attrs(rs.resource.attributes, counter)
        service = dict(res["str"]).get("service.name", "")  # the first one, if a string
        for ss in rs.scope_spans:
            scope = ref_attrs(ss.scope.attributes, counter)
            for sp in ss.spans:
                bad = ref_rejection(sp)
                if bad:
                    rejected[bad[0]] = rejected.get(bad[0], 0) + 1
                    first_error = first_error or bad[1]
                    continue
                span_attrs = ref_attrs(sp.attributes, counter)
                parent = sp.parent_span_id
                row = {
                    "trace_id": sp.trace_id,
                    "span_id": sp.span_id,
                    "parent_span_id": parent if len(parent) == 8 and any(parent) else None,
                    "trace_state": sp.trace_state,
                    "name": sp.name,
                    "kind": wrap(sp.kind, 8),
                    "flags": sp.flags,
                    "start_unix_nano": wrap(sp.start_time_unix_nano, 64),
                    "duration_nano": wrap(sp.end_time_unix_nano - sp.start_time_unix_nano, 64),
                    "status_code": wrap(sp.status.code, 8),
                    "status_message": sp.status.message,
                    "service_name": service,
                    "scope_name": ss.scope.name,
                    "scope_version": ss.scope.version,
                    **{f"scope_attrs_{t}": scope[t] for t in ATTR_TYPES},
                    **{f"resource_attrs_{t}": res[t] for t in ATTR_TYPES},
                    **{f"span_attrs_{t}": span_attrs[t] for t in ATTR_TYPES},
                    "dropped_attributes_count": sp.dropped_attributes_count,
                    "events": [
                        {
                            "time_unix_nano": wrap(ev.time_unix_nano, 64),
                            "name": ev.name,
                            **ref_nested_attrs(ev.attributes, counter),
                            "dropped_attributes_count": ev.dropped_attributes_count,
                        }
                        for ev in sp.events
                    ],
                    "dropped_events_count": sp.dropped_events_count,
                    "links": [
                        {
                            "trace_id": ln.trace_id if len(ln.trace_id) == 16 else bytes(16),
                            "span_id": ln.span_id if len(ln.span_id) == 8 else bytes(8),
                            "trace_state": ln.trace_state,
                            **ref_nested_attrs(ln.attributes, counter),
                            "dropped_attributes_count": ln.dropped_attributes_count,
                            "flags": ln.flags,
                        }
                        for ln in sp.links
                    ],
                    "dropped_links_count": sp.dropped_links_count,
                }
                rows.append(row)
    return rows, rejected, first_error, counter.duplicates


def normalize_attrs(source: dict[str, Any], stem: str) -> dict[str, Any]:
    """Typed maps at ``stem`` in the reference's form: parsed raw values, float bits."""
    out = dict(source)
    out[f"{stem}_float"] = [(k, fbits(v)) for k, v in source[f"{stem}_float"]]
    out[f"{stem}_raw"] = [(k, AnyValue.FromString(v)) for k, v in source[f"{stem}_raw"]]
    return out


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """Our row in the reference's form (every typed attribute map, also of events and links)."""
    out = dict(row)
    for scope in ATTR_SCOPES:
        out = normalize_attrs(out, f"{scope}_attrs")
    out["events"] = [normalize_attrs(ev, "attrs") for ev in row["events"]]
    out["links"] = [normalize_attrs(ln, "attrs") for ln in row["links"]]
    return out


def oracle_parse(data: bytes) -> ExportTraceServiceRequest | None:
    try:
        return ExportTraceServiceRequest.FromString(data)
    except DecodeError:
        return None


def assert_matches_oracle(data: bytes) -> DecodedSpans | None:
    """Decode ``data`` and check it against the protobuf parse; None if both reject it."""
    req = oracle_parse(data)
    if req is None:
        with pytest.raises(ValueError, match=r"^invalid OTLP protobuf: "):
            decode_export_request(data)
        return None
    got = decode_export_request(data)
    assert got.batch.schema.equals(SPAN_SCHEMA, check_metadata=True)
    got.batch.validate(full=True)
    rows, rejected, first_error, duplicates = reference_decode(req)
    ours = got.batch.to_pylist()
    assert len(ours) == len(rows)
    for i, (mine, ref) in enumerate(zip(ours, rows, strict=True)):
        assert normalize_row(mine) == ref, f"row {i}"
    assert got.rejected == rejected
    assert got.rejected_count == sum(rejected.values())
    assert got.first_error == first_error
    assert got.duplicate_attributes == duplicates
    return got


# ---------------------------------------------------------------------------------------
# requests built with the protobuf classes
# ---------------------------------------------------------------------------------------


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def with_unknown(msg: Any) -> Any:
    """The same message with unknown fields of every wire type appended."""
    return type(msg).FromString(msg.SerializeToString() + UNKNOWN)


def ids(rnd: random.Random) -> tuple[bytes, bytes]:
    return rnd.randbytes(16), rnd.randbytes(8)


def every_attr_type() -> list[KeyValue]:
    nested = AnyValue(
        kvlist_value=KeyValueList(
            values=[kv("inner", string_value="x"), kv("list", array_value=ArrayValue())]
        )
    )
    return [
        kv("str", string_value="hello"),
        kv("str.unicode", string_value="héllo 中文 🙂"),
        kv("str.empty", string_value=""),
        kv("int", int_value=42),
        kv("int.neg", int_value=-(2**63)),
        kv("int.max", int_value=2**63 - 1),
        kv("int.zero", int_value=0),
        kv("float", double_value=3.25),
        kv("float.nan", double_value=float("nan")),
        kv("float.inf", double_value=float("-inf")),
        kv("bool.t", bool_value=True),
        kv("bool.f", bool_value=False),
        kv(
            "array",
            array_value=ArrayValue(
                values=[AnyValue(int_value=1), AnyValue(string_value="two"), nested]
            ),
        ),
        kv("kvlist", kvlist_value=KeyValueList(values=[kv("a", bool_value=True)])),
        kv("bytes", bytes_value=b"\x00\xffbin"),
        kv("bytes.empty", bytes_value=b""),
        KeyValue(key="empty.anyvalue", value=AnyValue()),
        KeyValue(key="no.value"),
        kv("str", string_value="repeated key"),
        kv("", string_value="empty key"),
    ]


def rich_request(seed: int = 7) -> ExportTraceServiceRequest:
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()

    # resource 1: service.name, all attribute types, two scopes, unknown fields everywhere
    rs = req.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.21.0")
    rs.resource.attributes.extend([kv("service.name", string_value="checkout"), *every_attr_type()])
    rs.resource.dropped_attributes_count = 3
    ss = rs.scope_spans.add(scope=InstrumentationScope(name="flask", version="1.2.3"))
    ss.scope.attributes.extend([kv("scope.attr", string_value="kept"), *every_attr_type()])
    trace_id, root_id = ids(rnd)
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name="GET /",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_500_000_000,
        trace_state="vendor=a,other=b",
        flags=0x301,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
        dropped_attributes_count=2,
        dropped_events_count=4,
        dropped_links_count=5,
    )
    root.attributes.extend(every_attr_type())
    ev = root.events.add(time_unix_nano=1_700_000_000_100_000_000, name="exception")
    ev.attributes.extend(
        [kv("exception.type", string_value="ValueError"), kv("n", int_value=1), KeyValue()]
    )
    root.events.add(name="every type", time_unix_nano=2).attributes.extend(every_attr_type())
    ev.dropped_attributes_count = 1
    root.events.add(name="no attrs")
    root.events.append(with_unknown(Span.Event(name="unknown fields", time_unix_nano=5)))
    root.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), trace_state="t=1")
    root.links[0].attributes.extend([kv("link.kind", string_value="follows"), *every_attr_type()])
    root.links[0].dropped_attributes_count = 9
    root.links[0].flags = 0x100
    root.links.add(trace_id=b"short", span_id=b"toolong!!")  # stored as zeros
    root.links.append(with_unknown(Span.Link(trace_id=bytes(16), span_id=b"12345678")))
    ss.spans.append(root)
    parent = root_id
    for kind in range(6):
        child = Span(
            trace_id=trace_id,
            span_id=rnd.randbytes(8),
            parent_span_id=parent,
            name=f"child {kind}",
            kind=kind,
            start_time_unix_nano=1_700_000_000_000_000_000 + kind,
            end_time_unix_nano=1_700_000_000_000_000_000 + kind * 1000,
            status=Status(code=kind % 3),
        )
        child.attributes.append(kv("i", int_value=kind))
        ss.spans.append(with_unknown(child) if kind % 2 else child)
        parent = child.span_id
    rs.scope_spans.append(
        with_unknown(
            ScopeSpans(
                scope=with_unknown(InstrumentationScope(name="sqlalchemy")),
                spans=[
                    Span(trace_id=trace_id, span_id=rnd.randbytes(8), name="empty scope version"),
                    # 8 zero bytes of parent: a root span
                    Span(trace_id=trace_id, span_id=rnd.randbytes(8), parent_span_id=bytes(8)),
                ],
            )
        )
    )
    rs.scope_spans.add()  # no scope, no spans

    # resource 2: service.name first as an int, then as a string; empty scope
    rs2 = req.resource_spans.add()
    rs2.resource.attributes.extend(
        [
            kv("service.name", int_value=5),
            kv("host.name", string_value="h1"),
            kv("service.name", string_value="second"),
            kv("service.name", string_value="third"),
        ]
    )
    ss2 = rs2.scope_spans.add()
    for i in range(3):
        t, s = ids(rnd)
        sp = Span(trace_id=t, span_id=s, name=f"s{i}", kind=Span.SPAN_KIND_CLIENT)
        sp.status.message = "only a message"
        ss2.spans.append(sp)

    # resource 3: no resource at all, unknown fields on the resource spans and the resource
    rs3 = ResourceSpans()
    t, s = ids(rnd)
    rs3.scope_spans.add(scope=InstrumentationScope(version="v only")).spans.add(
        trace_id=t, span_id=s, start_time_unix_nano=2**64 - 1, end_time_unix_nano=2**64 - 1
    )
    req.resource_spans.append(with_unknown(rs3))
    rs4 = req.resource_spans.add()
    rs4.resource.CopyFrom(with_unknown(Resource(attributes=[kv("service.name", string_value="x")])))
    t, s = ids(rnd)
    rs4.scope_spans.add().spans.add(trace_id=t, span_id=s, end_time_unix_nano=2**63 + 5)
    return with_unknown(req)


# ---------------------------------------------------------------------------------------
# tests: correctness against the oracle
# ---------------------------------------------------------------------------------------


def test_empty_request_gives_empty_batch() -> None:
    for data in (b"", ExportTraceServiceRequest().SerializeToString()):
        got = decode_export_request(data)
        assert got.batch.num_rows == 0
        assert got.batch.schema.equals(SPAN_SCHEMA, check_metadata=True)
        got.batch.validate(full=True)
        assert got.rejected == {}
        assert got.rejected_count == 0
        assert got.first_error is None


def test_request_without_spans() -> None:
    req = ExportTraceServiceRequest()
    req.resource_spans.add().resource.attributes.append(kv("service.name", string_value="a"))
    req.resource_spans.add().scope_spans.add().scope.name = "s"
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None and got.batch.num_rows == 0


def test_rich_request_matches_oracle() -> None:
    data = rich_request().SerializeToString()
    assert data.count(b"junk") == 10  # the unknown fields really are on the wire
    got = assert_matches_oracle(data)
    assert got is not None
    assert got.batch.num_rows == 14
    assert got.rejected == {}
    rows = got.batch.to_pylist()
    root = rows[0]
    assert root["service_name"] == "checkout"
    assert root["resource_attrs_str"][0] == ("service.name", "checkout")
    assert root["scope_name"] == "flask" and root["scope_version"] == "1.2.3"
    assert root["scope_attrs_str"][0] == ("scope.attr", "kept")
    assert [k for k, _ in root["scope_attrs_raw"]] == [k for k, _ in root["span_attrs_raw"]]
    assert all(r["scope_attrs_str"] == root["scope_attrs_str"] for r in rows[1:7])
    assert all(r[f"scope_attrs_{t}"] == [] for r in rows[7:] for t in ATTR_TYPES)
    exc = root["events"][0]
    assert exc["attrs_str"] == [("exception.type", "ValueError")]
    assert exc["attrs_int"] == [("n", 1)] and exc["attrs_raw"] == [("", b"")]
    assert root["events"][1]["attrs_bool"] == [("bool.t", True), ("bool.f", False)]
    assert root["links"][0]["attrs_str"][0] == ("link.kind", "follows")
    assert root["parent_span_id"] is None
    assert rows[1]["parent_span_id"] == root["span_id"]
    assert [r["kind"] for r in rows[1:7]] == [0, 1, 2, 3, 4, 5]
    # the repeated key: only its first occurrence is kept
    assert root["span_attrs_str"][-2:] == [("str.empty", ""), ("", "empty key")]
    assert [v for k, v in root["span_attrs_str"] if k == "str"] == ["hello"]
    # one in each list of every_attr_type() (resource, scope, span, event, link), two more
    # service.name in resource 2 (each list counted once, not once per span)
    assert got.duplicate_attributes == 7
    assert dict(root["span_attrs_bool"]) == {"bool.t": True, "bool.f": False}
    assert [k for k, _ in root["span_attrs_raw"]] == [
        "array",
        "kvlist",
        "bytes",
        "bytes.empty",
        "empty.anyvalue",
        "no.value",
    ]
    assert root["links"][1]["trace_id"] == bytes(16)
    assert root["links"][1]["span_id"] == bytes(8)
    assert rows[7]["scope_name"] == "sqlalchemy" and rows[7]["scope_version"] == ""
    assert rows[8]["parent_span_id"] is None  # parent of 8 zero bytes
    # service.name first as an int: that one is kept, so there is no service name
    assert [r["service_name"] for r in rows[9:12]] == [""] * 3
    assert [r["resource_attrs_int"] for r in rows[9:12]] == [[("service.name", 5)]] * 3
    assert [r["resource_attrs_str"] for r in rows[9:12]] == [[("host.name", "h1")]] * 3
    assert rows[-2]["service_name"] == "" and rows[-2]["scope_version"] == "v only"
    assert rows[-2]["start_unix_nano"] == -1
    assert rows[-1]["service_name"] == "x"


def test_raw_attribute_values_are_wire_bytes() -> None:
    # an AnyValue with an unknown field, a non-minimal length prefix and fields in odd order
    inner = f_bytes(1, f_varint(3, 1)) + f_bytes(1, f_bytes(1, b"s"))
    value = f_varint(999, 1) + tag(5, 2) + bytes([len(inner) | 0x80, 0x00]) + inner
    span = (
        f_bytes(1, b"T" * 16)
        + f_bytes(2, b"S" * 8)
        + f_bytes(9, f_bytes(1, b"arr") + f_bytes(2, value))
        + f_bytes(9, f_bytes(1, b"b") + f_bytes(2, f_bytes(7, b"\x00\x01")))
        + f_bytes(9, f_bytes(2, b"") + f_bytes(1, b"none"))
    )
    data = f_bytes(1, f_bytes(2, f_bytes(2, span)))
    got = assert_matches_oracle(data)
    assert got is not None
    assert got.batch.column("span_attrs_raw").to_pylist() == [
        [("arr", value), ("b", f_bytes(7, b"\x00\x01")), ("none", b"")]
    ]


def test_event_link_and_scope_attrs_are_typed() -> None:
    arr = f_bytes(5, f_bytes(1, f_varint(3, 1)))  # raw: kept exactly as on the wire
    kv1 = kv("a", string_value="x").SerializeToString()
    kv2 = f_bytes(1, b"n") + f_bytes(2, f_varint(3, 5)) + f_varint(77, 1)  # with unknown field
    kv3 = f_bytes(2, arr) + f_bytes(1, b"arr")  # value before key
    kv4 = f_bytes(1, b"f") + f_bytes(2, f_fixed64(4, fbits(-0.0)))
    kv5 = f_bytes(1, b"b") + f_bytes(2, f_varint(2, 1))
    kv6 = f_bytes(1, b"service.name") + f_bytes(2, f_bytes(1, b"not the service"))
    # non-minimal length prefix on the second attribute
    event = (
        f_bytes(3, kv1)
        + f_fixed64(1, 9)
        + tag(3, 2)
        + bytes([len(kv2) | 0x80, 0])
        + kv2
        + f_bytes(3, kv3)
        + f_bytes(3, kv4)
        + f_bytes(3, kv1)  # repeated key: left out
        + f_varint(4, 2)
    )
    link = f_bytes(4, kv5) + f_bytes(1, b"L" * 16) + f_bytes(4, kv3) + f_bytes(2, b"l" * 8)
    span = (
        f_bytes(1, b"T" * 16)
        + f_bytes(2, b"S" * 8)
        + f_bytes(11, event)
        + f_bytes(11, b"")  # an empty event: empty maps
        + f_bytes(13, link)
        + f_bytes(9, kv6)
    )
    # the scope in two occurrences: their attributes are concatenated
    scope_spans = (
        f_bytes(1, f_bytes(3, kv6) + f_bytes(1, b"lib"))
        + f_bytes(2, span)
        + f_bytes(1, f_bytes(3, kv4) + f_bytes(3, kv3) + f_bytes(3, kv1))
        + f_bytes(2, span)
    )
    data = f_bytes(1, f_bytes(2, scope_spans))
    got = assert_matches_oracle(data)
    assert got is not None
    assert got.batch.num_rows == 2
    rows = got.batch.to_pylist()
    assert rows[0] == rows[1]  # scope attributes are denormalized onto every span
    row = rows[0]
    ev, empty = row["events"]
    assert (ev["time_unix_nano"], ev["dropped_attributes_count"]) == (9, 2)
    assert ev["attrs_str"] == [("a", "x")]
    assert got.duplicate_attributes == 2  # in the event of each of the two spans
    assert ev["attrs_int"] == [("n", 5)]
    assert ev["attrs_float"] == [("f", 0.0)] and fbits(ev["attrs_float"][0][1]) == fbits(-0.0)
    assert ev["attrs_bool"] == []
    assert ev["attrs_raw"] == [("arr", arr)]
    assert all(empty[f"attrs_{t}"] == [] for t in ATTR_TYPES)
    (ln,) = row["links"]
    assert ln["attrs_bool"] == [("b", True)] and ln["attrs_raw"] == [("arr", arr)]
    assert ln["attrs_str"] == ln["attrs_int"] == ln["attrs_float"] == []
    assert row["scope_name"] == "lib"
    assert row["scope_attrs_str"] == [("service.name", "not the service"), ("a", "x")]
    assert row["scope_attrs_float"] == [("f", 0.0)]
    assert row["scope_attrs_raw"] == [("arr", arr)]
    assert row["scope_attrs_int"] == row["scope_attrs_bool"] == []
    # service.name only comes from the resource
    assert row["service_name"] == ""
    assert row["resource_attrs_str"] == []
    assert row["span_attrs_str"] == [("service.name", "not the service")]


def test_scope_attributes_belong_to_their_scope() -> None:
    req = ExportTraceServiceRequest()
    for r in range(2):
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("r", int_value=r))
        for s_ in range(3):
            ss = rs.scope_spans.add()
            if s_ == 1:
                ss.scope.attributes.extend(
                    [kv("s", int_value=s_), kv("rs", string_value=f"{r}{s_}")]
                )
            for i in range(2):
                ss.spans.add(trace_id=b"T" * 16, span_id=bytes([r + 1, s_ + 1, i + 1]) * 2 + b"xy")
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    rows = got.batch.to_pylist()
    assert [(row["scope_attrs_int"], row["scope_attrs_str"]) for row in rows] == [
        (attrs, strs)
        for r in range(2)
        for s_ in range(3)
        for attrs, strs in [([("s", 1)], [("rs", f"{r}1")]) if s_ == 1 else ([], [])] * 2
    ]


def test_event_link_and_scope_attributes_are_queryable_in_duckdb(tmp_path: Path) -> None:
    # DuckDB maps need unique keys (an Arrow map with a repeated key fails the whole scan):
    # every_attr_type() repeats a key, which the decoder leaves out
    unique = every_attr_type()
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add(scope=InstrumentationScope(name="lib"))
    ss.scope.attributes.extend(unique)
    for i in range(3):
        sp = ss.spans.add(trace_id=b"T" * 16, span_id=bytes([i + 1]) * 8, name=f"s{i}")
        ev = sp.events.add(name="exception")
        ev.attributes.extend(
            [kv("exception.type", string_value="ValueError"), kv("n", int_value=i)]
        )
        sp.events.add(name="plain")
        if i == 1:
            sp.links.add(trace_id=b"L" * 16, span_id=b"l" * 8).attributes.extend(unique)
    spans = decode_export_request(req.SerializeToString()).batch
    pq.write_table(pa.Table.from_batches([spans]), tmp_path / "spans.parquet")
    con = duckdb.connect()
    con.register("arrow_spans", spans)
    for relation in ("arrow_spans", f"read_parquet('{tmp_path / 'spans.parquet'}')"):
        events = con.execute(
            "SELECT name, e.name, e.attrs_str['exception.type'], e.attrs_int['n'] "
            f"FROM (SELECT name, unnest(events) AS e FROM {relation}) "
            "WHERE cardinality(e.attrs_int) > 0 ORDER BY ALL"
        ).fetchall()
        assert events == [(f"s{i}", "exception", "ValueError", i) for i in range(3)]
        links = con.execute(
            "SELECT name, l.attrs_str['str'], l.attrs_int['int.neg'], l.attrs_float['float'], "
            "l.attrs_bool['bool.f'], map_keys(l.attrs_raw) "
            f"FROM (SELECT name, unnest(links) AS l FROM {relation})"
        ).fetchall()
        raw_keys = ["array", "kvlist", "bytes", "bytes.empty", "empty.anyvalue", "no.value"]
        assert links == [("s1", "hello", -(2**63), 3.25, False, raw_keys)]
        scopes = con.execute(
            "SELECT scope_name, scope_attrs_int['int'], scope_attrs_str['str.unicode'], "
            "isnan(scope_attrs_float['float.nan']), scope_attrs_raw['bytes'], count(*) "
            f"FROM {relation} GROUP BY ALL"
        ).fetchall()
        assert scopes == [("lib", 42, "héllo 中文 🙂", True, f_bytes(7, b"\x00\xffbin"), 3)]


def test_field_order_repeats_and_merges_follow_protobuf() -> None:
    status1 = f_bytes(2, b"first") + f_varint(3, 1)
    status2 = f_varint(3, 2)  # merged: message stays "first", code becomes 2
    span = (
        f_bytes(15, status1)
        + f_bytes(9, f_bytes(2, f_bytes(1, b"v")) + f_bytes(1, b"k"))  # value before key
        + f_bytes(5, b"old name")
        + f_fixed64(8, 50)
        + f_fixed64(7, 10)
        + f_bytes(5, b"new name")  # last one wins
        + f_bytes(2, b"S" * 8)
        + f_bytes(1, b"x")
        + f_bytes(1, b"T" * 16)  # the valid trace id comes last
        + f_bytes(15, status2)
        + f_varint(5, 3)  # known field number, wrong wire type: an unknown field
        + f_fixed32(16, 7)
        # the attribute value field twice: merged (int then string -> string)
        + f_bytes(9, f_bytes(1, b"m") + f_bytes(2, f_varint(3, 1)) + f_bytes(2, f_bytes(1, b"s")))
        # array value in two occurrences: merged into one array (raw)
        + f_bytes(
            9,
            f_bytes(1, b"a")
            + f_bytes(2, f_bytes(5, f_bytes(1, f_varint(3, 1))))
            + f_bytes(2, f_bytes(5, f_bytes(1, f_varint(3, 2)))),
        )
    )
    scope = f_bytes(1, b"scope") + f_bytes(2, b"1")
    scope_spans = f_bytes(2, span) + f_bytes(1, scope) + f_bytes(1, f_bytes(2, b"2"))
    resource1 = f_bytes(1, f_bytes(1, b"service.name") + f_bytes(2, f_bytes(1, b"svc")))
    resource2 = f_bytes(1, f_bytes(1, b"r") + f_bytes(2, f_varint(2, 1)))
    # scope spans before the resource, the resource in two parts
    resource_spans = f_bytes(2, scope_spans) + f_bytes(1, resource1) + f_bytes(1, resource2)
    data = f_bytes(1, resource_spans)
    got = assert_matches_oracle(data)
    assert got is not None
    row = got.batch.to_pylist()[0]
    assert row["name"] == "new name"
    assert (row["status_code"], row["status_message"]) == (2, "first")
    assert (row["start_unix_nano"], row["duration_nano"], row["flags"]) == (10, 40, 7)
    assert row["service_name"] == "svc"
    assert row["resource_attrs_bool"] == [("r", True)]
    assert (row["scope_name"], row["scope_version"]) == ("scope", "2")
    assert row["span_attrs_str"] == [("k", "v"), ("m", "s")]
    raw = AnyValue.FromString(dict(row["span_attrs_raw"])["a"])
    assert [v.int_value for v in raw.array_value.values] == [1, 2]


def test_unknown_fields_of_every_wire_type_at_every_level() -> None:
    def u(payload: bytes) -> bytes:
        return payload + UNKNOWN

    value = u(f_bytes(1, b"v"))
    attr = u(f_bytes(1, b"k") + f_bytes(2, value))
    event = u(f_bytes(2, b"ev") + f_bytes(3, attr))
    link = u(f_bytes(1, b"L" * 16) + f_bytes(2, b"l" * 8) + f_bytes(4, attr))
    status = u(f_varint(3, 1))
    span = u(
        f_bytes(1, b"T" * 16)
        + f_bytes(2, b"S" * 8)
        + f_bytes(9, attr)
        + f_bytes(11, event)
        + f_bytes(13, link)
        + f_bytes(15, status)
        + f_fixed32(16, 1)
    )
    scope = u(f_bytes(1, b"sc") + f_bytes(3, attr))
    resource = u(f_bytes(1, attr) + f_varint(2, 1) + f_bytes(3, u(f_bytes(3, b"id.key"))))
    scope_spans = u(f_bytes(1, scope) + f_bytes(2, span) + f_bytes(3, b"url"))
    resource_spans = u(f_bytes(1, resource) + f_bytes(2, scope_spans) + f_bytes(3, b"url"))
    data = u(f_bytes(1, resource_spans)) + UNKNOWN
    got = assert_matches_oracle(data)
    assert got is not None
    row = got.batch.to_pylist()[0]
    assert row["span_attrs_str"] == [("k", "v")]
    assert row["resource_attrs_str"] == [("k", "v")]
    assert row["events"][0]["name"] == "ev"
    assert row["status_code"] == 1 and row["flags"] == 1


def test_any_value_without_a_type_but_with_unknown_fields_is_raw() -> None:
    value = f_varint(50, 1)
    span = (
        f_bytes(1, b"T" * 16)
        + f_bytes(2, b"S" * 8)
        + f_bytes(9, f_bytes(1, b"u") + f_bytes(2, value))
    )
    got = assert_matches_oracle(f_bytes(1, f_bytes(2, f_bytes(2, span))))
    assert got is not None
    assert got.batch.column("span_attrs_raw").to_pylist() == [[("u", value)]]


def test_extreme_numbers() -> None:
    span = (
        f_bytes(1, b"T" * 16)
        + f_bytes(2, b"S" * 8)
        + f_varint(6, -1)  # kind -1: stored as int8 -1
        + f_fixed64(7, 2**63 + 1)
        + f_fixed64(8, 2**64 - 1)
        + f_varint(10, 2**40 + 3)  # uint32 field: truncated to the low 32 bits, as protobuf
        + f_bytes(15, f_varint(3, 300))  # status code 300: low 8 bits
        + f_bytes(9, f_bytes(1, b"i") + f_bytes(2, f_varint(3, -5)))
        + f_bytes(9, f_bytes(1, b"b") + f_bytes(2, f_varint(2, 2)))  # bool 2 is true
        + f_bytes(9, f_bytes(1, b"z") + f_bytes(2, tag(3, 0) + b"\xff" * 9 + b"\x7f"))
    )
    got = assert_matches_oracle(f_bytes(1, f_bytes(2, f_bytes(2, span))))
    assert got is not None
    row = got.batch.to_pylist()[0]
    assert row["kind"] == -1
    assert row["start_unix_nano"] == -(2**63) + 1
    assert row["duration_nano"] == 2**63 - 2
    assert row["dropped_attributes_count"] == 3
    assert row["status_code"] == 44
    assert row["span_attrs_int"] == [("i", -5), ("z", -1)]
    assert row["span_attrs_bool"] == [("b", True)]


# ---------------------------------------------------------------------------------------
# tests: rejected spans
# ---------------------------------------------------------------------------------------


def _span(name: str, **fields: Any) -> Span:
    base = dict(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name=name,
        start_time_unix_nano=100,
        end_time_unix_nano=200,
    )
    base.update(fields)
    sp = Span(**base)
    # attributes and events that must be rolled back when the span is rejected
    sp.attributes.extend(
        [kv(f"{name}.attr", string_value=name), kv("arr", array_value=ArrayValue())]
    )
    sp.events.add(name=f"{name}.event").attributes.append(kv("e", int_value=1))
    sp.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8).attributes.append(
        kv("l", double_value=0.5)
    )
    return sp


BAD_SPANS = [
    ("invalid_trace_id", dict(trace_id=b"abc"), "span 'bad': trace id must be 16 bytes, got 3"),
    ("invalid_trace_id", dict(trace_id=b""), "span 'bad': trace id must be 16 bytes, got 0"),
    ("invalid_trace_id", dict(trace_id=bytes(16)), "span 'bad': trace id must not be all zeros"),
    ("invalid_span_id", dict(span_id=b"1234567"), "span 'bad': span id must be 8 bytes, got 7"),
    ("invalid_span_id", dict(span_id=bytes(8)), "span 'bad': span id must not be all zeros"),
    (
        "invalid_parent_span_id",
        dict(parent_span_id=b"12345"),
        "span 'bad': parent span id must be 8 bytes or empty, got 5",
    ),
    (
        "end_before_start",
        dict(start_time_unix_nano=200, end_time_unix_nano=199),
        "span 'bad': end time 199 is before start time 200",
    ),
]


@pytest.mark.parametrize(("reason", "fields", "message"), BAD_SPANS)
def test_each_rejection_reason(reason: str, fields: dict[str, Any], message: str) -> None:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    spans.extend([_span("ok1"), _span("bad", **fields), _span("ok2")])
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    assert got.rejected == {reason: 1}
    assert got.rejected_count == 1
    assert got.first_error == message
    assert got.batch.column("name").to_pylist() == ["ok1", "ok2"]


def test_many_rejections_counted_and_rest_intact() -> None:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss2 = req.resource_spans.add().scope_spans.add()
    expected_names = []
    for i, (_reason, fields, _message) in enumerate(BAD_SPANS * 3):
        ss.spans.append(_span(f"ok{i}"))
        expected_names.append(f"ok{i}")
        (ss if i % 2 else ss2).spans.append(_span("bad", **fields))
    ss2.spans.append(_span("last"))
    expected_names.append("last")
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    assert got.rejected == {
        "invalid_trace_id": 9,
        "invalid_span_id": 6,
        "invalid_parent_span_id": 3,
        "end_before_start": 3,
    }
    assert got.rejected_count == 21
    assert got.first_error == BAD_SPANS[1][2]  # the first bad span in request order (ss)
    assert sorted(got.batch.column("name").to_pylist()) == sorted(expected_names)


def test_rejected_spans_with_and_without_events_and_links_roll_back() -> None:
    # the event and link buffers are only snapshotted at a span's first event / link
    rnd = random.Random(11)
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(200):
        bad = rnd.random() < 0.4
        sp = Span(trace_id=b"\x01" * 16 if not bad else b"", span_id=rnd.randbytes(8), name=f"{i}")
        for j in range(rnd.choice([0, 0, 1, 3])):
            ev = sp.events.add(name=f"e{i}.{j}", time_unix_nano=j)
            ev.attributes.extend(rnd.sample(every_attr_type(), rnd.randrange(4)))
        for j in range(rnd.choice([0, 0, 1, 2])):
            ln = sp.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8))
            ln.trace_state = f"l{i}.{j}"
            ln.attributes.extend(rnd.sample(every_attr_type(), rnd.randrange(4)))
        sp.attributes.extend(rnd.sample(every_attr_type(), rnd.randrange(4)))
        ss.spans.append(sp)
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    assert 50 < got.rejected["invalid_trace_id"] < 150
    assert sum(len(e) for e in got.batch.column("events").to_pylist()) > 50


def test_all_spans_rejected_gives_empty_batch() -> None:
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.extend(
        [_span("bad", trace_id=b""), _span("bad", span_id=b"")]
    )
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None
    assert got.batch.num_rows == 0
    assert got.rejected == {"invalid_trace_id": 1, "invalid_span_id": 1}


# ---------------------------------------------------------------------------------------
# tests: malformed input
# ---------------------------------------------------------------------------------------


def _in_span(payload: bytes) -> bytes:
    span = f_bytes(1, b"T" * 16) + f_bytes(2, b"S" * 8) + payload
    return f_bytes(1, f_bytes(2, f_bytes(2, span)))


def _nested_arrays(levels: int) -> bytes:
    value = b""
    for _ in range(levels):
        value = f_bytes(5, f_bytes(1, value))
    return value


MALFORMED = {
    "truncated length": (b"\x0a", "truncated varint"),
    "length past end": (b"\x0a\x05ab", "extends past the end"),
    "truncated varint": (b"\x08\xff", "truncated varint"),
    "varint too long": (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    "wire type 6": (b"\x0e\x00", "invalid wire type (field 1, wire type 6)"),
    "wire type 7": (b"\x0f\x00", "invalid wire type"),
    "field number 0": (b"\x00\x01", "invalid field number 0"),
    "tag too long": (b"\x80\x80\x80\x80\x80\x01", "invalid field tag"),
    "tag over 32 bits": (b"\xf8\xff\xff\xff\x1f\x00", "invalid field tag"),
    "length prefix too long": (b"\x0a\x80\x80\x80\x80\x80\x00", "length prefix longer"),
    "truncated fixed64": (b"\x09\x00\x00", "truncated fixed64"),
    "truncated fixed32": (b"\x0d\x00", "truncated fixed32"),
    "unterminated group": (b"\x0b\x08\x01", "unterminated group"),
    "stray end group": (b"\x0c", "unexpected end-group tag"),
    "mismatched end group": (b"\x0b\x14", "mismatched end-group tag"),
    "truncated span field": (_in_span(b"\x39\x00\x00"), "truncated fixed64"),
    "length past end in span": (_in_span(b"\x2a\x09abc"), "extends past the end"),
    "bad wire type in attribute": (_in_span(f_bytes(9, b"\x0f")), "invalid wire type"),
    "truncated anyvalue": (_in_span(f_bytes(9, f_bytes(2, b"\x0a\x05"))), "extends past"),
    "invalid utf-8 name": (_in_span(f_bytes(5, b"\xff")), "not valid UTF-8"),
    "surrogate in trace_state": (_in_span(f_bytes(3, b"\xed\xa0\x80")), "not valid UTF-8"),
    "overlong utf-8 key": (_in_span(f_bytes(9, f_bytes(1, b"\xc0\xaf"))), "not valid UTF-8"),
    "truncated utf-8 value": (
        _in_span(f_bytes(9, f_bytes(2, f_bytes(1, b"ab\xe2\x82")))),
        "not valid UTF-8",
    ),
    "invalid utf-8 inside array": (
        _in_span(f_bytes(9, f_bytes(2, f_bytes(5, f_bytes(1, f_bytes(1, b"\xff")))))),
        "not valid UTF-8",
    ),
    "invalid utf-8 in event attribute key": (
        _in_span(f_bytes(11, f_bytes(3, f_bytes(1, b"\x80")))),
        "not valid UTF-8",
    ),
    "malformed link attribute": (_in_span(f_bytes(13, f_bytes(4, b"\x12\x01"))), "extends past"),
    "invalid utf-8 in status": (_in_span(f_bytes(15, f_bytes(2, b"\xfe"))), "not valid UTF-8"),
    "invalid utf-8 in scope attribute": (
        f_bytes(1, f_bytes(2, f_bytes(1, f_bytes(3, f_bytes(1, b"\xff"))))),
        "not valid UTF-8",
    ),
    "invalid utf-8 in schema url": (f_bytes(1, f_bytes(3, b"\xff")), "not valid UTF-8"),
    "nesting too deep": (_in_span(f_bytes(9, f_bytes(2, _nested_arrays(60)))), "nesting deeper"),
    "groups too deep": (b"\x0b" * 120 + b"\x0c" * 120, "nesting deeper"),
    "malformed inside rejected span": (
        f_bytes(1, f_bytes(2, f_bytes(2, f_bytes(1, b"short") + f_bytes(9, b"\x0a\x09")))),
        "extends past",
    ),
}


@pytest.mark.parametrize(("data", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_value_error(data: bytes, message: str) -> None:
    assert oracle_parse(data) is None, "the protobuf library rejects it too"
    with pytest.raises(ValueError, match=r"^invalid OTLP protobuf: .*at byte offset \d+") as exc:
        decode_export_request(data)
    assert message in str(exc.value)


def test_nesting_limit_matches_protobuf() -> None:
    # the deepest attribute value the protobuf library accepts is accepted, one more is not
    results = []
    for levels in range(40, 52):
        data = _in_span(f_bytes(9, f_bytes(2, _nested_arrays(levels))))
        results.append(assert_matches_oracle(data) is not None)
    assert True in results and False in results
    # the same for event, link and scope attributes (one and two levels deeper than a span's)
    for wrap_value in (
        lambda v: _in_span(f_bytes(11, f_bytes(3, f_bytes(2, v)))),
        lambda v: _in_span(f_bytes(13, f_bytes(4, f_bytes(2, v)))),
        lambda v: f_bytes(1, f_bytes(2, f_bytes(1, f_bytes(3, f_bytes(2, v))))),
    ):
        results = [
            assert_matches_oracle(wrap_value(_nested_arrays(levels))) is not None
            for levels in range(40, 52)
        ]
        assert True in results and False in results
    results = []
    for n in range(94, 100):
        data = _in_span(b"\x0b" * n + b"\x0c" * n)
        results.append(assert_matches_oracle(data) is not None)
    assert True in results and False in results


def test_every_truncation_decodes_a_valid_prefix_or_raises() -> None:
    rnd = random.Random(3)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", string_value="svc"), kv("i", int_value=-1)])
    ss = rs.scope_spans.add(scope=InstrumentationScope(name="lib", version="1"))
    for i in range(3):
        t, s = ids(rnd)
        sp = Span(trace_id=t, span_id=s, name=f"span{i}", start_time_unix_nano=1, flags=1)
        sp.attributes.extend([kv("a", double_value=1.5), kv("arr", array_value=ArrayValue())])
        sp.events.add(time_unix_nano=3, name="e").attributes.append(kv("x", bool_value=True))
        sp.links.add(trace_id=t, span_id=s).attributes.append(kv("y", string_value="z"))
        sp.status.message = "m"
        ss.spans.append(sp)
    req.resource_spans.append(rs)
    data = req.SerializeToString() + UNKNOWN
    decoded = 0
    for n in range(len(data) + 1):
        if assert_matches_oracle(data[:n]) is not None:
            decoded += 1
    assert decoded >= 4  # the empty prefix, each whole ResourceSpans, ...
    # a bigger message: prefixes either decode (protobuf agrees) or raise ValueError
    big = rich_request().SerializeToString()
    for n in range(0, len(big) + 1, 7):
        try:
            decode_export_request(big[:n])
        except ValueError:
            assert oracle_parse(big[:n]) is None
        else:
            assert oracle_parse(big[:n]) is not None


def test_random_garbage_never_crashes() -> None:
    rnd = random.Random(12345)
    for _ in range(3000):
        data = rnd.randbytes(rnd.randrange(0, 64))
        assert_matches_oracle(data)
    # garbage in well-formed surroundings, so that it reaches the inner parsers
    wrappers = [
        lambda g: f_bytes(1, g),  # ResourceSpans
        lambda g: f_bytes(1, f_bytes(2, g)),  # ScopeSpans
        _in_span,  # span fields
        lambda g: _in_span(f_bytes(9, g)),  # KeyValue
        lambda g: _in_span(f_bytes(9, f_bytes(2, g))),  # AnyValue
        lambda g: _in_span(f_bytes(11, g)),  # Event
        lambda g: _in_span(f_bytes(13, g)),  # Link
    ]
    decoded = 0
    for _ in range(4000):
        garbage = rnd.randbytes(rnd.randrange(0, 12))
        decoded += assert_matches_oracle(rnd.choice(wrappers)(garbage)) is not None
    assert decoded > 400


# ---------------------------------------------------------------------------------------
# property test: random (also odd but valid) wire-format messages
# ---------------------------------------------------------------------------------------


class WireGen:
    """Random ExportTraceServiceRequest bytes written field by field.

    Produces what the protobuf classes never serialize: fields in any order, repeated
    singular fields, merged messages, unknown fields (also groups), known field numbers with
    the wrong wire type, odd ids and timestamps and, rarely, invalid UTF-8.
    """

    KEYS = (b"service.name", b"http.method", b"k", b"", "ключ".encode(), b"x" * 40)

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def p(self, prob: float) -> bool:
        return self.r.random() < prob

    def text(self) -> bytes:
        r = self.r
        if self.p(0.002):
            return r.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"ab\xe2\x82"])
        return "".join(r.choice("abcxyz _./é中🙂") for _ in range(r.randrange(0, 10))).encode()

    def unknown(self, depth: int = 0) -> bytes:
        r = self.r
        num = r.randrange(17, 3000)
        kind = r.randrange(5 if depth < 3 else 4)
        if kind == 0:
            return f_varint(num, r.getrandbits(64))
        if kind == 1:
            return f_fixed64(num, r.getrandbits(64))
        if kind == 2:
            return f_bytes(num, r.randbytes(r.randrange(6)))
        if kind == 3:
            return f_fixed32(num, r.getrandbits(32))
        return f_group(num, b"".join(self.unknown(depth + 1) for _ in range(r.randrange(3))))

    def message(self, fields: list[bytes], wrong_wire_type: int = 0) -> bytes:
        if self.p(0.15):
            fields.append(self.unknown())
        if wrong_wire_type and self.p(0.03):
            fields.append(f_fixed32(wrong_wire_type, 1))
        if self.p(0.15):
            self.r.shuffle(fields)
        return b"".join(fields)

    def n(self, hi: int) -> int:
        return self.r.randrange(hi + 1)

    def anyvalue(self, depth: int = 0) -> bytes:
        r = self.r
        kind = r.randrange(12)
        fields: list[bytes] = []
        if kind in (0, 1, 2):
            fields.append(f_bytes(1, self.text()))
        elif kind == 3:
            fields.append(f_varint(2, r.choice([0, 1, 2, 2**64 - 1])))
        elif kind == 4:
            fields.append(f_varint(3, r.choice([0, 1, -1, 2**63 - 1, -(2**63), r.getrandbits(64)])))
        elif kind == 5:
            fields.append(f_fixed64(4, r.getrandbits(64)))
        elif kind == 6 and depth < 3:
            fields.append(
                f_bytes(5, b"".join(f_bytes(1, self.anyvalue(depth + 1)) for _ in range(self.n(3))))
            )
        elif kind == 7 and depth < 3:
            fields.append(
                f_bytes(6, b"".join(f_bytes(1, self.keyvalue(depth + 1)) for _ in range(self.n(3))))
            )
        elif kind == 8:
            fields.append(f_bytes(7, r.randbytes(self.n(5))))
        elif kind == 9:
            fields.append(f_varint(8, r.randrange(100)))
        elif kind == 10:  # several oneof members: the last one wins
            fields.extend([f_bytes(1, self.text()), f_varint(3, 5), f_fixed64(4, 1)][: self.n(3)])
            r.shuffle(fields)
        return self.message(fields, wrong_wire_type=1)

    def keyvalue(self, depth: int = 0) -> bytes:
        fields = [f_bytes(1, self.r.choice(self.KEYS) if self.p(0.7) else self.text())]
        n_values = 1 if self.p(0.9) else self.r.choice([0, 2])
        fields += [f_bytes(2, self.anyvalue(depth)) for _ in range(n_values)]
        if self.p(0.03):
            fields.append(f_varint(3, 4))
        if self.p(0.03):
            fields.append(f_bytes(1, self.text()))
        return self.message(fields, wrong_wire_type=2)

    def attrs(self, num: int, hi: int) -> list[bytes]:
        return [f_bytes(num, self.keyvalue()) for _ in range(self.n(hi))]

    def an_id(self, width: int) -> bytes:
        r = self.r
        roll = r.random()
        if roll < 0.04:
            return bytes(width)
        if roll < 0.08:
            return r.randbytes(r.choice([0, 1, width - 1, width + 1]))
        return r.randbytes(width)

    def span(self) -> bytes:
        r = self.r
        start = r.getrandbits(64) if self.p(0.1) else 1_700_000_000_000_000_000 + r.randrange(10**9)
        end = start + r.randrange(10**9) if self.p(0.95) else r.getrandbits(64)
        fields = [f_bytes(1, self.an_id(16)), f_bytes(2, self.an_id(8)), f_bytes(5, self.text())]
        if self.p(0.6):
            fields.append(f_bytes(4, self.an_id(8) if self.p(0.9) else b""))
        if self.p(0.3):
            fields.append(f_bytes(3, self.text()))
        if self.p(0.9):
            fields.append(f_varint(6, r.choice([0, 1, 2, 3, 4, 5, 200, -1])))
        fields += [f_fixed64(7, start), f_fixed64(8, end)]
        fields += self.attrs(9, 6)
        for num in (10, 12, 14):
            if self.p(0.2):
                fields.append(f_varint(num, r.choice([1, 2**32 + 1, r.getrandbits(64)])))
        for _ in range(self.n(3)):
            ev = [f_fixed64(1, r.getrandbits(64)), f_bytes(2, self.text()), *self.attrs(3, 3)]
            if self.p(0.2):
                ev.append(f_varint(4, r.randrange(10)))
            fields.append(f_bytes(11, self.message(ev, wrong_wire_type=2)))
        for _ in range(self.n(2)):
            ln = [f_bytes(1, self.an_id(16)), f_bytes(2, self.an_id(8)), *self.attrs(4, 2)]
            if self.p(0.3):
                ln += [f_bytes(3, self.text()), f_varint(5, 3), f_fixed32(6, r.getrandbits(32))]
            fields.append(f_bytes(13, self.message(ln, wrong_wire_type=1)))
        for _ in range(self.n(2)):
            status = []
            if self.p(0.5):
                status.append(f_bytes(2, self.text()))
            if self.p(0.8):
                status.append(f_varint(3, r.choice([0, 1, 2, 7, 2**32 - 1])))
            fields.append(f_bytes(15, self.message(status, wrong_wire_type=3)))
        if self.p(0.5):
            fields.append(f_fixed32(16, r.getrandbits(32)))
        if self.p(0.05):
            fields.append(f_bytes(5, self.text()))  # the name again: last one wins
        return self.message(fields, wrong_wire_type=r.randrange(1, 17))

    def scope_spans(self) -> bytes:
        fields = []
        for _ in range(self.n(2) if self.p(0.3) else 1):
            scope = [f_bytes(1, self.text()), f_bytes(2, self.text())][: self.n(2)]
            scope += self.attrs(3, 3)
            fields.append(f_bytes(1, self.message(scope, wrong_wire_type=1)))
        fields += [f_bytes(2, self.span()) for _ in range(self.n(4))]
        if self.p(0.2):
            fields.append(f_bytes(3, self.text()))
        return self.message(fields, wrong_wire_type=2)

    def resource_spans(self) -> bytes:
        fields = []
        for _ in range(self.n(2) if self.p(0.3) else 1):
            res = self.attrs(1, 5)
            if self.p(0.5):
                res.insert(0, f_bytes(1, f_bytes(1, b"service.name") + f_bytes(2, self.anyvalue())))
            if self.p(0.1):
                res.append(f_varint(2, 4))
            if self.p(0.1):
                res.append(f_bytes(3, f_bytes(2, self.text()) + f_bytes(3, self.text())))
            fields.append(f_bytes(1, self.message(res, wrong_wire_type=1)))
        fields += [f_bytes(2, self.scope_spans()) for _ in range(self.n(3))]
        if self.p(0.2):
            fields.append(f_bytes(3, self.text()))
        return self.message(fields, wrong_wire_type=2)

    def request(self) -> bytes:
        return self.message([f_bytes(1, self.resource_spans()) for _ in range(self.n(3))])


def test_property_random_wire_messages_match_oracle() -> None:
    accepted = rows = rejected = 0
    for seed in range(1000):
        got = assert_matches_oracle(WireGen(seed).request())
        if got is not None:
            accepted += 1
            rows += got.batch.num_rows
            rejected += got.rejected_count
    assert accepted > 800 and rows > 2500 and rejected > 500  # the test is not vacuous


def test_property_mutated_messages_match_oracle() -> None:
    rnd = random.Random(99)
    decoded = 0
    for seed in range(1000):
        data = bytearray(WireGen(1000 + seed).request())
        for _ in range(rnd.randrange(1, 4)):
            if not data:
                break
            i = rnd.randrange(len(data))
            op = rnd.randrange(4)
            if op == 0:
                data[i] = rnd.randrange(256)
            elif op == 1:
                del data[i : i + rnd.randrange(1, 4)]
            elif op == 2:
                data[i:i] = rnd.randbytes(rnd.randrange(1, 4))
            else:
                data[i] ^= 1 << rnd.randrange(8)
        decoded += assert_matches_oracle(bytes(data)) is not None
    assert decoded > 200


def test_property_random_protobuf_messages_match_oracle() -> None:
    """Canonical serializations of random messages built with the protobuf classes."""
    for seed in range(60):
        rnd = random.Random(seed)
        req = ExportTraceServiceRequest()
        for _ in range(rnd.randrange(4)):
            rs = req.resource_spans.add()
            attrs = every_attr_type()
            rnd.shuffle(attrs)
            rs.resource.attributes.extend(attrs[: rnd.randrange(len(attrs))])
            for _ in range(rnd.randrange(3)):
                ss = rs.scope_spans.add()
                ss.scope.name = rnd.choice(["", "a", "lib"])
                for _ in range(rnd.randrange(6)):
                    t, s = ids(rnd)
                    sp = ss.spans.add(
                        trace_id=t if rnd.random() < 0.95 else b"",
                        span_id=s,
                        parent_span_id=rnd.choice([b"", rnd.randbytes(8)]),
                        name=rnd.choice(["a", "bb", "ééé"]),
                        kind=rnd.randrange(6),
                        start_time_unix_nano=rnd.randrange(2**63),
                    )
                    sp.end_time_unix_nano = sp.start_time_unix_nano + rnd.randrange(-5, 10**9)
                    attrs = every_attr_type()
                    rnd.shuffle(attrs)
                    sp.attributes.extend(attrs[: rnd.randrange(len(attrs))])
                    for _ in range(rnd.randrange(3)):
                        sp.events.add(
                            name="e", time_unix_nano=rnd.randrange(2**64)
                        ).attributes.extend(attrs[: rnd.randrange(3)])
        assert_matches_oracle(req.SerializeToString())


# ---------------------------------------------------------------------------------------
# tests: API details
# ---------------------------------------------------------------------------------------


def rows_of(got: DecodedSpans) -> list[dict[str, Any]]:
    """Comparable rows (the rich request has NaN attribute values: batch.equals is False)."""
    return [normalize_row(r) for r in got.batch.to_pylist()]


def test_accepts_bytes_like_inputs() -> None:
    data = rich_request().SerializeToString()
    expected = rows_of(decode_export_request(data))
    padded = b"xx" + data + b"yy"
    doubled = bytes(b for pair in zip(data, data, strict=True) for b in pair)
    for view in (
        bytearray(data),
        memoryview(data),
        memoryview(padded)[2:-2],
        memoryview(doubled)[::2],  # not contiguous
        memoryview(bytearray(data)).cast("b"),  # signed bytes
    ):
        assert rows_of(decode_export_request(view)) == expected


def test_batch_buffers_outlive_input() -> None:
    data = bytearray(rich_request().SerializeToString())
    got = decode_export_request(data)
    expected = rows_of(got)
    data[:] = b"\x00" * len(data)
    del data
    assert rows_of(got) == expected


def test_decoded_spans_is_frozen() -> None:
    got = decode_export_request(b"")
    with pytest.raises(AttributeError):
        got.first_error = "x"  # type: ignore[misc]


def test_concurrent_decoding_in_threads() -> None:
    data = rich_request().SerializeToString()
    expected = rows_of(decode_export_request(data))
    failures: list[str] = []

    def work() -> None:
        for _ in range(30):
            if rows_of(decode_export_request(data)) != expected:
                failures.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_large_request() -> None:
    rnd = random.Random(5)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(every_attr_type())
    ss = rs.scope_spans.add()
    for i in range(3000):
        t, s = ids(rnd)
        sp = ss.spans.add(trace_id=t, span_id=s, name=f"span-{i}", end_time_unix_nano=i)
        sp.attributes.extend([kv("i", int_value=i), kv("s", string_value="v" * (i % 50))])
        sp.events.add(name="e").attributes.append(kv("x", string_value="y" * (i % 7)))
    got = assert_matches_oracle(req.SerializeToString())
    assert got is not None and got.batch.num_rows == 3000
