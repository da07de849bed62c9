# C-level interface of the lazy level sequences, for parsec_fast._orderbook (the compat payload).
from cpython.object cimport PyObject, visitproc

from parsec_fast._book cimport Book, Level


cdef class StreamingOrderbookLevel:
    cdef object price
    cdef object size
    cdef object __weakref__      # as a dataclass instance, it can be weakly referenced


cdef class BookCopy:
    # Both sides of one book at one moment: bids then asks, keys as the book stores them.
    cdef Level* levels
    cdef Py_ssize_t n_bids
    cdef Py_ssize_t n_asks
    cdef Py_ssize_t cap


cdef BookCopy copy_book(Book book)
cdef StreamingOrderbookLevel make_level(const Level* level)
cdef int install_members(type cls, object probe, tuple fields) except -1


cdef enum:
    HEAD = 8    # levels cached inline in a LevelList (the top of a side is what gets read)


cdef class LevelList(list):
    cdef BookCopy _copy          # the levels; None once materialized (plain list mode)
    cdef const Level* _levels    # this side's levels inside _copy
    cdef Py_ssize_t _n
    cdef PyObject* _head[HEAD]   # level objects built so far (owned), indexes 0..HEAD-1
    cdef PyObject** _cache       # the same for indexes >= HEAD (allocated on first use)

    cdef object _get(self, Py_ssize_t i)
    cdef list _plain(self)
    cdef int _materialize(self) except -1
    cdef void _drop_cache(self) noexcept
    cdef int _visit_cache(self, visitproc visit, void* arg) noexcept
    cdef PyObject* _cached(self, Py_ssize_t i) noexcept


cdef LevelList side_list(BookCopy copy, int side)
