"""Jaeger spans → the OTLP model: thrift (binary and compact) and ``jaeger.api_v2`` protobuf.

Receivers hand the bytes they got to one of the decoders here and push the serialized OTLP
``ExportTraceServiceRequest`` that ``to_otlp`` returns; nothing after the receivers sees Jaeger.

Decoding
    ``decode_thrift_batch`` reads a TBinaryProtocol ``jaeger.Batch`` struct (thrift over HTTP);
    ``decode_agent_message`` reads a oneway ``Agent.emitBatch`` call message in the compact or
    binary protocol (agent UDP); ``decode_post_spans_request`` reads an api_v2
    ``PostSpansRequest`` (gRPC). The thrift reader is our own, written from the documented field
    ids and types (see ``idl/jaeger.thrift``): it is strict (truncation, wrong types, missing
    required fields, absurd list sizes and trailing bytes are errors) and skips unknown fields.
    The api_v2 protobuf classes are built at import from descriptors declared below from the
    documented field numbers of ``model.proto``/``collector.proto``. Bad input raises
    ``ValueError`` naming the problem.

Translation (``to_otlp``), following the OpenTelemetry Collector's Jaeger translator:

* Process ``serviceName`` → resource ``service.name``; process tags → resource attributes, with
  ``hostname`` → ``host.name`` and ``jaeger.version`` → ``opencensus.exporterversion`` =
  ``Jaeger-<version>`` (when the target key is absent). A span's own api_v2 ``process`` wins over
  the batch's. The OpenTelemetry Python exporter sends empty process tags and copies the
  resource onto every span's tags instead; span tags that the semantic conventions define as
  resource attributes (``service.name``/``.version``/``.namespace``/``.instance.id``, and
  ``host.*``, ``os.*``, ``telemetry.sdk.*``/``.distro.*``/``.auto.*``, ``process.runtime.*``,
  ``deployment.*``, ``k8s.*``, ``container.*``, ``cloud.*``) move back to the resource when
  the resource lacks that key or has the same value (else they stay span attributes); spans of
  one batch whose moved tags differ get different resources.
* Tags → attributes, types kept: STRING→string, LONG/INT64→int, DOUBLE/FLOAT64→double,
  BOOL→bool, BINARY→bytes; an unknown type gives the string ``<Unknown Jaeger TagType N>``.
  A repeated key keeps its last value.
* ``span.kind`` (``client``/``server``/``producer``/``consumer``/``internal``) → span kind, and
  is removed. ``w3c.tracestate`` → trace state, removed.
* Status: ``error=true`` (bool) → ERROR with message ``otel.status_description``; else
  ``otel.status_code`` ``OK``/``ERROR`` (+ description); else an ``http.status_code`` of 5xx
  (4xx too on non-server spans) → ERROR with message ``http.status_message``. ``error``,
  ``otel.status_code`` and a used ``otel.status_description`` are removed.
* ``otel.scope.name``/``otel.scope.version`` (else ``otel.library.name``/``.version``) →
  instrumentation scope, removed; ``otel.library.*`` equal to the scope are removed too.
* Logs → events: time µs → ns; the name is the string field ``event``, else ``message`` (what the
  Python exporter sends), else ``log``; the field used as name is removed, the others become the
  event's attributes.
* References: thrift ``parentSpanId != 0`` is the parent even without references; otherwise the
  first CHILD_OF reference to the same trace is. Every other reference becomes a link with the
  attribute ``opentracing.ref_type`` = ``child_of``/``follows_from``.
* Ids: thrift ``traceIdHigh``/``traceIdLow`` (signed i64) → 16 bytes big-endian (a 64-bit id
  has a zero high half), span ids (signed i64) → 8 bytes; api_v2 ids are 16/8 bytes (an 8-byte
  trace id is left-padded). ``startTime``/``duration`` µs → ns (``end = start + duration``).

Zero or otherwise invalid ids and negative durations are left to the distributor, which
rejects those spans one by one as for OTLP.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from google.protobuf import (
    descriptor_pb2,
    duration_pb2,
    timestamp_pb2,
)
from google.protobuf.message import DecodeError

from threadline.model.protodesc import OPTIONAL, REPEATED, F, add_enum, add_message, build

IDL_DIR = Path(__file__).parent / "idl"
"""Our thrift IDL (documentation of what the decoder reads; tests encode with it)."""

TagValue = str | bool | int | float | bytes
ThriftProtocol = Literal["binary", "compact"]

# ----------------------------------------------------------------------------------------------
# the neutral Jaeger model both wire formats decode into

CHILD_OF, FOLLOWS_FROM = 0, 1


@dataclass(slots=True)
class JaegerProcess:
    service_name: str = ""
    tags: dict[str, TagValue] = field(default_factory=dict)


@dataclass(slots=True)
class JaegerRef:
    ref_type: int  # CHILD_OF / FOLLOWS_FROM
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes


@dataclass(slots=True)
class JaegerLog:
    timestamp_ns: int
    fields: dict[str, TagValue]


@dataclass(slots=True)
class JaegerSpan:
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    operation_name: str
    start_ns: int
    duration_ns: int
    process: JaegerProcess
    parent_span_id: bytes = b""  # thrift ``parentSpanId`` (empty when 0 / api_v2)
    references: list[JaegerRef] = field(default_factory=list)
    flags: int = 0
    tags: dict[str, TagValue] = field(default_factory=dict)
    logs: list[JaegerLog] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# thrift wire reader (binary + compact protocols), schema-driven

T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64 = 0, 2, 3, 4, 6, 8, 10
T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST = 11, 12, 13, 14, 15
_TYPE_NAMES = {
    T_BOOL: "bool",
    T_BYTE: "byte",
    T_DOUBLE: "double",
    T_I16: "i16",
    T_I32: "i32",
    T_I64: "i64",
    T_STRING: "string",
    T_STRUCT: "struct",
    T_MAP: "map",
    T_SET: "set",
    T_LIST: "list",
}
# compact type id -> binary type id (1/2 are bool true/false in field headers)
_COMPACT_TYPES = {1: T_BOOL, 2: T_BOOL, 3: T_BYTE, 4: T_I16, 5: T_I32, 6: T_I64, 7: T_DOUBLE}
_COMPACT_TYPES.update({8: T_STRING, 9: T_LIST, 10: T_SET, 11: T_MAP, 12: T_STRUCT})
_MAX_DEPTH = 32
MSG_CALL, MSG_ONEWAY = 1, 4

_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
_I64 = struct.Struct(">q").unpack_from
_DOUBLE_BE = struct.Struct(">d").unpack_from
_DOUBLE_LE = struct.Struct("<d").unpack_from
_ID128 = struct.Struct(">qq").pack
_ID64 = struct.Struct(">q").pack


class _Struct:
    """A struct as the decoder reads it: field id -> (name, type, sub-spec)."""

    __slots__ = ("fields", "name", "required", "size")

    def __init__(
        self, name: str, fields: dict[int, tuple[str, int, Any]], required: tuple[int, ...]
    ) -> None:
        self.name = name
        self.fields = fields
        self.required = required
        self.size = max(fields) + 1


# Declared from the documented Jaeger thrift model (field id, name, type); see idl/jaeger.thrift.
# A string's sub-spec says whether it is text (UTF-8) or binary; a list's is (element type, spec).
_TAG = _Struct(
    "Tag",
    {
        1: ("key", T_STRING, "text"),
        2: ("vType", T_I32, None),
        3: ("vStr", T_STRING, "text"),
        4: ("vDouble", T_DOUBLE, None),
        5: ("vBool", T_BOOL, None),
        6: ("vLong", T_I64, None),
        7: ("vBinary", T_STRING, "binary"),
    },
    (1, 2),
)
_LOG = _Struct(
    "Log",
    {1: ("timestamp", T_I64, None), 2: ("fields", T_LIST, (T_STRUCT, _TAG))},
    (1, 2),
)
_SPAN_REF = _Struct(
    "SpanRef",
    {
        1: ("refType", T_I32, None),
        2: ("traceIdLow", T_I64, None),
        3: ("traceIdHigh", T_I64, None),
        4: ("spanId", T_I64, None),
    },
    (1, 2, 3, 4),
)
_SPAN = _Struct(
    "Span",
    {
        1: ("traceIdLow", T_I64, None),
        2: ("traceIdHigh", T_I64, None),
        3: ("spanId", T_I64, None),
        4: ("parentSpanId", T_I64, None),
        5: ("operationName", T_STRING, "text"),
        6: ("references", T_LIST, (T_STRUCT, _SPAN_REF)),
        7: ("flags", T_I32, None),
        8: ("startTime", T_I64, None),
        9: ("duration", T_I64, None),
        10: ("tags", T_LIST, (T_STRUCT, _TAG)),
        11: ("logs", T_LIST, (T_STRUCT, _LOG)),
    },
    # traceIdHigh, parentSpanId, operationName, flags and duration are required in the IDL too,
    # but a missing one has an obvious default (0 / "")
    (1, 3, 8),
)
_PROCESS = _Struct(
    "Process",
    {1: ("serviceName", T_STRING, "text"), 2: ("tags", T_LIST, (T_STRUCT, _TAG))},
    (1,),
)
_BATCH = _Struct(
    "Batch",
    {
        1: ("process", T_STRUCT, _PROCESS),
        2: ("spans", T_LIST, (T_STRUCT, _SPAN)),
        3: ("seqNo", T_I64, None),
    },
    (1, 2),
)
_EMIT_BATCH_ARGS = _Struct("emitBatch_args", {1: ("batch", T_STRUCT, _BATCH)}, (1,))


class _ThriftError(Exception):
    pass


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode(errors="replace")


class _BinaryReader:
    """TBinaryProtocol."""

    protocol = "binary"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def fail(self, message: str) -> _ThriftError:
        return _ThriftError(f"{message} at byte {self.pos}")

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            raise self.fail(f"truncated: {n} more bytes expected")

    def size(self, what: str, min_item: int) -> int:
        self.need(4)
        n = _I32(self.data, self.pos)[0]
        if n < 0:
            raise self.fail(f"negative {what} size {n}")
        self.pos += 4
        if n * min_item > self.end - self.pos:
            raise self.fail(f"{what} of {n} items is longer than the remaining data")
        return n

    def value(self, ttype: int, sub: Any, depth: int) -> Any:
        data = self.data
        pos = self.pos
        if ttype == T_I64:
            self.need(8)
            self.pos = pos + 8
            return _I64(data, pos)[0]
        if ttype == T_STRING:
            n = self.size("string", 1)
            pos = self.pos
            self.pos = pos + n
            raw = data[pos : pos + n]
            return _text(raw) if sub == "text" else raw
        if ttype == T_STRUCT:
            return self.struct(sub, depth + 1)
        if ttype == T_I32:
            self.need(4)
            self.pos = pos + 4
            return _I32(data, pos)[0]
        if ttype in (T_LIST, T_SET):
            self.need(1)
            etype = data[pos]
            self.pos = pos + 1
            n = self.size("list", 1 if etype in (T_BOOL, T_BYTE, T_STRUCT) else 2)
            espec = sub[1] if sub is not None and etype == sub[0] else None
            if sub is not None and etype != sub[0] and n:
                raise self.fail(
                    f"list of {_TYPE_NAMES.get(etype, etype)} where "
                    f"{_TYPE_NAMES[sub[0]]} was expected"
                )
            if espec is _TAG:
                return self.tags(n, depth + 1)
            if etype == T_STRUCT:
                return [self.struct(espec, depth + 1) for _ in range(n)]
            return [self.value(etype, espec, depth) for _ in range(n)]
        if ttype == T_DOUBLE:
            self.need(8)
            self.pos = pos + 8
            return _DOUBLE_BE(data, pos)[0]
        if ttype in (T_BOOL, T_BYTE):
            self.need(1)
            self.pos = pos + 1
            return data[pos] != 0 if ttype == T_BOOL else data[pos]
        if ttype == T_I16:
            self.need(2)
            self.pos = pos + 2
            return _I16(data, pos)[0]
        if ttype == T_MAP:
            self.need(2)
            ktype, vtype = data[pos], data[pos + 1]
            self.pos = pos + 2
            n = self.size("map", 2)
            return {
                self.value(ktype, None, depth): self.value(vtype, None, depth) for _ in range(n)
            }
        raise self.fail(f"unknown thrift type {ttype}")

    def struct(self, spec: _Struct | None, depth: int) -> list[Any] | None:
        # the hot loop: scalar fields are read inline (a truncated read raises struct.error or
        # IndexError, which the callers turn into "truncated")
        if depth > _MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        data = self.data
        end = self.end
        vals: list[Any] | None = [None] * spec.size if spec is not None else None
        fields = spec.fields if spec is not None else {}
        pos = self.pos
        while True:
            ftype = data[pos]
            if ftype == T_STOP:
                pos += 1
                break
            fid = data[pos + 2] if data[pos + 1] == 0 else _I16(data, pos + 1)[0]
            pos += 3
            f = fields.get(fid)
            if f is None or f[1] != ftype:
                self.pos = pos
                self.value(ftype, None, depth)  # unknown field (or another type): skip it
                pos = self.pos
                continue
            assert vals is not None
            if ftype == T_STRING:
                n = _I32(data, pos)[0]
                pos += 4
                if n < 0 or pos + n > end:
                    self.pos = pos
                    raise self.fail(f"string of {n} bytes does not fit the data")
                raw = data[pos : pos + n]
                pos += n
                if f[2] == "text":
                    try:
                        vals[fid] = raw.decode()
                    except UnicodeDecodeError:
                        vals[fid] = raw.decode(errors="replace")
                else:
                    vals[fid] = raw
            elif ftype == T_I64:
                vals[fid] = _I64(data, pos)[0]
                pos += 8
            elif ftype == T_I32:
                vals[fid] = _I32(data, pos)[0]
                pos += 4
            elif ftype == T_DOUBLE:
                vals[fid] = _DOUBLE_BE(data, pos)[0]
                pos += 8
            elif ftype == T_BOOL:
                vals[fid] = data[pos] != 0
                pos += 1
            else:
                self.pos = pos
                vals[fid] = self.value(ftype, f[2], depth)
                pos = self.pos
        self.pos = pos
        if spec is not None:
            _check_required(spec, vals)
        return vals

    def tags(self, count: int, depth: int) -> dict[str, TagValue]:
        """A list of ``Tag`` straight into a dict (the hottest struct by far: written for speed,
        one local per field; field ids above 255 are not Tag fields, so they are skipped)."""
        data = self.data
        end = self.end
        pos = self.pos
        out: dict[str, TagValue] = {}
        for _ in range(count):
            key = vtype = vstr = vlong = vdouble = vbool = vbin = None
            while True:
                ftype = data[pos]
                if ftype == T_STOP:
                    pos += 1
                    break
                fid = data[pos + 2] if data[pos + 1] == 0 else 0
                pos += 3
                if ftype == T_STRING:
                    n = _I32(data, pos)[0]
                    pos += 4
                    if n < 0 or pos + n > end:
                        self.pos = pos
                        raise self.fail(f"string of {n} bytes does not fit the data")
                    if fid == 1 or fid == 3:
                        raw = data[pos : pos + n]
                        try:
                            text = raw.decode()
                        except UnicodeDecodeError:
                            text = raw.decode(errors="replace")
                        if fid == 1:
                            key = text
                        else:
                            vstr = text
                    elif fid == 7:
                        vbin = data[pos : pos + n]
                    pos += n
                elif ftype == T_I32 and fid == 2:
                    vtype = _I32(data, pos)[0]
                    pos += 4
                elif ftype == T_I64 and fid == 6:
                    vlong = _I64(data, pos)[0]
                    pos += 8
                elif ftype == T_DOUBLE and fid == 4:
                    vdouble = _DOUBLE_BE(data, pos)[0]
                    pos += 8
                elif ftype == T_BOOL and fid == 5:
                    vbool = data[pos] != 0
                    pos += 1
                else:
                    self.pos = pos
                    self.value(ftype, None, depth)
                    pos = self.pos
            if key is None or vtype is None:
                self.pos = pos
                missing = "key (1)" if key is None else "vType (2)"
                raise self.fail(f"required field {missing} of Tag is missing")
            if vtype == 0:
                out[key] = vstr if vstr is not None else ""
            elif vtype == 3:
                out[key] = vlong if vlong is not None else 0
            elif vtype == 1:
                out[key] = vdouble if vdouble is not None else 0.0
            elif vtype == 2:
                out[key] = bool(vbool)
            elif vtype == 4:
                out[key] = vbin if vbin is not None else b""
            else:
                out[key] = f"<Unknown Jaeger TagType {vtype}>"
        self.pos = pos
        return out

    def message_begin(self) -> tuple[str, int]:
        data = self.data
        self.need(4)
        first = _I32(data, 0)[0]
        if first < 0:  # strict: version word, name, seqid
            if first & 0xFFFF0000 != 0x80010000:
                raise self.fail(f"bad binary protocol version {first & 0xFFFFFFFF:#x}")
            mtype = first & 0xFF
            self.pos = 4
            name = self.value(T_STRING, "text", 0)
        else:  # old non-strict: name, type byte, seqid
            name = self.value(T_STRING, "text", 0)
            self.need(1)
            mtype = data[self.pos]
            self.pos += 1
        self.need(4)
        self.pos += 4  # seqid
        return name, mtype


class _CompactReader:
    """TCompactProtocol."""

    protocol = "compact"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def fail(self, message: str) -> _ThriftError:
        return _ThriftError(f"{message} at byte {self.pos}")

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            raise self.fail(f"truncated: {n} more bytes expected")

    def varint(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        result = shift = 0
        while True:
            if pos >= end:
                self.pos = pos
                raise self.fail("truncated varint")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift >= 70:
                self.pos = pos
                raise self.fail("varint longer than 10 bytes")
        self.pos = pos
        return result

    def zigzag(self, bits: int) -> int:
        n = self.varint() & ((1 << bits) - 1)
        return (n >> 1) ^ -(n & 1)

    def size(self, n: int, what: str) -> int:
        if n > self.end - self.pos:
            raise self.fail(f"{what} of {n} items is longer than the remaining data")
        return n

    def value(self, ttype: int, sub: Any, depth: int) -> Any:
        if ttype == T_I64:
            return self.zigzag(64)
        if ttype == T_STRING:
            n = self.size(self.varint(), "string")
            pos = self.pos
            self.pos = pos + n
            raw = self.data[pos : pos + n]
            return _text(raw) if sub == "text" else raw
        if ttype == T_STRUCT:
            return self.struct(sub, depth + 1)
        if ttype in (T_I32, T_I16):
            return self.zigzag(32)
        if ttype in (T_LIST, T_SET):
            self.need(1)
            head = self.data[self.pos]
            self.pos += 1
            n = head >> 4
            if n == 15:
                n = self.varint()
            n = self.size(n, "list")
            ctype = head & 0x0F
            etype = _COMPACT_TYPES.get(ctype)
            if etype is None:
                raise self.fail(f"unknown compact element type {ctype}")
            if sub is not None and etype != sub[0] and n:
                raise self.fail(
                    f"list of {_TYPE_NAMES[etype]} where {_TYPE_NAMES[sub[0]]} was expected"
                )
            espec = sub[1] if sub is not None else None
            if etype == T_BOOL:  # one byte per element in collections
                return [self.value(T_BYTE, None, depth) == 1 for _ in range(n)]
            items = [self.value(etype, espec, depth) for _ in range(n)]
            if espec is _TAG:
                return {t[1]: _tag_value(t[2], t) for t in items}
            return items
        if ttype == T_DOUBLE:
            self.need(8)
            pos = self.pos
            self.pos = pos + 8
            return _DOUBLE_LE(self.data, pos)[0]
        if ttype == T_BYTE:
            self.need(1)
            self.pos += 1
            return self.data[self.pos - 1]
        if ttype == T_MAP:
            n = self.size(self.varint(), "map")
            if not n:
                return {}
            self.need(1)
            kv = self.data[self.pos]
            self.pos += 1
            ktype, vtype = _COMPACT_TYPES.get(kv >> 4), _COMPACT_TYPES.get(kv & 0x0F)
            if ktype is None or vtype is None:
                raise self.fail(f"unknown compact map types {kv:#x}")
            return {
                self.value(ktype, None, depth): self.value(vtype, None, depth) for _ in range(n)
            }
        raise self.fail(f"unknown thrift type {ttype}")

    def struct(self, spec: _Struct | None, depth: int) -> list[Any] | None:
        if depth > _MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        data = self.data
        vals: list[Any] | None = [None] * spec.size if spec is not None else None
        fields = spec.fields if spec is not None else {}
        last = 0
        while True:
            self.need(1)
            head = data[self.pos]
            self.pos += 1
            if head == 0:
                break
            ctype = head & 0x0F
            delta = head >> 4
            fid = last + delta if delta else self.zigzag(16)
            last = fid
            ftype = _COMPACT_TYPES.get(ctype)
            if ftype is None:
                raise self.fail(f"unknown compact field type {ctype}")
            f = fields.get(fid)
            if ftype == T_BOOL:
                value: Any = ctype == 1
            elif f is None or f[1] != ftype:
                self.value(ftype, None, depth)  # unknown field (or another type): skip it
                continue
            else:
                value = self.value(ftype, f[2], depth)
            if f is not None and f[1] == ftype:
                assert vals is not None
                vals[fid] = value
        if spec is not None:
            _check_required(spec, vals)
        return vals

    def message_begin(self) -> tuple[str, int]:
        self.need(2)
        if self.data[0] != 0x82:
            raise self.fail(f"bad compact protocol id {self.data[0]:#x}")
        vt = self.data[1]
        if vt & 0x1F != 1:
            raise self.fail(f"bad compact protocol version {vt & 0x1F}")
        self.pos = 2
        self.varint()  # seqid
        name = self.value(T_STRING, "text", 0)
        return name, vt >> 5


def _read(reader: _BinaryReader | _CompactReader, spec: _Struct) -> list[Any]:
    try:
        vals = reader.struct(spec, 0)
    except (struct.error, IndexError):
        raise _ThriftError("truncated data") from None
    assert vals is not None
    return vals


def _check_required(spec: _Struct, vals: list[Any] | None) -> None:
    assert vals is not None
    for fid in spec.required:
        if vals[fid] is None:
            raise _ThriftError(
                f"required field {spec.fields[fid][0]} ({fid}) of {spec.name} is missing"
            )


# ----------------------------------------------------------------------------------------------
# thrift values -> the neutral model


def _tag_value(vtype: int, t: list[Any]) -> TagValue:
    """The value of a thrift ``Tag`` (field values by id in ``t``) by its ``vType``."""
    if vtype == 0:
        return t[3] if t[3] is not None else ""
    if vtype == 3:
        return t[6] if t[6] is not None else 0
    if vtype == 1:
        return t[4] if t[4] is not None else 0.0
    if vtype == 2:
        return bool(t[5])
    if vtype == 4:
        return t[7] if t[7] is not None else b""
    return f"<Unknown Jaeger TagType {vtype}>"


def _thrift_process(raw: list[Any]) -> JaegerProcess:
    return JaegerProcess(raw[1], raw[2] or {})


def _thrift_spans(batch: list[Any]) -> list[JaegerSpan]:
    process = _thrift_process(batch[1])
    out = []
    for s in batch[2]:
        high = s[2] or 0
        parent = s[4] or 0
        refs = []
        if s[6]:
            for r in s[6]:
                refs.append(JaegerRef(r[1], _ID128(r[3], r[2]), _ID64(r[4])))
        logs = []
        if s[11]:
            for lg in s[11]:
                logs.append(JaegerLog(lg[1] * 1000, lg[2]))
        out.append(
            JaegerSpan(
                trace_id=_ID128(high, s[1]),
                span_id=_ID64(s[3]),
                operation_name=s[5] or "",
                start_ns=s[8] * 1000,
                duration_ns=(s[9] or 0) * 1000,
                process=process,
                parent_span_id=_ID64(parent) if parent else b"",
                references=refs,
                flags=s[7] or 0,
                tags=s[10] or {},
                logs=logs,
            )
        )
    return out


def decode_thrift_batch(data: bytes, protocol: ThriftProtocol = "binary") -> list[JaegerSpan]:
    """The spans of one thrift-encoded ``jaeger.Batch`` struct (thrift over HTTP is binary)."""
    reader = _BinaryReader(data) if protocol == "binary" else _CompactReader(data)
    try:
        batch = _read(reader, _BATCH)
        if reader.pos != reader.end:
            raise reader.fail(f"{reader.end - reader.pos} bytes left after the Batch")
        assert batch is not None
        return _thrift_spans(batch)
    except _ThriftError as e:
        raise ValueError(f"invalid Jaeger thrift ({protocol}) Batch: {e}") from None


def decode_agent_message(data: bytes, protocol: ThriftProtocol) -> list[JaegerSpan]:
    """The spans of one agent datagram: an ``Agent.emitBatch(1: Batch)`` call message."""
    reader = _BinaryReader(data) if protocol == "binary" else _CompactReader(data)
    try:
        name, mtype = reader.message_begin()
        if name != "emitBatch":
            raise _ThriftError(f"unsupported agent method {name!r}: only emitBatch is accepted")
        if mtype not in (MSG_CALL, MSG_ONEWAY):
            raise _ThriftError(f"message type {mtype} is not a call")
        args = _read(reader, _EMIT_BATCH_ARGS)
        if reader.pos != reader.end:
            raise reader.fail(f"{reader.end - reader.pos} bytes left after the message")
        assert args is not None
        return _thrift_spans(args[1])
    except _ThriftError as e:
        raise ValueError(f"invalid Jaeger agent message ({protocol} thrift): {e}") from None


# ----------------------------------------------------------------------------------------------
# api_v2 protobuf (gRPC collector): message classes built from descriptors at import

_PF = F
_OPT, _REP = OPTIONAL, REPEATED
_API = ".jaeger.api_v2."

# message -> [(field name, number, type, label, type name)], from the documented model.proto and
# collector.proto of jaeger.api_v2 (gogoproto options only change Go code, not the wire)
_API_V2_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "KeyValue": [
        ("key", 1, _PF.TYPE_STRING, _OPT, ""),
        ("v_type", 2, _PF.TYPE_ENUM, _OPT, _API + "ValueType"),
        ("v_str", 3, _PF.TYPE_STRING, _OPT, ""),
        ("v_bool", 4, _PF.TYPE_BOOL, _OPT, ""),
        ("v_int64", 5, _PF.TYPE_INT64, _OPT, ""),
        ("v_float64", 6, _PF.TYPE_DOUBLE, _OPT, ""),
        ("v_binary", 7, _PF.TYPE_BYTES, _OPT, ""),
    ],
    "Log": [
        ("timestamp", 1, _PF.TYPE_MESSAGE, _OPT, ".google.protobuf.Timestamp"),
        ("fields", 2, _PF.TYPE_MESSAGE, _REP, _API + "KeyValue"),
    ],
    "SpanRef": [
        ("trace_id", 1, _PF.TYPE_BYTES, _OPT, ""),
        ("span_id", 2, _PF.TYPE_BYTES, _OPT, ""),
        ("ref_type", 3, _PF.TYPE_ENUM, _OPT, _API + "SpanRefType"),
    ],
    "Process": [
        ("service_name", 1, _PF.TYPE_STRING, _OPT, ""),
        ("tags", 2, _PF.TYPE_MESSAGE, _REP, _API + "KeyValue"),
    ],
    "Span": [
        ("trace_id", 1, _PF.TYPE_BYTES, _OPT, ""),
        ("span_id", 2, _PF.TYPE_BYTES, _OPT, ""),
        ("operation_name", 3, _PF.TYPE_STRING, _OPT, ""),
        ("references", 4, _PF.TYPE_MESSAGE, _REP, _API + "SpanRef"),
        ("flags", 5, _PF.TYPE_UINT32, _OPT, ""),
        ("start_time", 6, _PF.TYPE_MESSAGE, _OPT, ".google.protobuf.Timestamp"),
        ("duration", 7, _PF.TYPE_MESSAGE, _OPT, ".google.protobuf.Duration"),
        ("tags", 8, _PF.TYPE_MESSAGE, _REP, _API + "KeyValue"),
        ("logs", 9, _PF.TYPE_MESSAGE, _REP, _API + "Log"),
        ("process", 10, _PF.TYPE_MESSAGE, _OPT, _API + "Process"),
        ("process_id", 11, _PF.TYPE_STRING, _OPT, ""),
        ("warnings", 12, _PF.TYPE_STRING, _REP, ""),
    ],
    "Batch": [
        ("spans", 1, _PF.TYPE_MESSAGE, _REP, _API + "Span"),
        ("process", 2, _PF.TYPE_MESSAGE, _OPT, _API + "Process"),
    ],
    "PostSpansRequest": [
        ("batch", 1, _PF.TYPE_MESSAGE, _OPT, _API + "Batch"),
    ],
    "PostSpansResponse": [],
}
_API_V2_ENUMS = {
    "ValueType": ["STRING", "BOOL", "INT64", "FLOAT64", "BINARY"],
    "SpanRefType": ["CHILD_OF", "FOLLOWS_FROM"],
}
COLLECTOR_SERVICE = "jaeger.api_v2.CollectorService"


def _build_api_v2() -> dict[str, Any]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="threadline/jaeger_api_v2.proto", package="jaeger.api_v2", syntax="proto3"
    )
    for name, values in _API_V2_ENUMS.items():
        add_enum(fdp.enum_type, name, values)
    for name, fields in _API_V2_MESSAGES.items():
        add_message(fdp.message_type, name, fields)
    service = fdp.service.add(name="CollectorService")
    service.method.add(
        name="PostSpans",
        input_type=_API + "PostSpansRequest",
        output_type=_API + "PostSpansResponse",
    )
    # a private pool: the jaeger.api_v2 names cannot clash with anything else in the process
    return build(fdp, _API_V2_MESSAGES, dependencies=(timestamp_pb2, duration_pb2))


API_V2 = _build_api_v2()
"""``jaeger.api_v2`` message classes by name: KeyValue, Log, SpanRef, Process, Span, Batch,
PostSpansRequest, PostSpansResponse."""
PostSpansRequest = API_V2["PostSpansRequest"]
PostSpansResponse = API_V2["PostSpansResponse"]


def _proto_tags(tags: Iterable[Any]) -> dict[str, TagValue]:
    out: dict[str, TagValue] = {}
    for t in tags:
        vtype = t.v_type
        if vtype == 0:
            value: TagValue = t.v_str
        elif vtype == 2:
            value = t.v_int64
        elif vtype == 3:
            value = t.v_float64
        elif vtype == 1:
            value = t.v_bool
        elif vtype == 4:
            value = t.v_binary
        else:
            value = f"<Unknown Jaeger TagType {vtype}>"
        out[t.key] = value
    return out


def _proto_id(raw: bytes, size: int, what: str, where: str) -> bytes:
    if len(raw) == size:
        return raw
    if size == 16 and len(raw) == 8:
        return bytes(8) + raw
    if not raw:
        return bytes(size)  # zero id: the distributor rejects the span
    raise ValueError(f"{where}: {what} must be {size} bytes, got {len(raw)}")


def _ns(ts: Any) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


def proto_batch_spans(batch: Any) -> list[JaegerSpan]:
    """The spans of an api_v2 ``Batch`` message (a span's own process wins over the batch's)."""
    base = JaegerProcess(batch.process.service_name, _proto_tags(batch.process.tags))
    out = []
    for i, s in enumerate(batch.spans):
        where = f"span {i}"
        process = base
        if s.HasField("process"):
            process = JaegerProcess(s.process.service_name, _proto_tags(s.process.tags))
        refs = [
            JaegerRef(
                r.ref_type,
                _proto_id(r.trace_id, 16, "reference trace_id", where),
                _proto_id(r.span_id, 8, "reference span_id", where),
            )
            for r in s.references
        ]
        out.append(
            JaegerSpan(
                trace_id=_proto_id(s.trace_id, 16, "trace_id", where),
                span_id=_proto_id(s.span_id, 8, "span_id", where),
                operation_name=s.operation_name,
                start_ns=_ns(s.start_time),
                duration_ns=_ns(s.duration),
                process=process,
                references=refs,
                flags=s.flags,
                tags=_proto_tags(s.tags),
                logs=[JaegerLog(_ns(lg.timestamp), _proto_tags(lg.fields)) for lg in s.logs],
            )
        )
    return out


def decode_post_spans_request(data: bytes) -> list[JaegerSpan]:
    """The spans of a serialized api_v2 ``PostSpansRequest``."""
    try:
        request = PostSpansRequest.FromString(data)
    except DecodeError as e:
        raise ValueError(f"invalid jaeger.api_v2.PostSpansRequest protobuf: {e}") from None
    return proto_batch_spans(request.batch)


# ----------------------------------------------------------------------------------------------
# the neutral model -> serialized OTLP ExportTraceServiceRequest (hand-encoded protobuf)

_SPAN_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_STATUS_OK, _STATUS_ERROR = 1, 2
# span tags that are resource attributes by the OpenTelemetry semantic conventions
_RESOURCE_KEYS = frozenset(
    {"service.name", "service.version", "service.namespace", "service.instance.id"}
)
_RESOURCE_PREFIXES = (
    "host.",
    "os.",
    "telemetry.sdk.",
    "telemetry.distro.",
    "telemetry.auto.",
    "process.runtime.",
    "deployment.",
    "k8s.",
    "container.",
    "cloud.",
)
_REF_TYPE_NAMES = {CHILD_OF: "child_of", FOLLOWS_FROM: "follows_from"}
_U64 = (1 << 64) - 1
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_KV_CACHE: dict[tuple[str, type, TagValue], bytes] = {}
_KV_CACHE_MAX = 200_000


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [bytes((i,)) for i in range(128)]


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag byte(s), length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else _varint(n)) + payload


def _kv(key: str, value: TagValue) -> bytes:
    """A serialized ``KeyValue`` (memoized: most attribute pairs repeat across spans)."""
    ck = (key, type(value), value)
    got = _KV_CACHE.get(ck)
    if got is not None:
        return got
    if isinstance(value, str):
        av = _ld(b"\x0a", value.encode())
    elif isinstance(value, bool):
        av = b"\x10\x01" if value else b"\x10\x00"
    elif isinstance(value, int):
        av = b"\x18" + _varint(value & _U64)
    elif isinstance(value, float):
        av = b"\x21" + _DOUBLE(value)
    else:
        av = _ld(b"\x3a", bytes(value))
    out = _ld(b"\x0a", key.encode()) + _ld(b"\x12", av)
    if len(_KV_CACHE) >= _KV_CACHE_MAX:
        _KV_CACHE.clear()
    _KV_CACHE[ck] = out
    return out


def _attrs(tag: bytes, attrs: dict[str, TagValue]) -> bytes:
    return b"".join(_ld(tag, _kv(k, v)) for k, v in attrs.items())


def _resource_attrs(process: JaegerProcess) -> dict[str, TagValue]:
    attrs: dict[str, TagValue] = {}
    if process.service_name:
        attrs["service.name"] = process.service_name
    attrs.update(process.tags)
    if "hostname" in attrs and "host.name" not in attrs:
        attrs["host.name"] = attrs.pop("hostname")
    if "jaeger.version" in attrs and "opencensus.exporterversion" not in attrs:
        attrs["opencensus.exporterversion"] = f"Jaeger-{attrs.pop('jaeger.version')}"
    return attrs


_RESOURCE_KEY_MEMO: dict[str, bool] = {}


def _is_resource_key(key: str) -> bool:
    known = _RESOURCE_KEY_MEMO.get(key)
    if known is None:
        known = key in _RESOURCE_KEYS or key.startswith(_RESOURCE_PREFIXES)
        if len(_RESOURCE_KEY_MEMO) < 100_000:
            _RESOURCE_KEY_MEMO[key] = known
    return known


def _http_status(value: TagValue, kind: int) -> int | None:
    """The OTLP status code an ``http.status_code`` implies, None when it is no number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        code = int(value)
    except ValueError:
        return None
    if kind == 2 and 400 <= code < 500:  # 4xx is the client's fault on a server span
        return 0
    return 0 if 100 <= code < 400 else _STATUS_ERROR


def _status(attrs: dict[str, TagValue], kind: int) -> tuple[int, str] | None:
    """(code, message) from the error/otel.status_*/http tags, removing the ones used."""
    code, message, found = 0, "", False
    error = attrs.get("error")
    if isinstance(error, bool) and error:
        del attrs["error"]
        code, found = _STATUS_ERROR, True
        if "otel.status_description" in attrs:
            message = str(attrs.pop("otel.status_description"))
        elif "http.status_code" in attrs:
            http = _http_status(attrs["http.status_code"], kind)
            if http is not None:
                code = http or code
                message = str(attrs.get("http.status_message", ""))
    if "otel.status_code" in attrs:
        otel = attrs.pop("otel.status_code")
        if not found:
            found = True
            name = str(otel).upper()
            code = _STATUS_OK if name == "OK" else _STATUS_ERROR if name == "ERROR" else 0
            if "otel.status_description" in attrs:
                message = str(attrs.pop("otel.status_description"))
    elif not found and "http.status_code" in attrs:
        http = _http_status(attrs["http.status_code"], kind)
        if http:
            code, found = http, True
            message = str(attrs.get("http.status_message", ""))
    return (code, message) if found else None


def _scope(attrs: dict[str, TagValue]) -> tuple[str, str]:
    name = version = ""
    if "otel.scope.name" in attrs:
        name = str(attrs.pop("otel.scope.name"))
        version = str(attrs.pop("otel.scope.version", ""))
        # the Python exporter sends both spellings; drop the old one when it says the same
        if str(attrs.get("otel.library.name", "")) == name:
            del attrs["otel.library.name"]
            if str(attrs.get("otel.library.version", version)) == version:
                attrs.pop("otel.library.version", None)
    elif "otel.library.name" in attrs:
        name = str(attrs.pop("otel.library.name"))
        version = str(attrs.pop("otel.library.version", ""))
    return name, version


def _event(log: JaegerLog) -> bytes:
    fields = dict(log.fields)
    name = fields.get("event")
    if isinstance(name, str):
        del fields["event"]
    else:
        name = fields.get("message")
        if isinstance(name, str):
            del fields["message"]
        else:
            name = "log"
    if not 0 <= log.timestamp_ns <= _U64:
        raise ValueError(f"log timestamp {log.timestamp_ns // 1000}µs is out of range")
    return (
        b"\x09" + _FIXED64(log.timestamp_ns) + _ld(b"\x12", name.encode()) + _attrs(b"\x1a", fields)
    )


def _span(s: JaegerSpan, attrs: dict[str, TagValue], where: str) -> bytes:
    kind = 0
    if "span.kind" in attrs:
        kind = _SPAN_KINDS.get(str(attrs.pop("span.kind")).lower(), 0)
    status = _status(attrs, kind)
    trace_state = attrs.pop("w3c.tracestate", "")
    parent = s.parent_span_id
    links = []
    for ref in s.references:
        if ref.ref_type == CHILD_OF and ref.trace_id == s.trace_id:
            if not parent:
                parent = ref.span_id
                continue
            if ref.span_id == parent:
                continue  # the same parent again
        ref_name = _REF_TYPE_NAMES.get(ref.ref_type, str(ref.ref_type))
        links.append(
            _ld(b"\x0a", ref.trace_id)
            + _ld(b"\x12", ref.span_id)
            + _ld(b"\x22", _kv("opentracing.ref_type", ref_name))
        )
    start = s.start_ns
    end = start + s.duration_ns
    if not 0 <= start <= _U64:
        raise ValueError(f"{where}: startTime {start // 1000}µs is out of range")
    if end > _U64:
        raise ValueError(f"{where}: startTime + duration is out of range")
    end = max(end, 0)  # a negative duration: the distributor rejects end < start
    parts = [_ld(b"\x0a", s.trace_id), _ld(b"\x12", s.span_id)]
    if trace_state:
        parts.append(_ld(b"\x1a", str(trace_state).encode()))
    if parent:
        parts.append(_ld(b"\x22", parent))
    parts.append(_ld(b"\x2a", s.operation_name.encode()))
    if kind:
        parts.append(b"\x30" + _varint(kind))
    parts.append(b"\x39" + _FIXED64(start) + b"\x41" + _FIXED64(end))
    parts.append(_attrs(b"\x4a", attrs))
    for log in s.logs:
        parts.append(_ld(b"\x5a", _event(log)))
    for link in links:
        parts.append(_ld(b"\x6a", link))
    if status is not None:
        code, message = status
        body = (_ld(b"\x12", message.encode()) if message else b"") + (
            b"\x18" + _varint(code) if code else b""
        )
        parts.append(_ld(b"\x7a", body))
    return b"".join(parts)


def to_otlp(spans: Iterable[JaegerSpan]) -> bytes:
    """One serialized OTLP ``ExportTraceServiceRequest`` holding ``spans``.

    Spans are grouped by resource (first appearance order), then by instrumentation scope;
    order is kept within a group. Raises ValueError for timestamps out of range.
    """
    resources: dict[int, tuple[dict[str, TagValue], tuple[Any, ...]]] = {}
    groups: dict[tuple[Any, ...], dict[tuple[str, str], list[bytes]]] = {}
    resource_of: dict[tuple[Any, ...], dict[str, TagValue]] = {}
    for i, s in enumerate(spans):
        base = resources.get(id(s.process))
        if base is None:
            attrs = _resource_attrs(s.process)
            base = resources[id(s.process)] = (attrs, tuple(attrs.items()))
        resource, rkey = base
        attrs = dict(s.tags)
        moved = None
        memo = _RESOURCE_KEY_MEMO
        for key in [k for k in attrs if memo.get(k, True) and _is_resource_key(k)]:
            value = attrs[key]
            have = resource.get(key)
            if have is None or (have == value and type(have) is type(value)):
                del attrs[key]
                if have is None:
                    moved = moved or {}
                    moved[key] = value
        if moved:
            resource = {**resource, **moved}
            rkey = tuple(resource.items())
        scope = _scope(attrs)
        by_scope = groups.get(rkey)
        if by_scope is None:
            by_scope = groups[rkey] = {}
            resource_of[rkey] = resource
        by_scope.setdefault(scope, []).append(_span(s, attrs, f"span {i}"))
    out = []
    for rkey, by_scope in groups.items():
        scope_spans = []
        for (name, version), encoded in by_scope.items():
            scope = (_ld(b"\x0a", name.encode()) if name else b"") + (
                _ld(b"\x12", version.encode()) if version else b""
            )
            scope_spans.append(
                _ld(b"\x12", _ld(b"\x0a", scope) + b"".join(_ld(b"\x12", e) for e in encoded))
            )
        rs = _ld(b"\x0a", _attrs(b"\x0a", resource_of[rkey])) + b"".join(scope_spans)
        out.append(_ld(b"\x0a", rs))
    return b"".join(out)


def thrift_batch_to_otlp(data: bytes) -> tuple[bytes, int]:
    """Thrift-over-HTTP body (binary ``Batch``) → (OTLP request bytes, span count)."""
    spans = decode_thrift_batch(data, "binary")
    return to_otlp(spans), len(spans)


def agent_message_to_otlp(data: bytes, protocol: ThriftProtocol) -> tuple[bytes, int]:
    """Agent UDP datagram → (OTLP request bytes, span count)."""
    spans = decode_agent_message(data, protocol)
    return to_otlp(spans), len(spans)


def post_spans_to_otlp(data: bytes) -> tuple[bytes, int]:
    """Serialized api_v2 ``PostSpansRequest`` → (OTLP request bytes, span count)."""
    spans = decode_post_spans_request(data)
    return to_otlp(spans), len(spans)
