# C-level interface of the lazy level sequences, for parsec_fast._orderbook (the compat payload).
from cpython.object cimport PyObject

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
    BUILT_MAX = 8    # slots read that a LevelList lists (for putting the placeholders back)


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
