"""Loki push requests (``POST /loki/api/v1/push``) into log rows (``LOG_SCHEMA``).

Owns: the ``logproto.PushRequest`` message classes (declared field by field from Loki's
``pkg/push/push.proto`` and built at import, in a private descriptor pool), the parser of
Prometheus-style label strings (``{a="b", c="d"}``), and ``decode_loki_push``: one request
body, JSON or snappy-compressed protobuf, decoded into one Arrow batch. Rows are gathered in
per-column Python lists and each column is built by Arrow at once.

Bodies, as Loki reads them:

* ``application/json`` (media type parameters ignored):
  ``{"streams": [{"stream": {labels}, "values": [["<unix ns>", "<line>", {metadata}?]]}]}``.
  Label values are strings; numbers and booleans are taken as their JSON text (as Loki's
  parser does; beyond Loki, also in structured metadata), null as absent. ``null`` streams,
  entries and ``values`` are skipped; items after the third of an entry are ignored. Streams
  in the legacy shape (``{"labels": "{a=\\"b\\"}", "entries": [{"ts": "<RFC 3339>", "line":
  "..."}]}``, what Loki's ``/api/prom/push`` and ``python-logging-loki``'s default emitter
  send) are accepted too.
* anything else (also no content type at all): a snappy block-compressed (not framed)
  serialized ``logproto.PushRequest``, as Promtail, Alloy and the Loki clients send it.

Mapping to rows:

* Stream labels are resource attributes (strings; empty values dropped, as Loki drops them).
  ``service_name`` is the first non-empty label of ``service_name``, ``service.name``,
  ``service``, ``app``, ``job``; it is also the resource attribute ``service.name`` (which
  replaces a ``service.name`` label of another value, so the two always agree).
* Structured metadata are log attributes (strings, a repeated name keeps its first value).
* Severity: the first of ``level``, ``severity``, ``detected_level`` in the line's structured
  metadata, else in the stream labels. ``severity_text`` is the value as sent,
  ``severity_number`` OTLP's number for it (``SEVERITY_NUMBERS``, case-insensitive; 0 when
  unknown).
* ``body`` is the line (empty lines are kept); ``time_unix_nano`` the entry's timestamp, or
  ``received_ns`` when it is 0 or missing; ``observed_time_unix_nano`` is ``received_ns``.
* Trace and span ids (each on its own): from structured metadata (``TRACE_ID_KEYS`` /
  ``SPAN_ID_KEYS``, the first key present), else from the line when it is a JSON object
  (those keys at the top level, or ECS's nested ``{"trace": {"id": ...}}``) or holds logfmt
  pairs (``trace_id=... span_id=...``). Ids are hex, at most 32 (16) digits, shorter ones
  left-padded with zeros (Zipkin's 64-bit trace ids, Jaeger's unpadded ids). An all-zero or
  empty id is no id (null, as in OTLP); an id that is not hex or is too long is null too and
  the line is counted in ``DecodedLogs.bad_ids`` (the line is kept).

Lines are rejected one by one (left out, counted in ``DecodedLogs.rejected``) only for
``invalid_timestamp``: a timestamp that is not a non-negative int64 of nanoseconds (JSON: a
decimal string, or, beyond Loki, a JSON integer; legacy JSON: an RFC 3339 string; protobuf:
negative or out-of-range ``Timestamp`` fields). A body that is not a request at all (bad JSON,
wrong shapes, a bad label string, bad snappy, malformed protobuf) raises ``ValueError`` naming
what is wrong, e.g. ``invalid Loki push JSON: streams[0].values[3][1]: ...``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

import cramjam
import orjson
import pyarrow as pa
from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError

from threadline.model.protodesc import OPTIONAL, REPEATED, F, declare
from threadline.model.schema import LOG_SCHEMA

__all__ = [
    "PUSH_CLASSES",
    "SEVERITY_NUMBERS",
    "SPAN_ID_KEYS",
    "TRACE_ID_KEYS",
    "DecodedLogs",
    "PushRequest",
    "decode_loki_push",
    "parse_labels",
]

# --- logproto message classes --------------------------------------------------------------

# numbers and names as Loki's pkg/push/push.proto (gogoproto options do not change the wire)
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "PushRequest": [
        ("streams", 1, F.TYPE_MESSAGE, REPEATED, ".logproto.StreamAdapter"),
        ("format", 2, F.TYPE_STRING, OPTIONAL, ""),
    ],
    "StreamAdapter": [
        ("labels", 1, F.TYPE_STRING, OPTIONAL, ""),
        ("entries", 2, F.TYPE_MESSAGE, REPEATED, ".logproto.EntryAdapter"),
        ("hash", 3, F.TYPE_UINT64, OPTIONAL, ""),
    ],
    "LabelPairAdapter": [
        ("name", 1, F.TYPE_STRING, OPTIONAL, ""),
        ("value", 2, F.TYPE_STRING, OPTIONAL, ""),
    ],
    "EntryAdapter": [
        ("timestamp", 1, F.TYPE_MESSAGE, OPTIONAL, ".google.protobuf.Timestamp"),
        ("line", 2, F.TYPE_STRING, OPTIONAL, ""),
        ("structuredMetadata", 3, F.TYPE_MESSAGE, REPEATED, ".logproto.LabelPairAdapter"),
        # only in query responses; read past, never stored
        ("parsed", 4, F.TYPE_MESSAGE, REPEATED, ".logproto.LabelPairAdapter"),
    ],
}
PUSH_CLASSES: dict[str, Any] = declare(
    "threadline/loki_push.proto", "logproto", _MESSAGES, dependencies=(timestamp_pb2,)
)
PushRequest = PUSH_CLASSES["PushRequest"]

# --- mapping tables ------------------------------------------------------------------------

SERVICE_LABELS = ("service_name", "service.name", "service", "app", "job")
LEVEL_KEYS = ("level", "severity", "detected_level")
TRACE_ID_KEYS = (
    "trace_id", "traceid", "traceID", "traceId", "TraceId", "TraceID", "trace-id",
    "otelTraceID", "trace.id",
)  # fmt: skip
SPAN_ID_KEYS = (
    "span_id", "spanid", "spanID", "spanId", "SpanId", "SpanID", "span-id",
    "otelSpanID", "span.id",
)  # fmt: skip

_TRACE, _DEBUG, _INFO, _WARN, _ERROR, _FATAL = 1, 5, 9, 13, 17, 21
# lower-cased level names of common loggers (syslog, log4j, slog, zap, serilog, .NET, JUL)
SEVERITY_NUMBERS: dict[str, int] = {
    "trace": _TRACE, "trc": _TRACE, "verbose": _TRACE, "finest": _TRACE,
    "debug": _DEBUG, "dbg": _DEBUG, "fine": _DEBUG, "finer": _DEBUG,
    "info": _INFO, "inf": _INFO, "information": _INFO, "informational": _INFO,
    "notice": _INFO, "config": _INFO,
    "warn": _WARN, "wrn": _WARN, "warning": _WARN,
    "error": _ERROR, "err": _ERROR, "eror": _ERROR, "severe": _ERROR,
    "fatal": _FATAL, "ftl": _FATAL, "critical": _FATAL, "crit": _FATAL, "crt": _FATAL,
    "panic": _FATAL, "dpanic": _FATAL, "alert": _FATAL, "emerg": _FATAL, "emergency": _FATAL,
}  # fmt: skip

_INT64_MAX = (1 << 63) - 1
_NS = 1_000_000_000
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII)
# logfmt-ish ``key=value`` (value bare or double-quoted) for the id keys, not inside a longer key
_LOGFMT_IDS = re.compile(
    r"(?<![\w.\-])("
    + "|".join(re.escape(k) for k in (*TRACE_ID_KEYS, *SPAN_ID_KEYS))
    + r')=("[^"]*"|[^\s"\],;)]*)'
)
_TRACE_KEY_SET = frozenset(TRACE_ID_KEYS)
_METADATA_KEYS = frozenset((*LEVEL_KEYS, *TRACE_ID_KEYS, *SPAN_ID_KEYS))
_MISSING: Any = object()
# snappy expands at most 64 bytes per 3-byte copy tag: a header claiming more is corrupt
_SNAPPY_MAX_RATIO = 22


@dataclass(slots=True)
class DecodedLogs:
    """Result of decoding one push request (the fields of ``otlp_logs.DecodedLogs``, plus
    ``bad_ids``)."""

    batch: pa.RecordBatch
    """Accepted lines, ``LOG_SCHEMA``."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Rejection reason -> lines rejected for it (only reasons that occurred)."""
    first_error: str | None = None
    """Message describing the first rejected line, None when nothing was rejected."""
    bad_ids: int = 0
    """Lines kept with a null trace or span id because the one they named was not hex or too
    long (``invalid_trace_id``)."""

    @property
    def rejected_count(self) -> int:
        return sum(self.rejected.values())


# --- the entry point -----------------------------------------------------------------------


def decode_loki_push(body: bytes, content_type: str | None, received_ns: int) -> DecodedLogs:
    """Decode a Loki push request body into log rows (see the module docstring).

    ``content_type`` is the request's ``Content-Type`` header (``application/json`` for JSON,
    anything else for snappy protobuf, as Loki decides); ``received_ns`` is when the request
    arrived (Unix nanoseconds). Any ``Content-Encoding`` (gzip) must be undone by the caller.
    Raises ``ValueError`` when the body is not a valid request.
    """
    rows = _Rows(received_ns)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        _decode_json(bytes(body), rows)
    else:
        _decode_protobuf(bytes(body), rows)
    return rows.finish()


# --- rows ----------------------------------------------------------------------------------


class _Rows:
    """The columns of the rows decoded so far, and the current stream's shared values."""

    __slots__ = (
        "_res",
        "_service",
        "_sev_number",
        "_sev_text",
        "bad_ids",
        "body",
        "first_error",
        "log_str",
        "received_ns",
        "rejected",
        "res_str",
        "service",
        "sev_number",
        "sev_text",
        "span_id",
        "time",
        "trace_id",
    )

    def __init__(self, received_ns: int) -> None:
        self.received_ns = received_ns
        self.time: list[int] = []
        self.sev_number: list[int] = []
        self.sev_text: list[str] = []
        self.body: list[str] = []
        self.trace_id: list[bytes | None] = []
        self.span_id: list[bytes | None] = []
        self.service: list[str] = []
        self.res_str: list[list[tuple[str, str]]] = []
        self.log_str: list[list[tuple[str, str]]] = []
        self.rejected: dict[str, int] = {}
        self.first_error: str | None = None
        self.bad_ids = 0
        self._res: list[tuple[str, str]] = []
        self._service = ""
        self._sev_text = ""
        self._sev_number = 0

    def stream(self, labels: list[tuple[str, str]]) -> None:
        """Start a stream of these labels (unique names, no empty values)."""
        found = dict(labels)
        service = next((found[k] for k in SERVICE_LABELS if found.get(k)), "")
        res = labels
        if service:
            if "service.name" in found:
                res = [(k, service if k == "service.name" else v) for k, v in labels]
            else:
                res = [*labels, ("service.name", service)]
        self._res = res
        self._service = service
        self._sev_text = next((found[k] for k in LEVEL_KEYS if found.get(k)), "")
        self._sev_number = _severity_number(self._sev_text)

    def reject(self, reason: str, message: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if self.first_error is None:
            self.first_error = message

    def entry(self, ts: int, line: str, metadata: list[tuple[str, str]]) -> None:
        """One accepted line of the current stream (``ts`` 0: no timestamp)."""
        sev_text, sev_number = self._sev_text, self._sev_number
        trace_v: Any = _MISSING
        span_v: Any = _MISSING
        if metadata:
            md = dict(metadata)
            if not _METADATA_KEYS.isdisjoint(md):
                for k in LEVEL_KEYS:
                    if md.get(k):
                        sev_text = md[k]
                        sev_number = _severity_number(sev_text)
                        break
                trace_v = _first_of(md, TRACE_ID_KEYS)
                span_v = _first_of(md, SPAN_ID_KEYS)
        if (trace_v is _MISSING or span_v is _MISSING) and ("race" in line or "pan" in line):
            line_trace, line_span = _line_ids(line)
            if trace_v is _MISSING:
                trace_v = line_trace
            if span_v is _MISSING:
                span_v = line_span
        trace_id = span_id = None
        if trace_v is not _MISSING or span_v is not _MISSING:
            trace_id, bad_trace = _hex_id(trace_v, 16)
            span_id, bad_span = _hex_id(span_v, 8)
            if bad_trace or bad_span:
                self.bad_ids += 1
        self.time.append(ts or self.received_ns)
        self.sev_number.append(sev_number)
        self.sev_text.append(sev_text)
        self.body.append(line)
        self.trace_id.append(trace_id)
        self.span_id.append(span_id)
        self.service.append(self._service)
        self.res_str.append(self._res)
        self.log_str.append(metadata)

    def finish(self) -> DecodedLogs:
        n = len(self.body)
        given = {
            "time_unix_nano": self.time,
            "severity_number": self.sev_number,
            "severity_text": self.sev_text,
            "body": self.body,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "service_name": self.service,
            "resource_attrs_str": self.res_str,
            "log_attrs_str": self.log_str,
        }
        constant = {
            "observed_time_unix_nano": self.received_ns,
            "body_raw": None,
            "event_name": "",
            "flags": 0,
            "scope_name": "",
            "scope_version": "",
            "dropped_attributes_count": 0,
        }
        arrays = []
        for f in LOG_SCHEMA:
            if f.name in given:
                arrays.append(pa.array(given[f.name], type=f.type))
            elif f.name in constant:
                arrays.append(pa.repeat(pa.scalar(constant[f.name], type=f.type), n))
            else:  # an attribute map that is always empty
                arrays.append(_empty_maps(f.type, n))
        batch = pa.RecordBatch.from_arrays(arrays, schema=LOG_SCHEMA)
        return DecodedLogs(batch, self.rejected, self.first_error, bad_ids=self.bad_ids)


def _empty_maps(map_type: pa.MapType, n: int) -> pa.Array:
    """``n`` empty maps (``pa.repeat`` of an empty map is 20 times slower)."""
    offsets = pa.repeat(pa.scalar(0, type=pa.int32()), n + 1)
    keys = pa.array([], type=map_type.key_type)
    items = pa.array([], type=map_type.item_type)
    return pa.MapArray.from_arrays(offsets, keys, items, type=map_type)


def _severity_number(text: str) -> int:
    return SEVERITY_NUMBERS.get(text.strip().lower(), 0) if text else 0


def _hex_id(value: Any, size: int) -> tuple[bytes | None, bool]:
    """(id, whether ``value`` was a bad id) for a value found under an id key."""
    if value is _MISSING or value is None or value == "":
        return None, False
    if not isinstance(value, str) or len(value) > 2 * size or not _HEX.fullmatch(value):
        return None, True
    raw = bytes.fromhex(value.rjust(2 * size, "0"))
    return (None if raw.count(0) == size else raw), False


def _line_ids(line: str) -> tuple[Any, Any]:
    """The trace and span id values a line names (``_MISSING`` when it names none)."""
    if line.lstrip()[:1] == "{":
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict):
            return _json_id(doc, TRACE_ID_KEYS, "trace"), _json_id(doc, SPAN_ID_KEYS, "span")
    trace_v: Any = _MISSING
    span_v: Any = _MISSING
    for m in _LOGFMT_IDS.finditer(line):
        key, value = m.group(1), m.group(2)
        if value[:1] == '"':
            value = value[1:-1]
        if key in _TRACE_KEY_SET:
            if trace_v is _MISSING:
                trace_v = value
        elif span_v is _MISSING:
            span_v = value
        if trace_v is not _MISSING and span_v is not _MISSING:
            break
    return trace_v, span_v


def _first_of(found: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in found:
            return found[k]
    return _MISSING


def _json_id(doc: dict[str, Any], keys: tuple[str, ...], ecs: str) -> Any:
    value = _first_of(doc, keys)
    if value is not _MISSING:
        return value
    nested = doc.get(ecs)
    if isinstance(nested, dict) and "id" in nested:
        return nested["id"]
    return _MISSING


# --- JSON ----------------------------------------------------------------------------------


def _json_type(v: Any) -> str:
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "an array"
    return "null"


def _bad(where: str, what: str) -> ValueError:
    return ValueError(f"invalid Loki push JSON: {where}: {what}")


def _json_string(v: Any, where: str) -> str | None:
    """A label or metadata value as Loki reads it: strings, numbers and booleans as their JSON
    text, null as absent."""
    if isinstance(v, str):
        return v
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    raise _bad(where, f"expected a string, got {_json_type(v)}")


def _json_pairs(obj: Any, where: str, drop_empty: bool) -> list[tuple[str, str]]:
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise _bad(where, f"expected an object of strings, got {_json_type(obj)}")
    pairs = []
    for k, v in obj.items():
        text = _json_string(v, f"{where}.{k}")
        if text is not None and (text or not drop_empty):
            pairs.append((k, text))
    return pairs


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_ns(v: Any) -> int | None:
    """Unix nanoseconds from a JSON entry's timestamp (a decimal string or, beyond Loki, an
    integer); None when it is not one."""
    if isinstance(v, str):
        if not (v.isascii() and v.isdigit() and len(v) <= 19):
            return None
        n = int(v)
    elif type(v) is int:
        n = v
    else:
        return None
    return n if 0 <= n <= _INT64_MAX else None


def _decode_json(body: bytes, rows: _Rows) -> None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"invalid Loki push JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(
            f'invalid Loki push JSON: expected an object with "streams", got {_json_type(doc)}'
        )
    streams = doc.get("streams")
    if streams is None:
        return
    if not isinstance(streams, list):
        raise _bad("streams", f"expected an array, got {_json_type(streams)}")
    for si, stream in enumerate(streams):
        where = f"streams[{si}]"
        if stream is None:
            continue
        if not isinstance(stream, dict):
            raise _bad(where, f"expected an object, got {_json_type(stream)}")
        legacy = "stream" not in stream and "values" not in stream
        if legacy and ("labels" in stream or "entries" in stream):
            _legacy_stream(stream, where, rows)
        else:
            _json_stream(stream, where, rows)


def _json_stream(stream: dict[str, Any], where: str, rows: _Rows) -> None:
    rows.stream(_json_pairs(stream.get("stream"), f"{where}.stream", drop_empty=True))
    values = stream.get("values")
    if values is None:
        return
    if not isinstance(values, list):
        raise _bad(f"{where}.values", f"expected an array, got {_json_type(values)}")
    for ei, entry in enumerate(values):
        at = f"{where}.values[{ei}]"
        if entry is None:
            continue
        if not isinstance(entry, list) or len(entry) < 2:
            got = f"{len(entry)} items" if isinstance(entry, list) else _json_type(entry)
            raise _bad(at, f'expected ["<unix ns>", "<line>"] or with {{metadata}}, got {got}')
        line = entry[1]
        if not isinstance(line, str):
            raise _bad(f"{at}[1]", f"the line must be a string, got {_json_type(line)}")
        metadata = _json_pairs(entry[2], f"{at}[2]", False) if len(entry) > 2 else []
        ts = _json_ns(entry[0])
        if ts is None:
            rows.reject(
                "invalid_timestamp",
                f"{at}[0]: timestamp {_short(entry[0])} is not a Unix time in nanoseconds",
            )
            continue
        rows.entry(ts, line, metadata)


def _legacy_stream(stream: dict[str, Any], where: str, rows: _Rows) -> None:
    """``{"labels": "{...}", "entries": [{"ts": "<RFC 3339>", "line": "..."}]}``."""
    labels = stream.get("labels")
    if labels is None:
        labels = "{}"
    if not isinstance(labels, str):
        raise _bad(f"{where}.labels", f"expected a label string, got {_json_type(labels)}")
    try:
        rows.stream(parse_labels(labels))
    except ValueError as e:
        raise _bad(f"{where}.labels", str(e)) from None
    entries = stream.get("entries")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise _bad(f"{where}.entries", f"expected an array, got {_json_type(entries)}")
    for ei, entry in enumerate(entries):
        at = f"{where}.entries[{ei}]"
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise _bad(at, f'expected {{"ts": ..., "line": ...}}, got {_json_type(entry)}')
        line = entry.get("line")
        if line is None:
            line = ""
        if not isinstance(line, str):
            raise _bad(f"{at}.line", f"expected a string, got {_json_type(line)}")
        metadata = _legacy_metadata(entry.get("structuredMetadata"), f"{at}.structuredMetadata")
        ts_v = entry.get("ts")
        ts = 0 if ts_v is None else _rfc3339_ns(ts_v)
        if ts is None:
            rows.reject(
                "invalid_timestamp", f"{at}.ts: timestamp {_short(ts_v)} is not an RFC 3339 time"
            )
            continue
        rows.entry(ts, line, metadata)


def _legacy_metadata(items: Any, where: str) -> list[tuple[str, str]]:
    """``[{"name": ..., "value": ...}]`` (protobuf's JSON of ``LabelPairAdapter``)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise _bad(where, f"expected an array, got {_json_type(items)}")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise _bad(f"{where}[{i}]", 'expected {"name": "...", "value": "..."}')
        value = _json_string(item.get("value", ""), f"{where}[{i}].value")
        if name not in seen and value is not None:
            seen.add(name)
            out.append((name, value))
    return out


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH_DAY = datetime.date(1970, 1, 1).toordinal()


def _rfc3339_ns(v: Any) -> int | None:
    """Unix nanoseconds of an RFC 3339 time (digits past nanoseconds are cut off); None when
    ``v`` is not one, is before 1970 or past int64."""
    m = _RFC3339.fullmatch(v) if isinstance(v, str) else None
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        days = datetime.date(year, month, day).toordinal() - _EPOCH_DAY
    except ValueError:
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    if m.group(8):
        off_h, off_m = int(m.group(9)), int(m.group(10))
        if off_h > 23 or off_m > 59:
            return None
        offset = off_h * 3600 + off_m * 60
        seconds -= offset if m.group(8) == "+" else -offset
    frac = (m.group(7) or "")[:9].ljust(9, "0")
    ns = seconds * _NS + int(frac)
    return ns if 0 <= ns <= _INT64_MAX else None


# --- protobuf ------------------------------------------------------------------------------


def _decode_protobuf(body: bytes, rows: _Rows) -> None:
    try:
        claimed = cramjam.snappy.decompress_raw_len(body)
        if claimed > _SNAPPY_MAX_RATIO * len(body) + 64:
            raise ValueError(f"header claims {claimed} bytes from {len(body)}")
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except (cramjam.DecompressionError, ValueError) as e:
        raise ValueError(
            f"invalid Loki push body: not snappy block-compressed protobuf ({e})"
        ) from None
    req = PushRequest()
    try:
        req.ParseFromString(raw)
    except DecodeError as e:
        raise ValueError(f"invalid Loki push protobuf: {e}") from None
    for si, stream in enumerate(req.streams):
        try:
            rows.stream(parse_labels(stream.labels))
        except ValueError as e:
            raise ValueError(f"invalid Loki push protobuf: streams[{si}].labels: {e}") from None
        for ei, entry in enumerate(stream.entries):
            ts = 0
            if entry.HasField("timestamp"):
                seconds, nanos = entry.timestamp.seconds, entry.timestamp.nanos
                ts = seconds * _NS + nanos
                if seconds < 0 or not 0 <= nanos < _NS or ts > _INT64_MAX:
                    rows.reject(
                        "invalid_timestamp",
                        f"streams[{si}].entries[{ei}].timestamp: seconds {seconds}, nanos "
                        f"{nanos} is not a Unix time in int64 nanoseconds",
                    )
                    continue
            metadata: list[tuple[str, str]] = []
            if entry.structuredMetadata:
                seen: set[str] = set()
                for pair in entry.structuredMetadata:
                    if pair.name not in seen:
                        seen.add(pair.name)
                        metadata.append((pair.name, pair.value))
            rows.entry(ts, entry.line, metadata)


# --- label strings -------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SPACE = re.compile(r"[ \t\r\n]*")
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'",
}  # fmt: skip
_OCTAL = frozenset("01234567")
# the text up to the closing quote, a backslash or a newline
_RUNS = {q: re.compile(f"[^{q}\\\\\n]*") for q in ('"', "'")}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_labels(text: str) -> list[tuple[str, str]]:
    """The labels of a Prometheus-style label string ``{a="b", c='d', e=`raw`}``.

    Values are quoted strings with Go's escapes (``\\n``, ``\\"``, ``\\x41``, ``\\101``,
    ``\\u00e9``, ``\\U0001F600``) or raw backquoted ones; names are ``[A-Za-z_][A-Za-z0-9_]*``
    or, as Prometheus 3 writes UTF-8 names, quoted. A trailing comma is allowed. Labels with
    empty values are left out (Loki does so). Raises ``ValueError`` naming what is wrong and
    where, also for a repeated name.
    """
    labels: list[tuple[str, str]] = []
    seen: set[str] = set()
    pos = _skip_space(text, 0)
    if text[pos : pos + 1] != "{":
        raise _label_error(text, pos, "expected '{'")
    pos = _skip_space(text, pos + 1)
    while text[pos : pos + 1] != "}":
        if text[pos : pos + 1] in ('"', "'", "`"):
            name, pos = _quoted(text, pos)
        else:
            m = _NAME.match(text, pos)
            if m is None:
                raise _label_error(text, pos, "expected a label name")
            name, pos = m.group(), m.end()
        pos = _skip_space(text, pos)
        if text[pos : pos + 1] != "=" or text[pos + 1 : pos + 2] in ("=", "~"):
            raise _label_error(text, pos, f"expected '=' after label name {name!r}")
        pos = _skip_space(text, pos + 1)
        if text[pos : pos + 1] not in ('"', "'", "`"):
            raise _label_error(text, pos, f"expected a quoted value for label {name!r}")
        value, pos = _quoted(text, pos)
        if name in seen:
            raise _label_error(text, pos, f"label name {name!r} is repeated")
        seen.add(name)
        if value:
            labels.append((name, value))
        pos = _skip_space(text, pos)
        if text[pos : pos + 1] == ",":
            pos = _skip_space(text, pos + 1)
        elif text[pos : pos + 1] != "}":
            raise _label_error(text, pos, "expected ',' or '}'")
    if _skip_space(text, pos + 1) != len(text):
        raise _label_error(text, pos + 1, "unexpected text after '}'")
    return labels


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a match of ``pattern`` (which matches the empty string) at ``pos`` ends."""
    m = pattern.match(text, pos)
    return m.end() if m else pos


def _skip_space(text: str, pos: int) -> int:
    return _match_end(_SPACE, text, pos)


def _label_error(text: str, pos: int, what: str) -> ValueError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return ValueError(f"{what} at offset {pos} of label string {shown!r}")


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The string starting with the quote at ``pos`` and the offset past it."""
    quote = text[pos]
    start = pos + 1
    if quote == "`":
        end = text.find("`", start)
        if end < 0:
            raise _label_error(text, pos, "unterminated raw string")
        return text[start:end], end + 1
    out = bytearray()
    run = _RUNS[quote]
    i = start
    while True:
        j = _match_end(run, text, i)
        out += text[i:j].encode("utf-8", "surrogatepass")
        if j >= len(text) or text[j] == "\n":
            raise _label_error(text, pos, "unterminated quoted string")
        if text[j] == quote:
            try:
                return out.decode("utf-8"), j + 1
            except UnicodeDecodeError:
                raise _label_error(text, pos, "escapes make invalid UTF-8") from None
        i = _escape(text, j, out)


def _escape(text: str, j: int, out: bytearray) -> int:
    """Append the escape at ``text[j]`` (a backslash) to ``out``; the offset past it."""
    c = text[j + 1 : j + 2]
    if c in _SIMPLE_ESCAPES:
        out += _SIMPLE_ESCAPES[c].encode()
        return j + 2
    if c in _OCTAL:
        digits = text[j + 1 : j + 4]
        if len(digits) < 3 or not set(digits) <= _OCTAL or int(digits, 8) > 255:
            raise _label_error(text, j, "invalid octal escape")
        out.append(int(digits, 8))
        return j + 4
    width = {"x": 2, "u": 4, "U": 8}.get(c)
    if width is None:
        raise _label_error(text, j, f"invalid escape '\\{c}'")
    digits = text[j + 2 : j + 2 + width]
    if len(digits) < width or not set(digits) <= _HEX_DIGITS:
        raise _label_error(text, j, f"invalid '\\{c}' escape")
    code = int(digits, 16)
    if c == "x":
        out.append(code)
    elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise _label_error(text, j, f"'\\{c}{digits}' is not a Unicode character")
    else:
        out += chr(code).encode()
    return j + 2 + width
