# cython: language_level=3
"""Zero-allocation scanner for ``orderbook`` / ``orderbook_delta`` frames.

The scanner reads the fields the engine needs straight from the payload bytes and fills C
arrays of ``RawChange`` / ``RawLevel`` that ``Book.raw_apply_delta`` / ``raw_apply_snapshot``
take as they are. It accepts a frame only when it understands all of it: the whole buffer is
validated as JSON the way orjson validates it (grammar, UTF-8, escapes, numbers that overflow),
and every double equals, bit for bit, the one ``orjson.loads`` would give. Anything else is
``SCAN_FALLBACK``: the caller decodes the frame with orjson, which decides.

The C interface is in ``_scan.pxd``; ``scan_to_python`` and ``FrameScanner.scan_bytes`` /
``bench_loop`` exist for tests and benchmarks only.
"""
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memcpy
from cpython.time cimport monotonic_ns

from parsec_fast._book cimport RawChange, RawLevel, SIDE_BID, SIDE_ASK

cdef extern from "_scan_c.h" nogil:
    int pf_scan_init()
    const pf_u8* pf_ws(const pf_u8* p, const pf_u8* end)
    const pf_u8* pf_string(const pf_u8* p, const pf_u8* end, const pf_u8** s, size_t* len, int* esc)
    const pf_u8* pf_number(const pf_u8* p, const pf_u8* end, int mode, double* d, int64_t* i)
    const pf_u8* pf_skip_value(const pf_u8* p, const pf_u8* end)
    const pf_u8* pf_literal(const pf_u8* p, const pf_u8* end, const char* lit, size_t n)
    int PF_NUM_DOUBLE
    int PF_NUM_INT64

if not pf_scan_init():
    # Only the strtod path (numbers with > 15 significant digits or large exponents) needs the
    # C locale; without it those numbers fall back to orjson. Never expected on a sane libc.
    pass

# Bits of the keys already seen at the top level (a duplicate of any of them -> FALLBACK:
# orjson keeps the last occurrence, we prefer not to reason about it).
cdef enum:
    K_TYPE = 1 << 0
    K_PARSEC_ID = 1 << 1
    K_OUTCOME = 1 << 2
    K_SEQ = 1 << 3
    K_CHANGES = 1 << 4
    K_BIDS = 1 << 5
    K_ASKS = 1 << 6
    K_BOOK_STATE = 1 << 7
    K_FEED_STATE = 1 << 8
    K_STALE = 1 << 9

cdef enum:
    T_UNKNOWN = -1    # no "type" key yet


cdef inline bint _eq(const pf_u8* s, size_t n, const char* lit, size_t m) noexcept nogil:
    return n == m and memcmp(s, lit, m) == 0


cdef class FrameScanner:
    """Reusable scanner; see _scan.pxd for the C API. Not thread-safe (one per connection)."""

    def __cinit__(self):
        self._changes = NULL
        self._changes_cap = 0
        self._bids = NULL
        self._bids_cap = 0
        self._asks = NULL
        self._asks_cap = 0

    def __dealloc__(self):
        free(self._changes)
        free(self._bids)
        free(self._asks)

    # ---- growable arrays (grown, never shrunk) -------------------------------------------

    cdef bint _grow_changes(self) noexcept nogil:
        cdef Py_ssize_t cap = self._changes_cap * 2 if self._changes_cap else 16
        cdef RawChange* q = <RawChange*>realloc(self._changes, cap * sizeof(RawChange))
        if q == NULL:
            return False
        self._changes = q
        self._changes_cap = cap
        return True

    cdef bint _grow_levels(self, bint ask) noexcept nogil:
        cdef Py_ssize_t cap0 = self._asks_cap if ask else self._bids_cap
        cdef Py_ssize_t cap = cap0 * 2 if cap0 else 64
        cdef RawLevel* q = <RawLevel*>realloc(self._asks if ask else self._bids,
                                              cap * sizeof(RawLevel))
        if q == NULL:
            return False
        if ask:
            self._asks = q
            self._asks_cap = cap
        else:
            self._bids = q
            self._bids_cap = cap
        return True

    # ---- pieces -------------------------------------------------------------------------

    cdef const pf_u8* _changes_array(self, const pf_u8* p, const pf_u8* end) noexcept nogil:
        """`changes`: an array of {"side": "bid"|"ask", "price": num, "size": num, ...}."""
        cdef Py_ssize_t n = 0
        cdef const pf_u8* s
        cdef size_t slen
        cdef int esc
        cdef int side
        cdef double price = 0.0, size = 0.0
        cdef int got            # bits: 1 side, 2 price, 4 size
        cdef RawChange* c
        if p >= end or p[0] != b'[':
            return NULL
        p = pf_ws(p + 1, end)
        if p >= end:
            return NULL
        if p[0] == b']':
            self.r.n_changes = 0
            return p + 1
        while True:
            if p[0] != b'{':
                return NULL
            p = pf_ws(p + 1, end)
            got = 0
            side = -1
            if p >= end or p[0] == b'}':
                return NULL       # missing fields
            while True:
                if p[0] != b'"':
                    return NULL
                p = pf_string(p, end, &s, &slen, &esc)
                if p == NULL or esc:
                    return NULL
                p = pf_ws(p, end)
                if p >= end or p[0] != b':':
                    return NULL
                p = pf_ws(p + 1, end)
                if p >= end:
                    return NULL
                if _eq(s, slen, "price", 5):
                    if got & 2:
                        return NULL
                    got |= 2
                    p = pf_number(p, end, PF_NUM_DOUBLE, &price, NULL)
                elif _eq(s, slen, "size", 4):
                    if got & 4:
                        return NULL
                    got |= 4
                    p = pf_number(p, end, PF_NUM_DOUBLE, &size, NULL)
                elif _eq(s, slen, "side", 4):
                    if got & 1 or p[0] != b'"':
                        return NULL
                    got |= 1
                    p = pf_string(p, end, &s, &slen, &esc)
                    if p == NULL or esc:
                        return NULL
                    if _eq(s, slen, "bid", 3):
                        side = SIDE_BID
                    elif _eq(s, slen, "ask", 3):
                        side = SIDE_ASK
                    else:
                        return NULL
                else:
                    p = pf_skip_value(p, end)
                if p == NULL:
                    return NULL
                p = pf_ws(p, end)
                if p >= end:
                    return NULL
                if p[0] == b',':
                    p = pf_ws(p + 1, end)
                    if p >= end:
                        return NULL
                    continue
                if p[0] != b'}':
                    return NULL
                p += 1
                break
            if got != 7:
                return NULL
            if n == self._changes_cap and not self._grow_changes():
                return NULL
            c = &self._changes[n]
            c.side = side
            c.price = price
            c.size = size
            n += 1
            p = pf_ws(p, end)
            if p >= end:
                return NULL
            if p[0] == b',':
                p = pf_ws(p + 1, end)
                if p >= end:
                    return NULL
                continue
            if p[0] != b']':
                return NULL
            self.r.n_changes = n
            return p + 1

    cdef const pf_u8* _levels_array(self, const pf_u8* p, const pf_u8* end, bint ask) noexcept nogil:
        """`bids` / `asks`: an array of [price, size] pairs of numbers."""
        cdef Py_ssize_t n = 0
        cdef double price = 0.0, size = 0.0
        cdef RawLevel* lv
        if p >= end or p[0] != b'[':
            return NULL
        p = pf_ws(p + 1, end)
        if p >= end:
            return NULL
        if p[0] != b']':
            while True:
                if p[0] != b'[':
                    return NULL
                p = pf_ws(p + 1, end)
                p = pf_number(p, end, PF_NUM_DOUBLE, &price, NULL)
                if p == NULL:
                    return NULL
                p = pf_ws(p, end)
                if p >= end or p[0] != b',':
                    return NULL
                p = pf_ws(p + 1, end)
                p = pf_number(p, end, PF_NUM_DOUBLE, &size, NULL)
                if p == NULL:
                    return NULL
                p = pf_ws(p, end)
                if p >= end or p[0] != b']':
                    return NULL
                if ask:
                    if n == self._asks_cap and not self._grow_levels(True):
                        return NULL
                    lv = &self._asks[n]
                else:
                    if n == self._bids_cap and not self._grow_levels(False):
                        return NULL
                    lv = &self._bids[n]
                lv.price = price
                lv.size = size
                n += 1
                p = pf_ws(p + 1, end)
                if p >= end:
                    return NULL
                if p[0] == b',':
                    p = pf_ws(p + 1, end)
                    if p >= end:
                        return NULL
                    continue
                if p[0] != b']':
                    return NULL
                break
        if ask:
            self.r.n_asks = n
        else:
            self.r.n_bids = n
        return p + 1

    # ---- the frame ----------------------------------------------------------------------

    cdef int scan(self, const char* buf, Py_ssize_t n) noexcept nogil:
        cdef ScanResult* r = &self.r
        cdef const pf_u8* p = <const pf_u8*>buf
        cdef const pf_u8* end = p + n
        cdef const pf_u8* s
        cdef size_t slen
        cdef int esc
        cdef unsigned seen = 0
        cdef unsigned bit
        cdef int tkind = T_UNKNOWN

        r.kind = SCAN_FALLBACK
        r.type_ptr = NULL
        r.type_len = 0
        r.parsec_id = NULL
        r.parsec_id_len = 0
        r.has_outcome = False
        r.outcome = NULL
        r.outcome_len = 0
        r.server_seq = 0
        r.book_state = BOOK_STATE_ABSENT
        r.feed_state = FEED_STATE_ABSENT
        r.has_stale_after_ms = False
        r.stale_after_ms = 0
        r.n_changes = 0
        r.n_bids = 0
        r.n_asks = 0

        if buf == NULL or n <= 0:
            return SCAN_FALLBACK
        p = pf_ws(p, end)
        if p >= end or p[0] != b'{':
            return SCAN_FALLBACK          # also a leading BOM, which orjson rejects
        p = pf_ws(p + 1, end)
        if p >= end or p[0] != b'"':
            return SCAN_FALLBACK          # "{}" has no type either
        while True:
            # key (p is at its opening quote)
            p = pf_string(p, end, &s, &slen, &esc)
            if p == NULL or esc:
                return SCAN_FALLBACK      # an escaped key could spell a key we need
            p = pf_ws(p, end)
            if p >= end or p[0] != b':':
                return SCAN_FALLBACK
            p = pf_ws(p + 1, end)
            if p >= end:
                return SCAN_FALLBACK

            bit = 0
            if slen == 4:
                if memcmp(s, "type", 4) == 0:
                    bit = K_TYPE
                elif memcmp(s, "bids", 4) == 0:
                    bit = K_BIDS
                elif memcmp(s, "asks", 4) == 0:
                    bit = K_ASKS
            elif slen == 7:
                if memcmp(s, "changes", 7) == 0:
                    bit = K_CHANGES
                elif memcmp(s, "outcome", 7) == 0:
                    bit = K_OUTCOME
            elif slen == 9:
                if memcmp(s, "parsec_id", 9) == 0:
                    bit = K_PARSEC_ID
            elif slen == 10:
                if memcmp(s, "server_seq", 10) == 0:
                    bit = K_SEQ
                elif memcmp(s, "book_state", 10) == 0:
                    bit = K_BOOK_STATE
                elif memcmp(s, "feed_state", 10) == 0:
                    bit = K_FEED_STATE
            elif slen == 14:
                if memcmp(s, "stale_after_ms", 14) == 0:
                    bit = K_STALE

            # Once the type is known, fields it does not use are skipped like unknown ones.
            if bit != 0 and bit != K_TYPE and tkind != T_UNKNOWN:
                if tkind == SCAN_OTHER:
                    bit = 0
                elif bit == K_CHANGES and tkind != SCAN_DELTA:
                    bit = 0
                elif (bit == K_BIDS or bit == K_ASKS) and tkind != SCAN_SNAPSHOT:
                    bit = 0

            if bit == 0:
                p = pf_skip_value(p, end)
            else:
                if seen & bit:
                    return SCAN_FALLBACK  # duplicate key
                seen |= bit
                if bit == K_TYPE:
                    if p[0] != b'"':
                        return SCAN_FALLBACK
                    p = pf_string(p, end, &s, &slen, &esc)
                    if p == NULL or esc:
                        return SCAN_FALLBACK
                    r.type_ptr = <const char*>s
                    r.type_len = <Py_ssize_t>slen
                    if _eq(s, slen, "orderbook_delta", 15):
                        tkind = SCAN_DELTA
                    elif _eq(s, slen, "orderbook", 9):
                        tkind = SCAN_SNAPSHOT
                    else:
                        tkind = SCAN_OTHER
                elif bit == K_PARSEC_ID or bit == K_OUTCOME:
                    if p[0] != b'"':
                        return SCAN_FALLBACK
                    p = pf_string(p, end, &s, &slen, &esc)
                    if p == NULL or esc:
                        return SCAN_FALLBACK
                    if bit == K_PARSEC_ID:
                        r.parsec_id = <const char*>s
                        r.parsec_id_len = <Py_ssize_t>slen
                    else:
                        r.outcome = <const char*>s
                        r.outcome_len = <Py_ssize_t>slen
                        r.has_outcome = True
                elif bit == K_SEQ:
                    p = pf_number(p, end, PF_NUM_INT64, NULL, &r.server_seq)
                elif bit == K_CHANGES:
                    p = self._changes_array(p, end)
                elif bit == K_BIDS:
                    p = self._levels_array(p, end, False)
                elif bit == K_ASKS:
                    p = self._levels_array(p, end, True)
                elif bit == K_STALE:
                    if p[0] == b'n':
                        p = pf_literal(p, end, "null", 4)
                    else:
                        p = pf_number(p, end, PF_NUM_INT64, NULL, &r.stale_after_ms)
                        r.has_stale_after_ms = True
                else:  # book_state / feed_state: a plain string or null
                    if p[0] == b'n':
                        p = pf_literal(p, end, "null", 4)
                    elif p[0] == b'"':
                        p = pf_string(p, end, &s, &slen, &esc)
                        if p == NULL or esc:
                            return SCAN_FALLBACK
                        if bit == K_BOOK_STATE:
                            if _eq(s, slen, "fresh", 5):
                                r.book_state = BOOK_STATE_FRESH
                            elif _eq(s, slen, "stale", 5):
                                r.book_state = BOOK_STATE_STALE
                            elif _eq(s, slen, "needs_refresh", 13):
                                r.book_state = BOOK_STATE_NEEDS_REFRESH
                            else:
                                r.book_state = BOOK_STATE_OTHER
                        else:
                            if _eq(s, slen, "healthy", 7):
                                r.feed_state = FEED_STATE_HEALTHY
                            elif _eq(s, slen, "degraded", 8):
                                r.feed_state = FEED_STATE_DEGRADED
                            elif _eq(s, slen, "disconnected", 12):
                                r.feed_state = FEED_STATE_DISCONNECTED
                            else:
                                r.feed_state = FEED_STATE_OTHER
                    else:
                        return SCAN_FALLBACK
            if p == NULL:
                return SCAN_FALLBACK

            # separator
            p = pf_ws(p, end)
            if p >= end:
                return SCAN_FALLBACK
            if p[0] == b',':
                p = pf_ws(p + 1, end)
                if p >= end or p[0] != b'"':
                    return SCAN_FALLBACK
                continue
            if p[0] != b'}':
                return SCAN_FALLBACK
            p += 1
            break

        if pf_ws(p, end) != end:
            return SCAN_FALLBACK          # trailing garbage

        if tkind == SCAN_DELTA:
            if (seen & (K_PARSEC_ID | K_SEQ | K_CHANGES)) != (K_PARSEC_ID | K_SEQ | K_CHANGES):
                return SCAN_FALLBACK
            r.changes = self._changes
            r.bids = NULL
            r.asks = NULL
            r.n_bids = 0
            r.n_asks = 0
        elif tkind == SCAN_SNAPSHOT:
            if ((seen & (K_PARSEC_ID | K_SEQ | K_BIDS | K_ASKS))
                    != (K_PARSEC_ID | K_SEQ | K_BIDS | K_ASKS)):
                return SCAN_FALLBACK
            r.changes = NULL
            r.n_changes = 0
            r.bids = self._bids
            r.asks = self._asks
        elif tkind == SCAN_OTHER:
            r.changes = NULL
            r.bids = NULL
            r.asks = NULL
            r.n_changes = 0
            r.n_bids = 0
            r.n_asks = 0
        else:
            return SCAN_FALLBACK          # no "type"
        r.kind = tkind
        return tkind

    # ---- Python-visible helpers (tests and benchmarks; not the hot path) -------------------

    def scan_bytes(self, bytes data not None):
        """Scan ``data`` and return the SCAN_* code (int)."""
        return self.scan(<const char*>data, len(data))

    def scan_exact(self, bytes data not None):
        """Scan a malloc'd copy of exactly len(data) bytes (fuzzing under AddressSanitizer:
        a read past the payload hits the redzone). Returns the SCAN_* code."""
        cdef Py_ssize_t n = len(data)
        cdef char* copy = <char*>malloc(n if n else 1)
        cdef int kind
        if copy == NULL:
            raise MemoryError()
        memcpy(copy, <const char*>data, n)
        kind = self.scan(copy if n else NULL, n)
        free(copy)
        return kind

    def bench_loop(self, bytes data not None, Py_ssize_t iterations):
        """Scan ``data`` ``iterations`` times in a C loop; returns total nanoseconds."""
        cdef const char* b = data
        cdef Py_ssize_t n = len(data)
        cdef Py_ssize_t k
        cdef int64_t t0 = monotonic_ns()
        with nogil:
            for k in range(iterations):
                self.scan(b, n)
        return monotonic_ns() - t0

    def to_python(self, data):
        """Scan ``data`` (bytes-like) and return a dict of what was read (tests only).

        Always has ``kind`` in {"fallback", "other", "delta", "snapshot"}.
        """
        cdef bytes b = bytes(data)
        cdef int kind = self.scan(<const char*>b, len(b))
        cdef ScanResult* r = &self.r
        cdef Py_ssize_t k
        if kind == SCAN_FALLBACK:
            return {"kind": "fallback"}
        out = {"kind": {SCAN_DELTA: "delta", SCAN_SNAPSHOT: "snapshot", SCAN_OTHER: "other"}[kind],
               "type": r.type_ptr[:r.type_len].decode("utf-8")}
        if kind == SCAN_OTHER:
            return out
        out["parsec_id"] = r.parsec_id[:r.parsec_id_len].decode("utf-8")
        out["outcome"] = r.outcome[:r.outcome_len].decode("utf-8") if r.has_outcome else None
        out["server_seq"] = r.server_seq
        out["book_state"] = _BOOK_STATES[r.book_state]
        out["feed_state"] = _FEED_STATES[r.feed_state]
        out["stale_after_ms"] = r.stale_after_ms if r.has_stale_after_ms else None
        if kind == SCAN_DELTA:
            out["changes"] = [("bid" if r.changes[k].side == SIDE_BID else "ask",
                               r.changes[k].price, r.changes[k].size)
                              for k in range(r.n_changes)]
        else:
            out["bids"] = [(r.bids[k].price, r.bids[k].size) for k in range(r.n_bids)]
            out["asks"] = [(r.asks[k].price, r.asks[k].size) for k in range(r.n_asks)]
        return out


# index = BOOK_STATE_* / FEED_STATE_*; None = absent, "other" = another string
_BOOK_STATES = (None, "fresh", "stale", "needs_refresh", "other")
_FEED_STATES = (None, "healthy", "degraded", "disconnected", "other")

SCAN_CODES = {"fallback": SCAN_FALLBACK, "delta": SCAN_DELTA, "snapshot": SCAN_SNAPSHOT,
              "other": SCAN_OTHER}

cdef FrameScanner _default = FrameScanner()


def scan_to_python(data):
    """Module-level ``FrameScanner().to_python(data)`` on a shared scanner (tests only)."""
    return _default.to_python(data)


def parse_number(data):
    """The double the scanner reads for one JSON number token (tests only).

    Returns None when the scanner would fall back (invalid token, int64 overflow, infinity,
    too long) or when ``data`` holds anything after the number.
    """
    cdef bytes b = bytes(data)
    cdef const pf_u8* p = <const pf_u8*><const char*>b
    cdef const pf_u8* end = p + len(b)
    cdef double d = 0.0
    if len(b) == 0:
        return None
    cdef const pf_u8* q = pf_number(p, end, PF_NUM_DOUBLE, &d, NULL)
    if q != end:
        return None
    return d
