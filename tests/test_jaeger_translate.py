"""Jaeger → OTLP translation rules, and the strict thrift/protobuf decoders, without a server.

Thrift payloads are encoded with thriftpy2 from our IDL (an encoder independent of our decoder);
api_v2 payloads with the protobuf classes built from our descriptors. Every translation result is
parsed back with the official OTLP protobuf classes.
"""

from __future__ import annotations

import contextlib
import random
import struct
from typing import Any

import pytest
import thriftpy2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.thrift import TMessageType
from thriftpy2.transport import TMemoryBuffer

from threadline.model import jaeger as tj
from threadline.model.otlp_decode import decode_export_request

IDL = thriftpy2.load(str(tj.IDL_DIR / "agent.thrift"), module_name="tl_test_agent_thrift")
J = IDL.jaeger
T0 = 1_700_000_000_123_456  # µs


# ---------------------------------------------------------------------------------------------
# helpers (also used by test_jaeger_ingest)


def tag(key: str, value: Any) -> Any:
    """A thrift ``Tag`` typed from the Python value."""
    if isinstance(value, bool):
        return J.Tag(key=key, vType=J.TagType.BOOL, vBool=value)
    if isinstance(value, int):
        return J.Tag(key=key, vType=J.TagType.LONG, vLong=value)
    if isinstance(value, float):
        return J.Tag(key=key, vType=J.TagType.DOUBLE, vDouble=value)
    if isinstance(value, bytes):
        return J.Tag(key=key, vType=J.TagType.BINARY, vBinary=value)
    return J.Tag(key=key, vType=J.TagType.STRING, vStr=value)


def tags(**kv: Any) -> list[Any]:
    return [tag(k.replace("__", "."), v) for k, v in kv.items()]


def thrift_span(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "traceIdLow": 2,
        "traceIdHigh": 1,
        "spanId": 3,
        "parentSpanId": 0,
        "operationName": "op",
        "flags": 1,
        "startTime": T0,
        "duration": 1500,
    }
    base.update(fields)
    return J.Span(**base)


def thrift_batch(spans: list[Any], service: str = "svc", ptags: list[Any] | None = None) -> Any:
    return J.Batch(process=J.Process(serviceName=service, tags=ptags), spans=spans)


def encode_batch(batch: Any, protocol: str = "binary") -> bytes:
    factory = TBinaryProtocolFactory() if protocol == "binary" else TCompactProtocolFactory()
    buf = TMemoryBuffer()
    factory.get_protocol(buf).write_struct(batch)
    return buf.getvalue()


def encode_emit_batch(batch: Any, protocol: str, method: str = "emitBatch") -> bytes:
    """A oneway ``Agent.emitBatch`` call message, as an agent UDP datagram."""
    factory = TBinaryProtocolFactory() if protocol == "binary" else TCompactProtocolFactory()
    buf = TMemoryBuffer()
    proto = factory.get_protocol(buf)
    proto.write_message_begin(method, TMessageType.ONEWAY, 7)
    proto.write_struct(IDL.Agent.emitBatch_args(batch=batch))
    proto.write_message_end()
    return buf.getvalue()


def id128(high: int, low: int) -> bytes:
    """A 128-bit trace id of its signed i64 halves (big-endian)."""
    return struct.pack(">qq", high, low)


def id64(value: int) -> bytes:
    return struct.pack(">q", value)


def otlp(translated: tuple[bytes, int]) -> ExportTraceServiceRequest:
    """The request of a translator's (OTLP bytes, span count), checked for the count."""
    data, count = translated
    req = ExportTraceServiceRequest.FromString(data)
    assert count == sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    return req


def translate(*spans: Any, **batch_kw: Any) -> ExportTraceServiceRequest:
    return otlp(tj.thrift_batch_to_otlp(encode_batch(thrift_batch(list(spans), **batch_kw))))


def only_span(req: ExportTraceServiceRequest) -> Span:
    (rs,) = req.resource_spans
    (ss,) = rs.scope_spans
    (span,) = ss.spans
    return span


def attrs(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        kv: KeyValue
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def typed(kvs: Any) -> dict[str, tuple[str, Any]]:
    return {kv.key: (kv.value.WhichOneof("value"), getattr(kv.value, kv.value.WhichOneof("value")))
            for kv in kvs}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# ids, times, names


def test_ids_are_big_endian_and_signed_i64_become_unsigned() -> None:
    span = only_span(
        translate(thrift_span(traceIdHigh=-2, traceIdLow=-1, spanId=-(2**63), parentSpanId=-3))
    )
    assert span.trace_id == bytes.fromhex("fffffffffffffffe" + "ffffffffffffffff")
    assert span.span_id == bytes.fromhex("8000000000000000")
    assert span.parent_span_id == bytes.fromhex("fffffffffffffffd")


def test_64_bit_trace_id_gets_a_zero_high_half() -> None:
    span = only_span(translate(thrift_span(traceIdHigh=0, traceIdLow=0x0102030405060708)))
    assert span.trace_id == bytes(8) + bytes.fromhex("0102030405060708")


def test_times_microseconds_to_nanoseconds_and_name() -> None:
    span = only_span(translate(thrift_span(startTime=T0, duration=2_500, operationName="GET /x")))
    assert span.start_time_unix_nano == T0 * 1000
    assert span.end_time_unix_nano == (T0 + 2_500) * 1000
    assert span.name == "GET /x"


def test_root_span_has_no_parent() -> None:
    assert only_span(translate(thrift_span(parentSpanId=0))).parent_span_id == b""


# ---------------------------------------------------------------------------------------------
# process → resource


def test_process_becomes_the_resource() -> None:
    req = translate(
        thrift_span(),
        service="checkout",
        ptags=tags(hostname="h1", ip="10.0.0.1", jaeger__version="Go-2.30.0", cores=8),
    )
    (rs,) = req.resource_spans
    assert typed(rs.resource.attributes) == {
        "service.name": ("string_value", "checkout"),
        "host.name": ("string_value", "h1"),
        "ip": ("string_value", "10.0.0.1"),
        "opencensus.exporterversion": ("string_value", "Jaeger-Go-2.30.0"),
        "cores": ("int_value", 8),
    }


def test_python_exporter_resource_tags_move_back_to_the_resource() -> None:
    # the OTel Python exporter: empty process tags, resource copied onto every span
    copied = tags(
        service__name="svc",
        host__name="box",
        telemetry__sdk__language="python",
        telemetry__sdk__name="opentelemetry",
        telemetry__sdk__version="1.21.0",
        deployment__environment="prod",
    )
    req = translate(
        thrift_span(spanId=1, tags=[*copied, tag("http.method", "GET")]),
        thrift_span(spanId=2, tags=[*copied, tag("db.system", "redis")]),
        service="svc",
    )
    (rs,) = req.resource_spans
    assert attrs(rs.resource.attributes) == {
        "service.name": "svc",
        "host.name": "box",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.21.0",
        "deployment.environment": "prod",
    }
    (ss,) = rs.scope_spans
    assert [attrs(s.attributes) for s in ss.spans] == [
        {"http.method": "GET"},
        {"db.system": "redis"},
    ]


def test_resource_tag_conflicting_with_the_process_stays_on_the_span() -> None:
    req = translate(thrift_span(tags=tags(service__name="other", host__name="b")), service="svc")
    (rs,) = req.resource_spans
    assert attrs(rs.resource.attributes) == {"service.name": "svc", "host.name": "b"}
    assert attrs(only_span(req).attributes) == {"service.name": "other"}


def test_spans_with_different_moved_tags_get_different_resources() -> None:
    req = translate(
        thrift_span(spanId=1, tags=tags(host__name="a")),
        thrift_span(spanId=2, tags=tags(host__name="b")),
        thrift_span(spanId=3, tags=tags(host__name="a")),
    )
    hosts = [
        (attrs(rs.resource.attributes)["host.name"], [s.span_id[-1] for s in ss.spans])
        for rs in req.resource_spans
        for ss in rs.scope_spans
    ]
    assert hosts == [("a", [1, 3]), ("b", [2])]


# ---------------------------------------------------------------------------------------------
# tags → attributes, kind, status, scope, trace state


def test_tag_types_are_kept() -> None:
    span = only_span(
        translate(
            thrift_span(
                tags=[
                    tag("s", "text"),
                    tag("i", -42),
                    tag("big", 2**63 - 1),
                    tag("d", 0.25),
                    tag("b", False),
                    tag("raw", b"\x00\xffbin"),
                ]
            )
        )
    )
    assert typed(span.attributes) == {
        "s": ("string_value", "text"),
        "i": ("int_value", -42),
        "big": ("int_value", 2**63 - 1),
        "d": ("double_value", 0.25),
        "b": ("bool_value", False),
        "raw": ("bytes_value", b"\x00\xffbin"),
    }


def test_unknown_tag_type_becomes_a_marker_string() -> None:
    span = only_span(translate(thrift_span(tags=[J.Tag(key="x", vType=9, vStr="?")])))
    assert attrs(span.attributes) == {"x": "<Unknown Jaeger TagType 9>"}


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("server", Span.SPAN_KIND_SERVER),
        ("client", Span.SPAN_KIND_CLIENT),
        ("producer", Span.SPAN_KIND_PRODUCER),
        ("consumer", Span.SPAN_KIND_CONSUMER),
        ("internal", Span.SPAN_KIND_INTERNAL),
        ("weird", Span.SPAN_KIND_UNSPECIFIED),
    ],
)
def test_span_kind_tag(value: str, kind: int) -> None:
    span = only_span(translate(thrift_span(tags=tags(span__kind=value, a=1))))
    assert span.kind == kind
    assert attrs(span.attributes) == {"a": 1}


def test_no_span_kind_tag_is_unspecified() -> None:
    assert only_span(translate(thrift_span())).kind == Span.SPAN_KIND_UNSPECIFIED


def _status(*tag_list: Any, kind: str | None = None) -> tuple[int, str, dict[str, Any]]:
    extra = [tag("span.kind", kind)] if kind else []
    span = only_span(translate(thrift_span(tags=[*tag_list, *extra])))
    return span.status.code, span.status.message, attrs(span.attributes)


def test_python_exporter_error_status() -> None:
    got = _status(
        tag("otel.status_code", "ERROR"),
        tag("otel.status_description", "timeout"),
        tag("error", True),
        tag("db.system", "pg"),
    )
    assert got == (Status.STATUS_CODE_ERROR, "timeout", {"db.system": "pg"})


def test_error_tag_alone_is_an_error() -> None:
    assert _status(tag("error", True)) == (Status.STATUS_CODE_ERROR, "", {})


def test_error_false_is_no_status_and_stays() -> None:
    assert _status(tag("error", False)) == (Status.STATUS_CODE_UNSET, "", {"error": False})


def test_error_as_string_is_not_a_status() -> None:
    assert _status(tag("error", "true")) == (Status.STATUS_CODE_UNSET, "", {"error": "true"})


def test_otel_status_ok() -> None:
    assert _status(tag("otel.status_code", "OK")) == (Status.STATUS_CODE_OK, "", {})


def test_otel_status_error_without_error_tag() -> None:
    got = _status(tag("otel.status_code", "ERROR"), tag("otel.status_description", "boom"))
    assert got == (Status.STATUS_CODE_ERROR, "boom", {})


def test_error_tag_wins_over_otel_status_code() -> None:
    got = _status(tag("error", True), tag("otel.status_code", "OK"))
    assert got == (Status.STATUS_CODE_ERROR, "", {})


def test_description_without_status_code_stays_an_attribute() -> None:
    got = _status(tag("otel.status_description", "x"))
    assert got == (Status.STATUS_CODE_UNSET, "", {"otel.status_description": "x"})


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        (500, "server", Status.STATUS_CODE_ERROR),
        (503, "client", Status.STATUS_CODE_ERROR),
        (404, "client", Status.STATUS_CODE_ERROR),
        (404, "server", Status.STATUS_CODE_UNSET),
        (200, "server", Status.STATUS_CODE_UNSET),
        ("502", "server", Status.STATUS_CODE_ERROR),
    ],
)
def test_http_status_code_fallback(code: Any, kind: str, expected: int) -> None:
    got = _status(tag("http.status_code", code), tag("http.status_message", "Bad"), kind=kind)
    assert got[0] == expected
    assert got[1] == ("Bad" if expected else "")
    assert got[2]["http.status_code"] == code  # the http tags stay attributes


def test_error_with_http_status_takes_its_message() -> None:
    got = _status(tag("error", True), tag("http.status_code", 503), tag("http.status_message", "x"))
    assert got[:2] == (Status.STATUS_CODE_ERROR, "x")


def test_scope_from_otel_scope_tags_and_duplicate_library_tags_dropped() -> None:
    req = translate(
        thrift_span(
            tags=tags(
                otel__scope__name="lib",
                otel__scope__version="1.0",
                otel__library__name="lib",
                otel__library__version="1.0",
                a=1,
            )
        )
    )
    ss = req.resource_spans[0].scope_spans[0]
    assert (ss.scope.name, ss.scope.version) == ("lib", "1.0")
    assert attrs(ss.spans[0].attributes) == {"a": 1}


def test_scope_from_old_otel_library_tags() -> None:
    req = translate(thrift_span(tags=tags(otel__library__name="old", otel__library__version="2")))
    ss = req.resource_spans[0].scope_spans[0]
    assert (ss.scope.name, ss.scope.version) == ("old", "2")
    assert attrs(ss.spans[0].attributes) == {}


def test_spans_are_grouped_by_scope() -> None:
    req = translate(
        thrift_span(spanId=1, tags=tags(otel__scope__name="a")),
        thrift_span(spanId=2, tags=tags(otel__scope__name="b")),
        thrift_span(spanId=3, tags=tags(otel__scope__name="a")),
        thrift_span(spanId=4),
    )
    (rs,) = req.resource_spans
    got = [(ss.scope.name, [s.span_id[-1] for s in ss.spans]) for ss in rs.scope_spans]
    assert got == [("a", [1, 3]), ("b", [2]), ("", [4])]


def test_w3c_tracestate_tag_becomes_trace_state() -> None:
    span = only_span(translate(thrift_span(tags=tags(w3c__tracestate="k=v", a="b"))))
    assert span.trace_state == "k=v"
    assert attrs(span.attributes) == {"a": "b"}


def test_repeated_tag_key_keeps_the_last_value() -> None:
    span = only_span(translate(thrift_span(tags=[tag("k", 1), tag("k", 2)])))
    assert attrs(span.attributes) == {"k": 2}


# ---------------------------------------------------------------------------------------------
# logs → events


def test_log_event_field_is_the_event_name() -> None:
    log = J.Log(timestamp=T0 + 10, fields=tags(event="cache miss", key__count=2))
    span = only_span(translate(thrift_span(logs=[log])))
    (ev,) = span.events
    assert ev.name == "cache miss"
    assert ev.time_unix_nano == (T0 + 10) * 1000
    assert typed(ev.attributes) == {"key.count": ("int_value", 2)}


def test_log_message_field_is_the_name_as_the_python_exporter_sends() -> None:
    log = J.Log(timestamp=T0, fields=tags(message="validated", items=3))
    (ev,) = only_span(translate(thrift_span(logs=[log]))).events
    assert (ev.name, attrs(ev.attributes)) == ("validated", {"items": 3})


def test_event_field_wins_over_message() -> None:
    log = J.Log(timestamp=T0, fields=tags(event="exception", message="boom"))
    (ev,) = only_span(translate(thrift_span(logs=[log]))).events
    assert (ev.name, attrs(ev.attributes)) == ("exception", {"message": "boom"})


def test_log_without_name_gets_a_default() -> None:
    log = J.Log(timestamp=T0, fields=tags(x=1.5))
    (ev,) = only_span(translate(thrift_span(logs=[log]))).events
    assert (ev.name, attrs(ev.attributes)) == ("log", {"x": 1.5})


# ---------------------------------------------------------------------------------------------
# references → parent / links


def ref(ref_type: int, span_id: int, low: int = 2, high: int = 1) -> Any:
    return J.SpanRef(refType=ref_type, traceIdLow=low, traceIdHigh=high, spanId=span_id)


def test_child_of_same_trace_is_the_parent() -> None:
    span = only_span(translate(thrift_span(references=[ref(0, 9)])))
    assert span.parent_span_id == struct.pack(">q", 9)
    assert list(span.links) == []


def test_parent_span_id_wins_and_a_duplicate_child_of_is_dropped() -> None:
    span = only_span(translate(thrift_span(parentSpanId=9, references=[ref(0, 9)])))
    assert span.parent_span_id == struct.pack(">q", 9)
    assert list(span.links) == []


def test_other_references_become_links() -> None:
    span = only_span(
        translate(
            thrift_span(
                parentSpanId=9,
                references=[ref(0, 9), ref(1, 10), ref(0, 11, low=77, high=0), ref(0, 12)],
            )
        )
    )
    assert span.parent_span_id == struct.pack(">q", 9)
    got = [(ln.trace_id, ln.span_id, attrs(ln.attributes)) for ln in span.links]
    same = struct.pack(">qq", 1, 2)
    assert got == [
        (same, struct.pack(">q", 10), {"opentracing.ref_type": "follows_from"}),
        (struct.pack(">qq", 0, 77), struct.pack(">q", 11), {"opentracing.ref_type": "child_of"}),
        (same, struct.pack(">q", 12), {"opentracing.ref_type": "child_of"}),
    ]


def test_child_of_another_trace_is_a_link_not_the_parent() -> None:
    span = only_span(translate(thrift_span(references=[ref(0, 5, low=99)])))
    assert span.parent_span_id == b""
    assert len(span.links) == 1


def test_follows_from_alone_is_a_link() -> None:
    span = only_span(translate(thrift_span(references=[ref(1, 5)])))
    assert span.parent_span_id == b""
    assert attrs(span.links[0].attributes) == {"opentracing.ref_type": "follows_from"}


# ---------------------------------------------------------------------------------------------
# the output is what the distributor accepts


def test_output_decodes_with_the_ingest_decoder() -> None:
    data, _ = tj.thrift_batch_to_otlp(
        encode_batch(thrift_batch([thrift_span(spanId=i + 1) for i in range(50)]))
    )
    decoded = decode_export_request(data)
    assert decoded.batch.num_rows == 50
    assert decoded.rejected == {}


def test_zero_ids_and_negative_duration_are_left_to_the_distributor() -> None:
    data, count = tj.thrift_batch_to_otlp(
        encode_batch(
            thrift_batch(
                [
                    thrift_span(traceIdHigh=0, traceIdLow=0),
                    thrift_span(spanId=0),
                    thrift_span(duration=-5),
                    thrift_span(spanId=8),
                ]
            )
        )
    )
    assert count == 4
    decoded = decode_export_request(data)
    assert decoded.batch.num_rows == 1
    assert decoded.rejected == {"invalid_trace_id": 1, "invalid_span_id": 1, "end_before_start": 1}


def test_negative_start_time_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"startTime .* out of range"):
        translate(thrift_span(startTime=-1))


# ---------------------------------------------------------------------------------------------
# thrift decoding: both protocols, agent messages, strictness


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_both_protocols_decode_the_same(protocol: str) -> None:
    batch = thrift_batch(
        [
            thrift_span(
                spanId=-5,
                tags=tags(a="x", b=2, c=0.5, d=True, e=b"\x01"),
                logs=[J.Log(timestamp=T0, fields=tags(event="e"))],
                references=[ref(1, 4)],
            )
        ],
        ptags=tags(hostname="h"),
    )
    binary = tj.thrift_batch_to_otlp(encode_batch(batch, "binary"), "binary")
    assert tj.thrift_batch_to_otlp(encode_batch(batch, protocol), protocol) == binary
    via_agent = tj.agent_message_to_otlp(encode_emit_batch(batch, protocol), protocol)  # type: ignore[arg-type]
    assert via_agent == binary


def test_unknown_fields_are_skipped() -> None:
    # a newer sender's extra fields (Batch.stats is field 4; here also a map and a set)
    buf = TMemoryBuffer()
    proto = TBinaryProtocolFactory().get_protocol(buf)
    proto.write_struct(thrift_batch([thrift_span()]))
    plain = buf.getvalue()
    extra = (
        b"\x0c\x00\x04" + b"\x0a\x00\x01" + struct.pack(">q", 5) + b"\x00"  # struct stats
        + b"\x0d\x00\x05\x0b\x08" + struct.pack(">i", 1) + struct.pack(">i", 1) + b"k"
        + struct.pack(">i", 3)  # map<string, i32>
        + b"\x0e\x00\x06\x06" + struct.pack(">i", 2) + b"\x00\x01\x00\x02"  # set<i16>
    )  # fmt: skip
    data = plain[:-1] + extra + b"\x00"
    assert tj.thrift_batch_to_otlp(data) == tj.thrift_batch_to_otlp(plain)


def test_non_strict_binary_message_header() -> None:
    strict = encode_emit_batch(thrift_batch([thrift_span()]), "binary")
    # old style: name length, name, type byte, seqid
    body = strict[4 + 4 + len("emitBatch") + 4 :]
    old = struct.pack(">i", 9) + b"emitBatch" + b"\x04" + struct.pack(">i", 7) + body
    assert tj.agent_message_to_otlp(old, "binary") == tj.agent_message_to_otlp(strict, "binary")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"garbage that is not thrift", "unknown thrift type"),
        (b"\x00", "required field process"),
        (b"\x0f\x00\x02\x0c\x7f\xff\xff\xff", "longer than the remaining data"),
        (b"\x0f\x00\x02\x0b\x00\x00\x00\x01" + bytes(9), "list of string where struct was"),
    ],
)
def test_bad_thrift_batches_are_value_errors(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        tj.thrift_batch_to_otlp(data)
    assert str(err.value).startswith("invalid Jaeger thrift (binary) Batch:")


def test_truncated_and_trailing_bytes_are_errors() -> None:
    good = encode_batch(thrift_batch([thrift_span(tags=tags(a="x"))]))
    for cut in (1, 5, len(good) // 2, len(good) - 1):
        with pytest.raises(ValueError):
            tj.thrift_batch_to_otlp(good[:cut])
    with pytest.raises(ValueError, match="bytes left after the Batch"):
        tj.thrift_batch_to_otlp(good + b"\x00")


def test_missing_required_span_field() -> None:
    with pytest.raises(ValueError, match="required field startTime"):
        tj.thrift_batch_to_otlp(encode_batch(thrift_batch([thrift_span(startTime=None)])))


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    data = encode_batch(thrift_batch([thrift_span(operationName="op\u00e9")]))
    bad = data.replace("op\u00e9".encode(), b"op\xff\xfe")
    span = only_span(otlp(tj.thrift_batch_to_otlp(bad)))
    assert span.name == "op\ufffd\ufffd"


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_bad_agent_messages(protocol: str) -> None:
    good = encode_emit_batch(thrift_batch([thrift_span()]), protocol)
    cases = [
        (b"", "truncated"),
        (b"\x00\x01\x02garbage", None),
        (encode_emit_batch(thrift_batch([]), protocol, "emitZipkinBatch"), "emitZipkinBatch"),
        (good[:-3], None),
        (good + b"\x00\x00", "bytes left"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            tj.agent_message_to_otlp(data, protocol)  # type: ignore[arg-type]
        assert str(err.value).startswith(f"invalid Jaeger agent message ({protocol} thrift):")


def test_deep_nesting_is_refused() -> None:
    # an unknown field of nested structs, 100 deep
    data = (b"\x0c\x00\x09" * 100) + b"\x00" * 101
    with pytest.raises(ValueError, match="nested too deeply"):
        tj.thrift_batch_to_otlp(data)


def test_random_bytes_never_crash() -> None:
    rng = random.Random(5)
    good = encode_batch(thrift_batch([thrift_span(tags=tags(a="x", b=1), logs=[])]))
    for _ in range(2000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        for protocol in ("binary", "compact"):
            with contextlib.suppress(ValueError):
                tj.thrift_batch_to_otlp(bytes(data), protocol)


# ---------------------------------------------------------------------------------------------
# api_v2 protobuf (gRPC)


def kv(key: str, value: Any) -> Any:
    m = tj.API_V2["KeyValue"](key=key)
    if isinstance(value, bool):
        m.v_type, m.v_bool = 1, value
    elif isinstance(value, int):
        m.v_type, m.v_int64 = 2, value
    elif isinstance(value, float):
        m.v_type, m.v_float64 = 3, value
    elif isinstance(value, bytes):
        m.v_type, m.v_binary = 4, value
    else:
        m.v_type, m.v_str = 0, value
    return m


TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def proto_span(sid: int = 1, **fields: Any) -> Any:
    base: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": sid.to_bytes(8, "big"),
        "operation_name": "rpc",
        "flags": 1,
        "start_time": {"seconds": 1_700_000_000, "nanos": 123_456_000},
        "duration": {"seconds": 1, "nanos": 500_000},
    }
    base.update(fields)
    return tj.API_V2["Span"](**base)


def post_spans(spans: list[Any], process: Any = None) -> bytes:
    batch = tj.API_V2["Batch"](spans=spans)
    if process is not None:
        batch.process.CopyFrom(process)
    return tj.PostSpansRequest(batch=batch).SerializeToString()


def process(name: str, *kvs: Any) -> Any:
    return tj.API_V2["Process"](service_name=name, tags=list(kvs))


def test_api_v2_span_translation() -> None:
    data = post_spans(
        [
            proto_span(
                2,
                references=[
                    tj.API_V2["SpanRef"](trace_id=TRACE, span_id=(1).to_bytes(8, "big")),
                    tj.API_V2["SpanRef"](
                        trace_id=bytes(16 - 1) + b"\x07", span_id=b"\x00" * 7 + b"\x09", ref_type=1
                    ),
                ],
                tags=[
                    kv("span.kind", "client"),
                    kv("s", "v"),
                    kv("i", 7),
                    kv("d", 1.5),
                    kv("b", True),
                    kv("raw", b"\x01\x02"),
                    kv("otel.status_code", "OK"),
                ],
                logs=[
                    tj.API_V2["Log"](
                        timestamp={"seconds": 1_700_000_000, "nanos": 200_000_000},
                        fields=[kv("event", "retry"), kv("attempt", 2)],
                    )
                ],
            )
        ],
        process("frontend", kv("hostname", "h1")),
    )
    req = otlp(tj.post_spans_to_otlp(data))
    span = only_span(req)
    assert attrs(req.resource_spans[0].resource.attributes) == {
        "service.name": "frontend",
        "host.name": "h1",
    }
    assert span.trace_id == TRACE
    assert span.span_id == (2).to_bytes(8, "big")
    assert span.parent_span_id == (1).to_bytes(8, "big")
    assert span.name == "rpc"
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.start_time_unix_nano == 1_700_000_000_123_456_000
    assert span.end_time_unix_nano == 1_700_000_001_123_956_000
    assert span.status.code == Status.STATUS_CODE_OK
    assert typed(span.attributes) == {
        "s": ("string_value", "v"),
        "i": ("int_value", 7),
        "d": ("double_value", 1.5),
        "b": ("bool_value", True),
        "raw": ("bytes_value", b"\x01\x02"),
    }
    (ev,) = span.events
    assert (ev.name, ev.time_unix_nano, attrs(ev.attributes)) == (
        "retry",
        1_700_000_000_200_000_000,
        {"attempt": 2},
    )
    (link,) = span.links
    assert link.trace_id == bytes(15) + b"\x07"
    assert link.span_id == b"\x00" * 7 + b"\x09"
    assert attrs(link.attributes) == {"opentracing.ref_type": "follows_from"}


def test_api_v2_span_process_wins_over_the_batch_process() -> None:
    data = post_spans(
        [proto_span(1), proto_span(2, process=process("own", kv("k", 1))), proto_span(3)],
        process("batch"),
    )
    req = otlp(tj.post_spans_to_otlp(data))
    got = [
        (attrs(rs.resource.attributes), [s.span_id[-1] for s in rs.scope_spans[0].spans])
        for rs in req.resource_spans
    ]
    assert got == [({"service.name": "batch"}, [1, 3]), ({"service.name": "own", "k": 1}, [2])]


def test_api_v2_64_bit_trace_id_is_padded() -> None:
    data = post_spans([proto_span(trace_id=b"\x00" * 7 + b"\x05")], process("p"))
    assert only_span(otlp(tj.post_spans_to_otlp(data))).trace_id == bytes(15) + b"\x05"


def test_api_v2_bad_input() -> None:
    with pytest.raises(ValueError, match=r"invalid jaeger\.api_v2\.PostSpansRequest protobuf"):
        tj.post_spans_to_otlp(b"\x0a\xff\xff\xff\x0f")
    with pytest.raises(ValueError, match="span 0: trace_id must be 16 bytes, got 3"):
        tj.post_spans_to_otlp(post_spans([proto_span(trace_id=b"abc")]))
    with pytest.raises(ValueError, match="span_id must be 8 bytes"):
        tj.post_spans_to_otlp(post_spans([proto_span(span_id=b"\x01" * 9)]))


def test_api_v2_empty_request_has_no_spans() -> None:
    assert tj.post_spans_to_otlp(b"") == (b"", 0)
    assert decode_export_request(b"").batch.num_rows == 0


# ---------------------------------------------------------------------------------------------
# the three readers agree: one batch in every encoding gives the same OTLP bytes

_KEYS = (
    "a", "b", "span.kind", "error", "otel.status_code", "otel.status_description",
    "http.status_code", "http.status_message", "w3c.tracestate", "otel.scope.name",
    "otel.scope.version", "otel.library.name", "otel.library.version", "service.name",
    "service.version", "host.name", "k8s.pod.name", "hostname", "jaeger.version", "event",
    "message", "ünï",
)  # fmt: skip
_VALUES = (
    "", "x", "client", "SERVER", "ok", "ERROR", "500", " 404 ", "é", True, False, 200, 404, 503,
    -3, 2**62, 1.5, float("inf"), b"", b"\x00\xff",
)  # fmt: skip


def _random_batch(rng: random.Random) -> tuple[Any, bytes]:
    """A random batch as thriftpy2 objects and as the equivalent api_v2 ``PostSpansRequest``."""

    def pairs(n: int) -> list[tuple[str, Any]]:
        return [(rng.choice(_KEYS), rng.choice(_VALUES)) for _ in range(n)]

    ptags = pairs(rng.randint(0, 4))
    spans, protos = [], []
    for _ in range(rng.randint(0, 6)):
        high, low, sid = rng.choice([0, 1, -2]), rng.choice([2, -1]), rng.randint(-3, 3)
        refs = [
            (rng.choice([0, 1]), rng.choice([low, 9]), high, rng.choice([4, 5]))
            for _ in range(rng.randint(0, 3))
        ]
        logs = [
            (T0 + rng.randint(0, 9), pairs(rng.randint(0, 3))) for _ in range(rng.randint(0, 2))
        ]
        span_tags = pairs(rng.randint(0, 12))
        start, duration = T0 + rng.randint(0, 9), rng.choice([0, 7, -5])
        spans.append(
            thrift_span(
                traceIdHigh=high,
                traceIdLow=low,
                spanId=sid,
                operationName=rng.choice(["op", "", "é"]),
                startTime=start,
                duration=duration,
                tags=[tag(k, v) for k, v in span_tags],
                references=[ref(t, s, lo, hi) for t, lo, hi, s in refs],
                logs=[J.Log(timestamp=ts, fields=[tag(k, v) for k, v in f]) for ts, f in logs],
            )
        )
        protos.append(
            tj.API_V2["Span"](
                trace_id=id128(high, low),
                span_id=id64(sid),
                operation_name=spans[-1].operationName,
                flags=1,
                start_time={"seconds": start // 10**6, "nanos": start % 10**6 * 1000},
                duration={"seconds": duration // 10**6, "nanos": duration % 10**6 * 1000},
                tags=[kv(k, v) for k, v in span_tags],
                references=[
                    tj.API_V2["SpanRef"](trace_id=id128(hi, lo), span_id=id64(s), ref_type=t)
                    for t, lo, hi, s in refs
                ],
                logs=[
                    tj.API_V2["Log"](
                        timestamp={"seconds": ts // 10**6, "nanos": ts % 10**6 * 1000},
                        fields=[kv(k, v) for k, v in f],
                    )
                    for ts, f in logs
                ],
            )
        )
    service = rng.choice(["svc", "other"])
    batch = thrift_batch(spans, service=service, ptags=[tag(k, v) for k, v in ptags])
    return batch, post_spans(protos, process(service, *(kv(k, v) for k, v in ptags)))


def test_every_encoding_of_a_batch_translates_the_same() -> None:
    rng = random.Random(11)
    for _ in range(300):
        batch, api_v2 = _random_batch(rng)
        want = tj.thrift_batch_to_otlp(encode_batch(batch, "binary"))
        req = otlp(want)  # parses, and the count is right
        assert want[1] == len(batch.spans)
        decoded = decode_export_request(want[0])
        assert decoded.batch.num_rows + sum(decoded.rejected.values()) == len(batch.spans)
        assert tj.thrift_batch_to_otlp(encode_batch(batch, "compact"), "compact") == want
        for protocol in ("binary", "compact"):
            message = encode_emit_batch(batch, protocol)
            assert tj.agent_message_to_otlp(message, protocol) == want  # type: ignore[arg-type]
        assert tj.post_spans_to_otlp(api_v2) == want
        for span in (s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans):
            keys = [kv.key for kv in span.attributes]
            assert len(keys) == len(set(keys))  # a repeated tag key keeps one (the last) value
