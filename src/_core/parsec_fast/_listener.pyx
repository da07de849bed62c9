"""The native picows listener: hands every text frame's payload to the FeedHandler in place.

A Python ``WSListener`` costs ~0.5 µs per frame before doing any work (PERF-NOTES); this one
reads the frame's C fields (type, fin, payload pointer and size, last-in-buffer) directly, so
a delta goes from the socket buffer to the book without a Python object.

What it does per frame:
* TEXT with fin: ``FeedHandler.feed_ptr(payload_ptr, payload_size)`` (zero copy).
* TEXT without fin, then CONTINUATION frames: reassembled into one buffer, fed when fin arrives.
  The reassembled message is capped at ``max_message_size`` bytes: past it the buffer is dropped,
  the session is told (``message_too_large``) and every later frame of this connection is
  ignored, so a peer cannot make the client buffer an endless message. (picows caps one frame at
  its ``max_frame_size``, which the session sets to the same value.)
* BINARY: the protocol is text-only; reported to the session as a protocol problem.
* PING: answered with a PONG carrying the same payload (picows may also do this itself).
* CLOSE: answered and the transport disconnected; the session sees on_ws_disconnected.
* last frame of a read batch: ``FeedHandler.flush()`` (one coalesced "book updated" per book).

Recording tap: with ``tap`` set, every complete text message is passed to
``tap(payload: bytes, mono_ns: int, last_in_buffer: bool)`` just before it is fed (one bytes
object per frame, which the orjson path then reuses), so a recorded session runs on this same
native path.

Timing: the clock is read once when a read batch starts (``_batch_start_ns``: when the batch's
bytes were read; the feed handler stores it per book as ``Subscription.last_frame_ns``, which
``BookUpdated.read_ns`` reports) and once when it ends (``last_frame_ns``, for dead-connection
detection). Every ``sample_every``-th frame, the read-to-apply latency (from the batch's read to
the end of this frame's apply, so it includes waiting behind earlier frames of the batch) is
recorded into a :class:`~parsec_fast._histogram.LatencyHistogram` (fixed memory, the whole run;
the session passes one histogram to all its connections' listeners).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.time cimport monotonic_ns
from libc.stdint cimport int64_t

from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from parsec_fast._feed cimport FeedHandler
from parsec_fast._histogram cimport LatencyHistogram


cdef class FeedListener(WSListener):
    """``FeedListener(feed, session, sample_every=16, max_message_size=8 MiB, tap=None,
    histogram=None)``.

    ``session`` receives ``transport_connected(transport)``, ``transport_disconnected()``,
    ``transport_problem(message: str)`` and ``message_too_large(size: int)`` calls; everything
    else stays in C. ``histogram`` receives the sampled read-to-apply latencies (a new one when
    None).
    """
    cdef FeedHandler _feed
    cdef object _session
    cdef object _tap
    cdef bytearray _fragments
    cdef bint _in_fragments
    cdef bint _ignoring
    cdef bint _batch_open
    cdef int64_t _batch_start_ns
    cdef Py_ssize_t _max_message_size
    cdef readonly int64_t last_frame_ns
    cdef readonly int64_t frames
    cdef LatencyHistogram _histogram
    cdef int _sample_every
    cdef int _sample_countdown

    def __init__(self, FeedHandler feed not None, session, int sample_every=16,
                 Py_ssize_t max_message_size=8 * 1024 * 1024, tap=None,
                 LatencyHistogram histogram=None):
        super().__init__()
        if max_message_size < 1:
            raise ValueError(f"max_message_size must be >= 1, got {max_message_size}")
        self._feed = feed
        self._session = session
        self._tap = tap
        self._fragments = bytearray()
        self._max_message_size = max_message_size
        self._sample_every = sample_every if sample_every > 0 else 1
        self._sample_countdown = self._sample_every
        self._histogram = histogram if histogram is not None else LatencyHistogram()

    cpdef on_ws_connected(self, WSTransport transport):
        self.last_frame_ns = monotonic_ns()
        self._session.transport_connected(transport)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self._session.transport_disconnected()

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int64_t now
        if self._ignoring:
            return
        if not self._batch_open:
            self._batch_open = True
            self._batch_start_ns = monotonic_ns()
        if frame.msg_type == WSMsgType.TEXT:
            if frame.fin:
                if self._tap is None:
                    self._feed.feed_ptr(frame.payload_ptr, frame.payload_size, None,
                                        self._batch_start_ns)
                else:
                    self._feed_recorded(PyBytes_FromStringAndSize(frame.payload_ptr,
                                                                  frame.payload_size),
                                        frame.last_in_buffer)
                self._sample()
            elif self._check_size(frame.payload_size):
                del self._fragments[:]
                self._fragments.extend(frame.get_payload_as_memoryview())
                self._in_fragments = True
        elif frame.msg_type == WSMsgType.CONTINUATION:
            if not self._in_fragments:
                self._session.transport_problem("continuation frame without a started message")
            elif self._check_size(len(self._fragments) + frame.payload_size):
                self._fragments.extend(frame.get_payload_as_memoryview())
                if frame.fin:
                    self._in_fragments = False
                    payload = bytes(self._fragments)
                    del self._fragments[:]
                    if self._tap is None:
                        self._feed.feed(payload)
                    else:
                        self._feed_recorded(payload, frame.last_in_buffer)
                    self._sample()
        elif frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type == WSMsgType.BINARY:
            self._session.transport_problem(
                f"unexpected binary frame of {frame.payload_size} bytes (the protocol is text-only)")
        if frame.last_in_buffer and not self._ignoring:
            now = monotonic_ns()
            self.last_frame_ns = now
            self._batch_open = False
            self._feed.flush()

    cdef bint _check_size(self, Py_ssize_t size) except -1:
        """False (and the session told, the connection's frames ignored from now on) when a
        message would exceed max_message_size."""
        if size <= self._max_message_size:
            return True
        self._ignoring = True
        self._in_fragments = False
        self._fragments = bytearray()  # release the memory, not just the length
        self._feed.flush()  # books updated by earlier frames of this batch are reported
        self._session.message_too_large(size)
        return False

    cdef int _feed_recorded(self, bytes payload, bint last) except -1:
        self._tap(payload, self._batch_start_ns, last)
        self._feed.feed_ptr(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), payload,
                            self._batch_start_ns)
        return 0

    cdef inline void _sample(self) noexcept:
        self.frames += 1
        self._sample_countdown -= 1
        if self._sample_countdown == 0:
            self._sample_countdown = self._sample_every
            self._histogram.record(monotonic_ns() - self._batch_start_ns)

    @property
    def latency_histogram(self):
        """The LatencyHistogram of sampled read-to-apply latencies (ns) this listener records
        into (shared with the session's other listeners when it passed one)."""
        return self._histogram
