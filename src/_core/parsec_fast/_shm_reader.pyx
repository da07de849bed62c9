"""The reader side of the shared-memory books: :class:`SharedRegion`, a read-only view of a
publisher's region (the publisher's liveness, the directory's lookups, the blocking ``wait``),
and :class:`SharedBook`, one published book with ``Book``'s read API and ``Subscription``'s
trust signals, each read one consistent copy of its slot.

A reader maps the region read-only except the reader page (the "a reader sleeps" flag), never
waits for the writer (nor the writer for it) and never unlinks anything: crashing or being
killed affects nobody else. The layout, the slot protocol, the liveness rules and the two sleeps
of ``wait`` are shared with the writer (``parsec_fast._shm_writer``): ``parsec_fast._shm``'s
docstring has the why, ``_shm_c.h`` the exact orderings. ``parsec_fast.shared.attach`` is the
public front.
"""
from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport errno, ESRCH
from libc.math cimport NAN
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap
from posix.signal cimport kill

from parsec_fast._book cimport SIDE_ASK, SIDE_BID, float64_out, key_price
from parsec_fast._shm cimport (
    HEADER_SIZE, PFSHM_BUSY, PFSHM_CLOSED, PFSHM_GONE, PFSHM_HAS_BASELINE, PFSHM_LIVE,
    PFSHM_LOCALLY_STALE, PFSHM_OCCUPIED, PFSHM_OK, PFSHM_TEXT_MAX, PFSHM_VALID, PFSHM_VERSION,
    PFSHM_WAKE_MEMBARRIER, check_name, header_problem, pfshm_announce, pfshm_dir_read_begin,
    pfshm_dir_read_retry, pfshm_futex_wait, pfshm_hash, pfshm_header, pfshm_ident, pfshm_level,
    pfshm_load_changes, pfshm_load_heartbeat, pfshm_load_state, pfshm_load_u32, pfshm_load_u64,
    pfshm_now_ns, pfshm_read_ident, pfshm_read_levels, pfshm_read_state, pfshm_read_top,
    pfshm_reader_page, pfshm_relax, pfshm_slot, pfshm_state, pfshm_top, pidns_inode, slot_at)

import os

from parsec_fast import rules
from parsec_fast._shm import (SHM_DIR, BookBusyError, BookGoneError, LayoutMismatchError,
                              PublisherGoneError, SharedMemoryError)

__all__ = ["SharedRegion", "SharedBook"]

cdef int64_t _PID_CHECK_NS = 20_000_000        # a dead writer pid is looked for every 20 ms
cdef int64_t _LIVENESS_SLICE_NS = 100_000_000  # a sleeping reader re-checks liveness this often
cdef int64_t _SIGNAL_SLICE_NS = 100_000_000    # ... and lets Python run signal handlers
cdef int64_t _NO_BARRIER_SLEEP_NS = 1_000_000  # without membarrier here: 1 ms sleeps, no wake
cdef tuple _BOOK_STATE_NAMES = ("fresh", "fresh", "stale", "needs_refresh", "other")
cdef tuple _FEED_STATE_NAMES = ("healthy", "healthy", "degraded", "disconnected", "other")
cdef int _BOOK_FRESH = 1
cdef int _FEED_HEALTHY = 1
cdef int _STATE_OTHER = 4
cdef int64_t _NO_TS = INT64_MIN


cdef inline str text_of(const char* data, uint16_t n):
    return data[:n].decode("utf-8", "replace")


# ----------------------------------------------------------------------------------------------
# the region
# ----------------------------------------------------------------------------------------------

cdef class SharedRegion:
    """``SharedRegion(name, *, heartbeat_timeout=None)``: a read-only view of a publisher's
    region (``parsec_fast.shared.attach`` returns its subclass ``SharedBooks``).

    ``heartbeat_timeout`` (s): the publisher is gone when its heartbeat is older than this
    (default: the bound the publisher advertises, 1 s unless it chose another). Never unlinks
    anything; crashing or being killed affects nobody else. Not for concurrent use from several
    threads without the GIL (reads hold it)."""

    def __init__(self, name, *, heartbeat_timeout=None):
        cdef void* base
        cdef void* rbase
        cdef size_t size, page
        cdef pfshm_header* h
        self.name = check_name(name)
        self.path = SHM_DIR + self.name
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise FileNotFoundError(f"no shared book region {self.name!r} ({self.path}): is its "
                                    f"publisher running on this host?") from None
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_SIZE:
                raise LayoutMismatchError(f"{self.path}: the file has {size} bytes, less than a "
                                          f"region header ({HEADER_SIZE}): not a book region")
            base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0)
            if base == MAP_FAILED:
                raise OSError(errno, f"mmap of {self.path} failed: {os.strerror(errno)}")
            self._base = <char*>base
            self._size = size
            h = self._hdr = <pfshm_header*>base
            problem = header_problem(h, size)
            if problem is not None:
                raise LayoutMismatchError(f"{self.path}: {problem}")
            page = max(4096, os.sysconf("SC_PAGE_SIZE"))
            if h.reader_offset % page:
                raise LayoutMismatchError(f"{self.path}: reader page at {h.reader_offset} is not "
                                          f"page-aligned ({page})")
            rbase = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, h.reader_offset)
            if rbase == MAP_FAILED:
                raise OSError(errno, f"mmap of {self.path}'s reader page failed: {os.strerror(errno)}")
            self._rbase = <char*>rbase
            self._rsize = page
        except BaseException:
            self.close()
            raise
        finally:
            os.close(fd)
        self._rpage = <pfshm_reader_page*>self._rbase
        self._dir = <uint32_t*>(self._base + h.dir_offset)
        self._slots = self._base + h.slots_offset
        self._max_books = h.max_books
        self._max_levels = h.max_levels
        self._slot_size = h.slot_size
        self._copy_size = h.copy_size
        self._dir_mask = h.dir_entries - 1
        self._bound_ns = (h.heartbeat_timeout_ns if heartbeat_timeout is None
                          else <int64_t>(float(heartbeat_timeout) * 1e9))
        if self._bound_ns <= 0:
            raise ValueError(f"heartbeat_timeout: must be > 0 s, got {heartbeat_timeout!r}")
        self._pid = h.writer_pid
        self._check_pid = h.writer_pidns != 0 and h.writer_pidns == pidns_inode()
        self._last_change_ns = pfshm_now_ns()

    def __dealloc__(self):
        self._unmap()

    cdef int _check_open(self) except -1:
        if self._base == NULL:
            raise SharedMemoryError(f"shared region {self.name!r} is closed (detached)")
        return 0

    def _unmap(self):
        if self._rbase != NULL:
            munmap(self._rbase, self._rsize)
            self._rbase = NULL
        if self._base != NULL:
            munmap(self._base, self._size)
            self._base = NULL

    def close(self):
        """Unmap the region (this process only). Its SharedBooks raise SharedMemoryError after."""
        self._unmap()

    # -- liveness -------------------------------------------------------------------------------
    cdef int _alive_c(self, int64_t now) noexcept nogil:
        """1 while the publisher is live: not closed, heartbeat within the bound, pid alive."""
        if pfshm_load_state(self._hdr) != PFSHM_LIVE:
            return 0
        if now - pfshm_load_heartbeat(self._hdr) > self._bound_ns:
            return 0
        if self._check_pid and now - self._pid_checked_ns > _PID_CHECK_NS:
            self._pid_checked_ns = now
            self._pid_dead = kill(<int>self._pid, 0) == -1 and errno == ESRCH
        return not self._pid_dead

    @property
    def alive(self):
        """True while the publisher is live (see ``gone_reason``)."""
        self._check_open()
        return bool(self._alive_c(pfshm_now_ns()))

    @property
    def gone_reason(self):
        """Why the publisher is considered gone, or None while it is live."""
        cdef int64_t now = pfshm_now_ns(), age
        self._check_open()
        if self._alive_c(now):
            return None
        if pfshm_load_state(self._hdr) == PFSHM_CLOSED:
            n = min(self._hdr.close_reason_len, PFSHM_TEXT_MAX)
            return f"publisher closed ({text_of(self._hdr.close_reason, <uint16_t>n)})"
        if self._pid_dead:
            return f"publisher process {self._pid} is gone"
        age = now - pfshm_load_heartbeat(self._hdr)
        return (f"publisher heartbeat is {age / 1e6:.0f} ms old (bound {self._bound_ns / 1e6:.0f} "
                f"ms): stopped or hung")

    @property
    def heartbeat_age(self):
        """Seconds since the publisher's last heartbeat."""
        self._check_open()
        return (pfshm_now_ns() - pfshm_load_heartbeat(self._hdr)) / 1e9

    @property
    def heartbeat_timeout(self):
        """Seconds without a heartbeat after which the publisher counts as gone."""
        return self._bound_ns / 1e9

    @property
    def publisher_pid(self):
        """The publisher's process id."""
        self._check_open()
        return self._hdr.writer_pid

    @property
    def max_books(self):
        """Books the region can hold."""
        return self._max_books

    @property
    def max_levels(self):
        """Levels per side a slot holds (a deeper book is published truncated to these)."""
        return self._max_levels

    @property
    def layout_version(self):
        """The region layout version (``LAYOUT_VERSION``)."""
        return PFSHM_VERSION

    @property
    def wake_protocol(self):
        """"membarrier" (the writer never fences; a reader entering a long sleep issues
        membarrier(2)) or "fenced" (seq_cst on both sides, where membarrier is unavailable)."""
        self._check_open()
        return "membarrier" if self._hdr.wake_protocol == PFSHM_WAKE_MEMBARRIER else "fenced"

    @property
    def changes(self):
        """The region's change counter (uint32, wraps): bumped once per publishing flush."""
        self._check_open()
        return pfshm_load_changes(self._hdr)

    @property
    def books_version(self):
        """Bumped whenever a book is added or removed (refresh a cached ``books()`` list)."""
        self._check_open()
        return pfshm_load_u64(&self._hdr.books_version)

    @property
    def n_unpublished(self):
        """Books the publisher holds but could not place in the region."""
        self._check_open()
        return self._hdr.n_unpublished

    def __len__(self):
        self._check_open()
        return pfshm_load_u32(&self._hdr.n_books)

    # -- the directory --------------------------------------------------------------------------
    cdef Py_ssize_t _find(self, bytes pid, bytes key, uint32_t* gen) except -2:
        """Slot of (pid, folded outcome key), -1 when absent; ``gen`` its generation."""
        cdef uint64_t h = pfshm_hash(PyBytes_AS_STRING(pid), PyBytes_GET_SIZE(pid),
                                     PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))
        cdef uint64_t d
        cdef uint32_t j, e, probes
        cdef Py_ssize_t found
        cdef pfshm_ident ident
        cdef int attempt = 0, rc
        cdef bint busy
        self._check_open()
        while True:
            d = pfshm_dir_read_begin(self._hdr)
            found = -1
            busy = False
            if not (d & 1):
                j = <uint32_t>(h & self._dir_mask)
                for probes in range(self._dir_mask + 1):
                    e = pfshm_load_u32(&self._dir[j])
                    if e == 0:
                        break
                    rc = PFSHM_GONE
                    if e <= self._max_books:
                        rc = pfshm_read_ident(slot_at(self._slots, self._slot_size, e - 1),
                                              self._copy_size, &ident)
                    if rc == PFSHM_BUSY:
                        busy = True   # not "absent": that slot could not be read
                        break
                    if rc == PFSHM_OK:
                        if ((ident.flags & PFSHM_OCCUPIED) and ident.pid_len == PyBytes_GET_SIZE(pid)
                                and ident.key_len == PyBytes_GET_SIZE(key)
                                and memcmp(ident.pid, PyBytes_AS_STRING(pid), ident.pid_len) == 0
                                and memcmp(ident.key, PyBytes_AS_STRING(key), ident.key_len) == 0):
                            found = e - 1
                            gen[0] = ident.gen
                            break
                    j = (j + 1) & self._dir_mask
                if not busy and not pfshm_dir_read_retry(self._hdr, d):
                    return found
            attempt += 1
            if attempt > 200:
                raise BookBusyError(f"shared region {self.name!r}: the directory (or a slot it "
                                    f"points to) stayed busy through every retry")
            pfshm_relax()

    def get(self, str parsec_id not None, str outcome not None = "Yes"):
        """The SharedBook of (parsec_id, outcome) — outcome compared as the FeedHandler does
        (ASCII case-insensitively) — or None when it is not published."""
        cdef uint32_t gen = 0
        cdef Py_ssize_t i = self._find(parsec_id.encode("utf-8"),
                                       rules.fold_outcome(outcome).encode("utf-8"), &gen)
        if i < 0:
            return None
        return _make_book(self, i, gen)

    def book(self, str parsec_id not None, str outcome not None = "Yes"):
        """Like ``get``, but KeyError (saying how many books the region could not hold) when it
        is not published."""
        sb = self.get(parsec_id, outcome)
        if sb is None:
            extra = self._hdr.n_unpublished
            note = (f"; {extra} book(s) of the publisher are not in the region (max_books="
                    f"{self._max_books}, or an identity too long)" if extra else "")
            raise KeyError(f"{parsec_id}/{outcome} is not published in {self.name!r}{note}")
        return sb

    def books(self):
        """Every published book, in slot order."""
        cdef uint32_t i
        cdef int rc, tries
        cdef pfshm_ident ident
        cdef list out = []
        self._check_open()
        for i in range(self._max_books):
            for tries in range(20):
                rc = pfshm_read_ident(slot_at(self._slots, self._slot_size, i), self._copy_size,
                                      &ident)
                if rc != PFSHM_BUSY:
                    break
            else:
                raise BookBusyError(f"slot {i} of {self.name!r} stayed busy through every retry")
            if rc == PFSHM_OK and ident.flags & PFSHM_OCCUPIED:
                out.append(_make_book(self, i, ident.gen))
        return out

    def keys(self):
        """(parsec_id, outcome) of every published book, in slot order."""
        return [(b.parsec_id, b.outcome) for b in self.books()]

    def __iter__(self):
        return iter(self.books())

    def __contains__(self, key):
        pid, outcome = (key, "Yes") if isinstance(key, str) else key
        return self.get(pid, outcome) is not None

    # -- waiting --------------------------------------------------------------------------------
    cdef int _wait_c(self, uint32_t last, int64_t deadline, int64_t poll_ns, int64_t linger_ns,
                     int64_t spin_until, uint32_t* out) noexcept nogil:
        """0 changed (``out``), 1 deadline, 2 publisher gone, 3 interrupted by a signal."""
        cdef int64_t now = pfshm_now_ns(), sleep
        cdef uint32_t c
        while True:
            if not self._alive_c(now):   # before the counter: closing bumps it too
                return 2
            c = pfshm_load_changes(self._hdr)
            if c != last:
                self._last_change_ns = now
                out[0] = c
                return 0
            if now >= deadline:
                return 1
            if now < spin_until:
                pfshm_relax()
                now = pfshm_now_ns()
                continue
            if now - self._last_change_ns < linger_ns:
                sleep = poll_ns          # busy stream: timed sleeps, the writer is not involved
            elif self._no_barrier:
                sleep = _NO_BARRIER_SLEEP_NS   # cannot be sure of a wake: bounded sleeps
            else:
                if not pfshm_announce(self._hdr, self._rpage):  # quiet: ask to be woken ...
                    self._no_barrier = True
                    continue
                if pfshm_load_changes(self._hdr) != last:     # ... then re-check
                    continue
                sleep = _LIVENESS_SLICE_NS
            if sleep > deadline - now:
                sleep = deadline - now
            if pfshm_futex_wait(&self._hdr.changes, last, sleep):
                return 3
            now = pfshm_now_ns()

    def wait(self, last=None, timeout=None, *, double poll=100e-6, double linger=0.01,
             double spin=0.0):
        """Block until the change counter differs from ``last`` (default: its value now) and
        return the new value; return ``last`` after ``timeout`` seconds (None: no limit). Raises
        PublisherGoneError when the publisher is (or becomes) gone.

        Does not spin a core (unless ``spin`` > 0): see the module docstring for the two sleeps
        and ``bench/RESULTS.md`` for the measured wake latency. ``poll`` (s) is the timed sleep
        while changes keep coming (a change seen within ``linger`` s); after that the reader asks
        the writer to wake it. ``spin`` (s): spin this long first, for a reader on its own core
        that wants the change within a microsecond. Changes of any book count (a flush bumps the
        counter once): check the books you follow."""
        cdef uint32_t expected, out = 0
        cdef int64_t now, deadline, spin_until, slice_end
        cdef int64_t poll_ns = <int64_t>(poll * 1e9), linger_ns = <int64_t>(linger * 1e9)
        cdef int rc
        self._check_open()
        expected = pfshm_load_changes(self._hdr) if last is None else <uint32_t>(int(last) & 0xffffffff)
        now = pfshm_now_ns()
        deadline = INT64_MAX if timeout is None else now + <int64_t>(max(0.0, float(timeout)) * 1e9)
        spin_until = now + <int64_t>(spin * 1e9) if spin > 0 else 0
        while True:
            slice_end = deadline if deadline - now < _SIGNAL_SLICE_NS else now + _SIGNAL_SLICE_NS
            with nogil:
                rc = self._wait_c(expected, slice_end, poll_ns, linger_ns, spin_until, &out)
            if rc == 0:
                return out
            if rc == 2:
                raise PublisherGoneError(f"shared region {self.name!r}: {self.gone_reason}")
            PyErr_CheckSignals()
            now = pfshm_now_ns()
            if now >= deadline:
                return expected

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self._base == NULL:
            return f"SharedRegion({self.name!r}, detached)"
        return (f"SharedRegion({self.name!r}, {self._hdr.n_books} books, publisher pid "
                f"{self._pid}, {'live' if self._alive_c(pfshm_now_ns()) else 'gone'})")


cdef SharedBook _make_book(SharedRegion region, Py_ssize_t i, uint32_t gen):
    cdef SharedBook sb = SharedBook.__new__(SharedBook)
    cdef pfshm_ident ident
    cdef pfshm_slot* slot = slot_at(region._slots, region._slot_size, i)
    sb._region = region
    sb._slot = slot
    sb._cs = region._copy_size
    sb._gen = gen
    sb.index = i
    if pfshm_read_ident(slot, region._copy_size, &ident) != PFSHM_OK:
        raise BookBusyError(f"slot {i} of {region.name!r} stayed busy")
    if ident.gen != gen or not (ident.flags & PFSHM_OCCUPIED):
        raise BookGoneError(f"slot {i} of {region.name!r} changed owner while looked up")
    sb.parsec_id = text_of(ident.pid, ident.pid_len)
    sb.outcome = text_of(ident.outcome, ident.outcome_len)
    sb._buf = <pfshm_level*>malloc(2 * <size_t>region._max_levels * sizeof(pfshm_level))
    if sb._buf == NULL:
        raise MemoryError()
    return sb


# ----------------------------------------------------------------------------------------------
# one shared book
# ----------------------------------------------------------------------------------------------

cdef class SharedBook:
    """A read-only view of one published book, with ``Book``'s read API and ``Subscription``'s
    trust signals (get one from ``SharedRegion.book``).

    Each read is one consistent copy of the slot (seqlock): ``best_bid`` alone, ``bids()`` alone,
    ``top()`` (both sides' best levels at one version) and ``to_dict()`` / ``state()`` (all of it
    at one version). Two separate reads may see two versions: use ``top()`` for a bid/ask pair.
    Data reads raise ``BookGoneError`` once the book was removed, ``BookBusyError`` if the writer
    stayed in the slot through every retry; after the publisher is gone they return its last
    published data and ``trustworthy`` is False. ``bids()`` / ``asks()`` return at most the
    region's ``max_levels`` (see ``truncated``).

    Performance: a top-of-book read is one cache line plus the Python call and tuple (the same
    order as ``Book.best_bid``; measured in ``bench/RESULTS.md``); ``bids(n)`` copies the side's
    published levels once (~16 bytes per level) then builds the list."""

    def __init__(self, *args, **kwargs):
        raise TypeError("SharedBook objects come from SharedRegion.book() / .get()")

    def __dealloc__(self):
        free(self._buf)

    cdef int _fail(self, int rc) except -1:
        if rc == PFSHM_GONE:
            raise BookGoneError(f"{self.parsec_id}/{self.outcome} was removed from shared region "
                                f"{self._region.name!r} (unsubscribed); look it up again")
        raise BookBusyError(f"{self.parsec_id}/{self.outcome}: the publisher stayed inside the "
                            f"slot for the whole bounded retry (stopped mid-write?)")

    cdef int _top(self, pfshm_top* t) except -1:
        cdef int rc
        if self._region._base == NULL:
            self._region._check_open()
        rc = pfshm_read_top(self._slot, self._cs, self._gen, t)
        if rc != PFSHM_OK:
            self._fail(rc)
        return 0

    cdef int _state(self, pfshm_state* st) except -1:
        cdef int rc
        if self._region._base == NULL:
            self._region._check_open()
        rc = pfshm_read_state(self._slot, self._cs, self._gen, st)
        if rc != PFSHM_OK:
            self._fail(rc)
        return 0

    cdef Py_ssize_t _side(self, int s, Py_ssize_t cap, pfshm_top* t) except -1:
        """Copy up to ``cap`` best levels of side ``s`` into self._buf; returns how many."""
        cdef size_t nb = 0, na = 0
        cdef uint32_t tb, ta
        cdef int rc
        if self._region._base == NULL:
            self._region._check_open()
        if cap > self._region._max_levels:
            cap = self._region._max_levels
        rc = pfshm_read_levels(self._slot, self._cs, self._gen, self._region._max_levels,
                               self._buf, cap if s == SIDE_BID else 0, &nb,
                               self._buf, cap if s == SIDE_ASK else 0, &na, t, &tb, &ta)
        if rc != PFSHM_OK:
            self._fail(rc)
        return <Py_ssize_t>(nb if s == SIDE_BID else na)

    # -- Book's reads ---------------------------------------------------------------------------
    @property
    def seq(self):
        """Last applied server_seq, or None before the first snapshot."""
        cdef pfshm_top t
        self._top(&t)
        return t.seq if t.flags & PFSHM_HAS_BASELINE else None

    @property
    def is_valid(self):
        """The publisher's ``Book.is_valid`` as last published (see ``trustworthy``)."""
        cdef pfshm_top t
        self._top(&t)
        return bool(t.flags & PFSHM_VALID)

    @property
    def best_bid(self):
        """(price, size) of the best bid, or None."""
        cdef pfshm_top t
        self._top(&t)
        if t.n_bids == 0:
            return None
        return (key_price(t.top_bid.key), t.top_bid.size)

    @property
    def best_ask(self):
        """(price, size) of the best ask, or None."""
        cdef pfshm_top t
        self._top(&t)
        if t.n_asks == 0:
            return None
        return (key_price(t.top_ask.key), t.top_ask.size)

    @property
    def best_bid_price(self):
        """Best bid price, NaN when there are no bids."""
        cdef pfshm_top t
        self._top(&t)
        return key_price(t.top_bid.key) if t.n_bids else NAN

    @property
    def best_bid_size(self):
        """Best bid size, NaN when there are no bids."""
        cdef pfshm_top t
        self._top(&t)
        return t.top_bid.size if t.n_bids else NAN

    @property
    def best_ask_price(self):
        """Best ask price, NaN when there are no asks."""
        cdef pfshm_top t
        self._top(&t)
        return key_price(t.top_ask.key) if t.n_asks else NAN

    @property
    def best_ask_size(self):
        """Best ask size, NaN when there are no asks."""
        cdef pfshm_top t
        self._top(&t)
        return t.top_ask.size if t.n_asks else NAN

    def top(self):
        """``(bid_price, bid_size, ask_price, ask_size)`` at one version (NaN for an empty side)."""
        cdef pfshm_top t
        self._top(&t)
        return (key_price(t.top_bid.key) if t.n_bids else NAN, t.top_bid.size if t.n_bids else NAN,
                key_price(t.top_ask.key) if t.n_asks else NAN, t.top_ask.size if t.n_asks else NAN)

    @property
    def mid(self):
        """(best bid + best ask) / 2 at one version, or None when a side is empty."""
        cdef pfshm_top t
        self._top(&t)
        if t.n_bids == 0 or t.n_asks == 0:
            return None
        return (key_price(t.top_bid.key) + key_price(t.top_ask.key)) / 2.0

    @property
    def spread(self):
        """best ask - best bid at one version, or None when a side is empty."""
        cdef pfshm_top t
        self._top(&t)
        if t.n_bids == 0 or t.n_asks == 0:
            return None
        return key_price(t.top_ask.key) - key_price(t.top_bid.key)

    @property
    def crossed(self):
        """True when both sides are non-empty and best bid >= best ask (at one version)."""
        cdef pfshm_top t
        self._top(&t)
        return t.n_bids > 0 and t.n_asks > 0 and -t.top_bid.key >= t.top_ask.key

    cdef list _levels(self, int s, object n):
        cdef pfshm_top t
        cdef Py_ssize_t cap = self._region._max_levels, count, i
        cdef list out
        if n is not None and rules.level_count(n) < cap:
            cap = rules.level_count(n)
        count = self._side(s, cap, &t)
        out = [None] * count
        for i in range(count):
            out[i] = (key_price(self._buf[i].key), self._buf[i].size)
        return out

    def bids(self, n=None):
        """The best ``n`` bids (all published when None) as (price, size), best first."""
        return self._levels(SIDE_BID, n)

    def asks(self, n=None):
        """The best ``n`` asks (all published when None) as (price, size), best first."""
        return self._levels(SIDE_ASK, n)

    cdef object _array(self, int s, object n, str method):
        cdef pfshm_top t
        cdef Py_ssize_t cap = self._region._max_levels, count, i
        np = rules.import_numpy(method)
        if n is not None and rules.level_count(n) < cap:
            cap = rules.level_count(n)
        count = self._side(s, cap, &t)
        arr = np.empty((count, 2), dtype=np.float64)
        cdef double[:, ::1] view = arr
        for i in range(count):
            view[i, 0] = key_price(self._buf[i].key)
            view[i, 1] = self._buf[i].size
        return arr

    def bids_array(self, n=None):
        """The best ``n`` bids as a float64 NumPy array of shape (k, 2)."""
        return self._array(SIDE_BID, n, "bids_array")

    def asks_array(self, n=None):
        """The best ``n`` asks as a float64 NumPy array of shape (k, 2)."""
        return self._array(SIDE_ASK, n, "asks_array")

    cdef Py_ssize_t _into(self, int s, object out) except -1:
        cdef Py_buffer buf
        cdef pfshm_top t
        cdef Py_ssize_t count, i
        cdef double* dst = float64_out(out, &buf)
        try:
            count = self._side(s, (buf.len // 8) // 2, &t)
            for i in range(count):
                dst[2 * i] = key_price(self._buf[i].key)
                dst[2 * i + 1] = self._buf[i].size
            return count
        finally:
            PyBuffer_Release(&buf)

    def bids_into(self, out):
        """Write the best bids as price, size pairs into a writable C-contiguous float64 buffer;
        returns the number of levels written."""
        return self._into(SIDE_BID, out)

    def asks_into(self, out):
        """As ``bids_into``, for the asks."""
        return self._into(SIDE_ASK, out)

    cdef double _size_at(self, int s, object price) except? -1.0:
        cdef int64_t key = rules.price_key(price, "price")
        cdef pfshm_top t
        cdef Py_ssize_t n, i
        if s == SIDE_BID:
            key = -key
        n = self._side(s, self._region._max_levels, &t)
        for i in range(n):
            if self._buf[i].key == key:
                return self._buf[i].size
            if self._buf[i].key > key:
                break
        return 0.0

    def bid_size(self, price):
        """Size at ``price`` on the bid side, 0.0 when absent (or beyond the published depth)."""
        return self._size_at(SIDE_BID, price)

    def ask_size(self, price):
        """Size at ``price`` on the ask side, 0.0 when absent (or beyond the published depth)."""
        return self._size_at(SIDE_ASK, price)

    def level_count(self, side):
        """Levels published on ``side`` ("bid" or "ask"): what ``bids()`` / ``asks()`` return."""
        cdef pfshm_top t
        cdef int s = rules.side_index(side, "side")
        self._top(&t)
        return t.n_bids if s == SIDE_BID else t.n_asks

    def book_level_count(self, side):
        """Levels the publisher's book has on ``side`` (more than published when truncated)."""
        cdef pfshm_state st
        cdef int s = rules.side_index(side, "side")
        self._state(&st)
        return st.total_bids if s == SIDE_BID else st.total_asks

    @property
    def truncated(self):
        """True when the book has more levels on a side than the region's ``max_levels``."""
        cdef pfshm_state st
        self._state(&st)
        return st.total_bids > st.top.n_bids or st.total_asks > st.top.n_asks

    @property
    def max_levels(self):
        """Levels per side the region publishes (the region's ``max_levels``)."""
        return self._region._max_levels

    # -- Subscription's trust signals -----------------------------------------------------------
    @property
    def gone(self):
        """True once the book was removed from the region (its slot changed owner)."""
        cdef pfshm_top t
        if self._region._base == NULL:
            return True
        return pfshm_read_top(self._slot, self._cs, self._gen, &t) == PFSHM_GONE

    @property
    def trustworthy(self):
        """Publisher live, book still published, valid, fresh (server and locally), venue feed
        healthy: ``Subscription.trustworthy`` plus the publisher's liveness."""
        cdef pfshm_top t
        if self._region._base == NULL or not self._region._alive_c(pfshm_now_ns()):
            return False
        if pfshm_read_top(self._slot, self._cs, self._gen, &t) != PFSHM_OK:
            return False
        return bool((t.flags & PFSHM_VALID) and not (t.flags & PFSHM_LOCALLY_STALE)
                    and t.book_state == _BOOK_FRESH and t.feed_state == _FEED_HEALTHY)

    def why_not(self):
        """None when ``trustworthy``, else a short reason: the publisher's (gone, with why), the
        slot's (removed, busy), or ``Subscription.why_not()``'s text for the published state."""
        cdef pfshm_state st
        cdef int rc
        if self._region._base == NULL:
            return "shared region detached in this process"
        reason = self._region.gone_reason
        if reason is not None:
            return f"publisher gone: {reason}"
        rc = pfshm_read_state(self._slot, self._cs, self._gen, &st)
        if rc == PFSHM_GONE:
            return "book removed from the shared region (unsubscribed)"
        if rc == PFSHM_BUSY:
            return "book busy: the publisher stayed inside its slot"
        if not (st.top.flags & PFSHM_VALID):
            why = text_of(st.reason, st.reason_len) or "invalid"
            if why == "rejected" and st.error_len:
                return f"book invalid (rejected data: {text_of(st.error, st.error_len)}); resync pending"
            return f"book invalid ({why}); awaiting a snapshot"
        if st.top.book_state != _BOOK_FRESH:
            return f"server reports book_state={_state_name(st.top.book_state, st.book_text, st.book_text_len, _BOOK_STATE_NAMES)}"
        if st.top.flags & PFSHM_LOCALLY_STALE:
            return f"no book frame for more than stale_after_ms={st.stale_after_ms}"
        if st.top.feed_state != _FEED_HEALTHY:
            return f"venue feed is {_state_name(st.top.feed_state, st.feed_text, st.feed_text_len, _FEED_STATE_NAMES)}"
        return None

    @property
    def invalid_reason(self):
        """Why the book is invalid (the publisher's ``Subscription.invalid_reason``; or
        "publisher_closed"), None while valid."""
        cdef pfshm_state st
        self._state(&st)
        if st.top.flags & PFSHM_VALID:
            return None
        return text_of(st.reason, st.reason_len) or None

    @property
    def last_error(self):
        """The publisher's ``Subscription.last_error``: the message of the last bad frame."""
        cdef pfshm_state st
        self._state(&st)
        return text_of(st.error, st.error_len) if st.error_len else None

    @property
    def book_state(self):
        """The publisher's ``Subscription.book_state`` ("fresh", "stale", "needs_refresh", ...)."""
        cdef pfshm_state st
        self._state(&st)
        return _state_name(st.top.book_state, st.book_text, st.book_text_len, _BOOK_STATE_NAMES)

    @property
    def feed_state(self):
        """The publisher's ``Subscription.feed_state`` ("healthy", "degraded", ...)."""
        cdef pfshm_state st
        self._state(&st)
        return _state_name(st.top.feed_state, st.feed_text, st.feed_text_len, _FEED_STATE_NAMES)

    @property
    def locally_stale(self):
        """The publisher's ``Subscription.locally_stale``."""
        cdef pfshm_top t
        self._top(&t)
        return bool(t.flags & PFSHM_LOCALLY_STALE)

    @property
    def stale_after_ms(self):
        """The server's ``stale_after_ms`` for this book, or None."""
        cdef pfshm_state st
        self._state(&st)
        return st.stale_after_ms if st.stale_after_ms >= 0 else None

    @property
    def exchange_ts_ms(self):
        """exchange_ts_ms of the last book frame (None when it had none)."""
        cdef pfshm_state st
        self._state(&st)
        return None if st.exchange_ts_ms == _NO_TS else st.exchange_ts_ms

    @property
    def ingest_ts_ms(self):
        """ingest_ts_ms of the last book frame (None when it had none)."""
        cdef pfshm_state st
        self._state(&st)
        return None if st.ingest_ts_ms == _NO_TS else st.ingest_ts_ms

    @property
    def last_frame_ns(self):
        """time.monotonic_ns() in the publisher when the last book frame for it was read (the
        clock is the host's: ``time.monotonic_ns() - last_frame_ns`` is its age here)."""
        cdef pfshm_state st
        self._state(&st)
        return st.last_frame_ns

    @property
    def publishes(self):
        """Times the publisher wrote this book since it was placed (a version number)."""
        cdef pfshm_state st
        self._state(&st)
        return st.publishes

    def state(self):
        """Every trust field at one version, as a dict (seq, is_valid, invalid_reason,
        last_error, book_state, feed_state, locally_stale, stale_after_ms, exchange_ts_ms,
        ingest_ts_ms, last_frame_ns, publishes, levels published and held per side)."""
        cdef pfshm_state st
        self._state(&st)
        valid = bool(st.top.flags & PFSHM_VALID)
        return {
            "seq": st.top.seq if st.top.flags & PFSHM_HAS_BASELINE else None,
            "is_valid": valid,
            "invalid_reason": None if valid else (text_of(st.reason, st.reason_len) or None),
            "last_error": text_of(st.error, st.error_len) if st.error_len else None,
            "book_state": _state_name(st.top.book_state, st.book_text, st.book_text_len, _BOOK_STATE_NAMES),
            "feed_state": _state_name(st.top.feed_state, st.feed_text, st.feed_text_len, _FEED_STATE_NAMES),
            "locally_stale": bool(st.top.flags & PFSHM_LOCALLY_STALE),
            "stale_after_ms": st.stale_after_ms if st.stale_after_ms >= 0 else None,
            "exchange_ts_ms": None if st.exchange_ts_ms == _NO_TS else st.exchange_ts_ms,
            "ingest_ts_ms": None if st.ingest_ts_ms == _NO_TS else st.ingest_ts_ms,
            "last_frame_ns": st.last_frame_ns,
            "publishes": st.publishes,
            "bids_published": st.top.n_bids, "asks_published": st.top.n_asks,
            "bids_held": st.total_bids, "asks_held": st.total_asks,
        }

    def to_dict(self):
        """Like ``Book.to_dict()`` (parsec_id, outcome, seq, is_valid, bids, asks), at one
        version of the slot."""
        cdef pfshm_top t
        cdef size_t nb = 0, na = 0
        cdef uint32_t tb, ta
        cdef size_t cap = self._region._max_levels
        cdef int rc
        cdef Py_ssize_t i
        if self._region._base == NULL:
            self._region._check_open()
        rc = pfshm_read_levels(self._slot, self._cs, self._gen, self._region._max_levels,
                               self._buf, cap, &nb, self._buf + cap, cap, &na, &t, &tb, &ta)
        if rc != PFSHM_OK:
            self._fail(rc)
        return {
            "parsec_id": self.parsec_id,
            "outcome": self.outcome,
            "seq": t.seq if t.flags & PFSHM_HAS_BASELINE else None,
            "is_valid": bool(t.flags & PFSHM_VALID),
            "bids": [[key_price(self._buf[i].key), self._buf[i].size] for i in range(nb)],
            "asks": [[key_price(self._buf[cap + i].key), self._buf[cap + i].size] for i in range(na)],
        }

    def _bench_top(self, Py_ssize_t n):
        """ns for ``n`` top-of-book reads (line 0, both sides) in a C loop: the read's own cost
        without the Python call (bench/bench_shm.py)."""
        cdef pfshm_top t
        cdef int64_t t0, t1
        cdef double sink = 0.0
        cdef Py_ssize_t i
        t0 = pfshm_now_ns()
        for i in range(n):
            if pfshm_read_top(self._slot, self._cs, self._gen, &t) == PFSHM_OK:
                sink += t.top_bid.size + t.top_ask.size
        t1 = pfshm_now_ns()
        return [int(t1 - t0), float(sink)]

    def __repr__(self):
        cdef pfshm_top t
        rc = pfshm_read_top(self._slot, self._cs, self._gen, &t) if self._region._base != NULL else PFSHM_GONE
        if rc != PFSHM_OK:
            return f"SharedBook({self.parsec_id!r}, {self.outcome!r}, {'gone' if rc == PFSHM_GONE else 'busy'})"
        return (f"SharedBook({self.parsec_id!r}, {self.outcome!r}, seq={t.seq}, "
                f"valid={bool(t.flags & PFSHM_VALID)}, bids={t.n_bids}, asks={t.n_asks})")


cdef str _state_name(int code, const char* text, uint16_t n, tuple names):
    if code == _STATE_OTHER and n:
        return text_of(text, n)
    return names[code] if 0 <= code < len(names) else "other"
