# C-level interface of the compiled book, for the other core modules (feed handler, scanner).
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release,
                           PyObject_GetBuffer)
from libc.stdint cimport int64_t, uint16_t

cdef enum:
    SIDE_BID = 0
    SIDE_ASK = 1
    SIDE_UNKNOWN = -1

# Return codes of the raw C entry points. 0..3 mirror parsec_fast.DeltaResult.
cdef enum:
    RES_APPLIED = 0
    RES_DUPLICATE = 1
    RES_GAP = 2
    RES_NO_SNAPSHOT = 3
    RES_BAD_DATA = -2      # raw input failed validation: nothing changed, nothing counted
    RES_NO_MEMORY = -3     # malloc failed: nothing changed, nothing counted

ctypedef struct Level:
    # Ordering key: -nanos for bids, +nanos for asks, so both sides sort ascending, best first.
    int64_t key
    double size

ctypedef struct SideLevels:
    Level* levels
    Py_ssize_t n
    Py_ssize_t cap

ctypedef struct RawChange:
    # One delta change as a parser decoded it, not yet validated.
    int side          # SIDE_BID, SIDE_ASK or SIDE_UNKNOWN
    double price
    double size

ctypedef struct RawLevel:
    # One snapshot level as a parser decoded it, not yet validated.
    double price
    double size

cdef inline double key_price(int64_t key) noexcept nogil:
    """Reported price of an ordering key (either side): nano-units back to a float."""
    if key < 0:
        key = -key
    return (<double>key) / 1e9


ctypedef struct LevelOp:
    # A validated change (side, ordering key, new size), or an undo record (old size, 0 = absent).
    int side
    int64_t key
    double size


cdef class Book:
    cdef readonly str parsec_id
    cdef readonly str outcome
    cdef SideLevels _sides[2]
    cdef Py_ssize_t _max_levels
    cdef int64_t _seq
    cdef bint _has_baseline
    cdef bint _valid
    # Scratch space reused by every call (grown, never shrunk): validated operations and the
    # undo log that keeps a failing delta atomic. No per-call allocation once warm.
    cdef LevelOp* _ops
    cdef Py_ssize_t _ops_cap
    cdef LevelOp* _undo
    cdef Py_ssize_t _undo_cap
    cdef RawLevel* _raw_levels
    cdef Py_ssize_t _raw_levels_cap
    # Counters (see parsec_fast.rules.STAT_NAMES).
    cdef int64_t n_snapshots
    cdef int64_t n_applied
    cdef int64_t n_duplicates
    cdef int64_t n_gaps
    cdef int64_t n_dropped
    cdef int64_t n_no_snapshot
    cdef int64_t n_rejected

    # Raw entry points: never raise, never touch Python objects. On RES_BAD_DATA the book is
    # exactly as before and nothing was counted, so a caller can re-run the same input through
    # the object path (apply_delta / apply_snapshot), which raises the descriptive error.
    cdef int raw_apply_delta(self, int64_t seq, const RawChange* changes, Py_ssize_t n) noexcept nogil
    cdef int raw_apply_snapshot(self, int64_t seq, const RawLevel* bids, Py_ssize_t n_bids,
                                const RawLevel* asks, Py_ssize_t n_asks) noexcept nogil
    cdef void raw_invalidate(self) noexcept nogil
    # Read access for the other core modules (parsec_fast._levels copies a side per event):
    # the levels of side s (SIDE_BID or SIDE_ASK), best first, keys as stored (key_price()).
    cdef Py_ssize_t side_count(self, int s) noexcept nogil
    cdef Py_ssize_t copy_side(self, int s, Level* out, Py_ssize_t cap) noexcept nogil

    cdef Py_ssize_t _ops_from_changes(self, object changes) except -1
    cdef Py_ssize_t _levels_from(self, object levels, Py_ssize_t offset, object bids,
                                 object asks) except -1
    cdef void _reject(self)
    cdef list _levels(self, int s, object n)
    cdef double _size_at(self, int s, object price) except? -1.0
    cdef object _array(self, int s, object n, str method)
    cdef Py_ssize_t _into(self, int s, object out) except -1
    cdef int _gate(self, int64_t seq) noexcept nogil
    cdef int _apply_ops(self, Py_ssize_t n, Py_ssize_t* failed_at) noexcept nogil
    cdef int _install_snapshot(self, int64_t seq, const RawLevel* bids, Py_ssize_t n_bids,
                               const RawLevel* asks, Py_ssize_t n_asks) noexcept nogil


# rules.float64_buffer(out): raises the reference book's exception for an unusable ``out``.
cdef int float64_buffer_error(object out) except -1


cdef inline double* float64_out(object out, Py_buffer* buf) except NULL:
    """``out`` of ``bids_into`` / ``asks_into`` (``Book``'s and ``SharedBook``'s) acquired into
    ``buf`` as a writable C-contiguous float64 buffer: its data, which the caller fills and then
    releases (``PyBuffer_Release(buf)``). Otherwise nothing is held and the rule book's check
    raises, so the exceptions and messages are the reference book's."""
    cdef bytes fmt
    cdef uint16_t one = 1                        # native byte order, folded by the C compiler
    try:
        PyObject_GetBuffer(out, buf, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS)
    except Exception:
        float64_buffer_error(out)
        raise
    fmt = buf.format if buf.format != NULL else b"B"
    if buf.itemsize != 8 or fmt not in (b"d", b"@d", b"=d",
                                        b"<d" if (<unsigned char*>&one)[0] == 1 else b">d"):
        try:
            float64_buffer_error(out)
            raise ValueError(f"out: expected a C-contiguous float64 buffer, got format {fmt.decode()!r}")
        finally:
            PyBuffer_Release(buf)
    return <double*>buf.buf


cdef inline const Level* side_view(Book book, int s, Py_ssize_t* n) noexcept nogil:
    """Side ``s``'s levels in place, best first, and their count in ``n[0]``: a read-only view
    for the other core modules, valid until the book next changes (copy_side copies instead).
    The shared-memory publisher compares it with what it last published, to store only what
    changed."""
    n[0] = book._sides[s].n
    return book._sides[s].levels
