# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Compiled OTLP trace decoder: protobuf wire bytes -> SPAN_SCHEMA column buffers.

Owns the hot path of ingest: a hand-written protobuf wire-format reader for
``ExportTraceServiceRequest`` that appends every accepted span straight into C growable
buffers (one per Arrow buffer of ``threadline.model.schema.SPAN_SCHEMA``) without creating
Python objects per span, with the GIL released. The buffers are then handed to Arrow
zero-copy. ``threadline.model.otlp_decode`` is the typed Python API around ``decode``.

Parsing follows protobuf semantics: fields may come in any order, a repeated scalar or
string field keeps its last value, a repeated embedded message is merged, a known field
number with an unexpected wire type is an unknown field, unknown fields of every wire type
(including deprecated groups) are skipped, strings must be valid UTF-8 and nesting is
limited to 100 levels. All of this is checked for the whole message, including the parts
stored as raw bytes (non-scalar attribute values), so every accepted request is also accepted
by the protobuf library.

The wire reading, the growable buffers and the attribute map helpers are shared with the logs
decoder (``_pbscan.pxd``), and so is the hand-off of the buffers to Arrow (``_arrowbuf``).

Attributes of every level (resource, instrumentation scope, span, event, link) go to five
typed map columns each. Resource and scope attributes are parsed once into a template that is
copied onto each span; event and link maps are nested in the ``events`` / ``links`` list
columns (list offsets per span, then map offsets per event or link, then the map entries). Every read is bounds-checked
against the end of the enclosing message; malformed input sets an error and unwinds.

Within one attribute list only the first occurrence of a key is stored (over all five typed
maps of the list): OTLP forbids repeated keys, and a map with a repeated key makes DuckDB
refuse the whole column, i.e. every query over the batch. Later occurrences are still fully
checked, then counted and left out. The check is a linear search of the list's keys while the
list is short (the usual case) and a hash set of them once it is long, so that no request
costs quadratic time.
"""

from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy, memset

from threadline.model._arrowbuf cimport (
    bitmap_to_arrow, buf_to_arrow, fixed_array, map_array, strings_array,
)
from threadline.model._pbscan cimport *

import os

import pyarrow as pa

from threadline.model.schema import SPAN_SCHEMA


cdef enum:
    # (the wire reading, the growable buffers and the map column layout: _pbscan.pxd)

    # Buffers written while a span is being parsed, i.e. before it is validated. They are
    # restored to their lengths at the start of the span when it is rejected. Three groups,
    # each snapshotted only when the span writes to it: span attributes (always), events (at
    # the span's first event), links (at its first link). The event and link map columns
    # have one row per event / link.
    B_SPAN_MAP = 0           # span attribute columns (MAP_BUFS)
    EV_GROUP = 25
    B_EV_MAP = 25            # event attribute columns (MAP_BUFS)
    B_EV_TIME = 50
    B_EV_NAME_OFF = 51
    B_EV_NAME_DATA = 52
    B_EV_DROPPED = 53
    LK_GROUP = 54
    B_LK_MAP = 54            # link attribute columns (MAP_BUFS)
    B_LK_TID = 79
    B_LK_SID = 80
    B_LK_TS_OFF = 81
    B_LK_TS_DATA = 82
    B_LK_DROPPED = 83
    B_LK_FLAGS = 84
    ROLL_END = 85

    # one value per accepted span, written after validation
    B_TRACE_ID = 85
    B_SPAN_ID = 86
    B_PARENT = 87
    B_PARENT_VALID = 88      # one byte per row, packed into a bitmap at the end
    B_TS_OFF = 89
    B_TS_DATA = 90
    B_NAME_OFF = 91
    B_NAME_DATA = 92
    B_KIND = 93
    B_FLAGS = 94
    B_START = 95
    B_DUR = 96
    B_STATUS_CODE = 97
    B_STATUS_MSG_OFF = 98
    B_STATUS_MSG_DATA = 99
    B_SVC_OFF = 100
    B_SVC_DATA = 101
    B_SCOPE_NAME_OFF = 102
    B_SCOPE_NAME_DATA = 103
    B_SCOPE_VER_OFF = 104
    B_SCOPE_VER_DATA = 105
    B_DROPPED_ATTRS = 106
    B_DROPPED_EVENTS = 107
    B_DROPPED_LINKS = 108
    B_EV_LIST_OFF = 109
    B_LK_LIST_OFF = 110
    B_SCOPE_MAP = 111        # scope attribute columns (MAP_BUFS)
    B_RES_MAP = 136          # resource attribute columns (MAP_BUFS)

    # Attributes of the current resource / scope, copied onto each span. Only their entries
    # are used (F_KEY_OFF .. F_VAL_DATA), not F_ROW_OFF.
    B_RES_TMPL = 161
    B_SCOPE_TMPL = 186
    N_BUFS = 211

    # attribute lists, each with its own set of keys seen (see key_seen)
    L_RES = 0                # the resource template
    L_SCOPE = 1              # the scope template
    L_SPAN = 2
    L_EV = 3
    L_LK = 4
    N_LISTS = 5
    LINEAR_MAX = 16          # lists shorter than this are searched linearly, longer ones hashed
    KS_MIN_CAP = 64          # smallest hash table (slots, a power of two)

    # rejection reasons
    R_TRACE_ID = 0
    R_SPAN_ID = 1
    R_PARENT_ID = 2
    R_END_BEFORE_START = 3
    N_REASONS = 4


cdef struct Slot:
    uint64_t h               # hash of the key
    uint64_t ref             # 0: free, else (entry index << 3 | value type) + 1


# the keys of the current (long) attribute list of one kind: an open-addressing hash set
cdef struct KeySet:
    Slot* slots
    size_t cap               # slots in use: a power of two, at most ``alloc``
    size_t alloc
    size_t n
    bint on                  # holds every key of the current list (else: not built yet)


cdef struct Ctx:
    Rd r                     # the input's start and the first error
    Buf b[N_BUFS]
    size_t snap[ROLL_END]
    bint snap_ev             # the event / link group was snapshotted for the current span
    bint snap_lk
    size_t n_rows
    size_t n_null_parent
    uint64_t rejected[N_REASONS]
    # details of the first rejected span
    int first_reason         # -1: none yet
    int first_detail         # 0: wrong length, 1: all zeros
    cptr first_name
    size_t first_name_len
    uint64_t first_a
    uint64_t first_b
    # current resource / scope (pointers into the input)
    cptr svc
    size_t svc_len
    bint have_svc
    cptr scope_name
    size_t scope_name_len
    cptr scope_ver
    size_t scope_ver_len
    # attribute entries left out because their key was already in their list
    uint64_t dup
    uint64_t dup_snap        # ``dup`` at the start of the current span (rolled back with it)
    KeySet ks[N_LISTS]


cdef unsigned char ZEROS[16]        # static storage: all zeros
cdef const char* SERVICE_NAME = "service.name"
# hash seed, random per process: key collisions cannot be planned by a sender
cdef uint64_t HASH_SEED = int.from_bytes(os.urandom(8), "little")


# ---------------------------------------------------------------------------------------
# repeated attribute keys
# ---------------------------------------------------------------------------------------

cdef inline int list_map(int lst) noexcept nogil:
    """The first buffer of the five map columns that attribute list ``lst`` is written to."""
    if lst == L_SPAN:
        return B_SPAN_MAP
    if lst == L_EV:
        return B_EV_MAP
    if lst == L_LK:
        return B_LK_MAP
    if lst == L_RES:
        return B_RES_TMPL
    return B_SCOPE_TMPL


cdef inline size_t list_start(Ctx* c, int lst, int mbt) noexcept nogil:
    """Index of the current list's first entry in the map column (one type) at ``mbt``.

    A template holds one list; the span, event and link columns hold one list per row, and
    the current one starts where the last row closed ends.
    """
    cdef Buf* ro
    if lst == L_RES or lst == L_SCOPE:
        return 0
    ro = &c.b[mbt + F_ROW_OFF]
    return <size_t>(<int32_t*>ro.data)[ro.len // 4 - 1]


cdef inline cptr entry_key(Ctx* c, int mbt, size_t i, size_t* n) noexcept nogil:
    """Key of entry ``i`` of the map column (one type) at ``mbt``."""
    cdef int32_t* ko = <int32_t*>c.b[mbt + F_KEY_OFF].data
    n[0] = <size_t>(ko[i + 1] - ko[i])
    return c.b[mbt + F_KEY_DATA].data + ko[i]


cdef inline void ks_put(Slot* slots, size_t mask, uint64_t h, uint64_t ref) noexcept nogil:
    cdef size_t i = <size_t>h & mask
    while slots[i].ref:
        i = (i + 1) & mask
    slots[i].h = h
    slots[i].ref = ref


cdef int ks_add(Ctx* c, KeySet* ks, uint64_t h, uint64_t ref) noexcept nogil:
    """Add an entry (``ref``: see Slot) to the set, doubling the table past half full."""
    cdef size_t cap
    cdef size_t i
    cdef Slot* nd
    if (ks.n + 1) * 2 > ks.cap:
        cap = ks.cap * 2
        nd = <Slot*>calloc(cap, sizeof(Slot))
        if nd == NULL:
            c.r.oom = True
            return fail(&c.r, c.r.base, "out of memory")
        for i in range(ks.cap):
            if ks.slots[i].ref:
                ks_put(nd, cap - 1, ks.slots[i].h, ks.slots[i].ref)
        free(ks.slots)
        ks.slots = nd
        ks.cap = cap
        ks.alloc = cap
    ks_put(ks.slots, ks.cap - 1, h, ref)
    ks.n += 1
    return 0


cdef int ks_build(Ctx* c, KeySet* ks, int mb, size_t* start, size_t count) noexcept nogil:
    """Fill the set of list kind ``ks`` with the ``count`` keys of the current list."""
    cdef size_t cap = KS_MIN_CAP
    cdef int t
    cdef size_t i
    cdef size_t ne
    cdef size_t n = 0
    cdef cptr k
    while cap < count * 4:
        cap *= 2
    if cap > ks.alloc:
        free(ks.slots)
        ks.slots = <Slot*>malloc(cap * sizeof(Slot))
        ks.alloc = cap if ks.slots != NULL else 0
        if ks.slots == NULL:
            c.r.oom = True
            return fail(&c.r, c.r.base, "out of memory")
    memset(ks.slots, 0, cap * sizeof(Slot))
    ks.cap = cap
    ks.n = 0
    for t in range(N_TYPES):
        ne = n_offs(&c.b[mb + t * MAP_STRIDE + F_KEY_OFF])
        for i in range(start[t], ne):
            k = entry_key(c, mb + t * MAP_STRIDE, i, &n)
            if ks_add(c, ks, key_hash(HASH_SEED, k, n), ((<uint64_t>i << 3) | <uint64_t>t) + 1) < 0:
                return -1
    ks.on = True
    return 0


cdef int key_seen(Ctx* c, int lst, cptr key, size_t key_len, uint64_t* h) noexcept nogil:
    """1 if ``key`` is already in the current attribute list ``lst``, 0 if not, -1 on error.

    Sets ``h`` to the key's hash when the list's key set is on (it then takes the new key).
    """
    cdef KeySet* ks = &c.ks[lst]
    cdef int mb = list_map(lst)
    cdef size_t start[N_TYPES]
    cdef size_t count = 0
    cdef size_t ne
    cdef size_t i
    cdef size_t n = 0
    cdef size_t mask
    cdef int t
    cdef int32_t* ko
    cdef cptr kd
    cdef uint64_t ref
    cdef cptr k
    if not ks.on:
        for t in range(N_TYPES):
            start[t] = list_start(c, lst, mb + t * MAP_STRIDE)
            count += n_offs(&c.b[mb + t * MAP_STRIDE + F_KEY_OFF]) - start[t]
        if count < LINEAR_MAX:
            if count == 0:
                return 0
            for t in range(N_TYPES):
                ko = <int32_t*>c.b[mb + t * MAP_STRIDE + F_KEY_OFF].data
                kd = c.b[mb + t * MAP_STRIDE + F_KEY_DATA].data
                ne = n_offs(&c.b[mb + t * MAP_STRIDE + F_KEY_OFF])
                for i in range(start[t], ne):
                    if (<size_t>(ko[i + 1] - ko[i]) == key_len
                            and memcmp(kd + ko[i], key, key_len) == 0):
                        return 1
            return 0
        if ks_build(c, ks, mb, start, count) < 0:
            return -1
    h[0] = key_hash(HASH_SEED, key, key_len)
    mask = ks.cap - 1
    i = <size_t>h[0] & mask
    while ks.slots[i].ref:
        if ks.slots[i].h == h[0]:
            ref = ks.slots[i].ref - 1
            k = entry_key(c, mb + <int>(ref & 7) * MAP_STRIDE, <size_t>(ref >> 3), &n)
            if n == key_len and memcmp(k, key, key_len) == 0:
                return 1
        i = (i + 1) & mask
    return 0


cdef int add_keyvalue(Ctx* c, cptr p, cptr end, int lst, int depth) noexcept nogil:
    """Parse a KeyValue at level ``depth`` and append it to attribute list ``lst``.

    Left out (and counted) when its key is already in the list.
    """
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
    cdef int t
    cdef int seen
    cdef int mb = list_map(lst)
    cdef uint64_t h = 0
    cdef Buf* vb
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

    seen = key_seen(c, lst, key, key_len, &h)
    if seen:
        if seen < 0:
            return -1
        c.dup += 1
        return 0
    t = st.kind if st.kind >= 0 else T_RAW
    mb += t * MAP_STRIDE
    if put_str(&c.r, &c.b[mb + F_KEY_OFF], &c.b[mb + F_KEY_DATA], key, key_len) < 0:
        return -1
    if c.ks[lst].on:
        if ks_add(c, &c.ks[lst], h,
                  ((<uint64_t>n_offs(&c.b[mb + F_KEY_OFF]) - 1) << 3 | <uint64_t>t) + 1) < 0:
            return -1
    vb = &c.b[mb + F_VAL]
    if t == T_STR:
        if put_str(&c.r, vb, &c.b[mb + F_VAL_DATA], st.s, st.n) < 0:
            return -1
        if (lst == L_RES and not c.have_svc and key_len == 12
                and memcmp(key, SERVICE_NAME, 12) == 0):
            c.have_svc = True
            c.svc = st.s
            c.svc_len = st.n
    elif t == T_INT or t == T_FLOAT:
        if put_u64(&c.r, vb, st.u) < 0:
            return -1
    elif t == T_BOOL:
        if put_u8(&c.r, vb, <uint8_t>st.u) < 0:
            return -1
    elif n_val <= 1:
        # raw: the serialized AnyValue exactly as on the wire
        if put_str(&c.r, vb, &c.b[mb + F_VAL_DATA], val, val_len) < 0:
            return -1
    else:
        # the value field occurred several times: protobuf merges the occurrences, which
        # is what parsing their concatenation does
        q = p
        while q < end:
            rd_tag(&c.r, &q, end, &tag)          # cannot fail: checked above
            if tag == 0x12:
                rd_len(&c.r, &q, end, &s, &n)
                if buf_put(&c.r, &c.b[mb + F_VAL_DATA], s, n) < 0:
                    return -1
            else:
                skip_field(&c.r, &q, end, tag, depth)
        if put_off(&c.r, vb, c.b[mb + F_VAL_DATA].len) < 0:
            return -1
    return 0


# ---------------------------------------------------------------------------------------
# trace.v1 messages
# ---------------------------------------------------------------------------------------

cdef int parse_event(Ctx* c, cptr p, cptr end) noexcept nogil:
    """Span.Event (level 4)."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef uint64_t time = 0
    cdef cptr name = NULL
    cdef size_t name_len = 0
    cdef uint32_t dropped = 0
    c.ks[L_EV].on = False
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x09:                       # time_unix_nano
            if rd_fixed64(&c.r, &p, end, &time) < 0:
                return -1
        elif tag == 0x12:                     # name
            if rd_str(&c.r, &p, end, &name, &name_len) < 0:
                return -1
        elif tag == 0x1A:                     # attributes
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if add_keyvalue(c, s, s + n, L_EV, 5) < 0:
                return -1
        elif tag == 0x20:                     # dropped_attributes_count
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            dropped = <uint32_t>v
        elif skip_field(&c.r, &p, end, tag, 4) < 0:
            return -1
    if put_u64(&c.r, &c.b[B_EV_TIME], time) < 0:
        return -1
    if put_str(&c.r, &c.b[B_EV_NAME_OFF], &c.b[B_EV_NAME_DATA], name, name_len) < 0:
        return -1
    if end_map_row(&c.r, &c.b[B_EV_MAP]) < 0:
        return -1
    return put_u32(&c.r, &c.b[B_EV_DROPPED], dropped)


cdef int parse_link(Ctx* c, cptr p, cptr end) noexcept nogil:
    """Span.Link (level 4). Ids of the wrong width are stored as zeros."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr tid = NULL
    cdef size_t tid_len = 0
    cdef cptr sid = NULL
    cdef size_t sid_len = 0
    cdef cptr ts = NULL
    cdef size_t ts_len = 0
    cdef uint32_t dropped = 0
    cdef uint32_t flags = 0
    c.ks[L_LK].on = False
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # trace_id
            if rd_len(&c.r, &p, end, &tid, &tid_len) < 0:
                return -1
        elif tag == 0x12:                     # span_id
            if rd_len(&c.r, &p, end, &sid, &sid_len) < 0:
                return -1
        elif tag == 0x1A:                     # trace_state
            if rd_str(&c.r, &p, end, &ts, &ts_len) < 0:
                return -1
        elif tag == 0x22:                     # attributes
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if add_keyvalue(c, s, s + n, L_LK, 5) < 0:
                return -1
        elif tag == 0x28:                     # dropped_attributes_count
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            dropped = <uint32_t>v
        elif tag == 0x35:                     # flags
            if rd_fixed32(&c.r, &p, end, &flags) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 4) < 0:
            return -1
    if buf_put(&c.r, &c.b[B_LK_TID], tid if tid_len == 16 else ZEROS, 16) < 0:
        return -1
    if buf_put(&c.r, &c.b[B_LK_SID], sid if sid_len == 8 else ZEROS, 8) < 0:
        return -1
    if put_str(&c.r, &c.b[B_LK_TS_OFF], &c.b[B_LK_TS_DATA], ts, ts_len) < 0:
        return -1
    if end_map_row(&c.r, &c.b[B_LK_MAP]) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_LK_DROPPED], dropped) < 0:
        return -1
    return put_u32(&c.r, &c.b[B_LK_FLAGS], flags)


cdef inline bint all_zero(cptr s, size_t n) noexcept nogil:
    return memcmp(s, ZEROS, n) == 0


cdef inline void snapshot(Ctx* c, int lo, int hi) noexcept nogil:
    cdef int i
    for i in range(lo, hi):
        c.snap[i] = c.b[i].len


cdef inline void restore(Ctx* c, int lo, int hi) noexcept nogil:
    cdef int i
    for i in range(lo, hi):
        c.b[i].len = c.snap[i]


cdef int reject(Ctx* c, int reason, int detail, cptr name, size_t name_len,
                uint64_t a, uint64_t b) noexcept nogil:
    restore(c, B_SPAN_MAP, EV_GROUP)
    c.dup = c.dup_snap                  # repeated keys of a rejected span are not counted
    if c.snap_ev:
        restore(c, EV_GROUP, LK_GROUP)
    if c.snap_lk:
        restore(c, LK_GROUP, ROLL_END)
    c.rejected[reason] += 1
    if c.first_reason < 0:
        c.first_reason = reason
        c.first_detail = detail
        c.first_name = name
        c.first_name_len = name_len
        c.first_a = a
        c.first_b = b
    return 0


cdef int parse_span(Ctx* c, cptr p, cptr end) noexcept nogil:
    """Span (level 3): parse, validate, then append one row or roll back."""
    cdef uint32_t tag = 0
    cdef uint64_t v
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr q
    cdef cptr qend
    cdef cptr tid = NULL
    cdef size_t tid_len = 0
    cdef cptr sid = NULL
    cdef size_t sid_len = 0
    cdef cptr parent = NULL
    cdef size_t parent_len = 0
    cdef cptr ts = NULL
    cdef size_t ts_len = 0
    cdef cptr name = NULL
    cdef size_t name_len = 0
    cdef cptr msg = NULL
    cdef size_t msg_len = 0
    cdef uint64_t kind = 0
    cdef uint64_t code = 0
    cdef uint64_t start = 0
    cdef uint64_t stop = 0
    cdef uint32_t flags = 0
    cdef uint32_t dropped_attrs = 0
    cdef uint32_t dropped_events = 0
    cdef uint32_t dropped_links = 0

    snapshot(c, B_SPAN_MAP, EV_GROUP)
    c.snap_ev = False
    c.snap_lk = False
    c.dup_snap = c.dup
    c.ks[L_SPAN].on = False

    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # trace_id
            if rd_len(&c.r, &p, end, &tid, &tid_len) < 0:
                return -1
        elif tag == 0x12:                     # span_id
            if rd_len(&c.r, &p, end, &sid, &sid_len) < 0:
                return -1
        elif tag == 0x1A:                     # trace_state
            if rd_str(&c.r, &p, end, &ts, &ts_len) < 0:
                return -1
        elif tag == 0x22:                     # parent_span_id
            if rd_len(&c.r, &p, end, &parent, &parent_len) < 0:
                return -1
        elif tag == 0x2A:                     # name
            if rd_str(&c.r, &p, end, &name, &name_len) < 0:
                return -1
        elif tag == 0x30:                     # kind
            if rd_varint(&c.r, &p, end, &kind) < 0:
                return -1
        elif tag == 0x39:                     # start_time_unix_nano
            if rd_fixed64(&c.r, &p, end, &start) < 0:
                return -1
        elif tag == 0x41:                     # end_time_unix_nano
            if rd_fixed64(&c.r, &p, end, &stop) < 0:
                return -1
        elif tag == 0x4A:                     # attributes
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if add_keyvalue(c, s, s + n, L_SPAN, 4) < 0:
                return -1
        elif tag == 0x50:                     # dropped_attributes_count
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            dropped_attrs = <uint32_t>v
        elif tag == 0x5A:                     # events
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if not c.snap_ev:
                snapshot(c, EV_GROUP, LK_GROUP)
                c.snap_ev = True
            if parse_event(c, s, s + n) < 0:
                return -1
        elif tag == 0x60:                     # dropped_events_count
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            dropped_events = <uint32_t>v
        elif tag == 0x6A:                     # links
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if not c.snap_lk:
                snapshot(c, LK_GROUP, ROLL_END)
                c.snap_lk = True
            if parse_link(c, s, s + n) < 0:
                return -1
        elif tag == 0x70:                     # dropped_links_count
            if rd_varint(&c.r, &p, end, &v) < 0:
                return -1
            dropped_links = <uint32_t>v
        elif tag == 0x7A:                     # status (occurrences merge)
            if rd_len(&c.r, &p, end, &q, &n) < 0:
                return -1
            qend = q + n
            while q < qend:
                if rd_tag(&c.r, &q, qend, &tag) < 0:
                    return -1
                if tag == 0x12:               # message
                    if rd_str(&c.r, &q, qend, &msg, &msg_len) < 0:
                        return -1
                elif tag == 0x18:             # code
                    if rd_varint(&c.r, &q, qend, &code) < 0:
                        return -1
                elif skip_field(&c.r, &q, qend, tag, 4) < 0:
                    return -1
        elif tag == 0x85:                     # flags: field 16 has a two-byte tag
            if rd_fixed32(&c.r, &p, end, &flags) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 3) < 0:
            return -1

    # validation
    if tid_len != 16:
        return reject(c, R_TRACE_ID, 0, name, name_len, tid_len, 0)
    if all_zero(tid, 16):
        return reject(c, R_TRACE_ID, 1, name, name_len, 0, 0)
    if sid_len != 8:
        return reject(c, R_SPAN_ID, 0, name, name_len, sid_len, 0)
    if all_zero(sid, 8):
        return reject(c, R_SPAN_ID, 1, name, name_len, 0, 0)
    if parent_len != 0 and parent_len != 8:
        return reject(c, R_PARENT_ID, 0, name, name_len, parent_len, 0)
    if stop < start:
        return reject(c, R_END_BEFORE_START, 0, name, name_len, start, stop)

    # the row
    if buf_put(&c.r, &c.b[B_TRACE_ID], tid, 16) < 0:
        return -1
    if buf_put(&c.r, &c.b[B_SPAN_ID], sid, 8) < 0:
        return -1
    if parent_len == 8 and not all_zero(parent, 8):
        if buf_put(&c.r, &c.b[B_PARENT], parent, 8) < 0:
            return -1
        if put_u8(&c.r, &c.b[B_PARENT_VALID], 1) < 0:
            return -1
    else:
        if buf_put(&c.r, &c.b[B_PARENT], ZEROS, 8) < 0:
            return -1
        if put_u8(&c.r, &c.b[B_PARENT_VALID], 0) < 0:
            return -1
        c.n_null_parent += 1
    if put_str(&c.r, &c.b[B_TS_OFF], &c.b[B_TS_DATA], ts, ts_len) < 0:
        return -1
    if put_str(&c.r, &c.b[B_NAME_OFF], &c.b[B_NAME_DATA], name, name_len) < 0:
        return -1
    if put_u8(&c.r, &c.b[B_KIND], <uint8_t>kind) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_FLAGS], flags) < 0:
        return -1
    if put_u64(&c.r, &c.b[B_START], start) < 0:
        return -1
    if put_u64(&c.r, &c.b[B_DUR], stop - start) < 0:
        return -1
    if put_u8(&c.r, &c.b[B_STATUS_CODE], <uint8_t>code) < 0:
        return -1
    if put_str(&c.r, &c.b[B_STATUS_MSG_OFF], &c.b[B_STATUS_MSG_DATA], msg, msg_len) < 0:
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
    if end_map_row(&c.r, &c.b[B_SPAN_MAP]) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_DROPPED_ATTRS], dropped_attrs) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_DROPPED_EVENTS], dropped_events) < 0:
        return -1
    if put_u32(&c.r, &c.b[B_DROPPED_LINKS], dropped_links) < 0:
        return -1
    if put_off(&c.r, &c.b[B_EV_LIST_OFF], c.b[B_EV_TIME].len // 8) < 0:
        return -1
    if put_off(&c.r, &c.b[B_LK_LIST_OFF], c.b[B_LK_FLAGS].len // 4) < 0:
        return -1
    c.n_rows += 1
    return 0


cdef int parse_scope(Ctx* c, cptr p, cptr end) noexcept nogil:
    """InstrumentationScope (level 3): attributes go to the template copied onto each span."""
    cdef uint32_t tag = 0
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
            if add_keyvalue(c, s, s + n, L_SCOPE, 4) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 3) < 0:
            return -1
    return 0


cdef int parse_scope_spans(Ctx* c, cptr p, cptr end) noexcept nogil:
    """ScopeSpans (level 2): the scope first, wherever it is, then the spans."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr q = p
    reset_template(&c.r, &c.b[B_SCOPE_TMPL])
    c.ks[L_SCOPE].on = False
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
        if tag == 0x12:                       # spans
            rd_len(&c.r, &q, end, &s, &n)
            if parse_span(c, s, s + n) < 0:
                return -1
        else:
            skip_field(&c.r, &q, end, tag, 2)
    return 0


cdef int parse_resource(Ctx* c, cptr p, cptr end) noexcept nogil:
    """Resource (level 2): attributes go to the template copied onto each span."""
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
            if add_keyvalue(c, s, s + n, L_RES, 3) < 0:
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


cdef int parse_resource_spans(Ctx* c, cptr p, cptr end) noexcept nogil:
    """ResourceSpans (level 1): the resource first, wherever it is, then the scopes."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    cdef cptr q = p
    reset_template(&c.r, &c.b[B_RES_TMPL])
    c.ks[L_RES].on = False
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
        if tag == 0x12:                       # scope_spans
            rd_len(&c.r, &q, end, &s, &n)
            if parse_scope_spans(c, s, s + n) < 0:
                return -1
        else:
            skip_field(&c.r, &q, end, tag, 1)
    return 0


cdef int parse_request(Ctx* c, cptr p, cptr end) noexcept nogil:
    """ExportTraceServiceRequest (level 0)."""
    cdef uint32_t tag = 0
    cdef cptr s = NULL
    cdef size_t n = 0
    while p < end:
        if rd_tag(&c.r, &p, end, &tag) < 0:
            return -1
        if tag == 0x0A:                       # resource_spans
            if rd_len(&c.r, &p, end, &s, &n) < 0:
                return -1
            if parse_resource_spans(c, s, s + n) < 0:
                return -1
        elif skip_field(&c.r, &p, end, tag, 0) < 0:
            return -1
    return 0


# ---------------------------------------------------------------------------------------
# Python side: hand the buffers to Arrow
# ---------------------------------------------------------------------------------------

cdef unsigned char EMPTY[1]

# the offsets buffers outside the map columns (each starts with one 0)
_OFFSET_BUFS = (
    B_EV_NAME_OFF, B_LK_TS_OFF, B_TS_OFF, B_NAME_OFF, B_STATUS_MSG_OFF, B_SVC_OFF,
    B_SCOPE_NAME_OFF, B_SCOPE_VER_OFF, B_EV_LIST_OFF, B_LK_LIST_OFF,
)
# the five map columns of each attribute scope, and the templates
_MAP_BASES = (B_SPAN_MAP, B_EV_MAP, B_LK_MAP, B_SCOPE_MAP, B_RES_MAP, B_RES_TMPL, B_SCOPE_TMPL)

_STRING = pa.string()
_BINARY = pa.binary()
_BOOL = pa.bool_()
_INT8 = pa.int8()
_INT64 = pa.int64()
_UINT32 = pa.uint32()
_TRACE_ID = pa.binary(16)
_SPAN_ID = pa.binary(8)
_TYPES = ("str", "int", "float", "bool", "raw")      # the order of T_STR .. T_RAW
_MAP_TYPES = tuple(SPAN_SCHEMA.field(f"span_attrs_{t}").type for t in _TYPES)
_EVENTS_TYPE = SPAN_SCHEMA.field("events").type
_EVENT_TYPE = _EVENTS_TYPE.value_type
_LINKS_TYPE = SPAN_SCHEMA.field("links").type
_LINK_TYPE = _LINKS_TYPE.value_type

# The column and struct field orders built by _Decoder.build (checked at import).
_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind", "flags",
    "start_unix_nano", "duration_nano", "status_code", "status_message", "service_name",
    "scope_name", "scope_version",
    *(f"{p}_attrs_{t}" for p in ("scope", "resource", "span") for t in _TYPES),
    "dropped_attributes_count", "events", "dropped_events_count", "links", "dropped_links_count",
)
_EVENT_FIELDS = (
    "time_unix_nano", "name", *(f"attrs_{t}" for t in _TYPES), "dropped_attributes_count",
)
_LINK_FIELDS = (
    "trace_id", "span_id", "trace_state", *(f"attrs_{t}" for t in _TYPES),
    "dropped_attributes_count", "flags",
)
if (
    tuple(SPAN_SCHEMA.names) != _COLUMNS
    or tuple(f.name for f in _EVENT_TYPE) != _EVENT_FIELDS
    or tuple(f.name for f in _LINK_TYPE) != _LINK_FIELDS
    or any(SPAN_SCHEMA.field(f"{p}_attrs_{t}").type != _MAP_TYPES[i]
           for p in ("scope", "resource", "span") for i, t in enumerate(_TYPES))
    or any(s.field(f"attrs_{t}").type != _MAP_TYPES[i]
           for s in (_EVENT_TYPE, _LINK_TYPE) for i, t in enumerate(_TYPES))
):
    raise ImportError("SPAN_SCHEMA changed: update threadline.model._otlp_columns")

REASONS = ("invalid_trace_id", "invalid_span_id", "invalid_parent_span_id", "end_before_start")


cdef class _Decoder:
    cdef Ctx* c

    def __cinit__(self):
        cdef int i
        cdef int t
        cdef int m
        self.c = <Ctx*>calloc(1, sizeof(Ctx))
        if self.c == NULL:
            raise MemoryError()
        self.c.first_reason = -1
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
                free(self.c.ks[i].slots)
            free(self.c)

    cdef object take(self, int i):
        """Move buffer ``i`` into a pyarrow Buffer without copying."""
        return buf_to_arrow(&self.c.b[i])

    cdef object take_bitmap(self, int i):
        """Pack buffer ``i`` (one 0/1 byte per value) into an Arrow validity/bool bitmap."""
        return bitmap_to_arrow(&self.c.b[i])

    cdef object strings(self, int off, int data, object typ):
        return strings_array(&self.c.b[off], &self.c.b[data], typ)

    cdef object fixed(self, int i, object typ, Py_ssize_t n):
        return fixed_array(&self.c.b[i], typ, n)

    cdef object map_column(self, int mb, Py_ssize_t n_rows, int t):
        """The map column of value type ``t`` whose buffers start at ``mb``."""
        return map_array(&self.c.b[mb], n_rows, t)

    cdef list map_columns(self, int mb, Py_ssize_t n_rows):
        """The five typed map columns (str, int, float, bool, raw) at ``mb``."""
        cdef int t
        return [self.map_column(mb + t * MAP_STRIDE, n_rows, t) for t in range(N_TYPES)]

    cdef object build(self):
        cdef Ctx* c = self.c
        cdef Py_ssize_t n = c.n_rows
        cdef Py_ssize_t ne = c.b[B_EV_TIME].len // 8
        cdef Py_ssize_t nl = c.b[B_LK_FLAGS].len // 4
        validity = self.take_bitmap(B_PARENT_VALID) if c.n_null_parent else None
        cols = [
            self.fixed(B_TRACE_ID, _TRACE_ID, n),
            self.fixed(B_SPAN_ID, _SPAN_ID, n),
            pa.Array.from_buffers(
                _SPAN_ID, n, [validity, self.take(B_PARENT)], null_count=c.n_null_parent
            ),
            self.strings(B_TS_OFF, B_TS_DATA, _STRING),
            self.strings(B_NAME_OFF, B_NAME_DATA, _STRING),
            self.fixed(B_KIND, _INT8, n),
            self.fixed(B_FLAGS, _UINT32, n),
            self.fixed(B_START, _INT64, n),
            self.fixed(B_DUR, _INT64, n),
            self.fixed(B_STATUS_CODE, _INT8, n),
            self.strings(B_STATUS_MSG_OFF, B_STATUS_MSG_DATA, _STRING),
            self.strings(B_SVC_OFF, B_SVC_DATA, _STRING),
            self.strings(B_SCOPE_NAME_OFF, B_SCOPE_NAME_DATA, _STRING),
            self.strings(B_SCOPE_VER_OFF, B_SCOPE_VER_DATA, _STRING),
        ]
        cols += self.map_columns(B_SCOPE_MAP, n)
        cols += self.map_columns(B_RES_MAP, n)
        cols += self.map_columns(B_SPAN_MAP, n)
        cols.append(self.fixed(B_DROPPED_ATTRS, _UINT32, n))
        events = pa.Array.from_buffers(_EVENT_TYPE, ne, [None], children=[
            self.fixed(B_EV_TIME, _INT64, ne),
            self.strings(B_EV_NAME_OFF, B_EV_NAME_DATA, _STRING),
            *self.map_columns(B_EV_MAP, ne),
            self.fixed(B_EV_DROPPED, _UINT32, ne),
        ])
        cols.append(pa.Array.from_buffers(
            _EVENTS_TYPE, n, [None, self.take(B_EV_LIST_OFF)], children=[events]
        ))
        cols.append(self.fixed(B_DROPPED_EVENTS, _UINT32, n))
        links = pa.Array.from_buffers(_LINK_TYPE, nl, [None], children=[
            self.fixed(B_LK_TID, _TRACE_ID, nl),
            self.fixed(B_LK_SID, _SPAN_ID, nl),
            self.strings(B_LK_TS_OFF, B_LK_TS_DATA, _STRING),
            *self.map_columns(B_LK_MAP, nl),
            self.fixed(B_LK_DROPPED, _UINT32, nl),
            self.fixed(B_LK_FLAGS, _UINT32, nl),
        ])
        cols.append(pa.Array.from_buffers(
            _LINKS_TYPE, n, [None, self.take(B_LK_LIST_OFF)], children=[links]
        ))
        cols.append(self.fixed(B_DROPPED_LINKS, _UINT32, n))
        return pa.RecordBatch.from_arrays(cols, schema=SPAN_SCHEMA)

    cdef object first_error(self):
        cdef Ctx* c = self.c
        if c.first_reason < 0:
            return None
        name = (<const char*>c.first_name)[:c.first_name_len].decode("utf-8", "replace") \
            if c.first_name_len else ""
        r = c.first_reason
        if r == R_TRACE_ID:
            what = ("trace id must not be all zeros" if c.first_detail
                    else f"trace id must be 16 bytes, got {c.first_a}")
        elif r == R_SPAN_ID:
            what = ("span id must not be all zeros" if c.first_detail
                    else f"span id must be 8 bytes, got {c.first_a}")
        elif r == R_PARENT_ID:
            what = f"parent span id must be 8 bytes or empty, got {c.first_a}"
        else:
            what = f"end time {c.first_b} is before start time {c.first_a}"
        return f"span {name!r}: {what}"


def decode(data):
    """Decode a serialized ExportTraceServiceRequest.

    Returns ``(batch, rejected, first_error, duplicate_attributes)``: a SPAN_SCHEMA record
    batch of the accepted spans, a dict of reason -> number of rejected spans (reasons with
    no rejection left out), the message of the first rejected span (or None) and the number
    of attributes left out for repeating a key of their list (in resource and scope lists
    once each, in span, event and link lists of accepted spans). Raises ValueError on
    malformed input, MemoryError when out of memory.
    """
    cdef const unsigned char[::1] view = data
    cdef _Decoder dec = _Decoder()
    cdef Ctx* c = dec.c
    cdef size_t n = view.shape[0]
    cdef cptr p = &view[0] if n else EMPTY
    cdef int rc
    cdef int i
    c.r.base = p
    with nogil:
        rc = parse_request(c, p, p + n)
    if rc < 0:
        if c.r.oom:
            raise MemoryError("out of memory while decoding OTLP spans")
        msg = c.r.err.decode("ascii")
        if c.r.err_tag:
            msg += f" (field {c.r.err_tag >> 3}, wire type {c.r.err_tag & 7})"
        raise ValueError(f"invalid OTLP protobuf: {msg} at byte offset {c.r.err_off}")
    rejected = {REASONS[i]: c.rejected[i] for i in range(N_REASONS) if c.rejected[i]}
    return dec.build(), rejected, dec.first_error(), c.dup
