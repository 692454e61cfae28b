# cython: language_level=3
"""C column buffers handed to Arrow without copying (``_arrowbuf.pyx``): shared by the compiled
OTLP decoders. A map column's buffers are laid out as ``_pbscan.pxd``'s ``F_*`` say."""

from threadline.model._pbscan cimport Buf

cdef object buf_to_arrow(Buf* b)
cdef object bitmap_to_arrow(Buf* b)
cdef object strings_array(Buf* off, Buf* data, object typ)
cdef object fixed_array(Buf* b, object typ, Py_ssize_t n)
cdef object map_array(Buf* mb, Py_ssize_t n_rows, int t)
