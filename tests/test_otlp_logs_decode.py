"""The compiled OTLP logs decoder (``decode_logs_request``) against a pure-Python oracle.

The oracle (``reference_decode``) converts protobuf's parsed messages record by record, as
``threadline.model.otlp_logs`` did before the decoder was compiled. Both must give the same
``LOG_SCHEMA`` batch (compared value by value, floats by their bits), the same rejections and
the same first error, on a hand-built request holding every case (every ``AnyValue`` type as
attribute and as body, empty and repeated keys, keys without a value, long attribute lists,
several resources and scopes, missing times, ids absent, all-zero and of the wrong width,
event names, flags, dropped counts) and on seeded random requests. Malformed protobuf must be
a ``ValueError("invalid OTLP logs protobuf: ...")`` exactly when the protobuf library refuses
it, and random or mutated bytes must never raise anything else.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from threadline.model.otlp_logs import DecodedLogs, decode_logs_request
from threadline.model.schema import LOG_SCHEMA

# ---------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------

_TYPES = ("str", "int", "float", "bool", "raw")


def typed_attributes(kvs: Iterable[Any]) -> tuple[list[tuple[str, Any]], ...]:
    """OTLP ``KeyValue``s as (str, int, float, bool, raw) pair lists; a repeated key keeps
    its first value; arrays, key-value lists and bytes stay serialized ``AnyValue``s."""
    out: tuple[list[tuple[str, Any]], ...] = ([], [], [], [], [])
    seen: set[str] = set()
    for kv in kvs:
        if kv.key in seen:
            continue
        seen.add(kv.key)
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[0].append((kv.key, v.string_value))
        elif which == "int_value":
            out[1].append((kv.key, v.int_value))
        elif which == "double_value":
            out[2].append((kv.key, v.double_value))
        elif which == "bool_value":
            out[3].append((kv.key, v.bool_value))
        elif which is not None:
            out[4].append((kv.key, v.SerializeToString()))
    return out


def _body(value: AnyValue) -> tuple[str, bytes | None]:
    which = value.WhichOneof("value")
    if which is None:
        return "", None
    if which == "string_value":
        return value.string_value, None
    doc = json_format.MessageToDict(value)
    text = orjson.dumps(next(iter(doc.values()))).decode() if doc else ""
    return text, value.SerializeToString()


def _id(raw: bytes, size: int) -> bytes | None:
    return raw if len(raw) == size and raw != bytes(size) else None


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def reference_decode(data: bytes) -> DecodedLogs:
    """The pure-Python decoder (protobuf's parser, then one record at a time)."""
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(bytes(data))
    except DecodeError as e:
        raise ValueError(f"invalid OTLP logs protobuf: {e}") from None
    cols: dict[str, list[Any]] = {f.name: [] for f in LOG_SCHEMA}
    rejected: dict[str, int] = {}
    first_error: str | None = None
    for rl in req.resource_logs:
        resource = typed_attributes(rl.resource.attributes)
        service = next((v for k, v in resource[0] if k == "service.name"), "")
        for sl in rl.scope_logs:
            scope = typed_attributes(sl.scope.attributes)
            for rec in sl.log_records:
                bad_trace = len(rec.trace_id) not in (0, 16)
                if bad_trace or len(rec.span_id) not in (0, 8):
                    what = "trace_id" if bad_trace else "span_id"
                    size = len(rec.trace_id if bad_trace else rec.span_id)
                    rejected["invalid_id"] = rejected.get("invalid_id", 0) + 1
                    first_error = first_error or (
                        f"log record {what} must be {16 if bad_trace else 8} bytes, got {size}"
                    )
                    continue
                body, body_raw = _body(rec.body)
                cols["time_unix_nano"].append(
                    _int64(rec.time_unix_nano or rec.observed_time_unix_nano)
                )
                cols["observed_time_unix_nano"].append(_int64(rec.observed_time_unix_nano))
                cols["severity_number"].append(max(0, min(rec.severity_number, 127)))
                cols["severity_text"].append(rec.severity_text)
                cols["body"].append(body)
                cols["body_raw"].append(body_raw)
                cols["event_name"].append(rec.event_name)
                cols["trace_id"].append(_id(rec.trace_id, 16))
                cols["span_id"].append(_id(rec.span_id, 8))
                cols["flags"].append(rec.flags)
                cols["service_name"].append(service)
                cols["scope_name"].append(sl.scope.name)
                cols["scope_version"].append(sl.scope.version)
                attrs = typed_attributes(rec.attributes)
                for stem, typed in (("scope", scope), ("resource", resource), ("log", attrs)):
                    for t, pairs in zip(_TYPES, typed, strict=True):
                        cols[f"{stem}_attrs_{t}"].append(pairs)
                cols["dropped_attributes_count"].append(rec.dropped_attributes_count)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(cols[f.name], type=f.type) for f in LOG_SCHEMA], schema=LOG_SCHEMA
    )
    return DecodedLogs(batch, rejected, first_error)


def _bits(v: Any) -> Any:
    """``v`` with every float as its bits (NaN equals NaN, -0.0 differs from 0.0)."""
    if isinstance(v, float):
        return ("float", struct.pack("<d", v))
    if isinstance(v, list | tuple):
        return [_bits(x) for x in v]
    if isinstance(v, dict):
        return {k: _bits(x) for k, x in v.items()}
    return v


def assert_same_as_reference(data: bytes) -> DecodedLogs:
    want = reference_decode(data)
    got = decode_logs_request(data)
    got.batch.validate(full=True)
    assert got.batch.schema == LOG_SCHEMA
    assert got.rejected == want.rejected
    assert got.first_error == want.first_error
    assert got.batch.num_rows == want.batch.num_rows
    for name in LOG_SCHEMA.names:
        assert _bits(got.batch.column(name).to_pylist()) == _bits(
            want.batch.column(name).to_pylist()
        ), name
    return got


# ---------------------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------------------


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value)) if value else KeyValue(key=key)


def every_value() -> list[AnyValue]:
    """One ``AnyValue`` of every kind (and the corner values of the scalar ones)."""
    nested = AnyValue(
        kvlist_value=KeyValueList(
            values=[kv("inner", string_value="x"), kv("empty", array_value=ArrayValue()), kv("")]
        )
    )
    return [
        AnyValue(string_value="hello"),
        AnyValue(string_value=""),
        AnyValue(string_value='héllo 中文 🙂 "quoted" \\ \n'),
        AnyValue(int_value=42),
        AnyValue(int_value=-(2**63)),
        AnyValue(int_value=0),
        AnyValue(double_value=3.25),
        AnyValue(double_value=float("nan")),
        AnyValue(double_value=float("inf")),
        AnyValue(double_value=-0.0),
        AnyValue(double_value=1e300),
        AnyValue(bool_value=True),
        AnyValue(bool_value=False),
        AnyValue(bytes_value=b"\x00\xffbytes"),
        AnyValue(bytes_value=b""),
        AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), nested])),
        AnyValue(array_value=ArrayValue()),
        nested,
        AnyValue(kvlist_value=KeyValueList()),
        AnyValue(string_value_strindex=7),
        AnyValue(),
    ]


def every_attr(tag: str = "") -> list[KeyValue]:
    """Every kind of attribute value, an empty key, repeated keys (the first one wins, also
    when it has no value) and a key first seen with no value."""
    out = [KeyValue(key=f"v{i}{tag}", value=v) for i, v in enumerate(every_value())]
    out += [
        kv("", string_value="empty key"),
        kv("v0" + tag, int_value=5),  # repeats a string key
        kv("v3" + tag, string_value="again"),  # repeats an int key
        kv("novalue"),
        kv("novalue", string_value="hidden"),  # its key was taken by a value-less one
        kv("", bool_value=True),
    ]
    return out


def rich_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    bodies = every_value()
    # a resource with every attribute type, service.name first seen as a string
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(
        [
            kv("service.name", string_value="checkout"),
            *every_attr("r"),
            kv("service.name", string_value="shadowed"),
        ]
    )
    rl.resource.dropped_attributes_count = 3
    rl.schema_url = "https://opentelemetry.io/schemas/1.0"
    sl = rl.scope_logs.add()
    sl.scope.name = "checkout.handlers"
    sl.scope.version = "1.2.3"
    sl.scope.attributes.extend(every_attr("s"))
    sl.scope.dropped_attributes_count = 1
    trace, span = bytes(range(1, 17)), bytes(range(1, 9))
    for i, body in enumerate(bodies):
        rec = sl.log_records.add(
            time_unix_nano=1_700_000_000_000_000_000 + i,
            observed_time_unix_nano=1_700_000_000_000_000_500 + i,
            severity_number=i % 25,  # type: ignore[arg-type]
            severity_text=("INFO", "WARN", "")[i % 3],
            trace_id=trace if i % 3 else b"",
            span_id=span if i % 4 else b"",
            flags=i,
            dropped_attributes_count=i,
            event_name="order.created" if i % 2 else "",
        )
        rec.body.CopyFrom(body)
        rec.attributes.extend(every_attr(str(i))[: 3 + i])
    # times: missing, observed only, 2**63 and later (negative as stored)
    sl.log_records.add(body=AnyValue(string_value="no time"))
    sl.log_records.add(observed_time_unix_nano=123, body=AnyValue(string_value="observed"))
    sl.log_records.add(time_unix_nano=2**63 + 5, observed_time_unix_nano=2**64 - 1)
    # severities outside 0..127 (clamped), ids all zeros (null)
    sl.log_records.add(severity_number=-5, trace_id=bytes(16), span_id=bytes(8))  # type: ignore[arg-type]
    sl.log_records.add(severity_number=1000, trace_id=trace, span_id=bytes(8))  # type: ignore[arg-type]
    # rejected: ids of the wrong width (the trace id is named when both are wrong)
    sl.log_records.add(span_id=b"\x01" * 9, body=AnyValue(string_value="bad span"))
    sl.log_records.add(trace_id=b"\x01" * 15, span_id=b"\x01" * 9)
    sl.log_records.add(trace_id=b"\x01" * 17, attributes=every_attr())
    # a long attribute list (hashed keys) with repeats
    long_attrs = [kv(f"k{i % 50}", int_value=i) for i in range(120)]
    sl.log_records.add(attributes=long_attrs, body=AnyValue(string_value="long"))
    # a second scope without a scope message, and an empty one
    rl.scope_logs.add().log_records.add(body=AnyValue(string_value="no scope"))
    rl.scope_logs.add()
    # a resource whose service.name is an int (service_name ""), with two scopes
    rl2 = req.resource_logs.add()
    rl2.resource.attributes.extend(
        [kv("service.name", int_value=7), kv("service.name", string_value="later")]
    )
    for s in range(2):
        sl2 = rl2.scope_logs.add()
        sl2.scope.name = f"scope{s}"
        sl2.scope.attributes.extend([kv(f"k{i}", string_value=str(i)) for i in range(40)])
        for i in range(3):
            sl2.log_records.add(
                body=AnyValue(int_value=i), attributes=[kv("n", int_value=i), kv("n")]
            )
    # a resource without a resource message, a resource whose service.name has no value
    req.resource_logs.add().scope_logs.add().log_records.add(
        body=AnyValue(string_value="no resource")
    )
    rl4 = req.resource_logs.add()
    rl4.resource.attributes.extend([kv("service.name"), kv("service.name", string_value="x")])
    rl4.scope_logs.add().log_records.add()
    req.resource_logs.add()
    return req


def random_value(rnd: random.Random, depth: int = 0) -> AnyValue:
    kind = rnd.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return AnyValue(string_value=rnd.choice(("", "a", "ünï", "x" * rnd.randrange(300))))
    if kind == 1:
        return AnyValue(int_value=rnd.randrange(-(2**63), 2**63))
    if kind == 2:
        return AnyValue(double_value=rnd.choice((rnd.uniform(-1e9, 1e9), 0.5, -0.0, 1e-300)))
    if kind == 3:
        return AnyValue(bool_value=rnd.random() < 0.5)
    if kind == 4:
        return AnyValue(bytes_value=rnd.randbytes(rnd.randrange(20)))
    if kind == 5:
        return AnyValue()
    if kind in (6, 7):
        return AnyValue(
            array_value=ArrayValue(
                values=[random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
            )
        )
    return AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key=rnd.choice("abc"), value=random_value(rnd, depth + 1))
                for _ in range(rnd.randrange(4))
            ]
        )
    )


def random_attrs(rnd: random.Random) -> list[KeyValue]:
    n = rnd.choice((0, 1, 3, 5, 20, 40)) if rnd.random() < 0.9 else rnd.randrange(100)
    keys = [f"key.{i}" for i in range(max(1, n // 2 + 1))] + ["", "service.name"]
    return [KeyValue(key=rnd.choice(keys), value=random_value(rnd)) for _ in range(n)]


def _random_id(rnd: random.Random, size: int) -> bytes:
    r = rnd.random()
    if r < 0.1:
        return b""
    if r < 0.15:
        return bytes(size)
    if r < 0.18:
        return rnd.randbytes(rnd.choice((1, size - 1, size + 1, 32)))
    return rnd.randbytes(size)


def random_request(seed: int) -> ExportLogsServiceRequest:
    rnd = random.Random(seed)
    req = ExportLogsServiceRequest()
    for _ in range(rnd.randrange(1, 5)):
        rl = req.resource_logs.add()
        if rnd.random() < 0.8:
            rl.resource.attributes.extend(random_attrs(rnd))
            if rnd.random() < 0.7:
                rl.resource.attributes.insert(
                    rnd.randrange(len(rl.resource.attributes) + 1),
                    kv("service.name", string_value=f"svc{rnd.randrange(5)}"),
                )
        for _ in range(rnd.randrange(4)):
            sl = rl.scope_logs.add()
            if rnd.random() < 0.7:
                sl.scope.name = rnd.choice(("", "lib", "lib.ü"))
                sl.scope.version = rnd.choice(("", "1.0"))
                sl.scope.attributes.extend(random_attrs(rnd))
            for _ in range(rnd.randrange(30)):
                rec = LogRecord(
                    time_unix_nano=rnd.choice((0, rnd.randrange(2**64))),
                    observed_time_unix_nano=rnd.choice((0, rnd.randrange(2**64))),
                    severity_number=rnd.choice((0, 9, 13, 17, 24, rnd.randrange(-(2**31), 2**31))),
                    severity_text=rnd.choice(("", "INFO", "ERROR")),
                    trace_id=_random_id(rnd, 16),
                    span_id=_random_id(rnd, 8),
                    flags=rnd.choice((0, 1, rnd.randrange(2**32))),
                    dropped_attributes_count=rnd.choice((0, rnd.randrange(2**32))),
                    event_name=rnd.choice(("", "", "event.x")),
                    attributes=random_attrs(rnd),
                )
                if rnd.random() < 0.9:
                    rec.body.CopyFrom(
                        AnyValue(string_value=rnd.randbytes(80).hex())
                        if rnd.random() < 0.7
                        else random_value(rnd)
                    )
                sl.log_records.append(rec)
    return req


# ---------------------------------------------------------------------------------------
# equality with the oracle
# ---------------------------------------------------------------------------------------


def test_rich_request_same_as_reference() -> None:
    got = assert_same_as_reference(rich_request().SerializeToString())
    assert got.rejected == {"invalid_id": 3}
    assert got.first_error == "log record span_id must be 8 bytes, got 9"
    svc = got.batch.column("service_name").to_pylist()
    assert svc[0] == "checkout" and "" in svc and "later" not in svc and "x" not in svc
    bodies = got.batch.column("body").to_pylist()
    assert '"42"' in bodies and "3.25" in bodies and "true" in bodies  # OTLP/JSON text


@pytest.mark.parametrize("seed", range(60))
def test_random_requests_same_as_reference(seed: int) -> None:
    assert_same_as_reference(random_request(seed).SerializeToString())


def test_empty_request_and_inputs() -> None:
    for data in (b"", bytearray(rich_request().SerializeToString())):
        assert_same_as_reference(bytes(data))
    data = rich_request().SerializeToString()
    got = decode_logs_request(memoryview(data))
    assert got.batch.num_rows == reference_decode(data).batch.num_rows
    # a non-contiguous view is copied
    spread = bytes(x for b in data for x in (b, 0))
    got = decode_logs_request(memoryview(spread)[::2])
    assert _bits(got.batch.to_pylist()) == _bits(decode_logs_request(data).batch.to_pylist())


def test_protobuf_merge_semantics() -> None:
    """Fields repeated on the wire: the last scalar wins, messages merge (as protobuf)."""
    rec = LogRecord(severity_text="a", body=AnyValue(string_value="first"))
    rec2 = LogRecord(severity_text="b", severity_number=9, body=AnyValue(string_value="last"))
    rl_bytes = (
        ExportLogsServiceRequest(resource_logs=[{"scope_logs": [{"log_records": [rec]}]}])
        .resource_logs[0]
        .SerializeToString()
    )
    one = LogRecord()
    one.MergeFromString(rec.SerializeToString() + rec2.SerializeToString())
    req = ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.append(one)
    data = (
        req.SerializeToString()
        # a resource after its scopes, merged from two occurrences
        + b"\x0a"
        + _ld(rl_bytes + b"\x0a" + _ld(_kvs(kv("service.name", string_value="late"))))
    )
    got = assert_same_as_reference(data)
    assert got.batch.column("severity_text").to_pylist() == ["b", "a"]
    assert got.batch.column("service_name").to_pylist() == ["", "late"]


def _ld(payload: bytes) -> bytes:
    n, out = len(payload), b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n]) + payload


def _kvs(*kvs: KeyValue) -> bytes:
    return b"".join(b"\x0a" + _ld(k.SerializeToString()) for k in kvs)


# ---------------------------------------------------------------------------------------
# malformed input
# ---------------------------------------------------------------------------------------

_REFUSED = r"^invalid OTLP logs protobuf: "
_RECORD_PATH = (b"\x0a", b"\x12", b"\x12")  # resource_logs > scope_logs > log_records


def _in_record(payload: bytes) -> bytes:
    for tag in reversed(_RECORD_PATH):
        payload = tag + _ld(payload)
    return payload


def _nested_arrays(depth: int) -> bytes:
    v = AnyValue(int_value=1).SerializeToString()
    for _ in range(depth):
        v = b"\x2a" + _ld(b"\x0a" + _ld(v))
    return v


MALFORMED = {
    "truncated varint": b"\x0a\x80",
    "invalid wire type 7": b"\x0f",
    "invalid wire type 6": _in_record(b"\x0e"),
    "end group without start": _in_record(b"\x0c"),
    "unterminated group": _in_record(b"\x0b\x08\x01"),
    "mismatched end group": _in_record(b"\x0b\x14"),
    "field number 0": _in_record(b"\x00\x01"),
    "huge length": b"\x0a\xff\xff\xff\xff\x0f",
    "length past the end": _in_record(b"\x1a\x10abc"),
    "length prefix of 6 bytes": b"\x0a\x80\x80\x80\x80\x80\x00",
    "varint of 11 bytes": _in_record(b"\x10" + b"\xff" * 10 + b"\x01"),
    "truncated fixed64": _in_record(b"\x09\x01\x02\x03"),
    "truncated fixed32": _in_record(b"\x45\x01"),
    "severity text not UTF-8": _in_record(b"\x1a\x02\xc3\x28"),
    "attribute key not UTF-8": _in_record(b"\x32" + _ld(b"\x0a\x01\xff")),
    "string body not UTF-8": _in_record(b"\x2a" + _ld(b"\x0a\x01\x80")),
    "nested string not UTF-8": _in_record(b"\x2a" + _ld(b"\x2a" + _ld(b"\x0a\x03\x0a\x01\xff"))),
    "scope name not UTF-8": b"\x0a" + _ld(b"\x12" + _ld(b"\x0a" + _ld(b"\x0a\x01\xfe"))),
    "body nested too deeply": _in_record(b"\x2a" + _ld(_nested_arrays(60))),
    "malformed record inside a rejected one": _in_record(b"\x4a\x01\x01\x32\x03\x0a\x05"),
    "tag longer than 5 bytes": _in_record(b"\x88\x80\x80\x80\x80\x00\x01"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_is_value_error(name: str) -> None:
    data = MALFORMED[name]
    with pytest.raises(ValueError, match=_REFUSED):
        reference_decode(data)  # the protobuf library refuses it too
    with pytest.raises(ValueError, match=_REFUSED):
        decode_logs_request(data)


def test_nesting_limit_is_protobufs() -> None:
    """The deepest body protobuf accepts is accepted, one level more refused by both."""
    ok = [d for d in range(40, 55) if _accepts(_in_record(b"\x2a" + _ld(_nested_arrays(d))))]
    deepest = max(ok)
    assert ok == list(range(40, deepest + 1)) and deepest < 54
    assert_same_as_reference(_in_record(b"\x2a" + _ld(_nested_arrays(deepest))))
    with pytest.raises(ValueError):
        decode_logs_request(_in_record(b"\x2a" + _ld(_nested_arrays(deepest + 1))))


def _accepts(data: bytes) -> bool:
    try:
        reference_decode(data)
    except ValueError:
        return False
    return True


def test_every_prefix_of_a_request() -> None:
    """Truncated requests: refused exactly when protobuf refuses them, else the same rows."""
    data = rich_request().SerializeToString()
    rnd = random.Random(3)
    for cut in sorted({*rnd.sample(range(len(data)), 300), *range(40)}):
        prefix = data[:cut]
        if _accepts(prefix):
            assert_same_as_reference(prefix)
        else:
            with pytest.raises(ValueError, match=_REFUSED):
                decode_logs_request(prefix)


FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_SEED_REQUEST = random_request(7).SerializeToString()


def _decode_or_value_error(data: bytes) -> DecodedLogs | None:
    try:
        got = decode_logs_request(data)
    except ValueError as e:
        assert str(e).startswith("invalid OTLP logs protobuf: ")
        return None
    got.batch.validate(full=True)
    return got


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_only_value_error(data: bytes) -> None:
    got = _decode_or_value_error(data)
    assert (got is not None) == _accepts(data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(_SEED_REQUEST) - 1), st.integers(0, 255)),
                min_size=1, max_size=4))  # fmt: skip
def test_mutated_requests_only_value_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED_REQUEST)
    for at, byte in edits:
        data[at] = byte
    got = _decode_or_value_error(bytes(data))
    assert (got is not None) == _accepts(bytes(data))
