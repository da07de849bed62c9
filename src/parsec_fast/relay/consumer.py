"""The relay consumer: a :class:`~parsec_fast.client.transport.Transport` for ``nats://`` URLs.

``Client("nats://host:4222", api_key=...)`` (and ``parsec_fast.compat.ParsecWebSocket(key,
"nats://host:4222")``) read a relay instead of the Parsec WebSocket, with everything above the
transport unchanged: the client's own compiled FeedHandler applies every frame (same books,
gaps, duplicates, trust signals and events), its ledger plans the control messages, and this
transport carries them. The URL's path picks the relay's subject prefix
(``nats://host:4222/acme`` -> ``acme``; default ``parsec``); ``user:pass@`` or ``token@`` are
the NATS server's credentials.

One connection = a NATS data link (:mod:`parsec_fast.relay.link`: the book streams, the
replies to this consumer's inbox and the relay's heartbeats, all read by the compiled
:class:`~parsec_fast._natsfeed.NatsFeedReader`) + a nats-py connection for the requests,
authenticated with the relay (``auth`` as a NATS request: "no responders" means no relay).
It ends, and the client invalidates every book and reconnects with backoff as it does on the
WebSocket, when either NATS connection drops, when the relay says goodbye or restarts (a new
epoch), or when nothing arrived for ``dead_after x heartbeat_interval``.

Control frames from the ledger become requests (:func:`parsec_fast.relay.wire.envelope`):

* ``subscribe``: the book subject is subscribed on the data link first (a PING round trip
  makes sure the server has it), then the request goes out. Until the reply (the relay's
  snapshot, or an ``error`` frame) the book's stream messages are *held* (bounded); the reply
  carries the subject's last message number R, and only the held messages after R are fed
  after the snapshot.
* ``resync``: the same hold, from the moment the ledger sends it.
* ``unsubscribe``: the subject is dropped, the relay told.
* every ``lease_ttl / 3`` a lease with the whole want list; ``bye`` on close.

A stream message whose number is not the next one (a message lost, e.g. a slow consumer) is
fed (its frames' seqs reveal the gap, as on the WebSocket) and, if the book still looks valid,
followed by a ``resync_required`` of our own: the book is resynced from the relay.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import deque

import orjson

from .._feed import FeedHandler
from .._histogram import LatencyHistogram
from .._natsfeed import NatsFeedReader
from ..client.config import ClientConfig
from ..client.session import FrameTap, SessionHandlers
from ..errors import (AuthenticationError, AuthTimeoutError, ConnectionClosedError,
                      ConnectRefusedError, DeadConnectionError, MessageTooLargeError,
                      ParsecConnectionError)
from ..rules import BookKey
from ..selectors import MarketSelector
from . import frames, wire
from .control import import_nats
from .consumer_conn import MAX_HELD, BookStream, ConsumerConnection, split_url
from .link import LinkError, NatsLink


__all__ = ["NatsTransport", "MAX_HELD"]

log: logging.Logger = logging.getLogger("parsec_fast.relay")

class NatsTransport:
    """The relay consumer's transport (see the module docstring); built by ``Client`` from the
    URL's scheme (``parsec_fast.client.transport.TRANSPORTS``)."""

    def __init__(self, url: str, auth_frame: bytes, config: ClientConfig, feed: FeedHandler,
                 handlers: SessionHandlers) -> None:
        self.url: str = url
        self.config: ClientConfig = config
        self.handlers: SessionHandlers = handlers
        self.nats_url: str
        self.prefix: str
        self.nats_url, self.prefix = split_url(url)
        import_nats()  # fail here, in Client(...), not in its connection task
        self._auth_frame = auth_frame
        self._feed = feed
        self._rng = random.Random(config.seed)
        #: This consumer's id at the relay (its wants and lease are kept under it).
        self.consumer_id: str = os.urandom(8).hex()
        self._inbox = f"_INBOX.pfr.{self.consumer_id}"
        self._control = wire.control_subject(self.prefix)
        self._conn: ConsumerConnection | None = None
        self._closing = False
        self._tap: FrameTap | None = None
        self._latency_ns: deque[int] = deque(maxlen=4096)
        #: Authenticated connections so far.
        self.connects: int = 0
        #: Connections dropped for a frame over max_message_size.
        self.oversized_messages: int = 0
        #: The error that ended the last connection or attempt (None before any).
        self.last_error: ParsecConnectionError | None = None
        #: Stream messages found missing (each answered by a resync), over all connections.
        self.lost_messages: int = 0
        #: Read-to-applied latency of every socket read (ns), the whole run.
        self.latency_histogram: LatencyHistogram = LatencyHistogram()

    # -- Transport: state ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while an authenticated connection is open."""
        conn = self._conn
        return conn is not None and conn.authenticated and not conn.closed.is_set()

    @property
    def frames(self) -> int:
        """Parsec frames received on the current connection."""
        conn = self._conn
        if conn is None or conn.reader is None:
            return 0
        return int(conn.reader.frames)

    @property
    def epoch(self) -> int | None:
        """The relay instance of the current connection (None before auth)."""
        return None if self._conn is None else self._conn.epoch

    def latency_samples(self) -> list[int]:
        """Sampled receive-to-applied latencies (ns), past and current connections."""
        samples = list(self._latency_ns)
        conn = self._conn
        if conn is not None and conn.reader is not None:
            samples += conn.reader.latency_samples()
        return samples

    def set_tap(self, tap: FrameTap | None) -> None:
        """See every received Parsec frame (recording)."""
        self._tap = tap
        conn = self._conn
        if conn is not None and conn.reader is not None:
            conn.reader.tap = tap

    # -- Transport: inputs from the router ----------------------------------------------------
    def auth_ok(self, customer_id: str) -> None:
        """The relay accepted the credential."""
        conn = self._conn
        if conn is not None and not conn.auth.done():
            conn.auth.set_result(customer_id)

    def auth_refused(self, error: AuthenticationError) -> None:
        """The relay refused the credential."""
        conn = self._conn
        if conn is not None and not conn.auth.done():
            conn.auth.set_exception(error)

    def send(self, frame: bytes) -> bool:
        """A control frame from the ledger: a request to the relay (see the module docstring).
        Holding starts here, so no stream message is fed after the ledger decided."""
        conn = self._conn
        if conn is None or not conn.authenticated or conn.closed.is_set() or conn.link is None:
            return False
        try:
            obj = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return False
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "resync":
            sel = MarketSelector.coerce({k: obj[k] for k in ("parsec_id", "exchange",
                                                             "market_id", "outcome")
                                         if obj.get(k) is not None})
            book = conn.books.get(sel.key)
            if book is not None:
                self._hold(conn, book)
        elif kind == "subscribe":
            for item in obj.get("markets") or []:
                sel = MarketSelector.coerce(item).with_defaults()
                conn.wants[sel.key] = sel
                book = conn.books.get(sel.key)
                if book is None:
                    self._add_book(conn, sel)
                else:
                    self._hold(conn, book)
        elif kind == "unsubscribe":
            for item in obj.get("markets") or []:
                sel = MarketSelector.coerce(item)
                conn.wants.pop(sel.key, None)
                self._drop_book(conn, sel.key)
        conn.outbox.put_nowait(frame)
        return True

    def check_alive(self, now_ns: int) -> None:
        """Drop the connection after ``dead_after x heartbeat_interval`` without any message."""
        conn = self._conn
        if conn is None or not conn.authenticated or conn.reader is None:
            return
        silent_s = (now_ns - conn.reader.last_receive_ns) / 1e9
        if silent_s > self.config.dead_after_s:
            log.warning("relay consumer: nothing from the relay for %.2f s", silent_s)
            conn.drop(DeadConnectionError(f"dead relay: no message for {silent_s:.2f} s",
                                          url=self.url))

    def close(self) -> None:
        """Say goodbye to the relay (its wants for us stop counting now) and stop."""
        self._closing = True
        conn = self._conn
        if conn is not None:
            if conn.authenticated and conn.nc is not None and not conn.closed.is_set():
                body = wire.envelope(self.consumer_id, None, op="bye")
                conn.goodbye = asyncio.ensure_future(self._publish(conn, body))
            conn.drop(None)

    # -- books --------------------------------------------------------------------------------
    def _add_book(self, conn: ConsumerConnection, sel: MarketSelector) -> None:
        assert conn.link is not None
        pid, outcome = sel.canonical_id, sel.outcome_or_default
        subject = wire.book_subject(self.prefix, pid, outcome)
        sid = conn.link.subscribe(subject)
        book = BookStream(sel.key, pid, outcome, subject.encode(), sid)
        conn.books[sel.key] = book
        conn.by_sid[sid] = book
        conn.by_subject[book.subject] = book

    def _drop_book(self, conn: ConsumerConnection, key: BookKey) -> None:
        book = conn.books.pop(key, None)
        if book is None:
            return
        conn.by_sid.pop(book.sid, None)
        conn.by_subject.pop(book.subject, None)
        if conn.link is not None:
            conn.link.unsubscribe(book.sid)

    def _hold(self, conn: ConsumerConnection, book: BookStream) -> None:
        if not book.holding:
            book.holding = True
            book.held.clear()
            if conn.reader is not None:
                conn.reader.set_slow(book.sid)

    # -- receive path (Python side) -----------------------------------------------------------
    def _feed_frames(self, conn: ConsumerConnection, frames_: list[bytes]) -> None:
        feed, tap = self._feed, self._tap
        now = time.monotonic_ns()
        limit = self.config.max_message_size
        for i, frame in enumerate(frames_):
            if len(frame) > limit:
                self.oversized_messages += 1
                conn.drop(MessageTooLargeError(
                    f"the relay sent a frame of {len(frame):,} bytes "
                    f"(max_message_size={limit:,})", url=self.url))
                return
            if tap is not None:
                tap(frame, now, i + 1 == len(frames_))
            feed.feed(frame)
        if conn.reader is not None:
            conn.reader.count_frames(len(frames_))

    def _on_message(self, conn: ConsumerConnection, sid: int, payload: bytes) -> None:
        if conn.closed.is_set():
            return
        try:
            batch = wire.decode(payload)
        except wire.WireError as exc:
            log.warning("relay consumer: %s", exc)
            return
        if sid == conn.hb_sid:
            self._on_heartbeat(conn, batch)
        elif sid == conn.inbox_sid:
            self._on_reply(conn, batch)
        else:
            book = conn.by_sid.get(sid)
            if book is None or batch.kind != wire.Kind.STREAM:
                return
            if batch.epoch != conn.epoch:
                conn.drop(ConnectionClosedError("the relay restarted (a new instance "
                                                "publishes)", url=self.url))
                return
            if book.holding:
                book.held.append(batch)
            else:
                self._stream(conn, book, batch)

    def _stream(self, conn: ConsumerConnection, book: BookStream, batch: wire.Batch) -> None:
        """A stream message for a live book, on the Python path."""
        lost = batch.rseq != book.next_rseq
        book.next_rseq = batch.rseq + 1
        self._feed_frames(conn, batch.frames)
        if lost:
            self.lost_messages += 1
            sub = self._feed.get(book.parsec_id, book.outcome)
            if sub is not None and sub.book.is_valid:
                # the lost message may have held no seq (e.g. a resync_required): be safe
                self._feed.feed(frames.resync_required_frame(book.parsec_id, book.outcome))
        if conn.reader is not None and not book.holding and conn.epoch is not None:
            conn.reader.set_fast(book.sid, conn.epoch, book.next_rseq)

    def _on_heartbeat(self, conn: ConsumerConnection, batch: wire.Batch) -> None:
        if conn.epoch is not None and batch.epoch != conn.epoch:
            if batch.kind == wire.Kind.HEARTBEAT:
                conn.drop(ConnectionClosedError("the relay restarted (new epoch)", url=self.url))
            return  # a BYE from an older relay
        if batch.kind == wire.Kind.BYE:
            conn.drop(ConnectionClosedError("the relay closed", url=self.url))
            return
        if batch.kind == wire.Kind.HEARTBEAT:
            self._feed_frames(conn, batch.frames)

    def _on_reply(self, conn: ConsumerConnection, batch: wire.Batch) -> None:
        if batch.kind != wire.Kind.REPLY or batch.epoch != conn.epoch:
            return
        book = conn.by_subject.get(batch.key) if batch.key else None
        is_error = any(f.startswith(b'{"type":"error"') for f in batch.frames)
        if batch.key and not is_error and (book is None or not book.holding):
            # a second answer to a request already answered (the relay served a waiting request
            # and its repeat), or for a book dropped since: feeding it would take the book back
            # to an older seq than the stream already gave it
            return
        self._feed_frames(conn, batch.frames)
        if book is None:
            return
        if is_error:
            code = orjson.loads(batch.frames[0]).get("code")
            if code != 3001:  # refused: the ledger dropped the book; drop its subject
                conn.wants.pop(book.key, None)
                self._drop_book(conn, book.key)
            return
        book.holding = False
        book.next_rseq = batch.rseq + 1
        held = [b for b in book.held if b.rseq > batch.rseq]
        book.held.clear()
        for stream in held:
            self._stream(conn, book, stream)
        if conn.reader is not None and not book.holding:
            conn.reader.set_fast(book.sid, batch.epoch, book.next_rseq)

    def _after_read(self, reader: NatsFeedReader) -> None:
        self._feed.flush()
        if self.latency_histogram is not None:
            self.latency_histogram.record_since(reader.last_receive_ns)

    # -- sending ------------------------------------------------------------------------------
    async def _publish(self, conn: ConsumerConnection, body: bytes) -> None:
        nc = conn.nc
        if nc is None or nc.is_closed:
            return
        try:
            await nc.publish(self._control, body, reply=self._inbox)
        except Exception as exc:  # the connection is ending: its own callback says why
            log.debug("relay consumer: publish failed: %s", exc)

    async def _sender(self, conn: ConsumerConnection) -> None:
        link = conn.link
        assert link is not None
        while True:
            frame = await conn.outbox.get()
            try:
                await link.ping(self.config.connect_timeout)  # the SUBs are in place first
            except (LinkError, asyncio.TimeoutError, ConnectionError):
                conn.drop(ConnectionClosedError("the NATS data connection stopped answering",
                                                url=self.url))
                return
            await self._publish(conn, wire.envelope(self.consumer_id, self._inbox, frame=frame))

    async def _leases(self, conn: ConsumerConnection) -> None:
        while True:
            await asyncio.sleep(conn.lease_ttl / 3)
            wants: list[list[object]] = [[s.canonical_id, s.outcome_or_default, s.depth]
                                         for s in conn.wants.values()]
            await self._publish(conn, wire.envelope(self.consumer_id, self._inbox, op="lease",
                                                    wants=wants))

    # -- the loop -----------------------------------------------------------------------------
    def _backoff(self, failures: int) -> float:
        cfg = self.config
        base = min(cfg.backoff_max, cfg.backoff_initial * (2.0 ** min(failures, 30)))
        return min(cfg.backoff_max, base * (1.0 + self._rng.uniform(-cfg.jitter, cfg.jitter)))

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff until :meth:`close` (the WebSocket session's
        rules: the first connection's error is raised unless ``retry_first_connect``;
        AuthenticationError is fatal)."""
        failures = attempt = 0
        ever_authenticated = False
        loop = asyncio.get_running_loop()
        while not self._closing:
            conn = ConsumerConnection(loop)
            self._conn = conn
            try:
                error = await self._serve(conn, attempt)
            except AuthenticationError:
                await self._end(conn, will_reconnect=False)
                raise
            except asyncio.CancelledError:
                conn.drop(None)
                await self._end(conn, will_reconnect=False)
                raise
            attempt += 1
            ever_authenticated = ever_authenticated or conn.authenticated
            may_retry = self.config.reconnect if ever_authenticated \
                else self.config.retry_first_connect
            will_reconnect = may_retry and not self._closing
            if error is not None:
                self.last_error = error
            await self._end(conn, will_reconnect)
            if not will_reconnect:
                if not self._closing and error is not None:
                    raise error
                return
            if conn.authenticated:
                failures = 0
            delay = self._backoff(failures)
            failures += 1
            log.info("relay consumer: reconnecting in %.2f s (%s)", delay, error)
            self.handlers.reconnecting(attempt, delay, error)
            await asyncio.sleep(delay)

    async def _serve(self, conn: ConsumerConnection, attempt: int) -> ParsecConnectionError | None:
        cfg = self.config
        nats = import_nats()
        reader = NatsFeedReader(self._feed, cfg.max_message_size, cfg.latency_sample_every)
        reader.tap = self._tap
        conn.reader = reader

        def lost(error: BaseException | None) -> None:
            conn.drop(ConnectionClosedError("the NATS data connection closed", url=self.url,
                                            cause=error))

        try:
            conn.link = await NatsLink.open(
                self.nats_url, name=f"parsec_fast consumer {self.consumer_id}", reader=reader,
                on_message=lambda sid, payload: self._on_message(conn, sid, payload),
                on_lost=lost, after_read=lambda: self._after_read(reader),
                timeout=cfg.connect_timeout)
            conn.hb_sid = conn.link.subscribe(wire.heartbeat_subject(self.prefix))
            conn.inbox_sid = conn.link.subscribe(self._inbox)
            await conn.link.ping(cfg.connect_timeout)

            async def nats_closed() -> None:
                conn.drop(ConnectionClosedError("the NATS control connection closed",
                                                url=self.url))

            async def nats_error(exc: Exception) -> None:
                log.debug("relay consumer: control connection: %s", exc)

            conn.nc = await nats.connect(
                self.nats_url, name=f"parsec_fast consumer {self.consumer_id} control",
                allow_reconnect=False, connect_timeout=cfg.connect_timeout,
                closed_cb=nats_closed, disconnected_cb=nats_closed,
                error_cb=nats_error)
        except (LinkError, OSError, asyncio.TimeoutError) as exc:
            return ConnectRefusedError("cannot connect to the NATS server", url=self.url,
                                       cause=exc)
        except Exception as exc:  # nats-py's NoServersError & co.
            return ConnectRefusedError("cannot connect to the NATS server", url=self.url,
                                       cause=exc)
        if conn.closed.is_set():
            return conn.error
        if getattr(cfg, "busy_poll", False):
            # as on the WebSocket: the loop stops sleeping in the kernel until _end
            from ..client.busypoll import BusyPoll
            conn.busy = BusyPoll.of(asyncio.get_running_loop())
            conn.busy.acquire()
        try:
            msg = await conn.nc.request(
                self._control, wire.envelope(self.consumer_id, self._inbox,
                                             frame=self._auth_frame),
                timeout=cfg.auth_timeout)
        except nats.errors.NoRespondersError as exc:
            return ConnectRefusedError(f"no relay answers on {self._control}", url=self.url,
                                       cause=exc, phase="auth")
        except nats.errors.TimeoutError as exc:
            return AuthTimeoutError(f"no answer from the relay within auth_timeout="
                                    f"{cfg.auth_timeout:g} s", url=self.url, cause=exc)
        except Exception as exc:
            return conn.error or ConnectionClosedError("auth request failed", url=self.url,
                                                       cause=exc, phase="auth")
        try:
            batch = wire.decode(msg.data)
        except wire.WireError as exc:
            return ConnectionClosedError(f"the relay's answer is unreadable: {exc}",
                                         url=self.url, phase="auth")
        conn.epoch = batch.epoch
        for frame in batch.frames:
            if frame.startswith(b'{"type":"auth_ok"'):
                info = orjson.loads(frame).get("relay") or {}
                conn.lease_ttl = float(info.get("lease_ttl", conn.lease_ttl))
        self._feed_frames(conn, batch.frames)  # auth_ok / auth_error: the router answers
        self._feed.flush()
        if not conn.auth.done():
            return ConnectionClosedError("the relay did not answer auth", url=self.url,
                                         phase="auth")
        customer_id = conn.auth.result()  # AuthenticationError propagates (fatal)
        conn.authenticated = True
        self.connects += 1
        conn.tasks += [asyncio.ensure_future(self._sender(conn)),
                       asyncio.ensure_future(self._leases(conn))]
        self.handlers.authenticated(customer_id, attempt)
        await conn.closed.wait()
        return conn.error

    async def _end(self, conn: ConsumerConnection, will_reconnect: bool) -> None:
        """Forget a finished connection; tell the client if it was authenticated."""
        conn.drop(conn.error)
        if conn.busy is not None:  # never leave the loop spinning behind a connection
            conn.busy.release()
            conn.busy = None
        for task in conn.tasks:
            task.cancel()
        if conn.goodbye is not None:
            try:
                await asyncio.wait_for(conn.goodbye, 0.5)
            except (asyncio.TimeoutError, Exception):
                pass
        if conn.link is not None:
            conn.link.abort()
        if conn.nc is not None:
            try:
                await asyncio.wait_for(conn.nc.close(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass
        if conn.reader is not None:
            self._latency_ns.extend(conn.reader.latency_samples())
        if not conn.auth.done():
            conn.auth.cancel()
        elif not conn.auth.cancelled():
            conn.auth.exception()
        if self._conn is conn:
            self._conn = None
        if conn.authenticated:
            log.info("relay consumer: disconnected: %s", conn.error or "client closed")
            self.handlers.disconnected(conn.error, will_reconnect)
