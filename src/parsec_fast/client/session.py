"""The session: one connection after another, authenticated, watched, and ended with a typed cause.

:class:`Session` owns the transport side of the client (PROTOCOL.md §1, §6.1, §6.6):

* connect (:func:`~parsec_fast.client.connect.open_websocket`: DNS, TCP, TLS, WebSocket handshake,
  each bounded and typed), send ``auth`` at once, wait for ``auth_ok`` within ``auth_timeout``;
  ``auth_error`` is fatal (:class:`~parsec_fast.errors.AuthenticationError`, never retried);
* the first connection fails fast with its typed error unless ``retry_first_connect``; a
  connection that was open is re-established with exponential backoff (``backoff_initial``
  doubling to ``backoff_max``, ``±jitter``) while ``reconnect`` is set;
* dead-connection detection: no frame for ``dead_after × heartbeat_interval`` seconds drops the
  connection (:class:`~parsec_fast.errors.DeadConnectionError`); a message over
  ``max_message_size`` drops it too (:class:`~parsec_fast.errors.MessageTooLargeError`);
* why each connection ended, as a :class:`~parsec_fast.errors.ParsecConnectionError` subclass;
* with ``busy_poll``, the event loop spins instead of sleeping from the moment a connection's
  WebSocket is open until it ended (:mod:`parsec_fast.client.busypoll`).

It reports to the client through the callbacks of :class:`SessionHandlers` and never touches
books, subscriptions or events itself.
"""
from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from picows import WSMsgType, WSTransport

from .._feed import FeedHandler
from .._histogram import LatencyHistogram
from .._listener import FeedListener
from ..errors import (AuthenticationError, AuthTimeoutError, ConnectionClosedError,
                      DeadConnectionError, MessageTooLargeError, ParsecConnectionError,
                      ProtocolError)
from .busypoll import BusyPoll
from .config import ClientConfig
from .connect import open_websocket

__all__ = ["Session", "SessionHandlers", "FrameTap"]

log: logging.Logger = logging.getLogger("parsec_fast.client")

#: ``tap(payload, mono_ns, last_in_buffer)``: sees every received text message (recording).
FrameTap = Callable[[bytes, int, bool], None]


@dataclass(frozen=True, slots=True)
class SessionHandlers:
    """What the session tells the client."""

    #: Authenticated on a new connection (``attempt`` 0 for the first).
    authenticated: Callable[[str, int], None]
    #: An authenticated connection ended (the typed cause, None when the client closed it),
    #: and whether another one will be tried.
    disconnected: Callable[[ParsecConnectionError | None, bool], None]
    #: The next attempt starts after ``delay`` seconds; the error that ended the last one.
    reconnecting: Callable[[int, float, ParsecConnectionError | None], None]
    #: A transport-level protocol problem (a binary frame, a stray continuation frame).
    problem: Callable[[ProtocolError], None]


class _Connection:
    """One connection attempt: its transport, listener, auth outcome and why it ended.
    The compiled listener calls the four ``transport_*``/``message_too_large`` methods."""

    def __init__(self, session: Session, loop: asyncio.AbstractEventLoop) -> None:
        self._session = session
        self.transport: WSTransport | None = None
        self.listener: FeedListener | None = None
        self.auth: asyncio.Future[str] = loop.create_future()
        self.closed = asyncio.Event()
        self.error: ParsecConnectionError | None = None
        self.ended_by_us = False
        self.authenticated = False
        #: The loop's busy poller while this connection holds it (``busy_poll``).
        self.busy: BusyPoll | None = None

    def release_busy(self) -> None:
        """Give the busy poller back (the loop may sleep again); idempotent."""
        if self.busy is not None:
            self.busy.release()
            self.busy = None

    def transport_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def transport_disconnected(self) -> None:
        if not self.ended_by_us:
            self.error = self._session.peer_close_error(
                self.transport, "session" if self.authenticated else "auth")
        if not self.auth.done():
            self.auth.set_exception(self.error or ConnectionClosedError(
                "connection closed before auth_ok", url=self._session.url, phase="auth"))
        self.closed.set()

    def transport_problem(self, message: str) -> None:
        self._session.handlers.problem(ProtocolError(message))

    def message_too_large(self, size: int) -> None:
        self._session.oversized_messages += 1
        self.drop(MessageTooLargeError(
            f"the server sent a message of more than {size:,} bytes "
            f"(max_message_size={self._session.config.max_message_size:,})",
            url=self._session.url))

    def drop(self, error: ParsecConnectionError | None) -> None:
        """Abort the connection (no close handshake); ``error`` is why (None: the client is
        closing)."""
        if not self.ended_by_us:
            self.ended_by_us = True
            self.error = error
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)


class Session:
    """Connections to ``url`` for one client (see the module docstring)."""

    def __init__(self, url: str, auth_frame: bytes, config: ClientConfig, feed: FeedHandler,
                 handlers: SessionHandlers, *, tap: FrameTap | None = None) -> None:
        self.url: str = url
        self.config: ClientConfig = config
        self.handlers: SessionHandlers = handlers
        self._auth_frame = auth_frame
        self._feed = feed
        self._tap = tap
        self._rng = random.Random(config.seed)
        self._conn: _Connection | None = None
        self._closing = False
        #: Read-to-apply latencies (ns) of every connection, sampled every
        #: ``latency_sample_every`` frames by the compiled listeners (all record into it).
        self.latency_histogram: LatencyHistogram = LatencyHistogram()
        #: Authenticated connections so far.
        self.connects: int = 0
        #: Connections dropped for a message over max_message_size.
        self.oversized_messages: int = 0
        #: The last error that ended a connection or an attempt (None before any).
        self.last_error: ParsecConnectionError | None = None

    # -- state ------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while an authenticated connection is open."""
        conn = self._conn
        return conn is not None and conn.authenticated and not conn.closed.is_set()

    @property
    def frames(self) -> int:
        """Text frames received on the current connection (0 when not connected)."""
        conn = self._conn
        return int(conn.listener.frames) if conn is not None and conn.listener is not None else 0

    def peer_close_error(self, transport: WSTransport | None,
                         phase: str) -> ParsecConnectionError:
        """The error for a connection that ended without a reason of ours."""
        sent = received = None
        if transport is not None:
            handshake = transport.close_handshake
            sent = handshake.sent if handshake is not None else None
            received = handshake.recv if handshake is not None else None
        if sent is not None and sent.code.value == 1009:  # picows: a frame over max_frame_size
            self.oversized_messages += 1
            return MessageTooLargeError(
                f"the server sent a frame over max_message_size="
                f"{self.config.max_message_size:,} bytes", url=self.url, phase=phase)
        if received is not None:
            reason = f": {received.reason}" if received.reason else ""
            return ConnectionClosedError(
                f"connection closed by the server (close code {received.code.value}{reason})",
                url=self.url, phase=phase)
        return ConnectionClosedError("connection closed by the server", url=self.url,
                                     phase=phase)

    def set_tap(self, tap: FrameTap | None) -> None:
        """See every received text message from the next connection on (recording)."""
        self._tap = tap

    # -- inputs from the message router -----------------------------------------------------------
    def auth_ok(self, customer_id: str) -> None:
        """The server sent ``auth_ok``."""
        conn = self._conn
        if conn is not None and not conn.auth.done():
            conn.auth.set_result(customer_id)

    def auth_refused(self, error: AuthenticationError) -> None:
        """The server sent ``auth_error``."""
        conn = self._conn
        if conn is not None and not conn.auth.done():
            conn.auth.set_exception(error)

    def send(self, frame: bytes) -> bool:
        """Send one text frame on the current connection; False when there is none."""
        conn = self._conn
        transport = conn.transport if conn is not None else None
        if transport is None or transport.is_disconnected:
            return False
        transport.send(WSMsgType.TEXT, frame)
        return True

    def check_alive(self, now_ns: int) -> None:
        """Drop the connection if it has been silent for ``dead_after × heartbeat_interval``."""
        conn = self._conn
        if conn is None or not conn.authenticated or conn.listener is None:
            return
        silent_s = (now_ns - conn.listener.last_frame_ns) / 1e9
        if silent_s > self.config.dead_after_s:
            log.warning("no frame for %.2f s: dropping the connection", silent_s)
            conn.drop(DeadConnectionError(f"dead connection: no frame for {silent_s:.2f} s",
                                          url=self.url))

    def close(self) -> None:
        """Close the current connection (a close frame, then abort) and stop reconnecting."""
        self._closing = True
        conn = self._conn
        if conn is not None and conn.transport is not None and not conn.transport.is_disconnected:
            try:
                conn.transport.send_close()
            except Exception:  # pragma: no cover - transport already gone
                pass
            conn.drop(None)

    # -- the loop ---------------------------------------------------------------------------------
    def _backoff(self, failures: int) -> float:
        cfg = self.config
        base = min(cfg.backoff_max, cfg.backoff_initial * (2.0 ** min(failures, 30)))
        return min(cfg.backoff_max, base * (1.0 + self._rng.uniform(-cfg.jitter, cfg.jitter)))

    def _ssl(self) -> ssl.SSLContext | None:
        if self.url.lower().startswith("wss://"):
            return self.config.ssl_context or ssl.create_default_context()
        return None

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff, until :meth:`close`. Raises the fatal error:
        :class:`AuthenticationError`, the first attempt's error (unless
        ``retry_first_connect``), or the error that ended the connection when not reconnecting."""
        failures = 0
        attempt = 0
        ever_authenticated = False
        loop = asyncio.get_running_loop()
        while not self._closing:
            conn = _Connection(self, loop)
            self._conn = conn
            try:
                error = await self._serve(conn, attempt)
            except AuthenticationError:
                self._end(conn, will_reconnect=False)
                raise
            except asyncio.CancelledError:
                conn.drop(None)
                self._end(conn, will_reconnect=False)
                raise
            except BaseException:
                conn.release_busy()  # never leave the loop spinning behind a failure
                raise
            attempt += 1
            ever_authenticated = ever_authenticated or conn.authenticated
            may_retry = self.config.reconnect if ever_authenticated \
                else self.config.retry_first_connect
            will_reconnect = may_retry and not self._closing
            if error is not None:
                self.last_error = error
            self._end(conn, will_reconnect)
            if not will_reconnect:
                if not self._closing and error is not None:
                    raise error
                return
            if conn.authenticated:
                failures = 0
            delay = self._backoff(failures)
            failures += 1
            log.info("reconnecting in %.2f s (%s)", delay, error)
            self.handlers.reconnecting(attempt, delay, error)
            await asyncio.sleep(delay)

    async def _serve(self, conn: _Connection, attempt: int) -> ParsecConnectionError | None:
        """One connection: open, authenticate, then wait until it ends. Returns why it ended
        (None when the client closed it); raises AuthenticationError on ``auth_error``."""
        cfg = self.config
        listener = FeedListener(self._feed, conn, cfg.latency_sample_every, cfg.max_message_size,
                                self._tap, self.latency_histogram)
        conn.listener = listener
        try:
            transport = await open_websocket(
                self.url, lambda: listener, connect_timeout=cfg.connect_timeout,
                ssl_context=self._ssl(), max_frame_size=cfg.max_message_size,
                # Keep-alive pings when idle; a silent server is caught by check_alive (pongs
                # are not frames for it).
                ping_interval=cfg.heartbeat_interval)
        except ParsecConnectionError as exc:
            return exc
        conn.transport = transport
        if cfg.busy_poll:
            # the loop stops sleeping in the kernel until _end (see client/busypoll.py)
            conn.busy = BusyPoll.of(asyncio.get_running_loop())
            conn.busy.acquire()
        transport.send(WSMsgType.TEXT, self._auth_frame)
        try:
            customer_id = await asyncio.wait_for(asyncio.shield(conn.auth), cfg.auth_timeout)
        except asyncio.TimeoutError:
            conn.drop(AuthTimeoutError(f"no auth_ok within auth_timeout={cfg.auth_timeout:g} s",
                                       url=self.url))
            await conn.closed.wait()
            return conn.error
        except ParsecConnectionError as exc:  # closed before auth_ok
            return exc
        except AuthenticationError:
            conn.drop(None)
            raise
        conn.authenticated = True
        self.connects += 1
        self.handlers.authenticated(customer_id, attempt)
        await conn.closed.wait()
        return conn.error

    def _end(self, conn: _Connection, will_reconnect: bool) -> None:
        """Forget a finished connection; tell the client if it was authenticated."""
        if conn.transport is not None and not conn.transport.is_disconnected:
            conn.transport.disconnect(graceful=False)
        conn.release_busy()
        conn.listener = None
        if not conn.auth.done():
            conn.auth.cancel()
        elif not conn.auth.cancelled():
            conn.auth.exception()  # mark retrieved
        if self._conn is conn:
            self._conn = None
        if conn.authenticated:
            log.info("disconnected: %s", conn.error or "client closed")
            self.handlers.disconnected(conn.error, will_reconnect)

