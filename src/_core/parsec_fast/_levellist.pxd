# C-level interface of the lazy level lists and the book copy they read, for
# parsec_fast._orderbook (the compat payload).
from cpython.object cimport PyObject

from parsec_fast._book cimport Book, Level
from parsec_fast._levels cimport BUILT_MAX


cdef class BookCopy:
    # Both sides of one book at one moment: bids then asks, keys as the book stores them.
    cdef Level* levels
    cdef Py_ssize_t n_bids
    cdef Py_ssize_t n_asks
    cdef Py_ssize_t cap


cdef BookCopy copy_book(Book book)


cdef class LevelList(list):
    # The list's own storage holds, for each level, the level object once read, else the
    # placeholder of its index (UnreadLevel): C code reading the storage never sees it empty.
    cdef BookCopy _copy          # the levels; None once materialized (plain list mode)
    cdef const Level* _levels    # this side's levels inside _copy
    cdef Py_ssize_t _n           # number of levels in _copy's side (placeholders' index bound)
    cdef Py_ssize_t _n_built     # slots whose placeholder was replaced (BUILT_MAX + 1: more)
    cdef unsigned short _built[BUILT_MAX]  # the first of them

    cdef object _get(self, Py_ssize_t i)
    cdef object _build(self, Py_ssize_t i, PyObject* token)
    cdef int _fill(self) except -1
    cdef list _plain(self)
    cdef int _materialize(self) except -1


cdef LevelList side_list(BookCopy copy, int side)
