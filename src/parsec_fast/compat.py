"""Drop-in replacement for the official SDK's streaming client (``parsec_api.streaming``).

Switch by changing one import::

    # from parsec_api.streaming import ParsecWebSocket, MarketSubscription
    from parsec_fast.compat import ParsecWebSocket, MarketSubscription

    async with ParsecWebSocket(api_key, "wss://api.parsecapi.com/ws") as ws:
        @ws.on("orderbook")
        async def on_book(book):          # OrderbookSnapshot, kind "snapshot" or "delta"
            print(book.parsec_id, book.mid_price, book.bids[:1])

        ws.subscribe(parsec_id="polymarket:572473")
        await ws.run_forever()

The same public names, signatures, event names, payload dataclasses (same fields in the same
order), ``get_book`` dict shape and ``customer_id`` as ``parsec-api`` 0.17.0 (see
``docs/sdk-compat-notes.md``), backed by :class:`parsec_fast.client.Client`: native parsing,
compiled books, PROTOCOL.md §6 recovery, a 3/s control-message limiter. ``ws.client`` is the
engine client of the current connection (e.g. ``ws.client.subscription(pid).trustworthy``).

Differences from parsec_api.streaming (each one only removes a bug; see the notes' §9):

1. ``connect()`` can be retried after it failed (the SDK stayed "connecting" and every later
   ``connect()`` silently did nothing). A failed TCP/WS connect raises ``ConnectionError`` (an
   ``OSError``) carrying the transport error's text rather than the raw transport exception.
2. Handlers may be plain functions or coroutine functions (the SDK required ``async def``).
   Handlers run inline on the receive path in registration order; an ``async`` handler that
   really suspends (awaits I/O) continues as a task and does not hold back later frames (the
   SDK blocked its receive loop instead, until the server sent ``slow_reader``).
3. No resync storm, no duplicate-as-gap: a duplicate delta is dropped; a gap invalidates the
   book and sends ONE rate-limited ``resync``; its deltas are dropped until the snapshot (no
   ``orderbook`` event for them, as in the SDK). ``resync_required`` / ``needs_refresh`` do the
   same. Activity frames sharing the book's counter (PROTOCOL.md default) are not gaps.
4. A malformed frame is dropped and reported in the engine's metrics; it never kills the
   receive loop or leaks the socket.
5. ``OrderbookSnapshot.bids``/``asks`` are fresh lists, safe to keep: later deltas never change
   them (the SDK handed out its live lists). Level objects are built only when a handler reads
   ``bids``/``asks`` (or keeps the payload), so an ``orderbook`` handler costs little.
6. The reconnect path has an auth timeout too, missing heartbeats are detected (dead
   connection → reconnect), and bad book data (crossed/unsorted snapshot, bad prices) is
   rejected and resynced rather than stored. A failed reconnect attempt is reported as
   ``error(WsError("Reconnect attempt failed"))``.
7. ``get_book`` serves books of subscribed markets only, after their first snapshot; levels are
   the engine's (prices on a 1e-9 grid, sizes as floats, no size-0 levels). ``last_seq`` is the
   book's seq, which also counts activity frames under the shared counter. A delta level keeps
   float types (the SDK kept a JSON int as int).
8. A delta's ``feed_state`` / ``book_state`` / ``stale_after_ms`` are the last values the
   server announced for that book (the SDK reported the frame's own fields, or
   ``"healthy"`` / ``"fresh"`` / ``0`` when a frame left them out).
9. ``subscribe`` validates locally: a malformed ``parsec_id`` is reported at once as
   ``error(WsError(code=2001, ...))`` and not registered; ``depth`` is clamped to 1..100. A
   market the server refuses (e.g. 2002) is reported through ``error`` and is not re-sent on
   reconnect.

Performance (``bench/bench_compat.py``: loopback, 50-level book, server in another process):
the engine's compiled listener and native parser serve the compat client too; the feed handler
calls back once per applied frame (``on_book_frame``). With no ``orderbook`` handler (reading
``get_book``) no payload is ever built; with a handler, each applied delta costs one payload
whose level lists are built only when read or kept — no second parse of the frame.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, List, Optional, Union


from .client import Client
from .codes import MAX_DEPTH
from .errors import AuthenticationError, AuthTimeoutError, ParsecConnectionError
from .rules import fold_outcome
from .selectors import MarketSelector

__all__ = ["ParsecWebSocket", "OrderbookSnapshot", "StreamingOrderbookLevel", "Activity",
           "WsError", "MarketSubscription", "ws_url", "ws"]

logger = logging.getLogger("parsec_fast.compat")

_CoroutineType = types.CoroutineType

EVENTS = ("orderbook", "activity", "error", "connected", "disconnected", "reconnecting",
          "slow_reader", "heartbeat")


# -- public payload types (same fields, same order, same defaults as the SDK) ------------------

@dataclass
class StreamingOrderbookLevel:
    """One book level."""

    price: float
    size: float


@dataclass
class OrderbookSnapshot:
    """Payload of the ``"orderbook"`` event, for snapshots and deltas (``kind``)."""

    parsec_id: str
    outcome: str
    exchange: str
    token_id: str
    market_id: str
    title: Optional[str]
    bids: List[StreamingOrderbookLevel]
    asks: List[StreamingOrderbookLevel]
    mid_price: float
    spread: float
    tick_size: Optional[float]
    kind: str  # "snapshot" | "delta"
    server_seq: int
    feed_state: str
    book_state: str
    stale_after_ms: int
    exchange_ts_ms: Optional[int]
    ingest_ts_ms: Optional[int]


@dataclass
class Activity:
    """Payload of the ``"activity"`` event (public trades and own fills)."""

    parsec_id: str
    outcome: str
    exchange: str
    token_id: str
    market_id: str
    kind: str  # "trade" | "fill"
    price: float
    size: float
    side: Optional[str]
    aggressor_side: Optional[str]
    trade_id: Optional[str]
    fill_id: Optional[str]
    order_id: Optional[str]
    server_seq: int
    feed_state: str
    exchange_ts_ms: Optional[int]
    ingest_ts_ms: Optional[int]
    source_channel: str
    liquidity_role: Optional[str]  # "maker" | "taker"


@dataclass
class WsError:
    """Payload of the ``"error"`` event."""

    message: str
    code: Optional[int] = None
    parsec_id: Optional[str] = None


@dataclass
class MarketSubscription:
    """A market to subscribe to (argument of ``subscribe``/``unsubscribe``)."""

    parsec_id: str
    outcome: Optional[str] = None
    depth: Optional[int] = None


_new_live = object.__new__
_SNAPSHOT_FIELDS = tuple(f.name for f in fields(OrderbookSnapshot))


class _LiveOrderbookSnapshot(OrderbookSnapshot):
    """An OrderbookSnapshot whose ``bids``/``asks`` are built from the engine's book on first
    read. Valid only while the book is unchanged: the dispatcher materializes the lists before
    the next frame whenever the payload may outlive the handler call (kept, or a suspended
    coroutine). Copies, pickles and ``==`` behave as for a plain OrderbookSnapshot."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes missing from __dict__: the two lazy sides.
        if name == "bids" or name == "asks":
            self._materialize()
            return self.__dict__[name]
        raise AttributeError(name)

    def _materialize(self) -> None:
        d = self.__dict__
        book = d.pop("_book", None)
        if book is None:
            return  # already built (or never lazy)
        level = StreamingOrderbookLevel
        d["bids"] = [level(p, s) for p, s in book.bids()]
        d["asks"] = [level(p, s) for p, s in book.asks()]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderbookSnapshot):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _SNAPSHOT_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # as a plain (unfrozen) dataclass

    def __reduce__(self) -> Any:
        return OrderbookSnapshot, tuple(getattr(self, n) for n in _SNAPSHOT_FIELDS)


# Same class name in repr() as the SDK's payload.
_LiveOrderbookSnapshot.__name__ = "OrderbookSnapshot"
_LiveOrderbookSnapshot.__qualname__ = "OrderbookSnapshot"


def ws_url(base_url: str) -> str:
    """The WebSocket URL for a REST base URL, exactly as the SDK's ``ws()`` factories build it:
    trailing ``/`` dropped, ``http://`` -> ``ws://``, ``https://`` -> ``wss://``, ``/ws`` appended
    (``https://api.parsecapi.com`` -> ``wss://api.parsecapi.com/ws``)."""
    base = str(base_url).rstrip("/")
    return base.replace("http://", "ws://").replace("https://", "wss://") + "/ws"


def ws(api_key: str, base_url: str = "https://api.parsecapi.com",
       terminal_token: Optional[str] = None) -> ParsecWebSocket:
    """The SDK's ``client.ws(terminal_token)`` factory without the REST client."""
    return ParsecWebSocket(api_key=api_key, ws_url=ws_url(base_url), terminal_token=terminal_token)


def _mid_spread(book: Any) -> tuple[float, float]:
    """The SDK's arithmetic: mid of both bests, else the one side's best (or 0.0); spread
    ``abs(ask - bid)`` when both sides exist, else 0.0. (Best prices are NaN for an empty
    side, and NaN > 0 is false; real prices are > 0.)"""
    bb = book.best_bid_price
    ba = book.best_ask_price
    if bb > 0 and ba > 0:
        return (bb + ba) / 2, abs(ba - bb)
    return (bb if bb > 0 else ba if ba > 0 else 0.0), 0.0


def _sdk_key(parsec_id: str, outcome: Optional[str]) -> str:
    return f"{parsec_id}:{outcome.lower()}" if outcome else parsec_id


class _Meta:
    """Snapshot metadata of one book (the engine keeps only levels and states)."""

    __slots__ = ("book", "outcome", "exchange", "token_id", "market_id", "title", "tick_size",
                 "template")

    def __init__(self, book: Any, msg: dict[str, Any]) -> None:
        self.book = book  # the engine's live Book of this subscription
        self.outcome = msg.get("outcome", "")
        self.exchange = msg.get("exchange", "")
        self.token_id = msg.get("token_id", "")
        self.market_id = msg.get("market_id", "")
        self.title = msg.get("title")
        self.tick_size = msg.get("tick_size")
        # Payload fields in the dataclass's order; the per-frame ones are overwritten (copying
        # this is cheaper than building an 18-key dict per frame).
        self.template = {
            "parsec_id": msg.get("parsec_id", ""), "outcome": self.outcome,
            "exchange": self.exchange, "token_id": self.token_id, "market_id": self.market_id,
            "title": self.title, "_book": book, "mid_price": 0.0, "spread": 0.0,
            "tick_size": self.tick_size, "kind": "delta", "server_seq": 0,
            "feed_state": "healthy", "book_state": "fresh", "stale_after_ms": 0,
            "exchange_ts_ms": None, "ingest_ts_ms": None}


async def _finish(coro: Any, yielded: Any) -> None:
    """Run the rest of a handler coroutine that suspended during inline dispatch, the way a
    Task would: wait for what it awaits, then resume it."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                # What Task.__step does with a yielded future before waiting on it.
                yielded._asyncio_future_blocking = False
                await yielded
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                coro.close()
                raise
        except Exception:
            pass  # the coroutine's own await re-raises it when resumed
        try:
            yielded = coro.send(None)
        except StopIteration:
            return


class ParsecWebSocket:
    """The SDK's ``ParsecWebSocket``, on parsec_fast's engine (see the module docstring).

    ``client_options`` (an extension; keyword-only) is passed to :class:`parsec_fast.Client`
    (e.g. ``{"backoff_initial": 0.2}``); the SDK's own schedule is the default.
    """

    def __init__(self, api_key: str, ws_url: str, terminal_token: Optional[str] = None, *,
                 client_options: Optional[Mapping[str, Any]] = None) -> None:
        self._api_key = api_key
        self._ws_url = ws_url
        self._terminal_token = terminal_token
        self._client_options = dict(client_options or {})
        #: From the last ``auth_ok`` (None before the first; never cleared).
        self.customer_id: Optional[str] = None
        # Same values as the SDK's private _state (the only way SDK users can check it).
        self._state = "disconnected"
        self._subscriptions: dict[str, MarketSubscription] = {}
        self._handlers: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}
        self._client: Optional[Client] = None
        self._meta: dict[tuple[str, str], _Meta] = {}  # by (parsec_id, folded outcome)
        # Hot-path cache: (parsec_id, outcome as the server spells it) -> _Meta.
        self._by_sub: dict[Any, _Meta] = {}  # by the engine's Subscription object
        self._orderbook_handlers = self._handlers["orderbook"]  # the same list object
        self._closed_event: Optional[asyncio.Event] = None
        self._intentional_close = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_engine_event = ""

    # -- events ------------------------------------------------------------------------------------
    def on(self, event: str) -> Callable[..., Any]:
        """Decorator registering ``fn`` for ``event``; returns ``fn`` unchanged. Unknown event
        names are accepted (a warning is logged) and never fire, as in the SDK."""
        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            handlers = self._handlers.get(event)
            if handlers is None:
                logger.warning("unknown event %r: its handler will never be called; one of %s",
                               event, ", ".join(EVENTS))
                handlers = self._handlers[event] = []
            handlers.append(fn)
            return fn
        return decorator

    def off(self, event: str, fn: Any) -> None:
        """Remove one registration of ``fn`` for ``event`` (no error if absent)."""
        handlers = self._handlers.get(event)
        if handlers is not None and fn in handlers:
            handlers.remove(fn)

    def _emit(self, event: str, *args: Any) -> None:
        """Run the handlers of ``event`` now, in order. Coroutines are driven inline until they
        finish or really suspend (then they continue as a task)."""
        for fn in tuple(self._handlers[event]):  # a handler may call off()
            try:
                result = fn(*args)
                if result is None:
                    continue
                if type(result) is _CoroutineType:
                    try:
                        yielded = result.send(None)
                    except StopIteration:
                        continue
                    self._materialize_args(args)  # it outlives this frame
                    self._spawn(_finish(result, yielded), event)
                elif inspect.isawaitable(result):
                    self._materialize_args(args)
                    self._spawn(result, event)
            except Exception:
                logger.warning("Callback error in %s handler", event, exc_info=True)

    @staticmethod
    def _materialize_args(args: tuple[Any, ...]) -> None:
        for arg in args:
            if type(arg) is _LiveOrderbookSnapshot:
                arg._materialize()

    def _spawn(self, awaitable: Any, event: str) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.warning("Callback error in %s handler", event, exc_info=t.exception())
        task.add_done_callback(done)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> ParsecWebSocket:
        await self.connect()
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()

    def _make_client(self) -> Client:
        options: dict[str, Any] = {
            # The SDK's schedule: 1 s doubling to 30 s, ±25 %; 10 s to open and to authenticate.
            "backoff_initial": 1.0, "backoff_max": 30.0, "jitter": 0.25,
            "connect_timeout": 10.0, "auth_timeout": 10.0, "open_timeout": None,
        }
        options.update(self._client_options)
        # The first connection fails at once (the SDK raises); reconnect afterwards.
        if self._terminal_token is not None:
            client = Client(self._ws_url, terminal_token=self._terminal_token, **options)
        else:
            client = Client(self._ws_url, self._api_key, **options)
        # Every applied frame, from the compiled feed handler (deltas stay on the native path),
        # and every other message after the engine handled it (its state is current for us).
        client.set_frame_hook(self._on_book_frame)
        client.set_message_hook(self._on_message)
        client.on("connected", self._on_engine_connected)
        client.on("disconnected", self._on_engine_disconnected)
        client.on("reconnecting", self._on_engine_reconnecting)
        return client

    async def connect(self) -> None:
        """Connect and authenticate, then subscribe everything registered. Raises
        ``ConnectionError`` (auth refused, auth timeout, closed during auth, connect failure);
        can be called again after a failure or after :meth:`close`."""
        if self._state in ("connected", "connecting", "authenticating"):
            return
        self._intentional_close = False
        self._closed_event = asyncio.Event()
        self._state = "connecting"
        try:
            client = self._make_client()
            for sub in self._subscriptions.values():
                self._engine_subscribe(client, sub)
        except ValueError as exc:
            self._state = "disconnected"
            self._emit("error", WsError(message=str(exc)))
            raise
        self._client = client
        self._meta.clear()
        self._by_sub.clear()
        self._last_engine_event = ""
        self._state = "authenticating"
        try:
            await client.start()
        except AuthenticationError as exc:
            # The error event was emitted from the auth_error frame.
            self._state = "closed"
            self._intentional_close = True
            self._closed_event.set()
            self._client = None
            raise ConnectionError(exc.message or "Authentication failed") from None
        except BaseException as exc:
            self._client = None
            self._state = "disconnected"  # retryable, unlike the SDK
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, AuthTimeoutError):
                self._emit("disconnected", "Auth timeout")
                raise ConnectionError(f"Auth timeout: no response from server within "
                                      f"{client.config.auth_timeout:g}s") from None
            if isinstance(exc, ParsecConnectionError) and exc.phase == "auth":
                self._emit("disconnected", "Connection closed during authentication")
                raise ConnectionError("Connection closed during authentication") from exc
            message = str(exc)
            self._emit("error", WsError(message=message))
            raise ConnectionError(message) from exc

    async def close(self) -> None:
        """Close the connection, forget every subscription and book, then emit
        ``disconnected("Client closed")`` (every call, as in the SDK). Never raises."""
        self._intentional_close = True
        self._state = "closed"
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # pragma: no cover - close must not raise
                logger.debug("engine close failed", exc_info=True)
        for task in list(self._tasks):
            task.cancel()
        self._subscriptions.clear()
        self._meta.clear()
        self._by_sub.clear()
        if self._closed_event is not None:
            self._closed_event.set()
        self._emit("disconnected", "Client closed")

    async def run_forever(self) -> None:
        """Return once the client is closed (``close()`` or a refused credential)."""
        while True:
            if self._state == "closed" or self._intentional_close:
                return
            event = self._closed_event
            if event is None:  # before connect(): wait for it, as the SDK's polling does
                await asyncio.sleep(0.1)
                continue
            await event.wait()

    @property
    def client(self) -> Optional[Client]:
        """The engine client of the current connection (None when not connected)."""
        return self._client

    # -- engine events -----------------------------------------------------------------------------
    def _on_engine_connected(self, event: Any) -> None:
        self._last_engine_event = "connected"
        self.customer_id = event.customer_id
        self._state = "connected"
        self._emit("connected")

    def _on_engine_disconnected(self, event: Any) -> None:
        self._last_engine_event = "disconnected"
        if self._intentional_close:
            return  # close() reports "Client closed" itself
        self._state = "disconnected"
        self._emit("disconnected", "Connection closed")

    def _on_engine_reconnecting(self, event: Any) -> None:
        if self._intentional_close:
            return
        if self._last_engine_event != "disconnected":
            # The previous attempt failed before auth_ok (the SDK reports its exception).
            self._emit("error", WsError(message="Reconnect attempt failed"))
        self._last_engine_event = "reconnecting"
        self._state = "reconnecting"
        self._emit("reconnecting", event.attempt, int(event.delay * 1000))

    def _on_message(self, msg: dict[str, Any]) -> None:
        """Non-book frames, parsed by the engine (``FeedHandler.on_message``)."""
        kind = msg.get("type")
        if kind == "activity":
            if self._handlers["activity"]:
                g = msg.get
                self._emit("activity", Activity(
                    g("parsec_id", ""), g("outcome", ""), g("exchange", ""), g("token_id", ""),
                    g("market_id", ""), g("kind", "trade"), g("price", 0), g("size", 0),
                    g("side"), g("aggressor_side"), g("trade_id"), g("fill_id"), g("order_id"),
                    g("server_seq", 0), g("feed_state", "healthy"), g("exchange_ts_ms"),
                    g("ingest_ts_ms"), g("source_channel", ""), g("liquidity_role")))
        elif kind == "heartbeat":
            if self._handlers["heartbeat"]:
                self._emit("heartbeat", msg.get("ts_ms", 0))
        elif kind == "error":
            self._emit("error", WsError(message=msg.get("message", "Server error"),
                                        code=msg.get("code"), parsec_id=msg.get("parsec_id")))
        elif kind == "slow_reader":
            self._emit("slow_reader", msg.get("parsec_id", ""), msg.get("outcome", ""))
        elif kind == "auth_error":
            self._emit("error", WsError(message=msg.get("message", "Authentication failed"),
                                        code=msg.get("code")))
            if self._state != "authenticating":
                # Refused on a reconnect: stop for good (run_forever returns).
                self._state = "closed"
                self._intentional_close = True
                if self._closed_event is not None:
                    self._closed_event.set()
                client, self._client = self._client, None
                if client is not None:
                    asyncio.get_running_loop().create_task(client.close())

    def _on_book_frame(self, sub: Any, snapshot: Optional[dict[str, Any]]) -> None:
        """Every frame the engine applied (the feed handler's per-frame callback): a snapshot
        with its parsed fields, or a delta (None). Never raises into the engine."""
        try:
            if snapshot is not None:
                self._on_snapshot(sub, snapshot)
            elif self._orderbook_handlers:
                meta = self._by_sub.get(sub)
                if meta is not None:
                    stale = sub.stale_after_ms
                    self._publish(meta, "delta", sub.book.seq, sub.feed_state, sub.book_state,
                                  0 if stale is None else stale, sub.exchange_ts_ms,
                                  sub.ingest_ts_ms)
        except Exception:
            logger.debug("compat: frame not handled", exc_info=True)

    def _on_snapshot(self, sub: Any, msg: dict[str, Any]) -> None:
        parsec_id = sub.parsec_id
        meta = _Meta(sub.book, msg)
        self._meta[(parsec_id, fold_outcome(sub.outcome))] = meta
        self._by_sub[sub] = meta
        g = msg.get
        self._publish(meta, "snapshot", sub.book.seq, g("feed_state", "healthy"),
                      g("book_state", "fresh"), g("stale_after_ms", 0), g("exchange_ts_ms"),
                      g("ingest_ts_ms"))

    def _publish(self, meta: _Meta, kind: str, seq: int, feed_state: Any, book_state: Any,
                 stale_after_ms: Any, exchange_ts_ms: Any, ingest_ts_ms: Any) -> None:
        handlers = self._orderbook_handlers
        if not handlers:
            return
        book = meta.book
        bb = book.best_bid_price  # NaN when the side is empty (NaN > 0 is false)
        ba = book.best_ask_price
        if bb > 0 and ba > 0:
            mid, spread = (bb + ba) / 2, abs(ba - bb)
        else:  # the SDK's arithmetic for a one-sided or empty book
            mid, spread = (bb if bb > 0 else ba if ba > 0 else 0.0), 0.0
        payload = _new_live(_LiveOrderbookSnapshot)
        d = meta.template.copy()
        d["mid_price"] = mid
        d["spread"] = spread
        d["kind"] = kind
        d["server_seq"] = seq
        d["feed_state"] = feed_state
        d["book_state"] = book_state
        d["stale_after_ms"] = stale_after_ms
        d["exchange_ts_ms"] = exchange_ts_ms
        d["ingest_ts_ms"] = ingest_ts_ms
        payload.__dict__ = d
        if len(handlers) == 1:  # the common case, without _emit's generality
            fn = handlers[0]
            try:
                result = fn(payload)
                if result is not None:
                    if type(result) is _CoroutineType:
                        try:
                            yielded = result.send(None)
                        except StopIteration:
                            pass
                        else:
                            payload._materialize()  # it outlives this frame
                            self._spawn(_finish(result, yielded), "orderbook")
                    elif inspect.isawaitable(result):
                        payload._materialize()
                        self._spawn(result, "orderbook")
            except Exception:
                logger.warning("Callback error in orderbook handler", exc_info=True)
            result = None  # a finished coroutine object holds no reference to the payload
        else:
            self._emit("orderbook", payload)
        # Kept by a handler (more references than this frame's own two)? Then freeze its
        # levels now, before the next frame changes the book.
        if sys.getrefcount(payload) > 2:
            payload._materialize()
        else:
            payload.__dict__.pop("_book", None)

    # -- subscriptions -----------------------------------------------------------------------------
    @staticmethod
    def _markets(markets: Union[MarketSubscription, Sequence[MarketSubscription], None],
                 parsec_id: Optional[str], outcome: Optional[str],
                 depth: Optional[int]) -> list[MarketSubscription]:
        if markets is None:
            return [] if parsec_id is None else [MarketSubscription(parsec_id, outcome, depth)]
        if isinstance(markets, MarketSubscription) or hasattr(markets, "parsec_id"):
            return [markets]  # also the SDK's own MarketSubscription objects
        return list(markets)

    def _engine_subscribe(self, client: Client, sub: MarketSubscription) -> None:
        depth = sub.depth
        if depth is not None:
            depth = max(1, min(MAX_DEPTH, int(depth)))
        selector = MarketSelector(parsec_id=sub.parsec_id, outcome=sub.outcome or "Yes",
                                  depth=depth)
        _run_sync(client.subscribe(selector, wait=False))

    def subscribe(self, markets: Union[MarketSubscription, Sequence[MarketSubscription],
                                       None] = None, *,
                  parsec_id: Optional[str] = None, outcome: Optional[str] = None,
                  depth: Optional[int] = None) -> None:
        """Subscribe (one object, a sequence, or keywords used only when ``markets`` is None).
        Already-registered markets are skipped; sent at once when connected, else with the
        next connection."""
        for sub in self._markets(markets, parsec_id, outcome, depth):
            key = _sdk_key(sub.parsec_id, sub.outcome)
            if key in self._subscriptions:
                continue
            try:
                MarketSelector(parsec_id=sub.parsec_id, outcome=sub.outcome or None)
            except (ValueError, TypeError) as exc:
                self._emit("error", WsError(message=str(exc), code=2001,
                                            parsec_id=sub.parsec_id))
                continue
            self._subscriptions[key] = sub
            if self._client is not None:
                self._engine_subscribe(self._client, sub)

    def unsubscribe(self, markets: Union[MarketSubscription, Sequence[MarketSubscription],
                                         None] = None, *,
                    parsec_id: Optional[str] = None, outcome: Optional[str] = None) -> None:
        """Unsubscribe markets registered with the same key (``parsec_id`` alone, or with the
        outcome) and drop their books."""
        for sub in self._markets(markets, parsec_id, outcome, None):
            if self._subscriptions.pop(_sdk_key(sub.parsec_id, sub.outcome), None) is None:
                continue
            engine_key = (sub.parsec_id, fold_outcome(sub.outcome or "Yes"))
            # Another registration (e.g. X and X:yes) may still want the same engine book.
            if any((s.parsec_id, fold_outcome(s.outcome or "Yes")) == engine_key
                   for s in self._subscriptions.values()):
                continue
            meta = self._meta.pop(engine_key, None)
            if meta is not None:
                self._by_sub = {k: m for k, m in self._by_sub.items() if m is not meta}
            if self._client is not None:
                _run_sync(self._client.unsubscribe(
                    MarketSelector(parsec_id=sub.parsec_id, outcome=sub.outcome or "Yes")))

    # -- books -------------------------------------------------------------------------------------
    def get_book(self, parsec_id: str, outcome: str = "yes") -> Optional[dict[str, Any]]:
        """The book as the SDK's dict (a new object each call), or None when there is none."""
        key = (parsec_id, fold_outcome(outcome))
        meta = self._meta.get(key)
        client = self._client
        if meta is None or client is None:
            return None
        try:
            book = client.book(parsec_id, outcome)
        except KeyError:
            return None
        mid, spread = _mid_spread(book)
        return {
            "parsec_id": parsec_id,
            "outcome": meta.outcome,
            "exchange": meta.exchange,
            "token_id": meta.token_id,
            "market_id": meta.market_id,
            "title": meta.title,
            "bids": [{"price": p, "size": s} for p, s in book.bids()],
            "asks": [{"price": p, "size": s} for p, s in book.asks()],
            "mid_price": mid,
            "spread": spread,
            "tick_size": meta.tick_size,
            "last_seq": book.seq,
        }


def _run_sync(coro: Any) -> Any:
    """Run a coroutine that does not suspend (the engine's ``subscribe(wait=False)`` and
    ``unsubscribe``) to completion now, so these stay plain methods as in the SDK."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("engine call suspended unexpectedly")  # pragma: no cover
