# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled reader of array attribute values: serialized OTLP AnyValues -> typed elements.

Values with no column type of their own stay serialized (the AnyValue's wire bytes) in the
raw attribute maps. ``array_elements`` reads a range of a raw map column's values at once and
returns, for each element type (string, int, double, bool), which value each scalar element
of an ``array_value`` belongs to and the element itself, in element order, as numpy arrays
(strings as int32 offsets and bytes). ``model.dedicated`` builds the array columns from them.
Elements that are arrays, key-value lists or bytes themselves, and values that are no array,
are left out; a value that does not parse (never written by our decoders) is left out whole.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

from threadline.model._wire cimport PReader, cptr, pb_field, pb_fixed64, pb_len, pb_skip, pb_varint

import numpy as np

cdef enum:
    E_NONE = -1
    E_STR = 0
    E_INT = 1
    E_FLOAT = 2
    E_BOOL = 3


cdef int _element(PReader* r, Py_ssize_t end, cptr* s, Py_ssize_t* n, uint64_t* bits) except -2:
    """The type of the AnyValue in ``[r.pos, end)`` (the last of its oneof fields wins) with
    its value in ``s``/``n`` (strings) or ``bits`` (int, double, bool)."""
    cdef int wire, number
    cdef int kind = E_NONE
    cdef Py_ssize_t stop
    while True:
        number = pb_field(r, end, &wire)
        if number == 0:
            return kind
        if number == 1 and wire == 2:
            stop = pb_len(r, end)
            s[0] = r.data + r.pos
            n[0] = stop - r.pos
            r.pos = stop
            kind = E_STR
        elif number == 2 and wire == 0:
            bits[0] = pb_varint(r, end) != 0
            kind = E_BOOL
        elif number == 3 and wire == 0:
            bits[0] = pb_varint(r, end)
            kind = E_INT
        elif number == 4 and wire == 1:
            bits[0] = pb_fixed64(r, end)
            kind = E_FLOAT
        elif 5 <= number <= 7 and wire == 2:
            r.pos = pb_len(r, end)
            kind = E_NONE
        else:
            pb_skip(r, wire, end)


cdef struct Out:
    # where elements go (NULL while counting): value numbers per type, then the values
    int64_t* which[4]
    int32_t* str_offsets
    uint8_t* str_data
    int64_t* ints
    uint64_t* floats
    uint8_t* bools


cdef int _scan(cptr data, const int32_t* offsets, Py_ssize_t value, int64_t* counts,
               int64_t* text, Out* out) except -1:
    """Count (``out`` NULL) or write the elements of value ``value``; whether it is an array."""
    cdef PReader r
    cdef Py_ssize_t end = offsets[value + 1], stop
    cdef int wire, number, kind
    cdef cptr s = NULL
    cdef Py_ssize_t n = 0
    cdef uint64_t bits = 0
    cdef int64_t at
    cdef bint is_array = False
    r.data = data
    r.pos = offsets[value]
    r.number = 0
    while True:
        number = pb_field(&r, end, &wire)
        if number == 0:
            break
        if number != 5 or wire != 2:
            pb_skip(&r, wire, end)
            continue
        is_array = True
        stop = pb_len(&r, end)
        while True:
            number = pb_field(&r, stop, &wire)
            if number == 0:
                break
            if number != 1 or wire != 2:
                pb_skip(&r, wire, stop)
                continue
            kind = _element(&r, pb_len(&r, stop), &s, &n, &bits)
            if kind == E_NONE:
                continue
            at = counts[kind]
            counts[kind] += 1
            if out != NULL:
                out.which[kind][at] = value
                if kind == E_STR:
                    if n:
                        memcpy(out.str_data + text[0], s, n)
                    out.str_offsets[at + 1] = <int32_t>(text[0] + n)
                elif kind == E_INT:
                    out.ints[at] = <int64_t>bits
                elif kind == E_FLOAT:
                    out.floats[at] = bits
                else:
                    out.bools[at] = <uint8_t>bits
            if kind == E_STR:
                text[0] += n
    return is_array


def array_elements(offsets: np.ndarray, data: bytes | memoryview, Py_ssize_t lo, Py_ssize_t hi):
    """The scalar elements of the array values among values ``lo`` .. ``hi`` of a binary
    array (``offsets`` its int32 value offsets, ``data`` its bytes): ``(which, values)`` per
    type in the order string, int, double, bool, where ``which`` is each element's value
    number and strings are ``(offsets, bytes)``."""
    cdef const int32_t[::1] offs = np.ascontiguousarray(offsets, dtype=np.int32)
    cdef const uint8_t[::1] raw = (
        np.frombuffer(data, np.uint8) if len(data) else np.zeros(1, np.uint8)
    )
    cdef cptr base = &raw[0]
    cdef int64_t counts[4]
    cdef int64_t text = 0
    cdef Py_ssize_t v, k
    cdef Out out
    for k in range(4):
        counts[k] = 0
    keep = np.zeros(hi - lo, dtype=bool)
    for v in range(lo, hi):
        try:
            keep[v - lo] = _scan(base, &offs[0], v, counts, &text, NULL)
        except ValueError:
            pass
    # the second pass writes the values that parsed (counted again, to place them)
    which = [np.zeros(max(counts[k], 1), np.int64) for k in range(4)]
    str_offsets = np.zeros(counts[0] + 1, np.int32)
    str_data = np.zeros(max(text, 1), np.uint8)
    ints = np.zeros(max(counts[1], 1), np.int64)
    floats = np.zeros(max(counts[2], 1), np.uint64)
    bools = np.zeros(max(counts[3], 1), np.uint8)
    cdef int64_t[::1] w0 = which[0], w1 = which[1], w2 = which[2], w3 = which[3]
    cdef int32_t[::1] so = str_offsets
    cdef uint8_t[::1] sd = str_data, bv = bools
    cdef int64_t[::1] iv = ints
    cdef uint64_t[::1] fv = floats
    out.which[0], out.which[1], out.which[2], out.which[3] = &w0[0], &w1[0], &w2[0], &w3[0]
    out.str_offsets, out.str_data = &so[0], &sd[0]
    out.ints, out.floats, out.bools = &iv[0], &fv[0], &bv[0]
    for k in range(4):
        counts[k] = 0
    text = 0
    for v in (np.flatnonzero(keep) + lo).tolist():
        _scan(base, &offs[0], v, counts, &text, &out)
    n = [int(counts[k]) for k in range(4)]
    return (
        (which[0][: n[0]], (str_offsets[: n[0] + 1], str_data[:text])),
        (which[1][: n[1]], ints[: n[1]]),
        (which[2][: n[2]], floats[: n[2]].view(np.float64)),
        (which[3][: n[3]], bools[: n[3]].astype(bool)),
    )
