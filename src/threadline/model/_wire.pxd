# cython: language_level=3
"""Helpers shared by the compiled translators (all inline): protobuf wire-format writing and
reading, growable arrays of structs, and a tag list seen as a dict."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcmp, memcpy

cdef extern from *:
    ctypedef long long i128 "__int128"

ctypedef const uint8_t* cptr


cdef struct Buf:
    uint8_t* p
    Py_ssize_t n
    Py_ssize_t cap


cdef inline int buf_grow(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap * 2 if b.cap else 4096
    while cap < b.n + extra:
        cap *= 2
    cdef uint8_t* p = <uint8_t*>PyMem_Realloc(b.p, cap)
    if p == NULL:
        raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef inline int reserve(Buf* b, Py_ssize_t extra) except -1:
    if b.n + extra > b.cap:
        buf_grow(b, extra)
    return 0


cdef inline Py_ssize_t vsize(uint64_t v) noexcept:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline Py_ssize_t ldsize(Py_ssize_t n) noexcept:
    """Size of a length-delimited field with a one-byte tag and ``n`` bytes of payload."""
    return 1 + vsize(<uint64_t>n) + n


cdef inline uint8_t* put_varint(uint8_t* p, uint64_t v) noexcept:
    while v >= 0x80:
        p[0] = <uint8_t>(v | 0x80)
        v >>= 7
        p += 1
    p[0] = <uint8_t>v
    return p + 1


cdef inline uint8_t* put_fixed64(uint8_t* p, uint64_t v) noexcept:
    cdef int j
    for j in range(8):
        p[j] = <uint8_t>(v >> (8 * j))
    return p + 8


cdef inline uint8_t* put_ld(uint8_t* p, uint8_t tag, cptr s, Py_ssize_t n) noexcept:
    p[0] = tag
    p = put_varint(p + 1, <uint64_t>n)
    if n:
        memcpy(p, s, n)
    return p + n


cdef inline int utf8_valid(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef uint64_t w
    cdef uint8_t c0, c1
    while i < n:
        while i + 8 <= n:
            memcpy(&w, s + i, 8)
            if w & <uint64_t>0x8080808080808080:
                break
            i += 8
        if i >= n:
            break
        c0 = s[i]
        if c0 < 0x80:
            i += 1
        elif c0 < 0xC2:
            return 0
        elif c0 < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return 0
            i += 2
        elif c0 < 0xF0:
            if i + 2 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return 0
            c1 = s[i + 1]
            if (c0 == 0xE0 and c1 < 0xA0) or (c0 == 0xED and c1 >= 0xA0):
                return 0
            i += 3
        elif c0 < 0xF5:
            if (i + 3 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80):
                return 0
            c1 = s[i + 1]
            if (c0 == 0xF0 and c1 < 0x90) or (c0 == 0xF4 and c1 >= 0x90):
                return 0
            i += 4
        else:
            return 0
    return 1


# --- growable arrays of structs --------------------------------------------------------------

cdef inline void* grow(void* items, Py_ssize_t* cap, Py_ssize_t n, size_t size,
                       Py_ssize_t first) except NULL:
    """``items`` (``n`` used of ``cap``, each ``size`` bytes) with room for one more."""
    cdef void* p
    if n < cap[0] and items != NULL:
        return items
    cap[0] = cap[0] * 2 if cap[0] else first
    p = PyMem_Realloc(items, cap[0] * size)
    if p == NULL:
        raise MemoryError()
    return p


# --- a tag list as a dict ----------------------------------------------------------------------

cdef struct Keyed:
    cptr k  # every tag struct starts with its key
    Py_ssize_t kn


cdef inline Py_ssize_t dedupe(const char* base, size_t stride, Py_ssize_t t0, Py_ssize_t tn,
                              Py_ssize_t* eff) except -1:
    """The tags ``t0``..``t0 + tn`` of an array of structs starting with a ``Keyed`` as a dict:
    ``eff`` gets their indices in order of each key's first appearance, the last value of a
    repeated key winning. Returns how many. Linear search while the list is short, a dict of
    the keys for long ones (no quadratic cost)."""
    cdef Py_ssize_t m = 0, j, q
    cdef Keyed* t
    cdef Keyed* u
    cdef dict seen
    if tn <= 64:
        for j in range(t0, t0 + tn):
            t = <Keyed*>(base + j * stride)
            for q in range(m):
                u = <Keyed*>(base + eff[q] * stride)
                if u.kn == t.kn and memcmp(u.k, t.k, t.kn) == 0:
                    eff[q] = j
                    break
            else:
                eff[m] = j
                m += 1
        return m
    seen = {}
    for j in range(t0, t0 + tn):
        t = <Keyed*>(base + j * stride)
        key = (<const char*>t.k)[:t.kn]
        got = seen.get(key)
        if got is None:
            seen[key] = m
            eff[m] = j
            m += 1
        else:
            eff[<Py_ssize_t>got] = j
    return m


# --- protobuf reading (ValueError "... at byte N" on malformed input) -------------------------

cdef struct PReader:
    cptr data
    Py_ssize_t pos
    int number  # of the last field header read


cdef inline uint64_t pb_varint(PReader* r, Py_ssize_t end) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if r.pos >= end:
            raise ValueError(f"truncated varint at byte {r.pos}")
        b = r.data[r.pos]
        r.pos += 1
        if shift < 64:
            result |= (<uint64_t>(b & 0x7F)) << shift
        if not b & 0x80:
            return result
        shift += 7
        if shift >= 70:
            raise ValueError(f"varint longer than 10 bytes at byte {r.pos}")


cdef inline int pb_tag(PReader* r, Py_ssize_t end, int* wire) except -1:
    """A field header (``r.pos < end``): its number, which may be 0, with its wire type in
    ``wire``. As upb: at most 5 bytes and 32 bits."""
    cdef Py_ssize_t at = r.pos
    cdef uint64_t key = r.data[at]
    if key < 0x80:
        r.pos = at + 1
    else:
        key = pb_varint(r, end)
        if r.pos - at > 5 or key > 0xFFFFFFFF:
            raise ValueError(f"invalid field tag at byte {at}")
    wire[0] = <int>(key & 7)
    return <int>(key >> 3)


cdef inline int pb_field(PReader* r, Py_ssize_t end, int* wire) except -1:
    """The next field's number (0 at ``end``), with its wire type in ``wire``."""
    if r.pos >= end:
        return 0
    r.number = pb_tag(r, end, wire)
    if r.number == 0:
        raise ValueError(f"invalid field number 0 at byte {r.pos}")
    return r.number


cdef inline Py_ssize_t pb_len(PReader* r, Py_ssize_t end) except -1:
    """A length-delimited field's payload: its end (it starts at ``r.pos``)."""
    cdef Py_ssize_t at = r.pos
    cdef uint64_t n = pb_varint(r, end)
    if r.pos - at > 5:
        raise ValueError(f"length prefix longer than 5 bytes at byte {at}")
    if n > <uint64_t>(end - r.pos):
        raise ValueError(f"truncated length-delimited field at byte {r.pos}")
    return r.pos + <Py_ssize_t>n


cdef inline int pb_bytes(PReader* r, Py_ssize_t end, cptr* s, Py_ssize_t* n, bint text) except -1:
    """A bytes field's payload; a string field (``text``) must be UTF-8."""
    cdef Py_ssize_t stop = pb_len(r, end)
    s[0] = r.data + r.pos
    n[0] = stop - r.pos
    if text and not utf8_valid(s[0], n[0]):
        raise ValueError(f"string field is not valid UTF-8 at byte {r.pos}")
    r.pos = stop
    return 0


cdef inline uint64_t pb_fixed64(PReader* r, Py_ssize_t end) except? 0xFFFFFFFFFFFFFFFF:
    cdef uint64_t v = 0
    cdef int j
    if end - r.pos < 8:
        raise ValueError(f"truncated fixed64 at byte {r.pos}")
    for j in range(8):
        v |= (<uint64_t>r.data[r.pos + j]) << (8 * j)
    r.pos += 8
    return v


cdef inline int pb_skip(PReader* r, int wire, Py_ssize_t end) except -1:
    """Skip the value of the field just read (groups too, as the protobuf library does)."""
    return pb_skip_value(r, wire, r.number, end, 0)


cdef inline int pb_skip_value(PReader* r, int wire, int number, Py_ssize_t end,
                              int depth) except -1:
    cdef int w, f
    if wire == 0:
        pb_varint(r, end)
    elif wire == 1 or wire == 5:
        if end - r.pos < (8 if wire == 1 else 4):
            raise ValueError(f"truncated fixed-size field at byte {r.pos}")
        r.pos += 8 if wire == 1 else 4
    elif wire == 2:
        r.pos = pb_len(r, end)
    elif wire == 3:
        if depth > 100:
            raise ValueError(f"groups nested too deeply at byte {r.pos}")
        while True:
            if r.pos >= end:
                raise ValueError(f"unterminated group at byte {r.pos}")
            f = pb_tag(r, end, &w)  # field number 0 is fine inside a group (as upb)
            if w == 4:
                if f != number:
                    raise ValueError(f"mismatched end of group at byte {r.pos}")
                return 0
            pb_skip_value(r, w, f, end, depth + 1)
    else:
        raise ValueError(f"invalid wire type {wire} at byte {r.pos}")
    return 0


# --- the request -------------------------------------------------------------------------------

cdef inline bytes assemble(cptr spans, Py_ssize_t* off, Py_ssize_t* length, Py_ssize_t* scope_of,
                           Py_ssize_t n, list resources, list scopes, bint keep_empty):
    """A serialized ``ExportTraceServiceRequest``: one ResourceSpans per entry of ``resources``
    (serialized ``Resource`` messages), holding one ScopeSpans per entry ``(resource index,
    serialized InstrumentationScope)`` of ``scopes`` that is its, holding the spans (span ``i``
    at ``spans + off[i]``, ``length[i]`` bytes, of scope ``scope_of[i]``), all in order. Empty
    resource and scope messages are written when ``keep_empty``, else left out."""
    cdef Py_ssize_t nsc = len(scopes), nres = len(resources), i, j, k, total = 0
    cdef Py_ssize_t* first
    cdef Py_ssize_t* last
    cdef Py_ssize_t* size
    cdef Py_ssize_t* res_size
    cdef Py_ssize_t* next_span
    cdef uint8_t* p
    cdef bytes msg
    first = <Py_ssize_t*>PyMem_Malloc((3 * nsc + nres + n + 1) * sizeof(Py_ssize_t))
    if first == NULL:
        raise MemoryError()
    try:
        last = first + nsc
        size = last + nsc
        res_size = size + nsc
        next_span = res_size + nres
        for j in range(nsc):
            first[j] = -1
            msg = scopes[j][1]
            size[j] = ldsize(len(msg)) if msg or keep_empty else 0
        for i in range(n):
            j = scope_of[i]
            next_span[i] = -1
            if first[j] < 0:
                first[j] = i
            else:
                next_span[last[j]] = i
            last[j] = i
            size[j] += ldsize(length[i])
        for j in range(nres):
            msg = resources[j]
            res_size[j] = ldsize(len(msg)) if msg or keep_empty else 0
        for j in range(nsc):
            res_size[<Py_ssize_t>scopes[j][0]] += ldsize(size[j])
        for j in range(nres):
            total += ldsize(res_size[j])
        out = PyBytes_FromStringAndSize(NULL, total)
        p = <uint8_t*>PyBytes_AS_STRING(out)
        for i in range(nres):
            p[0] = 0x0A
            p = put_varint(p + 1, <uint64_t>res_size[i])
            msg = resources[i]
            if msg or keep_empty:
                p = put_ld(p, 0x0A, <cptr>PyBytes_AS_STRING(msg), len(msg))
            for j in range(nsc):
                if <Py_ssize_t>scopes[j][0] != i:
                    continue
                p[0] = 0x12
                p = put_varint(p + 1, <uint64_t>size[j])
                msg = scopes[j][1]
                if msg or keep_empty:
                    p = put_ld(p, 0x0A, <cptr>PyBytes_AS_STRING(msg), len(msg))
                k = first[j]
                while k >= 0:
                    p = put_ld(p, 0x12, spans + off[k], length[k])
                    k = next_span[k]
        return out
    finally:
        PyMem_Free(first)


# --- span fields -------------------------------------------------------------------------------

cdef inline Py_ssize_t status_size(Py_ssize_t msg_n, int code) noexcept:
    """Size of a ``Status`` (message, code < 128; each left out when empty)."""
    return (ldsize(msg_n) if msg_n else 0) + (2 if code else 0)


cdef inline uint8_t* put_status(uint8_t* p, cptr msg, Py_ssize_t msg_n, int code) noexcept:
    """Span field 15, the status."""
    p[0] = 0x7A
    p = put_varint(p + 1, <uint64_t>status_size(msg_n, code))
    if msg_n:
        p = put_ld(p, 0x12, msg, msg_n)
    if code:
        p[0] = 0x18
        p[1] = <uint8_t>code
        p += 2
    return p
