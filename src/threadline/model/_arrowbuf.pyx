# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""C column buffers (``_pbscan.Buf``, filled without the GIL) as Arrow arrays, without copying.

Owns the hand-off of the compiled OTLP decoders' buffers to Arrow: each buffer's memory moves
into an object that frees it when Arrow drops the last reference (the ``Buf`` is left empty),
and the typed attribute map columns (``map<string, str|int64|float64|bool|binary>``, laid out
as ``_pbscan.pxd`` says) are assembled from their five buffers.
"""

from cpython.buffer cimport PyBuffer_FillInfo
from libc.stdlib cimport calloc, free

from threadline.model._pbscan cimport (
    F_KEY_DATA, F_KEY_OFF, F_ROW_OFF, F_VAL, F_VAL_DATA, N_TYPES, T_BOOL, T_RAW, T_STR, Buf, n_offs,
)

import pyarrow as pa

from threadline.model.schema import SPAN_SCHEMA

cdef unsigned char EMPTY[1]

_STRING = pa.string()
_TYPES = ("str", "int", "float", "bool", "raw")      # the order of T_STR .. T_RAW
# the typed attribute map types (the same in every schema: see schema._attr_map_fields)
MAP_TYPES = tuple(SPAN_SCHEMA.field(f"span_attrs_{t}").type for t in _TYPES)
_ENTRY_TYPES = tuple(pa.struct([t.key_field, t.item_field]) for t in MAP_TYPES)
# the entries of a map column without any: shared, immutable (a quarter of the build cost
# of a map column; scope, event and link maps are often all empty)
_NO_ENTRIES = tuple(
    pa.StructArray.from_arrays([pa.array([], _STRING), pa.array([], t.item_type)],
                               fields=list(e))
    for t, e in zip(MAP_TYPES, _ENTRY_TYPES)
)
if len(MAP_TYPES) != N_TYPES:
    raise ImportError("attribute value types changed: update threadline.model._arrowbuf")


cdef class _OwnedBuffer:
    """A malloc'ed buffer exposed through the buffer protocol; freed with the object."""

    cdef unsigned char* data
    cdef Py_ssize_t size

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, <void*>(self.data if self.data != NULL else EMPTY),
                          self.size, 1, flags)

    def __releasebuffer__(self, Py_buffer* view):
        pass

    def __dealloc__(self):
        free(self.data)


cdef object buf_to_arrow(Buf* b):
    """Move ``b``'s memory into a pyarrow Buffer without copying."""
    cdef _OwnedBuffer o = _OwnedBuffer.__new__(_OwnedBuffer)
    o.data = b.data
    o.size = <Py_ssize_t>b.len
    b.data = NULL
    b.len = 0
    b.cap = 0
    return pa.py_buffer(o)


cdef object bitmap_to_arrow(Buf* b):
    """Pack ``b`` (one 0/1 byte per value) into an Arrow validity/bool bitmap."""
    cdef size_t n = b.len
    cdef size_t j
    cdef _OwnedBuffer o = _OwnedBuffer.__new__(_OwnedBuffer)
    cdef unsigned char* bits = <unsigned char*>calloc((n + 7) // 8 + 1, 1)
    if bits == NULL:
        raise MemoryError()
    for j in range(n):
        if b.data[j]:
            bits[j >> 3] |= <unsigned char>(1 << (j & 7))
    o.data = bits
    o.size = <Py_ssize_t>((n + 7) // 8)
    return pa.py_buffer(o)


cdef object strings_array(Buf* off, Buf* data, object typ):
    """A string or binary array from its offsets (starting with a 0) and data."""
    cdef Py_ssize_t n = n_offs(off)
    return pa.Array.from_buffers(typ, n, [None, buf_to_arrow(off), buf_to_arrow(data)])


cdef object fixed_array(Buf* b, object typ, Py_ssize_t n):
    return pa.Array.from_buffers(typ, n, [None, buf_to_arrow(b)])


cdef object map_array(Buf* mb, Py_ssize_t n_rows, int t):
    """The map column of value type ``t`` whose buffers start at ``mb``."""
    cdef Py_ssize_t ne = n_offs(&mb[F_KEY_OFF])
    cdef object typ = MAP_TYPES[t]
    cdef object keys
    cdef object values
    cdef object entries
    if ne == 0:
        entries = _NO_ENTRIES[t]
    else:
        keys = strings_array(&mb[F_KEY_OFF], &mb[F_KEY_DATA], _STRING)
        if t == T_STR or t == T_RAW:
            values = strings_array(&mb[F_VAL], &mb[F_VAL_DATA], typ.item_type)
        elif t == T_BOOL:
            values = pa.Array.from_buffers(typ.item_type, ne, [None, bitmap_to_arrow(&mb[F_VAL])])
        else:
            values = fixed_array(&mb[F_VAL], typ.item_type, ne)
        entries = pa.Array.from_buffers(_ENTRY_TYPES[t], ne, [None], children=[keys, values])
    return pa.Array.from_buffers(typ, n_rows, [None, buf_to_arrow(&mb[F_ROW_OFF])],
                                 children=[entries])
