# C-level interface of the feed handler, for the native picows listener (_listener.pyx).
from cpython.object cimport PyObject
from libc.stdint cimport int64_t
from parsec_fast._book cimport Book
from parsec_fast._scan cimport FrameScanner

cdef enum:
    BOOK_COUNTERS = 7   # len(parsec_fast.rules.STAT_NAMES)

ctypedef struct RouteEntry:
    # One slot of the routing table: raw UTF-8 parsec_id and ASCII-lowercased outcome, so a
    # scanned frame finds its subscription without creating a Python object.
    char* pid
    Py_ssize_t pid_len
    char* outcome
    Py_ssize_t outcome_len
    void* sub          # borrowed Subscription*; the handler's dict keeps it alive


ctypedef struct FrameState:
    # What a per-frame listener (FeedHandler.on_book_frame) reports of the frame just applied:
    # the Subscription properties of the same names, read in C (no call, no int per field).
    int64_t server_seq           # the book's seq (the frame's, for an applied frame)
    int64_t stale_after_ms       # -1 when none was announced
    int64_t exchange_ts_ms       # INT64_MIN when the frame had none
    int64_t ingest_ts_ms
    PyObject* book_state         # borrowed str
    PyObject* feed_state


cdef class Subscription:
    cdef readonly str parsec_id
    cdef readonly str outcome
    cdef readonly Book book
    cdef bytes _pid_utf8
    cdef bytes _outcome_key          # ASCII-lowercased UTF-8 outcome
    cdef int _book_state             # BOOK_STATE_* of _scan.pxd
    cdef int _feed_state
    cdef str _book_state_text        # the string sent, when not one of the known values
    cdef str _feed_state_text
    cdef int64_t _stale_after_ms     # -1: none announced
    cdef readonly int64_t last_frame_ns
    cdef int64_t _exchange_ts_ms     # of the last book frame; _NO_TS when it had none
    cdef int64_t _ingest_ts_ms
    cdef bint _locally_stale
    cdef str _invalid_reason
    cdef readonly str last_error
    cdef bint _dirty
    cdef int64_t _activity_ring[4]   # recent seqs consumed by activity frames (shared mode)
    cdef int _ring_pos
    cdef int64_t _last_activity_seq
    cdef int64_t n_activity
    # Of the book's counts, how many were activity frames' empty deltas (shared counter).
    cdef int64_t n_activity_applied
    cdef int64_t n_activity_duplicates
    cdef int64_t n_activity_dropped
    cdef int64_t n_activity_no_snapshot
    cdef int64_t n_activity_gaps
    cdef int64_t n_seq_conflicts
    cdef int64_t n_resync_required
    cdef int64_t n_needs_refresh
    # For the handler's BookSink: the sink's handle of this book (-1: none), and whether the
    # book waits in the handler's list of books to publish at the next flush.
    cdef Py_ssize_t sink_slot
    cdef bint _sink_pending

    cdef void frame_state(self, FrameState* out) noexcept


cdef class BookSink:
    # Receives the handler's books as they change, in C, no Python object per update
    # (parsec_fast._shm_writer.Publisher). sink_added / sink_removed as subscriptions come and go;
    # sink_publish once per book changed since the last flush (applied frames, validity, states,
    # staleness), then sink_commit once: now_ns is the newest time the handler knows (a frame's
    # read time, or the maintenance tick's clock). sink_closed when the handler lets go of it.
    cdef int sink_added(self, Subscription sub) except -1
    cdef int sink_removed(self, Subscription sub) except -1
    cdef void sink_publish(self, Subscription sub) noexcept
    cdef void sink_commit(self, int64_t now_ns) noexcept
    cdef int sink_closed(self, str reason) except -1


cdef class FeedHandler:
    cdef public object on_message
    cdef public object on_book_updated
    cdef public object on_book_state
    cdef public object on_protocol_error
    cdef public object on_book_frame
    cdef bint _native
    cdef bint _shared_seq
    cdef Py_ssize_t _max_levels
    cdef FrameScanner _scanner
    cdef dict _subs                  # (parsec_id, outcome_key) -> Subscription
    cdef RouteEntry* _table
    cdef Py_ssize_t _table_mask      # table size - 1 (power of two), -1 when empty
    cdef list _dirty
    cdef object _loads
    cdef int64_t n_frames
    cdef int64_t n_bytes
    cdef int64_t n_native
    cdef int64_t n_fallback
    # Book counters are owned by the books (FeedHandler.stats sums them); these keep the sums
    # of removed subscriptions, in parsec_fast.rules.STAT_NAMES order.
    cdef int64_t _retired[BOOK_COUNTERS]
    cdef int64_t n_unrouted
    cdef int64_t n_protocol_errors
    cdef int64_t n_activity
    cdef int64_t n_slow_reader
    cdef BookSink _sink              # None: nothing published
    cdef list _sink_pending          # books whose state changed since the last flush

    cdef int feed_ptr(self, const char* data, Py_ssize_t size, object payload,
                      int64_t now) except -1
    cdef Subscription _route(self, const char* pid, Py_ssize_t pid_len,
                             const char* outcome, Py_ssize_t outcome_len)
    cdef void _rebuild_table(self) except *
    cdef int _native_frame(self, int kind, int64_t now) except -2
    cdef int _object_frame(self, object payload, int64_t now) except -1
    cdef Subscription _route_obj(self, dict obj)
    cdef int _reject_frame(self, dict obj, object payload, Subscription sub) except -1
    cdef int _book_frame_obj(self, dict obj, bint snapshot, int64_t now, object payload) except -1
    cdef int _activity_obj(self, dict obj) except -1
    cdef int _on_states(self, Subscription sub, int book_state, str book_text, int feed_state,
                        str feed_text, bint has_stale, int64_t stale_after_ms, int64_t now) except -1
    cdef int _after_delta(self, Subscription sub, int rc, int64_t seq, bint was_valid) except -1
    cdef int _not_applied(self, Subscription sub, int rc, int64_t seq, bint was_valid) except -1
    cdef int _after_snapshot(self, Subscription sub, bint was_valid) except -1
    cdef int _mark_invalid(self, Subscription sub, str reason, bint emit) except -1
    cdef int _emit_state(self, Subscription sub, str what, str reason) except -1
    cdef int _protocol_error(self, str reason, object payload, Subscription sub) except -1
    cdef int _sink_flush(self, int64_t now_ns) except -1
