"""Hostile input, property-based: every span decoder on valid, mutated and random bytes.

Each decoder may only answer with its documented error (``ValueError``), within a bounded time
and memory; the compiled protobuf readers must also take the same accept/reject decision as the
protobuf library and give the same spans as it (the OTLP decoder against the reference decoder
of test_otlp_decode; Zipkin proto3 and Jaeger api_v2 against their canonical re-serialization
by protobuf, which must translate to the same bytes). Inputs are built from strategies (valid
messages), then damaged (bytes flipped, replaced, cut, inserted, truncated; JSON values swapped
for null or another type at any depth), and also drawn as raw bytes.

Runs are deterministic (``derandomize``, no example database) and small enough for ``make test``.
"""

from __future__ import annotations

import base64
import copy
import random
import socket
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from py_zipkin.encoding.protobuf import zipkin_pb2

from test_jaeger_translate import _random_batch, encode_batch, encode_emit_batch
from test_otlp_decode import WireGen, assert_matches_oracle
from test_zipkin_translate import _random_span, _sorted
from threadline.model import jaeger as tj
from threadline.model.otlp_decode import decode_export_request
from threadline.model.otlp_json import otlp_json_to_protobuf
from threadline.model.zipkin import (
    zipkin_v1_json_to_otlp,
    zipkin_v2_json_to_otlp,
    zipkin_v2_proto_to_otlp,
)

HOSTILE = settings(
    max_examples=150,  # the JSON tests take fewer: protobuf's JSON parser is pure Python
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SECONDS = 5.0  # per call; generous for a busy 2-core machine, far below a hang
MEMORY = 8 * 2**20  # bytes of fixed allowance ...
PER_BYTE = 2000  # ... plus this many per input byte (spans copy their resource and scope)


def bounded(call: Callable[[bytes], Any], data: bytes) -> Any:
    """``call(data)``: its result, or the ValueError it raised; checks time and memory."""
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result: Any = call(data)
    except ValueError as e:
        assert str(e), "an error must say what is wrong"
        result = e
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    limit = MEMORY + PER_BYTE * len(data)
    assert elapsed < SECONDS, f"{elapsed:.1f}s for {len(data)} bytes"
    assert peak < limit, f"{peak} bytes of Python memory for {len(data)} input bytes"
    held = pa.total_allocated_bytes() - arrow_before
    assert held < limit, f"{held} bytes of Arrow memory for {len(data)} input bytes"
    return result


# ---------------------------------------------------------------------------------------------
# byte mutations

_OPS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 2**16), st.binary(min_size=1, max_size=4)),
    max_size=4,
)


def mutate(data: bytes, ops: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each op applied: flip a bit, set a byte, cut, insert, truncate."""
    buf = bytearray(data)
    for kind, pos, blob in ops:
        if not buf:
            buf += blob
            continue
        i = pos % len(buf)
        if kind == 0:
            buf[i] ^= 1 << (blob[0] % 8)
        elif kind == 1:
            buf[i] = blob[0]
        elif kind == 2:
            del buf[i : i + len(blob)]
        elif kind == 3:
            buf[i:i] = blob
        else:
            del buf[i:]
    return bytes(buf)


# ---------------------------------------------------------------------------------------------
# OTLP requests built from strategies

_KEYS = st.sampled_from(["service.name", "http.method", "k", ""]) | st.text(max_size=6)
_SCALARS = st.one_of(
    st.text(max_size=8).map(lambda s: AnyValue(string_value=s)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats().map(lambda f: AnyValue(double_value=f)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(_KEYS, inner), max_size=3).map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    ),
    max_leaves=6,
)
_ATTRS = st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), _KEYS, _VALUES), max_size=4)
_U64 = st.integers(0, 2**64 - 1)
_U32 = st.integers(0, 2**32 - 1)


def _id(width: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(min_size=width, max_size=width),
        st.sampled_from([b"", bytes(width)]),
        st.binary(max_size=width + 2),
    )


@st.composite
def otlp_spans(draw: st.DrawFn) -> Span:
    start = draw(_U64)
    end = draw(st.one_of(_U64, st.integers(0, 10**9).map(lambda d: min(start + d, 2**64 - 1))))
    span = Span(
        trace_id=draw(_id(16)),
        span_id=draw(_id(8)),
        parent_span_id=draw(_id(8)),
        trace_state=draw(st.text(max_size=6)),
        name=draw(st.text(max_size=8)),
        kind=draw(st.integers(0, 7)),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=draw(_ATTRS),
        dropped_attributes_count=draw(_U32),
        flags=draw(_U32),
    )
    for _ in range(draw(st.integers(0, 2))):
        span.events.add(
            time_unix_nano=draw(_U64), name=draw(st.text(max_size=4))
        ).attributes.extend(draw(_ATTRS))
    for _ in range(draw(st.integers(0, 2))):
        span.links.add(trace_id=draw(_id(16)), span_id=draw(_id(8))).attributes.extend(draw(_ATTRS))
    if draw(st.booleans()):
        span.status.CopyFrom(
            Status(code=draw(st.integers(0, 3)), message=draw(st.text(max_size=4)))
        )
    return span


@st.composite
def otlp_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rs = ResourceSpans(resource=Resource(attributes=draw(_ATTRS)))
        for _ in range(draw(st.integers(0, 2))):
            scope = InstrumentationScope(
                name=draw(st.text(max_size=4)), version=draw(st.text(max_size=3))
            )
            scope.attributes.extend(draw(_ATTRS))
            ss = ScopeSpans(scope=scope, spans=draw(st.lists(otlp_spans(), max_size=3)))
            rs.scope_spans.append(ss)
        req.resource_spans.append(rs)
    return req


def _oracle_check(data: bytes) -> None:
    bounded(lambda d: assert_matches_oracle(d), data)


@settings(HOSTILE, max_examples=80)
@given(req=otlp_requests(), ops=_OPS)
def test_otlp_protobuf_structured_and_damaged(req: ExportTraceServiceRequest, ops: Any) -> None:
    data = req.SerializeToString()
    _oracle_check(data)
    _oracle_check(mutate(data, ops))


@HOSTILE
@given(seed=st.integers(0, 2**32), ops=_OPS)
def test_otlp_protobuf_odd_wire_messages(seed: int, ops: Any) -> None:
    """WireGen's field order, repeats, merges and unknown fields, then damaged."""
    _oracle_check(mutate(WireGen(seed).request(), ops))


@HOSTILE
@given(data=st.binary(max_size=200))
def test_otlp_protobuf_raw_bytes(data: bytes) -> None:
    _oracle_check(data)


def test_otlp_protobuf_huge_length_claims() -> None:
    """Lengths and counts far beyond the body must not allocate what they claim."""
    claims = [
        b"\x0a\xff\xff\xff\xff\x0f",  # resource_spans of 4 GiB
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # a length past 2^63
        b"\x0a\x05\x12\xff\xff\xff\x7f",  # a scope_spans longer than its parent
        b"\x0a" + b"\x80" * 9 + b"\x01",  # a 10-byte varint length
        b"\x0a\x02\x12" * 200,  # nesting that never closes
    ]
    for data in claims:
        _oracle_check(data)


# ---------------------------------------------------------------------------------------------
# OTLP/JSON: the protobuf JSON mapping of a strategy-built request, then hostile values


def _hex_ids(doc: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON of ``MessageToDict`` output: ids in hex instead of base64."""
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in holder:
                            holder[key] = base64.b64decode(holder[key]).hex()
    return doc


def _positions(node: Any, path: str = "") -> list[tuple[Any, Any, str, bool]]:
    """(container, key, rendered path, in a list) for every value below ``node``."""
    out: list[tuple[Any, Any, str, bool]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        here = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
        out.append((node, key, here.lstrip("."), isinstance(node, list)))
        if isinstance(value, dict | list):
            out.extend(_positions(value, here))
    return out


_HOSTILE_VALUES = st.sampled_from(
    [None, 0, -1, 1.5, 2**64 - 1, "", "x", "0102", True, [], {}, [None], [1], {"a": None}]
)


def _swap(doc: Any, index: int, replacement: Any) -> tuple[Any, str | None]:
    """``doc`` with one value replaced; the path when the change is a shape error for sure."""
    doc = copy.deepcopy(doc)
    positions = _positions(doc)
    if not positions:
        return replacement, None
    container, key, path, in_list = positions[index % len(positions)]
    old = container[key]
    container[key] = replacement
    wrong = (
        (isinstance(old, dict) and not isinstance(replacement, dict))
        or (isinstance(old, list) and not isinstance(replacement, list))
    ) and (replacement is not None or in_list)
    return doc, path if wrong else None


@settings(HOSTILE, max_examples=80)
@given(req=otlp_requests())
def test_otlp_json_matches_the_protobuf_json_mapping(req: ExportTraceServiceRequest) -> None:
    doc = _hex_ids(json_format.MessageToDict(req))
    got = bounded(otlp_json_to_protobuf, orjson.dumps(doc))
    assert not isinstance(got, ValueError), got
    # compared as JSON: a NaN's sign and payload do not survive JSON text
    back = json_format.MessageToDict(ExportTraceServiceRequest.FromString(got))
    assert back == json_format.MessageToDict(req)


@settings(HOSTILE, max_examples=80)
@given(req=otlp_requests(), index=st.integers(0, 10**6), replacement=_HOSTILE_VALUES)
def test_otlp_json_wrong_shapes_anywhere_are_400s(
    req: ExportTraceServiceRequest, index: int, replacement: Any
) -> None:
    doc = _hex_ids(json_format.MessageToDict(req))
    bad, path = _swap(doc, index, replacement)
    got = bounded(otlp_json_to_protobuf, orjson.dumps(bad))
    if isinstance(got, ValueError):
        assert str(got).startswith("invalid OTLP/JSON: ")
    else:
        bounded(decode_export_request, got)  # what passes is valid protobuf
    if path is not None:
        assert isinstance(got, ValueError), f"{path} = {replacement!r} was accepted"
        assert f"{path}: expected" in str(got)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
_OTLP_KEYS = st.sampled_from(
    ["resourceSpans", "scopeSpans", "spans", "resource", "attributes", "value", "arrayValue",
     "values", "events", "links", "status", "traceId", "spanId", "kind", "name", "key"]
)  # fmt: skip


@st.composite
def otlp_shaped_json(draw: st.DrawFn) -> Any:
    """Random JSON whose keys are mostly OTLP names, so that it reaches deep into the tree."""
    return draw(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=4),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(_OTLP_KEYS, inner, max_size=3)
            ),
            max_leaves=12,
        )
    )


@HOSTILE
@given(doc=_JSON | otlp_shaped_json())
def test_otlp_json_random_documents(doc: Any) -> None:
    try:
        body = orjson.dumps(doc)
    except orjson.JSONEncodeError:  # an integer orjson cannot write
        return
    got = bounded(otlp_json_to_protobuf, body)
    if not isinstance(got, ValueError):
        bounded(decode_export_request, got)


@settings(HOSTILE, max_examples=80)
@given(req=otlp_requests(), ops=_OPS, raw=st.binary(max_size=100))
def test_otlp_json_damaged_and_raw_bytes(
    req: ExportTraceServiceRequest, ops: Any, raw: bytes
) -> None:
    body = orjson.dumps(_hex_ids(json_format.MessageToDict(req)))
    bounded(otlp_json_to_protobuf, mutate(body, ops))
    bounded(otlp_json_to_protobuf, raw)


def test_otlp_json_deep_nesting() -> None:
    deep = (
        b'{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":'
        + (b'{"arrayValue":{"values":[' * 400)
        + b"]}}" * 400
        + b"}]}}]}"
    )
    got = bounded(otlp_json_to_protobuf, deep)
    assert isinstance(got, ValueError)
    assert isinstance(bounded(otlp_json_to_protobuf, b"[" * 5000 + b"]" * 5000), ValueError)


# ---------------------------------------------------------------------------------------------
# Zipkin v2 JSON and proto3, v1 JSON

_KIND = {"CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}


def _proto_of(spans: list[dict[str, Any]]) -> bytes:
    """The py-zipkin protobuf ``ListOfSpans`` of v2 JSON spans (as _random_span writes them)."""
    msg = zipkin_pb2.ListOfSpans()
    for sp in spans:
        p = msg.spans.add(
            trace_id=bytes.fromhex(sp["traceId"]),
            id=bytes.fromhex(sp["id"]),
            parent_id=bytes.fromhex(sp.get("parentId", "")),
            name=sp["name"],
            kind=_KIND.get(sp.get("kind"), 0),  # type: ignore[arg-type]
            timestamp=sp["timestamp"],
            duration=sp["duration"],
            shared=sp["shared"],
            tags=sp["tags"],
        )
        for field, out in (
            ("localEndpoint", p.local_endpoint),
            ("remoteEndpoint", p.remote_endpoint),
        ):
            ep = sp.get(field)
            if ep:
                out.service_name = ep["serviceName"]
                out.port = ep.get("port", 0)
                for family, key in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
                    if key in ep:
                        setattr(out, key, socket.inet_pton(family, ep[key]))
        for a in sp["annotations"]:
            p.annotations.add(timestamp=a["timestamp"], value=a["value"])
    return msg.SerializeToString()


def _zipkin_spans(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [_random_span(rng, i) for i in range(rng.randint(1, 4))]


def _same_request(a: bytes, b: bytes) -> None:
    left = ExportTraceServiceRequest.FromString(a)
    right = ExportTraceServiceRequest.FromString(b)
    assert _sorted(left) == _sorted(right)


@HOSTILE
@given(seed=st.integers(0, 2**32), index=st.integers(0, 10**6), replacement=_HOSTILE_VALUES)
def test_zipkin_v2_json_hostile_values(seed: int, index: int, replacement: Any) -> None:
    spans = _zipkin_spans(seed)
    want = bounded(zipkin_v2_json_to_otlp, orjson.dumps(spans))
    got = bounded(zipkin_v2_proto_to_otlp, _proto_of(spans))
    _same_request(want, got)  # JSON and proto3 give the same spans
    bad, _ = _swap(spans, index, replacement)
    out = bounded(zipkin_v2_json_to_otlp, orjson.dumps(bad))
    if not isinstance(out, ValueError):
        bounded(decode_export_request, out)


def _zipkin_proto_oracle(data: bytes) -> None:
    """Same decision as protobuf, and the same output as for protobuf's re-serialization, with
    and without the unknown fields it kept (upb keeps a tag map entry holding an unknown field
    as an unknown field of the span, re-encoded at its end, and not as a tag)."""
    got = bounded(zipkin_v2_proto_to_otlp, data)
    try:
        parsed = zipkin_pb2.ListOfSpans.FromString(data)
    except DecodeError:
        assert isinstance(got, ValueError), "protobuf refuses these bytes"
        return
    bare = zipkin_pb2.ListOfSpans()
    bare.CopyFrom(parsed)
    bare.DiscardUnknownFields()
    for again in (parsed, bare):
        canonical = bounded(zipkin_v2_proto_to_otlp, again.SerializeToString())
        if isinstance(got, ValueError) or isinstance(canonical, ValueError):
            assert type(got) is type(canonical), (got, canonical)
            continue
        _same_request(got, canonical)


@HOSTILE
@given(seed=st.integers(0, 2**32), ops=_OPS, raw=st.binary(max_size=120))
def test_zipkin_proto_damaged_and_raw(seed: int, ops: Any, raw: bytes) -> None:
    _zipkin_proto_oracle(mutate(_proto_of(_zipkin_spans(seed)), ops))
    _zipkin_proto_oracle(raw)


def _v1_span(rng: random.Random, i: int) -> dict[str, Any]:
    ep = rng.choice([{"serviceName": "web", "ipv4": "10.0.0.3", "port": 80}, {"serviceName": "db"}])
    ts = 1_556_604_172_355_737 + rng.randint(0, 9)
    return {
        "traceId": rng.choice(["5af7183fb1d4cf5f", "463ac35c9f6413ad48485a3953bb6124"]),
        "id": f"{i + 1:016x}",
        "name": rng.choice(["get", ""]),
        "timestamp": ts,
        "duration": rng.choice([0, 100]),
        "annotations": [
            {"timestamp": ts + j, "value": rng.choice(["cs", "cr", "sr", "x"]), "endpoint": ep}
            for j in range(rng.randint(0, 3))
        ],
        "binaryAnnotations": [
            {"key": rng.choice(["http.path", "error", "lc", "sa"]),
             "value": rng.choice(["/", 2, True]), "endpoint": ep}
            for _ in range(rng.randint(0, 3))
        ],
    }  # fmt: skip


@HOSTILE
@given(
    seed=st.integers(0, 2**32),
    index=st.integers(0, 10**6),
    replacement=_HOSTILE_VALUES,
    ops=_OPS,
)
def test_zipkin_v1_and_v2_json_damaged(seed: int, index: int, replacement: Any, ops: Any) -> None:
    rng = random.Random(seed)
    v1 = [_v1_span(rng, i) for i in range(rng.randint(1, 3))]
    assert not isinstance(bounded(zipkin_v1_json_to_otlp, orjson.dumps(v1)), ValueError)
    bad, _ = _swap(v1, index, replacement)
    for translate in (zipkin_v1_json_to_otlp, zipkin_v2_json_to_otlp):
        for body in (orjson.dumps(bad), mutate(orjson.dumps(v1), ops)):
            out = bounded(translate, body)
            if not isinstance(out, ValueError):
                bounded(decode_export_request, out)


@HOSTILE
@given(doc=_JSON, raw=st.binary(max_size=80))
def test_zipkin_random_json_and_bytes(doc: Any, raw: bytes) -> None:
    try:
        bodies = [orjson.dumps(doc), orjson.dumps([doc])]
    except orjson.JSONEncodeError:  # an integer orjson cannot write
        bodies = []
    for translate in (zipkin_v1_json_to_otlp, zipkin_v2_json_to_otlp):
        for data in (*bodies, raw):
            bounded(translate, data)


# ---------------------------------------------------------------------------------------------
# Jaeger thrift (binary, compact, agent) and api_v2


def _jaeger_all(data: bytes) -> None:
    for protocol in ("binary", "compact"):
        bounded(lambda d, p=protocol: tj.thrift_batch_to_otlp(d, p), data)
        bounded(lambda d, p=protocol: tj.agent_message_to_otlp(d, p), data)


@HOSTILE
@given(seed=st.integers(0, 2**32), ops=_OPS)
def test_jaeger_thrift_damaged(seed: int, ops: Any) -> None:
    batch, api_v2 = _random_batch(random.Random(seed))
    want = bounded(lambda d: tj.thrift_batch_to_otlp(d, "binary"), encode_batch(batch, "binary"))
    assert bounded(tj.post_spans_to_otlp, api_v2) == want
    for protocol in ("binary", "compact"):
        _jaeger_all(mutate(encode_batch(batch, protocol), ops))
        _jaeger_all(mutate(encode_emit_batch(batch, protocol), ops))


@HOSTILE
@given(raw=st.binary(max_size=120))
def test_jaeger_thrift_raw_bytes(raw: bytes) -> None:
    _jaeger_all(raw)


@pytest.mark.parametrize(
    "data",
    [
        b"\x0f\x00\x02\x0c\x7f\xff\xff\xff",  # binary: a list of 2^31-1 spans, no elements
        b"\x0c\x00\x01\x0f\x00\x02\x0c\x7f\xff\xff\xff\x00",  # ... process tags
        b"\x19\xfc\xff\xff\xff\x0f",  # compact: a list of 2^32 structs
        b"\x0b\x00\x01\x7f\xff\xff\xff",  # binary: a 2 GiB string
        b"\x18\xff\xff\xff\xff\x0f",  # compact: a 4 GiB string
        b"\x80\x01\x00\x04\x00\x00\x00\x09emitBatch\x00\x00\x00\x01\x0c\x00\x01" * 30,
    ],
)
def test_jaeger_thrift_huge_claims(data: bytes) -> None:
    _jaeger_all(data)


def _api_v2_oracle(data: bytes) -> None:
    got = bounded(tj.post_spans_to_otlp, data)
    try:
        parsed = tj.PostSpansRequest.FromString(data)
    except DecodeError:
        assert isinstance(got, ValueError), "protobuf refuses these bytes"
        return
    canonical = bounded(tj.post_spans_to_otlp, parsed.SerializeToString())
    if isinstance(got, ValueError) or isinstance(canonical, ValueError):
        assert type(got) is type(canonical), (got, canonical)
        return
    assert got == canonical


@HOSTILE
@given(seed=st.integers(0, 2**32), ops=_OPS, raw=st.binary(max_size=120))
def test_jaeger_api_v2_damaged_and_raw(seed: int, ops: Any, raw: bytes) -> None:
    _, api_v2 = _random_batch(random.Random(seed))
    _api_v2_oracle(mutate(api_v2, ops))
    _api_v2_oracle(raw)


# ---------------------------------------------------------------------------------------------
# found by make fuzz: wire details where the compiled readers must decide as upb does

_WIRE_CASES = [
    (b"\x9b\x01\x00\x05\x9c\x01", True),  # fuzz: field 0 (a varint) in an unknown group 19
    (b"\x9b\x01\x03\x00\x01\x04\x9c\x01", True),  # a group of field 0 in one
    (b"\x9b\x01\x02\x02ab\x9c\x01", True),  # a length-delimited field 0 in one
    (b"\x9b\x01\x80\x80\x00\x05\x9c\x01", True),  # field 0 in a 3-byte tag in one
    (b"\x00\x05", False),  # field 0 in a message
    (b"\x03\x04", False),  # a group of field 0 in a message
    (b"\x9b\x01\x04\x9c\x01", False),  # the end of a group 0 never started
    (b"\x9b\x01\x03\x0c\x9c\x01", False),  # a group 0 ended as group 1
    (b"\x9b\x01\x00\x9c\x01", False),  # field 0 takes the end tag as its value
    (b"\x88\x80\x80\x80\x00\x05", True),  # a 5-byte tag
    (b"\x88\x80\x80\x80\x80\x00\x05", False),  # a 6-byte tag
    (b"\x9b\x01\x88\x80\x80\x80\x80\x00\x05\x9c\x01", False),  # ... in a group
    (b"\x9b\x01\x9c\x81\x80\x80\x80\x00", False),  # ... ending a group
    (b"\x12\x82\x80\x80\x80\x00ab", True),  # a 5-byte length
    (b"\x12\x82\x80\x80\x80\x80\x00ab", False),  # a 6-byte length
]


def _zipkin_span_with(extra: bytes) -> bytes:
    ids = b"\x0a\x10" + b"\x01" * 16 + b"\x1a\x08" + b"\x02" * 8
    span = ids + b"\x31" + (1_556_604_172_355_737).to_bytes(8, "little") + b"\x38\x0f" + extra
    return b"\x0a" + bytes([len(span)]) + span


@pytest.mark.parametrize(("data", "accepted"), _WIRE_CASES)
def test_protobuf_readers_decide_wire_details_as_upb(data: bytes, accepted: bool) -> None:
    for message, oracle in (
        (ExportTraceServiceRequest, _oracle_check),
        (zipkin_pb2.ListOfSpans, _zipkin_proto_oracle),
        (tj.PostSpansRequest, _api_v2_oracle),
    ):
        try:
            message.FromString(data)
        except DecodeError:
            assert not accepted, message
        else:
            assert accepted, message
        oracle(data)
    # the same inside a span
    span = b"\x12" + bytes([len(data)]) + data
    scope_spans = b"\x12" + bytes([len(span)]) + span
    _oracle_check(b"\x0a" + bytes([len(scope_spans)]) + scope_spans)
    _zipkin_proto_oracle(_zipkin_span_with(data))


# a tag map entry holding an unknown field (field 3 here) and a missing key, after an entry of
# the same (missing) key: upb keeps it as an unknown field of the span, not as a tag
_ZIPKIN_FUZZ_TAGS = base64.b64decode(
    "CqUBChBGOsNcn2QTrUhIWjlTu2EkEggAAAAAAAAAARoIAAAAAAAAAAEgAyoDZ2V0MaDIvya5hwUAOA9CBwoCZGIguCpa"
    "GBoPc2VydmljZS52ZXJzaW9uEgVFUlJPUloNCgVlcnJvchIEdHJ1ZVoXChBvdGVsLnN0YXR1c19jb2RlEgNsaWJaFgoP"
    "b3RlbC5zY29wZS5uYW1lEgPigKhaCAoAEgTDqQpc"
)


def _entry(body: bytes) -> bytes:
    return b"\x5a" + bytes([len(body)]) + body


@pytest.mark.parametrize(
    "tags",
    [
        _entry(b"\x0a\x01a\x12\x01x\x1a\x01z"),  # an unknown field 3
        _entry(b"\x0a\x01a\x12\x01x\x18\x05"),  # ... a varint
        _entry(b"\x0a\x01a\x12\x01x\x1b\x00\x01\x1c"),  # ... a group, field 0 in it
        _entry(b"\x0a\x01a\x12\x01x\x1a\x01\xff"),  # ... not UTF-8 (not checked)
        _entry(b"\x08\x01\x12\x01x"),  # the key as a varint: an unknown field
        _entry(b"\x0a\x01a\x10\x01"),  # the value as a varint
        _entry(b"\x0a\x01a\x12\x01x\x18\x05") + _entry(b"\x0a\x01a\x12\x01y"),
        _entry(b"\x0a\x01a\x12\x01y") + _entry(b"\x0a\x01a\x12\x01x\x18\x05"),
        _entry(b"\x12\x01x"),  # no key: ""
        _entry(b"\x0a\x01a"),  # no value: ""
        _entry(b""),
        _entry(b"\x0a\x01a\x0a\x01b\x12\x01x"),  # a repeated key: the last one
        _entry(b"\x0a\x01a\x12\x01x\x12\x01y"),  # a repeated value: the last one
        _entry(b"\x12\x01x") + _entry(b"\x1a\x01z\x12\x01y") + _entry(b"\x0a\x00\x12\x01w"),
    ],
)
def test_zipkin_proto_tag_entries_as_upb(tags: bytes) -> None:
    data = _zipkin_span_with(tags)
    _zipkin_proto_oracle(data)
    want = dict(zipkin_pb2.ListOfSpans.FromString(data).spans[0].tags)
    (span,) = (
        ExportTraceServiceRequest.FromString(zipkin_v2_proto_to_otlp(data))
        .resource_spans[0]
        .scope_spans[0]
        .spans
    )
    assert {a.key: a.value.string_value for a in span.attributes} == want


def test_zipkin_proto_fuzz_tag_entry() -> None:
    _zipkin_proto_oracle(_ZIPKIN_FUZZ_TAGS)
    parsed = zipkin_pb2.ListOfSpans.FromString(_ZIPKIN_FUZZ_TAGS)
    assert "ERROR" not in parsed.spans[0].tags.values()
    out = ExportTraceServiceRequest.FromString(zipkin_v2_proto_to_otlp(_ZIPKIN_FUZZ_TAGS))
    (span,) = out.resource_spans[0].scope_spans[0].spans
    assert [(a.key, a.value.string_value) for a in span.attributes if not a.key] == [
        ("", parsed.spans[0].tags[""])
    ]
