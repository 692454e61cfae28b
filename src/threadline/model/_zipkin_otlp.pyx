# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled Zipkin v2 → OTLP translation: JSON or proto3 bytes in, serialized OTLP
``ExportTraceServiceRequest`` bytes out, by the rules documented in ``threadline.model.zipkin``.

Two readers fill one C-level model of the request (spans, tags and annotations held as pointers
into the body); one encoder groups the spans by service and scope and writes the OTLP protobuf
wire bytes directly, without Python objects per span.

The JSON reader parses the body itself (RFC 8259, as strictly as orjson: a body orjson refuses
is refused with orjson's message). Spans in the common shapes are read in C; a span with an
unusual or wrong value anywhere (a number as a tag value, a lower-case kind, a 64-bit trace id
with a space ...) is handed whole to ``zipkin._normalize_json_span``, which checks every field
and names the first bad one, so the rules for odd input and the error messages live in one
place. The rare parts of the mapping also stay in Python, called per distinct value: endpoints
(IP address forms), resource attributes (once per service), endpoint attributes (once per
endpoint pair), annotation values in the ``name|{json}|dropped`` and JSON-object forms, and
``otlp.link.N`` tags.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.math cimport isinf
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport strtod
from libc.string cimport memcmp, memcpy, memset

from threadline.model._wire cimport (
    Buf,
    PReader,
    assemble,
    cptr,
    dedupe,
    grow,
    i128,
    ldsize,
    pb_bytes,
    pb_field,
    pb_fixed64,
    pb_len,
    pb_skip,
    pb_varint,
    put_status,
    status_size,
    put_fixed64,
    put_ld,
    put_varint,
    reserve,
    utf8_valid,
    vsize,
)

import orjson

cdef enum:
    MAX_JSON_DEPTH = 1024  # as orjson
    MAX_PROTO_DEPTH = 100
    DEDUPE_LINEAR = 64
    # tag key classes
    K_PLAIN = 0
    K_HIDDEN = 1  # resource and scope tags: never span attributes
    K_SOURCE = 2
    K_LIB_NAME = 3
    K_LIB_VERSION = 4
    K_SCOPE_NAME = 5
    K_SCOPE_VERSION = 6
    K_TRACESTATE = 7
    K_KIND = 8
    K_STATUS_CODE = 9
    K_STATUS_DESC = 10
    K_ERROR = 11
    K_LINK0 = 12
    K_LINK = 13  # otlp.link.N for N > 0
    K_COUNT = 14
    K_ENDPOINT = 32  # + bit index of an endpoint attribute key (net.host.ip ...)
    STATUS_ERROR = 2
    KIND_INTERNAL = 1

cdef uint64_t MAX_MICROS = 18446744073709551615ULL // 1000
cdef i128 U64_MAX = (<i128>1 << 64) - 1

# from threadline.model.zipkin on first use: the tag and attribute names, the status names, and
# the serialized bool attributes for an absent start and a shared span
cdef tuple _ENDPOINT_KEYS = ()
cdef dict _STATUS_NAMES = {}
cdef bytes _ABSENT_KV = b""
cdef bytes _SHARED_KV = b""

cdef object Z = None  # threadline.model.zipkin, imported on first use (it imports us)


cdef object zipkin():
    global Z
    if Z is None:
        from threadline.model import zipkin as module
        Z = module
    return Z


# ---------------------------------------------------------------------------------------------
# tag keys with a rule: a small hash set, built once from zipkin.RESOURCE_TAGS

cdef enum:
    KEYSET_SIZE = 1024

cdef cptr keyset_p[KEYSET_SIZE]
cdef Py_ssize_t keyset_n[KEYSET_SIZE]
cdef int keyset_cls[KEYSET_SIZE]
cdef list keyset_keep = []


cdef inline uint32_t key_hash(cptr k, Py_ssize_t n) noexcept:
    cdef uint32_t h = 2166136261u
    cdef Py_ssize_t j
    for j in range(n):
        h = (h ^ k[j]) * 16777619u
    return h


cdef int keyset_add(bytes key, int cls) except -1:
    cdef uint32_t slot = key_hash(<cptr>PyBytes_AS_STRING(key), len(key)) & (KEYSET_SIZE - 1)
    while keyset_p[slot] != NULL:
        slot = (slot + 1) & (KEYSET_SIZE - 1)
    keyset_keep.append(key)
    keyset_p[slot] = <cptr>PyBytes_AS_STRING(key)
    keyset_n[slot] = len(key)
    keyset_cls[slot] = cls
    return 0


cdef int keyset_build() except -1:
    global _ENDPOINT_KEYS, _STATUS_NAMES, _ABSENT_KV, _SHARED_KV
    if keyset_keep:
        return 0
    z = zipkin()
    for key in z.RESOURCE_TAGS:
        keyset_add(key.encode(), K_HIDDEN)
    for key, cls in (
        (z.TAG_SERVICE_NAME_SOURCE, K_SOURCE), (z.TAG_LIBRARY_NAME, K_LIB_NAME),
        (z.TAG_LIBRARY_VERSION, K_LIB_VERSION), (z.TAG_SCOPE_NAME, K_SCOPE_NAME),
        (z.TAG_SCOPE_VERSION, K_SCOPE_VERSION), (z.TAG_TRACE_STATE, K_TRACESTATE),
        (z.TAG_SPAN_KIND, K_KIND), (z.TAG_STATUS_CODE, K_STATUS_CODE),
        (z.TAG_STATUS_DESCRIPTION, K_STATUS_DESC), (z.TAG_ERROR, K_ERROR),
        (z._LINK_KEYS[0], K_LINK0),
    ):
        keyset_add(key.encode(), cls)
    _ENDPOINT_KEYS = (
        z.NET_HOST_IP, z.NET_HOST_PORT, z.PEER_SERVICE, z.NET_PEER_IP, z.NET_PEER_PORT
    )
    for bit, key in enumerate(_ENDPOINT_KEYS):
        keyset_add(key.encode(), K_ENDPOINT + bit)
    _STATUS_NAMES = {name.encode(): code for name, code in z._STATUS_NAMES.items()}
    _ABSENT_KV = z._bool_attribute(z.ATTR_START_ABSENT)
    _SHARED_KV = z._bool_attribute(z.ATTR_SHARED)
    return 0


cdef inline int classify(cptr k, Py_ssize_t n) noexcept:
    cdef uint32_t slot = key_hash(k, n) & (KEYSET_SIZE - 1)
    while keyset_p[slot] != NULL:
        if keyset_n[slot] == n and memcmp(keyset_p[slot], k, n) == 0:
            return keyset_cls[slot]
        slot = (slot + 1) & (KEYSET_SIZE - 1)
    if n > 10 and memcmp(k, b"otlp.link.", 10) == 0:
        return K_LINK
    return K_PLAIN


# ---------------------------------------------------------------------------------------------
# the model

cdef struct ZTag:
    cptr k
    Py_ssize_t kn
    cptr v
    Py_ssize_t vn

cdef struct ZAnn:
    uint64_t ts
    cptr v
    Py_ssize_t vn

cdef struct ZSpan:
    uint8_t trace[16]
    uint8_t span[8]
    uint8_t parent[8]
    bint has_parent
    cptr name
    Py_ssize_t name_n
    int kind
    uint64_t ts
    int64_t dur
    Py_ssize_t local
    Py_ssize_t remote
    Py_ssize_t t0
    Py_ssize_t tn
    Py_ssize_t a0
    Py_ssize_t an
    bint shared


cdef inline int hexval(uint8_t c) noexcept:
    if b'0' <= c <= b'9':
        return c - 48
    if b'a' <= c <= b'f':
        return c - 87
    if b'A' <= c <= b'F':
        return c - 55
    return -1


cdef bint hex_id(cptr s, Py_ssize_t n, uint8_t* out, Py_ssize_t size) noexcept:
    """``n`` hex digits (``size``*2 at most, odd counts left-padded) into ``size`` bytes,
    right-aligned after zeros; False when a character is not a hex digit."""
    cdef Py_ssize_t j, at = size * 2 - n
    cdef int d
    if n > size * 2:
        return False
    memset(out, 0, size)
    for j in range(n):
        d = hexval(s[j])
        if d < 0:
            return False
        if (at + j) & 1:
            out[(at + j) >> 1] |= <uint8_t>d
        else:
            out[(at + j) >> 1] = <uint8_t>(d << 4)
    return True


cdef class Request:
    cdef ZTag* tags
    cdef Py_ssize_t ntags, ctags
    cdef ZAnn* anns
    cdef Py_ssize_t nanns, canns
    cdef ZSpan* spans
    cdef Py_ssize_t nspans, cspans
    cdef list keep
    cdef bytes body
    cdef PReader pr  # protobuf reading (JSON reading: data, pos, end)
    cdef cptr data
    cdef Py_ssize_t pos, end
    cdef int depth
    # endpoints: (service, ipv4, ipv6, port) tuples; 0 is the absent endpoint
    cdef list eps
    cdef dict ep_ids
    cdef dict ep_raw
    # encoding
    cdef Buf out
    cdef Py_ssize_t* eff
    cdef int* cls
    cdef dict svc_ids
    cdef list svcs  # serialized Resource of each service
    cdef dict scope_ids
    cdef list scopes  # (service group, scope message bytes)
    cdef dict pair_ids
    cdef list pairs  # (span attribute fields bytes, endpoint key mask)
    cdef Py_ssize_t* span_sg
    cdef Py_ssize_t* span_off
    cdef Py_ssize_t* span_len
    cdef Py_ssize_t last_local, last_sg, last_scope, last_pair, last_pair_key
    cdef cptr last_lib
    cdef Py_ssize_t last_lib_n

    def __cinit__(self):
        self.keep = []
        self.eps = [("", "", "", 0)]
        self.ep_ids = {("", "", "", 0): 0}
        self.ep_raw = {}

    def __dealloc__(self):
        PyMem_Free(self.tags)
        PyMem_Free(self.anns)
        PyMem_Free(self.spans)
        PyMem_Free(self.out.p)
        PyMem_Free(self.eff)
        PyMem_Free(self.cls)
        PyMem_Free(self.span_sg)
        PyMem_Free(self.span_off)
        PyMem_Free(self.span_len)

    cdef Py_ssize_t new_tag(self) except -1:
        self.tags = <ZTag*>grow(self.tags, &self.ctags, self.ntags, sizeof(ZTag), 4096)
        self.ntags += 1
        return self.ntags - 1

    cdef Py_ssize_t new_ann(self) except -1:
        self.anns = <ZAnn*>grow(self.anns, &self.canns, self.nanns, sizeof(ZAnn), 256)
        self.nanns += 1
        return self.nanns - 1

    cdef Py_ssize_t new_span(self) except -1:
        self.spans = <ZSpan*>grow(self.spans, &self.cspans, self.nspans, sizeof(ZSpan), 256)
        memset(&self.spans[self.nspans], 0, sizeof(ZSpan))
        self.spans[self.nspans].name = <cptr>b""
        self.nspans += 1
        return self.nspans - 1

    cdef int text(self, object value, cptr* p, Py_ssize_t* n) except -1:
        """Point ``p``/``n`` at the UTF-8 of ``value`` (str or bytes), kept alive here."""
        raw = value.encode() if isinstance(value, str) else value
        self.keep.append(raw)
        p[0] = <cptr>PyBytes_AS_STRING(raw)
        n[0] = len(raw)
        return 0

    cdef Py_ssize_t endpoint(self, tuple ep) except -1:
        got = self.ep_ids.get(ep)
        if got is None:
            got = self.ep_ids[ep] = len(self.eps)
            self.eps.append(ep)
        return got

    # --- JSON ---------------------------------------------------------------------------------

    cdef int syntax(self, str message) except -1:
        """A body that is not JSON: orjson's message when it refuses it too."""
        try:
            orjson.loads(self.body)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e}") from None
        raise ValueError(f"invalid JSON: {message} at byte {self.pos}")

    cdef int semantic(self, object error) except -1:
        """A problem with a value: reported unless the body is not JSON at all (that first)."""
        try:
            orjson.loads(self.body)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e}") from None
        raise error

    cdef inline void ws(self) noexcept:
        cdef uint8_t c
        while self.pos < self.end:
            c = self.data[self.pos]
            if c == b' ' or c == b'\n' or c == b'\r' or c == b'\t':
                self.pos += 1
            else:
                return

    cdef inline int expect(self, uint8_t c) except -1:
        self.ws()
        if self.pos >= self.end or self.data[self.pos] != c:
            self.syntax(f"expected {chr(c)!r}")
        self.pos += 1
        return 0

    cdef int string(self, cptr* s, Py_ssize_t* n) except -1:
        """A string at ``pos`` (the opening quote): its UTF-8 content (unescaped if needed)."""
        cdef Py_ssize_t start, j
        cdef bint escaped = False
        cdef uint8_t c
        cdef uint32_t u, lo
        cdef cptr data = self.data
        cdef Py_ssize_t pos, end = self.end
        self.pos += 1
        start = self.pos
        while True:
            pos = self.pos
            while pos < end:  # the plain run
                c = data[pos]
                if c == b'"' or c == b'\\' or c < 0x20:
                    break
                pos += 1
            self.pos = pos
            if self.pos >= self.end:
                self.syntax("unterminated string")
            c = self.data[self.pos]
            if c == b'"':
                break
            if c < 0x20:
                self.syntax("control character in a string")
            if c == b'\\':
                escaped = True
                self.pos += 1
                if self.pos >= self.end:
                    self.syntax("unterminated string")
                c = self.data[self.pos]
                if c == b'u':
                    u = self.hex4()
                    if 0xD800 <= u < 0xDC00:
                        if (self.pos + 2 >= self.end or self.data[self.pos + 1] != b'\\'
                                or self.data[self.pos + 2] != b'u'):
                            self.syntax("lone surrogate")
                        self.pos += 2
                        lo = self.hex4()
                        if not 0xDC00 <= lo < 0xE000:
                            self.syntax("lone surrogate")
                    elif 0xDC00 <= u < 0xE000:
                        self.syntax("lone surrogate")
                elif c not in b'"\\/bfnrt':
                    self.syntax("invalid escape")
            self.pos += 1
        n[0] = self.pos - start
        s[0] = self.data + start
        self.pos += 1
        if escaped:
            self.text(orjson.loads((<const char*>self.data)[start - 1:self.pos]), s, n)
        return 0

    cdef uint32_t hex4(self) except? 0xFFFFFFFF:
        """The 4 hex digits after ``\\u`` (``pos`` at the ``u``; left at the last digit)."""
        cdef uint32_t u = 0
        cdef int j, d
        if self.pos + 4 >= self.end:
            self.syntax("truncated \\u escape")
        for j in range(1, 5):
            d = hexval(self.data[self.pos + j])
            if d < 0:
                self.syntax("invalid \\u escape")
            u = (u << 4) | d
        self.pos += 4
        return u

    cdef int number(self, int64_t* value) except -1:
        """A number at ``pos``: 1 with ``value`` when it is an integer that fits, else 0."""
        cdef Py_ssize_t start = self.pos
        cdef bint integer = True, overflow = False
        cdef uint64_t acc = 0
        cdef bint negative = False
        cdef uint8_t c
        cdef double d
        if self.data[self.pos] == b'-':
            negative = True
            self.pos += 1
        if self.pos >= self.end or not (b'0' <= self.data[self.pos] <= b'9'):
            self.syntax("invalid number")
        if self.data[self.pos] == b'0':
            self.pos += 1
        else:
            while self.pos < self.end and b'0' <= self.data[self.pos] <= b'9':
                c = self.data[self.pos] - 48
                if acc > (<uint64_t>1 << 62) // 5:
                    overflow = True
                else:
                    acc = acc * 10 + c
                self.pos += 1
        if self.pos < self.end and self.data[self.pos] == b'.':
            integer = False
            self.pos += 1
            if self.pos >= self.end or not (b'0' <= self.data[self.pos] <= b'9'):
                self.syntax("invalid number")
            while self.pos < self.end and b'0' <= self.data[self.pos] <= b'9':
                self.pos += 1
        if self.pos < self.end and (self.data[self.pos] == b'e' or self.data[self.pos] == b'E'):
            integer = False
            self.pos += 1
            if self.pos < self.end and (self.data[self.pos] == b'+' or self.data[self.pos] == b'-'):
                self.pos += 1
            if self.pos >= self.end or not (b'0' <= self.data[self.pos] <= b'9'):
                self.syntax("invalid number")
            while self.pos < self.end and b'0' <= self.data[self.pos] <= b'9':
                self.pos += 1
        if not integer:
            text = (<const char*>self.data)[start:self.pos]
            d = strtod(text, NULL)
            if isinf(d):
                self.syntax("number out of range")
            return 0
        if overflow:
            return 0
        value[0] = -<int64_t>acc if negative else <int64_t>acc
        return 1

    cdef int literal(self, const char* word, Py_ssize_t n) except -1:
        if self.end - self.pos < n or memcmp(self.data + self.pos, word, n) != 0:
            self.syntax("invalid literal")
        self.pos += n
        return 0

    cdef int skip(self) except -1:
        """Any value at ``pos`` (after whitespace), checked."""
        cdef cptr s
        cdef Py_ssize_t n
        cdef int64_t v
        cdef uint8_t c
        self.ws()
        if self.pos >= self.end:
            self.syntax("expected a value")
        c = self.data[self.pos]
        if c == b'"':
            self.string(&s, &n)
        elif c == b'{':
            self.depth += 1
            if self.depth > MAX_JSON_DEPTH:
                self.syntax("nested too deeply")
            self.pos += 1
            self.ws()
            if self.pos < self.end and self.data[self.pos] == b'}':
                self.pos += 1
            else:
                while True:
                    self.ws()
                    if self.pos >= self.end or self.data[self.pos] != b'"':
                        self.syntax("expected a key")
                    self.string(&s, &n)
                    self.expect(b':')
                    self.skip()
                    if self.sep(b'}'):
                        break
            self.depth -= 1
        elif c == b'[':
            self.depth += 1
            if self.depth > MAX_JSON_DEPTH:
                self.syntax("nested too deeply")
            self.pos += 1
            self.ws()
            if self.pos < self.end and self.data[self.pos] == b']':
                self.pos += 1
            else:
                while True:
                    self.skip()
                    if self.sep(b']'):
                        break
            self.depth -= 1
        elif c == b't':
            self.literal("true", 4)
        elif c == b'f':
            self.literal("false", 5)
        elif c == b'n':
            self.literal("null", 4)
        elif c == b'-' or b'0' <= c <= b'9':
            self.number(&v)
        else:
            self.syntax("expected a value")
        return 0

    cdef int sep(self, uint8_t close) except -1:
        """After an item: 0 at a comma (more follow), 1 at ``close`` (consumed)."""
        self.ws()
        if self.pos < self.end:
            if self.data[self.pos] == b',':
                self.pos += 1
                return 0
            if self.data[self.pos] == close:
                self.pos += 1
                return 1
        self.syntax(f"expected ',' or {chr(close)!r}")

    cdef inline int peek(self) except -1:
        """The first byte of the next value (after whitespace)."""
        self.ws()
        if self.pos >= self.end:
            self.syntax("expected a value")
        return self.data[self.pos]

    cdef inline bint is_null(self) except -1:
        if self.peek() == b'n':
            self.literal("null", 4)
            return True
        return False

    cdef int json(self, bytes body) except -1:
        cdef Py_ssize_t i = 0
        self.body = body
        self.data = <cptr>PyBytes_AS_STRING(body)
        self.pos = 0
        self.end = len(body)
        if not utf8_valid(self.data, self.end):
            self.syntax("not UTF-8")
        if self.peek() != b'[':
            self.skip()
            self.ws()
            if self.pos != self.end:
                self.syntax("unexpected content after the document")
            doc = orjson.loads(body)
            raise ValueError(
                "invalid Zipkin v2 JSON: the body must be a JSON array of spans, "
                f"got {zipkin()._type_name(doc)}"
            )
        self.pos += 1
        self.depth = 1
        self.ws()
        if self.pos < self.end and self.data[self.pos] == b']':
            self.pos += 1
        else:
            while True:
                self.json_span(i)
                i += 1
                if self.sep(b']'):
                    break
        self.ws()
        if self.pos != self.end:
            self.syntax("unexpected content after the document")
        return 0

    cdef int json_span(self, Py_ssize_t i) except -1:
        cdef Py_ssize_t start, si, t_mark = self.ntags, a_mark = self.nanns
        cdef cptr k
        cdef cptr s
        cdef Py_ssize_t kn, n
        cdef int c, have = 0
        cdef bint punt = False
        cdef int64_t v
        cdef ZSpan* sp
        c = self.peek()
        start = self.pos
        if c != b'{':
            self.skip()
            self.semantic(ValueError(
                f"spans[{i}]: expected a span object, got "
                f"{zipkin()._type_name(orjson.loads((<const char*>self.data)[start:self.pos]))}"
            ))
        si = self.new_span()
        self.depth += 1
        self.pos += 1
        self.ws()
        if self.pos < self.end and self.data[self.pos] == b'}':
            self.pos += 1
            punt = True  # no ids: the checks name what is missing
        else:
            while True:
                self.ws()
                if self.pos >= self.end or self.data[self.pos] != b'"':
                    self.syntax("expected a key")
                self.string(&k, &kn)
                self.expect(b':')
                c = self.peek()
                sp = &self.spans[si]
                if kn == 7 and memcmp(k, b"traceId", 7) == 0:
                    have &= ~1
                    if c == b'"':
                        self.string(&s, &n)
                        if 16 <= n <= 32 and hex_id(s, n, sp.trace, 16):
                            have |= 1
                    else:
                        self.skip()
                elif kn == 2 and memcmp(k, b"id", 2) == 0:
                    have &= ~2
                    if c == b'"':
                        self.string(&s, &n)
                        if n == 16 and hex_id(s, n, sp.span, 8):
                            have |= 2
                    else:
                        self.skip()
                elif kn == 8 and memcmp(k, b"parentId", 8) == 0:
                    sp.has_parent = False
                    if c == b'"':
                        self.string(&s, &n)
                        if n == 16 and hex_id(s, n, sp.parent, 8):
                            sp.has_parent = True
                        elif n:
                            punt = True
                    elif not self.is_null():
                        self.skip()
                        punt = True
                elif kn == 4 and memcmp(k, b"name", 4) == 0:
                    if c == b'"':
                        self.string(&sp.name, &sp.name_n)
                    elif self.is_null():
                        sp.name, sp.name_n = <cptr>b"", 0
                    else:
                        self.skip()
                        punt = True
                elif kn == 4 and memcmp(k, b"kind", 4) == 0:
                    sp.kind = 0
                    if c == b'"':
                        self.string(&s, &n)
                        sp.kind = json_kind(s, n)
                        if not sp.kind:
                            punt = True
                    elif not self.is_null():
                        self.skip()
                        punt = True
                elif kn == 9 and memcmp(k, b"timestamp", 9) == 0:
                    sp.ts = 0
                    if c == b'-' or b'0' <= c <= b'9':
                        if self.number(&v) and 0 <= v <= <int64_t>MAX_MICROS:
                            sp.ts = <uint64_t>v
                        else:
                            punt = True
                    elif not self.is_null():
                        self.skip()
                        punt = True
                elif kn == 8 and memcmp(k, b"duration", 8) == 0:
                    sp.dur = 0
                    if c == b'-' or b'0' <= c <= b'9':
                        if self.number(&v) and -<int64_t>MAX_MICROS <= v <= <int64_t>MAX_MICROS:
                            sp.dur = v
                        else:
                            punt = True
                    elif not self.is_null():
                        self.skip()
                        punt = True
                elif kn == 13 and memcmp(k, b"localEndpoint", 13) == 0:
                    sp.local = self.json_endpoint(c, i, "localEndpoint", &punt)
                elif kn == 14 and memcmp(k, b"remoteEndpoint", 14) == 0:
                    sp.remote = self.json_endpoint(c, i, "remoteEndpoint", &punt)
                elif kn == 4 and memcmp(k, b"tags", 4) == 0:
                    if c == b'{':
                        if not self.json_tags(si):
                            punt = True
                    elif self.is_null():
                        sp.t0, sp.tn = self.ntags, 0
                    else:
                        self.skip()
                        punt = True
                elif kn == 11 and memcmp(k, b"annotations", 11) == 0:
                    if c == b'[':
                        if not self.json_annotations(si):
                            punt = True
                    elif self.is_null():
                        sp.a0, sp.an = self.nanns, 0
                    else:
                        self.skip()
                        punt = True
                elif (kn == 6 and memcmp(k, b"shared", 6) == 0) or (
                        kn == 5 and memcmp(k, b"debug", 5) == 0):
                    if c == b't':
                        self.literal("true", 4)
                        if kn == 6:
                            sp.shared = True
                    elif c == b'f':
                        self.literal("false", 5)
                        if kn == 6:
                            sp.shared = False
                    elif self.is_null():
                        if kn == 6:
                            sp.shared = False
                    else:
                        self.skip()
                        punt = True
                else:
                    self.skip()
                if self.sep(b'}'):
                    break
        self.depth -= 1
        if have != 3:
            punt = True
        if punt:  # the Python checks: every field, and a message naming the first bad one
            self.ntags, self.nanns = t_mark, a_mark
            raw = (<const char*>self.data)[start:self.pos]
            try:
                checked = zipkin()._normalize_json_span(i, orjson.loads(raw))
            except ValueError as e:
                self.semantic(e)
            self.fill(si, checked)
        return 0

    cdef Py_ssize_t json_endpoint(self, int c, Py_ssize_t i, str field, bint* punt) except -1:
        cdef Py_ssize_t start = self.pos
        if c == b'{':
            self.skip()
            raw = (<const char*>self.data)[start:self.pos]
            got = self.ep_raw.get(raw)
            if got is None:
                try:
                    ep = zipkin()._json_endpoint(orjson.loads(raw), f"spans[{i}].{field}")
                except ValueError:  # the span's checks name it, in their order
                    punt[0] = True
                    return 0
                got = self.ep_raw[raw] = self.endpoint(ep)
            return got
        if not self.is_null():
            self.skip()
            punt[0] = True
        return 0

    cdef bint json_tags(self, Py_ssize_t si) except -1:
        """A tags object of string values into the model; False (and skipped) otherwise."""
        cdef Py_ssize_t t0 = self.ntags, ti
        cdef ZTag* t
        cdef bint ok = True
        self.depth += 1
        self.pos += 1
        self.ws()
        if self.pos < self.end and self.data[self.pos] == b'}':
            self.pos += 1
        else:
            while True:
                self.ws()
                if self.pos >= self.end or self.data[self.pos] != b'"':
                    self.syntax("expected a key")
                ti = self.new_tag()
                t = &self.tags[ti]
                self.string(&t.k, &t.kn)
                self.expect(b':')
                if self.peek() == b'"':
                    t = &self.tags[ti]
                    self.string(&t.v, &t.vn)
                else:
                    self.skip()
                    ok = False
                if self.sep(b'}'):
                    break
        self.depth -= 1
        self.spans[si].t0 = t0
        self.spans[si].tn = self.ntags - t0
        return ok

    cdef bint json_annotations(self, Py_ssize_t si) except -1:
        """An annotations array in the common shape into the model; False otherwise."""
        cdef Py_ssize_t a0 = self.nanns, ai
        cdef ZAnn* a
        cdef cptr k
        cdef Py_ssize_t kn
        cdef int64_t v
        cdef int c, have
        cdef bint ok = True
        self.depth += 1
        self.pos += 1
        self.ws()
        if self.pos < self.end and self.data[self.pos] == b']':
            self.pos += 1
        else:
            while True:
                if self.peek() != b'{':
                    self.skip()
                    ok = False
                else:
                    ai = self.new_ann()
                    have = 0
                    self.depth += 1
                    self.pos += 1
                    self.ws()
                    if self.pos < self.end and self.data[self.pos] == b'}':
                        self.pos += 1
                    else:
                        while True:
                            self.ws()
                            if self.pos >= self.end or self.data[self.pos] != b'"':
                                self.syntax("expected a key")
                            self.string(&k, &kn)
                            self.expect(b':')
                            c = self.peek()
                            a = &self.anns[ai]
                            if kn == 9 and memcmp(k, b"timestamp", 9) == 0:
                                have &= ~1
                                if (c == b'-' or b'0' <= c <= b'9'):
                                    if self.number(&v) and 0 <= v <= <int64_t>MAX_MICROS:
                                        a.ts = <uint64_t>v
                                        have |= 1
                                else:
                                    self.skip()
                            elif kn == 5 and memcmp(k, b"value", 5) == 0:
                                have &= ~2
                                if c == b'"':
                                    self.string(&a.v, &a.vn)
                                    have |= 2
                                else:
                                    self.skip()
                            else:
                                self.skip()
                            if self.sep(b'}'):
                                break
                    self.depth -= 1
                    if have != 3:
                        ok = False
                if self.sep(b']'):
                    break
        self.depth -= 1
        self.spans[si].a0 = a0
        self.spans[si].an = self.nanns - a0
        return ok

    cdef int fill(self, Py_ssize_t si, tuple checked) except -1:
        """A span from the checked values of ``zipkin._normalize_json_span``."""
        cdef ZSpan* sp
        cdef Py_ssize_t j
        (trace_id, span_id, parent_id, name, kind, timestamp, duration, local, remote,
         annotations, tags, shared) = checked
        local_id = self.endpoint(local)
        remote_id = self.endpoint(remote)
        sp = &self.spans[si]
        memcpy(sp.trace, <cptr>PyBytes_AS_STRING(trace_id), 16)
        memcpy(sp.span, <cptr>PyBytes_AS_STRING(span_id), 8)
        sp.has_parent = len(parent_id) == 8
        if sp.has_parent:
            memcpy(sp.parent, <cptr>PyBytes_AS_STRING(parent_id), 8)
        self.text(name, &sp.name, &sp.name_n)
        sp.kind = kind
        sp.ts = timestamp
        sp.dur = duration
        sp.local = local_id
        sp.remote = remote_id
        sp.shared = shared
        sp.t0 = self.ntags
        for key, value in tags.items():
            j = self.new_tag()
            self.text(key, &self.tags[j].k, &self.tags[j].kn)
            self.text(value, &self.tags[j].v, &self.tags[j].vn)
        sp = &self.spans[si]
        sp.tn = self.ntags - sp.t0
        sp.a0 = self.nanns
        for ts, value in annotations:
            j = self.new_ann()
            self.anns[j].ts = ts
            self.text(value, &self.anns[j].v, &self.anns[j].vn)
        sp = &self.spans[si]
        sp.an = self.nanns - sp.a0
        return 0

    # --- proto3 ---------------------------------------------------------------------------------

    cdef int pendpoint(self, Py_ssize_t end, list fields) except -1:
        """An ``Endpoint`` occurrence into ``fields`` [service, ipv4, ipv6, port] (they merge)."""
        cdef int wire, number
        cdef cptr s
        cdef Py_ssize_t n
        cdef uint64_t raw
        while (number := pb_field(&self.pr, end, &wire)):
            if 1 <= number <= 3 and wire == 2:
                pb_bytes(&self.pr, end, &s, &n, number == 1)
                fields[number - 1] = (<const char*>s)[:n]
            elif number == 4 and wire == 0:
                raw = pb_varint(&self.pr, end)
                fields[3] = <int32_t><uint32_t>raw
            else:
                pb_skip(&self.pr, wire, end)
        return 0

    cdef int pspan(self, Py_ssize_t start, Py_ssize_t end, Py_ssize_t i) except -1:
        """One ``zipkin.proto3.Span`` into the model (fields checked as the Python reader did)."""
        cdef int wire, number, w, f
        cdef Py_ssize_t si = self.new_span(), stop, j, ai
        cdef cptr s
        cdef Py_ssize_t n
        cdef cptr trace = <cptr>b""
        cdef cptr sid = <cptr>b""
        cdef cptr parent = <cptr>b""
        cdef Py_ssize_t trace_n = 0, sid_n = 0, parent_n = 0
        cdef uint64_t ts = 0, dur = 0, raw
        cdef ZSpan* sp
        cdef ZTag* t
        cdef list local = None
        cdef list remote = None
        self.pr.pos = start
        self.spans[si].t0 = self.ntags
        self.spans[si].a0 = self.nanns
        while (number := pb_field(&self.pr, end, &wire)):
            sp = &self.spans[si]
            if number == 1 and wire == 2:
                pb_bytes(&self.pr, end, &trace, &trace_n, False)
            elif number == 2 and wire == 2:
                pb_bytes(&self.pr, end, &parent, &parent_n, False)
            elif number == 3 and wire == 2:
                pb_bytes(&self.pr, end, &sid, &sid_n, False)
            elif number == 4 and wire == 0:
                raw = pb_varint(&self.pr, end)
                sp.kind = <int32_t><uint32_t>raw
            elif number == 5 and wire == 2:
                pb_bytes(&self.pr, end, &sp.name, &sp.name_n, True)
            elif number == 6 and wire == 1:
                ts = pb_fixed64(&self.pr, end)
            elif number == 7 and wire == 0:
                dur = pb_varint(&self.pr, end)
            elif (number == 8 or number == 9) and wire == 2:
                stop = pb_len(&self.pr, end)
                if number == 8:
                    local = local if local is not None else [b"", b"", b"", 0]
                    self.pendpoint(stop, local)
                else:
                    remote = remote if remote is not None else [b"", b"", b"", 0]
                    self.pendpoint(stop, remote)
            elif number == 10 and wire == 2:
                stop = pb_len(&self.pr, end)
                ai = self.new_ann()
                self.anns[ai].ts = 0
                self.anns[ai].v = <cptr>b""
                self.anns[ai].vn = 0
                while (f := pb_field(&self.pr, stop, &w)):
                    if f == 1 and w == 1:
                        self.anns[ai].ts = pb_fixed64(&self.pr, stop)
                    elif f == 2 and w == 2:
                        pb_bytes(&self.pr, stop, &self.anns[ai].v, &self.anns[ai].vn, True)
                    else:
                        pb_skip(&self.pr, w, stop)
            elif number == 11 and wire == 2:
                stop = pb_len(&self.pr, end)
                j = self.new_tag()
                t = &self.tags[j]
                t.k = t.v = <cptr>b""
                t.kn = t.vn = 0
                while (f := pb_field(&self.pr, stop, &w)):
                    if (f == 1 or f == 2) and w == 2:
                        t = &self.tags[j]
                        if f == 1:
                            pb_bytes(&self.pr, stop, &t.k, &t.kn, True)
                        else:
                            pb_bytes(&self.pr, stop, &t.v, &t.vn, True)
                    else:
                        # as upb: an entry with an unknown field (a known number of the
                        # wrong wire type too) is kept as an unknown field of the span,
                        # not a tag
                        pb_skip(&self.pr, w, stop)
                        self.ntags = j
            elif (number == 12 or number == 13) and wire == 0:
                if number == 13:
                    sp.shared = pb_varint(&self.pr, end) != 0
                else:
                    pb_varint(&self.pr, end)
            else:
                pb_skip(&self.pr, wire, end)
        sp = &self.spans[si]
        sp.tn = self.ntags - sp.t0
        sp.an = self.nanns - sp.a0
        sp.kind = proto_kind(sp.kind)
        # the checks
        if trace_n == 16:
            memcpy(sp.trace, trace, 16)
        elif trace_n == 8:
            memcpy(sp.trace + 8, trace, 8)
        else:
            raise ValueError(f"spans[{i}].trace_id: expected 8 or 16 bytes, got {trace_n}")
        if sid_n != 8:
            raise ValueError(f"spans[{i}].id: expected 8 bytes, got {sid_n}")
        memcpy(sp.span, sid, 8)
        if parent_n:
            if parent_n != 8:
                raise ValueError(f"spans[{i}].parent_id: expected 8 bytes, got {parent_n}")
            memcpy(sp.parent, parent, 8)
            sp.has_parent = True
        if ts > MAX_MICROS or dur > MAX_MICROS:
            raise ValueError(f"spans[{i}]: timestamp or duration out of range")
        for j in range(sp.an):
            if self.anns[sp.a0 + j].ts > MAX_MICROS:
                raise ValueError(
                    f"spans[{i}].annotations[{j}].timestamp: out of range: "
                    f"{self.anns[sp.a0 + j].ts}"
                )
        sp.ts = ts
        sp.dur = <int64_t>dur
        if local is not None:
            sp.local = self.proto_endpoint(local, f"spans[{i}].local_endpoint")
        if remote is not None:
            self.spans[si].remote = self.proto_endpoint(remote, f"spans[{i}].remote_endpoint")
        return 0

    cdef Py_ssize_t proto_endpoint(self, list fields, str where) except -1:
        key = tuple(fields)
        got = self.ep_raw.get(key)
        if got is None:
            service, ipv4, ipv6, port = fields
            ep = zipkin()._proto_endpoint(service.decode(), ipv4, ipv6, port, where)
            got = self.ep_raw[key] = self.endpoint(ep)
        return got

    cdef int proto(self, bytes body) except -1:
        cdef int wire, number
        cdef Py_ssize_t stop, i = 0
        cdef list spans = []
        self.body = body
        self.data = self.pr.data = <cptr>PyBytes_AS_STRING(body)
        self.pr.pos = 0
        self.end = len(body)
        try:
            while (number := pb_field(&self.pr, self.end, &wire)):
                if number == 1 and wire == 2:
                    stop = pb_len(&self.pr, self.end)
                    spans.append((self.pr.pos, stop))
                    self.check_span(stop)
                else:
                    pb_skip(&self.pr, wire, self.end)
        except ValueError as e:
            raise ValueError(f"invalid Zipkin protobuf (zipkin.proto3.ListOfSpans): {e}") from None
        for i, (start, stop) in enumerate(spans):
            self.pspan(start, stop, i)
        return 0

    cdef int check_span(self, Py_ssize_t end) except -1:
        """The wire format of a span (all of it, before any span is used): as the protobuf
        library, a request with any malformed span is refused as not protobuf."""
        cdef int wire, number, w, f
        cdef Py_ssize_t stop, save = self.pr.pos
        cdef cptr s
        cdef Py_ssize_t n
        while (number := pb_field(&self.pr, end, &wire)):
            if number == 5 and wire == 2:
                pb_bytes(&self.pr, end, &s, &n, True)
            elif number in (8, 9, 10, 11) and wire == 2:
                stop = pb_len(&self.pr, end)
                while (f := pb_field(&self.pr, stop, &w)):
                    if w == 2 and ((number == 10 and f == 2) or (number == 11 and f <= 2)
                                   or (number != 10 and number != 11 and f == 1)):
                        pb_bytes(&self.pr, stop, &s, &n, True)
                    elif w == 2:
                        pb_bytes(&self.pr, stop, &s, &n, False)
                    else:
                        pb_skip(&self.pr, w, stop)
            else:
                pb_skip(&self.pr, wire, end)
        self.pr.pos = end
        return 0

    # --- OTLP encoding -------------------------------------------------------------------------

    cdef inline Py_ssize_t dedupe(self, Py_ssize_t t0, Py_ssize_t tn, Py_ssize_t* eff) except -1:
        return dedupe(<const char*>self.tags, sizeof(ZTag), t0, tn, eff)

    cdef dict tag_dict(self, Py_ssize_t* eff, Py_ssize_t m):
        cdef Py_ssize_t q
        cdef ZTag* t
        out = {}
        for q in range(m):
            t = &self.tags[eff[q]]
            out[(<const char*>t.k)[:t.kn].decode()] = (<const char*>t.v)[:t.vn].decode()
        return out

    cdef Py_ssize_t service_group(self, ZSpan* sp, Py_ssize_t* eff, Py_ssize_t m) except -1:
        service = self.eps[sp.local][0]
        got = self.svc_ids.get(service)
        if got is None:
            got = self.svc_ids[service] = len(self.svcs)
            self.svcs.append(zipkin()._resource(service, self.tag_dict(eff, m)))
        return got

    cdef Py_ssize_t pair(self, ZSpan* sp) except -1:
        key = (sp.local << 32) | sp.remote
        got = self.pair_ids.get(key)
        if got is None:
            got = self.pair_ids[key] = len(self.pairs)
            fields = []
            mask = 0
            for name, kv in zipkin()._endpoint_attributes(self.eps[sp.local], self.eps[sp.remote]):
                fields.append(b"\x4a" + bytes(put_len(len(kv))) + kv)
                mask |= 1 << _ENDPOINT_KEYS.index(name)
            self.pairs.append((b"".join(fields), mask))
        return got

    cdef int encode_span(self, Py_ssize_t i, Py_ssize_t* eff, int* cls) except -1:
        cdef ZSpan* sp = &self.spans[i]
        cdef Py_ssize_t m, q, j, size, nev, lk
        cdef Py_ssize_t where[K_COUNT]
        cdef ZTag* t
        cdef ZAnn* a
        cdef int c, kind = sp.kind, code = 0, mask
        cdef cptr lib = <cptr>b""
        cdef cptr state = <cptr>b""
        cdef cptr msg = <cptr>b""
        cdef Py_ssize_t lib_n = 0, state_n = 0, msg_n = 0, pi, sg, sc, links_n = 0
        cdef i128 start, end
        cdef uint8_t* p
        cdef bytes pair_fields, raw
        cdef list events = None
        cdef list links = None
        for c in range(K_COUNT):
            where[c] = -1
        m = self.dedupe(sp.t0, sp.tn, eff)
        for q in range(m):
            t = &self.tags[eff[q]]
            c = classify(t.k, t.kn)
            cls[q] = c
            if K_SOURCE <= c <= K_LINK0:
                where[c] = q
        # service (resource) and scope
        if sp.local != self.last_local:
            self.last_sg = self.service_group(sp, eff, m)
            self.last_local = sp.local
        sg = self.last_sg
        if where[K_LIB_NAME] >= 0 and self.tags[eff[where[K_LIB_NAME]]].vn:
            t = &self.tags[eff[where[K_LIB_NAME]]]
            lib, lib_n = t.v, t.vn
        elif where[K_SCOPE_NAME] >= 0:
            t = &self.tags[eff[where[K_SCOPE_NAME]]]
            lib, lib_n = t.v, t.vn
        if sg != self.last_sg_of_scope() or not (
                lib_n == self.last_lib_n and memcmp(lib, self.last_lib, lib_n) == 0):
            self.last_scope = self.scope_group(sg, lib, lib_n, eff, where)
            self.last_lib, self.last_lib_n = lib, lib_n
        sc = self.last_scope
        # rules that take tags off the attributes
        if where[K_TRACESTATE] >= 0:
            t = &self.tags[eff[where[K_TRACESTATE]]]
            cls[where[K_TRACESTATE]] = -1
            state, state_n = t.v, t.vn
        if not kind and where[K_KIND] >= 0:
            t = &self.tags[eff[where[K_KIND]]]
            cls[where[K_KIND]] = -1
            if t.vn == 8 and memcmp(t.v, b"internal", 8) == 0:
                kind = KIND_INTERNAL
        if where[K_STATUS_CODE] >= 0:
            t = &self.tags[eff[where[K_STATUS_CODE]]]
            cls[where[K_STATUS_CODE]] = -1
            code = _STATUS_NAMES.get((<const char*>t.v)[:t.vn], 0)
            if where[K_STATUS_DESC] >= 0:
                t = &self.tags[eff[where[K_STATUS_DESC]]]
                cls[where[K_STATUS_DESC]] = -1
                msg, msg_n = t.v, t.vn
        if where[K_ERROR] >= 0:
            t = &self.tags[eff[where[K_ERROR]]]
            code = STATUS_ERROR
            if t.vn == 4 and memcmp(t.v, b"true", 4) == 0:
                cls[where[K_ERROR]] = -1
            elif not msg_n:
                msg, msg_n = t.v, t.vn
        if where[K_LINK0] >= 0:
            links, lk = zipkin()._links(self.tag_dict(eff, m), f"spans[{i}]")
            for q in range(m):
                if cls[q] == K_LINK0 or cls[q] == K_LINK:
                    t = &self.tags[eff[q]]
                    if link_index(t.k + 10, t.kn - 10) < lk:
                        cls[q] = -1
            for raw in links:
                links_n += ldsize(len(raw))
        key = (sp.local << 32) | sp.remote
        if key != self.last_pair_key:
            self.last_pair = self.pair(sp)
            self.last_pair_key = key
        pair_fields, mask = self.pairs[self.last_pair]
        # times
        start = <i128>sp.ts * 1000
        end = start + <i128>sp.dur * 1000
        if end < 0:  # negative duration: keep end < start so the distributor rejects the span
            start, end = 1, 0
        if end > U64_MAX:
            raise ValueError(f"spans[{i}]: timestamp + duration is out of range")
        # size
        size = 10 + 18 + len(pair_fields) + links_n
        if state_n:
            size += ldsize(state_n)
        if sp.has_parent and memcmp(sp.parent, sp.span, 8) != 0:
            size += 10
        if sp.name_n:
            size += ldsize(sp.name_n)
        if kind:
            size += 2
        if start:
            size += 9
        if end:
            size += 9
        for q in range(m):
            c = cls[q]
            if c == K_PLAIN or c == K_STATUS_DESC or c == K_ERROR or c == K_KIND or c == K_LINK \
                    or (c >= K_ENDPOINT and not (mask >> (c - K_ENDPOINT)) & 1):
                t = &self.tags[eff[q]]
                size += ldsize(kv_size(t.k, t.kn, t.v, t.vn))
            else:
                cls[q] = -1
        if not sp.ts:
            size += ldsize(len(_ABSENT_KV))
        if sp.shared:
            size += ldsize(len(_SHARED_KV))
        for j in range(sp.a0, sp.a0 + sp.an):
            a = &self.anns[j]
            if needs_python(a.v, a.vn):
                if events is None:
                    events = []
                raw = zipkin()._event_bytes(a.ts, (<const char*>a.v)[:a.vn].decode())
                events.append(raw)
                size += ldsize(len(raw))
            else:
                size += ldsize((9 if a.ts else 0) + (ldsize(a.vn) if a.vn else 0))
        if code or msg_n:
            size += ldsize(status_size(msg_n, code))
        # write
        reserve(&self.out, size)
        self.span_off[i] = self.out.n
        p = self.out.p + self.out.n
        p = put_ld(p, 0x0A, sp.trace, 16)
        p = put_ld(p, 0x12, sp.span, 8)
        if state_n:
            p = put_ld(p, 0x1A, state, state_n)
        if sp.has_parent and memcmp(sp.parent, sp.span, 8) != 0:
            p = put_ld(p, 0x22, sp.parent, 8)
        if sp.name_n:
            p = put_ld(p, 0x2A, sp.name, sp.name_n)
        if kind:
            p[0] = 0x30
            p[1] = <uint8_t>kind
            p += 2
        if start:
            p[0] = 0x39
            p = put_fixed64(p + 1, <uint64_t>start)
        if end:
            p[0] = 0x41
            p = put_fixed64(p + 1, <uint64_t>end)
        for q in range(m):
            if cls[q] >= 0:
                t = &self.tags[eff[q]]
                p[0] = 0x4A
                p = put_varint(p + 1, <uint64_t>kv_size(t.k, t.kn, t.v, t.vn))
                p = put_kv(p, t.k, t.kn, t.v, t.vn)
        if pair_fields:
            memcpy(p, PyBytes_AS_STRING(pair_fields), len(pair_fields))
            p += len(pair_fields)
        if not sp.ts:
            p = put_ld(p, 0x4A, <cptr>PyBytes_AS_STRING(_ABSENT_KV), len(_ABSENT_KV))
        if sp.shared:
            p = put_ld(p, 0x4A, <cptr>PyBytes_AS_STRING(_SHARED_KV), len(_SHARED_KV))
        nev = 0
        for j in range(sp.a0, sp.a0 + sp.an):
            a = &self.anns[j]
            if needs_python(a.v, a.vn):
                raw = events[nev]
                nev += 1
                p = put_ld(p, 0x5A, <cptr>PyBytes_AS_STRING(raw), len(raw))
            else:
                p[0] = 0x5A
                p = put_varint(p + 1, <uint64_t>((9 if a.ts else 0) + (ldsize(a.vn) if a.vn else 0)))
                if a.ts:
                    p[0] = 0x09
                    p = put_fixed64(p + 1, a.ts * 1000)
                if a.vn:
                    p = put_ld(p, 0x12, a.v, a.vn)
        if links is not None:
            for raw in links:
                p = put_ld(p, 0x6A, <cptr>PyBytes_AS_STRING(raw), len(raw))
        if code or msg_n:
            p = put_status(p, msg, msg_n, code)
        self.out.n = p - self.out.p
        self.span_len[i] = self.out.n - self.span_off[i]
        self.span_sg[i] = sc
        return 0

    cdef Py_ssize_t last_sg_of_scope(self) noexcept:
        return -1 if self.last_scope < 0 else self.scopes[self.last_scope][0]

    cdef Py_ssize_t scope_group(self, Py_ssize_t sg, cptr lib, Py_ssize_t lib_n,
                                Py_ssize_t* eff, Py_ssize_t* where) except -1:
        cdef ZTag* t
        cdef cptr version = <cptr>b""
        cdef Py_ssize_t version_n = 0
        name = (<const char*>lib)[:lib_n]
        key = (sg, name)
        got = self.scope_ids.get(key)
        if got is None:
            got = self.scope_ids[key] = len(self.scopes)
            scope = b""
            if lib_n:
                if where[K_LIB_VERSION] >= 0 and self.tags[eff[where[K_LIB_VERSION]]].vn:
                    t = &self.tags[eff[where[K_LIB_VERSION]]]
                    version, version_n = t.v, t.vn
                elif where[K_SCOPE_VERSION] >= 0:
                    t = &self.tags[eff[where[K_SCOPE_VERSION]]]
                    version, version_n = t.v, t.vn
                scope = b"\x0a" + bytes(put_len(lib_n)) + name
                if version_n:
                    scope += b"\x12" + bytes(put_len(version_n)) + (<const char*>version)[:version_n]
            self.scopes.append((sg, scope))
        return got

    cdef bytes encode(self):
        """The serialized OTLP ``ExportTraceServiceRequest`` of the spans read."""
        cdef Py_ssize_t i, n = self.nspans
        keyset_build()
        self.svc_ids, self.svcs = {}, []
        self.scope_ids, self.scopes = {}, []
        self.pair_ids, self.pairs = {}, []
        self.last_local = self.last_sg = self.last_scope = self.last_pair_key = -1
        self.last_lib, self.last_lib_n = <cptr>b"", -1
        self.span_sg = <Py_ssize_t*>PyMem_Realloc(NULL, (n + 1) * sizeof(Py_ssize_t))
        self.span_off = <Py_ssize_t*>PyMem_Realloc(NULL, (n + 1) * sizeof(Py_ssize_t))
        self.span_len = <Py_ssize_t*>PyMem_Realloc(NULL, (n + 1) * sizeof(Py_ssize_t))
        self.eff = <Py_ssize_t*>PyMem_Realloc(NULL, (self.ntags + 1) * sizeof(Py_ssize_t))
        self.cls = <int*>PyMem_Realloc(NULL, (self.ntags + 1) * sizeof(int))
        if (self.span_sg == NULL or self.span_off == NULL or self.span_len == NULL
                or self.eff == NULL or self.cls == NULL):
            raise MemoryError()
        for i in range(n):
            self.encode_span(i, self.eff, self.cls)
        return assemble(self.out.p, self.span_off, self.span_len, self.span_sg, n, self.svcs,
                        self.scopes, False)


cdef inline Py_ssize_t kv_size(cptr k, Py_ssize_t kn, cptr v, Py_ssize_t vn) noexcept:
    """A ``KeyValue`` with a string value (the key is left out when empty, as protobuf does)."""
    return (ldsize(kn) if kn else 0) + ldsize(ldsize(vn))


cdef inline uint8_t* put_kv(uint8_t* p, cptr k, Py_ssize_t kn, cptr v, Py_ssize_t vn) noexcept:
    if kn:
        p = put_ld(p, 0x0A, k, kn)
    p[0] = 0x12
    p = put_varint(p + 1, <uint64_t>ldsize(vn))
    return put_ld(p, 0x0A, v, vn)


cdef bytearray put_len(Py_ssize_t n):
    cdef uint8_t buf[10]
    cdef uint8_t* end = put_varint(buf, <uint64_t>n)
    return bytearray((<const char*>buf)[:end - buf])


cdef inline bint needs_python(cptr v, Py_ssize_t n) noexcept:
    """An annotation value that may be in one of the event forms with attributes."""
    if n >= 2 and v[0] == b'{' and v[n - 1] == b'}':
        return True
    return memchr(v, b'|', n) != NULL


cdef extern from "string.h":
    const void* memchr(const void* s, int c, size_t n)


cdef Py_ssize_t link_index(cptr s, Py_ssize_t n) noexcept:
    """N of an ``otlp.link.N`` key (decimal, no leading zeros); a large number otherwise."""
    cdef Py_ssize_t v = 0, j
    if n < 1 or n > 4 or (s[0] == b'0' and n > 1):
        return 1 << 30
    for j in range(n):
        if not b'0' <= s[j] <= b'9':
            return 1 << 30
        v = v * 10 + s[j] - 48
    return v


cdef inline int json_kind(cptr s, Py_ssize_t n) noexcept:
    if n == 6 and memcmp(s, b"CLIENT", 6) == 0:
        return 3
    if n == 6 and memcmp(s, b"SERVER", 6) == 0:
        return 2
    if n == 8 and memcmp(s, b"PRODUCER", 8) == 0:
        return 4
    if n == 8 and memcmp(s, b"CONSUMER", 8) == 0:
        return 5
    return 0


cdef inline int proto_kind(int kind) noexcept:
    if kind == 1:
        return 3
    if kind == 2:
        return 2
    if kind == 3:
        return 4
    if kind == 4:
        return 5
    return 0


# ---------------------------------------------------------------------------------------------
# entry points (the Python API with its documentation is threadline.model.zipkin)


def v2_json_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a Zipkin v2 JSON body (``[span, ...]``); ValueError if bad."""
    cdef Request request = Request()
    request.json(bytes(body))
    return request.encode()


def v2_proto_to_otlp(body: bytes) -> bytes:
    """Serialized OTLP request of a ``zipkin.proto3.ListOfSpans`` body; ValueError if bad."""
    cdef Request request = Request()
    request.proto(bytes(body))
    return request.encode()
