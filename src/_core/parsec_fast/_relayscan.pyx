# cython: language_level=3
"""The relay's per-frame work on its upstream connection: which book a frame belongs to, and
that book's outgoing batch.

:class:`RelayTap` is installed as the upstream session's recording tap
(``tap(payload, mono_ns, last_in_buffer)``, see ``_listener.pyx``), so it sees every text frame
of the Parsec connection, in order, just before the relay's own feed handler applies it. For a
snapshot or delta the existing frame scanner (``_scan.pxd``) reads ``parsec_id`` and ``outcome``
in place; the book's :class:`BookOut` is found by those raw bytes (``parsec_id + NUL +
ASCII-lowercased outcome``, the feed handler's own case folding) and the frame is queued on it
by reference (no copy). Anything the scanner does not route (activity, resync_required,
slow_reader, an escaped id...) is handed to ``route_other(payload)``, which parses it with
orjson and returns the BookOut or None; so frames of one book keep their upstream order.

The last frame of a read (``last_in_buffer``) calls ``flush_now()``: the relay publishes every
dirty book's batch at once (one NATS message per book, see ``parsec_fast.relay.wire`` for the
layout :meth:`BookOut.encode` writes), before its own feed handler applies that last frame, so
the frame leaves without waiting for that apply or an event-loop round. Any other first queued
frame calls ``schedule()`` once, a safety net for a read that does not end on a text frame and
for frames the relay injects itself.

Cost, measured by ``bench/bench_relay.py``: one scan (the same scanner the feed handler runs)
plus a bytes key and a dict lookup per frame.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from parsec_fast._scan cimport SCAN_DELTA, SCAN_SNAPSHOT, FrameScanner

cdef enum:
    HEADER_SIZE = 26     # wire.HEADER_SIZE
    VERSION = 1          # wire.VERSION
    KIND_STREAM = 1      # wire.Kind.STREAM

SCAN_KINDS = {SCAN_DELTA: "delta", SCAN_SNAPSHOT: "snapshot"}


cdef inline void put_u16(char* p, uint16_t v) noexcept:
    memcpy(p, &v, 2)     # little-endian hosts only (x86_64, aarch64): see wire.py


cdef inline void put_u32(char* p, uint32_t v) noexcept:
    memcpy(p, &v, 4)


cdef inline void put_u64(char* p, uint64_t v) noexcept:
    memcpy(p, &v, 8)


cdef inline Py_ssize_t decimal_len(Py_ssize_t v) noexcept:
    cdef Py_ssize_t n = 1
    while v >= 10:
        v //= 10
        n += 1
    return n


cdef inline char* put_decimal(char* p, Py_ssize_t v) noexcept:
    """Write ``v`` in decimal at ``p``; returns the position after it."""
    cdef Py_ssize_t n = decimal_len(v), i
    for i in range(n - 1, -1, -1):
        p[i] = <char>(48 + v % 10)
        v //= 10
    return p + n


cdef inline Py_ssize_t batch_end(list frames, Py_ssize_t i, Py_ssize_t n, Py_ssize_t max_body,
                                 Py_ssize_t* size) except -1:
    """Frames ``[i, j)`` make one stream message: as many as fit in ``max_body`` bytes, at least
    one. Returns ``j``; ``size`` gets the message's length."""
    cdef Py_ssize_t j = i + 1
    cdef Py_ssize_t total = HEADER_SIZE + 4 + PyBytes_GET_SIZE(<bytes>frames[i])
    while j < n and total + 4 + PyBytes_GET_SIZE(<bytes>frames[j]) <= max_body:
        total += 4 + PyBytes_GET_SIZE(<bytes>frames[j])
        j += 1
    size[0] = total
    return j


cdef inline Py_ssize_t write_batch(char* m, uint64_t epoch, uint64_t rseq, list frames,
                                   Py_ssize_t i, Py_ssize_t j) except -1:
    """Write frames ``[i, j)`` at ``m`` as one stream message (``wire`` layout, kind STREAM);
    returns its length."""
    cdef Py_ssize_t pos = HEADER_SIZE, flen
    cdef bytes frame
    m[0] = b'P'
    m[1] = b'F'
    m[2] = VERSION
    m[3] = KIND_STREAM
    put_u64(m + 4, epoch)
    put_u64(m + 12, rseq)
    put_u32(m + 20, <uint32_t>(j - i))
    put_u16(m + 24, 0)
    while i < j:
        frame = <bytes>frames[i]
        flen = PyBytes_GET_SIZE(frame)
        put_u32(m + pos, <uint32_t>flen)
        memcpy(m + pos + 4, PyBytes_AS_STRING(frame), flen)
        pos += 4 + flen
        i += 1
    return pos


cdef bytes book_key_bytes(const char* pid, Py_ssize_t pid_len, const char* outcome,
                          Py_ssize_t outcome_len):
    """``parsec_id + NUL + outcome`` with the outcome's ASCII letters lowercased
    (``rules.fold_outcome``)."""
    cdef bytes key = PyBytes_FromStringAndSize(NULL, pid_len + 1 + outcome_len)
    cdef char* k = PyBytes_AS_STRING(key)
    cdef Py_ssize_t i
    cdef unsigned char c
    memcpy(k, pid, pid_len)
    k[pid_len] = 0
    for i in range(outcome_len):
        c = <unsigned char>outcome[i]
        k[pid_len + 1 + i] = <char>(c + 32 if 65 <= c <= 90 else c)
    return key


def key_of(str parsec_id not None, str outcome not None):
    """The routing key of a book, as :class:`RelayTap` computes it from a frame's raw bytes."""
    pid = parsec_id.encode("utf-8")
    out = outcome.encode("utf-8")
    return book_key_bytes(pid, len(pid), out, len(out))


cdef class BookOut:
    """One relayed book: its NATS subject, its message counter and the frames waiting to be
    published. ``rseq`` counts the messages published (or meant to be) on the subject."""

    cdef readonly str parsec_id
    cdef readonly str outcome
    cdef readonly bytes subject
    cdef readonly bytes key
    cdef readonly uint64_t rseq
    cdef readonly int64_t frames_out
    cdef readonly int64_t messages_out
    #: Raw bytes of the last upstream snapshot of this book (its metadata: title, tick size...).
    cdef public object last_snapshot
    cdef list _frames
    cdef Py_ssize_t _bytes
    cdef bint _dirty

    def __init__(self, str parsec_id not None, str outcome not None, bytes subject not None):
        self.parsec_id = parsec_id
        self.outcome = outcome
        self.subject = subject
        self.key = key_of(parsec_id, outcome)
        self._frames = []

    @property
    def pending(self):
        """Frames waiting to be published."""
        return len(self._frames)

    cdef int _queue(self, bytes payload) except -1:
        self._frames.append(payload)
        self._bytes += PyBytes_GET_SIZE(payload)
        return 0

    def encode(self, uint64_t epoch, Py_ssize_t max_body):
        """Take the waiting frames and return them as stream messages (``wire`` layout, kind
        STREAM), each at most ``max_body`` bytes unless a single frame is bigger (it then goes
        alone: the caller checks against the server's max_payload). Each message takes the next
        ``rseq``."""
        cdef list out = []
        cdef list frames = self._frames
        cdef Py_ssize_t i = 0, j, n = len(frames), size
        cdef bytes body
        self._frames = []
        self._bytes = 0
        self._dirty = False
        while i < n:
            j = batch_end(frames, i, n, max_body, &size)
            body = PyBytes_FromStringAndSize(NULL, size)
            self.rseq += 1
            write_batch(PyBytes_AS_STRING(body), epoch, self.rseq, frames, i, j)
            i = j
            out.append(body)
        self.frames_out += n
        self.messages_out += len(out)
        return out

    def skip(self):
        """Take one rseq for a message that could not be published (consumers then see the
        hole in the subject's numbering and resync)."""
        self.rseq += 1

    def __repr__(self):
        return f"BookOut({self.parsec_id!r}, {self.outcome!r}, rseq={self.rseq})"


cdef class RelayTap:
    """``RelayTap(route_other, schedule, flush_now=None)``: the upstream session's tap (see the
    module docstring). ``route_other(payload) -> BookOut | None`` for frames the scanner does
    not route; ``schedule()`` when a batch starts (a book got its first waiting frame);
    ``flush_now()`` after the last frame of a read was queued."""

    cdef FrameScanner _scanner
    cdef dict _books
    cdef list _dirty
    cdef object _route_other
    cdef object _schedule
    cdef object _flush_now
    cdef bint _scheduled
    cdef readonly int64_t frames
    cdef readonly int64_t routed
    cdef readonly int64_t unrouted
    cdef readonly int64_t others

    def __init__(self, route_other not None, schedule not None, flush_now=None):
        self._scanner = FrameScanner()
        self._books = {}
        self._dirty = []
        self._route_other = route_other
        self._schedule = schedule
        self._flush_now = flush_now

    def __call__(self, bytes payload not None, mono_ns, bint last_in_buffer):
        cdef FrameScanner sc = self._scanner
        cdef int kind
        cdef object found = None
        cdef BookOut out
        self.frames += 1
        kind = sc.scan(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
        if (kind == SCAN_DELTA or kind == SCAN_SNAPSHOT) and sc.r.has_outcome:
            found = self._books.get(book_key_bytes(sc.r.parsec_id, sc.r.parsec_id_len,
                                                   sc.r.outcome, sc.r.outcome_len))
        else:
            self.others += 1
            found = self._route_other(payload)
        if found is not None:
            out = <BookOut?>found
            self.routed += 1
            if kind == SCAN_SNAPSHOT:
                out.last_snapshot = payload
            self._append(out, payload, last_in_buffer and self._flush_now is not None)
        else:
            self.unrouted += 1
        if last_in_buffer and self._dirty and self._flush_now is not None:
            self._flush_now()

    cdef int _append(self, BookOut out, bytes payload, bint flushing) except -1:
        out._queue(payload)
        if not out._dirty:
            out._dirty = True
            self._dirty.append(out)
        if not self._scheduled and not flushing:
            self._scheduled = True
            self._schedule()
        return 0

    def inject(self, BookOut out not None, bytes frame not None):
        """Queue a frame of the relay's own (e.g. ``resync_required``) on ``out``, after the
        upstream frames already waiting."""
        self._append(out, frame, False)

    def publish_batch(self, uint64_t epoch, Py_ssize_t max_body, Py_ssize_t max_payload):
        """Every dirty book's waiting frames as NATS ``PUB`` commands in ONE buffer (one write
        for the whole read, not one per book): ``(data, messages, dropped)``. Each book's frames
        are split into STREAM messages of at most ``max_body`` bytes (a single bigger frame goes
        alone); a message over ``max_payload`` is dropped, its rseq taken (consumers see the
        hole and resync). The books are clean afterwards, as after :meth:`take_dirty`."""
        cdef list dirty = []
        cdef BookOut out
        cdef list frames
        cdef Py_ssize_t total = 0, i, j, n, size, body_len, pos, messages = 0, dropped = 0
        cdef Py_ssize_t subj_len
        cdef bytes data
        cdef char* b
        cdef char* m
        # pass 1: the books (each once, even if a direct encode() left one listed twice) and
        # the size of everything
        for out in self.take_dirty():
            if not out._dirty:
                continue
            out._dirty = False
            dirty.append(out)
            frames = out._frames
            n = len(frames)
            subj_len = PyBytes_GET_SIZE(out.subject)
            i = 0
            while i < n:
                j = batch_end(frames, i, n, max_body, &size)
                if size <= max_payload:
                    total += 4 + subj_len + 1 + decimal_len(size) + 2 + size + 2
                i = j
        data = PyBytes_FromStringAndSize(NULL, total)
        b = PyBytes_AS_STRING(data)
        pos = 0
        # pass 2: write them
        for out in dirty:
            frames = out._frames
            n = len(frames)
            subj_len = PyBytes_GET_SIZE(out.subject)
            i = 0
            while i < n:
                j = batch_end(frames, i, n, max_body, &size)
                out.rseq += 1
                if size > max_payload:
                    dropped += 1
                    i = j
                    continue
                memcpy(b + pos, b"PUB ", 4)
                memcpy(b + pos + 4, PyBytes_AS_STRING(out.subject), subj_len)
                b[pos + 4 + subj_len] = b' '
                m = put_decimal(b + pos + 5 + subj_len, size)
                m[0] = b'\r'
                m[1] = b'\n'
                m += 2
                body_len = write_batch(m, epoch, out.rseq, frames, i, j)
                i = j
                m[body_len] = b'\r'
                m[body_len + 1] = b'\n'
                pos = (m - b) + body_len + 2
                messages += 1
                out.messages_out += 1
            out.frames_out += n
            out._frames = []
            out._bytes = 0
            out._dirty = False
        assert pos == total, (pos, total)
        return data, messages, dropped

    def take_dirty(self):
        """The books with waiting frames (each once), in the order they got them; the next
        queued frame schedules again."""
        dirty = self._dirty
        self._dirty = []
        self._scheduled = False
        return dirty

    def add_book(self, str parsec_id not None, str outcome not None, bytes subject not None):
        """Relay this book (idempotent): its BookOut."""
        key = key_of(parsec_id, outcome)
        out = self._books.get(key)
        if out is None:
            out = BookOut(parsec_id, outcome, subject)
            self._books[key] = out
        return out

    def remove_book(self, str parsec_id not None, str outcome not None):
        """Stop relaying this book; its BookOut (None if it was not relayed)."""
        return self._books.pop(key_of(parsec_id, outcome), None)

    def book(self, str parsec_id not None, str outcome not None):
        """The BookOut of a relayed book, or None."""
        return self._books.get(key_of(parsec_id, outcome))

    def books(self):
        """Every relayed book's BookOut."""
        return list(self._books.values())

    def classify(self, bytes payload not None):
        """What the tap reads of a frame: ``(kind, parsec_id, outcome, server_seq)`` for a
        snapshot or delta the scanner understands (kind ``"snapshot"`` / ``"delta"``), else None
        (tests and the per-frame cost measurement)."""
        cdef FrameScanner sc = self._scanner
        cdef int kind = sc.scan(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
        if (kind != SCAN_DELTA and kind != SCAN_SNAPSHOT) or not sc.r.has_outcome:
            return None
        return (SCAN_KINDS[kind],
                PyBytes_FromStringAndSize(sc.r.parsec_id, sc.r.parsec_id_len).decode("utf-8"),
                PyBytes_FromStringAndSize(sc.r.outcome, sc.r.outcome_len).decode("utf-8"),
                sc.r.server_seq)
