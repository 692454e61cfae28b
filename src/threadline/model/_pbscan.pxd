# cython: language_level=3
"""Protobuf wire-format reading without the GIL, into growable C buffers: shared (all inline)
by the compiled OTLP decoders (``_otlp_columns`` for spans, ``_otlp_logs`` for log records).

Every read is bounds-checked against the end of the enclosing message. A malformed input sets
the first error in the decoder's ``Rd`` (a static message, its byte offset and the field tag
involved) and the reading function returns -1, which its callers pass on. ``AnyValue``s are
checked as the protobuf library parses them (oneof: the last value set wins; nesting limited to
100 levels; strings valid UTF-8), their scalar value kept in an ``AnyState``.
"""

from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport realloc
from libc.string cimport memcpy

from threadline.model._wire cimport utf8_valid

ctypedef const unsigned char* cptr


cdef enum:
    MAX_DEPTH = 100          # same nesting limit as the protobuf (upb) parser
    INT32_LIMIT = 2147483647

    # attribute value types: one map column each
    T_STR = 0
    T_INT = 1
    T_FLOAT = 2
    T_BOOL = 3
    T_RAW = 4
    N_TYPES = 5

    # buffers of one map column (map<string, X>), relative to the map's first buffer; the
    # five typed maps of an attribute list (T_STR .. T_RAW) follow each other
    F_ROW_OFF = 0            # int32 offsets into the entries, one per row (+1)
    F_KEY_OFF = 1            # int32 offsets of the key strings
    F_KEY_DATA = 2
    F_VAL = 3                # value offsets (str/raw) or fixed-width values (int/float/bool)
    F_VAL_DATA = 4           # value bytes (str/raw)
    MAP_STRIDE = 5
    MAP_BUFS = 25            # N_TYPES * MAP_STRIDE


cdef struct Rd:
    cptr base                # start of the input, for error offsets
    const char* err          # static message of the first error, NULL if none
    size_t err_off
    uint64_t err_tag         # tag involved in the error, 0 if none
    bint oom


# ---------------------------------------------------------------------------------------
# growable buffers
# ---------------------------------------------------------------------------------------

cdef struct Buf:
    unsigned char* data
    size_t len
    size_t cap


cdef struct AnyState:
    int kind                 # -1: no value set, else T_*
    cptr s
    size_t n
    uint64_t u



cdef inline int fail(Rd* c, cptr at, const char* msg) noexcept nogil:
    if c.err == NULL:
        c.err = msg
        c.err_off = <size_t>(at - c.base)
    return -1


cdef inline int fail_tag(Rd* c, cptr at, const char* msg, uint64_t tag) noexcept nogil:
    if c.err == NULL:
        c.err_tag = tag
    return fail(c, at, msg)


cdef inline int buf_grow(Rd* c, Buf* b, size_t need) noexcept nogil:
    cdef size_t newcap = b.cap * 2 if b.cap else 256
    cdef unsigned char* nd
    while newcap < b.len + need:
        newcap *= 2
    nd = <unsigned char*>realloc(b.data, newcap)
    if nd == NULL:
        c.oom = True
        return fail(c, c.base, "out of memory")
    b.data = nd
    b.cap = newcap
    return 0


cdef inline int buf_put(Rd* c, Buf* b, const void* src, size_t n) noexcept nogil:
    if b.len + n > b.cap:
        if buf_grow(c, b, n) < 0:
            return -1
    if n:
        memcpy(b.data + b.len, src, n)
        b.len += n
    return 0


cdef inline int put_u8(Rd* c, Buf* b, uint8_t v) noexcept nogil:
    if b.len + 1 > b.cap:
        if buf_grow(c, b, 1) < 0:
            return -1
    b.data[b.len] = v
    b.len += 1
    return 0


cdef inline int put_u32(Rd* c, Buf* b, uint32_t v) noexcept nogil:
    return buf_put(c, b, &v, 4)


cdef inline int put_u64(Rd* c, Buf* b, uint64_t v) noexcept nogil:
    return buf_put(c, b, &v, 8)


cdef inline int put_off(Rd* c, Buf* b, size_t v) noexcept nogil:
    """Append an int32 offset (or entry count)."""
    cdef int32_t o
    if v > INT32_LIMIT:
        return fail(c, c.base, "decoded batch too large (a column exceeds 2 GiB)")
    o = <int32_t>v
    return buf_put(c, b, &o, 4)


cdef inline size_t n_offs(Buf* b) noexcept nogil:
    """Number of values in an offsets buffer (which always starts with a 0)."""
    return b.len // 4 - 1


cdef inline int put_str(Rd* c, Buf* off, Buf* data, cptr s, size_t n) noexcept nogil:
    if buf_put(c, data, s, n) < 0:
        return -1
    return put_off(c, off, data.len)


# ---------------------------------------------------------------------------------------
# wire format primitives
# ---------------------------------------------------------------------------------------

cdef inline int rd_varint_slow(Rd* c, cptr* pp, cptr end, uint64_t* out) noexcept nogil:
    cdef cptr p = pp[0]
    cdef uint64_t v = 0
    cdef uint64_t byte
    cdef int shift = 0
    while True:
        if p >= end:
            return fail(c, pp[0], "truncated varint")
        byte = p[0]
        p += 1
        v |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift >= 70:
            return fail(c, pp[0], "varint longer than 10 bytes")
    out[0] = v
    pp[0] = p
    return 0


cdef inline int rd_varint(Rd* c, cptr* pp, cptr end, uint64_t* out) noexcept nogil:
    cdef cptr p = pp[0]
    if p < end and p[0] < 0x80:
        out[0] = p[0]
        pp[0] = p + 1
        return 0
    return rd_varint_slow(c, pp, end, out)


cdef inline int rd_tag_any(Rd* c, cptr* pp, cptr end, uint32_t* tag) noexcept nogil:
    """A field tag, field number 0 included (upb allows it inside a group it skips)."""
    cdef cptr p = pp[0]
    cdef uint64_t v
    if p[0] < 0x80:                       # callers guarantee p < end
        v = p[0]
        pp[0] = p + 1
    else:
        if rd_varint_slow(c, pp, end, &v) < 0:
            return -1
        if pp[0] - p > 5 or v > <uint64_t>0xFFFFFFFF:
            return fail(c, p, "invalid field tag")
    tag[0] = <uint32_t>v
    return 0


cdef inline int rd_tag(Rd* c, cptr* pp, cptr end, uint32_t* tag) noexcept nogil:
    """A field tag of a message: field number 0 is refused."""
    cdef cptr p = pp[0]
    if rd_tag_any(c, pp, end, tag) < 0:
        return -1
    if tag[0] < 8:
        return fail(c, p, "invalid field number 0")
    return 0


cdef inline int rd_len(Rd* c, cptr* pp, cptr end, cptr* sub, size_t* n) noexcept nogil:
    """Read a length prefix; set sub/n to the payload and move past it."""
    cdef cptr p = pp[0]
    cdef uint64_t v
    if p < end and p[0] < 0x80:
        v = p[0]
        p += 1
    else:
        if rd_varint_slow(c, &p, end, &v) < 0:
            return -1
        if p - pp[0] > 5:
            return fail(c, pp[0], "length prefix longer than 5 bytes")
    if v > <uint64_t>(end - p):
        return fail(c, pp[0], "length-delimited field extends past the end of its message")
    sub[0] = p
    n[0] = <size_t>v
    pp[0] = p + v
    return 0


cdef inline uint64_t load64(cptr p) noexcept nogil:
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
            | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))


cdef inline int rd_fixed64(Rd* c, cptr* pp, cptr end, uint64_t* out) noexcept nogil:
    cdef cptr p = pp[0]
    if end - p < 8:
        return fail(c, p, "truncated fixed64 field")
    out[0] = load64(p)
    pp[0] = p + 8
    return 0


cdef inline int rd_fixed32(Rd* c, cptr* pp, cptr end, uint32_t* out) noexcept nogil:
    cdef cptr p = pp[0]
    if end - p < 4:
        return fail(c, p, "truncated fixed32 field")
    out[0] = (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
              | (<uint32_t>p[3] << 24))
    pp[0] = p + 4
    return 0


cdef inline int rd_str(Rd* c, cptr* pp, cptr end, cptr* s, size_t* n) noexcept nogil:
    cdef cptr at = pp[0]
    if rd_len(c, pp, end, s, n) < 0:
        return -1
    if not utf8_valid(s[0], n[0]):
        return fail(c, at, "string field is not valid UTF-8")
    return 0


cdef inline int skip_field(Rd* c, cptr* pp, cptr end, uint32_t tag, int depth) noexcept nogil:
    """Skip the value of an unknown field of a message at nesting level ``depth``."""
    cdef uint32_t wt = tag & 7
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    if wt == 0:
        return rd_varint(c, pp, end, &v)
    elif wt == 1:
        if end - pp[0] < 8:
            return fail_tag(c, pp[0], "truncated fixed64 field", tag)
        pp[0] += 8
        return 0
    elif wt == 2:
        return rd_len(c, pp, end, &s, &n)
    elif wt == 5:
        if end - pp[0] < 4:
            return fail_tag(c, pp[0], "truncated fixed32 field", tag)
        pp[0] += 4
        return 0
    elif wt == 3:
        return skip_group(c, pp, end, tag, depth + 1)
    elif wt == 4:
        return fail_tag(c, pp[0], "unexpected end-group tag", tag)
    return fail_tag(c, pp[0], "invalid wire type", tag)


cdef inline int skip_group(Rd* c, cptr* pp, cptr end, uint32_t start_tag, int depth) noexcept nogil:
    cdef uint32_t tag = 0
    if depth > MAX_DEPTH:
        return fail(c, pp[0], "message nesting deeper than 100 levels")
    while True:
        if pp[0] >= end:
            return fail_tag(c, pp[0], "unterminated group", start_tag)
        if rd_tag_any(c, pp, end, &tag) < 0:
            return -1
        if (tag & 7) == 4:
            if (tag >> 3) != (start_tag >> 3):
                return fail_tag(c, pp[0], "mismatched end-group tag", tag)
            return 0
        if skip_field(c, pp, end, tag, depth) < 0:
            return -1


# ---------------------------------------------------------------------------------------
# attribute values (common.v1)
# ---------------------------------------------------------------------------------------


cdef inline int check_list(Rd* c, cptr p, cptr end, int depth, bint kv) noexcept nogil:
    """Check an ArrayValue (``kv`` false) or KeyValueList (``kv`` true) at level ``depth``."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef AnyState st
    if depth > MAX_DEPTH:
        return fail(c, p, "message nesting deeper than 100 levels")
    while p < end:
        if rd_tag(c, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # values
            if rd_len(c, &p, end, &s, &n) < 0:
                return -1
            if kv:
                if check_keyvalue(c, s, s + n, depth + 1) < 0:
                    return -1
            else:
                st.kind = -1
                if parse_anyvalue(c, s, s + n, &st, depth + 1) < 0:
                    return -1
        elif skip_field(c, &p, end, tag, depth) < 0:
            return -1
    return 0


cdef inline int parse_anyvalue(Rd* c, cptr p, cptr end, AnyState* st, int depth) noexcept nogil:
    """Parse one AnyValue occurrence into ``st``; occurrences merge as in protobuf."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    if depth > MAX_DEPTH:
        return fail(c, p, "message nesting deeper than 100 levels")
    while p < end:
        if rd_tag(c, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # string_value
            if rd_str(c, &p, end, &st.s, &st.n) < 0:
                return -1
            st.kind = T_STR
        elif tag == 0x10:                     # bool_value
            if rd_varint(c, &p, end, &v) < 0:
                return -1
            st.kind = T_BOOL
            st.u = v != 0
        elif tag == 0x18:                     # int_value
            if rd_varint(c, &p, end, &st.u) < 0:
                return -1
            st.kind = T_INT
        elif tag == 0x21:                     # double_value
            if rd_fixed64(c, &p, end, &st.u) < 0:
                return -1
            st.kind = T_FLOAT
        elif tag == 0x2A:                     # array_value
            if rd_len(c, &p, end, &s, &n) < 0:
                return -1
            if check_list(c, s, s + n, depth + 1, False) < 0:
                return -1
            st.kind = T_RAW
        elif tag == 0x32:                     # kvlist_value
            if rd_len(c, &p, end, &s, &n) < 0:
                return -1
            if check_list(c, s, s + n, depth + 1, True) < 0:
                return -1
            st.kind = T_RAW
        elif tag == 0x3A:                     # bytes_value
            if rd_len(c, &p, end, &s, &n) < 0:
                return -1
            st.kind = T_RAW
        elif tag == 0x40:                     # string_value_strindex (profiles only)
            if rd_varint(c, &p, end, &v) < 0:
                return -1
            st.kind = T_RAW
        elif skip_field(c, &p, end, tag, depth) < 0:
            return -1
    return 0


cdef inline int check_keyvalue(Rd* c, cptr p, cptr end, int depth) noexcept nogil:
    """Check the structure of a KeyValue whose content is not stored column-wise."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef AnyState st
    if depth > MAX_DEPTH:
        return fail(c, p, "message nesting deeper than 100 levels")
    st.kind = -1
    while p < end:
        if rd_tag(c, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # key
            if rd_str(c, &p, end, &s, &n) < 0:
                return -1
        elif tag == 0x12:                     # value
            if rd_len(c, &p, end, &s, &n) < 0:
                return -1
            if parse_anyvalue(c, s, s + n, &st, depth + 1) < 0:
                return -1
        elif tag == 0x18:                     # key_strindex
            if rd_varint(c, &p, end, &v) < 0:
                return -1
        elif skip_field(c, &p, end, tag, depth) < 0:
            return -1
    return 0


cdef inline int parse_entity_ref(Rd* c, cptr p, cptr end) noexcept nogil:
    """EntityRef (level 3): checked, not stored."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    while p < end:
        if rd_tag(c, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A or tag == 0x12 or tag == 0x1A or tag == 0x22:
            if rd_str(c, &p, end, &s, &n) < 0:
                return -1
        elif skip_field(c, &p, end, tag, 3) < 0:
            return -1
    return 0


# ---------------------------------------------------------------------------------------
# attribute map columns (F_* layout) and keys
# ---------------------------------------------------------------------------------------

cdef inline int end_map_row(Rd* c, Buf* mb) noexcept nogil:
    """Close one row (span, event, link or log record) of the five map columns at ``mb``."""
    cdef int t
    cdef Buf* b
    for t in range(N_TYPES):
        b = &mb[t * MAP_STRIDE]
        if put_off(c, &b[F_ROW_OFF], n_offs(&b[F_KEY_OFF])) < 0:
            return -1
    return 0


cdef inline void reset_template(Rd* c, Buf* tmpl) noexcept nogil:
    """Empty the attribute template ``tmpl`` (the five maps of one list, entries only)."""
    cdef int t
    cdef int i
    cdef int32_t zero = 0
    for t in range(N_TYPES):
        for i in range(MAP_STRIDE):
            tmpl[t * MAP_STRIDE + i].len = 0
        # offsets buffers start with a 0 (capacity reserved at init, so this cannot fail)
        buf_put(c, &tmpl[t * MAP_STRIDE + F_KEY_OFF], &zero, 4)
        if t == T_STR or t == T_RAW:
            buf_put(c, &tmpl[t * MAP_STRIDE + F_VAL], &zero, 4)


cdef inline int copy_template(Rd* c, Buf* tmpl, Buf* mb) noexcept nogil:
    """Append the attributes in template ``tmpl`` as one more row of the map columns ``mb``."""
    cdef int t
    cdef Buf* src
    cdef Buf* dst
    cdef size_t ne
    for t in range(N_TYPES):
        src = &tmpl[t * MAP_STRIDE]
        dst = &mb[t * MAP_STRIDE]
        ne = n_offs(&src[F_KEY_OFF])
        if ne:
            if put_strs(c, &src[F_KEY_OFF], &src[F_KEY_DATA],
                        &dst[F_KEY_OFF], &dst[F_KEY_DATA], ne) < 0:
                return -1
            if t == T_STR or t == T_RAW:
                if put_strs(c, &src[F_VAL], &src[F_VAL_DATA],
                            &dst[F_VAL], &dst[F_VAL_DATA], ne) < 0:
                    return -1
            elif buf_put(c, &dst[F_VAL], src[F_VAL].data, src[F_VAL].len) < 0:
                return -1
        if put_off(c, &dst[F_ROW_OFF], n_offs(&dst[F_KEY_OFF])) < 0:
            return -1
    return 0


cdef inline int put_strs(Rd* c, Buf* soff, Buf* sdata, Buf* doff, Buf* ddata,
                         size_t ne) noexcept nogil:
    """Append the ``ne`` strings of (soff, sdata) to (doff, ddata)."""
    cdef size_t base = ddata.len
    cdef size_t i
    cdef int32_t* so
    cdef int32_t* do
    if base + sdata.len > INT32_LIMIT:
        return fail(c, c.base, "decoded batch too large (a column exceeds 2 GiB)")
    if buf_put(c, ddata, sdata.data, sdata.len) < 0:
        return -1
    if doff.len + ne * 4 > doff.cap:
        if buf_grow(c, doff, ne * 4) < 0:
            return -1
    so = <int32_t*>soff.data
    do = <int32_t*>(doff.data + doff.len)
    for i in range(ne):
        do[i] = so[i + 1] + <int32_t>base
    doff.len += ne * 4
    return 0


cdef inline uint64_t mix64(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= <uint64_t>0xFF51AFD7ED558CCD
    h ^= h >> 33
    h *= <uint64_t>0xC4CEB9FE1A85EC53
    h ^= h >> 33
    return h


cdef inline uint64_t key_hash(uint64_t seed, cptr s, size_t n) noexcept nogil:
    """Hash of an attribute key (``seed``: random per process, so that a sender cannot plan
    collisions)."""
    cdef uint64_t h = seed ^ (<uint64_t>n * <uint64_t>0x9E3779B97F4A7C15)
    cdef uint64_t w
    while n >= 8:
        memcpy(&w, s, 8)
        h = mix64(h ^ w)
        s += 8
        n -= 8
    w = 0
    memcpy(&w, s, n)
    return mix64(h ^ w ^ (<uint64_t>1 << 63))
