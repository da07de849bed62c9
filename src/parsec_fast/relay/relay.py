"""The relay: one Parsec connection and its compiled books, republished on NATS.

::

    relay = Relay("wss://api.parsecapi.com/ws", api_key="...", nats_url="nats://10.0.0.5:4222")
    await relay.start()        # typed errors of the Parsec connection, LinkError for NATS
    ...
    await relay.close()        # consumers are told (BYE) and reconnect to the next relay

Pieces:

* ``upstream``: a :class:`~parsec_fast.client.client.Client` on the Parsec WebSocket (the cap,
  3002, the 3/s limit, resyncs, reconnects: its ledger and session). Its session's recording
  tap is the compiled :class:`~parsec_fast._relayscan.RelayTap`, which queues every frame on its
  book's outgoing batch just before the relay's own feed handler applies it.
* publishing: at the end of each upstream read (the tap's last frame), every dirty book's
  frames go out as one STREAM message on its subject, all of them in one write (:mod:`parsec_fast.relay.wire`), on the
  relay's :class:`~parsec_fast.relay.link.NatsLink`. The frames are untouched: consumers check
  the Parsec ``server_seq`` themselves.
* trust: when a relay book turns invalid for a reason its consumers cannot see in the frames
  (the upstream connection dropped, a rejected frame...), a ``resync_required`` frame is queued
  on its subject; a gap, ``resync_required`` and ``needs_refresh`` travel in the frames.
* the control service (:mod:`parsec_fast.relay.control`): ``auth`` (``auth_ok`` carries the
  relay's epoch and parameters), ``subscribe`` / ``resync`` answered with a snapshot built from
  the relay's book (:func:`~parsec_fast.relay.frames.snapshot_frame`) once it is valid — never
  a Parsec control message — ``unsubscribe``, ``lease``, ``bye``.
* wants (:mod:`parsec_fast.relay.wants`): the upstream client holds the union of the live
  consumers' wants; a market it refuses reaches the consumers that asked as the Parsec
  ``error`` frame (2002, 3002, ...).
* heartbeats every ``heartbeat_interval`` on ``{prefix}._relay.heartbeat``, BYE on close.

Order on the wire: a reply is written after every stream message of its book published so
far (the relay flushes first), and carries that subject's last message number, so a consumer
replays exactly the stream messages that follow the snapshot.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._feed import FeedHandler, Subscription
from .._relayscan import BookOut, RelayTap
from ..client.client import Client
from ..client.config import ClientConfig
from ..client.session import Session, SessionHandlers
from ..codes import ErrorCode
from ..errors import SubscriptionError
from ..events import BookInvalid, BookRecovered, SubscriptionFailed
from ..rules import BookKey, book_key
from ..selectors import MarketSelector
from . import frames, wire
from .config import RelayConfig
from .control import ControlService
from .link import LinkError, NatsLink
from .upstream import RelaySession
from .wants import Consumer, Wants

__all__ = ["Relay", "RelayStats"]

log: logging.Logger = logging.getLogger("parsec_fast.relay")

#: Invalid reasons the consumers see in the frames themselves (no resync_required needed).
_VISIBLE_REASONS = frozenset(("gap", "resync_required", "needs_refresh"))


@dataclass(slots=True)
class RelayStats:
    """Counters of one relay."""

    frames_in: int = 0
    frames_out: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    snapshots_served: int = 0
    errors_sent: int = 0
    resync_required_sent: int = 0
    dropped_messages: int = 0
    oversized_messages: int = 0
    consumers: int = 0
    books: int = 0
    waiting: int = 0


class Relay:
    """One Parsec connection republished on NATS (see the module docstring).

    ``upstream_url`` / ``api_key`` / ``terminal_token`` as for :class:`~parsec_fast.Client`
    (a ``ws://`` / ``wss://`` URL or an ``http(s)://`` REST base); ``client_config`` for the
    upstream client's options; ``nats_url`` ``nats://[user:pass@]host:port``.
    """

    def __init__(self, upstream_url: str | None = None, api_key: str | None = None, *,
                 nats_url: str = "nats://127.0.0.1:4222", terminal_token: str | None = None,
                 config: RelayConfig | None = None,
                 client_config: ClientConfig | None = None) -> None:
        self.config: RelayConfig = config or RelayConfig()
        self.nats_url: str = nats_url
        #: This relay instance (consumers see a new one as a restart).
        self.epoch: int = int.from_bytes(os.urandom(8), "little") >> 1 or 1
        self.stats: RelayStats = RelayStats()
        self.wants: Wants = Wants(self.config.lease_ttl)
        self._tap = RelayTap(self._route_other, self._schedule_flush, self._flush)
        self._feed: FeedHandler | None = None
        self.upstream: Client = Client(upstream_url, api_key, terminal_token=terminal_token,
                                       config=client_config or ClientConfig(),
                                       transport=self._make_session)
        if self.upstream.url.split(":", 1)[0].lower() not in ("ws", "wss"):
            raise ValueError(f"the relay's upstream must be a Parsec WebSocket URL, got "
                             f"{self.upstream.url!r}")
        self._prefix = self.config.prefix
        self._heartbeat_subject = wire.heartbeat_subject(self._prefix).encode()
        self._control = ControlService(self, self._prefix, self.config.consumer_control_rate)
        self._link: NatsLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._upstream_sel: dict[BookKey, MarketSelector] = {}
        self._lingering: dict[BookKey, float] = {}
        self._refused: dict[BookKey, tuple[int, str, float]] = {}
        self._waiting: dict[BookKey, dict[str, Consumer]] = {}
        self._meta: dict[BookKey, tuple[object, dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_scheduled = False
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------------
    def _make_session(self, url: str, auth_frame: bytes, config: ClientConfig,
                      feed: FeedHandler, handlers: SessionHandlers) -> Session:
        self._feed = feed
        return RelaySession(url, auth_frame, config, feed, handlers, self._tap)

    async def start(self, timeout: float = 10.0) -> Relay:
        """Connect to NATS, then to Parsec (its typed errors are raised as the client raises
        them), then serve. LinkError when the NATS server cannot be reached."""
        self._loop = asyncio.get_running_loop()
        name = f"parsec_fast relay {self._prefix}"
        self._link = await NatsLink.open(self.nats_url, name=name, on_lost=self._link_lost,
                                         timeout=timeout)
        up = self.upstream
        up.on("book_invalid", self._on_invalid)
        up.on("book_recovered", self._on_recovered)
        up.on("subscription_failed", self._on_failed)
        try:
            await up.start()
            await self._control.start(self.nats_url, name=name, timeout=timeout)
        except BaseException:
            await self._shutdown(goodbye=False)
            raise
        self._tasks = [asyncio.ensure_future(self._heartbeats()),
                       asyncio.ensure_future(self._maintenance())]
        log.info("relay %s: %s -> %s (epoch %x)", self._prefix, up.url, self.nats_url, self.epoch)
        return self

    async def __aenter__(self) -> Relay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Tell the consumers (BYE: they reconnect at once), then stop."""
        await self._shutdown(goodbye=True)

    async def abort(self) -> None:
        """Stop without a goodbye, as a crash would (consumers notice the missing heartbeats)."""
        await self._shutdown(goodbye=False)

    async def _shutdown(self, goodbye: bool) -> None:
        if self._closing:
            return
        self._closing = True
        for task in self._tasks:
            task.cancel()
        link = self._link
        if goodbye and link is not None and link.is_open:
            self._flush()
            link.publish(self._heartbeat_subject, wire.encode(wire.Kind.BYE, self.epoch, 0, []))
            try:
                await link.ping(1.0)
            except (LinkError, asyncio.TimeoutError, ConnectionError):
                pass
        await self._control.close()
        await self.upstream.close()
        if link is not None:
            if goodbye:
                link.close()
            else:
                link.abort()
        for task in self._tasks:
            try:
                await task
            except BaseException:
                pass

    @property
    def connected(self) -> bool:
        """Upstream connected and the NATS link open."""
        return self.upstream.connected and self._link is not None and self._link.is_open

    def book(self, parsec_id: str, outcome: str = "Yes") -> Subscription | None:
        """The relay's own Subscription of a relayed book, or None."""
        return None if self._feed is None else self._feed.get(parsec_id, outcome)

    def snapshot_stats(self) -> RelayStats:
        """The counters, with the current consumers, books and waiting requests."""
        s = self.stats
        s.frames_in = self._tap.frames
        s.frames_out = sum(o.frames_out for o in self._tap.books())
        s.messages_out = sum(o.messages_out for o in self._tap.books())
        s.bytes_out = self._link.out_bytes if self._link is not None else s.bytes_out
        s.consumers = len(self.wants)
        s.books = len(self._upstream_sel)
        s.waiting = sum(len(w) for w in self._waiting.values())
        return s

    # -- the tap's side -----------------------------------------------------------------------
    def _route_other(self, payload: bytes) -> BookOut | None:
        """The book of a frame the scanner did not route (activity, resync_required, ...)."""
        import orjson
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if type(obj) is not dict:
            return None
        pid = obj.get("parsec_id")
        if not isinstance(pid, str) or obj.get("type") in ("error", "wallet_activity"):
            return None
        outcome = obj.get("outcome")
        out = self._tap.book(pid, outcome if isinstance(outcome, str) else "Yes")
        if out is not None and obj.get("type") == "orderbook":
            out.last_snapshot = payload
        return out

    def _schedule_flush(self) -> None:
        loop = self._loop
        if loop is not None and self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_handle = None
        self._flush()

    def _flush(self) -> None:
        """Publish every dirty book's batch (at the end of a read, before any reply): one write
        of every book's PUB command (``RelayTap.publish_batch``)."""
        link = self._link
        if link is None or not link.is_open:
            dirty = self._tap.take_dirty()
            for out in dirty:  # lost: each message still takes its number
                self.stats.dropped_messages += len(out.encode(self.epoch, 1 << 30))
            return
        limit = min(self.config.max_batch_bytes, link.max_payload - 64)
        data, messages, dropped = self._tap.publish_batch(self.epoch, limit, link.max_payload)
        self.stats.oversized_messages += dropped
        self.stats.dropped_messages += dropped
        if messages and not link.write_commands(data, messages, len(data)):
            self.stats.dropped_messages += messages

    def _reply(self, inbox: str, frames_: list[bytes], out: BookOut | None = None) -> None:
        link = self._link
        if link is None or not inbox:
            return
        if out is not None:
            self._flush()
            body = wire.encode(wire.Kind.REPLY, self.epoch, out.rseq, frames_, out.subject)
        else:
            body = wire.encode(wire.Kind.REPLY, self.epoch, 0, frames_)
        if not link.publish(inbox.encode(), body):
            self.stats.dropped_messages += 1

    def send_error(self, inbox: str, code: int, message: str,
                   selector: MarketSelector | None = None) -> None:
        """Answer a request with a Parsec ``error`` frame (market-scoped with a selector)."""
        self.stats.errors_sent += 1
        out = None
        if selector is not None:
            out = self._tap.add_book(selector.canonical_id, selector.outcome_or_default,
                                     self._subject(selector.canonical_id,
                                                   selector.outcome_or_default))
        self._reply(inbox, [frames.error_frame(code, message, selector.canonical_id
                                               if selector is not None else None)], out)

    def _subject(self, parsec_id: str, outcome: str) -> bytes:
        return wire.book_subject(self._prefix, parsec_id, outcome).encode()

    # -- upstream events ----------------------------------------------------------------------
    def _on_invalid(self, event: BookInvalid) -> None:
        if event.reason in _VISIBLE_REASONS:
            return
        out = self._tap.book(event.parsec_id, event.outcome)
        if out is not None:
            self.stats.resync_required_sent += 1
            self._tap.inject(out, frames.resync_required_frame(event.parsec_id, event.outcome))

    def _on_recovered(self, event: BookRecovered) -> None:
        waiting = self._waiting.pop(book_key(event.parsec_id, event.outcome), None)
        if waiting:
            for consumer in waiting.values():
                self._serve(book_key(event.parsec_id, event.outcome), consumer)

    def _on_failed(self, event: SubscriptionFailed) -> None:
        if not event.outcome:  # an address
            return
        key = book_key(event.parsec_id, event.outcome)
        self._refused[key] = (event.code, event.message, time.monotonic())
        self._upstream_sel.pop(key, None)
        self._refuse(key, event.code, event.message)

    def _refuse(self, key: BookKey, code: int, message: str) -> None:
        """Tell every consumer that wants ``key`` it was refused; nobody wants it any more."""
        self._waiting.pop(key, None)
        sel = MarketSelector(parsec_id=key[0], outcome=key[1])
        for consumer in self.wants.forget_book(key):
            self.send_error(consumer.inbox, code, message, sel)

    # -- serving ------------------------------------------------------------------------------
    def _serve(self, key: BookKey, consumer: Consumer) -> None:
        """Send ``consumer`` the relay's snapshot of ``key`` if its book is valid and the
        upstream connected; else remember the request until it is."""
        sub = self.book(*key)
        out = self._tap.book(*key)
        if sub is None or out is None or not sub.book.is_valid or not self.upstream.connected:
            waiting = self._waiting.setdefault(key, {})
            if consumer.id in waiting or sum(len(w) for w in self._waiting.values()) < \
                    self.config.max_waiting:
                waiting[consumer.id] = consumer
            return
        cached = self._meta.get(key)
        if cached is None or cached[0] is not out.last_snapshot:
            cached = (out.last_snapshot, frames.snapshot_meta(out.last_snapshot))
            self._meta[key] = cached
        self.stats.snapshots_served += 1
        self._reply(consumer.inbox, [frames.snapshot_frame(sub, cached[1])], out)

    # -- requests (the control service calls these) -------------------------------------------
    def on_auth(self, consumer: str, inbox: str, reply: str, frame: dict[str, Any]) -> None:
        """A consumer's ``auth`` / ``auth_terminal``."""
        key = self.config.consumer_key
        credential = frame.get("api_key" if frame.get("type") == "auth" else "token")
        if key is not None and credential != key:
            self._reply(reply, [frames.auth_error_frame(ErrorCode.INVALID_CREDENTIALS,
                                                        "invalid api key (relay)")])
            self.wants.drop(consumer)
            return
        state = self.wants.touch(consumer, inbox, time.monotonic())
        state.authenticated = True
        info = {"epoch": self.epoch, "prefix": self._prefix, "lease_ttl": self.config.lease_ttl,
                "heartbeat_interval": self.config.heartbeat_interval}
        self._reply(reply, [frames.auth_ok_frame(self.upstream.customer_id or "relay", info)])

    def on_subscribe(self, consumer: str, inbox: str, selectors: list[MarketSelector],
                     addresses: bool) -> None:
        """A consumer's ``subscribe``: want, then answer each market (snapshot or error)."""
        if addresses:
            self.send_error(inbox, ErrorCode.INVALID_MESSAGE,
                            "the relay does not carry address subscriptions")
        now = time.monotonic()
        fresh, refused = [], []
        for sel in selectors:
            why = self._refused.get(sel.key)
            if why is not None and now - why[2] < self.config.refusal_ttl:
                refused.append((sel, why))
            else:
                fresh.append(sel)
        state = self.wants.add(consumer, fresh, inbox, now)
        for sel, (code, message, _) in refused:
            self.send_error(inbox, code, message, sel)
        self._sync_upstream()
        for sel in fresh:
            if sel.key in state.wants:  # not refused at once by the upstream ledger
                self._serve(sel.key, state)

    def on_unsubscribe(self, consumer: str, selectors: list[MarketSelector]) -> None:
        """A consumer's ``unsubscribe``."""
        keys = [sel.key for sel in selectors]
        self.wants.remove(consumer, keys, time.monotonic())
        for key in keys:
            waiting = self._waiting.get(key)
            if waiting is not None:
                waiting.pop(consumer, None)
        self._schedule_sync()

    def on_resync(self, consumer: str, inbox: str, selector: MarketSelector) -> None:
        """A consumer's ``resync``: a snapshot from the relay's book once it is valid."""
        state = self.wants.touch(consumer, inbox, time.monotonic())
        if selector.key not in state.wants:
            self.send_error(inbox, ErrorCode.INVALID_MESSAGE, "not subscribed", selector)
            return
        self._serve(selector.key, state)

    def on_lease(self, consumer: str, inbox: str, selectors: list[MarketSelector]) -> None:
        """A consumer's renewal with its whole want list."""
        state = self.wants.get(consumer)
        before = set(state.wants) if state is not None else set()
        state = self.wants.lease(consumer, selectors, inbox, time.monotonic())
        if set(state.wants) != before:
            self._schedule_sync()

    def on_bye(self, consumer: str) -> None:
        """A consumer closed: its wants stop counting now."""
        if self.wants.drop(consumer) is not None:
            self._forget_waiting(consumer)
            self._schedule_sync()

    def _forget_waiting(self, consumer: str) -> None:
        for waiting in self._waiting.values():
            waiting.pop(consumer, None)

    # -- the upstream's subscriptions ---------------------------------------------------------
    def _schedule_sync(self) -> None:
        if not self._sync_scheduled and self._loop is not None:
            self._sync_scheduled = True
            self._loop.call_soon(self._sync_upstream)

    def _sync_upstream(self) -> None:
        """Make the upstream client want the union of the consumers' wants (books that left it
        linger ``unsubscribe_linger`` seconds first)."""
        self._sync_scheduled = False
        if self._closing:
            return
        union = self.wants.union()
        now = time.monotonic()
        new: list[MarketSelector] = []
        for key, sel in union.items():
            self._lingering.pop(key, None)
            current = self._upstream_sel.get(key)
            depth = max(sel.depth or 50, (current.depth or 50) if current else 0)
            if current is not None and (current.depth or 50) >= depth:
                continue
            sel = MarketSelector(parsec_id=key[0], outcome=sel.outcome_or_default, depth=depth)
            self._tap.add_book(key[0], sel.outcome_or_default, self._subject(*key))
            self._upstream_sel[key] = sel
            new.append(sel)
        for key in self._upstream_sel:
            if key not in union and key not in self._lingering:
                self._lingering[key] = now
        if new:
            self._subscribe_upstream(new)

    def _subscribe_upstream(self, selectors: Iterable[MarketSelector]) -> None:
        # wait=False: the upstream ledger takes them at once; answers come as snapshots
        # (book_recovered) or subscription_failed events.
        task = asyncio.ensure_future(self.upstream.subscribe(list(selectors), wait=False))
        task.add_done_callback(self._subscribed)

    def _subscribed(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, SubscriptionError):  # the cap is known to be reached: refused now
            for (pid, outcome), (code, message) in exc.failures.items():
                key = book_key(pid, outcome)
                self._upstream_sel.pop(key, None)
                self._refused[key] = (code, message, time.monotonic())
                self._refuse(key, code, message)
        elif exc is not None:
            log.warning("relay: upstream subscribe failed: %s", exc)

    # -- background ---------------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        while True:
            link = self._link
            if link is not None and link.is_open:
                link.publish(self._heartbeat_subject,
                             wire.encode(wire.Kind.HEARTBEAT, self.epoch, 0,
                                         [frames.heartbeat_frame()]))
            await asyncio.sleep(self.config.heartbeat_interval)

    async def _maintenance(self) -> None:
        while True:
            await asyncio.sleep(min(0.25, self.config.heartbeat_interval))
            now = time.monotonic()
            gone = self.wants.expire(now)
            for consumer in gone:
                log.info("relay: consumer %s lease expired", consumer.id)
                self._control.forget(consumer.id)
                self._forget_waiting(consumer.id)
            if gone:
                self._sync_upstream()
            linger = self.config.unsubscribe_linger
            done = [k for k, t in self._lingering.items() if now - t >= linger]
            if done:
                for key in done:
                    del self._lingering[key]
                    self._upstream_sel.pop(key, None)
                    self._waiting.pop(key, None)
                await self.upstream.unsubscribe([MarketSelector(parsec_id=k[0], outcome=k[1])
                                                 for k in done])
            for key in [k for k, w in self._refused.items()
                        if now - w[2] >= self.config.refusal_ttl]:
                del self._refused[key]
            if self._link is None or not self._link.is_open:
                await self._reconnect_link()

    def _link_lost(self, error: BaseException | None) -> None:
        if not self._closing:
            log.warning("relay: NATS data link lost (%s); reconnecting", error)

    async def _reconnect_link(self) -> None:
        try:
            self._link = await NatsLink.open(self.nats_url, name=f"parsec_fast relay "
                                             f"{self._prefix}", on_lost=self._link_lost,
                                             timeout=2.0)
            log.info("relay: NATS data link reconnected")
        except LinkError as exc:
            log.debug("relay: NATS reconnect failed: %s", exc)
