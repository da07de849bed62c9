# C-level interface of the frame scanner: reads orderbook / orderbook_delta frames in place.
# Usage (feed handler, with or without the GIL):
#     cdef FrameScanner sc = FrameScanner()          # one per connection, reused for every frame
#     kind = sc.scan(ptr, size)                      # fills sc.r; never raises, never reads past size
#     if kind == SCAN_DELTA:    book.raw_apply_delta(sc.r.server_seq, sc.r.changes, sc.r.n_changes)
#     elif kind == SCAN_SNAPSHOT: book.raw_apply_snapshot(sc.r.server_seq, sc.r.bids, sc.r.n_bids,
#                                                          sc.r.asks, sc.r.n_asks)
#     else: orjson path (SCAN_OTHER: a valid frame of another type; SCAN_FALLBACK: anything else)
# The pointers in sc.r point into the scanned buffer (parsec_id, outcome, type) or into the
# scanner's own arrays (changes, bids, asks); both are valid until the next scan() call.
from libc.stdint cimport int64_t
from parsec_fast._book cimport RawChange, RawLevel

ctypedef unsigned char pf_u8

cdef enum:
    SCAN_FALLBACK = 0    # not fully understood (or invalid JSON): use orjson, which decides
    SCAN_DELTA = 1       # "orderbook_delta" with parsec_id, server_seq and changes
    SCAN_SNAPSHOT = 2    # "orderbook" with parsec_id, server_seq, bids and asks
    SCAN_OTHER = 3       # valid JSON object whose "type" is another plain string

# book_state / feed_state values. *_ABSENT: key missing or null. *_OTHER: another string.
cdef enum:
    BOOK_STATE_ABSENT = 0
    BOOK_STATE_FRESH = 1
    BOOK_STATE_STALE = 2
    BOOK_STATE_NEEDS_REFRESH = 3
    BOOK_STATE_OTHER = 4

cdef enum:
    FEED_STATE_ABSENT = 0
    FEED_STATE_HEALTHY = 1
    FEED_STATE_DEGRADED = 2
    FEED_STATE_DISCONNECTED = 3
    FEED_STATE_OTHER = 4

ctypedef struct ScanResult:
    int kind                     # SCAN_* (also the return value of scan())
    const char* type_ptr         # "type" value, raw bytes (no escapes); valid for DELTA/SNAPSHOT/OTHER
    Py_ssize_t type_len
    const char* parsec_id        # raw UTF-8 bytes, no escapes (an escape -> FALLBACK)
    Py_ssize_t parsec_id_len
    bint has_outcome             # outcome key present as a string (null/non-string -> FALLBACK)
    const char* outcome
    Py_ssize_t outcome_len
    int64_t server_seq           # JSON integer within int64 (anything else -> FALLBACK)
    int book_state               # BOOK_STATE_*
    int feed_state               # FEED_STATE_*
    bint has_stale_after_ms      # present and not null; must be an int64 JSON integer
    int64_t stale_after_ms
    bint has_exchange_ts_ms      # exchange_ts_ms / ingest_ts_ms: present and not null; an int64
    int64_t exchange_ts_ms       # JSON integer (a float, string, huge integer... -> FALLBACK,
    bint has_ingest_ts_ms        # so the orjson path decides)
    int64_t ingest_ts_ms
    RawChange* changes           # DELTA: changes in frame order, side SIDE_BID / SIDE_ASK
    Py_ssize_t n_changes
    RawLevel* bids               # SNAPSHOT: levels in frame order ([price, size] pairs)
    Py_ssize_t n_bids
    RawLevel* asks
    Py_ssize_t n_asks

cdef class FrameScanner:
    cdef ScanResult r
    cdef RawChange* _changes
    cdef Py_ssize_t _changes_cap
    cdef RawLevel* _bids
    cdef Py_ssize_t _bids_cap
    cdef RawLevel* _asks
    cdef Py_ssize_t _asks_cap

    # Scan one frame (the whole text payload). Returns r.kind. Never raises, never allocates
    # Python objects; may grow the internal arrays with realloc (failure -> SCAN_FALLBACK).
    cdef int scan(self, const char* buf, Py_ssize_t n) noexcept nogil

    cdef bint _grow_changes(self) noexcept nogil
    cdef bint _grow_levels(self, bint ask) noexcept nogil
