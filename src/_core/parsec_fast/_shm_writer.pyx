"""The writer of the shared-memory books: :class:`Publisher`, a ``BookSink`` of a
:class:`~parsec_fast._feed.FeedHandler`.

The publisher creates the region ``/dev/shm/NAME`` and writes every book of its FeedHandler
into it: the handler calls it in C for every book it changed, once per book per read batch (at
``flush()``), and for state changes (validity, book/feed state, local staleness), with no Python
object per update. What is here: building a region and taking its name (replacing a dead
owner's region), placing books in slots (a free-slot stack, the hash directory, the books that
wait for a slot), writing one book into one copy of its slot (only the 64-byte level groups that
changed; a text is re-encoded only when its object changes), each publishing flush's counter
bump and wake, the heartbeat, and closing; ``_hammer``, the stress tests' writer.

The region's layout, the slot protocol and the wake handshake are shared with the readers
(``parsec_fast._shm_reader``): ``parsec_fast._shm``'s docstring has the why, ``_shm_c.h`` the
exact orderings.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.errno cimport errno
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap

from parsec_fast._book cimport Book, Level, SIDE_ASK, SIDE_BID, side_view
from parsec_fast._feed cimport BookSink, FeedHandler, Subscription
from parsec_fast._shm cimport (
    HEADER_SIZE, PFSHM_BYTE_ORDER, PFSHM_CLOSED, PFSHM_ERROR_MAX, PFSHM_HAS_BASELINE,
    PFSHM_LOCALLY_STALE, PFSHM_MAGIC, PFSHM_OCCUPIED, PFSHM_OUTCOME_MAX, PFSHM_PID_MAX,
    PFSHM_TEXT_MAX, PFSHM_TEXT_SIZES, PFSHM_VALID, PFSHM_VERSION, PFSHM_WAKE_FENCED,
    PFSHM_WAKE_MEMBARRIER, SLOT_HEADER_SIZE, SLOT_LOCK_SIZE, check_name, pfshm_asks, pfshm_bids,
    pfshm_bump_changes, pfshm_copy, pfshm_copy_at, pfshm_dir_begin, pfshm_dir_end,
    pfshm_futex_wake, pfshm_hash, pfshm_header, pfshm_level, pfshm_membarrier_register,
    pfshm_now_ns, pfshm_publish_changes, pfshm_reader_page, pfshm_relax, pfshm_slot,
    pfshm_store_heartbeat, pfshm_store_levels, pfshm_store_state, pfshm_write_begin,
    pfshm_write_end, pfshm_write_latest, pidns_inode, slot_at)

import os

from parsec_fast._shm import SHM_DIR, SharedMemoryError, region_owner

cdef extern from "Python.h":
    # Not cimported from cpython.unicode: that one raises, and the publish path must not.
    const char* _utf8_of "PyUnicode_AsUTF8AndSize" (PyObject* s, Py_ssize_t* size)
    void PyErr_Clear()
    bint PyUnicode_Check(object o)

__all__ = ["Publisher"]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

cdef inline size_t round_up(size_t n, size_t to) noexcept nogil:
    return (n + to - 1) // to * to


cdef inline void put_text(PyObject** cached, object text, char* dst, uint16_t* dst_len,
                          size_t cap) noexcept:
    """Copy ``text`` (a str or None) into a slot's text field, truncated at a UTF-8 boundary,
    unless it is the object copied last time (then nothing is done)."""
    cdef PyObject* p = <PyObject*>text
    cdef const char* data
    cdef Py_ssize_t n = 0
    if p == cached[0]:
        return
    Py_INCREF(text)
    Py_XDECREF(cached[0])
    cached[0] = p
    if text is None or not PyUnicode_Check(text):
        dst_len[0] = 0
        return
    data = _utf8_of(p, &n)
    if data == NULL:
        PyErr_Clear()
        dst_len[0] = 0
        return
    if <size_t>n > cap:
        n = <Py_ssize_t>cap
        while n > 0 and (<unsigned char>data[n] & 0xC0) == 0x80:  # not inside a character
            n -= 1
    memcpy(dst, data, <size_t>n)
    dst_len[0] = <uint16_t>n


# ----------------------------------------------------------------------------------------------
# the publisher
# ----------------------------------------------------------------------------------------------

cdef class Publisher(BookSink):
    """``Publisher(name, *, max_books=1024, max_levels=100, heartbeat_timeout=1.0, mode=0o600,
    replace=False)``: creates the region ``/dev/shm/NAME``; :meth:`attach` a FeedHandler to it
    (``parsec_fast.shared.publish`` does both).

    The region is built under a temporary name and linked into place when complete, so a reader
    never sees half a header. A region of that name whose owner is dead (closed, pid gone, or
    heartbeat older than its own bound) is replaced; a live one raises ``FileExistsError``, and so
    does a file that is not a region of this layout version unless ``replace``.

    Cost: each published book is one write of one copy of its slot, comparing its levels with
    that copy's and storing only the 64-byte groups that changed (~870 instructions for a
    50-level book, about +30-40 ns of wall clock per delta; bench/RESULTS.md); each publishing
    flush a release store of the counter and a plain load of the waiter flag (no fence: see
    ``wake_protocol``); a FUTEX_WAKE only when a reader announced a long sleep. Memory:
    ``max_books x (64 + 2 x (832 + 32 x max_levels))`` bytes plus three pages (1024 x 100:
    7.5 MB), touched only as books are placed."""

    def __init__(self, name, *, int max_books=1024, int max_levels=100,
                 double heartbeat_timeout=1.0, int mode=0o600, bint replace=False):
        cdef size_t page, slot_size, copy_size, dir_entries, reader_offset, dir_offset, slots_offset, size
        cdef void* base
        cdef pfshm_header* h
        cdef uint32_t i
        self.name = check_name(name)
        if not 1 <= max_books <= 65536:
            raise ValueError(f"max_books: must be in [1, 65536], got {max_books}")
        if not 1 <= max_levels <= 10000:
            raise ValueError(f"max_levels: must be in [1, 10000], got {max_levels}")
        if not heartbeat_timeout > 0:
            raise ValueError(f"heartbeat_timeout: must be > 0 s, got {heartbeat_timeout}")
        self.path = SHM_DIR + self.name
        page = max(4096, os.sysconf("SC_PAGE_SIZE"))
        copy_size = round_up(SLOT_HEADER_SIZE + 2 * sizeof(pfshm_level) * <size_t>max_levels, 64)
        slot_size = SLOT_LOCK_SIZE + 2 * copy_size
        dir_entries = 8
        while dir_entries < 2 * <size_t>max_books:
            dir_entries *= 2
        reader_offset = page
        dir_offset = 2 * page
        slots_offset = round_up(dir_offset + 4 * dir_entries, page)
        size = round_up(slots_offset + <size_t>max_books * slot_size, page)
        tmp = f"{SHM_DIR}.{self.name}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        try:
            try:
                os.fchmod(fd, mode)  # the umask must not narrow what the caller asked for
                os.ftruncate(fd, size)
                base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                if base == MAP_FAILED:
                    raise OSError(errno, f"mmap of {size} bytes failed: {os.strerror(errno)}")
                st = os.fstat(fd)
            finally:
                os.close(fd)
            self._base = <char*>base
            self._size = size
            self._dev, self._ino = st.st_dev, st.st_ino
            self._max_books = max_books
            self._max_levels = max_levels
            self._slot_size = slot_size
            self._copy_size = copy_size
            self._dir_mask = <uint32_t>(dir_entries - 1)
            self._hdr = h = <pfshm_header*>self._base
            self._rpage = <pfshm_reader_page*>(self._base + reader_offset)
            self._dir = <uint32_t*>(self._base + dir_offset)
            self._slots = self._base + slots_offset
            self._free = <uint32_t*>malloc(max_books * sizeof(uint32_t))
            self._texts = <SlotTexts*>calloc(2 * max_books, sizeof(SlotTexts))
            self._gens = <uint32_t*>calloc(max_books, sizeof(uint32_t))
            if self._free == NULL or self._texts == NULL or self._gens == NULL:
                raise MemoryError()
            for i in range(<uint32_t>max_books):
                self._free[i] = <uint32_t>max_books - 1 - i   # slot 0 is handed out first
            self._n_free = max_books
            self._owners = [None] * max_books
            self._unplaced = []
            memcpy(h.magic, PFSHM_MAGIC, 8)
            h.version = PFSHM_VERSION
            h.byte_order = PFSHM_BYTE_ORDER
            h.header_size = HEADER_SIZE
            h.slot_header_size = SLOT_HEADER_SIZE
            h.level_size = sizeof(pfshm_level)
            h.slot_size = <uint32_t>slot_size
            h.copy_size = <uint32_t>copy_size
            h.max_books = max_books
            h.max_levels = max_levels
            h.dir_entries = <uint32_t>dir_entries
            h.text_sizes = PFSHM_TEXT_SIZES
            h.reader_offset = reader_offset
            h.dir_offset = dir_offset
            h.slots_offset = slots_offset
            h.region_size = size
            h.writer_pid = os.getpid()
            h.writer_pidns = pidns_inode()
            h.created_ns = pfshm_now_ns()
            h.heartbeat_timeout_ns = <int64_t>(heartbeat_timeout * 1e9)
            self._protocol = (PFSHM_WAKE_MEMBARRIER if pfshm_membarrier_register()
                              else PFSHM_WAKE_FENCED)
            h.wake_protocol = self._protocol
            self._heartbeat = h.created_ns
            pfshm_store_heartbeat(h, self._heartbeat)
            self._install(tmp, replace)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            self._release()
            self._closed = True
            raise
        self._path_c = self.path.encode()

    def _install(self, str tmp, bint replace):
        """Link the finished region into place (replacing a dead owner's), drop the temp name."""
        for _ in range(3):
            try:
                os.link(tmp, self.path)
                break
            except FileExistsError:
                verdict = region_owner(self.path)
                if verdict is not None and not (replace and verdict.startswith("not ")):
                    raise FileExistsError(f"shared book region {self.name!r} ({self.path}) "
                                          f"exists: {verdict}") from None
                try:
                    os.unlink(self.path)  # the owner is gone: its readers keep their mapping
                except FileNotFoundError:
                    pass
        else:
            raise FileExistsError(f"shared book region {self.name!r}: could not take the name")
        os.unlink(tmp)

    def __dealloc__(self):
        # Best effort without the GIL's Python objects: mark closed, wake, unlink our file.
        if not self._closed and self._base != NULL:
            memcpy(self._hdr.close_reason, b"publisher deallocated", 21)
            self._hdr.close_reason_len = 21
            pfshm_store_state(self._hdr, PFSHM_CLOSED)
            pfshm_bump_changes(self._hdr)
            pfshm_futex_wake(&self._hdr.changes)
            if self._path_c is not None:
                _unlink_if_ours(PyBytes_AS_STRING(self._path_c), self._dev, self._ino)
        self._release()

    cdef void _release(self) noexcept:
        cdef uint32_t i
        if self._texts != NULL:
            for i in range(2 * self._max_books):
                Py_XDECREF(self._texts[i].reason)
                Py_XDECREF(self._texts[i].error)
                Py_XDECREF(self._texts[i].book_text)
                Py_XDECREF(self._texts[i].feed_text)
            free(self._texts)
            self._texts = NULL
        free(self._free)
        self._free = NULL
        free(self._gens)
        self._gens = NULL
        if self._base != NULL:
            munmap(self._base, self._size)
            self._base = NULL

    # -- the FeedHandler side -------------------------------------------------------------------
    def attach(self, FeedHandler feed not None):
        """Publish ``feed``'s books here from now on (its current books at once)."""
        if self._closed:
            raise SharedMemoryError(f"publisher {self.name!r} is closed")
        if self._feed is not None and self._feed is not feed:
            raise ValueError("this publisher already publishes another FeedHandler")
        feed.set_sink(self)
        self._feed = feed

    cdef int sink_added(self, Subscription sub) except -1:
        if self._closed or sub.sink_slot >= 0:
            return 0
        if (PyBytes_GET_SIZE(sub._pid_utf8) > PFSHM_PID_MAX
                or PyBytes_GET_SIZE(sub._outcome_key) > PFSHM_OUTCOME_MAX
                or len(sub.outcome.encode("utf-8")) > PFSHM_OUTCOME_MAX):
            self.n_refused += 1
            self._hdr.n_unpublished = <uint32_t>(len(self._unplaced) + self.n_refused)
            return 0
        if self._n_free == 0:
            self._unplaced.append(sub)
            self._hdr.n_unpublished = <uint32_t>(len(self._unplaced) + self.n_refused)
            return 0
        self._n_free -= 1
        self._place(sub, self._free[self._n_free])
        self._uncommitted = True
        self.sink_commit(0)
        return 0

    cdef int _place(self, Subscription sub, uint32_t i) except -1:
        """Give slot ``i`` to ``sub``: identity and current state, then the directory entry."""
        cdef pfshm_slot* slot = slot_at(self._slots, self._slot_size, i)
        cdef bytes outcome = sub.outcome.encode("utf-8")
        cdef uint64_t h
        cdef uint32_t j
        cdef int ci = (slot.lock >> 1) & 1
        cdef pfshm_copy* c
        self._gens[i] += 1
        c = pfshm_write_begin(slot, self._copy_size)
        c.gen = self._gens[i]
        c.pid_len = <uint16_t>PyBytes_GET_SIZE(sub._pid_utf8)
        memcpy(c.pid, PyBytes_AS_STRING(sub._pid_utf8), c.pid_len)
        c.outcome_len = <uint16_t>PyBytes_GET_SIZE(outcome)
        memcpy(c.outcome, PyBytes_AS_STRING(outcome), c.outcome_len)
        c.key_len = <uint16_t>PyBytes_GET_SIZE(sub._outcome_key)
        memcpy(c.key, PyBytes_AS_STRING(sub._outcome_key), c.key_len)
        self._write_fields(slot, c, sub, i, ci)
        pfshm_write_end(slot)
        self._owners[i] = sub
        sub.sink_slot = i
        h = pfshm_hash(c.pid, c.pid_len, c.key, c.key_len)
        pfshm_dir_begin(self._hdr)
        j = <uint32_t>(h & self._dir_mask)
        while self._dir[j] != 0:
            j = (j + 1) & self._dir_mask
        self._dir[j] = i + 1
        self._hdr.n_books += 1
        self._hdr.books_version += 1
        self._hdr.n_unpublished = <uint32_t>(len(self._unplaced) + self.n_refused)
        pfshm_dir_end(self._hdr)
        return 0

    cdef int sink_removed(self, Subscription sub) except -1:
        cdef Py_ssize_t i = sub.sink_slot
        cdef pfshm_slot* slot
        cdef pfshm_copy* c
        cdef SlotTexts* t
        cdef int k
        if self._closed:
            return 0
        if i < 0:
            if sub in self._unplaced:
                self._unplaced.remove(sub)
                self._hdr.n_unpublished = <uint32_t>(len(self._unplaced) + self.n_refused)
            return 0
        slot = slot_at(self._slots, self._slot_size, i)
        self._gens[i] += 1   # a reader holding the old generation now reads "gone"
        c = pfshm_write_begin(slot, self._copy_size)
        c.gen = self._gens[i]
        c.flags = 0
        c.n_bids = 0
        c.n_asks = 0
        pfshm_write_end(slot)
        for k in range(2):
            t = &self._texts[2 * i + k]
            Py_XDECREF(t.reason)
            Py_XDECREF(t.error)
            Py_XDECREF(t.book_text)
            Py_XDECREF(t.feed_text)
            memset(t, 0, sizeof(SlotTexts))
        self._owners[i] = None
        sub.sink_slot = -1
        pfshm_dir_begin(self._hdr)
        self._hdr.n_books -= 1
        self._hdr.books_version += 1
        self._dir_rebuild()
        pfshm_dir_end(self._hdr)
        self._free[self._n_free] = <uint32_t>i
        self._n_free += 1
        if self._unplaced:
            waiting = self._unplaced.pop(0)
            self._n_free -= 1
            self._place(<Subscription>waiting, self._free[self._n_free])
        self._uncommitted = True
        self.sink_commit(0)
        return 0

    cdef void _dir_rebuild(self) noexcept:
        """Re-insert every placed book (inside the directory seqlock; removals are rare)."""
        cdef uint32_t i, j
        cdef pfshm_copy* c
        memset(self._dir, 0, (<size_t>self._dir_mask + 1) * 4)
        for i in range(self._max_books):
            if self._owners[i] is None:
                continue
            c = pfshm_write_latest(slot_at(self._slots, self._slot_size, i), self._copy_size)
            j = <uint32_t>(pfshm_hash(c.pid, c.pid_len, c.key, c.key_len) & self._dir_mask)
            while self._dir[j] != 0:
                j = (j + 1) & self._dir_mask
            self._dir[j] = i + 1

    cdef void sink_publish(self, Subscription sub) noexcept:
        cdef Py_ssize_t i = sub.sink_slot
        cdef pfshm_slot* slot
        cdef pfshm_copy* c
        cdef int ci
        if i < 0 or self._closed:
            return
        slot = slot_at(self._slots, self._slot_size, i)
        ci = (slot.lock >> 1) & 1
        c = pfshm_write_begin(slot, self._copy_size)
        self._write_fields(slot, c, sub, i, ci)
        pfshm_write_end(slot)
        self._uncommitted = True

    cdef void _write_fields(self, pfshm_slot* slot, pfshm_copy* c, Subscription sub,
                            Py_ssize_t i, int ci) noexcept:
        """The book into copy ``c`` (index ``ci``) of its slot, inside the slot's write: from
        the Subscription's and its Book's C fields; the identity only when this copy still
        holds an older owner's (it was written two writes ago)."""
        cdef Book book = sub.book
        cdef uint32_t flags = PFSHM_OCCUPIED
        cdef pfshm_level* bids = pfshm_bids(c)
        cdef pfshm_level* asks = pfshm_asks(c, self._max_levels)
        cdef pfshm_copy* other
        cdef Py_ssize_t nb, na
        cdef const Level* src
        cdef SlotTexts* t = &self._texts[2 * i + ci]
        other = pfshm_copy_at(slot, self._copy_size, ci ^ 1)      # the last complete write
        if c.gen != self._gens[i]:                                 # identity, from _place's
            c.gen = self._gens[i]
            c.pid_len = other.pid_len
            c.outcome_len = other.outcome_len
            c.key_len = other.key_len
            memcpy(c.pid, other.pid, PFSHM_PID_MAX)
            memcpy(c.outcome, other.outcome, PFSHM_OUTCOME_MAX)
            memcpy(c.key, other.key, PFSHM_OUTCOME_MAX)
        c.publishes = (other.publishes if other.gen == self._gens[i] else 0) + 1
        if book._valid:
            flags |= PFSHM_VALID
        if book._has_baseline:
            flags |= PFSHM_HAS_BASELINE
        if sub._locally_stale:
            flags |= PFSHM_LOCALLY_STALE
        c.flags = flags
        c.book_state = <unsigned char>sub._book_state
        c.feed_state = <unsigned char>sub._feed_state
        c.seq = book._seq
        # only the levels that changed are stored (pfshm_store_levels: the lines readers hold
        # stay valid in their caches); levels past max_levels are not published
        src = side_view(book, SIDE_BID, &nb)
        if nb > self._max_levels:
            nb = self._max_levels
        pfshm_store_levels(bids, <const pfshm_level*>src, nb)
        src = side_view(book, SIDE_ASK, &na)
        if na > self._max_levels:
            na = self._max_levels
        pfshm_store_levels(asks, <const pfshm_level*>src, na)
        c.n_bids = <uint16_t>nb
        c.n_asks = <uint16_t>na
        c.total_bids = <uint32_t>book.side_count(SIDE_BID)
        c.total_asks = <uint32_t>book.side_count(SIDE_ASK)
        if nb:
            c.top_bid = bids[0]   # bids[] is complete now: read back from our own slot
        else:
            c.top_bid.key = 0
            c.top_bid.size = 0.0
        if na:
            c.top_ask = asks[0]
        else:
            c.top_ask.key = 0
            c.top_ask.size = 0.0
        c.exchange_ts_ms = sub._exchange_ts_ms
        c.ingest_ts_ms = sub._ingest_ts_ms
        c.last_frame_ns = sub.last_frame_ns
        c.stale_after_ms = sub._stale_after_ms
        put_text(&t.reason, None if book._valid else sub._invalid_reason, c.reason,
                 &c.reason_len, PFSHM_TEXT_MAX)
        put_text(&t.error, sub.last_error, c.error, &c.error_len, PFSHM_ERROR_MAX)
        put_text(&t.book_text, sub._book_state_text, c.book_text, &c.book_text_len,
                 PFSHM_TEXT_MAX)
        put_text(&t.feed_text, sub._feed_state_text, c.feed_text, &c.feed_text_len,
                 PFSHM_TEXT_MAX)
        self.n_publishes += 1

    cdef void sink_commit(self, int64_t now_ns) noexcept:
        if self._closed:
            return
        if now_ns > self._heartbeat:
            self._heartbeat = now_ns
            pfshm_store_heartbeat(self._hdr, now_ns)
        if self._uncommitted:
            self._uncommitted = False
            self.n_commits += 1
            if pfshm_publish_changes(self._hdr, self._rpage, self._protocol):
                self._wake()

    cdef void _wake(self) noexcept:
        pfshm_futex_wake(&self._hdr.changes)
        self.n_wakes += 1

    cdef int sink_closed(self, str reason) except -1:
        self._feed = None
        return self._shutdown(reason)

    # -- public ---------------------------------------------------------------------------------
    def heartbeat(self):
        """Refresh the heartbeat now. A ``Client`` does it from its maintenance tick (through
        ``FeedHandler.check_stale``) and every publishing flush; call this (or ``check_stale``)
        at least every ``heartbeat_timeout / 4`` when driving a FeedHandler by hand."""
        if not self._closed:
            self.sink_commit(pfshm_now_ns())

    def close(self, str reason not None = "publisher closed"):
        """Mark every book invalid and the region closed (readers see ``reason``), wake every
        reader, unlink the region (if the name is still ours), detach from the FeedHandler.
        Idempotent."""
        if self._feed is not None:
            feed = self._feed
            self._feed = None
            feed.close_sink(reason)  # calls sink_closed -> _shutdown
        self._shutdown(reason)

    cdef int _shutdown(self, str reason) except -1:
        cdef uint32_t i
        cdef int ci
        cdef pfshm_slot* slot
        cdef pfshm_copy* c
        cdef bytes text
        cdef Py_ssize_t n
        if self._closed:
            return 0
        self._closed = True
        for i in range(self._max_books):
            sub = self._owners[i]
            if sub is not None:   # its last state, invalid, reason publisher_closed
                slot = slot_at(self._slots, self._slot_size, i)
                ci = (slot.lock >> 1) & 1
                c = pfshm_write_begin(slot, self._copy_size)
                self._write_fields(slot, c, <Subscription>sub, i, ci)
                c.flags &= ~PFSHM_VALID
                memcpy(c.reason, b"publisher_closed", 16)
                c.reason_len = 16
                pfshm_write_end(slot)
                (<Subscription>sub).sink_slot = -1
        text = reason.encode("utf-8")[:PFSHM_TEXT_MAX]
        n = len(text)
        memcpy(self._hdr.close_reason, PyBytes_AS_STRING(text), n)
        self._hdr.close_reason_len = <uint32_t>n
        pfshm_store_state(self._hdr, PFSHM_CLOSED)
        pfshm_bump_changes(self._hdr)
        self._wake()  # always: sleepers must learn it now, not at their next liveness check
        _unlink_if_ours(PyBytes_AS_STRING(self._path_c), self._dev, self._ino)
        self._owners = [None] * self._max_books
        self._unplaced = []
        self._release()
        return 0

    @property
    def closed(self):
        return self._closed

    @property
    def max_books(self):
        return self._max_books

    @property
    def max_levels(self):
        """Levels per side each slot holds (the top ones of a deeper book)."""
        return self._max_levels

    @property
    def n_books(self):
        """Books placed in the region."""
        return 0 if self._closed else self._hdr.n_books

    @property
    def n_unpublished(self):
        """Books the FeedHandler holds that are not in the region (no free slot, or an identity
        longer than the slot's fields)."""
        return len(self._unplaced) + self.n_refused

    @property
    def stats(self):
        """publishes (slot writes), commits (publishing flushes), wakes (FUTEX_WAKE calls),
        books, unpublished."""
        return {"publishes": self.n_publishes, "commits": self.n_commits, "wakes": self.n_wakes,
                "books": self.n_books, "unpublished": self.n_unpublished}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else f"{self.n_books} books"
        return f"Publisher({self.name!r}, {state}, max_books={self._max_books}, max_levels={self._max_levels})"


cdef void _unlink_if_ours(const char* path, uint64_t dev, uint64_t ino) noexcept:
    """Unlink ``path`` only if it still names our file (never a successor's region)."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if st.st_dev == dev and st.st_ino == ino:
            os.unlink(path)
    except BaseException:
        pass


# ----------------------------------------------------------------------------------------------
# test and bench helpers
# ----------------------------------------------------------------------------------------------

def _hammer(Publisher pub not None, Subscription sub not None, Py_ssize_t n, Py_ssize_t levels,
            int64_t seq0=1, int gap=0):
    """Write ``sub``'s slot ``n`` times through the publisher's seqlock, ``gap`` pause
    instructions apart (0: back to back, which starves readers, as any seqlock does): write k
    has seq = seq0 + k and ``levels`` levels per side whose size is that seq. A stress test's
    torn-read detector: a consistent read sees every size equal to its seq. Returns ns elapsed."""
    cdef Py_ssize_t i = sub.sink_slot, k, j
    cdef int g
    cdef pfshm_slot* slot
    cdef pfshm_copy* c
    cdef pfshm_level* bids
    cdef pfshm_level* asks
    cdef int64_t t0, seq
    if i < 0 or pub._closed:
        raise ValueError("the subscription has no slot in this publisher")
    if not 1 <= levels <= pub._max_levels:
        raise ValueError(f"levels: must be in [1, {pub._max_levels}]")
    slot = slot_at(pub._slots, pub._slot_size, i)
    t0 = pfshm_now_ns()
    with nogil:
        for k in range(n):
            seq = seq0 + k
            c = pfshm_write_begin(slot, pub._copy_size)
            bids = pfshm_bids(c)
            asks = pfshm_asks(c, pub._max_levels)
            c.gen = pub._gens[i]
            c.seq = seq
            c.flags = PFSHM_OCCUPIED | PFSHM_VALID | PFSHM_HAS_BASELINE
            for j in range(levels):
                bids[j].key = -(500_000_000 - j * 1_000_000)
                bids[j].size = <double>seq
                asks[j].key = 510_000_000 + j * 1_000_000
                asks[j].size = <double>seq
            c.n_bids = <uint16_t>levels
            c.n_asks = <uint16_t>levels
            c.total_bids = <uint32_t>levels
            c.total_asks = <uint32_t>levels
            c.top_bid = bids[0]
            c.top_ask = asks[0]
            pfshm_write_end(slot)
            if (k & 1023) == 0:
                pfshm_bump_changes(pub._hdr)
            for g in range(gap):
                pfshm_relax()
    pfshm_bump_changes(pub._hdr)
    return pfshm_now_ns() - t0
