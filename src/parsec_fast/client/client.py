"""The asyncio Parsec client: live compiled books over picows, with recovery built in.

::

    import asyncio
    from parsec_fast import Client

    async def main() -> None:
        async with Client("wss://api.parsecapi.com/ws", api_key="...") as client:
            await client.subscribe(["polymarket:572473",
                                    {"parsec_id": "kalshi:KXBTC-26MAR10", "outcome": "No"}])
            book = client.book("polymarket:572473")          # the live compiled Book
            async for ev in client.events(kinds=["book_updated"]):
                print(ev.parsec_id, ev.seq, book.mid)

    asyncio.run(main())

:class:`Client` wires four pieces that each own their state:

* the compiled :class:`~parsec_fast._feed.FeedHandler` (books, parsing, sequencing), fed in
  place by the compiled listener of each connection;
* the :class:`~parsec_fast.client.session.Session` (connect, auth, backoff, TLS, dead-connection
  detection, typed errors);
* the :class:`~parsec_fast.client.ledger.SubscriptionLedger` (wants, control messages at most
  3/s, resync coalescing, 3001/3002, PROTOCOL.md §6 decisions);
* the :class:`~parsec_fast.client.bus.EventBus` (callbacks, bounded streams, drop policy).

It routes non-book messages between them, runs the control-message sender and a maintenance
tick (local staleness, dead connection, unanswered requests, recording flush), and offers the
public API. Callbacks run on the receive path: keep them short; an exception in a callback is
logged and counted (``metrics.callback_errors``) and never reaches the books.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Optional, TypeVar

from .. import protocol
from .._book import Book
from .._feed import FeedHandler, Subscription
from .._histogram import LatencyHistogram
from ..codes import DEFAULT_WS_URL
from ..errors import AuthenticationError, ConnectTimeoutError, ParsecConnectionError, ProtocolError
from ..events import Connected, Disconnected, Reconnecting, SubscriptionFailed
from ..ratelimit import RateLimiter
from ..recording import FrameRecorder
from ..rules import book_key
from ..selectors import AddressLike, AddressSelector, MarketLike, MarketSelector
from .config import ClientConfig, ClientOptions
from .events_api import EventSource
from .ledger import SubscriptionLedger
from .metrics import ClientMetrics
from .router import MessageHook, Router
from .runner import loop_factory, run_in_loop
from .session import SessionHandlers
from .transport import TransportFactory, transport_for

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Client", "FrameHook", "MessageHook"]

log: logging.Logger = logging.getLogger("parsec_fast.client")

T = TypeVar("T")

#: ``hook(subscription, frame)`` for every applied book frame (the parsed snapshot, or None for
#: a delta) and every needs_refresh frame (parsed); see :meth:`Client.set_frame_hook`.
FrameHook = Callable[[Subscription, Optional[dict[str, Any]]], None]


def _as_list(items: object) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, (str, Mapping, MarketSelector, AddressSelector, tuple)):
        return [items]
    return list(items)  # type: ignore[call-overload]


class Client(EventSource):
    """Parsec WebSocket client with live compiled order books (see the module docstring).

    ``Client(url, api_key, config=ClientConfig(...))`` or ``Client(url, api_key, **options)``
    (the fields of :class:`~parsec_fast.client.config.ClientConfig`). With neither ``api_key``
    nor ``terminal_token``, the key is read from ``$PARSEC_API_KEY``; with no ``url``, from
    ``$PARSEC_API_BASE_URL`` (a REST base such as ``https://api.parsecapi.com``, as the official
    SDK reads it), else the production URL. ``http(s)://`` bases become ``ws(s)://…/ws``.
    The URL's scheme picks the transport (:mod:`parsec_fast.client.transport`); ``transport``
    gives one explicitly.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *,
                 terminal_token: str | None = None, config: ClientConfig | None = None,
                 transport: TransportFactory | None = None,
                 **options: Unpack[ClientOptions]) -> None:
        import os

        if config is not None and options:
            raise TypeError("give either config=ClientConfig(...) or keyword options, not both")
        self.config: ClientConfig = config if config is not None else ClientConfig(**options)
        if api_key is None and terminal_token is None:
            api_key = os.environ.get("PARSEC_API_KEY") or None
            if api_key is None:
                raise ValueError("no credential: give api_key or terminal_token, or set "
                                 "PARSEC_API_KEY")
        elif api_key is not None and terminal_token is not None:
            raise ValueError("give exactly one of api_key or terminal_token")
        auth_frame = (protocol.auth(api_key) if api_key is not None
                      else protocol.auth_terminal(terminal_token))  # type: ignore[arg-type]
        if url is None:
            url = os.environ.get("PARSEC_API_BASE_URL") or DEFAULT_WS_URL
        if transport is None:
            transport = transport_for(url)
            if transport is None:  # a REST base: https://X -> wss://X/ws, as the SDKs derive it
                url = protocol.ws_url(url)
                transport = transport_for(url)
        if transport is None:
            raise ValueError(f"no transport for URL {url!r}")
        #: The URL the client connects to.
        self.url: str = url
        cfg = self.config
        super().__init__(cfg.event_queue_size)
        self._bus = self.event_bus
        self._feed = FeedHandler(parser=cfg.parser, activity_seq=cfg.activity_seq,
                                 max_levels=cfg.max_levels)
        self._timers: deque[asyncio.TimerHandle] = deque(maxlen=256)
        self._ledger = SubscriptionLedger(
            self._feed, RateLimiter(cfg.control_rate, cfg.control_window,
                                    margin=cfg.control_margin),
            schedule=self._schedule, wake=self._wake_control, on_failed=self._on_failed,
            control_period=cfg.control_period, coalesce_threshold=cfg.coalesce_threshold,
            request_timeout=cfg.request_timeout, on_book_added=self._record_added,
            on_book_removed=self._record_removed)
        self._recorder: FrameRecorder | None = None
        self._session = transport(self.url, auth_frame, cfg, self._feed, SessionHandlers(
            authenticated=self._on_authenticated, disconnected=self._on_disconnected,
            reconnecting=self._on_reconnecting, problem=self._on_problem))
        self._router = Router(self._feed, self._bus, self._ledger, self._session, self._notify)
        self._customer_id: str | None = None
        self._fatal: BaseException | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_ready: asyncio.Future[None] | None = None
        self._control_wake = asyncio.Event()
        self._changed = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect and wait (``open_timeout``) until authenticated.

        Raises :class:`~parsec_fast.errors.AuthenticationError` for a refused credential and
        the typed :class:`~parsec_fast.errors.ParsecConnectionError` of a failed first
        connection (DNS, refused, TLS, handshake, auth timeout: at once, unless
        ``retry_first_connect``); the client is closed then."""
        if self._loop is not None:
            raise RuntimeError("client already started")
        self._loop = asyncio.get_running_loop()
        self._first_ready = self._loop.create_future()
        cfg = self.config
        if cfg.record_path is not None:
            self._recorder = FrameRecorder(cfg.record_path,
                                           fsync_interval=cfg.record_fsync_interval)
            self._session.set_tap(self._recorder.tap)
            self._recorder.meta({"event": "config", "parser": cfg.parser,
                                 "activity_seq": cfg.activity_seq, "max_levels": cfg.max_levels,
                                 "url": self.url})
            for sub in self._ledger.subscriptions():
                self._record_added(sub)
        self._tasks = [asyncio.ensure_future(self._run_session()),
                       asyncio.ensure_future(self._control_loop()),
                       asyncio.ensure_future(self._maintenance_loop())]
        for task in self._tasks:
            task.add_done_callback(self._task_done)
        try:
            await asyncio.wait_for(asyncio.shield(self._first_ready), cfg.open_timeout)
        except asyncio.TimeoutError:
            await self.close()
            last = self._session.last_error
            if last is not None:
                raise last from None
            raise ConnectTimeoutError(f"not connected within open_timeout={cfg.open_timeout:g} s",
                                      url=self.url) from None
        except BaseException:
            await self.close()
            raise

    async def _run_session(self) -> None:
        try:
            await self._session.run()
        except (AuthenticationError, ParsecConnectionError) as exc:
            self._set_fatal(exc)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("client task failed", exc_info=task.exception())
            self._set_fatal(task.exception())  # type: ignore[arg-type]

    async def close(self) -> None:
        """Close the connection, stop every task, end event streams, close the recording and
        the shared-memory publisher, if any (:func:`parsec_fast.shared.publish`: its readers
        see every book untrustworthy, "client closed", and the region is unlinked)."""
        if self._closing:
            return
        self._closing = True
        self._session.close()
        self._feed.close_sink("client closed")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:
                pass
        for timer in self._timers:
            timer.cancel()
        self._ledger.fail_waiters(ConnectionError("client closed"))
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_exception(ConnectionError("client closed"))
            self._first_ready.exception()
        self._bus.close()
        if self._recorder is not None:
            self._recorder.close()

    def run(self, main: Callable[[Client], Awaitable[T]] | None = None) -> T | None:
        """Blocking helper: create an event loop (uvloop when installed, see ``use_uvloop``;
        with ``busy_poll``, the busy-polling loop of :mod:`parsec_fast.client.busypoll`), open
        the client, run ``await main(client)`` (or until interrupted), close."""
        async def body() -> T | None:
            async with self:
                if main is None:
                    await asyncio.Event().wait()
                    return None
                return await main(self)
        cfg = self.config
        return run_in_loop(body(), loop_factory(cfg.use_uvloop, busy_poll=cfg.busy_poll))

    @property
    def fatal_error(self) -> BaseException | None:
        """The error that stopped the client for good (a refused credential, a failed first
        connection, a lost connection with ``reconnect=False``), else None."""
        return self._fatal

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    def _set_fatal(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_exception(exc)
            self._first_ready.exception()  # also raised from start(); avoid "never retrieved"
        self._notify()

    def _notify(self) -> None:
        self._changed.set()

    def _wake_control(self) -> None:
        self._control_wake.set()

    def _schedule(self, delay: float, fn: Callable[[], None]) -> None:
        if self._loop is not None and not self._closing:
            self._timers.append(self._loop.call_later(delay, fn))

    # -- hooks ------------------------------------------------------------------------------------
    def set_frame_hook(self, hook: FrameHook | None) -> None:
        """Call ``hook(subscription, frame)`` for every applied book frame, on the receive
        path, before the batch's coalesced ``book_updated`` events: ``frame`` is the parsed
        snapshot object (its fields: title, tick size, ...), or None for a delta. Also for every
        snapshot or delta not applied because its ``book_state`` is ``"needs_refresh"``:
        ``frame`` is then the parsed frame (its ``type`` tells which), and the book is unchanged
        and invalid, a resync on its way, as without a hook. For adapters that must report
        every frame (``parsec_fast.compat``). It costs one Python call per delta, and snapshots
        and needs_refresh frames take the orjson path while it is set; it must not raise (an
        exception drops the connection). None removes it."""
        self._feed.on_book_frame = hook

    def set_message_hook(self, hook: MessageHook | None) -> None:
        """Call ``hook(message)`` with every parsed non-book message (``auth_ok``, ``activity``,
        ``heartbeat``, ``error``, ...) after the client handled it. Must not raise. None
        removes it."""
        self._router.message_hook = hook

    # -- session callbacks ------------------------------------------------------------------------
    def _on_authenticated(self, customer_id: str, attempt: int) -> None:
        self._customer_id = customer_id
        if self._recorder is not None:
            self._recorder.meta({"event": "connected"})
        self._ledger.on_connected()
        log.info("connected to %s as %s", self.url, customer_id)
        self._bus.emit("connected", Connected(self.url, customer_id, attempt))
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_result(None)
        self._notify()

    def _on_disconnected(self, error: ParsecConnectionError | None, will_reconnect: bool) -> None:
        self._ledger.on_disconnected()
        self._feed.flush()
        self._feed.invalidate_all("disconnected")
        if self._recorder is not None:
            self._recorder.meta({"event": "disconnected"})
        reason = "client closed" if error is None else str(error)
        self._bus.emit("disconnected", Disconnected(reason, will_reconnect, error))
        self._notify()

    def _on_reconnecting(self, attempt: int, delay: float,
                         error: ParsecConnectionError | None) -> None:
        self._bus.emit("reconnecting", Reconnecting(attempt, delay, error))

    def _on_problem(self, err: ProtocolError) -> None:
        self._router.protocol_error(err)

    def _on_failed(self, event: SubscriptionFailed) -> None:
        self._bus.emit("subscription_failed", event)

    def _record_added(self, sub: Subscription) -> None:
        if self._recorder is not None:
            self._recorder.meta({"event": "add", "parsec_id": sub.parsec_id,
                                 "outcome": sub.outcome})

    def _record_removed(self, sub: Subscription) -> None:
        if self._recorder is not None:
            self._recorder.meta({"event": "remove", "parsec_id": sub.parsec_id,
                                 "outcome": sub.outcome})

    # -- loops ------------------------------------------------------------------------------------
    async def _control_loop(self) -> None:
        ledger, session = self._ledger, self._session
        while True:
            if not (session.connected and ledger.has_work()):
                self._control_wake.clear()
                await self._control_wake.wait()
                continue
            await ledger.limiter.wait()
            if not session.connected:
                continue
            now = time.monotonic()
            message = ledger.next_message(now)
            if message is None:
                await asyncio.sleep(0)
                continue
            if not ledger.limiter.try_acquire():  # pragma: no cover - wait() just said free
                continue
            session.send(message.frame)
            ledger.mark_sent(message, now)
            await asyncio.sleep(0)

    async def _maintenance_loop(self) -> None:
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.config.stale_check_interval)
            now = time.monotonic()
            self._feed.check_stale(time.monotonic_ns())
            self._session.check_alive(time.monotonic_ns())
            if self._session.connected:
                self._ledger.sweep(now)
            if self._recorder is not None and now - last_flush >= 1.0:
                self._recorder.flush()
                last_flush = now

    # -- subscriptions ----------------------------------------------------------------------------
    async def subscribe(self, markets: Iterable[MarketLike] | MarketLike | None = None,
                        depth: int | None = None, *,
                        addresses: Iterable[AddressLike] | AddressLike | None = None,
                        wait: bool = True, timeout: float | None = 30.0) -> list[Subscription]:
        """Subscribe to markets (by ``"exchange:market_id"``, ``{"parsec_id"...}``,
        ``{"exchange", "market_id"}`` or :class:`~parsec_fast.selectors.MarketSelector`;
        ``outcome`` defaults to ``"Yes"``; ``depth`` applies to selectors without their own)
        and/or wallet addresses.

        Works at any time (before connecting, the subscriptions go out with the first batch).
        With ``wait`` (default) it returns once every new market has its first snapshot and
        raises :class:`~parsec_fast.errors.SubscriptionError` for markets the server refused
        (:class:`~parsec_fast.errors.SubscriptionLimitError` when the account's cap was hit;
        accepted markets stay), or ``TimeoutError`` after ``timeout`` (the subscriptions stay
        wanted). Raises ``ValueError`` for a bad selector and ``SubscriptionLimitError`` at once
        while the cap is known to be reached. Returns the subscriptions, in order.
        """
        selectors = [MarketSelector.coerce(item).with_defaults(depth) for item in _as_list(markets)]
        address_sels = [AddressSelector.coerce(a) for a in _as_list(addresses)]
        subs = self._ledger.add(selectors, address_sels)
        keys = {s.key for s in selectors}
        if not wait or not keys:
            return subs
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(error: BaseException | None) -> None:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

        waiter = self._ledger.add_waiter(keys, settle)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            self._ledger.discard_waiter(waiter)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved (raised above, or nobody waits any more)
        return subs

    async def unsubscribe(self, markets: Iterable[MarketLike] | MarketLike | None = None, *,
                          addresses: Iterable[AddressLike] | AddressLike | None = None) -> None:
        """Stop markets and/or addresses (same selector forms as :meth:`subscribe`; outcome
        defaults to ``"Yes"``). Their books are dropped from the client at once."""
        self._ledger.remove([MarketSelector.coerce(item) for item in _as_list(markets)],
                            [AddressSelector.coerce(a) for a in _as_list(addresses)])

    # -- queries ----------------------------------------------------------------------------------
    def book(self, parsec_id: str, outcome: str = "Yes") -> Book:
        """The live compiled :class:`~parsec_fast.Book` of a subscribed market outcome
        (``KeyError`` if not subscribed). Check ``client.subscription(...).trustworthy``
        before trading on it."""
        return self.subscription(parsec_id, outcome).book

    def subscription(self, parsec_id: str, outcome: str = "Yes") -> Subscription:
        """The :class:`~parsec_fast.Subscription` (``trustworthy``, ``why_not()``, states,
        stats) of a subscribed market outcome; ``KeyError`` if not subscribed."""
        sub = self._ledger.subscription(book_key(parsec_id, outcome))
        if sub is None:
            raise KeyError(f"not subscribed: {parsec_id}/{outcome}")
        return sub

    def subscriptions(self) -> list[Subscription]:
        """Every subscribed market outcome's Subscription."""
        return self._ledger.subscriptions()

    @property
    def addresses(self) -> list[AddressSelector]:
        """Subscribed wallet addresses."""
        return self._ledger.addresses

    @property
    def customer_id(self) -> str | None:
        """From the last ``auth_ok`` (None before)."""
        return self._customer_id

    @property
    def connected(self) -> bool:
        """True while an authenticated connection is open."""
        return self._session.connected

    @property
    def connection_frames(self) -> int:
        """Text frames received on the current connection (0 when not connected)."""
        return self._session.frames

    @property
    def control_log(self) -> deque[tuple[float, str]]:
        """(monotonic time, kind) of every control message sent (the last 10,000)."""
        return self._ledger.control_log  # type: ignore[return-value]

    @property
    def feed_handler(self) -> FeedHandler:
        """The compiled feed handler, for diagnostics (its callbacks belong to the client:
        use :meth:`set_frame_hook` / :meth:`set_message_hook`)."""
        return self._feed

    @property
    def metrics(self) -> ClientMetrics:
        """Counters and latency percentiles (see :class:`ClientMetrics`)."""
        ledger, session, bus = self._ledger, self._session, self._bus
        return ClientMetrics.collect(
            self._feed.stats, ledger.sent_counts, getattr(session, "latency_histogram", None),
            coalesced_resyncs=ledger.coalesced, rate_limited=ledger.rate_limited,
            limit_reached=ledger.limit_reached, connects=session.connects,
            oversized_messages=session.oversized_messages, callback_errors=bus.callback_errors,
            events_dropped=bus.events_dropped, callback_latency=self._router.callback_latency)

    def latency_histogram(self, which: Literal["apply", "callback"] = "apply") -> LatencyHistogram:
        """A copy of one of the client's latency histograms (ns, since it was created):
        ``"apply"``, read to the end of a frame's apply (sampled every
        ``latency_sample_every`` frames), or ``"callback"``, read to the dispatch of a
        ``book_updated`` event (see :class:`ClientMetrics`). Merge several clients' with
        ``LatencyHistogram.merge``; any percentile with ``percentile(q)``."""
        if which == "apply":
            hist = getattr(self._session, "latency_histogram", None)
            return hist.copy() if hist is not None else LatencyHistogram()
        if which == "callback":
            return self._router.callback_latency.copy()
        raise ValueError(f"which must be 'apply' or 'callback', got {which!r}")

    async def wait_ready(self, timeout: float | None = 10.0) -> None:
        """Wait until connected and every subscribed book is valid. Raises the fatal error
        (e.g. :class:`~parsec_fast.errors.AuthenticationError`) if the client stopped,
        ``TimeoutError`` (saying what is missing) after ``timeout``."""
        if self._loop is None:
            raise RuntimeError("client not started")
        changed = self._changed

        async def wait() -> None:
            while True:
                if self._fatal is not None:
                    raise self._fatal
                if self._session.connected and self._ledger.all_valid():
                    return
                changed.clear()
                await changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            subs = self._ledger.subscriptions()
            invalid = [f"{s.parsec_id}/{s.outcome}" for s in subs if not s.book.is_valid]
            state = "connected" if self._session.connected else (
                f"not connected (last error: {self._session.last_error})")
            raise TimeoutError(f"not ready within {timeout:g} s: {state}; "
                               f"{len(subs) - len(invalid)}/{len(subs)} books valid"
                               + (f", waiting for {', '.join(invalid[:5])}" if invalid else "")
                               ) from None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closing else "connecting"
        return f"Client({self.url!r}, {state}, {len(self._ledger.subscriptions())} markets)"
