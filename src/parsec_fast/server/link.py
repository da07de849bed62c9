"""The transport side of one server connection: a picows listener that enforces the limits on
what one peer can make the server hold, whatever the peer says.

:class:`Link` knows nothing of the Parsec protocol; :class:`~parsec_fast.server.connection.
Connection` derives from it and implements the hooks :meth:`Link.handle_message`,
:meth:`Link.link_opened`, :meth:`Link.link_closed`, :meth:`Link.send_buffer_high` and
:meth:`Link.send_buffer_low`. The limits (values are :class:`ServerConfig` fields):

- **Send budget.** After every write, of any frame (errors, snapshots, wallet, heartbeats, market
  data, pongs, blast chunks), the transport's write buffer is compared with
  ``disconnect_buffer_limit``: past it the connection is aborted (``disconnect(graceful=False)``,
  reason ``send_buffer``). A close handshake would queue its frame behind the backlog of a peer
  that is not reading, and hold the buffer forever.
- **Incoming messages** are at most ``max_message_size`` bytes (picows refuses a bigger frame on
  its header, with close 1009; counted as ``message_too_big``). A message refused as a whole
  spends one token of an ``invalid_burst`` / ``invalid_rate`` bucket (:meth:`Link.refuse`); an
  empty bucket aborts the connection (reason ``invalid_messages``), before auth as after. Pings
  (answered here, not by picows) and unsolicited pongs spend a bucket of the same size (reason
  ``ping_flood``). So every kind of frame a peer can send costs a token or is rate-limited, and a
  flood is cut before it holds the loop for long (``invalid_burst=None`` turns this off: then
  only the send budget stops a garbage flood, and timers may run late while a flood is read).
- **One message at a time.** :meth:`handle_message` may return a *job*, a generator run in
  slices: its first slice runs at once, the rest in a task with the loop running between slices
  (a slice that yields :data:`DRAIN` waits until the send buffer is back under the soft limit).
  Meanwhile reading from the socket is paused and frames already read queue in order, at most
  ``max_pending_messages`` of them (reason ``backlog`` past it), so replies keep their order.
- **Closing on time.** :meth:`close` sends a close frame and disconnects once it is flushed; if it
  is still queued after its grace (``close_timeout``, or 0 for the auth window) the socket is
  aborted. Close frames sent by picows itself are swept by :meth:`enforce_close_deadline`.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter, deque
from collections.abc import Generator
from typing import Any

import orjson
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ..codes import ErrorCode
from .config import ServerConfig
from .control import BadRequest, InvalidMessageBudget
from .recorder import ConnectionRecord

__all__ = ["Link", "Job", "DRAIN"]

log: logging.Logger = logging.getLogger("parsec_fast.server")

#: A message's work in slices: each ``yield`` lets the loop run (see :data:`DRAIN`).
Job = Generator[object, None, None]
#: Yielded by a job: wait until the send buffer is back under the soft limit, then go on.
DRAIN = "drain"


class Link(WSListener):
    """One WebSocket peer with its send budget, message allowances and close deadline."""

    def __init__(self, config: ServerConfig, conn_id: int, aborted: Counter[str]) -> None:
        super().__init__()
        self.config = config
        self.conn_id = conn_id
        self.transport: WSTransport | None = None
        #: Every frame sent, when the server records (set by the subclass).
        self.record: ConnectionRecord | None = None
        #: Transport write buffer above the soft limit (between pause_writing and resume_writing).
        self.paused: bool = False
        #: True while a blast writes to this connection (flow control only: no slow_reader).
        self.blasting = False
        #: Set while the send buffer is under the soft limit (or the connection is gone).
        self.writable: asyncio.Event = asyncio.Event()
        self.writable.set()
        #: Why the server ended this connection for a limit, or None (see ServerContext.aborted).
        self.abort_reason: str | None = None
        #: Messages refused as a whole (each spends a token; ``invalid.spent`` counts them).
        self.invalid: InvalidMessageBudget = InvalidMessageBudget(config.invalid_burst, config.invalid_rate)
        #: Pings are answered by us (enable_auto_pong=False), from a bucket of the same size.
        self._pings = InvalidMessageBudget(config.invalid_burst, config.invalid_rate)
        self._aborted = aborted
        self._close_timer: asyncio.TimerHandle | None = None
        self._close_seen: float | None = None
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._inbox: deque[bytes] = deque()

    # -- hooks for the subclass --------------------------------------------------------------------
    def handle_message(self, data: bytes) -> Job | None:
        """Handle one text/binary message; return a job to run in slices, or None when done."""
        raise NotImplementedError

    def link_opened(self) -> None:
        """The WebSocket handshake is done (``transport`` is set)."""

    def link_closed(self) -> None:
        """The connection is gone (nothing can be sent any more)."""

    def send_buffer_high(self) -> None:
        """The send buffer passed the soft limit (called from a fresh loop iteration, not while
        blasting)."""

    def send_buffer_low(self) -> None:
        """The send buffer drained below a quarter of the soft limit."""

    # -- picows hooks --------------------------------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        """picows: the handshake is done. Keep ``transport``, set the write-buffer limits
        (high: ``soft_buffer_limit``, low: a quarter of it) and ``so_sndbuf`` if configured,
        then call :meth:`link_opened`."""
        self.transport = transport
        underlying = transport.underlying_transport
        # pause_writing fires at the soft limit: that is where slow_reader is sent.
        underlying.set_write_buffer_limits(high=self.config.soft_buffer_limit,
                                           low=self.config.soft_buffer_limit // 4)
        if self.config.so_sndbuf:
            sock = underlying.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.so_sndbuf)
        self.link_opened()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """picows: the connection is gone. Cancel the close deadline and the running job,
        drop the queued messages, set ``writable`` (nobody waits on a dead link), count a close
        1009 picows sent as ``message_too_big``, then call :meth:`link_closed`."""
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self._task is not None:
            self._task.cancel()
        self._inbox.clear()
        self.writable.set()
        hs = transport.close_handshake
        if self.abort_reason is None and hs is not None and hs.sent is not None \
                and hs.sent.code == WSCloseCode.MESSAGE_TOO_BIG:
            self._count_abort("message_too_big")  # picows refused a frame over max_message_size
            log.warning("connection %d closed: frame over max_message_size (%d bytes)",
                        self.conn_id, self.config.max_message_size)
        self.link_closed()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """picows: one frame. A text/binary message goes to :meth:`handle_message`, or is
        queued behind the running job (past ``max_pending_messages``: aborted, ``backlog``);
        a ping is answered and a pong counted, both from a rate-limited budget (``ping_flood``);
        a close is answered and the link closed on time; a fragment is refused. Nothing after
        an abort."""
        if self.abort_reason is not None:
            return
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
            payload = frame.get_payload_as_bytes()
            if not self._busy:
                self._start(self.handle_message(payload))
            elif len(self._inbox) >= self.config.max_pending_messages:
                self.abort("backlog")
            else:
                self._inbox.append(payload)
        elif msg_type == WSMsgType.PING:
            if not self._pings.spend(asyncio.get_running_loop().time()):
                self.abort("ping_flood")
                return
            transport.send_pong(frame.get_payload_as_bytes())  # counts against the budget too
            self._after_write()
        elif msg_type == WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            self._disconnect_after_close(self.config.close_timeout, "close_timeout")
        elif msg_type == WSMsgType.CONTINUATION:
            self.refuse(None)  # fragmented messages are not supported: counted, not answered
        elif msg_type == WSMsgType.PONG:  # the server never pings: unsolicited, only counted
            if not self._pings.spend(asyncio.get_running_loop().time()):
                self.abort("ping_flood")

    def pause_writing(self) -> None:
        """asyncio flow control: the write buffer passed the soft limit. Set ``paused``, clear
        ``writable`` and, unless blasting, call :meth:`send_buffer_high` from the next loop
        iteration (if still paused and open then)."""
        self.paused = True
        self.writable.clear()
        if not self.blasting:
            # Called from inside a transport write: act from a fresh loop iteration.
            asyncio.get_running_loop().call_soon(self._buffer_high)

    def resume_writing(self) -> None:
        """asyncio flow control: the write buffer drained below a quarter of the soft limit.
        Set ``writable`` and call :meth:`send_buffer_low`."""
        self.paused = False
        self.writable.set()
        self.send_buffer_low()

    def _buffer_high(self) -> None:
        if self.paused and self.open:
            self.send_buffer_high()

    # -- sending and the send budget ----------------------------------------------------------------
    @property
    def open(self) -> bool:
        """True while frames can still be sent."""
        t = self.transport
        return t is not None and not t.is_disconnected and not t.is_close_frame_sent \
            and self.abort_reason is None

    def buffer_size(self) -> int:
        """Bytes waiting in the transport write buffer."""
        assert self.transport is not None
        return self.transport.underlying_transport.get_write_buffer_size()

    def _after_write(self) -> int:
        """Enforce the send budget; return the buffer size, or -1 if that aborted the link."""
        size = self.buffer_size()
        limit = self.config.disconnect_buffer_limit
        if limit is not None and size > limit:
            self.abort("send_buffer")
            return -1
        return size

    def send_payload(self, payload: bytes) -> int:
        """Send one encoded JSON frame (and record it). Returns the send buffer size after it,
        or -1 when nothing was sent or the send budget aborted the connection."""
        if not self.open:
            return -1
        if self.record is not None:
            self.record.frames.append(payload)
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, payload)
        return self._after_write()

    def send_obj(self, obj: dict[str, Any]) -> None:
        """Encode and send one frame."""
        self.send_payload(orjson.dumps(obj))

    def send_error(self, code: ErrorCode, message: str, parsec_id: str | None = None) -> None:
        """Send an ``error`` frame (``parsec_id`` only for market-scoped errors)."""
        frame: dict[str, Any] = {"type": "error", "code": int(code), "message": message}
        if parsec_id is not None:
            frame["parsec_id"] = parsec_id
        self.send_obj(frame)

    def write_chunk(self, chunk: bytes, payloads: list[bytes]) -> bool:
        """Write pre-framed frames in one transport write (blast mode; ``payloads`` are their
        JSON payloads, for the record). False when the connection is closed or aborted."""
        if not self.open:
            return False
        if self.record is not None:
            self.record.frames.extend(payloads)
        assert self.transport is not None
        self.transport.underlying_transport.write(chunk)
        return self._after_write() >= 0

    def refuse(self, exc: BadRequest | None) -> None:
        """A message refused as a whole: spend a token of the invalid-message budget, then
        answer ``exc`` (if any); an exhausted budget aborts the connection instead."""
        if not self.invalid.spend(asyncio.get_running_loop().time()):
            self.abort("invalid_messages")
        elif exc is not None:
            self.send_error(exc.code, exc.message, exc.parsec_id)

    # -- ending the connection --------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """End the connection now, dropping whatever is queued (no close handshake); the reason
        is logged and counted (``abort_reason``, ``ServerContext.aborted``)."""
        t = self.transport
        if self.abort_reason is not None or t is None or t.is_disconnected:
            return
        buffered = self.buffer_size()
        self._count_abort(reason)
        log.warning("connection %d aborted: %s (send buffer %d bytes, %d refused messages)",
                    self.conn_id, reason, buffered, self.invalid.spent)
        t.disconnect(graceful=False)

    def _count_abort(self, reason: str) -> None:
        self.abort_reason = reason
        self._aborted[reason] += 1

    def disconnect_now(self) -> None:
        """Drop the connection without a close frame and without counting it (server shutdown,
        the ``close`` fault)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def close(self, code: WSCloseCode, reason: str, *, grace: float | None = None,
              why: str = "close_timeout") -> None:
        """Send a close frame and disconnect once it is flushed; abort (counted as ``why``) if
        it is still queued after ``grace`` seconds (default ``close_timeout``; 0 = at once)."""
        t = self.transport
        if t is None or t.is_disconnected or self.abort_reason is not None:
            return
        if not t.is_close_frame_sent:
            t.send_close(code, reason.encode())
        self._disconnect_after_close(self.config.close_timeout if grace is None else grace, why)

    def _disconnect_after_close(self, grace: float, why: str) -> None:
        assert self.transport is not None
        if self.buffer_size() == 0:
            self.transport.disconnect()  # the close frame is with the kernel already
        elif grace <= 0:
            self.abort(why)
        elif self._close_timer is None:
            self.transport.disconnect()  # graceful: closes once the buffer is flushed ...
            self._close_timer = asyncio.get_running_loop().call_later(grace, self.abort, why)

    def enforce_close_deadline(self, now: float) -> None:
        """Abort a connection whose close frame has not flushed within ``close_timeout`` when
        no timer of :meth:`close` watches it (picows sent it: protocol error, frame too big).
        Called periodically by the server."""
        t = self.transport
        if t is None or t.is_disconnected or not t.is_close_frame_sent \
                or self._close_timer is not None or self.abort_reason is not None:
            return
        if self._close_seen is None:
            self._close_seen = now
        elif now - self._close_seen >= self.config.close_timeout:
            self.abort("close_timeout")

    # -- incoming messages: one at a time, long ones in slices -----------------------------------------
    def _start(self, job: Job | None) -> None:
        """Run the first slice of a job now; the rest, and every message read meanwhile, in a
        task (reading from the socket paused until it is done)."""
        if job is None:
            return
        try:
            step = next(job)
        except StopIteration:
            return
        if not self.open:
            job.close()
            return
        self._busy = True
        assert self.transport is not None
        self.transport.underlying_transport.pause_reading()
        self._task = asyncio.ensure_future(self._drive(job, step))
        self._task.add_done_callback(self._job_done)

    async def _drive(self, job: Job | None, step: object) -> None:
        try:
            while True:
                while job is not None:
                    if step == DRAIN:
                        await self.writable.wait()
                    else:
                        await asyncio.sleep(0)
                    if not self.open:
                        return
                    try:
                        step = next(job)
                    except StopIteration:
                        job = None
                while job is None and self._inbox and self.open:
                    job = self.handle_message(self._inbox.popleft())
                    if job is not None:
                        try:
                            step = next(job)
                        except StopIteration:
                            job = None
                if job is None:
                    return
        finally:
            if job is not None:
                job.close()
            self._busy = False
            self._task = None
            t = self.transport
            if t is not None and not t.is_disconnected and self.abort_reason is None:
                t.underlying_transport.resume_reading()

    def _job_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("connection %d: message handling failed", self.conn_id,
                      exc_info=task.exception())
            self.abort("internal_error")
