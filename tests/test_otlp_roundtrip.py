"""Round trip: OTLP request -> ``decode_export_request`` -> ``rows_to_traces_data`` -> same spans.

For several rich requests (every attribute value type on resources, scopes, spans, events and
links; several resources and scopes; root and child spans; status; dropped counts; flags;
trace_state), the ``TracesData`` rebuilt from the decoded rows must equal the request's
``resource_spans`` as protobuf messages: same resources, scopes and spans, in the same order and
grouping, compared field by field (text format) and byte for byte (deterministic
serialization). The requests avoid what the row model documents as not stored (schema URLs,
resource/scope dropped counts, entity refs, unknown fields, ids of the wrong width); no resource
and no scope repeats within a request, so the grouping by resource and scope is the request's
own. Timestamps of 2**63 ns and later (stored as negative int64) come back as they were sent.

Both sides are normalised for exactly three things the rows legitimately lose, and nothing else:

1. Repeated keys within one attribute list: OTLP forbids them and rows keep only the first
   occurrence of a key (whatever its value type), so later occurrences are removed.
2. The order of attributes across value types within one attribute list. Rows keep one map per
   type, so every attribute list (resource, scope, span, event and link attributes) is stably
   sorted by the type of its values in the order string, int, double, bool, other (array,
   kvlist, bytes, no value). The order of attributes of the same type and the values
   themselves (also the exact bytes of non-scalar values) are compared as they are.
3. Empty versus absent sub-messages. Proto3 rows do not record whether an empty message was
   present, so ``ResourceSpans.resource``, ``ScopeSpans.scope``, ``Span.status`` and, in those
   attribute lists, ``KeyValue.value`` are cleared when present but empty.
"""

from __future__ import annotations

import base64
import random
import struct
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format, text_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from threadline.model import otlp_encode
from threadline.model.otlp_decode import decode_export_request
from threadline.model.otlp_encode import rows_to_traces_data
from threadline.model.otlp_json_encode import rows_to_otlp_json

T0 = 1_700_000_000_000_000_000

# ---------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------

_TYPE_RANK = {"string_value": 0, "int_value": 1, "double_value": 2, "bool_value": 3}


def _type_rank(kv: KeyValue) -> int:
    return _TYPE_RANK.get(kv.value.WhichOneof("value"), 4)  # type: ignore[arg-type]


def _first_of_each_key(attrs: Any) -> list[KeyValue]:
    seen: set[str] = set()
    out = []
    for kv in attrs:
        if kv.key not in seen:
            seen.add(kv.key)
            out.append(kv)
    return out


def _normalise_attrs(attrs: Any) -> None:
    """Attribute list without repeated keys, grouped by value type (stable); present-but-empty
    values cleared."""
    ordered = sorted(_first_of_each_key(attrs), key=_type_rank)  # sorted() is stable
    copies = [KeyValue() for _ in ordered]
    for copy, kv in zip(copies, ordered, strict=True):
        copy.CopyFrom(kv)
        if copy.HasField("value") and copy.value.ByteSize() == 0:
            copy.ClearField("value")
    del attrs[:]
    attrs.extend(copies)


def _clear_if_empty(msg: Any, field: str) -> None:
    if msg.HasField(field) and getattr(msg, field).ByteSize() == 0:
        msg.ClearField(field)


def normalise(resource_spans: Any) -> TracesData:
    """A normalised copy of ``resource_spans`` (see the module docstring)."""
    out = TracesData(resource_spans=resource_spans)
    for rs in out.resource_spans:
        _normalise_attrs(rs.resource.attributes)
        _clear_if_empty(rs, "resource")
        for ss in rs.scope_spans:
            _normalise_attrs(ss.scope.attributes)
            _clear_if_empty(ss, "scope")
            for sp in ss.spans:
                _normalise_attrs(sp.attributes)
                _clear_if_empty(sp, "status")
                for ev in sp.events:
                    _normalise_attrs(ev.attributes)
                for ln in sp.links:
                    _normalise_attrs(ln.attributes)
    return out


def assert_round_trip(req: ExportTraceServiceRequest, via_parquet: bool = False, tmp=None) -> None:
    decoded = decode_export_request(req.SerializeToString())
    assert decoded.rejected == {}
    table = pa.Table.from_batches([decoded.batch])
    if via_parquet:  # as blocks store the rows
        pq.write_table(table, tmp / "rows.parquet")
        table = pq.read_table(tmp / "rows.parquet", schema=table.schema)
    got = normalise(rows_to_traces_data(table).resource_spans)
    want = normalise(req.resource_spans)
    assert text_format.MessageToString(got) == text_format.MessageToString(want)
    assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)


# ---------------------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------------------


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def every_attr_type(tag: str = "") -> list[KeyValue]:
    """Every kind of attribute value, interleaved by type, with a repeated key."""
    nested = AnyValue(
        kvlist_value=KeyValueList(
            values=[kv("inner", string_value="x"), kv("empty", array_value=ArrayValue())]
        )
    )
    return [
        kv("str", string_value=f"hello{tag}"),
        kv("int", int_value=42),
        kv("array", array_value=ArrayValue(values=[AnyValue(int_value=1), nested])),
        kv("float", double_value=3.25),
        kv("bool.t", bool_value=True),
        kv("str.unicode", string_value="héllo 中文 🙂"),
        kv("float.nan", double_value=float("nan")),
        kv("float.negzero", double_value=-0.0),
        kv("float.inf", double_value=float("-inf")),
        kv("int.min", int_value=-(2**63)),
        kv("kvlist", kvlist_value=KeyValueList(values=[kv("a", bool_value=False)])),
        kv("bool.f", bool_value=False),
        kv("bytes", bytes_value=b"\x00\xffbin"),
        kv("str.empty", string_value=""),
        kv("int.max", int_value=2**63 - 1),
        kv("bytes.empty", bytes_value=b""),
        KeyValue(key="empty.anyvalue", value=AnyValue()),
        KeyValue(key="no.value"),
        kv("str", string_value="repeated key"),
        kv("int", int_value=-1),
        kv("", string_value="empty key"),
    ]


def rich_request() -> ExportTraceServiceRequest:
    rnd = random.Random(1)
    req = ExportTraceServiceRequest()

    # resource 1: every attribute type; a named scope with every type, a scope with only
    # attributes, a scope that is absent
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", string_value="checkout"), *every_attr_type()])
    ss = rs.scope_spans.add(scope=InstrumentationScope(name="flask", version="1.2.3"))
    ss.scope.attributes.extend(every_attr_type("scope"))
    trace_id = rnd.randbytes(16)
    root = ss.spans.add(
        trace_id=trace_id,
        span_id=rnd.randbytes(8),
        trace_state="vendor=a,other=b",
        name="GET /",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 500_000_000,
        flags=0x301,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
        dropped_attributes_count=2,
        dropped_events_count=4,
        dropped_links_count=5,
    )
    root.attributes.extend(every_attr_type("span"))
    ev = root.events.add(time_unix_nano=T0 + 1, name="exception", dropped_attributes_count=1)
    ev.attributes.extend(every_attr_type("event"))
    root.events.add(time_unix_nano=T0 + 2, name="no attributes")
    root.events.add(name="")  # everything empty
    ln = root.links.add(
        trace_id=rnd.randbytes(16),
        span_id=rnd.randbytes(8),
        trace_state="t=1",
        dropped_attributes_count=9,
        flags=0x100,
    )
    ln.attributes.extend(every_attr_type("link"))
    root.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8))  # no attributes
    parent = root.span_id
    for kind in range(6):
        child = ss.spans.add(
            trace_id=trace_id,
            span_id=rnd.randbytes(8),
            parent_span_id=parent,
            name=f"child {kind}",
            kind=kind,
            start_time_unix_nano=T0 + kind,
            end_time_unix_nano=T0 + kind * 1000,
            status=Status(code=kind % 3, message="" if kind % 2 else f"m{kind}"),
            flags=kind,
        )
        child.attributes.append(kv("i", int_value=kind))
        if kind % 2:
            child.events.add(name="e", time_unix_nano=T0 + kind).attributes.append(
                kv("kind", int_value=kind)
            )
            child.links.add(trace_id=trace_id, span_id=parent).attributes.append(
                kv("parent", bool_value=True)
            )
        parent = child.span_id
    only_attrs = rs.scope_spans.add()
    only_attrs.scope.attributes.extend([kv("scope.kind", string_value="attrs only")])
    only_attrs.spans.add(trace_id=trace_id, span_id=rnd.randbytes(8), parent_span_id=parent)
    rs.scope_spans.add().spans.add(  # no scope at all
        trace_id=trace_id, span_id=rnd.randbytes(8), name="no scope", status=Status(code=1)
    )

    # resource 2: same scope name and version twice, different attributes: two scopes
    rs2 = req.resource_spans.add()
    rs2.resource.attributes.extend([kv("service.name", string_value="db"), kv("n", int_value=2)])
    for i in range(2):
        ss2 = rs2.scope_spans.add(scope=InstrumentationScope(name="sql", version="1"))
        ss2.scope.attributes.append(kv("pool", int_value=i))
        for _ in range(2):
            ss2.spans.add(
                trace_id=rnd.randbytes(16),
                span_id=rnd.randbytes(8),
                name="SELECT",
                kind=Span.SPAN_KIND_CLIENT,
                status=Status(message="only a message"),
            )

    # resource 3: no resource, an empty-but-present scope and status
    rs3 = req.resource_spans.add()
    ss3 = rs3.scope_spans.add(scope=InstrumentationScope())
    ss3.spans.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8), status=Status())
    return req


def random_request(seed: int) -> ExportTraceServiceRequest:
    """Random resources, scopes and spans; attributes are random subsets of every type."""
    rnd = random.Random(seed)

    def attrs(hi: int) -> list[KeyValue]:
        pool = every_attr_type(str(rnd.randrange(3)))
        return rnd.sample(pool, rnd.randrange(min(hi, len(pool)) + 1))

    def shuffled(kvs: list[KeyValue]) -> list[KeyValue]:
        rnd.shuffle(kvs)
        return kvs

    req = ExportTraceServiceRequest()
    for r in range(rnd.randrange(1, 4)):
        rs = req.resource_spans.add()
        # a unique attribute keeps resources apart (rows of equal resources are grouped)
        rs.resource.attributes.extend(shuffled([*attrs(8), kv("resource.index", int_value=r)]))
        for s in range(rnd.randrange(1, 4)):
            ss = rs.scope_spans.add()
            if s or rnd.random() < 0.5:  # only the first scope may be absent
                ss.scope.name = rnd.choice(["", "lib", "other"])
                ss.scope.version = rnd.choice(["", "1.0"])
                ss.scope.attributes.extend(shuffled([*attrs(6), kv("scope.index", int_value=s)]))
            trace_id = rnd.randbytes(16)
            parent = b""
            for _ in range(rnd.randrange(1, 6)):
                start = T0 + rnd.randrange(10**12)
                if rnd.random() < 0.1:  # 2**63 ns and later: negative as stored
                    start = rnd.randrange(2**63 - 10**9, 2**64 - 2 * 10**9)
                sp = ss.spans.add(
                    trace_id=trace_id,
                    span_id=rnd.randbytes(8),
                    parent_span_id=parent,
                    trace_state=rnd.choice(["", "a=1", "a=1,b=2"]),
                    name=rnd.choice(["a", "GET /x", "ééé", ""]),
                    kind=rnd.randrange(6),
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rnd.randrange(10**9),
                    flags=rnd.choice([0, 1, 0x300, 2**32 - 1]),
                    dropped_attributes_count=rnd.choice([0, 0, 3]),
                    dropped_events_count=rnd.choice([0, 0, 7]),
                    dropped_links_count=rnd.choice([0, 0, 2**32 - 1]),
                )
                if rnd.random() < 0.5:
                    sp.status.code = rnd.randrange(3)
                    sp.status.message = rnd.choice(["", "oops"])
                sp.attributes.extend(attrs(10))
                for _ in range(rnd.randrange(4)):
                    ev = sp.events.add(
                        time_unix_nano=start + rnd.randrange(10**9),
                        name=rnd.choice(["exception", "log", ""]),
                        dropped_attributes_count=rnd.choice([0, 1]),
                    )
                    ev.attributes.extend(attrs(6))
                for _ in range(rnd.randrange(3)):
                    ln = sp.links.add(
                        trace_id=rnd.randbytes(16),
                        span_id=rnd.randbytes(8),
                        trace_state=rnd.choice(["", "k=v"]),
                        dropped_attributes_count=rnd.choice([0, 5]),
                        flags=rnd.choice([0, 0x100, 0x301]),
                    )
                    ln.attributes.extend(attrs(6))
                if rnd.random() < 0.6:
                    parent = sp.span_id
    return req


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("via_parquet", [False, True], ids=["arrow", "parquet"])
def test_rich_request_round_trips(via_parquet: bool, tmp_path: Any) -> None:
    req = rich_request()
    assert_round_trip(req, via_parquet, tmp_path)
    got = rows_to_traces_data(
        pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    )
    # the grouping is the request's: 3 resources with 3, 2 and 1 scopes
    assert [len(rs.scope_spans) for rs in got.resource_spans] == [3, 2, 1]
    assert [ss.scope.attributes[0].value.int_value for ss in got.resource_spans[1].scope_spans] == [
        0,
        1,
    ]


@pytest.mark.parametrize("seed", range(25))
def test_random_requests_round_trip(seed: int, tmp_path: Any) -> None:
    assert_round_trip(random_request(seed), via_parquet=seed % 5 == 0, tmp=tmp_path)


def _normalised_bytes(req: ExportTraceServiceRequest) -> bytes:
    # bytes, not message equality: the requests hold NaN, and NaN != NaN
    return normalise(req.resource_spans).SerializeToString(deterministic=True)


def _swap(attrs: Any, i: int, j: int) -> None:
    a, b = KeyValue(), KeyValue()
    a.CopyFrom(attrs[i])
    b.CopyFrom(attrs[j])
    attrs[i].CopyFrom(b)
    attrs[j].CopyFrom(a)


def _protobuf_json(data: TracesData) -> dict[str, Any]:
    """The oracle: protobuf's own JSON of the same TracesData, ids turned to hex."""
    doc = json_format.MessageToDict(data, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                span.setdefault("status", {})
                for item in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return doc


def _same_json(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and (a == b or (a != a and b != b))


@pytest.mark.parametrize("seed", [-1, *range(40)])
def test_otlp_json_written_from_rows_is_protobufs_json(seed: int) -> None:
    req = rich_request() if seed < 0 else random_request(seed)
    table = pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    want = _protobuf_json(rows_to_traces_data(table))
    assert _same_json(rows_to_otlp_json(table), want)


@pytest.mark.parametrize("seed", [-1, *range(12)])
def test_big_tables_are_grouped_alike(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``_HASHED_GROUPING_ROWS`` rows on, resources and scopes are told apart by hash;
    the grouping (and so every encoding) is the same as comparing them row by row."""
    req = rich_request() if seed < 0 else random_request(seed)
    table = pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    by_rows = rows_to_traces_data(table)
    monkeypatch.setattr(otlp_encode, "_HASHED_GROUPING_ROWS", 0)
    assert rows_to_traces_data(table) == by_rows
    assert _same_json(rows_to_otlp_json(table), _protobuf_json(by_rows))


def test_normalisation_hides_only_what_it_is_meant_to() -> None:
    want = _normalised_bytes(rich_request())

    def edited(edit: Any) -> bytes:
        req = rich_request()
        edit(req.resource_spans)
        return _normalised_bytes(req)

    def root(rss: Any) -> Span:
        return rss[0].scope_spans[0].spans[0]

    def scope_attrs(rss: Any) -> Any:
        return rss[0].scope_spans[0].scope.attributes

    # differences that must show (the indexes are into every_attr_type())
    assert edited(lambda rss: root(rss).events[0].attributes.pop()) != want
    assert edited(lambda rss: setattr(root(rss).links[0], "flags", 1)) != want
    assert edited(lambda rss: setattr(scope_attrs(rss)[1].value, "int_value", 7)) != want
    assert (
        edited(lambda rss: rss[0].resource.attributes[1].value.ClearField("string_value")) != want
    )
    assert edited(lambda rss: setattr(rss[2].scope_spans[0].spans[0].status, "code", 1)) != want
    assert edited(lambda rss: root(rss).ClearField("status")) != want
    assert edited(lambda rss: _swap(root(rss).attributes, 0, 18)) != want  # string, string
    assert edited(lambda rss: _swap(root(rss).attributes, 3, 6)) != want  # double, double
    assert edited(lambda rss: _swap(root(rss).links[0].attributes, 2, 12)) != want  # raw, raw
    assert edited(lambda rss: _swap(root(rss).attributes, 16, 17)) != want  # raw, raw (keys)
    # differences the rows do not keep
    assert edited(lambda rss: _swap(root(rss).attributes, 0, 1)) == want  # string, int
    assert edited(lambda rss: _swap(root(rss).events[0].attributes, 1, 2)) == want  # int, raw
    assert edited(lambda rss: rss[2].scope_spans[0].ClearField("scope")) == want  # empty scope
    assert edited(lambda rss: rss[2].scope_spans[0].spans[0].ClearField("status")) == want
    assert edited(lambda rss: root(rss).attributes[17].value.SetInParent()) == want  # no value


def test_resources_with_nan_attributes_are_grouped() -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("x", double_value=float("nan")))
    ss = rs.scope_spans.add()
    ss.scope.attributes.append(kv("y", double_value=float("nan")))
    for i in range(3):
        ss.spans.add(trace_id=b"T" * 16, span_id=bytes([i + 1]) * 8)
    got = rows_to_traces_data(
        pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    )
    assert [len(rs.scope_spans) for rs in got.resource_spans] == [1]
    assert len(got.resource_spans[0].scope_spans[0].spans) == 3


def test_repeated_keys_come_back_once_with_the_first_value() -> None:
    req = ExportTraceServiceRequest()
    sp = req.resource_spans.add().scope_spans.add().spans.add(trace_id=b"T" * 16, span_id=b"S" * 8)
    sp.attributes.extend(
        [
            kv("k", int_value=1),
            kv("s", string_value="a"),
            kv("k", string_value="x"),
            kv("s", string_value="b"),
            kv("k", int_value=2),
        ]
    )
    assert_round_trip(req)
    got = rows_to_traces_data(
        pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    )
    attrs = got.resource_spans[0].scope_spans[0].spans[0].attributes
    assert [(a.key, a.value.WhichOneof("value")) for a in attrs] == [
        ("s", "string_value"),
        ("k", "int_value"),
    ]
    assert (attrs[0].value.string_value, attrs[1].value.int_value) == ("a", 1)


@pytest.mark.parametrize("via_parquet", [False, True], ids=["arrow", "parquet"])
def test_timestamps_of_2_63_and_later_round_trip(via_parquet: bool, tmp_path: Any) -> None:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    cases = [
        (2**63, 2**63),  # the first negative int64
        (2**63 + 5, 2**64 - 1),  # both negative as stored, the largest uint64 end
        (2**63 - 1, 2**63 + 10),  # starts before 2**63, ends after it
        (2**64 - 1, 2**64 - 1),
        (0, 2**64 - 1),  # a duration of 2**64 - 1: stored as -1
    ]
    for i, (start, end) in enumerate(cases):
        sp = ss.spans.add(
            trace_id=b"T" * 16,
            span_id=bytes([i + 1]) * 8,
            name=f"s{i}",
            start_time_unix_nano=start,
            end_time_unix_nano=end,
        )
        sp.events.add(name="at end", time_unix_nano=end)
        sp.events.add(name="max", time_unix_nano=2**64 - 1)
        sp.events.add(name="2**63", time_unix_nano=2**63)
    table = pa.Table.from_batches([decode_export_request(req.SerializeToString()).batch])
    assert min(table.column("start_unix_nano").to_pylist()) < 0  # stored negative
    assert_round_trip(req, via_parquet, tmp_path)
    got = rows_to_traces_data(table).resource_spans[0].scope_spans[0].spans
    assert [(s.start_time_unix_nano, s.end_time_unix_nano) for s in got] == cases
    assert [e.time_unix_nano for e in got[1].events] == [2**64 - 1, 2**64 - 1, 2**63]


def test_float_bits_distinguish_resources() -> None:
    req = ExportTraceServiceRequest()
    for value in (0.0, -0.0):
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("x", double_value=value))
        rs.scope_spans.add().spans.add(trace_id=b"T" * 16, span_id=struct.pack("<d", value + 1))
    assert_round_trip(req)
