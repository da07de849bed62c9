# cython: language_level=3
"""Zero-allocation scanner for ``orderbook`` / ``orderbook_delta`` frames.

The scanner reads the fields the engine needs straight from the payload bytes and fills C
arrays of ``RawChange`` / ``RawLevel`` that ``Book.raw_apply_delta`` / ``raw_apply_snapshot``
take as they are. It accepts a frame only when it understands all of it: the whole buffer is
validated as JSON the way orjson validates it (grammar, UTF-8, escapes, numbers that overflow),
and every double equals, bit for bit, the one ``orjson.loads`` would give. Anything else is
``SCAN_FALLBACK``: the caller decodes the frame with orjson, which decides.

Cost: the common frame is compact ASCII JSON with the protocol's keys, so that is the inline
path (``_scan_c.h``): a known key and its colon are one 16-byte compare against a pattern, a
string one SSE2 compare per 16 bytes, a number one pass (8 digits at a time for timestamps),
a separator one 16-bit compare, and a change item written as the protocol spells it
(``{"side":"bid","price":N,"size":N}``) three word compares plus its two numbers. Anything else
(whitespace, escapes, non-ASCII, unknown keys, another key order inside an item, long or
exponent numbers) takes the general, fully validating path out of line. For the local
server's 1-change delta (~340 bytes) that is ~1,750 instructions per frame by callgrind
(``bench/callgrind_scanner.py``; 3 changes: ~2,210), against ~14,000 for ``orjson.loads``.

The C interface is in ``_scan.pxd``; ``scan_to_python`` and ``FrameScanner.scan_bytes`` /
``bench_loop`` exist for tests and benchmarks only.
"""
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from cpython.time cimport monotonic_ns

from parsec_fast._book cimport RawChange, RawLevel, SIDE_BID, SIDE_ASK

cdef extern from "_scan_c.h" nogil:
    int pf_scan_init()
    const pf_u8* pf_ws(const pf_u8* p, const pf_u8* end)
    const pf_u8* pf_expect(const pf_u8* p, const pf_u8* end, pf_u8 c)
    const pf_u8* pf_colon(const pf_u8* p, const pf_u8* end)
    const pf_u8* pf_sep(const pf_u8* p, const pf_u8* end, pf_u8 next, pf_u8 close)
    const pf_u8* pf_string(const pf_u8* p, const pf_u8* end, const pf_u8** s, size_t* len, int* esc)
    const pf_u8* pf_rawstr(const pf_u8* p, const pf_u8* end, const pf_u8** s, size_t* len)
    const pf_u8* pf_key(const pf_u8* p, const pf_u8* end, unsigned* id)
    const pf_u8* pf_member(const pf_u8* p, const pf_u8* end, unsigned* id)
    const pf_u8* pf_number(const pf_u8* p, const pf_u8* end, int mode, double* d, int64_t* i)
    const pf_u8* pf_int64(const pf_u8* p, const pf_u8* end, int64_t* out)
    const pf_u8* pf_double(const pf_u8* p, const pf_u8* end, double* d)
    const pf_u8* pf_skip_value(const pf_u8* p, const pf_u8* end)
    const pf_u8* pf_change_compact(const pf_u8* p, const pf_u8* end, int* side, double* price,
                                   double* size)
    int PF_CHANGE_BID
    const pf_u8* pf_skip_scalar(const pf_u8* p, const pf_u8* end)
    const pf_u8* pf_literal(const pf_u8* p, const pf_u8* end, const char* lit, size_t n)
    int PF_NUM_DOUBLE
    int PF_NUM_INT64
    int pf_eq(const pf_u8* s, size_t n, const char* lit, size_t m)
    enum:   # key indexes (pf_key_id, pf_member)
        KI_TYPE "PF_KI_TYPE"
        KI_PARSEC_ID "PF_KI_PARSEC_ID"
        KI_OUTCOME "PF_KI_OUTCOME"
        KI_SEQ "PF_KI_SEQ"
        KI_CHANGES "PF_KI_CHANGES"
        KI_BIDS "PF_KI_BIDS"
        KI_ASKS "PF_KI_ASKS"
        KI_BOOK_STATE "PF_KI_BOOK_STATE"
        KI_FEED_STATE "PF_KI_FEED_STATE"
        KI_STALE "PF_KI_STALE"
        KI_EXCHANGE_TS "PF_KI_EXCHANGE_TS"
        KI_INGEST_TS "PF_KI_INGEST_TS"
        KI_SIDE "PF_KI_SIDE"
        KI_PRICE "PF_KI_PRICE"
        KI_SIZE "PF_KI_SIZE"

if not pf_scan_init():
    # Only the strtod path (numbers with > 15 significant digits or large exponents) needs the
    # C locale; without it those numbers fall back to orjson. Never expected on a sane libc.
    pass

# Which top-level keys are read, by frame type (the others are skipped like unknown keys, but
# "type" stays in every mask so that a duplicate "type" is always seen). A key read twice ->
# FALLBACK: orjson keeps the last occurrence, we prefer not to reason about it.
# key bits: 1 << KI_*
cdef enum:
    K_TYPE = 1 << KI_TYPE
    K_PARSEC_ID = 1 << KI_PARSEC_ID
    K_OUTCOME = 1 << KI_OUTCOME
    K_SEQ = 1 << KI_SEQ
    K_CHANGES = 1 << KI_CHANGES
    K_BIDS = 1 << KI_BIDS
    K_ASKS = 1 << KI_ASKS
    K_BOOK_STATE = 1 << KI_BOOK_STATE
    K_FEED_STATE = 1 << KI_FEED_STATE
    K_STALE = 1 << KI_STALE
    K_EXCHANGE_TS = 1 << KI_EXCHANGE_TS
    K_INGEST_TS = 1 << KI_INGEST_TS
    K_SIDE = 1 << KI_SIDE
    K_PRICE = 1 << KI_PRICE
    K_SIZE = 1 << KI_SIZE

cdef enum:
    # type not yet known: every top-level key the scanner reads
    USE_ANY = (K_TYPE | K_PARSEC_ID | K_OUTCOME | K_SEQ | K_CHANGES | K_BIDS | K_ASKS
               | K_BOOK_STATE | K_FEED_STATE | K_STALE | K_EXCHANGE_TS | K_INGEST_TS)
    USE_DELTA = USE_ANY & ~(K_BIDS | K_ASKS)
    USE_SNAPSHOT = USE_ANY & ~K_CHANGES
    USE_OTHER = K_TYPE
    NEED_DELTA = K_PARSEC_ID | K_SEQ | K_CHANGES
    NEED_SNAPSHOT = K_PARSEC_ID | K_SEQ | K_BIDS | K_ASKS
    NEED_CHANGE = K_SIDE | K_PRICE | K_SIZE

cdef enum:
    T_UNKNOWN = -1    # no "type" key yet


cdef inline bint _eq(const pf_u8* s, size_t n, const char* lit, size_t m) noexcept nogil:
    return pf_eq(s, n, lit, m)


cdef inline int _book_state(const pf_u8* s, size_t n) noexcept nogil:
    if _eq(s, n, "fresh", 5):
        return BOOK_STATE_FRESH
    if _eq(s, n, "stale", 5):
        return BOOK_STATE_STALE
    if _eq(s, n, "needs_refresh", 13):
        return BOOK_STATE_NEEDS_REFRESH
    return BOOK_STATE_OTHER


cdef inline int _feed_state(const pf_u8* s, size_t n) noexcept nogil:
    if _eq(s, n, "healthy", 7):
        return FEED_STATE_HEALTHY
    if _eq(s, n, "degraded", 8):
        return FEED_STATE_DEGRADED
    if _eq(s, n, "disconnected", 12):
        return FEED_STATE_DISCONNECTED
    return FEED_STATE_OTHER


cdef inline const pf_u8* _skip(const pf_u8* p, const pf_u8* end) noexcept nogil:
    """An unknown member's value (p < end, at its first byte): strings and numbers inline,
    containers and literals through the general skipper."""
    cdef const pf_u8* s
    cdef size_t slen
    cdef int esc
    if p[0] == b'"':
        return pf_string(p, end, &s, &slen, &esc)
    if p[0] == b'{' or p[0] == b'[':
        return pf_skip_value(p, end)
    return pf_skip_scalar(p, end)


cdef inline const pf_u8* _opt_int64(const pf_u8* p, const pf_u8* end, bint* has,
                                    int64_t* v) noexcept nogil:
    """null (not present) or an int64 JSON integer (present); anything else -> NULL."""
    if p[0] == b'n':
        return pf_literal(p, end, "null", 4)
    has[0] = True
    return pf_int64(p, end, v)


cdef inline const pf_u8* _changes_array(FrameScanner self, const pf_u8* p,
                                        const pf_u8* end) noexcept nogil:
    """`changes`: an array of {"side": "bid"|"ask", "price": num, "size": num, ...}."""
    cdef Py_ssize_t n = 0
    cdef const pf_u8* q
    cdef int side = 0
    cdef double price = 0.0, size = 0.0
    cdef RawChange* c
    # p is at '[' (checked by the caller)
    p = pf_ws(p + 1, end)
    if p >= end:
        return NULL
    if p[0] == b']':
        self.r.n_changes = 0
        return p + 1
    while True:
        # an item; p is at its first byte. The protocol's own spelling takes one fixed-pattern
        # pass; any other goes through the member loop below.
        q = pf_change_compact(p, end, &side, &price, &size)
        if q != NULL:
            p = q
            side = SIDE_BID if side == PF_CHANGE_BID else SIDE_ASK
        else:
            p = _change_members(p, end, &side, &price, &size)
            if p == NULL:
                return NULL
        if n == self._changes_cap and not self._grow_changes():
            return NULL
        c = &self._changes[n]
        c.side = side
        c.price = price
        c.size = size
        n += 1
        p = pf_sep(p, end, b'{', b']')   # next item, or ']'
        if p == NULL:
            return NULL
        if p[0] == b']':
            self.r.n_changes = n
            return p + 1


cdef const pf_u8* _change_members(const pf_u8* p, const pf_u8* end, int* side_out,
                                  double* price_out, double* size_out) noexcept nogil:
    """One item of `changes` in general: {"side": "bid"|"ask", "price": num, "size": num, ...},
    keys in any order, whitespace, unknown keys skipped. Returns the position after its '}'."""
    cdef const pf_u8* s
    cdef size_t slen
    cdef unsigned key, bit, got
    cdef int side = 0
    cdef double price = 0.0, size = 0.0
    if p[0] != b'{':
        return NULL
    p = pf_ws(p + 1, end)
    if p >= end or p[0] != b'"':
        return NULL           # also "{}": missing fields
    got = 0
    while True:
        p = pf_member(p, end, &key)   # key and ':'; now at the value (p < end)
        if p == NULL:
            return NULL
        bit = (1u << key) & NEED_CHANGE
        if bit & got:
            return NULL       # duplicate
        got |= bit
        if bit == 0:
            p = _skip(p, end)
        elif key == KI_PRICE:
            p = pf_double(p, end, &price)
        elif key == KI_SIZE:
            p = pf_double(p, end, &size)
        else:  # side
            if p[0] != b'"':
                return NULL
            p = pf_rawstr(p, end, &s, &slen)
            if p == NULL or slen != 3:
                return NULL
            if s[0] == b'b' and s[1] == b'i' and s[2] == b'd':
                side = SIDE_BID
            elif s[0] == b'a' and s[1] == b's' and s[2] == b'k':
                side = SIDE_ASK
            else:
                return NULL
        if p == NULL:
            return NULL
        p = pf_sep(p, end, b'"', b'}')   # next key, or '}'
        if p == NULL:
            return NULL
        if p[0] == b'}':
            break
    if got != NEED_CHANGE:
        return NULL
    side_out[0] = side
    price_out[0] = price
    size_out[0] = size
    return p + 1


cdef const pf_u8* _levels_array(FrameScanner self, const pf_u8* p, const pf_u8* end,
                                bint ask) noexcept nogil:
    """`bids` / `asks`: an array of [price, size] pairs of numbers."""
    cdef Py_ssize_t n = 0
    cdef double price = 0.0, size = 0.0
    cdef RawLevel* lv
    # p is at '[' (checked by the caller)
    p = pf_ws(p + 1, end)
    if p >= end:
        return NULL
    if p[0] != b']':
        while True:
            # a level; p is at its first byte
            if p[0] != b'[':
                return NULL
            p = pf_double(pf_ws(p + 1, end), end, &price)
            if p == NULL:
                return NULL
            p = pf_expect(p, end, b',')
            if p == NULL:
                return NULL
            p = pf_double(pf_ws(p, end), end, &size)
            if p == NULL:
                return NULL
            p = pf_expect(p, end, b']')
            if p == NULL:
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
            p = pf_sep(p, end, b'[', b']')   # next level, or ']'
            if p == NULL:
                return NULL
            if p[0] == b']':
                break
    if ask:
        self.r.n_asks = n
    else:
        self.r.n_bids = n
    return p + 1


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

    # ---- the frame ----------------------------------------------------------------------

    cdef int scan(self, const char* buf, Py_ssize_t n) noexcept nogil:
        cdef ScanResult* r = &self.r
        cdef const pf_u8* p = <const pf_u8*>buf
        cdef const pf_u8* end = p + n
        cdef const pf_u8* s
        cdef size_t slen
        cdef unsigned seen = 0
        cdef unsigned use = USE_ANY     # keys read for the frame type known so far
        cdef unsigned key, bit
        cdef int tkind = T_UNKNOWN

        # The fields whose absence is a value; every other field is written before a kind that
        # uses it is returned (a memset of the whole struct is a libc call, ~30 instructions).
        r.kind = SCAN_FALLBACK
        r.has_outcome = False
        r.book_state = BOOK_STATE_ABSENT
        r.feed_state = FEED_STATE_ABSENT
        r.has_stale_after_ms = False
        r.has_exchange_ts_ms = False
        r.has_ingest_ts_ms = False
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
            # key and ':' (p is at the key's opening quote; an escaped key could spell a key we
            # need: FALLBACK); now at the value's first byte (p < end)
            p = pf_member(p, end, &key)
            if p == NULL:
                return SCAN_FALLBACK

            bit = (1u << key) & use
            if bit == 0:
                p = _skip(p, end)
            elif seen & bit:
                return SCAN_FALLBACK      # duplicate key
            else:
                seen |= bit
                if key == KI_TYPE:
                    if p[0] != b'"':
                        return SCAN_FALLBACK
                    p = pf_rawstr(p, end, &s, &slen)
                    if p == NULL:
                        return SCAN_FALLBACK
                    r.type_ptr = <const char*>s
                    r.type_len = <Py_ssize_t>slen
                    if _eq(s, slen, "orderbook_delta", 15):
                        tkind = SCAN_DELTA
                        use = USE_DELTA
                    elif _eq(s, slen, "orderbook", 9):
                        tkind = SCAN_SNAPSHOT
                        use = USE_SNAPSHOT
                    else:
                        tkind = SCAN_OTHER
                        use = USE_OTHER
                elif key == KI_PARSEC_ID:
                    if p[0] != b'"':
                        return SCAN_FALLBACK
                    p = pf_rawstr(p, end, &s, &slen)
                    if p == NULL:
                        return SCAN_FALLBACK
                    r.parsec_id = <const char*>s
                    r.parsec_id_len = <Py_ssize_t>slen
                elif key == KI_OUTCOME:
                    if p[0] != b'"':
                        return SCAN_FALLBACK
                    p = pf_rawstr(p, end, &s, &slen)
                    if p == NULL:
                        return SCAN_FALLBACK
                    r.outcome = <const char*>s
                    r.outcome_len = <Py_ssize_t>slen
                    r.has_outcome = True
                elif key == KI_SEQ:
                    p = pf_int64(p, end, &r.server_seq)
                elif key == KI_CHANGES:
                    if p[0] != b'[':
                        return SCAN_FALLBACK
                    p = _changes_array(self, p, end)
                elif key == KI_BIDS or key == KI_ASKS:
                    if p[0] != b'[':
                        return SCAN_FALLBACK
                    p = _levels_array(self, p, end, key == KI_ASKS)
                elif key == KI_STALE:
                    p = _opt_int64(p, end, &r.has_stale_after_ms, &r.stale_after_ms)
                elif key == KI_EXCHANGE_TS:
                    p = _opt_int64(p, end, &r.has_exchange_ts_ms, &r.exchange_ts_ms)
                elif key == KI_INGEST_TS:
                    p = _opt_int64(p, end, &r.has_ingest_ts_ms, &r.ingest_ts_ms)
                else:  # book_state / feed_state: a plain string or null
                    if p[0] == b'n':
                        p = pf_literal(p, end, "null", 4)
                    elif p[0] == b'"':
                        p = pf_rawstr(p, end, &s, &slen)
                        if p == NULL:
                            return SCAN_FALLBACK
                        if key == KI_BOOK_STATE:
                            r.book_state = _book_state(s, slen)
                        else:
                            r.feed_state = _feed_state(s, slen)
                    else:
                        return SCAN_FALLBACK
            if p == NULL:
                return SCAN_FALLBACK

            # separator: ',' then the next key, or '}'
            p = pf_sep(p, end, b'"', b'}')
            if p == NULL:
                return SCAN_FALLBACK
            if p[0] == b'}':
                p += 1
                break

        if p != end and pf_ws(p, end) != end:
            return SCAN_FALLBACK          # trailing garbage

        if tkind == SCAN_DELTA:
            if (seen & NEED_DELTA) != NEED_DELTA:
                return SCAN_FALLBACK
            r.changes = self._changes
            r.n_bids = 0
            r.n_asks = 0
        elif tkind == SCAN_SNAPSHOT:
            if (seen & NEED_SNAPSHOT) != NEED_SNAPSHOT:
                return SCAN_FALLBACK
            r.n_changes = 0
            r.bids = self._bids
            r.asks = self._asks
        elif tkind == SCAN_OTHER:
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
        out["exchange_ts_ms"] = r.exchange_ts_ms if r.has_exchange_ts_ms else None
        out["ingest_ts_ms"] = r.ingest_ts_ms if r.has_ingest_ts_ms else None
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
