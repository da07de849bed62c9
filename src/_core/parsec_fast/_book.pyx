"""The compiled L2 order book: ``parsec_fast.Book``.

Same API and rules as ``parsec_fast.reference.Book``; the rules are written once, in
``parsec_fast.rules``.

Layout: per side one contiguous, sorted array of ``Level {int64 key; double size}``. The key is
the price in integer nano-units, negated for bids, so both sides sort ascending with the best
level at index 0: one binary search and one ``memmove`` serve both sides. Sequence checking,
validation, atomicity (an undo log) and counters all live here, so the feed handler never
re-checks anything in Python.

Two front doors share one C core:
* the object path (``apply_delta`` / ``apply_snapshot``) reads the lists and dicts that orjson
  decoded, without creating Python objects, into a reused buffer of validated operations;
* the raw path (``raw_apply_delta`` / ``raw_apply_snapshot``, C only) takes arrays a native
  scanner decoded. It never raises: on bad data it returns RES_BAD_DATA with the book untouched
  and nothing counted, and the caller re-runs the frame through the object path for the error.
Only the error path is slow: it re-runs the rule book's validators (``parsec_fast.rules``), so the
messages of both books are identical by construction.
"""
from cpython.buffer cimport PyBuffer_Release
from cpython.dict cimport PyDict_Check, PyDict_Next
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.list cimport PyList_Check, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsDouble, PyLong_AsLongLongAndOverflow, PyLong_Check
from cpython.object cimport PyObject
from cpython.unicode cimport (PyUnicode_1BYTE_KIND, PyUnicode_Check, PyUnicode_DATA,
                              PyUnicode_GET_LENGTH, PyUnicode_KIND)
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.math cimport NAN, isfinite, rint
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy, memmove

import operator

from parsec_fast import rules
from parsec_fast.rules import DeltaResult, STAT_NAMES
from parsec_fast.errors import BookDataError

cdef extern from "Python.h":
    bint PyBool_Check(object o)

cdef double PRICE_SCALE = 1e9
cdef double MAX_PRICE = 1e9

# DeltaResult members indexed by the C result code: returning them allocates nothing.
cdef tuple _RESULTS = (DeltaResult.APPLIED, DeltaResult.DUPLICATE, DeltaResult.GAP,
                       DeltaResult.NO_SNAPSHOT)


# ----------------------------------------------------------------------------------------------
# C helpers
# ----------------------------------------------------------------------------------------------

cdef inline bint price_to_key(double price, int64_t* key) noexcept nogil:
    """Validate a price and compute its nano-unit key; False when the price is not acceptable."""
    cdef int64_t k
    if not isfinite(price) or price <= 0.0 or price > MAX_PRICE:
        return False
    # rint rounds ties to even, as Python's round() does.
    k = <int64_t>rint(price * PRICE_SCALE)
    if k == 0:
        return False
    key[0] = k
    return True


cdef inline bint size_ok(double size) noexcept nogil:
    return isfinite(size) and size >= 0.0


cdef inline Py_ssize_t lower_bound(const Level* levels, Py_ssize_t n, int64_t key) noexcept nogil:
    """Index of the first level whose key is >= key (n when none)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    # Most updates hit the top of the book: settle that without a search.
    if n == 0 or levels[0].key >= key:
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if levels[mid].key < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int grow(void** buf, Py_ssize_t* cap, Py_ssize_t need, size_t item) noexcept nogil:
    """Ensure capacity for ``need`` items (doubling); -1 when out of memory (buffer untouched)."""
    cdef Py_ssize_t new_cap
    cdef void* p
    if need <= cap[0]:
        return 0
    new_cap = cap[0] * 2
    if new_cap < need:
        new_cap = need
    if new_cap < 16:
        new_cap = 16
    p = realloc(buf[0], <size_t>new_cap * item)
    if p == NULL:
        return -1
    buf[0] = p
    cap[0] = new_cap
    return 0


cdef inline int set_level_c(SideLevels* side, int64_t key, double size, double* old,
                            Py_ssize_t max_levels) noexcept nogil:
    """Set (size > 0) or remove (size == 0) one level. Returns 0, 1 if a new level would exceed
    max_levels, -1 when out of memory; ``old`` receives the previous size (0 when absent)."""
    cdef Py_ssize_t i = lower_bound(side.levels, side.n, key)
    cdef bint found = i < side.n and side.levels[i].key == key
    if size == 0.0:
        if found:
            old[0] = side.levels[i].size
            memmove(&side.levels[i], &side.levels[i + 1], <size_t>(side.n - i - 1) * sizeof(Level))
            side.n -= 1
        else:
            old[0] = 0.0
        return 0
    if found:
        old[0] = side.levels[i].size
        side.levels[i].size = size
        return 0
    if side.n >= max_levels:
        return 1
    if side.n == side.cap and grow(<void**>&side.levels, &side.cap, side.n + 1, sizeof(Level)) < 0:
        return -1
    memmove(&side.levels[i + 1], &side.levels[i], <size_t>(side.n - i) * sizeof(Level))
    side.levels[i].key = key
    side.levels[i].size = size
    side.n += 1
    old[0] = 0.0
    return 0


cdef inline int number(object value, double* out) except -1:
    """JSON number (int or float, not bool) to double: 0 ok, 1 not a number, 2 out of range."""
    if PyFloat_Check(value):
        out[0] = PyFloat_AS_DOUBLE(value)
        return 0
    if PyLong_Check(value) and not PyBool_Check(value):
        try:
            out[0] = PyLong_AsDouble(value)
        except OverflowError:
            return 2
        return 0
    return 1


cdef enum:
    F_SIDE = 1
    F_PRICE = 2
    F_SIZE = 4

cdef str _K_SIDE = "side"
cdef str _K_PRICE = "price"
cdef str _K_SIZE = "size"


cdef inline int change_field(PyObject* key) noexcept:
    """Which of side/price/size a change-dict key is (0: another key). Same matching as a
    dict lookup by those names: identity first (interned keys), then the text."""
    cdef Py_ssize_t n
    cdef const char* data
    if key == <PyObject*>_K_SIDE:
        return F_SIDE
    if key == <PyObject*>_K_PRICE:
        return F_PRICE
    if key == <PyObject*>_K_SIZE:
        return F_SIZE
    if not PyUnicode_Check(<object>key) or PyUnicode_KIND(<object>key) != PyUnicode_1BYTE_KIND:
        return 0
    n = PyUnicode_GET_LENGTH(<object>key)
    data = <const char*>PyUnicode_DATA(<object>key)
    if n == 4:
        if memcmp(data, b"side", 4) == 0:
            return F_SIDE
        if memcmp(data, b"size", 4) == 0:
            return F_SIZE
    elif n == 5 and memcmp(data, b"price", 5) == 0:
        return F_PRICE
    return 0


cdef inline Py_ssize_t count_arg(object n, Py_ssize_t available) except -2:
    if n is None:
        return available
    count = operator.index(n)  # a Python int of any size, as the rule book allows
    if count < 0:
        rules.level_count(n)  # raises the rule book's error
    return <Py_ssize_t>count if count < available else available


cdef int float64_buffer_error(object out) except -1:
    """The error path of float64_out (_book.pxd): the rule book's check raises for ``out``."""
    rules.float64_buffer(out)
    return 0


# Error path: mark the book rejected, then let the rule book's validators produce the exact
# message; if they disagree with the C checks (a bug), still raise rather than accept the data.
cdef object _raise_changes(Book book, object changes):
    book._reject()
    rules.changes(changes)
    raise BookDataError("changes: rejected (validator disagreement; please report)")


cdef object _raise_snapshot(Book book, object bids, object asks):
    book._reject()
    rules.snapshot_side(bids, "bids", True, book._max_levels)
    rules.snapshot_side(asks, "asks", False, book._max_levels)
    raise BookDataError("bids/asks: rejected (validator disagreement; please report)")


cdef object _raise_level(object side, object price, object size):
    rules.side_index(side, "side")
    rules.price_key(price, "price")
    rules.size(size, "size")
    raise BookDataError("set_level: rejected (validator disagreement; please report)")


cdef inline bint seq_value(object seq, int64_t* out) noexcept:
    """An int (not bool) within int64 -> True and out; anything else -> False (no exception)."""
    cdef int overflow = 0
    if PyLong_Check(seq) and not PyBool_Check(seq):
        out[0] = PyLong_AsLongLongAndOverflow(seq, &overflow)
        return overflow == 0
    return False


cdef object _raise_seq(object seq):
    rules.seq(seq)
    raise BookDataError(f"seq: rejected {seq!r}")


cdef inline int side_arg(object side) except -1:
    if isinstance(side, str):
        if side == "bid":
            return SIDE_BID
        if side == "ask":
            return SIDE_ASK
    rules.side_index(side, "side")
    return -1


cdef inline int64_t price_arg(object price) except? -1:
    cdef double value
    cdef int64_t key
    if number(price, &value) == 0 and price_to_key(value, &key):
        return key
    rules.price_key(price, "price")
    raise BookDataError(f"price: rejected {price!r}")


# ----------------------------------------------------------------------------------------------
# The book
# ----------------------------------------------------------------------------------------------

cdef class Book:
    """One L2 order book for a (parsec_id, outcome), in contiguous C arrays.

    ``Book(parsec_id, outcome, *, max_levels=10_000)``. Same API and behaviour as
    ``parsec_fast.reference.Book``; the rules are in ``parsec_fast.rules``.
    """

    def __init__(self, parsec_id, outcome, *, max_levels=10_000):
        self.parsec_id, self.outcome, self._max_levels = rules.book_identity(
            parsec_id, outcome, max_levels)
        self._seq = 0
        self._has_baseline = False
        self._valid = False

    def __dealloc__(self):
        free(self._sides[0].levels)
        free(self._sides[1].levels)
        free(self._ops)
        free(self._undo)
        free(self._raw_levels)

    # -- C core ---------------------------------------------------------------------------------
    cdef int _gate(self, int64_t seq) noexcept nogil:
        """Sequence decision for a delta: a RES_* code, or -1 when it should be applied."""
        if not self._has_baseline:
            self.n_no_snapshot += 1
            return RES_NO_SNAPSHOT
        if not self._valid:
            self.n_dropped += 1
            return RES_GAP
        if seq <= self._seq:
            self.n_duplicates += 1
            return RES_DUPLICATE
        if seq != self._seq + 1:    # safe: seq > _seq, so _seq < INT64_MAX
            self._valid = False
            self.n_gaps += 1
            return RES_GAP
        return -1

    cdef int _apply_ops(self, Py_ssize_t n, Py_ssize_t* failed_at) noexcept nogil:
        """Apply the n validated operations in self._ops atomically: 0 on success; 1 (overflow
        at failed_at[0]) or -1 (no memory) with every applied operation rolled back."""
        cdef Py_ssize_t i, j
        cdef int rc
        cdef double old
        if grow(<void**>&self._undo, &self._undo_cap, n, sizeof(LevelOp)) < 0:
            return -1
        for i in range(n):
            rc = set_level_c(&self._sides[self._ops[i].side], self._ops[i].key, self._ops[i].size,
                             &old, self._max_levels)
            if rc != 0:
                # Undo in reverse: each step restores one level, so it can neither overflow nor
                # need memory (capacity never shrinks).
                j = i - 1
                while j >= 0:
                    set_level_c(&self._sides[self._undo[j].side], self._undo[j].key,
                                self._undo[j].size, &old, INT64_MAX)
                    j -= 1
                failed_at[0] = i
                return rc
            self._undo[i].side = self._ops[i].side
            self._undo[i].key = self._ops[i].key
            self._undo[i].size = old
        return 0

    cdef int _install_snapshot(self, int64_t seq, const RawLevel* bids, Py_ssize_t n_bids,
                               const RawLevel* asks, Py_ssize_t n_asks) noexcept nogil:
        """Validate and install a whole snapshot: RES_APPLIED, RES_BAD_DATA or RES_NO_MEMORY;
        the book is untouched unless it returns RES_APPLIED."""
        cdef const RawLevel* src
        cdef Py_ssize_t counts[2]
        cdef Py_ssize_t n_src, i, total = n_bids + n_asks, k = 0, s
        cdef int64_t key
        cdef SideLevels* side
        if n_bids > self._max_levels or n_asks > self._max_levels:
            return RES_BAD_DATA
        if grow(<void**>&self._ops, &self._ops_cap, total, sizeof(LevelOp)) < 0:
            return RES_NO_MEMORY
        # Pass 1: validate into self._ops (ordering keys strictly ascending = best first).
        for s in range(2):
            src = bids if s == SIDE_BID else asks
            n_src = n_bids if s == SIDE_BID else n_asks
            counts[s] = 0
            for i in range(n_src):
                if not price_to_key(src[i].price, &key) or not size_ok(src[i].size):
                    return RES_BAD_DATA
                if s == SIDE_BID:
                    key = -key
                if i > 0 and key <= self._ops[k - 1].key:
                    return RES_BAD_DATA
                self._ops[k].side = s
                self._ops[k].key = key
                self._ops[k].size = src[i].size
                k += 1
                if src[i].size != 0.0:
                    counts[s] += 1
        for s in range(2):
            side = &self._sides[s]
            if grow(<void**>&side.levels, &side.cap, counts[s], sizeof(Level)) < 0:
                return RES_NO_MEMORY
        # Pass 2: install (zero-size levels are not stored).
        self._sides[0].n = 0
        self._sides[1].n = 0
        for i in range(total):
            if self._ops[i].size != 0.0:
                side = &self._sides[self._ops[i].side]
                side.levels[side.n].key = self._ops[i].key
                side.levels[side.n].size = self._ops[i].size
                side.n += 1
        self._seq = seq
        self._has_baseline = True
        self._valid = True
        self.n_snapshots += 1
        return RES_APPLIED

    cdef int raw_apply_delta(self, int64_t seq, const RawChange* changes, Py_ssize_t n) noexcept nogil:
        cdef int rc = self._gate(seq)
        cdef Py_ssize_t i, failed_at
        cdef int64_t key
        if rc >= 0:
            return rc
        if grow(<void**>&self._ops, &self._ops_cap, n, sizeof(LevelOp)) < 0:
            return RES_NO_MEMORY
        for i in range(n):
            if ((changes[i].side != SIDE_BID and changes[i].side != SIDE_ASK)
                    or not price_to_key(changes[i].price, &key) or not size_ok(changes[i].size)):
                return RES_BAD_DATA
            self._ops[i].side = changes[i].side
            self._ops[i].key = -key if changes[i].side == SIDE_BID else key
            self._ops[i].size = changes[i].size
        rc = self._apply_ops(n, &failed_at)
        if rc != 0:
            return RES_BAD_DATA if rc == 1 else RES_NO_MEMORY
        self._seq = seq
        self.n_applied += 1
        return RES_APPLIED

    cdef int raw_apply_snapshot(self, int64_t seq, const RawLevel* bids, Py_ssize_t n_bids,
                                const RawLevel* asks, Py_ssize_t n_asks) noexcept nogil:
        return self._install_snapshot(seq, bids, n_bids, asks, n_asks)

    cdef void raw_invalidate(self) noexcept nogil:
        self._valid = False

    # -- object front door ----------------------------------------------------------------------
    cdef Py_ssize_t _ops_from_changes(self, object changes) except -1:
        """Read orjson-decoded changes into self._ops without creating Python objects."""
        cdef Py_ssize_t n, i
        cdef bint is_list = PyList_Check(changes)
        cdef PyObject* item
        cdef PyObject* k
        cdef PyObject* v
        cdef PyObject* side_obj = NULL
        cdef PyObject* price_obj = NULL
        cdef PyObject* size_obj = NULL
        cdef Py_ssize_t pos
        cdef int f, seen
        cdef object change, side
        cdef double price = 0.0, size = 0.0
        cdef int64_t key = 0
        cdef int side_index = SIDE_BID
        if not is_list and not PyTuple_Check(changes):
            _raise_changes(self, changes)
        n = PyList_GET_SIZE(changes) if is_list else PyTuple_GET_SIZE(changes)
        if grow(<void**>&self._ops, &self._ops_cap, n, sizeof(LevelOp)) < 0:
            raise MemoryError()
        for i in range(n):
            item = PyList_GET_ITEM(changes, i) if is_list else PyTuple_GET_ITEM(changes, i)
            change = <object>item
            if not PyDict_Check(change):
                _raise_changes(self, changes)
            # One pass over the (small) dict beats three hashed lookups.
            pos = 0
            seen = 0
            while PyDict_Next(change, &pos, &k, &v):
                f = change_field(k)
                if f == F_SIDE:
                    side_obj = v
                elif f == F_PRICE:
                    price_obj = v
                elif f == F_SIZE:
                    size_obj = v
                seen |= f
            if seen != F_SIDE | F_PRICE | F_SIZE:
                _raise_changes(self, changes)
            side = <object>side_obj
            if not isinstance(side, str):
                _raise_changes(self, changes)
            if side == "bid":
                side_index = SIDE_BID
            elif side == "ask":
                side_index = SIDE_ASK
            else:
                _raise_changes(self, changes)
            if number(<object>price_obj, &price) != 0 or not price_to_key(price, &key):
                _raise_changes(self, changes)
            if number(<object>size_obj, &size) != 0 or not size_ok(size):
                _raise_changes(self, changes)
            self._ops[i].side = side_index
            self._ops[i].key = -key if side_index == SIDE_BID else key
            self._ops[i].size = size
        return n

    cdef Py_ssize_t _levels_from(self, object levels, Py_ssize_t offset, object bids,
                                 object asks) except -1:
        """Read one orjson-decoded snapshot side into self._raw_levels[offset:]."""
        cdef Py_ssize_t n, i
        cdef bint is_list = PyList_Check(levels)
        cdef object level
        cdef RawLevel* out
        if not is_list and not PyTuple_Check(levels):
            _raise_snapshot(self, bids, asks)
        n = PyList_GET_SIZE(levels) if is_list else PyTuple_GET_SIZE(levels)
        if n > self._max_levels:
            _raise_snapshot(self, bids, asks)
        if grow(<void**>&self._raw_levels, &self._raw_levels_cap, offset + n, sizeof(RawLevel)) < 0:
            raise MemoryError()
        out = self._raw_levels + offset
        for i in range(n):
            level = <object>(PyList_GET_ITEM(levels, i) if is_list else PyTuple_GET_ITEM(levels, i))
            if PyList_Check(level) and PyList_GET_SIZE(level) == 2:
                if (number(<object>PyList_GET_ITEM(level, 0), &out[i].price) != 0
                        or number(<object>PyList_GET_ITEM(level, 1), &out[i].size) != 0):
                    _raise_snapshot(self, bids, asks)
            elif PyTuple_Check(level) and PyTuple_GET_SIZE(level) == 2:
                if (number(<object>PyTuple_GET_ITEM(level, 0), &out[i].price) != 0
                        or number(<object>PyTuple_GET_ITEM(level, 1), &out[i].size) != 0):
                    _raise_snapshot(self, bids, asks)
            else:
                _raise_snapshot(self, bids, asks)
        return n

    cdef void _reject(self):
        self._valid = False
        self.n_rejected += 1

    def apply_snapshot(self, bids, asks, seq):
        """Replace the whole book with ``bids`` (descending) and ``asks`` (ascending), each a
        sequence of ``[price, size]``; ``seq`` becomes the baseline. Raises BookDataError (book
        unchanged but invalid)."""
        cdef int64_t s = 0
        cdef Py_ssize_t n_bids, n_asks
        cdef int rc
        if not seq_value(seq, &s):
            self._reject()
            _raise_seq(seq)
        n_bids = self._levels_from(bids, 0, bids, asks)
        n_asks = self._levels_from(asks, n_bids, bids, asks)
        rc = self._install_snapshot(s, self._raw_levels, n_bids, self._raw_levels + n_bids, n_asks)
        if rc == RES_NO_MEMORY:
            raise MemoryError()
        if rc != RES_APPLIED:
            _raise_snapshot(self, bids, asks)

    def apply_delta(self, changes, seq):
        """Apply one ``orderbook_delta``'s ``changes`` (in order) if ``seq`` is the next one.

        Returns a DeltaResult; raises BookDataError on bad data (book unchanged but invalid)."""
        cdef int64_t s = 0
        cdef int rc
        cdef Py_ssize_t n, failed_at = 0
        if not seq_value(seq, &s):
            self._reject()
            _raise_seq(seq)
        rc = self._gate(s)
        if rc >= 0:
            return _RESULTS[rc]
        n = self._ops_from_changes(changes)
        rc = self._apply_ops(n, &failed_at)
        if rc != 0:
            if rc == -1:
                raise MemoryError()
            self._reject()
            raise BookDataError(
                f"changes[{failed_at}]: a new {'bid' if self._ops[failed_at].side == SIDE_BID else 'ask'} "
                f"level would exceed max_levels={self._max_levels}")
        self._seq = s
        self.n_applied += 1
        return _RESULTS[RES_APPLIED]

    def set_level(self, side, price, size):
        """Set one level directly (``size`` 0 removes it). No sequence check; a bad call raises
        BookDataError and leaves the book, its validity and its counters unchanged."""
        cdef int side_index = side_arg(side)
        cdef int64_t key = price_arg(price)
        cdef double value
        cdef Py_ssize_t failed_at
        cdef int rc
        if number(size, &value) != 0 or not size_ok(value):
            _raise_level(side, price, size)
        if grow(<void**>&self._ops, &self._ops_cap, 1, sizeof(LevelOp)) < 0:
            raise MemoryError()
        self._ops[0].side = side_index
        self._ops[0].key = -key if side_index == SIDE_BID else key
        self._ops[0].size = value
        rc = self._apply_ops(1, &failed_at)
        if rc == -1:
            raise MemoryError()
        if rc == 1:
            raise BookDataError(
                f"price: a new {'bid' if side_index == SIDE_BID else 'ask'} level would exceed "
                f"max_levels={self._max_levels}")

    cdef Py_ssize_t side_count(self, int s) noexcept nogil:
        """Number of levels on side ``s`` (SIDE_BID or SIDE_ASK)."""
        return self._sides[s].n

    cdef Py_ssize_t copy_side(self, int s, Level* out, Py_ssize_t cap) noexcept nogil:
        """Copy the best min(cap, side_count(s)) levels of side ``s`` into ``out`` (one memcpy);
        returns how many. The book is not changed."""
        cdef Py_ssize_t n = self._sides[s].n
        if n > cap:
            n = cap
        if n > 0:
            memcpy(out, self._sides[s].levels, <size_t>n * sizeof(Level))
        return n

    def invalidate(self):
        """Mark the book invalid (e.g. on ``resync_required``): deltas return GAP until the next
        snapshot. Levels are kept for inspection."""
        self._valid = False

    # -- reads ----------------------------------------------------------------------------------
    @property
    def max_levels(self):
        return self._max_levels

    @property
    def seq(self):
        """Last applied server_seq, or None before the first snapshot."""
        return self._seq if self._has_baseline else None

    @property
    def is_valid(self):
        """True once a snapshot was applied and no gap, rejection or invalidate() since."""
        return self._valid

    @property
    def best_bid(self):
        if self._sides[0].n == 0:
            return None
        return (key_price(self._sides[0].levels[0].key), self._sides[0].levels[0].size)

    @property
    def best_ask(self):
        if self._sides[1].n == 0:
            return None
        return (key_price(self._sides[1].levels[0].key), self._sides[1].levels[0].size)

    @property
    def best_bid_price(self):
        """Best bid price, NaN when there are no bids (no tuple is created)."""
        return key_price(self._sides[0].levels[0].key) if self._sides[0].n else NAN

    @property
    def best_bid_size(self):
        return self._sides[0].levels[0].size if self._sides[0].n else NAN

    @property
    def best_ask_price(self):
        return key_price(self._sides[1].levels[0].key) if self._sides[1].n else NAN

    @property
    def best_ask_size(self):
        return self._sides[1].levels[0].size if self._sides[1].n else NAN

    @property
    def mid(self):
        """(best bid + best ask) / 2, or None when a side is empty."""
        if self._sides[0].n == 0 or self._sides[1].n == 0:
            return None
        return (key_price(self._sides[0].levels[0].key) + key_price(self._sides[1].levels[0].key)) / 2.0

    @property
    def spread(self):
        """best ask - best bid, or None when a side is empty (negative when crossed)."""
        if self._sides[0].n == 0 or self._sides[1].n == 0:
            return None
        return key_price(self._sides[1].levels[0].key) - key_price(self._sides[0].levels[0].key)

    @property
    def crossed(self):
        """True when both sides are non-empty and best bid >= best ask."""
        return (self._sides[0].n > 0 and self._sides[1].n > 0
                and -self._sides[0].levels[0].key >= self._sides[1].levels[0].key)

    cdef list _levels(self, int s, object n):
        cdef SideLevels* side = &self._sides[s]
        cdef Py_ssize_t count = count_arg(n, side.n), i
        cdef list out = [None] * count
        cdef object level
        for i in range(count):
            level = (key_price(side.levels[i].key), side.levels[i].size)
            out[i] = level
        return out

    def bids(self, n=None):
        """The best ``n`` bids (all when None) as (price, size), best first."""
        return self._levels(0, n)

    def asks(self, n=None):
        """The best ``n`` asks (all when None) as (price, size), best first."""
        return self._levels(1, n)

    cdef double _size_at(self, int s, object price) except? -1.0:
        cdef int64_t key = price_arg(price)
        cdef SideLevels* side = &self._sides[s]
        cdef Py_ssize_t i
        if s == SIDE_BID:
            key = -key
        i = lower_bound(side.levels, side.n, key)
        if i < side.n and side.levels[i].key == key:
            return side.levels[i].size
        return 0.0

    def bid_size(self, price):
        """Size at ``price`` on the bid side, 0.0 when absent (BookDataError for a bad price)."""
        return self._size_at(SIDE_BID, price)

    def ask_size(self, price):
        return self._size_at(SIDE_ASK, price)

    def level_count(self, side):
        """Number of levels on ``side`` ("bid" or "ask")."""
        return self._sides[side_arg(side)].n

    cdef object _array(self, int s, object n, str method):
        cdef SideLevels* side = &self._sides[s]
        cdef Py_ssize_t count = count_arg(n, side.n), i
        np = rules.import_numpy(method)
        arr = np.empty((count, 2), dtype=np.float64)
        cdef double[:, ::1] view = arr
        for i in range(count):
            view[i, 0] = key_price(side.levels[i].key)
            view[i, 1] = side.levels[i].size
        return arr

    def bids_array(self, n=None):
        """The best ``n`` bids as a float64 NumPy array of shape (k, 2), k = min(n, levels)."""
        return self._array(0, n, "bids_array")

    def asks_array(self, n=None):
        return self._array(1, n, "asks_array")

    cdef Py_ssize_t _into(self, int s, object out) except -1:
        cdef Py_buffer buf
        cdef SideLevels* side = &self._sides[s]
        cdef Py_ssize_t count, i
        cdef double* dst = float64_out(out, &buf)
        try:
            count = (buf.len // 8) // 2
            if count > side.n:
                count = side.n
            for i in range(count):
                dst[2 * i] = key_price(side.levels[i].key)
                dst[2 * i + 1] = side.levels[i].size
            return count
        finally:
            PyBuffer_Release(&buf)

    def bids_into(self, out):
        """Write the best bids as price, size pairs into ``out``, a writable C-contiguous float64
        buffer (array.array('d'), NumPy array, ...); returns the number of levels written
        (min(levels, len(out) // 2))."""
        return self._into(0, out)

    def asks_into(self, out):
        return self._into(1, out)

    @property
    def stats(self):
        """Counters since construction; keys are ``parsec_fast.rules.STAT_NAMES``."""
        return dict(zip(STAT_NAMES, (self.n_snapshots, self.n_applied, self.n_duplicates,
                                     self.n_gaps, self.n_dropped, self.n_no_snapshot,
                                     self.n_rejected)))

    def to_dict(self):
        """A JSON-ready copy: parsec_id, outcome, seq, is_valid, bids and asks as [price, size]."""
        return {
            "parsec_id": self.parsec_id,
            "outcome": self.outcome,
            "seq": self.seq,
            "is_valid": self._valid,
            "bids": [[p, s] for p, s in self._levels(0, None)],
            "asks": [[p, s] for p, s in self._levels(1, None)],
        }

    def __repr__(self):
        return (f"{type(self).__name__}({self.parsec_id!r}, {self.outcome!r}, seq={self.seq}, "
                f"valid={self._valid}, bids={self._sides[0].n}, asks={self._sides[1].n})")
