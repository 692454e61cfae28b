# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled Jaeger → OTLP translation: thrift (binary, compact) and api_v2 protobuf bytes in,
serialized OTLP ``ExportTraceServiceRequest`` bytes out.

Three readers fill one C-level model of a batch (spans, tags, logs and references held as
pointers into the request bytes, no Python objects per span); one encoder applies the
translation rules documented in ``threadline.model.jaeger`` and writes the OTLP protobuf wire
bytes directly. Python objects are made only per process (resource) and per instrumentation
scope, and for values that need Python's own formatting (``str()`` of a non-string tag, ``int()``
of a string ``http.status_code``).

The readers are strict: truncation, wrong types of required parts, missing required fields,
absurd list sizes and trailing bytes raise ``ValueError``; unknown fields (thrift) and unknown
field numbers or wire types (protobuf) are skipped. Thrift text that is not UTF-8 has its bad
bytes replaced with U+FFFD; a protobuf string field that is not UTF-8 is an error, as for the
protobuf library.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
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

cdef enum:
    T_STOP = 0
    T_BOOL = 2
    T_BYTE = 3
    T_DOUBLE = 4
    T_I16 = 6
    T_I32 = 8
    T_I64 = 10
    T_STRING = 11
    T_STRUCT = 12
    T_MAP = 13
    T_SET = 14
    T_LIST = 15
    MAX_DEPTH = 32
    # tag value types (thrift TagType numbering)
    V_STR = 0
    V_DOUBLE = 1
    V_BOOL = 2
    V_LONG = 3
    V_BIN = 4
    # special tag keys
    K_PLAIN = 0
    K_RESOURCE = 1
    K_KIND = 2
    K_ERROR = 3
    K_OTEL_CODE = 4
    K_OTEL_DESC = 5
    K_HTTP_CODE = 6
    K_HTTP_MSG = 7
    K_TRACESTATE = 8
    K_SCOPE_NAME = 9
    K_SCOPE_VERSION = 10
    K_LIB_NAME = 11
    K_LIB_VERSION = 12
    K_COUNT = 13
    STATUS_OK = 1
    STATUS_ERROR = 2
    DEDUPE_LINEAR = 64

cdef i128 U64_MAX = (<i128>1 << 64) - 1

_TYPE_NAMES = {
    T_BOOL: "bool", T_BYTE: "byte", T_DOUBLE: "double", T_I16: "i16", T_I32: "i32",
    T_I64: "i64", T_STRING: "string", T_STRUCT: "struct", T_MAP: "map", T_SET: "set",
    T_LIST: "list",
}
# compact type id -> binary type id (1/2 are bool true/false in field headers)
cdef int COMPACT_TYPES[13]
COMPACT_TYPES[:] = [-1, T_BOOL, T_BOOL, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_STRING,
                    T_LIST, T_SET, T_MAP, T_STRUCT]


class ThriftError(ValueError):
    """A thrift payload that does not decode."""


class SpanError(ValueError):
    """An api_v2 span with an id of a wrong length."""


# ---------------------------------------------------------------------------------------------
# the C-level model of a batch

cdef struct Tag:
    cptr k
    Py_ssize_t kn
    int vt
    cptr s
    Py_ssize_t sn
    int64_t i
    double d

cdef struct Log:
    i128 ts
    Py_ssize_t t0
    Py_ssize_t tn

cdef struct Ref:
    int64_t rtype
    uint8_t trace[16]
    uint8_t span[8]

cdef struct Span:
    uint8_t trace[16]
    uint8_t span[8]
    uint8_t parent[8]
    bint has_parent
    cptr name
    Py_ssize_t name_n
    i128 start
    i128 dur
    Py_ssize_t t0
    Py_ssize_t tn
    Py_ssize_t l0
    Py_ssize_t ln
    Py_ssize_t r0
    Py_ssize_t rn
    Py_ssize_t proc

cdef struct Proc:
    cptr name
    Py_ssize_t name_n
    Py_ssize_t t0
    Py_ssize_t tn

cdef inline bint ascii_only(cptr s, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] >= 0x80:
            return False
    return True


cdef inline bint same(cptr a, Py_ssize_t an, cptr b, Py_ssize_t bn) noexcept:
    return an == bn and (an == 0 or memcmp(a, b, an) == 0)


cdef inline bint is_lit(cptr k, Py_ssize_t n, const char* lit, Py_ssize_t ln) noexcept:
    return n == ln and memcmp(k, lit, ln) == 0


cdef inline bint has_prefix(cptr k, Py_ssize_t n, const char* lit, Py_ssize_t ln) noexcept:
    return n >= ln and memcmp(k, lit, ln) == 0


cdef int classify(cptr k, Py_ssize_t n) noexcept:
    """Which translation rule a span tag key falls under (``K_PLAIN`` for none)."""
    if n < 3:
        return K_PLAIN
    cdef uint8_t c = k[0]
    if c == b'o':
        if has_prefix(k, n, b"otel.", 5):
            if is_lit(k, n, b"otel.status_code", 16):
                return K_OTEL_CODE
            if is_lit(k, n, b"otel.status_description", 23):
                return K_OTEL_DESC
            if is_lit(k, n, b"otel.scope.name", 15):
                return K_SCOPE_NAME
            if is_lit(k, n, b"otel.scope.version", 18):
                return K_SCOPE_VERSION
            if is_lit(k, n, b"otel.library.name", 17):
                return K_LIB_NAME
            if is_lit(k, n, b"otel.library.version", 20):
                return K_LIB_VERSION
            return K_PLAIN
        return K_RESOURCE if has_prefix(k, n, b"os.", 3) else K_PLAIN
    if c == b'h':
        if is_lit(k, n, b"http.status_code", 16):
            return K_HTTP_CODE
        if is_lit(k, n, b"http.status_message", 19):
            return K_HTTP_MSG
        return K_RESOURCE if has_prefix(k, n, b"host.", 5) else K_PLAIN
    if c == b'e':
        return K_ERROR if is_lit(k, n, b"error", 5) else K_PLAIN
    if c == b's':
        if is_lit(k, n, b"span.kind", 9):
            return K_KIND
        if (is_lit(k, n, b"service.name", 12) or is_lit(k, n, b"service.version", 15)
                or is_lit(k, n, b"service.namespace", 17)
                or is_lit(k, n, b"service.instance.id", 19)):
            return K_RESOURCE
        return K_PLAIN
    if c == b'w':
        return K_TRACESTATE if is_lit(k, n, b"w3c.tracestate", 14) else K_PLAIN
    if c == b't':
        if (has_prefix(k, n, b"telemetry.sdk.", 14) or has_prefix(k, n, b"telemetry.distro.", 17)
                or has_prefix(k, n, b"telemetry.auto.", 15)):
            return K_RESOURCE
        return K_PLAIN
    if c == b'p':
        return K_RESOURCE if has_prefix(k, n, b"process.runtime.", 16) else K_PLAIN
    if c == b'd':
        return K_RESOURCE if has_prefix(k, n, b"deployment.", 11) else K_PLAIN
    if c == b'k':
        return K_RESOURCE if has_prefix(k, n, b"k8s.", 4) else K_PLAIN
    if c == b'c':
        if has_prefix(k, n, b"container.", 10) or has_prefix(k, n, b"cloud.", 6):
            return K_RESOURCE
        return K_PLAIN
    return K_PLAIN


cdef inline bint same_value(Tag* a, Tag* b) noexcept:
    """Python's ``a == b and type(a) is type(b)`` for two tag values."""
    if a.vt != b.vt:
        return False
    if a.vt == V_STR or a.vt == V_BIN:
        return same(a.s, a.sn, b.s, b.sn)
    if a.vt == V_DOUBLE:
        return a.d == b.d
    return a.i == b.i


cdef inline Py_ssize_t anyvalue_size(Tag* t) noexcept:
    if t.vt == V_STR or t.vt == V_BIN:
        return ldsize(t.sn)
    if t.vt == V_BOOL:
        return 2
    if t.vt == V_LONG:
        return 1 + vsize(<uint64_t>t.i)
    return 9


cdef inline Py_ssize_t kv_size(cptr k, Py_ssize_t kn, Tag* t) noexcept:
    return ldsize(kn) + ldsize(anyvalue_size(t))


cdef inline uint8_t* put_kv(uint8_t* p, cptr k, Py_ssize_t kn, Tag* t) noexcept:
    p = put_ld(p, 0x0A, k, kn)
    p[0] = 0x12
    p = put_varint(p + 1, <uint64_t>anyvalue_size(t))
    if t.vt == V_STR:
        return put_ld(p, 0x0A, t.s, t.sn)
    if t.vt == V_BIN:
        return put_ld(p, 0x3A, t.s, t.sn)
    if t.vt == V_BOOL:
        p[0] = 0x10
        p[1] = 1 if t.i else 0
        return p + 2
    if t.vt == V_LONG:
        p[0] = 0x18
        return put_varint(p + 1, <uint64_t>t.i)
    p[0] = 0x21
    memcpy(p + 1, &t.d, 8)  # little-endian hosts only (x86-64, arm64)
    return p + 9


cdef object py_value(Tag* t):
    if t.vt == V_STR:
        return (<const char*>t.s)[:t.sn].decode("utf-8", "replace")
    if t.vt == V_BIN:
        return (<const char*>t.s)[:t.sn]
    if t.vt == V_BOOL:
        return bool(t.i)
    if t.vt == V_LONG:
        return t.i
    return t.d


cdef object i128_int(i128 v):
    cdef int64_t hi = <int64_t>(v >> 64)
    cdef uint64_t lo = <uint64_t>v
    return (<object>hi << 64) | <object>lo


cdef inline void put_be64(uint8_t* out, uint64_t v) noexcept:
    cdef int j
    for j in range(8):
        out[j] = <uint8_t>(v >> (56 - 8 * j))


# ---------------------------------------------------------------------------------------------
# the batch: readers fill it, the encoder writes OTLP from it


cdef class Batch:
    cdef Tag* tags
    cdef Py_ssize_t ntags, ctags
    cdef Log* logs
    cdef Py_ssize_t nlogs, clogs
    cdef Ref* refs
    cdef Py_ssize_t nrefs, crefs
    cdef Span* spans
    cdef Py_ssize_t nspans, cspans
    cdef Proc* procs
    cdef Py_ssize_t nprocs, cprocs
    cdef list keep  # bytes objects that model pointers point into (besides the input)
    # reader state (thrift; protobuf in ``pr``)
    cdef PReader pr
    cdef cptr data
    cdef Py_ssize_t pos, end
    cdef bint compact
    cdef bint field_bool  # compact: the value of the bool field whose header was just read
    cdef int64_t last_fid
    # encoder scratch
    cdef Py_ssize_t* eff
    cdef int* cls
    cdef Py_ssize_t ceff
    cdef Py_ssize_t* links
    cdef Buf out
    cdef Buf moved
    # groups: resources (encoded attributes) and scopes within them, in order of appearance
    cdef dict rgroup_ids
    cdef list rgroups
    cdef dict sgroup_ids
    cdef list sgroups
    cdef list proc_enc
    cdef Py_ssize_t* proc_r0
    cdef Py_ssize_t* proc_rn
    cdef Py_ssize_t* proc_rgroup
    cdef Py_ssize_t* span_sg
    cdef Py_ssize_t* span_off

    def __cinit__(self):
        self.keep = []
        self.new_proc()  # 0: the batch's process

    def __dealloc__(self):
        PyMem_Free(self.tags)
        PyMem_Free(self.logs)
        PyMem_Free(self.refs)
        PyMem_Free(self.spans)
        PyMem_Free(self.procs)
        PyMem_Free(self.eff)
        PyMem_Free(self.cls)
        PyMem_Free(self.links)
        PyMem_Free(self.out.p)
        PyMem_Free(self.moved.p)
        PyMem_Free(self.proc_r0)
        PyMem_Free(self.proc_rn)
        PyMem_Free(self.proc_rgroup)
        PyMem_Free(self.span_sg)
        PyMem_Free(self.span_off)

    # --- growing the model -------------------------------------------------------------------

    cdef Py_ssize_t new_tag(self) except -1:
        self.tags = <Tag*>grow(self.tags, &self.ctags, self.ntags, sizeof(Tag), 1024)
        memset(&self.tags[self.ntags], 0, sizeof(Tag))
        self.ntags += 1
        return self.ntags - 1

    cdef Py_ssize_t new_log(self) except -1:
        self.logs = <Log*>grow(self.logs, &self.clogs, self.nlogs, sizeof(Log), 64)
        memset(&self.logs[self.nlogs], 0, sizeof(Log))
        self.nlogs += 1
        return self.nlogs - 1

    cdef Py_ssize_t new_ref(self) except -1:
        self.refs = <Ref*>grow(self.refs, &self.crefs, self.nrefs, sizeof(Ref), 64)
        memset(&self.refs[self.nrefs], 0, sizeof(Ref))
        self.nrefs += 1
        return self.nrefs - 1

    cdef Py_ssize_t new_span(self) except -1:
        self.spans = <Span*>grow(self.spans, &self.cspans, self.nspans, sizeof(Span), 256)
        memset(&self.spans[self.nspans], 0, sizeof(Span))
        self.nspans += 1
        return self.nspans - 1

    cdef Py_ssize_t new_proc(self) except -1:
        self.procs = <Proc*>grow(self.procs, &self.cprocs, self.nprocs, sizeof(Proc), 4)
        memset(&self.procs[self.nprocs], 0, sizeof(Proc))
        self.nprocs += 1
        return self.nprocs - 1

    cdef int set_text(self, cptr* p, Py_ssize_t* n, object text) except -1:
        """Point ``p``/``n`` at the UTF-8 bytes of ``text`` (kept alive by the batch)."""
        raw = text.encode() if isinstance(text, str) else text
        self.keep.append(raw)
        p[0] = <cptr>PyBytes_AS_STRING(raw)
        n[0] = len(raw)
        return 0

    cdef int fix_utf8(self, cptr* p, Py_ssize_t* n) except -1:
        """Thrift text: bad UTF-8 is replaced (U+FFFD), as Python's ``errors="replace"``."""
        if not utf8_valid(p[0], n[0]):
            self.set_text(p, n, (<const char*>p[0])[:n[0]].decode("utf-8", "replace"))
        return 0

    # --- thrift reading ----------------------------------------------------------------------

    cdef fail(self, str message):
        return ThriftError(f"{message} at byte {self.pos}")

    cdef int need(self, Py_ssize_t n) except -1:
        if n > self.end - self.pos:
            raise self.fail("truncated data")
        return 0

    cdef uint64_t varint(self) except? 0xFFFFFFFFFFFFFFFF:
        """A compact-protocol varint (the same encoding as protobuf's)."""
        cdef PReader r
        cdef uint64_t v
        r.data, r.pos = self.data, self.pos
        v = pb_varint(&r, self.end)
        self.pos = r.pos
        return v

    cdef int64_t zigzag(self) except? -1:
        cdef uint64_t n = self.varint()
        return <int64_t>(n >> 1) ^ -(<int64_t>(n & 1))

    cdef int64_t read_i64(self) except? -1:
        cdef uint64_t v = 0
        cdef int j
        if self.compact:
            return self.zigzag()
        self.need(8)
        for j in range(8):
            v = (v << 8) | self.data[self.pos + j]
        self.pos += 8
        return <int64_t>v

    cdef int32_t read_i32(self) except? -1:
        cdef uint32_t v
        if self.compact:
            return self.zigzag32()
        self.need(4)
        v = ((<uint32_t>self.data[self.pos] << 24) | (<uint32_t>self.data[self.pos + 1] << 16)
             | (<uint32_t>self.data[self.pos + 2] << 8) | self.data[self.pos + 3])
        self.pos += 4
        return <int32_t>v

    cdef int32_t zigzag32(self) except? -1:
        cdef uint64_t raw = self.varint()
        cdef uint32_t n = <uint32_t>raw
        return <int32_t>(n >> 1) ^ -(<int32_t>(n & 1))

    cdef double read_double(self) except? -1:
        cdef uint64_t v = 0
        cdef double d
        cdef int j
        self.need(8)
        if self.compact:
            for j in range(8):
                v |= (<uint64_t>self.data[self.pos + j]) << (8 * j)
        else:
            for j in range(8):
                v = (v << 8) | self.data[self.pos + j]
        self.pos += 8
        memcpy(&d, &v, 8)
        return d

    cdef bint read_bool(self) except? -1:
        """A bool struct field (compact: its value came with the field header)."""
        if self.compact:
            return self.field_bool
        self.need(1)
        self.pos += 1
        return self.data[self.pos - 1] != 0

    cdef int read_string(self, cptr* s, Py_ssize_t* n) except -1:
        cdef int64_t size
        if self.compact:
            size = <int64_t>self.varint()
            if size < 0 or size > self.end - self.pos:
                raise self.fail(f"string of {size} bytes does not fit the data")
        else:
            size = self.read_i32()
            if size < 0 or size > self.end - self.pos:
                raise self.fail(f"string of {size} bytes does not fit the data")
        s[0] = self.data + self.pos
        n[0] = <Py_ssize_t>size
        self.pos += <Py_ssize_t>size
        return 0

    cdef int field(self, int* ftype) except? -2:
        """The next struct field header: its id, with its type in ``ftype`` (T_STOP: the end)."""
        cdef uint8_t head
        cdef int ctype, delta
        cdef int64_t fid
        self.need(1)
        head = self.data[self.pos]
        self.pos += 1
        if not self.compact:
            ftype[0] = head
            if head == T_STOP:
                return 0
            self.need(2)
            fid = <int16_t>((<uint16_t>self.data[self.pos] << 8) | self.data[self.pos + 1])
            self.pos += 2
            return <int>fid
        if head == 0:
            ftype[0] = T_STOP
            return 0
        ctype = head & 0x0F
        delta = head >> 4
        if delta:
            fid = self.last_fid + delta
        else:
            fid = <int16_t>(self.zigzag() & 0xFFFF)
        self.last_fid = fid
        if ctype > 12 or COMPACT_TYPES[ctype] < 0:
            raise self.fail(f"unknown compact field type {ctype}")
        ftype[0] = COMPACT_TYPES[ctype]
        self.field_bool = ctype == 1
        return <int>fid

    cdef Py_ssize_t list_begin(self, int* etype, int expect, str what) except -1:
        """A list (or set) header: its size, with its element type in ``etype``; a list of
        another type than ``expect`` (when not -1) with items is an error."""
        cdef uint8_t head
        cdef int64_t n
        cdef int min_item
        if self.compact:
            self.need(1)
            head = self.data[self.pos]
            self.pos += 1
            n = head >> 4
            if n == 15:
                n = <int64_t>self.varint()
                if n < 0:
                    n = self.end + 1
            if n > self.end - self.pos:
                raise self.fail(f"{what} of {n} items is longer than the remaining data")
            if (head & 0x0F) > 12 or COMPACT_TYPES[head & 0x0F] < 0:
                raise self.fail(f"unknown compact element type {head & 0x0F}")
            etype[0] = COMPACT_TYPES[head & 0x0F]
        else:
            self.need(1)
            etype[0] = self.data[self.pos]
            self.pos += 1
            n = self.read_i32()
            if n < 0:
                raise self.fail(f"negative {what} size {n}")
            min_item = 1 if etype[0] in (T_BOOL, T_BYTE, T_STRUCT) else 2
            if n * min_item > self.end - self.pos:
                raise self.fail(f"{what} of {n} items is longer than the remaining data")
        if expect >= 0 and etype[0] != expect and n:
            raise self.fail(
                f"list of {_TYPE_NAMES.get(etype[0], etype[0])} where "
                f"{_TYPE_NAMES[expect]} was expected"
            )
        return <Py_ssize_t>n

    cdef int skip(self, int ttype, int depth, bint in_field) except -1:
        """Skip a value of a field we do not read (unknown, or of another type than ours)."""
        cdef cptr s
        cdef Py_ssize_t n, j
        cdef int etype, ktype, vtype
        cdef uint8_t kv
        cdef int64_t last
        if depth > MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        if ttype == T_BOOL:
            if not (self.compact and in_field):
                self.need(1)
                self.pos += 1
        elif ttype == T_BYTE:
            self.need(1)
            self.pos += 1
        elif ttype == T_I16 or ttype == T_I32:
            if self.compact:
                self.varint()
            else:
                self.need(2 if ttype == T_I16 else 4)
                self.pos += 2 if ttype == T_I16 else 4
        elif ttype == T_I64:
            if self.compact:
                self.varint()
            else:
                self.need(8)
                self.pos += 8
        elif ttype == T_DOUBLE:
            self.need(8)
            self.pos += 8
        elif ttype == T_STRING:
            self.read_string(&s, &n)
        elif ttype == T_STRUCT:
            last = self.last_fid
            self.last_fid = 0
            while True:
                j = self.field(&etype)
                if etype == T_STOP:
                    break
                self.skip(etype, depth + 1, True)
            self.last_fid = last
        elif ttype == T_LIST or ttype == T_SET:
            n = self.list_begin(&etype, -1, "list")
            for j in range(n):
                self.skip(etype, depth + 1, False)
        elif ttype == T_MAP:
            if self.compact:
                n = <Py_ssize_t>self.varint()
                if n < 0 or n > self.end - self.pos:
                    raise self.fail(f"map of {n} items is longer than the remaining data")
                if not n:
                    return 0
                self.need(1)
                kv = self.data[self.pos]
                self.pos += 1
                if (kv >> 4) > 12 or (kv & 0x0F) > 12 or COMPACT_TYPES[kv >> 4] < 0 or \
                        COMPACT_TYPES[kv & 0x0F] < 0:
                    raise self.fail(f"unknown compact map types {kv:#x}")
                ktype = COMPACT_TYPES[kv >> 4]
                vtype = COMPACT_TYPES[kv & 0x0F]
            else:
                self.need(2)
                ktype = self.data[self.pos]
                vtype = self.data[self.pos + 1]
                self.pos += 2
                n = self.read_i32()
                if n < 0:
                    raise self.fail(f"negative map size {n}")
                if n * 2 > self.end - self.pos:
                    raise self.fail(f"map of {n} items is longer than the remaining data")
            for j in range(n):
                self.skip(ktype, depth + 1, False)
                self.skip(vtype, depth + 1, False)
        else:
            raise self.fail(f"unknown thrift type {ttype}")
        return 0

    cdef int missing(self, str field, int fid, str struct) except -1:
        raise ThriftError(f"required field {field} ({fid}) of {struct} is missing")

    cdef int read_tags(self, Py_ssize_t* t0, Py_ssize_t* tn, int depth) except -1:
        """A ``list<Tag>`` field: the tags' range in the model."""
        cdef int etype, ftype, fid, vtype
        cdef Py_ssize_t n = self.list_begin(&etype, T_STRUCT, "list")
        cdef Py_ssize_t j, ti
        cdef Tag* t
        cdef bint has_key, has_type
        cdef cptr s = NULL
        cdef Py_ssize_t sn = 0
        cdef cptr b = NULL
        cdef Py_ssize_t bn = 0
        cdef int64_t last = self.last_fid
        if etype != T_STRUCT:  # an empty list of something else
            t0[0] = self.ntags
            tn[0] = 0
            return 0
        if depth + 1 > MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        t0[0] = self.ntags
        for j in range(n):
            ti = self.new_tag()
            t = &self.tags[ti]
            has_key = has_type = False
            vtype = 0
            s = b = NULL
            sn = bn = 0
            self.last_fid = 0
            while True:
                fid = self.field(&ftype)
                if ftype == T_STOP:
                    break
                if fid == 1 and ftype == T_STRING:
                    self.read_string(&t.k, &t.kn)
                    has_key = True
                elif fid == 2 and ftype == T_I32:
                    vtype = self.read_i32()
                    has_type = True
                elif fid == 3 and ftype == T_STRING:
                    self.read_string(&s, &sn)
                elif fid == 6 and ftype == T_I64:
                    t.i = self.read_i64()
                elif fid == 4 and ftype == T_DOUBLE:
                    t.d = self.read_double()
                elif fid == 5 and ftype == T_BOOL:
                    t.i = self.read_bool()
                elif fid == 7 and ftype == T_STRING:
                    self.read_string(&b, &bn)
                else:
                    self.skip(ftype, depth + 1, True)
            if not has_key or not has_type:
                raise self.fail(
                    f"required field {'key (1)' if not has_key else 'vType (2)'} of Tag is missing"
                )
            self.fix_utf8(&t.k, &t.kn)
            t.vt = vtype
            if vtype == V_STR:
                t.s, t.sn = s, sn
                self.fix_utf8(&t.s, &t.sn)
            elif vtype == V_BIN:
                t.s, t.sn = b, bn
            elif vtype == V_BOOL:
                t.i = t.i != 0
            elif vtype != V_LONG and vtype != V_DOUBLE:
                t.vt = V_STR
                self.set_text(&t.s, &t.sn, f"<Unknown Jaeger TagType {vtype}>")
        self.last_fid = last
        tn[0] = self.ntags - t0[0]
        return 0

    cdef int read_logs(self, Py_ssize_t si, int depth) except -1:
        cdef int etype, ftype, fid
        cdef Py_ssize_t n = self.list_begin(&etype, T_STRUCT, "list")
        cdef Py_ssize_t j, li
        cdef bint has_ts, has_fields
        cdef int64_t ts = 0
        cdef Py_ssize_t t0 = 0, tn = 0
        cdef int64_t last = self.last_fid
        self.spans[si].l0 = self.nlogs
        self.spans[si].ln = 0
        if etype != T_STRUCT:
            return 0
        if depth + 1 > MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        for j in range(n):
            has_ts = has_fields = False
            self.last_fid = 0
            while True:
                fid = self.field(&ftype)
                if ftype == T_STOP:
                    break
                if fid == 1 and ftype == T_I64:
                    ts = self.read_i64()
                    has_ts = True
                elif fid == 2 and ftype == T_LIST:
                    self.read_tags(&t0, &tn, depth + 1)
                    has_fields = True
                else:
                    self.skip(ftype, depth + 2, True)
            if not has_ts:
                self.missing("timestamp", 1, "Log")
            if not has_fields:
                self.missing("fields", 2, "Log")
            li = self.new_log()
            self.logs[li].ts = <i128>ts * 1000
            self.logs[li].t0 = t0
            self.logs[li].tn = tn
        self.last_fid = last
        self.spans[si].ln = self.nlogs - self.spans[si].l0
        return 0

    cdef int read_refs(self, Py_ssize_t si, int depth) except -1:
        cdef int etype, ftype, fid
        cdef Py_ssize_t n = self.list_begin(&etype, T_STRUCT, "list")
        cdef Py_ssize_t j, ri
        cdef int have
        cdef int64_t rtype = 0, low = 0, high = 0, sid = 0
        cdef int64_t last = self.last_fid
        self.spans[si].r0 = self.nrefs
        self.spans[si].rn = 0
        if etype != T_STRUCT:
            return 0
        if depth + 1 > MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        for j in range(n):
            have = 0
            self.last_fid = 0
            while True:
                fid = self.field(&ftype)
                if ftype == T_STOP:
                    break
                if fid == 1 and ftype == T_I32:
                    rtype = self.read_i32()
                    have |= 1
                elif fid == 2 and ftype == T_I64:
                    low = self.read_i64()
                    have |= 2
                elif fid == 3 and ftype == T_I64:
                    high = self.read_i64()
                    have |= 4
                elif fid == 4 and ftype == T_I64:
                    sid = self.read_i64()
                    have |= 8
                else:
                    self.skip(ftype, depth + 2, True)
            for fid, name in ((1, "refType"), (2, "traceIdLow"), (3, "traceIdHigh"), (4, "spanId")):
                if not have & (1 << (fid - 1)):
                    self.missing(name, fid, "SpanRef")
            ri = self.new_ref()
            self.refs[ri].rtype = rtype
            put_be64(self.refs[ri].trace, <uint64_t>high)
            put_be64(self.refs[ri].trace + 8, <uint64_t>low)
            put_be64(self.refs[ri].span, <uint64_t>sid)
        self.last_fid = last
        self.spans[si].rn = self.nrefs - self.spans[si].r0
        return 0

    cdef int read_spans(self, int depth) except -1:
        cdef int etype, ftype, fid
        cdef Py_ssize_t n = self.list_begin(&etype, T_STRUCT, "list")
        cdef Py_ssize_t j, si
        cdef int have
        cdef int64_t low, high, sid, parent, start, dur
        cdef Span* s
        cdef int64_t last = self.last_fid
        self.nspans = 0  # a repeated field: the last one wins
        if etype != T_STRUCT:
            return 0
        if depth + 1 > MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        for j in range(n):
            have = 0
            low = high = sid = parent = start = dur = 0
            si = self.new_span()
            self.spans[si].l0 = self.nlogs
            self.spans[si].r0 = self.nrefs
            self.spans[si].t0 = self.ntags
            self.last_fid = 0
            while True:
                fid = self.field(&ftype)
                if ftype == T_STOP:
                    break
                if fid == 1 and ftype == T_I64:
                    low = self.read_i64()
                    have |= 1
                elif fid == 2 and ftype == T_I64:
                    high = self.read_i64()
                elif fid == 3 and ftype == T_I64:
                    sid = self.read_i64()
                    have |= 2
                elif fid == 4 and ftype == T_I64:
                    parent = self.read_i64()
                elif fid == 5 and ftype == T_STRING:
                    s = &self.spans[si]
                    self.read_string(&s.name, &s.name_n)
                    self.fix_utf8(&s.name, &s.name_n)
                elif fid == 6 and ftype == T_LIST:
                    self.read_refs(si, depth + 1)
                elif fid == 7 and ftype == T_I32:
                    self.read_i32()
                elif fid == 8 and ftype == T_I64:
                    start = self.read_i64()
                    have |= 4
                elif fid == 9 and ftype == T_I64:
                    dur = self.read_i64()
                elif fid == 10 and ftype == T_LIST:
                    s = &self.spans[si]
                    self.read_tags(&s.t0, &s.tn, depth + 1)
                elif fid == 11 and ftype == T_LIST:
                    self.read_logs(si, depth + 1)
                else:
                    self.skip(ftype, depth + 2, True)
            if not have & 1:
                self.missing("traceIdLow", 1, "Span")
            if not have & 2:
                self.missing("spanId", 3, "Span")
            if not have & 4:
                self.missing("startTime", 8, "Span")
            s = &self.spans[si]
            put_be64(s.trace, <uint64_t>high)
            put_be64(s.trace + 8, <uint64_t>low)
            put_be64(s.span, <uint64_t>sid)
            if parent:
                s.has_parent = True
                put_be64(s.parent, <uint64_t>parent)
            s.start = <i128>start * 1000
            s.dur = <i128>dur * 1000
            s.proc = 0
        self.last_fid = last
        return 0

    cdef int read_process(self, int depth) except -1:
        cdef int ftype, fid
        cdef bint has_name = False
        cdef Proc* p = &self.procs[0]
        cdef int64_t last = self.last_fid
        if depth > MAX_DEPTH:
            raise self.fail("structs nested too deeply")
        p.t0 = self.ntags
        p.tn = 0
        self.last_fid = 0
        while True:
            fid = self.field(&ftype)
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_STRING:
                self.read_string(&p.name, &p.name_n)
                self.fix_utf8(&p.name, &p.name_n)
                has_name = True
            elif fid == 2 and ftype == T_LIST:
                self.read_tags(&p.t0, &p.tn, depth)
            else:
                self.skip(ftype, depth + 1, True)
        if not has_name:
            self.missing("serviceName", 1, "Process")
        self.last_fid = last
        return 0

    cdef int read_batch(self, int depth) except -1:
        cdef int ftype, fid
        cdef bint has_process = False, has_spans = False
        self.last_fid = 0
        while True:
            fid = self.field(&ftype)
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_STRUCT:
                self.read_process(depth + 1)
                has_process = True
            elif fid == 2 and ftype == T_LIST:
                self.read_spans(depth + 1)
                has_spans = True
            else:
                self.skip(ftype, depth + 1, True)
        if not has_process:
            self.missing("process", 1, "Batch")
        if not has_spans:
            self.missing("spans", 2, "Batch")
        return 0

    cdef int start(self, bytes data, bint compact) except -1:
        self.keep.append(data)
        self.data = <cptr>PyBytes_AS_STRING(data)
        self.pos = 0
        self.end = len(data)
        self.compact = compact
        return 0

    cdef int thrift_batch(self, bytes data, bint compact) except -1:
        self.start(data, compact)
        self.read_batch(0)
        if self.pos != self.end:
            raise self.fail(f"{self.end - self.pos} bytes left after the Batch")
        return 0

    cdef int agent_message(self, bytes data, bint compact) except -1:
        cdef int32_t first
        cdef int mtype, ftype, fid
        cdef uint8_t vt
        cdef cptr s
        cdef Py_ssize_t n
        cdef bint has_batch = False
        self.start(data, compact)
        if compact:
            self.need(2)
            if self.data[0] != 0x82:
                raise self.fail(f"bad compact protocol id {self.data[0]:#x}")
            vt = self.data[1]
            if vt & 0x1F != 1:
                raise self.fail(f"bad compact protocol version {vt & 0x1F}")
            self.pos = 2
            self.varint()  # seqid
            self.read_string(&s, &n)
            mtype = vt >> 5
        else:
            self.need(4)
            first = self.read_i32()
            if first < 0:  # strict: version word, name, seqid
                if (<uint32_t>first) & 0xFFFF0000 != 0x80010000:
                    raise self.fail(f"bad binary protocol version {<uint32_t>first:#x}")
                mtype = first & 0xFF
                self.read_string(&s, &n)
            else:  # old non-strict: name, type byte, seqid
                self.pos = 0
                self.read_string(&s, &n)
                self.need(1)
                mtype = self.data[self.pos]
                self.pos += 1
            self.need(4)
            self.pos += 4  # seqid
        name = (<const char*>s)[:n].decode("utf-8", "replace")
        if name != "emitBatch":
            raise ThriftError(f"unsupported agent method {name!r}: only emitBatch is accepted")
        if mtype != 1 and mtype != 4:
            raise ThriftError(f"message type {mtype} is not a call")
        self.last_fid = 0
        while True:
            fid = self.field(&ftype)
            if ftype == T_STOP:
                break
            if fid == 1 and ftype == T_STRUCT:
                self.read_batch(1)
                has_batch = True
                self.last_fid = 1
            else:
                self.skip(ftype, 1, True)
        if not has_batch:
            self.missing("batch", 1, "emitBatch_args")
        if self.pos != self.end:
            raise self.fail(f"{self.end - self.pos} bytes left after the message")
        return 0

    # --- api_v2 protobuf reading ---------------------------------------------------------------

    cdef double pdouble(self, Py_ssize_t end) except? -1:
        cdef uint64_t v = pb_fixed64(&self.pr, end)
        cdef double d
        memcpy(&d, &v, 8)
        return d

    cdef int ptime(self, Py_ssize_t end, int64_t* seconds, int32_t* nanos) except -1:
        """A ``Timestamp`` or ``Duration`` occurrence (occurrences merge: the last value of each
        field wins)."""
        cdef int wire, fid
        cdef uint64_t raw
        while True:
            fid = pb_field(&self.pr, end, &wire)
            if not fid:
                break
            if fid == 1 and wire == 0:
                seconds[0] = <int64_t>pb_varint(&self.pr, end)
            elif fid == 2 and wire == 0:
                raw = pb_varint(&self.pr, end)
                nanos[0] = <int32_t><uint32_t>raw
            else:
                pb_skip(&self.pr, wire, end)
        return 0

    cdef int ptag(self, Py_ssize_t end) except -1:
        cdef int wire, fid
        cdef Py_ssize_t ti = self.new_tag()
        cdef Tag* t = &self.tags[ti]
        cdef uint64_t vtype = 0
        cdef cptr s = NULL
        cdef cptr b = NULL
        cdef Py_ssize_t sn = 0, bn = 0
        cdef int64_t vlong = 0, vbool = 0
        cdef double vdouble = 0
        t.k = <cptr>b""
        while True:
            fid = pb_field(&self.pr, end, &wire)
            if not fid:
                break
            if fid == 1 and wire == 2:
                pb_bytes(&self.pr, end, &t.k, &t.kn, True)
            elif fid == 2 and wire == 0:
                vtype = pb_varint(&self.pr, end)
            elif fid == 3 and wire == 2:
                pb_bytes(&self.pr, end, &s, &sn, True)
            elif fid == 4 and wire == 0:
                vbool = pb_varint(&self.pr, end) != 0
            elif fid == 5 and wire == 0:
                vlong = <int64_t>pb_varint(&self.pr, end)
            elif fid == 6 and wire == 1:
                vdouble = self.pdouble(end)
            elif fid == 7 and wire == 2:
                pb_bytes(&self.pr, end, &b, &bn, False)
            else:
                pb_skip(&self.pr, wire, end)
        vtype = <uint64_t><int64_t><int32_t><uint32_t>vtype
        if <int32_t>vtype == 0:
            t.vt, t.s, t.sn = V_STR, s, sn
            if s == NULL:
                t.s = <cptr>b""
        elif vtype == 1:
            t.vt, t.i = V_BOOL, vbool
        elif vtype == 2:
            t.vt, t.i = V_LONG, vlong
        elif vtype == 3:
            t.vt, t.d = V_DOUBLE, vdouble
        elif vtype == 4:
            t.vt, t.s, t.sn = V_BIN, b, bn
            if b == NULL:
                t.s = <cptr>b""
        else:
            t.vt = V_STR
            self.set_text(&t.s, &t.sn, f"<Unknown Jaeger TagType {<int32_t>vtype}>")
        return 0

    cdef int ptags(self, Py_ssize_t start, Py_ssize_t end, int number,
                   Py_ssize_t* t0, Py_ssize_t* tn) except -1:
        """Every ``KeyValue`` of field ``number`` in the message at start..end, in order."""
        cdef int wire, fid
        cdef Py_ssize_t stop
        t0[0] = self.ntags
        self.pr.pos = start
        while True:
            fid = pb_field(&self.pr, end, &wire)
            if not fid:
                break
            if fid == number and wire == 2:
                stop = pb_len(&self.pr, end)
                self.ptag(stop)
            else:
                pb_skip(&self.pr, wire, end)
        tn[0] = self.ntags - t0[0]
        return 0

    cdef int pid(self, cptr s, Py_ssize_t n, uint8_t* out, Py_ssize_t size,
                 str what, Py_ssize_t index) except -1:
        memset(out, 0, size)
        if n == size:
            memcpy(out, s, size)
        elif size == 16 and n == 8:
            memcpy(out + 8, s, 8)
        elif n:
            raise SpanError(f"span {index}: {what} must be {size} bytes, got {n}")
        return 0

    cdef int pprocess(self, list parts, Py_ssize_t pi) except -1:
        """A ``Process`` from its occurrences (start, end) in order: they merge."""
        cdef Proc* p
        cdef int wire, fid
        cdef Py_ssize_t start, end, t0, tn
        self.procs[pi].name = <cptr>b""
        self.procs[pi].name_n = 0
        self.procs[pi].t0 = self.ntags
        for start, end in parts:
            self.pr.pos = start
            while True:
                fid = pb_field(&self.pr, end, &wire)
                if not fid:
                    break
                if fid == 1 and wire == 2:
                    p = &self.procs[pi]
                    pb_bytes(&self.pr, end, &p.name, &p.name_n, True)
                else:
                    pb_skip(&self.pr, wire, end)
            self.ptags(start, end, 2, &t0, &tn)
        self.procs[pi].tn = self.ntags - self.procs[pi].t0
        return 0

    cdef int pspan(self, Py_ssize_t start, Py_ssize_t end, Py_ssize_t index) except -1:
        cdef int wire, fid, rwire, rfid
        cdef Py_ssize_t si = self.new_span()
        cdef Py_ssize_t stop, rstop, ri, li, lstart, t0, tn, pi
        cdef cptr trace = NULL
        cdef cptr sid = NULL
        cdef cptr rt
        cdef cptr rs
        cdef Py_ssize_t trace_n = 0, sid_n = 0, rtn, rsn
        cdef uint64_t rtype
        cdef int64_t start_s = 0, dur_s = 0, ts_s
        cdef int32_t start_n = 0, dur_n = 0, ts_n
        cdef Span* s
        cdef list procs = None
        cdef cptr ignored
        cdef Py_ssize_t ignored_n
        self.spans[si].name = <cptr>b""
        self.spans[si].r0 = self.nrefs
        self.pr.pos = start
        while True:
            fid = pb_field(&self.pr, end, &wire)
            if not fid:
                break
            s = &self.spans[si]
            if fid == 1 and wire == 2:
                pb_bytes(&self.pr, end, &trace, &trace_n, False)
            elif fid == 2 and wire == 2:
                pb_bytes(&self.pr, end, &sid, &sid_n, False)
            elif fid == 3 and wire == 2:
                pb_bytes(&self.pr, end, &s.name, &s.name_n, True)
            elif fid == 4 and wire == 2:
                rstop = pb_len(&self.pr, end)
                rt = rs = NULL
                rtn = rsn = 0
                rtype = 0
                while True:
                    rfid = pb_field(&self.pr, rstop, &rwire)
                    if not rfid:
                        break
                    if rfid == 1 and rwire == 2:
                        pb_bytes(&self.pr, rstop, &rt, &rtn, False)
                    elif rfid == 2 and rwire == 2:
                        pb_bytes(&self.pr, rstop, &rs, &rsn, False)
                    elif rfid == 3 and rwire == 0:
                        rtype = pb_varint(&self.pr, rstop)
                    else:
                        pb_skip(&self.pr, rwire, rstop)
                ri = self.new_ref()
                self.refs[ri].rtype = <int32_t><uint32_t>rtype
                self.pid(rt, rtn, self.refs[ri].trace, 16, "reference trace_id", index)
                self.pid(rs, rsn, self.refs[ri].span, 8, "reference span_id", index)
            elif fid == 6 and wire == 2:
                stop = pb_len(&self.pr, end)
                self.ptime(stop, &start_s, &start_n)
            elif fid == 7 and wire == 2:
                stop = pb_len(&self.pr, end)
                self.ptime(stop, &dur_s, &dur_n)
            elif fid == 10 and wire == 2:
                stop = pb_len(&self.pr, end)
                if procs is None:
                    procs = []
                procs.append((self.pr.pos, stop))
                self.pr.pos = stop
            elif (fid == 11 or fid == 12) and wire == 2:
                pb_bytes(&self.pr, end, &ignored, &ignored_n, True)
            else:
                pb_skip(&self.pr, wire, end)
        s = &self.spans[si]
        s.rn = self.nrefs - s.r0
        s.start = <i128>start_s * 1000000000 + start_n
        s.dur = <i128>dur_s * 1000000000 + dur_n
        self.pid(trace, trace_n, s.trace, 16, "trace_id", index)
        self.pid(sid, sid_n, s.span, 8, "span_id", index)
        self.ptags(start, end, 8, &s.t0, &s.tn)
        # logs: each one's fields follow the span's tags in the model
        self.spans[si].l0 = self.nlogs
        self.pr.pos = start
        while True:
            fid = pb_field(&self.pr, end, &wire)
            if not fid:
                break
            if fid == 9 and wire == 2:
                stop = pb_len(&self.pr, end)
                lstart = self.pr.pos
                ts_s = ts_n = 0
                while True:
                    rfid = pb_field(&self.pr, stop, &rwire)
                    if not rfid:
                        break
                    if rfid == 1 and rwire == 2:
                        rstop = pb_len(&self.pr, stop)
                        self.ptime(rstop, &ts_s, &ts_n)
                    else:
                        pb_skip(&self.pr, rwire, stop)
                li = self.new_log()
                self.logs[li].ts = <i128>ts_s * 1000000000 + ts_n
                self.ptags(lstart, stop, 2, &t0, &tn)
                self.logs[li].t0 = t0
                self.logs[li].tn = tn
            else:
                pb_skip(&self.pr, wire, end)
        self.spans[si].ln = self.nlogs - self.spans[si].l0
        if procs is not None:
            pi = self.new_proc()
            self.pprocess(procs, pi)
            self.spans[si].proc = pi
        return 0

    cdef int post_spans(self, bytes data) except -1:
        cdef int wire, fid, bwire, bfid
        cdef Py_ssize_t stop, sstop
        cdef list batch_process = []
        cdef list spans = []
        self.start(data, False)
        self.pr.data = self.data
        self.pr.pos = 0
        while True:
            fid = pb_field(&self.pr, self.end, &wire)
            if not fid:
                break
            if fid == 1 and wire == 2:
                stop = pb_len(&self.pr, self.end)
                while True:
                    bfid = pb_field(&self.pr, stop, &bwire)
                    if not bfid:
                        break
                    if bfid == 1 and bwire == 2:
                        sstop = pb_len(&self.pr, stop)
                        spans.append((self.pr.pos, sstop))
                        self.pr.pos = sstop
                    elif bfid == 2 and bwire == 2:
                        sstop = pb_len(&self.pr, stop)
                        batch_process.append((self.pr.pos, sstop))
                        self.pr.pos = sstop
                    else:
                        pb_skip(&self.pr, bwire, stop)
            else:
                pb_skip(&self.pr, wire, self.end)
        self.pprocess(batch_process, 0)
        for index, (start, stop) in enumerate(spans):
            self.pspan(start, stop, index)
        return 0

    # --- OTLP encoding -------------------------------------------------------------------------

    cdef inline Py_ssize_t dedupe(self, Py_ssize_t t0, Py_ssize_t tn, Py_ssize_t* eff) except -1:
        return dedupe(<const char*>self.tags, sizeof(Tag), t0, tn, eff)

    cdef int text(self, Tag* t, cptr* p, Py_ssize_t* n) except -1:
        """Python's ``str(value)`` of a tag, as UTF-8."""
        if t.vt == V_STR:
            p[0] = t.s
            n[0] = t.sn
        else:
            self.set_text(p, n, str(py_value(t)))
        return 0

    cdef int proc_resource(self, Py_ssize_t pi) except -1:
        """The resource attributes of a process (computed once per process)."""
        cdef Proc* p = &self.procs[pi]
        cdef Py_ssize_t j, ti
        cdef Tag* t
        cdef Buf enc
        attrs = {}
        if p.name_n:
            attrs["service.name"] = (<const char*>p.name)[:p.name_n].decode()
        for j in range(p.t0, p.t0 + p.tn):
            t = &self.tags[j]
            attrs[(<const char*>t.k)[:t.kn].decode()] = py_value(t)
        if "hostname" in attrs and "host.name" not in attrs:
            attrs["host.name"] = attrs.pop("hostname")
        if "jaeger.version" in attrs and "opencensus.exporterversion" not in attrs:
            attrs["opencensus.exporterversion"] = f"Jaeger-{attrs.pop('jaeger.version')}"
        self.proc_r0[pi] = self.ntags
        parts = []
        for key, value in attrs.items():
            ti = self.new_tag()
            t = &self.tags[ti]
            self.set_text(&t.k, &t.kn, key)
            if isinstance(value, bool):
                t.vt = V_BOOL
                t.i = value
            elif isinstance(value, int):
                t.vt = V_LONG
                t.i = value
            elif isinstance(value, float):
                t.vt = V_DOUBLE
                t.d = value
            elif isinstance(value, bytes):
                t.vt = V_BIN
                self.set_text(&t.s, &t.sn, value)
            else:
                t.vt = V_STR
                self.set_text(&t.s, &t.sn, value)
            raw = PyBytes_FromStringAndSize(NULL, ldsize(kv_size(t.k, t.kn, t)))
            q = <uint8_t*>PyBytes_AS_STRING(raw)
            q[0] = 0x0A
            q = put_varint(q + 1, <uint64_t>kv_size(t.k, t.kn, t))
            put_kv(q, t.k, t.kn, t)
            parts.append(raw)
        self.proc_rn[pi] = self.ntags - self.proc_r0[pi]
        self.proc_enc[pi] = b"".join(parts)
        return 0

    cdef Py_ssize_t rgroup(self, bytes key) except -1:
        got = self.rgroup_ids.get(key)
        if got is None:
            got = self.rgroup_ids[key] = len(self.rgroups)
            self.rgroups.append(key)
        return <Py_ssize_t>got

    cdef int http_status(self, Tag* t, int kind) except -2:
        """The OTLP status code an ``http.status_code`` implies; -1 when it is no number."""
        cdef int64_t code = 0
        cdef Py_ssize_t j
        if t.vt == V_LONG:
            code = t.i
        elif t.vt == V_STR:
            if 0 < t.sn <= 18:
                for j in range(t.sn):
                    if t.s[j] < b'0' or t.s[j] > b'9':
                        break
                    code = code * 10 + (t.s[j] - 48)
                else:
                    j = -1
            else:
                j = 0
            if j != -1:
                try:
                    value = int(py_value(t))
                except ValueError:
                    return -1
                code = max(-1, min(value, 1000))
        else:
            return -1
        if kind == 2 and 400 <= code < 500:  # 4xx is the client's fault on a server span
            return 0
        return 0 if 100 <= code < 400 else STATUS_ERROR

    cdef int encode_span(self, Py_ssize_t i, Py_ssize_t* eff, int* cls,
                         Py_ssize_t* leff) except -1:
        cdef Span* s = &self.spans[i]
        cdef Py_ssize_t pi = s.proc
        cdef Py_ssize_t m, q, j, r, nlinks = 0, size, nmoved = 0, lm, lbase, name_q
        cdef Py_ssize_t where[K_COUNT]
        cdef Tag* t
        cdef Tag* u
        cdef Ref* ref
        cdef int c, kind = 0, code = 0, http
        cdef bint found = False, has_parent
        cdef cptr parent
        cdef cptr scope_name = <cptr>b""
        cdef cptr scope_version = <cptr>b""
        cdef cptr lib = <cptr>b""
        cdef cptr msg = <cptr>b""
        cdef cptr state = <cptr>b""
        cdef cptr ename
        cdef cptr refname
        cdef Py_ssize_t scope_name_n = 0, scope_version_n = 0, lib_n = 0, msg_n = 0, state_n = 0
        cdef Py_ssize_t ename_n, refname_n
        cdef i128 start, end
        cdef uint8_t* p
        cdef Log* lg
        cdef Tag reftag
        if self.proc_rgroup[pi] == -2:
            self.proc_resource(pi)
            self.proc_rgroup[pi] = -1
        for c in range(K_COUNT):
            where[c] = -1
        m = self.dedupe(s.t0, s.tn, eff)
        for q in range(m):
            t = &self.tags[eff[q]]
            c = classify(t.k, t.kn)
            cls[q] = c
            if c == K_RESOURCE:
                # a resource attribute on the span: to the resource when it lacks the key or
                # has the same value there (then it is dropped), else it stays on the span
                for r in range(self.proc_r0[pi], self.proc_r0[pi] + self.proc_rn[pi]):
                    u = &self.tags[r]
                    if u.kn == t.kn and memcmp(u.k, t.k, t.kn) == 0:
                        if same_value(u, t):
                            cls[q] = -1
                        break
                else:
                    cls[q] = -1
                    if nmoved == 0:
                        self.moved.n = 0
                    nmoved += 1
                    size = kv_size(t.k, t.kn, t)
                    reserve(&self.moved, ldsize(size))
                    p = self.moved.p + self.moved.n
                    p[0] = 0x0A
                    p = put_kv(put_varint(p + 1, <uint64_t>size), t.k, t.kn, t)
                    self.moved.n = p - self.moved.p
            elif c != K_PLAIN:
                where[c] = q
        # instrumentation scope
        if where[K_SCOPE_NAME] >= 0:
            self.text(&self.tags[eff[where[K_SCOPE_NAME]]], &scope_name, &scope_name_n)
            cls[where[K_SCOPE_NAME]] = -1
            if where[K_SCOPE_VERSION] >= 0:
                self.text(&self.tags[eff[where[K_SCOPE_VERSION]]], &scope_version,
                          &scope_version_n)
                cls[where[K_SCOPE_VERSION]] = -1
            # the Python exporter sends both spellings; drop the old one when it says the same
            if where[K_LIB_NAME] >= 0:
                self.text(&self.tags[eff[where[K_LIB_NAME]]], &lib, &lib_n)
                if same(lib, lib_n, scope_name, scope_name_n):
                    cls[where[K_LIB_NAME]] = -1
                    if where[K_LIB_VERSION] >= 0:
                        self.text(&self.tags[eff[where[K_LIB_VERSION]]], &lib, &lib_n)
                        if same(lib, lib_n, scope_version, scope_version_n):
                            cls[where[K_LIB_VERSION]] = -1
        elif where[K_LIB_NAME] >= 0:
            self.text(&self.tags[eff[where[K_LIB_NAME]]], &scope_name, &scope_name_n)
            cls[where[K_LIB_NAME]] = -1
            if where[K_LIB_VERSION] >= 0:
                self.text(&self.tags[eff[where[K_LIB_VERSION]]], &scope_version,
                          &scope_version_n)
                cls[where[K_LIB_VERSION]] = -1
        # span kind
        if where[K_KIND] >= 0:
            t = &self.tags[eff[where[K_KIND]]]
            cls[where[K_KIND]] = -1
            if t.vt == V_STR:
                kind = _KINDS.get(py_value(t).lower(), 0) if not ascii_only(t.s, t.sn) \
                    else ascii_kind(t.s, t.sn)
        # status
        if where[K_ERROR] >= 0:
            t = &self.tags[eff[where[K_ERROR]]]
            if t.vt == V_BOOL and t.i:
                cls[where[K_ERROR]] = -1
                code = STATUS_ERROR
                found = True
                if where[K_OTEL_DESC] >= 0:
                    self.text(&self.tags[eff[where[K_OTEL_DESC]]], &msg, &msg_n)
                    cls[where[K_OTEL_DESC]] = -1
                elif where[K_HTTP_CODE] >= 0:
                    http = self.http_status(&self.tags[eff[where[K_HTTP_CODE]]], kind)
                    if http >= 0:
                        code = http or code
                        if where[K_HTTP_MSG] >= 0:
                            self.text(&self.tags[eff[where[K_HTTP_MSG]]], &msg, &msg_n)
        if where[K_OTEL_CODE] >= 0:
            cls[where[K_OTEL_CODE]] = -1
            if not found:
                found = True
                t = &self.tags[eff[where[K_OTEL_CODE]]]
                if t.vt == V_STR:
                    if ascii_only(t.s, t.sn):
                        code = ascii_status(t.s, t.sn)
                    else:
                        code = _STATUS_NAMES.get(py_value(t).upper(), 0)
                if where[K_OTEL_DESC] >= 0:
                    self.text(&self.tags[eff[where[K_OTEL_DESC]]], &msg, &msg_n)
                    cls[where[K_OTEL_DESC]] = -1
        elif not found and where[K_HTTP_CODE] >= 0:
            http = self.http_status(&self.tags[eff[where[K_HTTP_CODE]]], kind)
            if http > 0:
                code = http
                found = True
                if where[K_HTTP_MSG] >= 0:
                    self.text(&self.tags[eff[where[K_HTTP_MSG]]], &msg, &msg_n)
        # trace state
        if where[K_TRACESTATE] >= 0:
            t = &self.tags[eff[where[K_TRACESTATE]]]
            cls[where[K_TRACESTATE]] = -1
            if ((t.vt == V_STR or t.vt == V_BIN) and t.sn) or (t.vt == V_DOUBLE and t.d != 0) \
                    or ((t.vt == V_LONG or t.vt == V_BOOL) and t.i):
                self.text(t, &state, &state_n)
        # references: the parent, and links
        has_parent = s.has_parent
        parent = s.parent
        for r in range(s.r0, s.r0 + s.rn):
            ref = &self.refs[r]
            if ref.rtype == 0 and memcmp(ref.trace, s.trace, 16) == 0:
                if not has_parent:
                    has_parent = True
                    parent = ref.span
                    continue
                if memcmp(ref.span, parent, 8) == 0:
                    continue  # the same parent again
            self.links[nlinks] = r
            nlinks += 1
        # times
        start = s.start
        end = start + s.dur
        if start < 0 or start > U64_MAX:
            raise ValueError(f"span {i}: startTime {i128_int(start) // 1000}µs is out of range")
        if end > U64_MAX:
            raise ValueError(f"span {i}: startTime + duration is out of range")
        if end < 0:  # a negative duration: the distributor rejects end < start
            end = 0
        # the size of the span message
        size = 18 + 10 + ldsize(s.name_n) + 18
        if state_n:
            size += ldsize(state_n)
        if has_parent:
            size += 10
        if kind:
            size += 2
        for q in range(m):
            if cls[q] >= 0:
                t = &self.tags[eff[q]]
                size += ldsize(kv_size(t.k, t.kn, t))
        lbase = 0
        for j in range(s.l0, s.l0 + s.ln):
            lg = &self.logs[j]
            if lg.ts < 0 or lg.ts > U64_MAX:
                raise ValueError(f"log timestamp {i128_int(lg.ts) // 1000}µs is out of range")
            lm = self.dedupe(lg.t0, lg.tn, leff + lbase + 2)
            leff[lbase] = lm
            leff[lbase + 1] = self.event_name(leff + lbase + 2, lm)
            size += ldsize(self.event_size(leff + lbase))
            lbase += lm + 2
        for j in range(nlinks):
            size += ldsize(self.link_size(&self.refs[self.links[j]]))
        if found:
            size += ldsize(status_size(msg_n, code))
        # write it
        reserve(&self.out, size)
        self.span_off[i] = self.out.n
        p = self.out.p + self.out.n
        p = put_ld(p, 0x0A, s.trace, 16)
        p = put_ld(p, 0x12, s.span, 8)
        if state_n:
            p = put_ld(p, 0x1A, state, state_n)
        if has_parent:
            p = put_ld(p, 0x22, parent, 8)
        p = put_ld(p, 0x2A, s.name, s.name_n)
        if kind:
            p[0] = 0x30
            p[1] = <uint8_t>kind
            p += 2
        p[0] = 0x39
        p = put_fixed64(p + 1, <uint64_t>start)
        p[0] = 0x41
        p = put_fixed64(p + 1, <uint64_t>end)
        for q in range(m):
            if cls[q] >= 0:
                t = &self.tags[eff[q]]
                p[0] = 0x4A
                p = put_kv(put_varint(p + 1, <uint64_t>kv_size(t.k, t.kn, t)), t.k, t.kn, t)
        lbase = 0
        for j in range(s.l0, s.l0 + s.ln):
            lg = &self.logs[j]
            lm = leff[lbase]
            name_q = leff[lbase + 1]
            p[0] = 0x5A
            p = put_varint(p + 1, <uint64_t>self.event_size(leff + lbase))
            p[0] = 0x09
            p = put_fixed64(p + 1, <uint64_t>lg.ts)
            if name_q >= 0:
                t = &self.tags[leff[lbase + 2 + name_q]]
                p = put_ld(p, 0x12, t.s, t.sn)
            else:
                p = put_ld(p, 0x12, <cptr>b"log", 3)
            for q in range(lm):
                if q != name_q:
                    t = &self.tags[leff[lbase + 2 + q]]
                    p[0] = 0x1A
                    p = put_kv(put_varint(p + 1, <uint64_t>kv_size(t.k, t.kn, t)), t.k, t.kn, t)
            lbase += lm + 2
        for j in range(nlinks):
            ref = &self.refs[self.links[j]]
            p[0] = 0x6A
            p = put_varint(p + 1, <uint64_t>self.link_size(ref))
            p = put_ld(p, 0x0A, ref.trace, 16)
            p = put_ld(p, 0x12, ref.span, 8)
            self.ref_tag(ref, &reftag)
            p[0] = 0x22
            p = put_varint(p + 1, <uint64_t>kv_size(<cptr>b"opentracing.ref_type", 20, &reftag))
            p = put_kv(p, <cptr>b"opentracing.ref_type", 20, &reftag)
        if found:
            p = put_status(p, msg, msg_n, code)
        self.out.n = p - self.out.p
        # its resource and scope
        if nmoved:
            rg = self.rgroup(self.proc_enc[pi] + (<const char*>self.moved.p)[:self.moved.n])
        else:
            if self.proc_rgroup[pi] < 0:
                self.proc_rgroup[pi] = self.rgroup(self.proc_enc[pi])
            rg = self.proc_rgroup[pi]
        key = (rg, (<const char*>scope_name)[:scope_name_n],
               (<const char*>scope_version)[:scope_version_n])
        got = self.sgroup_ids.get(key)
        if got is None:
            got = self.sgroup_ids[key] = len(self.sgroups)
            self.sgroups.append(key)
        self.span_sg[i] = got
        return 0

    cdef Py_ssize_t event_name(self, Py_ssize_t* eff, Py_ssize_t m) noexcept:
        """Which field names the event: ``event``, else ``message`` (strings), else none."""
        cdef Py_ssize_t q
        cdef Tag* t
        for q in range(m):
            t = &self.tags[eff[q]]
            if t.vt == V_STR and is_lit(t.k, t.kn, b"event", 5):
                return q
        for q in range(m):
            t = &self.tags[eff[q]]
            if t.vt == V_STR and is_lit(t.k, t.kn, b"message", 7):
                return q
        return -1

    cdef Py_ssize_t event_size(self, Py_ssize_t* log) noexcept:
        cdef Py_ssize_t lm = log[0], name_q = log[1], q
        cdef Py_ssize_t size = 9
        cdef Tag* t
        if name_q >= 0:
            size += ldsize(self.tags[log[2 + name_q]].sn)
        else:
            size += ldsize(3)
        for q in range(lm):
            if q != name_q:
                t = &self.tags[log[2 + q]]
                size += ldsize(kv_size(t.k, t.kn, t))
        return size

    cdef int ref_tag(self, Ref* ref, Tag* out) except -1:
        out.vt = V_STR
        if ref.rtype == 0:
            out.s, out.sn = <cptr>b"child_of", 8
        elif ref.rtype == 1:
            out.s, out.sn = <cptr>b"follows_from", 12
        else:
            self.set_text(&out.s, &out.sn, str(ref.rtype))
        return 0

    cdef Py_ssize_t link_size(self, Ref* ref) except -1:
        cdef Tag t
        self.ref_tag(ref, &t)
        return 10 + 18 + ldsize(kv_size(<cptr>b"opentracing.ref_type", 20, &t))

    cdef bytes encode(self):
        """The serialized OTLP ``ExportTraceServiceRequest`` of the batch."""
        cdef Py_ssize_t i, n = self.nspans
        cdef Py_ssize_t* eff
        cdef Py_ssize_t* leff
        cdef Py_ssize_t* span_len
        self.rgroup_ids = {}
        self.rgroups = []
        self.sgroup_ids = {}
        self.sgroups = []
        self.proc_enc = [None] * self.nprocs
        self.proc_r0 = <Py_ssize_t*>PyMem_Malloc(self.nprocs * sizeof(Py_ssize_t))
        self.proc_rn = <Py_ssize_t*>PyMem_Malloc(self.nprocs * sizeof(Py_ssize_t))
        self.proc_rgroup = <Py_ssize_t*>PyMem_Malloc(self.nprocs * sizeof(Py_ssize_t))
        self.span_sg = <Py_ssize_t*>PyMem_Malloc((n + 1) * sizeof(Py_ssize_t))
        self.span_off = <Py_ssize_t*>PyMem_Malloc((n + 1) * sizeof(Py_ssize_t) * 2)
        # scratch: a span's tags, then its logs' fields (each with a count and a name index)
        self.eff = <Py_ssize_t*>PyMem_Malloc((3 * self.ntags + 2 * self.nlogs + 16)
                                             * sizeof(Py_ssize_t))
        self.cls = <int*>PyMem_Malloc((self.ntags + 16) * sizeof(int))
        self.links = <Py_ssize_t*>PyMem_Malloc((self.nrefs + 1) * sizeof(Py_ssize_t))
        if (self.proc_r0 == NULL or self.proc_rn == NULL or self.proc_rgroup == NULL
                or self.span_sg == NULL or self.span_off == NULL
                or self.eff == NULL or self.cls == NULL or self.links == NULL):
            raise MemoryError()
        for i in range(self.nprocs):
            self.proc_rgroup[i] = -2
        span_len = self.span_off + n + 1
        eff = self.eff
        leff = eff + self.ntags + 8  # before resource tags join the model
        for i in range(n):
            self.encode_span(i, eff, self.cls, leff)
            span_len[i] = self.out.n - self.span_off[i]
        # group the spans: resource, then scope, in order of first appearance
        scopes = [(key[0], self.scope_message(j)) for j, key in enumerate(self.sgroups)]
        return assemble(self.out.p, self.span_off, span_len, self.span_sg, n, self.rgroups, scopes,
                        True)

    cdef bytes scope_message(self, Py_ssize_t j):
        cdef bytes name = self.sgroups[j][1]
        cdef bytes version = self.sgroups[j][2]
        cdef bytes out = PyBytes_FromStringAndSize(
            NULL, (ldsize(len(name)) if name else 0) + (ldsize(len(version)) if version else 0)
        )
        cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(out)
        if name:
            p = put_ld(p, 0x0A, <cptr>PyBytes_AS_STRING(name), len(name))
        if version:
            put_ld(p, 0x12, <cptr>PyBytes_AS_STRING(version), len(version))
        return out


_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_STATUS_NAMES = {"OK": STATUS_OK, "ERROR": STATUS_ERROR}


cdef int ascii_kind(cptr s, Py_ssize_t n) noexcept:
    """``span.kind`` (any case) → OTLP span kind; 0 when unknown."""
    cdef char low[9]
    cdef Py_ssize_t j
    if n < 6 or n > 8:
        return 0
    for j in range(n):
        low[j] = s[j] | 0x20 if b'A' <= s[j] <= b'Z' else s[j]
    if is_lit(<cptr>low, n, b"internal", 8):
        return 1
    if is_lit(<cptr>low, n, b"server", 6):
        return 2
    if is_lit(<cptr>low, n, b"client", 6):
        return 3
    if is_lit(<cptr>low, n, b"producer", 8):
        return 4
    if is_lit(<cptr>low, n, b"consumer", 8):
        return 5
    return 0


cdef int ascii_status(cptr s, Py_ssize_t n) noexcept:
    """``otel.status_code`` (any case) → OTLP status code."""
    cdef char up[5]
    cdef Py_ssize_t j
    if n != 2 and n != 5:
        return 0
    for j in range(n):
        up[j] = s[j] & ~0x20 if b'a' <= s[j] <= b'z' else s[j]
    if is_lit(<cptr>up, n, b"OK", 2):
        return STATUS_OK
    if is_lit(<cptr>up, n, b"ERROR", 5):
        return STATUS_ERROR
    return 0


# ---------------------------------------------------------------------------------------------
# entry points (the Python API with its documentation is threadline.model.jaeger)


def thrift_batch_to_otlp(data: bytes, protocol: str = "binary") -> tuple[bytes, int]:
    """A thrift ``jaeger.Batch`` struct → (OTLP request bytes, span count)."""
    cdef Batch batch = Batch()
    try:
        batch.thrift_batch(bytes(data), protocol == "compact")
    except ValueError as e:
        raise ValueError(f"invalid Jaeger thrift ({protocol}) Batch: {e}") from None
    return batch.encode(), batch.nspans


def agent_message_to_otlp(data: bytes, protocol: str) -> tuple[bytes, int]:
    """An ``Agent.emitBatch`` call message → (OTLP request bytes, span count)."""
    cdef Batch batch = Batch()
    try:
        batch.agent_message(bytes(data), protocol == "compact")
    except ValueError as e:
        raise ValueError(f"invalid Jaeger agent message ({protocol} thrift): {e}") from None
    return batch.encode(), batch.nspans


def post_spans_to_otlp(data: bytes) -> tuple[bytes, int]:
    """A serialized api_v2 ``PostSpansRequest`` → (OTLP request bytes, span count)."""
    cdef Batch batch = Batch()
    try:
        batch.post_spans(bytes(data))
    except SpanError as e:
        raise ValueError(str(e)) from None
    except ValueError as e:
        raise ValueError(f"invalid jaeger.api_v2.PostSpansRequest protobuf: {e}") from None
    return batch.encode(), batch.nspans
