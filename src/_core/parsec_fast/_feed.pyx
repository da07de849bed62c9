"""The feed handler: one compiled entry point from frame bytes to applied books.

The transport hands every text frame to ``FeedHandler.feed`` (or ``feed_ptr`` from the native
listener). Book frames are read by the native scanner in place and applied through the books'
raw C entry points — no Python object is created for a delta — and anything the scanner does
not fully understand goes through ``orjson.loads`` and the books' object entry points, which
decide (apply, ``BookDataError``, or a ``ProtocolError``). Sequence numbers are checked once, in
the book. Python hears only what it must: non-book messages, one coalesced "book updated" per
book per read batch, and every state change (never coalesced).

Routing: subscriptions are keyed by (parsec_id, outcome) with the outcome compared
ASCII-case-insensitively (the protocol compares outcomes case-insensitively; the server may
answer "Yes" to a subscription for "yes"). An open-addressing table over the raw UTF-8 bytes
finds the subscription of a scanned frame with no allocation.

Activity sequence numbers (PROTOCOL.md §3 leaves the counter open). Default "shared": activity
frames consume numbers of the book's counter, so each is applied to the book as an empty delta
(advancing its seq, or revealing a gap). To stay safe if the real service numbers activity on a
separate counter, a delta whose seq was already consumed by an activity frame is a contradiction
("seq_conflict"): the book is invalidated and resynced rather than the delta being dropped as a
duplicate. "separate": activity frames never touch the book's seq (gaps between activity frames
are only counted).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.time cimport monotonic_ns
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport INT64_MIN, int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy

from parsec_fast._book cimport (Book, RES_APPLIED, RES_BAD_DATA, RES_DUPLICATE, RES_GAP,
                                RES_NO_MEMORY, RES_NO_SNAPSHOT)
from parsec_fast._scan cimport (BOOK_STATE_ABSENT, BOOK_STATE_FRESH, BOOK_STATE_NEEDS_REFRESH,
                                BOOK_STATE_OTHER, BOOK_STATE_STALE, FEED_STATE_ABSENT,
                                FEED_STATE_DEGRADED, FEED_STATE_DISCONNECTED, FEED_STATE_HEALTHY,
                                FEED_STATE_OTHER, SCAN_DELTA, SCAN_FALLBACK, SCAN_SNAPSHOT, FrameScanner,
                                ScanResult)

import orjson

from parsec_fast import rules
from parsec_fast.errors import BookDataError, ProtocolError
from parsec_fast.protocol import decode_message

cdef extern from "Python.h":
    bint PyBool_Check(object o)

assert len(rules.STAT_NAMES) == BOOK_COUNTERS, "_feed.pxd BOOK_COUNTERS is out of date"

cdef dict _BOOK_STATES = {"fresh": BOOK_STATE_FRESH, "stale": BOOK_STATE_STALE,
                          "needs_refresh": BOOK_STATE_NEEDS_REFRESH}
cdef dict _FEED_STATES = {"healthy": FEED_STATE_HEALTHY, "degraded": FEED_STATE_DEGRADED,
                          "disconnected": FEED_STATE_DISCONNECTED}
cdef tuple _BOOK_STATE_NAMES = ("fresh", "fresh", "stale", "needs_refresh", "other")
cdef tuple _FEED_STATE_NAMES = ("healthy", "healthy", "degraded", "disconnected", "other")
cdef int64_t _NO_SEQ = -(2 ** 62)
cdef int64_t _NO_TS = INT64_MIN
# stale_after_ms must lie in [0, _STALE_LIMIT) (the orjson path's rule; the native path defers
# anything else to it). In ns it may not fit int64: check_stale compares only below _STALE_NS_MAX_MS.
cdef int64_t _STALE_LIMIT = 2 ** 62
cdef int64_t _STALE_NS_MAX_MS = (2 ** 63 - 1) // 1_000_000


cdef inline unsigned char ascii_lower(unsigned char c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef inline uint64_t mix(uint64_t h, uint64_t w) noexcept nogil:
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL
    return h ^ (h >> 32)


cdef inline uint64_t load_upto8(const char* p, Py_ssize_t n) noexcept nogil:
    """The first min(n, 8) bytes at p as a word (zero-padded); reads only p[0:n]."""
    cdef uint64_t w = 0
    cdef Py_ssize_t i
    if n >= 8:
        memcpy(&w, p, 8)
        return w
    for i in range(n):
        w |= (<uint64_t>(<unsigned char>p[i])) << (8 * i)
    return w


cdef inline uint64_t route_hash(const char* pid, Py_ssize_t pid_len, const char* outcome,
                                Py_ssize_t outcome_len) noexcept nogil:
    # parsec_id's first and last eight bytes (they overlap for short ids) and its length: the
    # venue prefix and the market id, which is where ids differ. The outcome contributes only
    # its length and its ASCII-lowercased first byte (outcomes of one market rarely share both).
    # The equality check in _route settles any collision.
    cdef uint64_t h = <uint64_t>pid_len, w
    h = mix(h, load_upto8(pid, pid_len))
    if pid_len > 8:
        memcpy(&w, pid + pid_len - 8, 8)
        h = mix(h, w)
    w = <uint64_t>outcome_len << 8
    if outcome_len > 0:
        w |= ascii_lower(<unsigned char>outcome[0])
    return mix(h, w)


cdef inline bint outcome_equal(const char* a, const char* lowered, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if ascii_lower(<unsigned char>a[i]) != <unsigned char>lowered[i]:
            return False
    return True


cdef inline bint bytes_equal(const char* a, const char* b, Py_ssize_t n) noexcept nogil:
    # Inline word-at-a-time compare (parsec_ids are short, and a libc memcmp call costs more
    # than the comparison itself); the last word overlaps the previous one instead of a byte loop.
    cdef uint64_t x, y
    cdef Py_ssize_t i = 0
    if n < 8:
        while i < n:
            if a[i] != b[i]:
                return False
            i += 1
        return True
    while i + 8 < n:
        memcpy(&x, a + i, 8)
        memcpy(&y, b + i, 8)
        if x != y:
            return False
        i += 8
    memcpy(&x, a + n - 8, 8)
    memcpy(&y, b + n - 8, 8)
    return x == y


cdef inline int64_t ts_value(object value):
    """A frame's timestamp field as the native scanner reads it: an int within int64, else none."""
    if isinstance(value, int) and not PyBool_Check(value) and INT64_MIN < value <= 2 ** 63 - 1:
        return value
    return _NO_TS


cdef bytes outcome_key(str outcome):
    # The rule book's folding, as the bytes the router compares.
    return rules.fold_outcome(outcome).encode("utf-8")


cdef class Subscription:
    """State of one (parsec_id, outcome) subscription; owned by a FeedHandler.

    ``book`` is the live compiled Book. ``trustworthy`` / ``why_not()`` answer "can I trade on
    this book right now, and if not, why not".
    """

    def __init__(self, str parsec_id not None, str outcome not None, Py_ssize_t max_levels):
        self.parsec_id = parsec_id
        self.outcome = outcome
        self.book = Book(parsec_id, outcome, max_levels=max_levels)
        self._pid_utf8 = parsec_id.encode("utf-8")
        self._outcome_key = outcome_key(outcome)
        self._book_state = BOOK_STATE_FRESH
        self._feed_state = FEED_STATE_HEALTHY
        self._stale_after_ms = -1
        self._invalid_reason = "no_snapshot"
        self._exchange_ts_ms = _NO_TS
        self._ingest_ts_ms = _NO_TS
        self._last_activity_seq = _NO_SEQ
        for i in range(4):
            self._activity_ring[i] = _NO_SEQ
        self.sink_slot = -1

    cdef void frame_state(self, FrameState* out) noexcept:
        """The state a per-frame listener reports (see FrameState in _feed.pxd)."""
        out.server_seq = self.book._seq
        out.stale_after_ms = self._stale_after_ms
        out.exchange_ts_ms = self._exchange_ts_ms
        out.ingest_ts_ms = self._ingest_ts_ms
        # Borrowed: the names tuples and this subscription hold these strings.
        if self._book_state == BOOK_STATE_OTHER:
            out.book_state = <PyObject*>self._book_state_text
        else:
            out.book_state = PyTuple_GET_ITEM(_BOOK_STATE_NAMES, self._book_state)
        if self._feed_state == FEED_STATE_OTHER:
            out.feed_state = <PyObject*>self._feed_state_text
        else:
            out.feed_state = PyTuple_GET_ITEM(_FEED_STATE_NAMES, self._feed_state)

    @property
    def book_state(self):
        """Last book_state announced by the server ("fresh" until told otherwise)."""
        return self._book_state_text if self._book_state == BOOK_STATE_OTHER else _BOOK_STATE_NAMES[self._book_state]

    @property
    def feed_state(self):
        """Last feed_state announced by the server ("healthy" until told otherwise)."""
        return self._feed_state_text if self._feed_state == FEED_STATE_OTHER else _FEED_STATE_NAMES[self._feed_state]

    @property
    def stale_after_ms(self):
        return self._stale_after_ms if self._stale_after_ms >= 0 else None

    @property
    def exchange_ts_ms(self):
        """``exchange_ts_ms`` of the last book frame (None when it had none)."""
        return None if self._exchange_ts_ms == _NO_TS else self._exchange_ts_ms

    @property
    def ingest_ts_ms(self):
        """``ingest_ts_ms`` of the last book frame (None when it had none)."""
        return None if self._ingest_ts_ms == _NO_TS else self._ingest_ts_ms

    @property
    def locally_stale(self):
        """True when no book frame arrived within stale_after_ms (see FeedHandler.check_stale)."""
        return self._locally_stale

    @property
    def invalid_reason(self):
        """Why the book is invalid ("no_snapshot", "gap", "resync_required", "needs_refresh",
        "rejected", "seq_conflict", "disconnected", ...); None while it is valid."""
        return None if self.book._valid else self._invalid_reason

    @property
    def trustworthy(self):
        """Valid book, fresh by the server's word and locally, venue feed healthy."""
        return (self.book._valid and self._book_state == BOOK_STATE_FRESH
                and not self._locally_stale and self._feed_state == FEED_STATE_HEALTHY)

    def why_not(self):
        """None when ``trustworthy``, else a short reason a person can read."""
        if not self.book._valid:
            reason = self._invalid_reason or "invalid"
            if reason == "rejected" and self.last_error:
                return f"book invalid (rejected data: {self.last_error}); resync pending"
            return f"book invalid ({reason}); awaiting a snapshot"
        if self._book_state != BOOK_STATE_FRESH:
            return f"server reports book_state={self.book_state}"
        if self._locally_stale:
            return f"no book frame for more than stale_after_ms={self._stale_after_ms}"
        if self._feed_state != FEED_STATE_HEALTHY:
            return f"venue feed is {self.feed_state}"
        return None

    @property
    def stats(self):
        """The book's counters plus this subscription's activity and recovery counters."""
        out = self.book.stats
        out.update(activity=self.n_activity, activity_gaps=self.n_activity_gaps,
                   seq_conflicts=self.n_seq_conflicts, resync_required=self.n_resync_required,
                   needs_refresh=self.n_needs_refresh)
        return out

    def __repr__(self):
        return (f"Subscription({self.parsec_id!r}, {self.outcome!r}, seq={self.book.seq}, "
                f"trustworthy={self.trustworthy})")


cdef void _add_book_counts(Subscription sub, int64_t* totals) noexcept:
    """Add one subscription's book counters (STAT_NAMES order) to ``totals``, without the empty
    deltas its activity frames applied under the shared counter."""
    cdef Book book = sub.book
    totals[0] += book.n_snapshots
    totals[1] += book.n_applied - sub.n_activity_applied
    totals[2] += book.n_duplicates - sub.n_activity_duplicates
    totals[3] += book.n_gaps
    totals[4] += book.n_dropped - sub.n_activity_dropped
    totals[5] += book.n_no_snapshot - sub.n_activity_no_snapshot
    totals[6] += book.n_rejected


cdef class BookSink:
    """Base of what a FeedHandler publishes its books to (``FeedHandler.set_sink``): the C
    methods of ``_feed.pxd``, called with no Python object per update. This base does nothing;
    ``parsec_fast._shm_writer.Publisher`` writes the books into shared memory."""

    cdef int sink_added(self, Subscription sub) except -1:
        return 0

    cdef int sink_removed(self, Subscription sub) except -1:
        return 0

    cdef void sink_publish(self, Subscription sub) noexcept:
        pass

    cdef void sink_commit(self, int64_t now_ns) noexcept:
        pass

    cdef int sink_closed(self, str reason) except -1:
        return 0


cdef inline int sink_touch(FeedHandler self, Subscription sub) except -1:
    """Queue a book whose state changed for the sink's next flush (once)."""
    if self._sink is not None and not sub._sink_pending:
        sub._sink_pending = True
        self._sink_pending.append(sub)
    return 0


cdef inline int native_states(FeedHandler self, Subscription sub, ScanResult* r, int64_t now) except -1:
    """_on_states for a scanned frame, without the call when nothing changes (the usual
    case): the native path never sees BOOK_STATE_OTHER / FEED_STATE_OTHER, so a state equal
    to the subscription's is no change."""
    if (sub._locally_stale
            or (r.book_state != BOOK_STATE_ABSENT and r.book_state != sub._book_state)
            or (r.feed_state != FEED_STATE_ABSENT and r.feed_state != sub._feed_state)):
        return self._on_states(sub, r.book_state, None, r.feed_state, None,
                               r.has_stale_after_ms, r.stale_after_ms, now)
    sub.last_frame_ns = now
    if r.has_stale_after_ms:
        sub._stale_after_ms = r.stale_after_ms
    return 0


cdef class FeedHandler:
    """Parses frames, routes them to their books, applies them, reports through callbacks.

    ``FeedHandler(*, parser="native", activity_seq="shared", max_levels=10_000)``; see
    ``_feed.pyi`` for the callback contract.
    """

    def __init__(self, *, parser="native", activity_seq="shared", max_levels=10_000):
        if parser not in ("native", "orjson"):
            raise ValueError(f"parser: expected 'native' or 'orjson', got {parser!r}")
        if activity_seq not in ("shared", "separate"):
            raise ValueError(f"activity_seq: expected 'shared' or 'separate', got {activity_seq!r}")
        self._native = parser == "native"
        self._shared_seq = activity_seq == "shared"
        self._max_levels = max_levels
        if self._max_levels < 1:
            raise ValueError(f"max_levels: must be >= 1, got {max_levels}")
        self._scanner = FrameScanner()
        self._subs = {}
        self._table = NULL
        self._table_mask = -1
        self._dirty = []
        self._sink_pending = []
        self._loads = orjson.loads

    def __dealloc__(self):
        free(self._table)

    @property
    def parser(self):
        return "native" if self._native else "orjson"

    @property
    def activity_seq(self):
        return "shared" if self._shared_seq else "separate"

    # -- subscriptions --------------------------------------------------------------------------
    def add(self, str parsec_id not None, str outcome not None):
        """Register a subscription (idempotent); its book starts empty and invalid."""
        key = (parsec_id, outcome_key(outcome))
        sub = self._subs.get(key)
        if sub is None:
            sub = Subscription(parsec_id, outcome, self._max_levels)
            self._subs[key] = sub
            self._rebuild_table()
            if self._sink is not None:
                self._sink.sink_added(sub)
        return sub

    def remove(self, str parsec_id not None, str outcome not None):
        """Forget a subscription and its book; True if it existed."""
        cdef Subscription sub = self._subs.pop((parsec_id, outcome_key(outcome)), None)
        if sub is None:
            return False
        _add_book_counts(sub, self._retired)  # the handler's totals keep what it did
        if sub._dirty:
            self._dirty.remove(sub)
            sub._dirty = False
        self._rebuild_table()
        if sub._sink_pending:
            self._sink_pending.remove(sub)
            sub._sink_pending = False
        if self._sink is not None:
            self._sink.sink_removed(sub)
        return True

    def get(self, str parsec_id not None, str outcome not None):
        """The subscription of (parsec_id, outcome) (outcome ASCII-case-insensitive), or None."""
        return self._subs.get((parsec_id, outcome_key(outcome)))

    def subscriptions(self):
        """Every subscription, in the order they were added (a new list)."""
        return list(self._subs.values())

    cdef void _rebuild_table(self) except *:
        cdef Py_ssize_t size = 8, i
        cdef Subscription sub
        cdef RouteEntry* table
        cdef uint64_t h
        while size < 2 * len(self._subs):
            size *= 2
        table = <RouteEntry*>calloc(size, sizeof(RouteEntry))
        if table == NULL:
            raise MemoryError()
        for sub in self._subs.values():
            h = route_hash(PyBytes_AS_STRING(sub._pid_utf8), PyBytes_GET_SIZE(sub._pid_utf8),
                           PyBytes_AS_STRING(sub._outcome_key), PyBytes_GET_SIZE(sub._outcome_key))
            i = h & (size - 1)
            while table[i].sub != NULL:
                i = (i + 1) & (size - 1)
            table[i].pid = PyBytes_AS_STRING(sub._pid_utf8)
            table[i].pid_len = PyBytes_GET_SIZE(sub._pid_utf8)
            table[i].outcome = PyBytes_AS_STRING(sub._outcome_key)
            table[i].outcome_len = PyBytes_GET_SIZE(sub._outcome_key)
            table[i].sub = <void*>sub
        free(self._table)
        self._table = table
        self._table_mask = size - 1

    cdef Subscription _route(self, const char* pid, Py_ssize_t pid_len,
                             const char* outcome, Py_ssize_t outcome_len):
        cdef uint64_t h
        cdef Py_ssize_t i
        cdef RouteEntry* e
        if self._table == NULL:
            return None
        h = route_hash(pid, pid_len, outcome, outcome_len)
        i = h & self._table_mask
        while True:
            e = &self._table[i]
            if e.sub == NULL:
                return None
            if (e.pid_len == pid_len and e.outcome_len == outcome_len
                    and bytes_equal(e.pid, pid, pid_len)
                    and outcome_equal(outcome, e.outcome, outcome_len)):
                return <Subscription>e.sub
            i = (i + 1) & self._table_mask

    # -- input ----------------------------------------------------------------------------------
    def feed(self, payload):
        """Handle one complete text frame (bytes). Bad frame data is reported through the
        callbacks, never raised; exceptions from callbacks propagate."""
        if type(payload) is not bytes:
            payload = bytes(payload)
        self.feed_ptr(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), payload, monotonic_ns())

    cdef int feed_ptr(self, const char* data, Py_ssize_t size, object payload,
                      int64_t now) except -1:
        """Handle one frame at ``data``, received at ``now`` (monotonic ns; the listener reads
        the clock once per read batch). ``payload`` is the same bytes object, or None when the
        caller only has the pointer (a bytes copy is then made only for the orjson path)."""
        cdef int kind
        self.n_frames += 1
        self.n_bytes += size
        if self._native:
            kind = self._scanner.scan(data, size)
            # A per-frame listener gets a snapshot's parsed fields (title, tick size, ...):
            # snapshots are rare, so they take the orjson path then.
            if (kind == SCAN_SNAPSHOT and self.on_book_frame is not None):
                kind = SCAN_FALLBACK
            if (kind == SCAN_DELTA or kind == SCAN_SNAPSHOT) and self._native_frame(kind, now) == 0:
                self.n_native += 1
                return 0
        self.n_fallback += 1
        if payload is None:
            payload = PyBytes_FromStringAndSize(data, size)
        return self._object_frame(payload, now)

    def flush(self):
        """End of a read batch: one on_book_updated call per book updated since the last flush."""
        cdef list dirty = self._dirty
        cdef Subscription sub
        cdef Py_ssize_t i
        if self._sink is not None:
            self._sink_flush(0)  # before the callbacks: readers elsewhere need not wait for them
        if not dirty:
            return
        callback = self.on_book_updated
        try:
            for i in range(len(dirty)):
                sub = <Subscription>dirty[i]
                sub._dirty = False
                if callback is not None:
                    callback(sub)
        finally:
            for sub in dirty:
                sub._dirty = False
            del dirty[:]

    # -- native path ----------------------------------------------------------------------------
    cdef int _native_frame(self, int kind, int64_t now) except -2:
        """Apply a scanned book frame: 0 when handled, -1 to hand the frame to the orjson path
        (nothing was applied or counted then)."""
        cdef ScanResult* r = &self._scanner.r
        cdef Subscription sub
        cdef bint was_valid
        cdef int rc
        if (not r.has_outcome or r.book_state == BOOK_STATE_OTHER or r.feed_state == FEED_STATE_OTHER
                or (r.has_stale_after_ms and not (0 <= r.stale_after_ms < _STALE_LIMIT))):
            return -1
        sub = self._route(r.parsec_id, r.parsec_id_len, r.outcome, r.outcome_len)
        if sub is None:
            self.n_unrouted += 1
            return 0
        was_valid = sub.book._valid
        if r.book_state == BOOK_STATE_NEEDS_REFRESH:
            if self.on_book_frame is not None:
                return -1  # the frame listener gets the parsed frame: rare, take the orjson path
            self._on_states(sub, r.book_state, None, r.feed_state, None,
                            r.has_stale_after_ms, r.stale_after_ms, now)
            sub.n_needs_refresh += 1
            # as on the orjson path: a snapshot's refusal is reported even on an invalid book
            self._mark_invalid(sub, "needs_refresh", was_valid or kind == SCAN_SNAPSHOT)
            return 0
        if kind == SCAN_DELTA:
            rc = sub.book.raw_apply_delta(r.server_seq, r.changes, r.n_changes)
            if rc == RES_BAD_DATA or rc == RES_NO_MEMORY:
                return -1
        else:
            rc = sub.book.raw_apply_snapshot(r.server_seq, r.bids, r.n_bids, r.asks, r.n_asks)
            if rc != RES_APPLIED:
                return -1
        # apply, then states, then the outcome's events (the orjson path's order)
        native_states(self, sub, r, now)
        sub._exchange_ts_ms = r.exchange_ts_ms if r.has_exchange_ts_ms else _NO_TS
        sub._ingest_ts_ms = r.ingest_ts_ms if r.has_ingest_ts_ms else _NO_TS
        if kind == SCAN_SNAPSHOT:
            self._after_snapshot(sub, was_valid)
            return 0
        self._after_delta(sub, rc, r.server_seq, was_valid)
        if rc == RES_APPLIED and self.on_book_frame is not None:
            self.on_book_frame(sub, None)
        return 0

    # -- orjson path ----------------------------------------------------------------------------
    cdef int _object_frame(self, object payload, int64_t now) except -1:
        cdef Subscription sub
        try:
            obj = self._loads(payload)
        except ValueError as exc:
            return self._protocol_error(f"frame is not valid JSON ({exc})", payload, None)
        if type(obj) is not dict:
            return self._protocol_error(f"frame is not a JSON object but {type(obj).__name__}",
                                        payload, None)
        msg_type = (<dict>obj).get("type")
        if not isinstance(msg_type, str):
            return self._protocol_error("missing or non-string field 'type'", payload, None)
        if msg_type == "orderbook_delta":
            return self._book_frame_obj(obj, False, now, payload)
        if msg_type == "orderbook":
            return self._book_frame_obj(obj, True, now, payload)
        if msg_type == "activity":
            self._activity_obj(obj)
        elif msg_type == "resync_required":
            sub = self._route_obj(obj)
            if sub is not None:
                sub.n_resync_required += 1
                # Always report: the server dropped data even if we already knew we were invalid
                # (our earlier resync may have been lost).
                self._mark_invalid(sub, "resync_required", True)
        elif msg_type == "slow_reader":
            self.n_slow_reader += 1
        if self.on_message is not None:
            self.on_message(obj)
        return 0

    cdef Subscription _route_obj(self, dict obj):
        """The subscription a parsed frame names (outcome absent or null = "Yes"), or None."""
        cdef const char* pid
        cdef const char* out
        cdef Py_ssize_t pid_len, out_len
        parsec_id = obj.get("parsec_id")
        outcome = obj.get("outcome")
        if outcome is None:
            outcome = rules.DEFAULT_OUTCOME
        if not isinstance(parsec_id, str) or not isinstance(outcome, str):
            return None
        pid = PyUnicode_AsUTF8AndSize(parsec_id, &pid_len)
        out = PyUnicode_AsUTF8AndSize(outcome, &out_len)
        return self._route(pid, pid_len, out, out_len)

    cdef int _book_frame_obj(self, dict obj, bint snapshot, int64_t now, object payload) except -1:
        cdef Subscription sub
        cdef int book_state = BOOK_STATE_ABSENT, feed_state = FEED_STATE_ABSENT
        cdef bint has_stale = False, was_valid
        cdef int64_t stale_ms = 0
        cdef str book_text = None, feed_text = None
        cdef int rc = 0
        parsec_id = obj.get("parsec_id")
        outcome = obj.get("outcome")
        if not isinstance(parsec_id, str) or not (outcome is None or isinstance(outcome, str)):
            return self._reject_frame(obj, payload, None)
        sub = self._route_obj(obj)
        if sub is None:
            self.n_unrouted += 1
            return 0
        seq = obj.get("server_seq")
        if not isinstance(seq, int) or PyBool_Check(seq):
            return self._reject_frame(obj, payload, sub)
        value = obj.get("book_state")
        if value is not None:
            if not isinstance(value, str):
                return self._reject_frame(obj, payload, sub)
            book_state = _BOOK_STATES.get(value, BOOK_STATE_OTHER)
            book_text = value
        value = obj.get("feed_state")
        if value is not None:
            if not isinstance(value, str):
                return self._reject_frame(obj, payload, sub)
            feed_state = _FEED_STATES.get(value, FEED_STATE_OTHER)
            feed_text = value
        value = obj.get("stale_after_ms")
        if value is not None:
            if not isinstance(value, int) or PyBool_Check(value) or not (0 <= value < _STALE_LIMIT):
                return self._reject_frame(obj, payload, sub)
            has_stale = True
            stale_ms = value
        was_valid = sub.book._valid
        if book_state == BOOK_STATE_NEEDS_REFRESH:
            self._on_states(sub, book_state, book_text, feed_state, feed_text, has_stale, stale_ms, now)
            sub.n_needs_refresh += 1
            self._mark_invalid(sub, "needs_refresh", was_valid or snapshot)
            if self.on_book_frame is not None:
                self.on_book_frame(sub, obj)  # not applied: reported with the parsed frame
            return 0
        # Same order as the native path: apply, then states, then the outcome's events.
        try:
            if snapshot:
                sub.book.apply_snapshot(obj.get("bids"), obj.get("asks"), seq)
            else:
                rc = sub.book.apply_delta(obj.get("changes"), seq)
        except BookDataError as exc:
            self._on_states(sub, book_state, book_text, feed_state, feed_text, has_stale, stale_ms, now)
            sub.last_error = str(exc)
            self._mark_invalid(sub, "rejected", True)
            return 0
        self._on_states(sub, book_state, book_text, feed_state, feed_text, has_stale, stale_ms, now)
        sub._exchange_ts_ms = ts_value(obj.get("exchange_ts_ms"))
        sub._ingest_ts_ms = ts_value(obj.get("ingest_ts_ms"))
        if snapshot:
            self._after_snapshot(sub, was_valid)
        else:
            self._after_delta(sub, rc, seq, was_valid)
        if self.on_book_frame is not None and (snapshot or rc == RES_APPLIED):
            self.on_book_frame(sub, obj if snapshot else None)
        return 0

    cdef int _reject_frame(self, dict obj, object payload, Subscription sub) except -1:
        """A book frame with a field of the wrong type: a ProtocolError, and its book (if it can
        be told) is invalid because its stream lost an update."""
        try:
            decode_message(obj)
            reason = "book frame with a field of an unexpected type"
        except ProtocolError as exc:
            reason = str(exc)
        return self._protocol_error(reason, payload, sub)

    cdef int _activity_obj(self, dict obj) except -1:
        cdef Subscription sub = self._route_obj(obj)
        cdef int64_t s
        cdef int rc
        cdef bint was_valid
        self.n_activity += 1
        seq = obj.get("server_seq")
        if sub is None or not isinstance(seq, int) or PyBool_Check(seq) or not (-2 ** 62 < seq < 2 ** 62):
            return 0    # on_message still gets it; the typed decoder reports bad fields
        s = seq
        sub.n_activity += 1
        if self._shared_seq:
            was_valid = sub.book._valid
            rc = sub.book.raw_apply_delta(s, NULL, 0)
            sink_touch(self, sub)  # the book's seq moved (or a gap showed): publish it
            # The book counts this empty delta like any other; the subscription remembers
            # which of those counts were activity, so the handler's delta totals exclude them.
            if rc == RES_APPLIED:
                sub._activity_ring[sub._ring_pos] = s
                sub._ring_pos = (sub._ring_pos + 1) & 3
                sub.n_activity_applied += 1
            elif rc == RES_GAP:
                if was_valid:
                    self._mark_invalid(sub, "gap", True)  # a gap is a gap, whoever revealed it
                else:
                    sub.n_activity_dropped += 1
            elif rc == RES_DUPLICATE:
                sub.n_activity_duplicates += 1
            elif rc == RES_NO_SNAPSHOT:
                sub.n_activity_no_snapshot += 1
        else:
            if sub._last_activity_seq != _NO_SEQ and s > sub._last_activity_seq + 1:
                sub.n_activity_gaps += 1
            if s > sub._last_activity_seq:
                sub._last_activity_seq = s
        return 0

    # -- shared post-processing -----------------------------------------------------------------
    cdef int _on_states(self, Subscription sub, int book_state, str book_text, int feed_state,
                        str feed_text, bint has_stale, int64_t stale_after_ms, int64_t now) except -1:
        sub.last_frame_ns = now
        if has_stale:
            sub._stale_after_ms = stale_after_ms
        if sub._locally_stale:
            sub._locally_stale = False
            self._emit_state(sub, "fresh", "book frame received")
        if book_state != BOOK_STATE_ABSENT and (
                book_state != sub._book_state
                or (book_state == BOOK_STATE_OTHER and book_text != sub._book_state_text)):
            sub._book_state = book_state
            sub._book_state_text = book_text
            self._emit_state(sub, "state", f"book_state={sub.book_state}")
        if feed_state != FEED_STATE_ABSENT and (
                feed_state != sub._feed_state
                or (feed_state == FEED_STATE_OTHER and feed_text != sub._feed_state_text)):
            sub._feed_state = feed_state
            sub._feed_state_text = feed_text
            self._emit_state(sub, "state", f"feed_state={sub.feed_state}")
        return 0

    cdef int _after_delta(self, Subscription sub, int rc, int64_t seq, bint was_valid) except -1:
        if rc == RES_APPLIED:
            if not sub._dirty:
                sub._dirty = True
                self._dirty.append(sub)
            return 0
        return self._not_applied(sub, rc, seq, was_valid)

    cdef int _not_applied(self, Subscription sub, int rc, int64_t seq, bint was_valid) except -1:
        """A delta that was not applied (duplicate, gap, no snapshot): out of _after_delta, so
        the applied path stays as small as it was."""
        cdef int i
        sink_touch(self, sub)  # the sink still gets the frame's timestamps
        if rc == RES_DUPLICATE:
            if self._shared_seq:
                for i in range(4):
                    if sub._activity_ring[i] == seq:
                        sub.n_seq_conflicts += 1
                        self._mark_invalid(sub, "seq_conflict", True)
                        break
        elif rc == RES_GAP and was_valid:
            self._mark_invalid(sub, "gap", True)
        return 0

    cdef int _after_snapshot(self, Subscription sub, bint was_valid) except -1:
        cdef int i
        for i in range(4):
            sub._activity_ring[i] = _NO_SEQ
        if not sub._dirty:
            sub._dirty = True
            self._dirty.append(sub)
        if not was_valid:
            sub._invalid_reason = None
            self._emit_state(sub, "recovered", "snapshot")
        return 0

    cdef int _mark_invalid(self, Subscription sub, str reason, bint emit) except -1:
        sub.book.raw_invalidate()
        sub._invalid_reason = reason
        sink_touch(self, sub)
        if emit:
            self._emit_state(sub, "invalid", reason)
        return 0

    cdef int _emit_state(self, Subscription sub, str what, str reason) except -1:
        sink_touch(self, sub)
        if self.on_book_state is not None:
            self.on_book_state(sub, what, reason)
        return 0

    cdef int _protocol_error(self, str reason, object payload, Subscription sub) except -1:
        self.n_protocol_errors += 1
        err = ProtocolError(reason) if "; frame: " in reason else ProtocolError.for_frame(reason, payload)
        if sub is not None:
            sub.last_error = str(err)
            self._mark_invalid(sub, "rejected", True)
        if self.on_protocol_error is not None:
            self.on_protocol_error(err)
        return 0

    # -- control --------------------------------------------------------------------------------
    def invalidate(self, Subscription sub not None, str reason not None):
        """Mark one book invalid (e.g. on disconnect) and report it through on_book_state."""
        self._mark_invalid(sub, reason, True)
        if self._sink is not None:
            self._sink_flush(0)

    def invalidate_all(self, str reason not None):
        """Mark every book invalid with ``reason`` (e.g. on disconnect), each reported through
        on_book_state."""
        for sub in list(self._subs.values()):
            self._mark_invalid(<Subscription>sub, reason, True)
        if self._sink is not None:
            self._sink_flush(0)

    def check_stale(self, int64_t now_ns):
        """Update local staleness: a subscription with stale_after_ms whose last book frame is
        older than that becomes stale (reported once; a new frame makes it fresh again)."""
        cdef Subscription sub
        for sub in list(self._subs.values()):
            if (sub._stale_after_ms >= 0 and sub.last_frame_ns > 0 and not sub._locally_stale
                    and sub._stale_after_ms <= _STALE_NS_MAX_MS
                    and now_ns - sub.last_frame_ns > sub._stale_after_ms * 1_000_000):
                sub._locally_stale = True
                self._emit_state(sub, "stale", f"no book frame for {sub._stale_after_ms} ms")
        if self._sink is not None:
            self._sink_flush(now_ns)  # the staleness changes, and the sink's heartbeat

    # -- publishing (a BookSink, e.g. parsec_fast.shared.publish) -------------------------------
    cdef int _sink_flush(self, int64_t now_ns) except -1:
        """Hand the sink every book applied to (the batch's dirty list) or whose state changed
        since the last call, once each, then commit: ``now_ns`` or the newest frame read time
        among them is the sink's heartbeat."""
        cdef BookSink sink = self._sink
        cdef list dirty = self._dirty
        cdef list pending = self._sink_pending
        cdef Subscription sub
        cdef Py_ssize_t i
        cdef int64_t newest = now_ns
        if not dirty and not pending and now_ns == 0:
            return 0
        for i in range(len(dirty)):
            sub = <Subscription>dirty[i]
            sub._sink_pending = False
            sink.sink_publish(sub)
            if sub.last_frame_ns > newest:
                newest = sub.last_frame_ns
        if pending:
            for i in range(len(pending)):
                sub = <Subscription>pending[i]
                if sub._sink_pending:
                    sub._sink_pending = False
                    sink.sink_publish(sub)
                    if sub.last_frame_ns > newest:
                        newest = sub.last_frame_ns
            del pending[:]
        sink.sink_commit(newest)
        return 0

    def set_sink(self, BookSink sink not None):
        """Publish every book to ``sink`` from now on (``parsec_fast.shared.publish`` does
        this): the current books at once, then each change at the next ``flush()`` /
        ``check_stale()`` / ``invalidate*()``. One sink at a time (ValueError otherwise)."""
        if self._sink is not None:
            if self._sink is sink:
                return
            raise ValueError("this FeedHandler already publishes to a sink; close_sink() first")
        self._sink = sink
        for sub in self._subs.values():
            sink.sink_added(<Subscription>sub)  # publishes the book as it is
        self._sink_flush(monotonic_ns())

    def close_sink(self, str reason not None = "closed"):
        """Stop publishing: the sink is told (``reason``) and let go. No-op without one."""
        cdef BookSink sink = self._sink
        if sink is None:
            return
        self._sink = None
        for sub in self._sink_pending:
            (<Subscription>sub)._sink_pending = False
        del self._sink_pending[:]
        try:
            sink.sink_closed(reason)
        finally:
            for sub in self._subs.values():
                (<Subscription>sub).sink_slot = -1

    @property
    def sink(self):
        """The BookSink this handler publishes to, or None."""
        return self._sink

    @property
    def stats(self):
        """Counters since construction (all frames, all subscriptions, removed ones included).

        The book counters (snapshots ... rejected) are owned by the books; these are their
        sums, without the empty deltas that activity frames apply under the shared counter."""
        cdef int64_t totals[BOOK_COUNTERS]
        cdef Subscription sub
        cdef int i
        for i in range(BOOK_COUNTERS):
            totals[i] = self._retired[i]
        for sub in self._subs.values():
            _add_book_counts(sub, totals)
        return {
            "frames": self.n_frames, "bytes": self.n_bytes, "native_frames": self.n_native,
            "orjson_frames": self.n_fallback, "snapshots": totals[0],
            "deltas_applied": totals[1], "duplicates": totals[2], "gaps": totals[3],
            "dropped": totals[4], "no_snapshot": totals[5], "rejected": totals[6],
            "unrouted": self.n_unrouted,
            "protocol_errors": self.n_protocol_errors, "activity": self.n_activity,
            "slow_reader": self.n_slow_reader,
        }
