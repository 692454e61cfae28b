# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled OTLP logs decoder: ``ExportLogsServiceRequest`` wire bytes -> LOG_SCHEMA buffers.

Owns the hot path of logs ingest: the request is read with the GIL released (wire reading and
growable buffers from ``_pbscan.pxd``), every accepted log record appended straight into C
buffers (one per Arrow buffer of ``threadline.model.schema.LOG_SCHEMA``), which are handed to
Arrow without copying (``_arrowbuf``). ``threadline.model.otlp_logs`` is the typed Python API
around ``decode``.

Protobuf semantics as the protobuf library's (fields in any order, a repeated scalar keeps its
last value, repeated messages merge, unknown fields of every wire type skipped, strings valid
UTF-8, nesting limited to 100 levels), checked over the whole request, rejected records and
attribute values kept raw included, so that exactly the requests the library parses are
accepted. Rows are what ``otlp_logs`` documents:

* Attributes (resource, scope, record) go to five typed maps per list; a key repeated within a
  list keeps its first occurrence, and an attribute whose value is unset is left out but still
  takes its key. Resource and scope attributes are parsed once into a template copied onto
  each record. Arrays, key-value lists, bytes (and profiles' string indices) are kept as the
  ``AnyValue`` bytes as received (the occurrences concatenated when the value field repeats).
* A string body is ``body``; any other body is kept as ``body_raw`` (its ``AnyValue`` bytes as
  received) with an empty ``body``, the rows concerned counted in ``json_bodies``: the caller
  writes their OTLP/JSON text. An unset body is "" and null.
* A record with a trace id that is neither empty nor 16 bytes, or a span id neither empty nor 8
  bytes, is rejected (``invalid_id``); an empty or all-zero id is null.

The keys seen of the current list are searched linearly while the list is short and through a
hash set (keyed with a per-process random seed) once it is long, so no request costs quadratic
time.
"""

from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcmp

from threadline.model._arrowbuf cimport (
    bitmap_to_arrow, buf_to_arrow, fixed_array, map_array, strings_array,
)
from threadline.model._pbscan cimport *

import os

import pyarrow as pa

from threadline.model._arrowbuf import MAP_TYPES
from threadline.model.schema import LOG_SCHEMA


cdef enum:
    # the record's own attributes: written while it is parsed, rolled back when it is rejected
    B_LOG_MAP = 0
    ROLL_END = 25
    # one value per accepted record
    B_TIME = 25
    B_OBSERVED = 26
    B_SEVERITY = 27
    B_SEV_TEXT_OFF = 28
    B_SEV_TEXT_DATA = 29
    B_BODY_OFF = 30
    B_BODY_DATA = 31
    B_RAW_OFF = 32
    B_RAW_DATA = 33
    B_RAW_VALID = 34         # one byte per row, packed into a bitmap at the end
    B_EVENT_OFF = 35
    B_EVENT_DATA = 36
    B_TRACE_ID = 37
    B_TRACE_VALID = 38
    B_SPAN_ID = 39
    B_SPAN_VALID = 40
    B_FLAGS = 41
    B_SVC_OFF = 42
    B_SVC_DATA = 43
    B_SCOPE_NAME_OFF = 44
    B_SCOPE_NAME_DATA = 45
    B_SCOPE_VER_OFF = 46
    B_SCOPE_VER_DATA = 47
    B_DROPPED = 48
    B_SCOPE_MAP = 49         # scope attribute columns (MAP_BUFS)
    B_RES_MAP = 74           # resource attribute columns (MAP_BUFS)
    # attributes of the current resource / scope, copied onto each record (entries only)
    B_RES_TMPL = 99
    B_SCOPE_TMPL = 124
    N_BUFS = 149

    # attribute lists, each with the keys it has seen
    L_RES = 0
    L_SCOPE = 1
    L_LOG = 2
    N_LISTS = 3
    LINEAR_MAX = 16          # lists shorter than this are searched linearly, longer ones hashed


cdef struct Key:
    cptr s                   # into the input
    size_t n
    uint64_t h               # set once the list is hashed


# the keys of one attribute list so far (also those of attributes left out for no value)
cdef struct Seen:
    Key* keys
    size_t n
    size_t cap
    size_t* slots            # open addressing: key index + 1, 0 free; NULL until hashed
    size_t mask              # slots - 1 (a power of two)


cdef struct Ctx:
    Rd r                     # the input's start and the first error
    Buf b[N_BUFS]
    size_t snap[ROLL_END]
    size_t n_rows
    size_t n_null_raw
    size_t n_null_trace
    size_t n_null_span
    size_t n_json            # rows whose body is not a string (text written by the caller)
    uint64_t n_invalid
    int first_what           # -1: none rejected, 0: trace id, 1: span id
    size_t first_size
    # current resource / scope (pointers into the input)
    cptr svc
    size_t svc_len
    bint have_svc
    cptr scope_name
    size_t scope_name_len
    cptr scope_ver
    size_t scope_ver_len
    Seen seen[N_LISTS]


cdef unsigned char ZEROS[16]        # static storage: all zeros
cdef unsigned char EMPTY[1]
cdef const char* SERVICE_NAME = "service.name"
cdef uint64_t HASH_SEED = int.from_bytes(os.urandom(8), "little")


# ---------------------------------------------------------------------------------------
# keys seen
# ---------------------------------------------------------------------------------------

cdef inline void seen_reset(Seen* ks) noexcept nogil:
    ks.n = 0
    if ks.slots != NULL:
        free(ks.slots)
        ks.slots = NULL


cdef inline void slot_put(Seen* ks, size_t i) noexcept nogil:
    cdef size_t j = <size_t>ks.keys[i].h & ks.mask
    while ks.slots[j]:
        j = (j + 1) & ks.mask
    ks.slots[j] = i + 1


cdef int seen_rehash(Ctx* c, Seen* ks, size_t cap) noexcept nogil:
    cdef size_t i
    free(ks.slots)
    ks.slots = <size_t*>calloc(cap, sizeof(size_t))
    if ks.slots == NULL:
        c.r.oom = True
        return fail(&c.r, c.r.base, "out of memory")
    ks.mask = cap - 1
    for i in range(ks.n):
        slot_put(ks, i)
    return 0


cdef int seen_add(Ctx* c, Seen* ks, cptr key, size_t n) noexcept nogil:
    """1 if ``key`` is already in the list ``ks``, else 0 (and it is added); -1 on error."""
    cdef size_t i
    cdef size_t j
    cdef uint64_t h = 0
    cdef Key* k
    cdef Key* nk
    if ks.slots == NULL:
        for i in range(ks.n):
            k = &ks.keys[i]
            if k.n == n and memcmp(k.s, key, n) == 0:
                return 1
    else:
        h = key_hash(HASH_SEED, key, n)
        j = <size_t>h & ks.mask
        while ks.slots[j]:
            k = &ks.keys[ks.slots[j] - 1]
            if k.h == h and k.n == n and memcmp(k.s, key, n) == 0:
                return 1
            j = (j + 1) & ks.mask
    if ks.n == ks.cap:
        nk = <Key*>realloc(ks.keys, (ks.cap * 2 if ks.cap else 16) * sizeof(Key))
        if nk == NULL:
            c.r.oom = True
            return fail(&c.r, c.r.base, "out of memory")
        ks.keys = nk
        ks.cap = ks.cap * 2 if ks.cap else 16
    k = &ks.keys[ks.n]
    k.s = key
    k.n = n
    k.h = h
    ks.n += 1
    if ks.slots != NULL:
        if ks.n * 2 > ks.mask + 1:
            return seen_rehash(c, ks, (ks.mask + 1) * 2)
        slot_put(ks, ks.n - 1)
    elif ks.n >= LINEAR_MAX:
        for i in range(ks.n):
            ks.keys[i].h = key_hash(HASH_SEED, ks.keys[i].s, ks.keys[i].n)
        return seen_rehash(c, ks, 64)
    return 0


# ---------------------------------------------------------------------------------------
# attributes and values
# ---------------------------------------------------------------------------------------

cdef int put_value(Ctx* c, Buf* vb, Buf* vdata, cptr p, cptr end, cptr val, size_t val_len,
                   int n_val, uint8_t tag) noexcept nogil:
    """Append the raw ``AnyValue`` bytes of a field (``tag``) of the message ``p``..``end``:
    ``val`` when it occurred once, else the concatenation of its occurrences (which is what
    protobuf merges them into)."""
    cdef uint32_t t = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    if n_val <= 1:
        return put_str(&c.r, vb, vdata, val, val_len)
    while p < end:
        rd_tag(&c.r, &p, end, &t)             # cannot fail: checked by the caller
        if t == tag:
            rd_len(&c.r, &p, end, &s, &n)
            if buf_put(&c.r, vdata, s, n) < 0:
                return -1
        else:
            skip_field(&c.r, &p, end, t, 0)
    return put_off(&c.r, vb, vdata.len)


cdef int add_keyvalue(Ctx* c, cptr p, cptr end, int lst, Buf* mb, int depth) noexcept nogil:
    """Parse a KeyValue at level ``depth`` and append it to the maps ``mb`` of list ``lst``
    (left out when its key is already in the list, or when it has no value)."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr key = NULL
    cdef size_t key_len = 0
    cdef cptr val = NULL
    cdef size_t val_len = 0
    cdef int n_val = 0
    cdef cptr q = p
    cdef AnyState st
    cdef int seen
    cdef Buf* m
    st.kind = -1
    while q < end:
        if rd_tag(&c.r, &q, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # key
            if rd_str(&c.r, &q, end, &key, &key_len) < 0:
                return -1
        elif tag == 0x12:                     # value
            if rd_len(&c.r, &q, end, &s, &n) < 0:
                return -1
            if parse_anyvalue(&c.r, s, s + n, &st, depth + 1) < 0:
                return -1
            if n_val == 0:
                val = s
                val_len = n
            n_val += 1
        elif tag == 0x18:                     # key_strindex
            if rd_varint(&c.r, &q, end, &v) < 0:
                return -1
        elif skip_field(&c.r, &q, end, tag, depth) < 0:
            return -1
    seen = seen_add(c, &c.seen[lst], key, key_len)
    if seen:
        return 0 if seen > 0 else -1
    if st.kind < 0:
        return 0
    m = &mb[st.kind * MAP_STRIDE]
    if put_str(&c.r, &m[F_KEY_OFF], &m[F_KEY_DATA], key, key_len) < 0:
        return -1
    if st.kind == T_STR:
        if lst == L_RES and key_len == 12 and memcmp(key, SERVICE_NAME, 12) == 0:
            c.have_svc = True
            c.svc = st.s
            c.svc_len = st.n
        return put_str(&c.r, &m[F_VAL], &m[F_VAL_DATA], st.s, st.n)
    if st.kind == T_INT or st.kind == T_FLOAT:
        return put_u64(&c.r, &m[F_VAL], st.u)
    if st.kind == T_BOOL:
        return put_u8(&c.r, &m[F_VAL], <uint8_t>st.u)
    return put_value(c, &m[F_VAL], &m[F_VAL_DATA], p, end, val, val_len, n_val, 0x12)


# ---------------------------------------------------------------------------------------
# logs.v1 messages
# ---------------------------------------------------------------------------------------

cdef inline int put_id(Ctx* c, int buf, int valid, cptr s, size_t n, size_t width) noexcept nogil:
    """An id column value: null when empty or all zeros (``n`` is 0 or ``width``)."""
    if n == 0 or memcmp(s, ZEROS, width) == 0:
        if buf == B_TRACE_ID:
            c.n_null_trace += 1
        else:
            c.n_null_span += 1
        if buf_put(&c.r, &c.b[buf], ZEROS, width) < 0:
            return -1
        return put_u8(&c.r, &c.b[valid], 0)
    if buf_put(&c.r, &c.b[buf], s, width) < 0:
        return -1
    return put_u8(&c.r, &c.b[valid], 1)


cdef int parse_record(Ctx* c, cptr p, cptr end) noexcept nogil:
    """LogRecord (level 3): parse, validate, then append one row or roll back."""
    cdef cptr start = p
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef uint64_t time = 0
    cdef uint64_t observed = 0
    cdef int32_t severity = 0
    cdef cptr sev_text = NULL
    cdef size_t sev_text_len = 0
    cdef cptr body = NULL
    cdef size_t body_len = 0
    cdef int n_body = 0
    cdef AnyState st
    cdef cptr event = NULL
    cdef size_t event_len = 0
    cdef cptr tid = NULL
    cdef size_t tid_len = 0
    cdef cptr sid = NULL
    cdef size_t sid_len = 0
    cdef uint32_t flags = 0
    cdef uint32_t dropped = 0
    cdef int i
    for i in range(ROLL_END):
        c.snap[i] = c.b[i].len
    seen_reset(&c.seen[L_LOG])
    st.kind = -1
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x09:                       # time_unix_nano
            if rd_fixed64(&c.r, &p, end, &time) < 0:
                return -1
        elif tag == 0x59:                     # observed_time_unix_nano
            if rd_fixed64(&c.r, &p, end, &observed) < 0:
                return -1
        elif tag == 0x10:                     # severity_number (an int32 enum)
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            severity = <int32_t>v
        elif tag == 0x1A:                     # severity_text
            if rd_str(&c.r, &p, end, &sev_text, &sev_text_len) < 0:
                return -1
        elif tag == 0x2A:                     # body (occurrences merge)
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if parse_anyvalue(&c.r, s, s + n, &st, 4) < 0:
                return -1
            if n_body == 0:
                body = s
                body_len = n
            n_body += 1
        elif tag == 0x32:                     # attributes
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if add_keyvalue(c, s, s + n, L_LOG, &c.b[B_LOG_MAP], 4) < 0:
                return -1
        elif tag == 0x38:                     # dropped_attributes_count
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            dropped = <uint32_t>v
        elif tag == 0x45:                     # flags
            if rd_fixed32(&c.r, &p, end, &flags) < 0:
                return -1
        elif tag == 0x4A:                     # trace_id
            if rd_len(&c.r, &p, end, &tid, &tid_len) < 0:
                return -1
        elif tag == 0x52:                     # span_id
            if rd_len(&c.r, &p, end, &sid, &sid_len) < 0:
                return -1
        elif tag == 0x62:                     # event_name
            if rd_str(&c.r, &p, end, &event, &event_len) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 3) < 0:
            return -1

    if (tid_len != 0 and tid_len != 16) or (sid_len != 0 and sid_len != 8):
        for i in range(ROLL_END):
            c.b[i].len = c.snap[i]
        c.n_invalid += 1
        if c.first_what < 0:
            c.first_what = 0 if tid_len != 0 and tid_len != 16 else 1
            c.first_size = tid_len if c.first_what == 0 else sid_len
        return 0

    if put_u64(&c.r, &c.b[B_TIME], time if time else observed) < 0:
        return -1
    if put_u64(&c.r, &c.b[B_OBSERVED], observed) < 0:
        return -1
    if put_u8(&c.r, &c.b[B_SEVERITY], <uint8_t>(0 if severity < 0 else
                                                 (127 if severity > 127 else severity))) < 0:
        return -1
    if put_str(&c.r, &c.b[B_SEV_TEXT_OFF], &c.b[B_SEV_TEXT_DATA], sev_text, sev_text_len) < 0:
        return -1
    if st.kind == T_STR:
        if put_str(&c.r, &c.b[B_BODY_OFF], &c.b[B_BODY_DATA], st.s, st.n) < 0:
            return -1
    elif put_off(&c.r, &c.b[B_BODY_OFF], c.b[B_BODY_DATA].len) < 0:
        return -1
    if st.kind < 0 or st.kind == T_STR:
        c.n_null_raw += 1
        if put_off(&c.r, &c.b[B_RAW_OFF], c.b[B_RAW_DATA].len) < 0:
            return -1
        if put_u8(&c.r, &c.b[B_RAW_VALID], 0) < 0:
            return -1
    else:
        c.n_json += 1
        if put_value(c, &c.b[B_RAW_OFF], &c.b[B_RAW_DATA], start, end, body, body_len,
                     n_body, 0x2A) < 0:
            return -1
        if put_u8(&c.r, &c.b[B_RAW_VALID], 1) < 0:
            return -1
    if put_str(&c.r, &c.b[B_EVENT_OFF], &c.b[B_EVENT_DATA], event, event_len) < 0:
        return -1
    if put_id(c, B_TRACE_ID, B_TRACE_VALID, tid, tid_len, 16) < 0:
        return -1
    if put_id(c, B_SPAN_ID, B_SPAN_VALID, sid, sid_len, 8) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_FLAGS], flags) < 0:
        return -1
    if put_str(&c.r, &c.b[B_SVC_OFF], &c.b[B_SVC_DATA], c.svc, c.svc_len) < 0:
        return -1
    if put_str(&c.r, &c.b[B_SCOPE_NAME_OFF], &c.b[B_SCOPE_NAME_DATA],
               c.scope_name, c.scope_name_len) < 0:
        return -1
    if put_str(&c.r, &c.b[B_SCOPE_VER_OFF], &c.b[B_SCOPE_VER_DATA],
               c.scope_ver, c.scope_ver_len) < 0:
        return -1
    if copy_template(&c.r, &c.b[B_SCOPE_TMPL], &c.b[B_SCOPE_MAP]) < 0:
        return -1
    if copy_template(&c.r, &c.b[B_RES_TMPL], &c.b[B_RES_MAP]) < 0:
        return -1
    if end_map_row(&c.r, &c.b[B_LOG_MAP]) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_DROPPED], dropped) < 0:
        return -1
    c.n_rows += 1
    return 0


cdef int parse_scope(Ctx* c, cptr p, cptr end) noexcept nogil:
    """InstrumentationScope (level 3): attributes go to the template copied onto each record."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # name
            if rd_str(&c.r, &p, end, &c.scope_name, &c.scope_name_len) < 0:
                return -1
        elif tag == 0x12:                     # version
            if rd_str(&c.r, &p, end, &c.scope_ver, &c.scope_ver_len) < 0:
                return -1
        elif tag == 0x1A:                     # attributes
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if add_keyvalue(c, s, s + n, L_SCOPE, &c.b[B_SCOPE_TMPL], 4) < 0:
                return -1
        elif tag == 0x20:                     # dropped_attributes_count: not stored
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 3) < 0:
            return -1
    return 0


cdef int parse_scope_logs(Ctx* c, cptr p, cptr end) noexcept nogil:
    """ScopeLogs (level 2): the scope first, wherever it is, then the records."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr q = p
    reset_template(&c.r, &c.b[B_SCOPE_TMPL])
    seen_reset(&c.seen[L_SCOPE])
    c.scope_name = NULL
    c.scope_name_len = 0
    c.scope_ver = NULL
    c.scope_ver_len = 0
    while q < end:
        if rd_tag(&c.r, &q, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # scope (occurrences merge)
            if rd_len(&c.r, &q, end, &s, &n) < 0:
                return -1
            if parse_scope(c, s, s + n) < 0:
                return -1
        elif tag == 0x1A:                     # schema_url
            if rd_str(&c.r, &q, end, &s, &n) < 0:
                return -1
        elif skip_field(&c.r, &q, end, tag, 2) < 0:
            return -1
    # second pass: the structure was checked by the first one
    q = p
    while q < end:
        rd_tag(&c.r, &q, end, &tag)
        if tag == 0x12:                       # log_records
            rd_len(&c.r, &q, end, &s, &n)
            if parse_record(c, s, s + n) < 0:
                return -1
        else:
            skip_field(&c.r, &q, end, tag, 2)
    return 0


cdef int parse_resource(Ctx* c, cptr p, cptr end) noexcept nogil:
    """Resource (level 2): attributes go to the template copied onto each record."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # attributes
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if add_keyvalue(c, s, s + n, L_RES, &c.b[B_RES_TMPL], 3) < 0:
                return -1
        elif tag == 0x10:                     # dropped_attributes_count: not stored
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
        elif tag == 0x1A:                     # entity_refs
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if parse_entity_ref(&c.r, s, s + n) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 2) < 0:
            return -1
    return 0


cdef int parse_resource_logs(Ctx* c, cptr p, cptr end) noexcept nogil:
    """ResourceLogs (level 1): the resource first, wherever it is, then the scopes."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr q = p
    reset_template(&c.r, &c.b[B_RES_TMPL])
    seen_reset(&c.seen[L_RES])
    c.svc = NULL
    c.svc_len = 0
    c.have_svc = False
    while q < end:
        if rd_tag(&c.r, &q, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # resource (occurrences merge)
            if rd_len(&c.r, &q, end, &s, &n) < 0:
                return -1
            if parse_resource(c, s, s + n) < 0:
                return -1
        elif tag == 0x1A:                     # schema_url
            if rd_str(&c.r, &q, end, &s, &n) < 0:
                return -1
        elif skip_field(&c.r, &q, end, tag, 1) < 0:
            return -1
    q = p
    while q < end:
        rd_tag(&c.r, &q, end, &tag)
        if tag == 0x12:                       # scope_logs
            rd_len(&c.r, &q, end, &s, &n)
            if parse_scope_logs(c, s, s + n) < 0:
                return -1
        else:
            skip_field(&c.r, &q, end, tag, 1)
    return 0


cdef int parse_request(Ctx* c, cptr p, cptr end) noexcept nogil:
    """ExportLogsServiceRequest (level 0)."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # resource_logs
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if parse_resource_logs(c, s, s + n) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 0) < 0:
            return -1
    return 0


# ---------------------------------------------------------------------------------------
# Python side: hand the buffers to Arrow
# ---------------------------------------------------------------------------------------

_OFFSET_BUFS = (
    B_SEV_TEXT_OFF, B_BODY_OFF, B_RAW_OFF, B_EVENT_OFF, B_SVC_OFF, B_SCOPE_NAME_OFF,
    B_SCOPE_VER_OFF,
)
_MAP_BASES = (B_LOG_MAP, B_SCOPE_MAP, B_RES_MAP, B_RES_TMPL, B_SCOPE_TMPL)

_STRING = pa.string()
_BINARY = pa.binary()
_INT8 = pa.int8()
_INT64 = pa.int64()
_UINT32 = pa.uint32()
_TRACE_ID = pa.binary(16)
_SPAN_ID = pa.binary(8)
_TYPES = ("str", "int", "float", "bool", "raw")      # the order of T_STR .. T_RAW

# the column order built by _Decoder.build (checked at import)
_COLUMNS = (
    "time_unix_nano", "observed_time_unix_nano", "severity_number", "severity_text", "body",
    "body_raw", "event_name", "trace_id", "span_id", "flags", "service_name", "scope_name",
    "scope_version", *(f"{p}_attrs_{t}" for p in ("scope", "resource", "log") for t in _TYPES),
    "dropped_attributes_count",
)
if (
    tuple(LOG_SCHEMA.names) != _COLUMNS
    or any(LOG_SCHEMA.field(f"{p}_attrs_{t}").type != MAP_TYPES[i]
           for p in ("scope", "resource", "log") for i, t in enumerate(_TYPES))
):
    raise ImportError("LOG_SCHEMA changed: update threadline.model._otlp_logs")


cdef class _Decoder:
    cdef Ctx* c

    def __cinit__(self):
        cdef int i
        cdef int t
        cdef int m
        self.c = <Ctx*>calloc(1, sizeof(Ctx))
        if self.c == NULL:
            raise MemoryError()
        self.c.first_what = -1
        for i in _OFFSET_BUFS:
            self._zero_offset(i)
        for m in _MAP_BASES:
            for t in range(N_TYPES):
                self._zero_offset(m + t * MAP_STRIDE + F_ROW_OFF)
                self._zero_offset(m + t * MAP_STRIDE + F_KEY_OFF)
                if t == T_STR or t == T_RAW:
                    self._zero_offset(m + t * MAP_STRIDE + F_VAL)

    cdef _zero_offset(self, int i):
        cdef int32_t zero = 0
        if buf_put(&self.c.r, &self.c.b[i], &zero, 4) < 0:
            raise MemoryError()

    def __dealloc__(self):
        cdef int i
        if self.c != NULL:
            for i in range(N_BUFS):
                free(self.c.b[i].data)
            for i in range(N_LISTS):
                free(self.c.seen[i].keys)
                free(self.c.seen[i].slots)
            free(self.c)

    cdef object strings(self, int off, int data, object typ):
        return strings_array(&self.c.b[off], &self.c.b[data], typ)

    cdef object fixed(self, int i, object typ, Py_ssize_t n):
        return fixed_array(&self.c.b[i], typ, n)

    cdef object nullable(self, int i, int valid, object typ, Py_ssize_t n, Py_ssize_t nulls):
        """A fixed-width column with nulls where the ``valid`` bytes are 0."""
        bitmap = bitmap_to_arrow(&self.c.b[valid]) if nulls else None
        return pa.Array.from_buffers(typ, n, [bitmap, buf_to_arrow(&self.c.b[i])],
                                     null_count=nulls)

    cdef list map_columns(self, int mb, Py_ssize_t n_rows):
        cdef int t
        return [map_array(&self.c.b[mb + t * MAP_STRIDE], n_rows, t) for t in range(N_TYPES)]

    cdef object build(self):
        cdef Ctx* c = self.c
        cdef Py_ssize_t n = c.n_rows
        raw_valid = bitmap_to_arrow(&c.b[B_RAW_VALID]) if c.n_null_raw else None
        cols = [
            self.fixed(B_TIME, _INT64, n),
            self.fixed(B_OBSERVED, _INT64, n),
            self.fixed(B_SEVERITY, _INT8, n),
            self.strings(B_SEV_TEXT_OFF, B_SEV_TEXT_DATA, _STRING),
            self.strings(B_BODY_OFF, B_BODY_DATA, _STRING),
            pa.Array.from_buffers(_BINARY, n, [raw_valid, buf_to_arrow(&c.b[B_RAW_OFF]),
                                               buf_to_arrow(&c.b[B_RAW_DATA])],
                                  null_count=c.n_null_raw),
            self.strings(B_EVENT_OFF, B_EVENT_DATA, _STRING),
            self.nullable(B_TRACE_ID, B_TRACE_VALID, _TRACE_ID, n, c.n_null_trace),
            self.nullable(B_SPAN_ID, B_SPAN_VALID, _SPAN_ID, n, c.n_null_span),
            self.fixed(B_FLAGS, _UINT32, n),
            self.strings(B_SVC_OFF, B_SVC_DATA, _STRING),
            self.strings(B_SCOPE_NAME_OFF, B_SCOPE_NAME_DATA, _STRING),
            self.strings(B_SCOPE_VER_OFF, B_SCOPE_VER_DATA, _STRING),
        ]
        cols += self.map_columns(B_SCOPE_MAP, n)
        cols += self.map_columns(B_RES_MAP, n)
        cols += self.map_columns(B_LOG_MAP, n)
        cols.append(self.fixed(B_DROPPED, _UINT32, n))
        return pa.RecordBatch.from_arrays(cols, schema=LOG_SCHEMA)

    cdef object first_error(self):
        cdef Ctx* c = self.c
        if c.first_what < 0:
            return None
        if c.first_what == 0:
            return f"log record trace_id must be 16 bytes, got {c.first_size}"
        return f"log record span_id must be 8 bytes, got {c.first_size}"


def decode(data):
    """Decode a serialized ExportLogsServiceRequest.

    Returns ``(batch, invalid_ids, first_error, json_bodies)``: a LOG_SCHEMA record batch of
    the accepted records (the ``body`` of a row whose body is not a string left empty: its
    ``body_raw`` holds the value), the number of records rejected for a wrong-length id, the
    message about the first of them (or None) and the number of rows whose ``body`` the caller
    has to write. Raises ValueError on malformed input, MemoryError when out of memory.
    """
    cdef const unsigned char[::1] view = data
    cdef _Decoder dec = _Decoder()
    cdef Ctx* c = dec.c
    cdef size_t n = view.shape[0]
    cdef cptr p = &view[0] if n else EMPTY
    cdef int rc
    c.r.base = p
    with nogil:
        rc = parse_request(c, p, p + n)
    if rc < 0:
        if c.r.oom:
            raise MemoryError("out of memory while decoding OTLP logs")
        msg = c.r.err.decode("ascii")
        if c.r.err_tag:
            msg += f" (field {c.r.err_tag >> 3}, wire type {c.r.err_tag & 7})"
        raise ValueError(f"invalid OTLP logs protobuf: {msg} at byte offset {c.r.err_off}")
    return dec.build(), c.n_invalid, dec.first_error(), c.n_json
