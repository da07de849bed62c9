# C-level interface of the shared-memory books' reader side (parsec_fast._shm_reader): a
# read-only view of a region and its books. The region's layout it reads is _shm.pxd's (_shm_c.h).
from libc.stdint cimport int64_t, uint32_t
from parsec_fast._shm cimport (pfshm_header, pfshm_level, pfshm_reader_page, pfshm_slot,
                               pfshm_state, pfshm_top)


cdef class SharedRegion:
    cdef char* _base
    cdef size_t _size
    cdef char* _rbase
    cdef size_t _rsize
    cdef pfshm_header* _hdr
    cdef pfshm_reader_page* _rpage
    cdef uint32_t* _dir
    cdef char* _slots
    cdef uint32_t _max_books
    cdef uint32_t _max_levels
    cdef uint32_t _dir_mask
    cdef size_t _slot_size
    cdef size_t _copy_size
    cdef int64_t _bound_ns
    cdef int64_t _pid
    cdef bint _check_pid
    cdef int64_t _pid_checked_ns
    cdef bint _pid_dead
    cdef bint _no_barrier            # membarrier failed here: never sleep counting on a wake
    cdef int64_t _last_change_ns
    cdef readonly str name
    cdef readonly str path

    cdef int _alive_c(self, int64_t now) noexcept nogil
    cdef int _wait_c(self, uint32_t last, int64_t deadline, int64_t poll_ns, int64_t linger_ns,
                     int64_t spin_ns, uint32_t* out) noexcept nogil
    cdef Py_ssize_t _find(self, bytes pid, bytes key, uint32_t* gen) except -2
    cdef int _check_open(self) except -1


cdef class SharedBook:
    cdef SharedRegion _region
    cdef pfshm_slot* _slot
    cdef size_t _cs                  # the region's copy size
    cdef uint32_t _gen
    cdef pfshm_level* _buf           # 2 x max_levels scratch levels for consistent copies
    cdef readonly str parsec_id
    cdef readonly str outcome
    cdef readonly Py_ssize_t index

    cdef int _top(self, pfshm_top* t) except -1
    cdef int _state(self, pfshm_state* st) except -1
    cdef Py_ssize_t _side(self, int s, Py_ssize_t cap, pfshm_top* t) except -1
    cdef int _fail(self, int rc) except -1
    cdef list _levels(self, int s, object n)
    cdef object _array(self, int s, object n, str method)
    cdef Py_ssize_t _into(self, int s, object out) except -1
    cdef double _size_at(self, int s, object price) except? -1.0
