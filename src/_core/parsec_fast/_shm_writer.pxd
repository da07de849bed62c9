# C-level interface of the shared-memory books' writer (parsec_fast._shm_writer): the Publisher,
# a FeedHandler BookSink. The region's layout it writes is _shm.pxd's (_shm_c.h).
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint32_t, uint64_t
from parsec_fast._feed cimport BookSink, FeedHandler, Subscription
from parsec_fast._shm cimport pfshm_copy, pfshm_header, pfshm_reader_page, pfshm_slot


ctypedef struct SlotTexts:
    # The text objects last copied into one copy of a slot (owned references): a text is
    # re-encoded only when its object changes, so a publish compares four pointers.
    PyObject* reason
    PyObject* error
    PyObject* book_text
    PyObject* feed_text


cdef class Publisher(BookSink):
    cdef char* _base
    cdef size_t _size
    cdef pfshm_header* _hdr
    cdef pfshm_reader_page* _rpage
    cdef uint32_t* _dir
    cdef char* _slots
    cdef uint32_t _max_books
    cdef uint32_t _max_levels
    cdef uint32_t _dir_mask
    cdef size_t _slot_size
    cdef size_t _copy_size
    cdef uint32_t* _free             # stack of free slot indexes
    cdef uint32_t _n_free
    cdef uint32_t* _gens             # each slot's current generation
    cdef SlotTexts* _texts           # two per slot, one per copy
    cdef list _owners                # slot -> Subscription or None
    cdef list _unplaced              # subscriptions waiting for a free slot
    cdef int64_t _heartbeat
    cdef bint _uncommitted
    cdef uint32_t _protocol          # PFSHM_WAKE_* (what the header says)
    cdef bint _closed
    cdef bytes _path_c
    cdef uint64_t _dev
    cdef uint64_t _ino
    cdef FeedHandler _feed
    cdef readonly str name
    cdef readonly str path
    cdef readonly int64_t n_publishes
    cdef readonly int64_t n_commits
    cdef readonly int64_t n_wakes
    cdef readonly int64_t n_refused
    cdef object __weakref__

    cdef void _write_fields(self, pfshm_slot* slot, pfshm_copy* c, Subscription sub,
                            Py_ssize_t i, int ci) noexcept
    cdef int _place(self, Subscription sub, uint32_t i) except -1
    cdef void _dir_rebuild(self) noexcept
    cdef void _wake(self) noexcept
    cdef int _shutdown(self, str reason) except -1
    cdef void _release(self) noexcept
