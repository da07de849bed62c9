# cython: language_level=3
"""The relay consumer's receive path: the NATS server-to-client protocol parsed in C, and the
relay's batches of Parsec frames fed to the client's FeedHandler in place.

Why not nats-py's subscription callbacks for this: they cost a Python ``Msg`` object, an asyncio
queue round trip and a coroutine per NATS message, and nats-py's parser copies its buffer per
message (~4 µs per small message and ~40 µs per 20 KB one on this machine, measured with
nats-server 2.9), which alone would cap a consumer below 1 M deltas/s. Here a read of the
socket is parsed in one call, and every message of a *fast* subscription (a book stream whose
relay instance and next message number are known) goes straight to ``FeedHandler.feed_ptr``,
frame by frame, with no Python object.

Everything else is handed back to Python, in order, from :meth:`NatsFeedReader.receive`:
``(OP_MSG, sid, payload)`` for a message of a subscription that is not fast or that is not the
next one expected (a hole, another relay instance, a batch that is not a STREAM batch: the
caller decides), and ``(OP_PING|OP_PONG|OP_INFO|OP_ERR|OP_OK, line)`` for the protocol's other
operations. A subscription with anything unexpected is turned slow for the rest of the read, so
Python sees its messages in order. ``flush()`` of the feed handler is the caller's, once per read.

Batch layout: ``parsec_fast.relay.wire`` (little-endian header, then ``u32`` length + frame).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.time cimport monotonic_ns
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport realloc, free
from libc.string cimport memchr, memcpy, memset

from parsec_fast._feed cimport FeedHandler

cdef enum:
    HEADER_SIZE = 26
    VERSION = 1
    KIND_STREAM = 1
    MAX_CONTROL_LINE = 4096
    LATENCY_RING = 4096

OP_MSG = 1
OP_PING = 2
OP_PONG = 3
OP_INFO = 4
OP_ERR = 5
OP_OK = 6


class NatsProtocolError(ValueError):
    """The server sent something that is not the NATS protocol."""


ctypedef struct SidState:
    bint fast             # messages go to the feed handler when epoch and rseq match
    uint64_t epoch
    uint64_t next_rseq


cdef inline uint32_t get_u32(const char* p) noexcept:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline uint64_t get_u64(const char* p) noexcept:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline bint is_space(char c) noexcept:
    return c == b' ' or c == b'\t'


cdef Py_ssize_t parse_uint(const char* p, Py_ssize_t n) noexcept:
    """A decimal token, or -1."""
    cdef Py_ssize_t i, v = 0
    if n <= 0 or n > 18:
        return -1
    for i in range(n):
        if not (b'0' <= p[i] <= b'9'):
            return -1
        v = v * 10 + (p[i] - 48)
    return v


cdef class NatsFeedReader:
    """``NatsFeedReader(feed=None, max_frame_size=8 MiB, sample_every=16)``: see the module
    docstring. Without a feed handler every message is handed back."""

    cdef FeedHandler _feed
    cdef bytearray _buf
    cdef SidState* _states
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _max_frame
    #: ``tap(frame: bytes, mono_ns: int, last: bool)`` for every frame fed (recording), or None.
    cdef public object tap
    cdef readonly int64_t messages
    cdef readonly int64_t fast_messages
    cdef readonly int64_t frames
    cdef readonly int64_t bytes_in
    cdef readonly int64_t last_receive_ns
    cdef int64_t _ring[LATENCY_RING]
    cdef Py_ssize_t _ring_n
    cdef Py_ssize_t _ring_pos
    cdef int _sample_every
    cdef int _countdown

    def __init__(self, FeedHandler feed=None, Py_ssize_t max_frame_size=8 * 1024 * 1024,
                 int sample_every=16):
        self._feed = feed
        self._buf = bytearray()
        self._max_frame = max_frame_size
        self._sample_every = sample_every if sample_every > 0 else 1
        self._countdown = self._sample_every

    def __dealloc__(self):
        free(self._states)

    # -- subscriptions -----------------------------------------------------------------------
    cdef SidState* _state(self, Py_ssize_t sid) except NULL:
        cdef Py_ssize_t cap
        cdef SidState* grown
        if sid < 0:
            raise ValueError(f"sid must be >= 0, got {sid}")
        if sid >= self._cap:
            cap = max(64, self._cap * 2, sid + 1)
            grown = <SidState*>realloc(self._states, cap * sizeof(SidState))
            if grown == NULL:
                raise MemoryError()
            memset(grown + self._cap, 0, (cap - self._cap) * sizeof(SidState))
            self._states = grown
            self._cap = cap
        return &self._states[sid]

    def set_fast(self, Py_ssize_t sid, uint64_t epoch, uint64_t next_rseq):
        """Feed subscription ``sid``'s STREAM batches of relay ``epoch`` in C while their
        message numbers follow on from ``next_rseq``."""
        cdef SidState* st = self._state(sid)
        st.fast = True
        st.epoch = epoch
        st.next_rseq = next_rseq

    def set_slow(self, Py_ssize_t sid):
        """Hand every message of ``sid`` back to Python (held, inbox, heartbeats, unknown)."""
        self._state(sid).fast = False

    def state(self, Py_ssize_t sid):
        """``(fast, epoch, next_rseq)`` of ``sid`` (tests)."""
        cdef SidState* st = self._state(sid)
        return (bool(st.fast), st.epoch, st.next_rseq)

    def reset(self):
        """Forget buffered input and every subscription's state (a new connection)."""
        del self._buf[:]
        if self._states != NULL:
            memset(self._states, 0, self._cap * sizeof(SidState))

    # -- input -------------------------------------------------------------------------------
    def receive(self, data):
        """Parse ``data`` (bytes) after any buffered partial operation; feed fast messages;
        return the items for Python (a list, in order) or None. Raises NatsProtocolError for
        input that is not the protocol, and whatever a feed-handler callback raises; after an
        exception the connection must be dropped (and :meth:`reset` called)."""
        cdef const char* p
        cdef Py_ssize_t n, consumed
        cdef list items = []
        cdef int64_t now = monotonic_ns()
        self.last_receive_ns = now
        self.bytes_in += len(data)
        if PyByteArray_GET_SIZE(self._buf) == 0 and type(data) is bytes:
            # the usual case: parse the read in place, keep only a partial tail
            p = PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
            consumed = self._parse(p, n, items, now)
            if consumed < n:
                self._buf.extend(data[consumed:])
        else:
            self._buf.extend(data)
            p = PyByteArray_AS_STRING(self._buf)
            n = PyByteArray_GET_SIZE(self._buf)
            consumed = self._parse(p, n, items, now)
            if consumed > 0:
                del self._buf[:consumed]
        return items if items else None

    cdef Py_ssize_t _parse(self, const char* p, Py_ssize_t n, list items,
                           int64_t now) except -1:
        """Parse the complete operations in p[0:n]; return the bytes consumed."""
        cdef Py_ssize_t pos = 0, eol, ln, i, start, size, sid, tok_n, end
        cdef Py_ssize_t toks[5][2]
        cdef const char* line
        cdef const char* nl
        cdef char c0
        while pos < n:
            nl = <const char*>memchr(p + pos, b'\n', min(n - pos, MAX_CONTROL_LINE))
            if nl == NULL:
                if n - pos >= MAX_CONTROL_LINE:
                    raise NatsProtocolError(
                        f"no end of line within {MAX_CONTROL_LINE} bytes: "
                        f"{PyBytes_FromStringAndSize(p + pos, 40)!r}")
                return pos
            eol = nl - p
            if eol == pos or p[eol - 1] != b'\r':
                raise NatsProtocolError("a protocol line not ended by CRLF")
            eol -= 1
            line = p + pos
            ln = eol - pos
            c0 = line[0]
            if (c0 == b'M' or c0 == b'm') and ln > 4 and is_space(line[3]):
                # MSG <subject> <sid> [reply-to] <#bytes>
                tok_n = 0
                i = pos + 4
                while i < eol and tok_n < 5:
                    while i < eol and is_space(p[i]):
                        i += 1
                    if i >= eol:
                        break
                    start = i
                    while i < eol and not is_space(p[i]):
                        i += 1
                    toks[tok_n][0] = start
                    toks[tok_n][1] = i - start
                    tok_n += 1
                sid = size = -1
                if 3 <= tok_n <= 4:
                    sid = parse_uint(p + toks[1][0], toks[1][1])
                    size = parse_uint(p + toks[tok_n - 1][0], toks[tok_n - 1][1])
                if sid < 0 or size < 0:
                    raise NatsProtocolError(
                        f"bad MSG line {PyBytes_FromStringAndSize(line, min(ln, 120))!r}")
                end = eol + 2 + size
                if end + 2 > n:
                    return pos  # the payload is not all here yet
                if p[end] != b'\r' or p[end + 1] != b'\n':
                    raise NatsProtocolError("MSG payload not followed by CRLF")
                pos = end + 2
                self.messages += 1
                self._message(sid, p + eol + 2, size, items, now)
                continue
            pos = eol + 2
            if (c0 == b'P' or c0 == b'p') and ln >= 4 and (line[1] == b'I' or line[1] == b'i'):
                items.append((OP_PING, None))
            elif (c0 == b'P' or c0 == b'p') and ln >= 4 and (line[1] == b'O' or line[1] == b'o'):
                items.append((OP_PONG, None))
            elif c0 == b'I' or c0 == b'i':
                items.append((OP_INFO, PyBytes_FromStringAndSize(line, ln)))
            elif c0 == b'-':
                items.append((OP_ERR, PyBytes_FromStringAndSize(line, ln)))
            elif c0 == b'+':
                items.append((OP_OK, None))
            else:
                raise NatsProtocolError(
                    f"unknown operation {PyBytes_FromStringAndSize(line, min(ln, 40))!r}")
        return pos

    cdef int _message(self, Py_ssize_t sid, const char* b, Py_ssize_t size, list items,
                      int64_t now) except -1:
        cdef SidState* st = NULL
        cdef uint32_t count, flen, k, seen
        cdef Py_ssize_t pos
        if self._feed is not None and sid < self._cap:
            st = &self._states[sid]
        if st == NULL or not st.fast or size < HEADER_SIZE or b[0] != b'P' or b[1] != b'F' \
                or b[2] != VERSION or b[3] != KIND_STREAM or get_u64(b + 4) != st.epoch \
                or get_u64(b + 12) != st.next_rseq:
            if st != NULL:
                st.fast = False   # Python decides, and sees the rest of this read in order
            items.append((OP_MSG, sid, PyBytes_FromStringAndSize(b, size)))
            return 0
        # validate the whole batch before feeding any of it
        count = get_u32(b + 20)
        pos = HEADER_SIZE + (<uint16_t>(<unsigned char>b[24] | (<unsigned char>b[25] << 8)))
        seen = 0
        while seen < count and pos + 4 <= size:
            flen = get_u32(b + pos)
            if flen > self._max_frame or flen > size - pos - 4:
                break
            pos += 4 + flen
            seen += 1
        if seen != count or pos != size:
            st.fast = False
            items.append((OP_MSG, sid, PyBytes_FromStringAndSize(b, size)))
            return 0
        st.next_rseq += 1
        self.fast_messages += 1
        pos = HEADER_SIZE + (<uint16_t>(<unsigned char>b[24] | (<unsigned char>b[25] << 8)))
        for k in range(count):
            flen = get_u32(b + pos)
            if self.tap is not None:
                self.tap(PyBytes_FromStringAndSize(b + pos + 4, flen), now, k + 1 == count)
            self._feed.feed_ptr(b + pos + 4, flen, None, now)
            pos += 4 + flen
            self.frames += 1
            self._countdown -= 1
            if self._countdown == 0:
                self._countdown = self._sample_every
                self._ring[self._ring_pos] = monotonic_ns() - now
                self._ring_pos = (self._ring_pos + 1) % LATENCY_RING
                if self._ring_n < LATENCY_RING:
                    self._ring_n += 1
        return 0

    def count_frames(self, Py_ssize_t n):
        """Count ``n`` frames fed by Python (the slow path), for :attr:`frames`."""
        self.frames += n

    def latency_samples(self):
        """Sampled receive-to-applied latencies (ns) of fast frames, oldest first: from the
        read's arrival to the end of the frame's apply."""
        cdef Py_ssize_t i, start = (self._ring_pos - self._ring_n + LATENCY_RING) % LATENCY_RING
        return [self._ring[(start + i) % LATENCY_RING] for i in range(self._ring_n)]
