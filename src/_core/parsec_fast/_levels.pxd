# C-level interface of the objects a LevelList's storage holds (the SDK's level type, the
# placeholder of a level not read) and of the storage arrays made of placeholders, for
# parsec_fast._levellist and parsec_fast._orderbook.
from cpython.object cimport PyObject
from libc.string cimport memcmp

from parsec_fast._book cimport Level

cdef extern from "Python.h":
    void c_incref "Py_INCREF"(PyObject* o)
    void c_decref "Py_DECREF"(PyObject* o)


cdef class StreamingOrderbookLevel:
    cdef object price
    cdef object size
    cdef object __weakref__      # as a dataclass instance, it can be weakly referenced


cdef StreamingOrderbookLevel make_level(const Level* level)
cdef int install_members(type cls, object probe, tuple fields) except -1


cdef class UnreadLevel:
    # The placeholder of level `index` of the list holding it (one object per index, for good).
    cdef Py_ssize_t index

    cdef str _what(self)
    cdef fail(self, str use)     # raises UnreadLevelError naming the use and the fix


cdef enum:
    BUILT_MAX = 8         # slots read that a LevelList lists (for putting the placeholders back)
    SPARE_MAX_N = 256     # longer lists get a fresh storage array each time
    SPARE_PER_N = 4       # spare arrays kept per length

ctypedef struct PlaceholderTable:
    PyObject** tokens     # tokens[i]: the placeholder of index i (one reference held, for good)
    Py_ssize_t n_tokens
    # Spare storage arrays by length n, each holding the placeholders of indexes 0..n-1 (a
    # reference to each), ready for the next LevelList of that length.
    int n_spare[SPARE_MAX_N + 1]
    PyObject** spare[SPARE_MAX_N + 1][SPARE_PER_N]

# This module's table; the modules that cimport it reach it through a pointer. Only
# parsec_fast._levels' code and the two inline functions below change it.
cdef PlaceholderTable placeholders

cdef PyObject** fresh_storage(Py_ssize_t n) except NULL
cdef void free_storage(PyObject** items, Py_ssize_t n) noexcept


# A LevelList's storage array, on the path of every side read: inline in the list's module.

cdef inline PyObject** new_storage(Py_ssize_t n) except NULL:
    """An array of the placeholders of indexes 0..n-1, a reference to each owned by the caller."""
    if n <= SPARE_MAX_N and placeholders.n_spare[n] > 0:
        placeholders.n_spare[n] -= 1
        return placeholders.spare[n][placeholders.n_spare[n]]
    return fresh_storage(n)


cdef inline bint keep_storage(PyObject** items, Py_ssize_t n, const unsigned short* built,
                              Py_ssize_t n_built) noexcept:
    """Take back a list's storage of exactly ``n`` slots (``allocated == size == n``) as a spare.
    Every slot that is not its index's placeholder (a level built, anything the list was given)
    is released and the placeholder put back: first the ``n_built`` slots listed in ``built``
    (the levels read), then, if the array still differs from the placeholders' (more slots read
    than listed, or list's own methods called unbound), every slot. False (nothing done) when
    there is no room."""
    cdef Py_ssize_t i, k
    cdef PyObject* p
    if n <= 0 or n > SPARE_MAX_N or placeholders.n_spare[n] >= SPARE_PER_N \
            or n > placeholders.n_tokens:
        return False
    if n_built <= BUILT_MAX:
        for k in range(n_built):
            i = built[k]
            if i < n and items[i] != placeholders.tokens[i]:
                p = items[i]
                items[i] = placeholders.tokens[i]
                c_incref(placeholders.tokens[i])
                c_decref(p)  # may run any code: the table is read again after it
    # The check that nothing else changed (list's own methods called unbound can): one memcmp.
    if n_built > BUILT_MAX or \
            memcmp(items, placeholders.tokens, <size_t>n * sizeof(PyObject*)) != 0:
        for i in range(n):
            if items[i] != placeholders.tokens[i]:
                p = items[i]
                items[i] = placeholders.tokens[i]
                c_incref(placeholders.tokens[i])
                c_decref(p)
    if placeholders.n_spare[n] >= SPARE_PER_N:  # a destructor above filled it
        free_storage(items, n)
        return True
    placeholders.spare[n][placeholders.n_spare[n]] = items
    placeholders.n_spare[n] += 1
    return True
