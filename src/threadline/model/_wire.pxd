# cython: language_level=3
"""Protobuf wire-format writing helpers shared by the compiled translators (inline)."""

from cpython.mem cimport PyMem_Realloc
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

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


cdef inline int utf8_valid(cptr s, Py_ssize_t n) noexcept:
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
