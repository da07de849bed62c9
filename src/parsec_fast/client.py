"""The asyncio Parsec client: live compiled books over picows, with recovery built in.

::

    async with Client(url, api_key="...") as client:
        await client.subscribe(["polymarket:572473", {"parsec_id": "kalshi:KX", "outcome": "No"}])
        book = client.book("polymarket:572473")          # the live compiled Book
        async for ev in client.events():
            ...

What the client does for you (PROTOCOL.md §6):

* **Transport.** picows; the compiled ``FeedListener`` hands every text frame to the compiled
  ``FeedHandler`` (parse, route, sequence check, apply) without Python objects on the hot path.
  With ``record_path`` a Python listener is used instead, which also writes every frame to the
  recording (a little slower). ``wss://`` uses the system trust store
  (``ssl.create_default_context()``) unless ``ssl_context`` is given. WebSocket pings are sent
  when the connection is idle (picows auto-ping).
* **Session.** ``auth`` right after connecting; no ``auth_ok`` within ``auth_timeout`` →
  reconnect; ``auth_error`` is fatal (:class:`AuthenticationError`, never retried). Everything
  subscribed is sent in one batched ``subscribe``. Every control message (subscribe /
  unsubscribe / resync) goes through a limiter of 3 per second (:mod:`parsec_fast.ratelimit`).
* **Recovery.** A book that turns invalid (gap, ``resync_required``, ``needs_refresh``, rejected
  data, seq conflict) is resynced; when more than ``coalesce_threshold`` books wait for a resync
  at once, they are re-subscribed with ONE ``unsubscribe`` + ONE ``subscribe`` instead of many
  ``resync`` messages. Error 3001 → the unanswered control messages are retried after a full
  window; 3002 → the markets left unanswered are dropped and reported, and no new market is
  subscribed until one is unsubscribed (or a new connection). Any request unanswered after
  ``request_timeout`` is sent again. Local staleness is checked every ``stale_check_interval``.
* **Reconnect.** On a closed or silent connection (no frame for ``dead_after ×
  heartbeat_interval`` seconds) every book is invalidated (reason ``"disconnected"``), and the
  client reconnects with exponential backoff (``backoff_initial`` doubling to ``backoff_max``,
  ±``jitter``), re-authenticates and re-subscribes everything; books rebuild from new snapshots.

Events and slow consumers: see :meth:`Client.on` and :meth:`Client.events`. Callbacks run on
the receive path: a slow callback delays reading (the server may then send ``slow_reader`` and
``resync_required``, which the client handles); an exception in a callback is logged and counted
(``metrics.callback_errors``) and never reaches the books. ``events()`` streams are bounded: see
:class:`EventStream`.

uvloop: :func:`run` (and :meth:`Client.run`) create the event loop with uvloop when it is
installed (``use_uvloop=None``), or not (``False``); inside your own loop the client uses that loop.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from picows import WSListener, WSMsgType, WSTransport, ws_connect

from . import protocol
from ._feed import FeedHandler, Subscription
from .client_events import (
    DROPPABLE_KINDS, EVENT_KINDS, BookInvalid, BookRecovered, BookStateChanged, BookUpdated,
    Connected, Disconnected, EventsDropped, ProtocolErrorEvent, Reconnecting, SubscriptionFailed,
    kind_of,
)
from .codes import AUTH_TIMEOUT_S, CONTROL_MESSAGES_PER_SECOND, DEFAULT_WS_URL, ErrorCode
from .errors import AuthenticationError, ProtocolError, SubscriptionError, SubscriptionLimitError
from .events import ErrorEvent
from .protocol import AddressSelector, MarketSelector
from .ratelimit import RateLimiter
from .recording import FrameRecorder

try:  # the compiled listener; absent only in a broken build
    from ._listener import FeedListener
except ImportError:  # pragma: no cover
    FeedListener = None  # type: ignore[assignment,misc]

__all__ = ["Client", "ClientMetrics", "EventStream", "run"]

log = logging.getLogger("parsec_fast.client")

T = TypeVar("T")
BookKey = tuple[str, str]  # (parsec_id, ASCII-lowercased outcome)


def _okey(outcome: str) -> str:
    # Same folding as the feed handler: ASCII letters only.
    return outcome.encode("utf-8").lower().decode("utf-8")


def _as_list(items: Any) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, (str, Mapping, MarketSelector, AddressSelector, tuple)):
        return [items]
    return list(items)


def run(main: Awaitable[T], *, use_uvloop: bool | None = None) -> T:
    """Run ``main`` in a new event loop, with uvloop when installed (``use_uvloop=None``),
    forced (``True``, raises ImportError if missing) or not (``False``)."""
    factory = None
    if use_uvloop is not False:
        try:
            import uvloop
        except ImportError:
            if use_uvloop:
                raise
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ClientMetrics:
    """Counters since the client was created (a snapshot; ``client.metrics`` makes a new one).

    Latencies are frame-to-apply times in µs, sampled every ``latency_sample_every`` frames:
    from the start of the read batch the frame arrived in to the end of its apply (so they
    include waiting behind earlier frames of the batch); ``None`` before any sample.
    """

    frames: int
    bytes: int
    native_frames: int
    orjson_frames: int
    snapshots: int
    deltas_applied: int
    duplicates: int
    gaps: int
    dropped: int
    rejected: int
    unrouted: int
    protocol_errors: int
    activity: int
    slow_reader: int
    control_sent: int
    subscribes_sent: int
    unsubscribes_sent: int
    resyncs_sent: int
    coalesced_resyncs: int
    rate_limited: int
    limit_reached: int
    connects: int
    reconnects: int
    callback_errors: int
    events_dropped: int
    latency_samples: int
    latency_p50_us: float | None
    latency_p90_us: float | None
    latency_p99_us: float | None


class _Want:
    """One market the user subscribed to, and where its request stands on this connection."""

    __slots__ = ("key", "parsec_id", "outcome", "selector", "sub", "requested_at", "request_kind",
                 "mark", "on_server", "error_at")

    def __init__(self, key: BookKey, selector: MarketSelector, outcome: str, sub: Subscription):
        self.key = key
        self.parsec_id = selector.canonical_id
        self.outcome = outcome
        self.selector = selector          # with outcome and depth filled in as sent
        self.sub = sub
        self.requested_at: float | None = None  # None: a subscribe must be sent
        self.request_kind = "subscribe"
        self.mark = 0                     # snapshots+rejected of the book when requested
        self.on_server = False            # a subscribe was sent on this connection
        self.error_at = -1.0


def _answer_count(sub: Subscription) -> int:
    stats = sub.book.stats
    return stats["snapshots"] + stats["rejected"]


@dataclass(slots=True)
class _SentOp:
    kind: str
    keys: list[BookKey]
    addresses: list[AddressSelector]
    sent_at: float
    #: unsubscribe only: the selectors sent, to send them again after a 3001
    selectors: dict[BookKey, MarketSelector] | None = None


class _Waiter:
    """A ``subscribe(wait=True)`` call waiting for each market's first snapshot or refusal."""

    __slots__ = ("keys", "future", "failures")

    def __init__(self, keys: set[BookKey], future: asyncio.Future[None]) -> None:
        self.keys = keys
        self.future = future
        self.failures: dict[tuple[str, str], tuple[int, str]] = {}


class _Conn:
    """One connection attempt: its transport, listener and auth outcome."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.transport: WSTransport | None = None
        self.listener: Any = None
        self.auth: asyncio.Future[str] = loop.create_future()
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self.authenticated = False

    # Called by the listener.
    def _transport_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def _transport_disconnected(self) -> None:
        if not self.auth.done():
            self.auth.set_exception(ConnectionError(self.close_reason or "closed before auth_ok"))
        self.closed.set()

    def _transport_problem(self, message: str) -> None:
        self.client._on_protocol_error(ProtocolError(message))

    def drop(self, reason: str) -> None:
        """Abort the connection (no close handshake)."""
        if self.close_reason is None:
            self.close_reason = reason
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)


class _RecordingListener(WSListener):  # type: ignore[misc]
    """Python twin of the compiled FeedListener that also records every text frame."""

    def __init__(self, feed: FeedHandler, conn: _Conn, recorder: FrameRecorder,
                 sample_every: int) -> None:
        super().__init__()
        self._feed = feed
        self._conn = conn
        self._recorder = recorder
        self._fragments: bytearray | None = None
        self._batch_start = 0
        self._sample_every = max(1, sample_every)
        self._countdown = self._sample_every
        self._samples: deque[int] = deque(maxlen=4096)
        self.last_frame_ns = time.monotonic_ns()
        self.frames = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.last_frame_ns = time.monotonic_ns()
        self._conn._transport_connected(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._conn._transport_disconnected()

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        now = time.monotonic_ns()
        if not self._batch_start:
            self._batch_start = now
        last = frame.last_in_buffer
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT:
            if frame.fin:
                self._handle(frame.get_payload_as_bytes(), now, last)
            else:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
        elif msg_type == WSMsgType.CONTINUATION:
            if self._fragments is None:
                self._conn._transport_problem("continuation frame without a started message")
            else:
                self._fragments += frame.get_payload_as_memoryview()
                if frame.fin:
                    payload, self._fragments = bytes(self._fragments), None
                    self._handle(payload, now, last)
        elif msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif msg_type == WSMsgType.BINARY:
            self._conn._transport_problem(f"unexpected binary frame of {frame.payload_size} bytes "
                                          "(the protocol is text-only)")
        if last:
            self.last_frame_ns = time.monotonic_ns()
            self._batch_start = 0
            self._feed.flush()

    def _handle(self, payload: bytes, now: int, last: bool) -> None:
        self._recorder.frame(payload, now, time.time_ns(), last)
        self._feed.feed(payload)
        self.frames += 1
        self._countdown -= 1
        if self._countdown == 0:
            self._countdown = self._sample_every
            self._samples.append(time.monotonic_ns() - self._batch_start)

    def latency_samples(self) -> list[int]:
        """Sampled frame-to-apply latencies in ns, oldest first."""
        return list(self._samples)


_NOTICE = object()  # queue marker: an EventsDropped notice goes here


class EventStream:
    """An async iterator over client events (``client.events()``), with a bounded queue.

    When the queue holds ``maxsize`` events, new *droppable* events (``book_updated``,
    ``heartbeat``, ``trade``, ``fill``, ``wallet_activity``) are dropped and counted, and one
    :class:`~parsec_fast.client_events.EventsDropped` notice is queued where the first drop
    happened; it reports every drop up to the moment it is read. Books are always current, so a
    dropped ``book_updated`` only means "read the book" (the notice lists which). State events
    (book invalid/recovered/state, connection, errors) are never dropped: they may take the
    queue past ``maxsize`` (they are rare). Iteration ends after the client closes and the
    queue is drained, or after :meth:`close`.
    """

    def __init__(self, client: Client, maxsize: int, kinds: frozenset[str] | None) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
        self._client = client
        self.maxsize = maxsize
        self._kinds = kinds
        self._queue: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._dropped: dict[str, int] = {}
        self._dropped_books: set[tuple[str, str]] = set()
        self._notice_queued = False
        #: Events dropped by this stream since it was opened.
        self.dropped_total = 0

    def wants(self, kind: str) -> bool:
        """Whether this stream takes events of ``kind``."""
        return not self._closed and (self._kinds is None or kind in self._kinds)

    def _put(self, kind: str, event: Any) -> None:
        if self._closed or (self._kinds is not None and kind not in self._kinds):
            return
        if kind in DROPPABLE_KINDS and len(self._queue) >= self.maxsize:
            self._dropped[kind] = self._dropped.get(kind, 0) + 1
            if kind == "book_updated":
                self._dropped_books.add((event.parsec_id, event.outcome))
            self.dropped_total += 1
            self._client._events_dropped += 1
            if not self._notice_queued:
                self._notice_queued = True
                self._queue.append(_NOTICE)
            else:
                return
        else:
            self._queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def qsize(self) -> int:
        """Events waiting (a pending drop notice counts as one)."""
        return len(self._queue)

    def close(self) -> None:
        """Stop receiving events; iteration ends once the queue is drained."""
        self._closed = True
        self._client._streams.discard(self)
        self._client._update_listening()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Any:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        event = self._queue.popleft()
        if event is _NOTICE:
            event = EventsDropped(dict(self._dropped), frozenset(self._dropped_books))
            self._dropped.clear()
            self._dropped_books.clear()
            self._notice_queued = False
        return event

    async def get(self, timeout: float | None = None) -> Any:
        """The next event; ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration``
        when the stream is closed and drained."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Client:
    """Parsec WebSocket client with live compiled order books (see the module docstring).

    Give ``api_key`` or ``terminal_token``. Times are in seconds; ``dead_after`` is a multiple
    of ``heartbeat_interval``. ``parser`` and ``activity_seq`` are passed to the feed handler
    (``"shared"``: activity frames consume the book's seq counter, as in the public docs'
    example; ``"separate"``: they have their own). ``connect_timeout`` bounds one connection
    attempt; ``open_timeout`` bounds ``__aenter__`` (which waits for the first ``auth_ok``;
    ``None`` waits forever).
    """

    def __init__(self, url: str = DEFAULT_WS_URL, api_key: str | None = None, *,
                 terminal_token: str | None = None,
                 parser: Literal["native", "orjson"] = "native",
                 activity_seq: Literal["shared", "separate"] = "shared",
                 heartbeat_interval: float = 5.0, dead_after: float = 3.0,
                 reconnect: bool = True, backoff_initial: float = 1.0, backoff_max: float = 30.0,
                 jitter: float = 0.2, auth_timeout: float = AUTH_TIMEOUT_S,
                 connect_timeout: float = 10.0, open_timeout: float | None = 60.0,
                 record_path: str | None = None, use_uvloop: bool | None = None,
                 ssl_context: ssl.SSLContext | None = None, max_levels: int = 10_000,
                 control_rate: int = CONTROL_MESSAGES_PER_SECOND, control_window: float = 1.0,
                 control_margin: float = 0.05, coalesce_threshold: int = 2,
                 request_timeout: float = 10.0, stale_check_interval: float = 0.25,
                 latency_sample_every: int = 16, event_queue_size: int = 10_000,
                 seed: int | None = None) -> None:
        if (api_key is None) == (terminal_token is None):
            raise ValueError("give exactly one of api_key or terminal_token")
        self._auth_frame = (protocol.auth(api_key) if api_key is not None
                            else protocol.auth_terminal(terminal_token))  # type: ignore[arg-type]
        self.url = protocol.ws_url(url)
        for name, value in (("heartbeat_interval", heartbeat_interval), ("dead_after", dead_after),
                            ("backoff_initial", backoff_initial), ("auth_timeout", auth_timeout),
                            ("connect_timeout", connect_timeout),
                            ("stale_check_interval", stale_check_interval),
                            ("request_timeout", request_timeout)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if backoff_max < backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = dead_after
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.jitter = jitter
        self.auth_timeout = auth_timeout
        self.connect_timeout = connect_timeout
        self.open_timeout = open_timeout
        self.use_uvloop = use_uvloop
        self.coalesce_threshold = coalesce_threshold
        self.request_timeout = request_timeout
        self.stale_check_interval = stale_check_interval
        self.latency_sample_every = latency_sample_every
        self.event_queue_size = event_queue_size
        self.control_window = control_window + control_margin
        self._ssl_context = ssl_context
        self._rng = random.Random(seed)
        self._max_levels = max_levels
        self._feed = FeedHandler(parser=parser, activity_seq=activity_seq, max_levels=max_levels)
        self._feed.on_message = self._on_message
        self._feed.on_book_updated = self._on_book_updated
        self._feed.on_book_state = self._on_book_state
        self._feed.on_protocol_error = self._on_protocol_error
        self._limiter = RateLimiter(control_rate, control_window, margin=control_margin)
        self._record_path = record_path
        self._recorder: FrameRecorder | None = None
        # Wanted subscriptions and control-message state.
        self._wants: dict[BookKey, _Want] = {}
        self._addresses: dict[AddressSelector, float | None] = {}  # -> requested_at
        self._address_answered: dict[AddressSelector, float] = {}
        self._to_unsub: dict[BookKey, MarketSelector] = {}
        self._unsub_addresses: set[AddressSelector] = set()
        self._resync_pending: dict[BookKey, None] = {}  # ordered set
        self._capped: ErrorEvent | None = None
        self._sent_ops: deque[_SentOp] = deque(maxlen=512)
        self._waiters: list[_Waiter] = []
        #: (monotonic time, message type) of every control message sent (last 10,000).
        self.control_log: deque[tuple[float, str]] = deque(maxlen=10_000)
        # Events.
        self._callbacks: dict[str, list[Callable[[Any], Any]]] = {}
        self._streams: set[EventStream] = set()
        self._listening: frozenset[str] = frozenset()
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        # Session.
        self._conn: _Conn | None = None
        self._authenticated = False
        self._customer_id: str | None = None
        self._fatal: BaseException | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._first_ready: asyncio.Future[None] | None = None
        self._control_wake: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latency_ns: deque[int] = deque(maxlen=4096)
        # Counters.
        self._connects = 0
        self._sent = {"subscribe": 0, "unsubscribe": 0, "resync": 0}
        self._coalesced = 0
        self._rate_limited = 0
        self._limit_reached = 0
        self._callback_errors = 0
        self._events_dropped = 0

    # -- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting and wait (``open_timeout``) until authenticated. Raises
        :class:`AuthenticationError` for a refused credential, ``ConnectionError`` when the
        first connection fails with ``reconnect=False``, ``TimeoutError`` after
        ``open_timeout``; the client is closed then."""
        if self._loop is not None:
            raise RuntimeError("client already started")
        self._loop = asyncio.get_running_loop()
        self._first_ready = self._loop.create_future()
        self._control_wake = asyncio.Event()
        self._changed = asyncio.Event()
        if self._record_path is not None:
            self._recorder = FrameRecorder(self._record_path)
            self._recorder.meta({"event": "config", "parser": self._feed.parser,
                                 "activity_seq": self._feed.activity_seq,
                                 "max_levels": self._max_levels, "url": self.url})
            for want in self._wants.values():
                self._recorder.meta({"event": "add", "parsec_id": want.parsec_id,
                                     "outcome": want.outcome})
        self._tasks = [asyncio.ensure_future(self._run()),
                       asyncio.ensure_future(self._control_loop()),
                       asyncio.ensure_future(self._maintenance_loop())]
        for task in self._tasks:
            task.add_done_callback(self._task_done)
        try:
            await asyncio.wait_for(asyncio.shield(self._first_ready), self.open_timeout)
        except BaseException:
            await self.close()
            raise

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("client task failed", exc_info=task.exception())
            self._set_fatal(task.exception())  # type: ignore[arg-type]

    async def close(self) -> None:
        """Close the connection, stop every task, end event streams, close the recording."""
        if self._closing:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and conn.transport is not None and not conn.transport.is_disconnected:
            conn.close_reason = "client closed"
            try:
                conn.transport.send_close()
            except Exception:  # pragma: no cover - transport already gone
                pass
            conn.transport.disconnect(graceful=False)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:
                pass
        for timer in self._timers:
            timer.cancel()
        for task in list(self._callback_tasks):
            task.cancel()
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(ConnectionError("client closed"))
                waiter.future.exception()  # retrieved: nobody may await it any more
        self._waiters.clear()
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_exception(ConnectionError("client closed"))
            self._first_ready.exception()
        for stream in list(self._streams):
            stream.close()
        if self._recorder is not None:
            self._recorder.close()

    def run(self, main: Callable[[Client], Awaitable[T]] | None = None) -> T | None:
        """Blocking helper: create an event loop (uvloop when installed, see ``use_uvloop``),
        open the client, run ``await main(client)`` (or until interrupted), close."""
        async def body() -> T | None:
            async with self:
                if main is None:
                    await asyncio.Event().wait()
                    return None
                return await main(self)
        return run(body(), use_uvloop=self.use_uvloop)

    def _set_fatal(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_exception(exc)
            self._first_ready.exception()  # also raised from start(); avoid "never retrieved"
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _wake_control(self) -> None:
        if self._control_wake is not None:
            self._control_wake.set()

    # -- connection -------------------------------------------------------------------------------
    def _ssl_for_url(self) -> ssl.SSLContext | None:
        if self.url.lower().startswith("wss://"):
            return self._ssl_context or ssl.create_default_context()
        return None

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max, self.backoff_initial * (2.0 ** min(attempt, 30)))
        return min(self.backoff_max, base * (1.0 + self._rng.uniform(-self.jitter, self.jitter)))

    async def _run(self) -> None:
        """Connect, serve, reconnect with backoff — until closed or a fatal error."""
        failures = 0
        attempt = 0
        while not self._closing:
            conn = _Conn(self, asyncio.get_running_loop())
            self._conn = conn
            try:
                reason = await self._serve(conn, attempt)
            except AuthenticationError as exc:
                self._end_connection(conn, f"auth_error: {exc.message}", will_reconnect=False)
                self._set_fatal(exc)
                return
            except asyncio.CancelledError:
                self._end_connection(conn, "client closed", will_reconnect=False)
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            attempt += 1
            will_reconnect = self.reconnect and not self._closing
            self._end_connection(conn, reason, will_reconnect)
            if not will_reconnect:
                if not self._closing:
                    self._set_fatal(ConnectionError(f"connection lost: {reason}"))
                return
            if conn.authenticated:
                failures = 0
            delay = self._backoff(failures)
            failures += 1
            log.info("reconnecting in %.2f s (%s)", delay, reason)
            self._emit("reconnecting", Reconnecting(attempt, delay))
            await asyncio.sleep(delay)

    def _make_listener(self, conn: _Conn) -> Any:
        if self._recorder is not None or FeedListener is None:
            if self._recorder is None:  # pragma: no cover - compiled listener missing
                raise RuntimeError("parsec_fast._listener is not built")
            return _RecordingListener(self._feed, conn, self._recorder, self.latency_sample_every)
        return FeedListener(self._feed, conn, self.latency_sample_every)

    async def _serve(self, conn: _Conn, attempt: int) -> str:
        """One connection: connect, authenticate, subscribe, then wait until it closes.
        Returns why it closed; raises AuthenticationError on auth_error."""
        listener = self._make_listener(conn)
        conn.listener = listener
        transport, _ = await asyncio.wait_for(
            ws_connect(lambda: listener, self.url, ssl_context=self._ssl_for_url(),
                       # Keep-alive pings when idle; a silent server is caught by the
                       # dead-connection check (pongs are not frames for it).
                       enable_auto_ping=True, auto_ping_idle_timeout=self.heartbeat_interval,
                       auto_ping_reply_timeout=self.heartbeat_interval,
                       websocket_handshake_timeout=self.connect_timeout),
            self.connect_timeout)
        conn.transport = transport
        transport.send(WSMsgType.TEXT, self._auth_frame)
        try:
            customer_id = await asyncio.wait_for(asyncio.shield(conn.auth), self.auth_timeout)
        except asyncio.TimeoutError:
            conn.drop("no auth_ok within auth_timeout")
            await conn.closed.wait()
            return "no auth_ok within auth_timeout"
        except ConnectionError as exc:
            return str(exc)
        except AuthenticationError:
            conn.drop("auth_error")
            raise
        self._on_authenticated(conn, customer_id, attempt)
        await conn.closed.wait()
        return conn.close_reason or "connection closed by the server"

    def _on_authenticated(self, conn: _Conn, customer_id: str, attempt: int) -> None:
        conn.authenticated = True
        self._authenticated = True
        self._customer_id = customer_id
        self._connects += 1
        self._capped = None
        # Everything wanted goes out in one batched subscribe (the control loop builds it).
        for want in self._wants.values():
            want.requested_at = None
            want.on_server = False
        for address in self._addresses:
            self._addresses[address] = None
        self._to_unsub.clear()
        self._unsub_addresses.clear()
        self._resync_pending.clear()
        if self._recorder is not None:
            self._recorder.meta({"event": "connected"})
        log.info("connected to %s as %s", self.url, customer_id)
        self._emit("connected", Connected(self.url, customer_id, attempt))
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_result(None)
        self._wake_control()
        self._notify()

    def _end_connection(self, conn: _Conn, reason: str, will_reconnect: bool) -> None:
        """Forget a finished connection: books invalid ("disconnected"), requests void."""
        if conn.transport is not None and not conn.transport.is_disconnected:
            conn.transport.disconnect(graceful=False)
        if conn.listener is not None:
            self._latency_ns.extend(conn.listener.latency_samples())
            conn.listener = None
        if not conn.auth.done():
            conn.auth.cancel()
        elif not conn.auth.cancelled():
            conn.auth.exception()  # mark retrieved
        if self._conn is conn:
            self._conn = None
        if not conn.authenticated:
            return
        self._authenticated = False
        self._resync_pending.clear()
        self._feed.flush()
        self._feed.invalidate_all("disconnected")
        if self._recorder is not None:
            self._recorder.meta({"event": "disconnected"})
        log.info("disconnected: %s", reason)
        self._emit("disconnected", Disconnected(reason, will_reconnect))
        self._notify()

    # -- subscriptions ----------------------------------------------------------------------------
    async def subscribe(self, markets: Any = None, depth: int | None = None, *,
                        addresses: Any = None, wait: bool = True,
                        timeout: float | None = 30.0) -> list[Subscription]:
        """Subscribe to markets (by ``"exchange:market_id"``, ``{"parsec_id"...}``,
        ``{"exchange", "market_id"}`` or :class:`MarketSelector`; ``outcome`` defaults to
        ``"Yes"``; ``depth`` applies to selectors without their own) and/or wallet addresses.

        Works at any time (before connecting, the subscriptions go out with the first batch).
        With ``wait`` (default) it returns once every new market has its first snapshot and
        raises :class:`SubscriptionError` for markets the server refused
        (:class:`SubscriptionLimitError` when the account's cap was hit; accepted markets stay),
        or ``TimeoutError`` after ``timeout`` (the subscriptions stay wanted). Raises
        ``ValueError`` for a bad selector and :class:`SubscriptionLimitError` at once while the
        cap is known to be reached. Returns the feed handler's subscriptions, in order.
        """
        selectors = []
        for item in _as_list(markets):
            sel = MarketSelector.coerce(item)
            outcome = sel.outcome if sel.outcome is not None else "Yes"
            sel_depth = sel.depth if sel.depth is not None else depth
            selectors.append(MarketSelector(sel.parsec_id, sel.exchange, sel.market_id, outcome,
                                            sel_depth))
        address_sels = [AddressSelector.coerce(a) for a in _as_list(addresses)]
        new_keys = [k for k in ((s.canonical_id, _okey(s.outcome)) for s in selectors)  # type: ignore[arg-type]
                    if k not in self._wants]
        if self._capped is not None and (new_keys or any(a not in self._addresses
                                                         for a in address_sels)):
            failures = {(s.canonical_id, s.outcome): (int(self._capped.code), self._capped.message)
                        for s in selectors if (s.canonical_id, _okey(s.outcome)) in new_keys}  # type: ignore[arg-type]
            raise SubscriptionLimitError(failures)
        subs = []
        keys: set[BookKey] = set()
        for sel in selectors:
            outcome: str = sel.outcome  # type: ignore[assignment]
            key = (sel.canonical_id, _okey(outcome))
            want = self._wants.get(key)
            if want is None:
                sub = self._feed.add(sel.canonical_id, outcome)
                want = _Want(key, sel, outcome, sub)
                self._wants[key] = want
                if self._recorder is not None:
                    self._recorder.meta({"event": "add", "parsec_id": want.parsec_id,
                                         "outcome": outcome})
            elif want.selector != sel:  # new depth (or form): subscribe again
                want.selector = sel
                want.requested_at = None
            self._resync_pending.pop(key, None)
            subs.append(want.sub)
            keys.add(key)
        for address in address_sels:
            if address not in self._addresses:
                self._addresses[address] = None
            self._unsub_addresses.discard(address)
        self._wake_control()
        if not wait or not keys:
            return subs
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(keys, future)
        self._waiters.append(waiter)
        self._check_waiters()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return subs

    async def unsubscribe(self, markets: Any = None, *, addresses: Any = None) -> None:
        """Stop markets and/or addresses (same selector forms as :meth:`subscribe`; outcome
        defaults to ``"Yes"``). Their books are dropped from the client at once."""
        for item in _as_list(markets):
            sel = MarketSelector.coerce(item)
            outcome = sel.outcome if sel.outcome is not None else "Yes"
            key = (sel.canonical_id, _okey(outcome))
            want = self._wants.pop(key, None)
            if want is None:
                continue
            self._forget(want)
            if want.on_server:
                self._to_unsub[key] = MarketSelector(want.selector.parsec_id,
                                                     want.selector.exchange,
                                                     want.selector.market_id, want.outcome)
        for item in _as_list(addresses):
            address = AddressSelector.coerce(item)
            if self._addresses.pop(address, "absent") != "absent":
                self._unsub_addresses.add(address)
        self._capped = None  # a slot may be free again
        self._wake_control()
        self._check_waiters()

    def _forget(self, want: _Want) -> None:
        self._feed.remove(want.sub.parsec_id, want.sub.outcome)
        self._resync_pending.pop(want.key, None)
        if self._recorder is not None:
            self._recorder.meta({"event": "remove", "parsec_id": want.sub.parsec_id,
                                 "outcome": want.sub.outcome})

    def _fail(self, want: _Want, code: int, message: str) -> None:
        """The server refused this market: drop it, report it, fail its waiters."""
        if self._wants.get(want.key) is not want:
            return
        del self._wants[want.key]
        self._forget(want)
        for waiter in self._waiters:
            if want.key in waiter.keys:
                waiter.failures[(want.parsec_id, want.outcome)] = (code, message)
        log.warning("subscription %s/%s refused: %s %s", want.parsec_id, want.outcome, code, message)
        self._emit("subscription_failed",
                   SubscriptionFailed(want.parsec_id, want.outcome, code, message))
        self._check_waiters()

    def _check_waiters(self) -> None:
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            done = True
            for key in waiter.keys:
                want = self._wants.get(key)
                if want is not None and not want.sub.book.is_valid:
                    done = False
                    break
            if not done:
                continue
            if waiter.failures:
                limit = any(code == ErrorCode.MAX_SUBSCRIPTIONS
                            for code, _ in waiter.failures.values())
                cls = SubscriptionLimitError if limit else SubscriptionError
                waiter.future.set_exception(cls(dict(waiter.failures)))
            else:
                waiter.future.set_result(None)

    def _answered(self, want: _Want) -> bool:
        """Whether the last subscribe/resync of ``want`` got a snapshot or an error."""
        if want.requested_at is None:
            return False
        return _answer_count(want.sub) > want.mark or want.error_at >= want.requested_at

    def _request(self, want: _Want, kind: str, now: float) -> None:
        want.requested_at = now
        want.request_kind = kind
        want.mark = _answer_count(want.sub)
        if kind == "subscribe":
            want.on_server = True

    # -- control messages -------------------------------------------------------------------------
    def _has_control_work(self) -> bool:
        if self._to_unsub or self._unsub_addresses or self._resync_pending:
            return True
        if self._capped is None and (any(w.requested_at is None for w in self._wants.values())
                                     or any(t is None for t in self._addresses.values())):
            return True
        return False

    def _next_control(self, now: float) -> tuple[str, bytes, _SentOp] | None:
        """Build the next control message from the current state (None if nothing to do)."""
        if self._to_unsub or self._unsub_addresses:
            keys = list(self._to_unsub)
            frame = protocol.unsubscribe(list(self._to_unsub.values()), list(self._unsub_addresses))
            op = _SentOp("unsubscribe", keys, list(self._unsub_addresses), now, dict(self._to_unsub))
            self._to_unsub.clear()
            self._unsub_addresses.clear()
            return "unsubscribe", frame, op
        if self._capped is None:
            wants = [w for w in self._wants.values() if w.requested_at is None]
            addresses = [a for a, t in self._addresses.items() if t is None]
            if wants or addresses:
                for want in wants:
                    self._request(want, "subscribe", now)
                    self._resync_pending.pop(want.key, None)
                for address in addresses:
                    self._addresses[address] = now
                frame = protocol.subscribe([w.selector for w in wants], addresses)
                return "subscribe", frame, _SentOp("subscribe", [w.key for w in wants], addresses,
                                                   now)
        pending = [self._wants[k] for k in self._resync_pending
                   if k in self._wants and self._wants[k].requested_at is not None]
        self._resync_pending.clear()
        if not pending:
            return None
        if len(pending) > self.coalesce_threshold and self._capped is None:
            # Many books at once: ONE unsubscribe now, ONE subscribe next (they are marked
            # unrequested), rather than one resync each behind the rate limit.
            self._coalesced += 1
            for want in pending:
                want.requested_at = None
            frame = protocol.unsubscribe([MarketSelector(w.selector.parsec_id, w.selector.exchange,
                                                         w.selector.market_id, w.outcome)
                                          for w in pending])
            return "unsubscribe", frame, _SentOp("unsubscribe", [], [], now)
        want, rest = pending[0], pending[1:]
        for other in rest:
            self._resync_pending[other.key] = None
        self._request(want, "resync", now)
        frame = protocol.resync(MarketSelector(want.selector.parsec_id, want.selector.exchange,
                                               want.selector.market_id, want.outcome))
        return "resync", frame, _SentOp("resync", [want.key], [], now)

    async def _control_loop(self) -> None:
        assert self._control_wake is not None
        while True:
            conn = self._conn
            if not (self._authenticated and conn is not None and self._has_control_work()):
                self._control_wake.clear()
                await self._control_wake.wait()
                continue
            await self._limiter.wait()
            conn = self._conn
            if not self._authenticated or conn is None or conn.transport is None:
                continue
            now = time.monotonic()
            built = self._next_control(now)
            if built is None:
                await asyncio.sleep(0)
                continue
            kind, frame, op = built
            if not self._limiter.try_acquire():  # pragma: no cover - wait() just said free
                continue
            conn.transport.send(WSMsgType.TEXT, frame)
            self._sent[kind] += 1
            self._sent_ops.append(op)
            self.control_log.append((now, kind))
            await asyncio.sleep(0)

    def _retry_unanswered(self, arrival: float) -> None:
        """After a 3001: send again whatever the server may have refused around ``arrival``
        (subscribes/resyncs still unanswered, unsubscribes of markets still unwanted)."""
        horizon = arrival - 2 * self.control_window - 1.0
        for op in self._sent_ops:
            if not horizon <= op.sent_at <= arrival:
                continue
            if op.kind == "unsubscribe":
                for key, selector in (op.selectors or {}).items():
                    if key not in self._wants:
                        self._to_unsub[key] = selector
                for address in op.addresses:
                    if address not in self._addresses:
                        self._unsub_addresses.add(address)
                continue
            for key in op.keys:
                want = self._wants.get(key)
                if want is None or want.requested_at != op.sent_at or self._answered(want):
                    continue
                if op.kind == "resync":
                    self._resync_pending[key] = None
                else:
                    want.requested_at = None
            for address in op.addresses:
                if self._addresses.get(address) == op.sent_at and \
                        self._address_answered.get(address, -1.0) < op.sent_at:
                    self._addresses[address] = None
        self._wake_control()

    def _settle_cap(self, arrival: float, error: ErrorEvent) -> None:
        """After a 3002: markets subscribed before it and still unanswered were refused."""
        for op in list(self._sent_ops):
            if op.kind != "subscribe" or op.sent_at > arrival:
                continue
            for key in op.keys:
                want = self._wants.get(key)
                if want is not None and want.requested_at == op.sent_at and \
                        not self._answered(want):
                    self._fail(want, int(error.code), error.message)
            for address in op.addresses:
                if self._addresses.get(address) == op.sent_at and \
                        self._address_answered.get(address, -1.0) < op.sent_at:
                    del self._addresses[address]
                    self._emit("subscription_failed",
                               SubscriptionFailed(f"{address.exchange}:{address.address}", "",
                                                  int(error.code), error.message))

    def _schedule_resync(self, want: _Want) -> None:
        self._resync_pending[want.key] = None
        self._wake_control()

    # -- maintenance ------------------------------------------------------------------------------
    async def _maintenance_loop(self) -> None:
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(self.stale_check_interval)
            now = time.monotonic()
            self._feed.check_stale(time.monotonic_ns())
            conn = self._conn
            if conn is not None and conn.authenticated and conn.listener is not None:
                silent_ns = time.monotonic_ns() - conn.listener.last_frame_ns
                if silent_ns > self.dead_after * self.heartbeat_interval * 1e9:
                    log.warning("no frame for %.2f s: dropping the connection", silent_ns / 1e9)
                    conn.drop(f"dead connection: no frame for {silent_ns / 1e9:.2f} s")
            if self._authenticated:
                self._sweep(now)
            if self._recorder is not None and now - last_flush >= 1.0:
                self._recorder.flush()
                last_flush = now

    def _sweep(self, now: float) -> None:
        """Safety net: re-request what went unanswered too long; resync invalid books that
        nothing is fixing (e.g. an invalid report the loop could not act on)."""
        woke = False
        for want in self._wants.values():
            if want.requested_at is None or want.key in self._resync_pending:
                continue
            if not self._answered(want):
                if now - want.requested_at > self.request_timeout:
                    if want.request_kind == "resync":
                        self._resync_pending[want.key] = None
                    else:
                        want.requested_at = None
                    woke = True
            elif not want.sub.book.is_valid:
                self._resync_pending[want.key] = None
                woke = True
        if woke:
            self._wake_control()

    # -- feed handler callbacks -------------------------------------------------------------------
    def _on_book_updated(self, sub: Subscription) -> None:
        if "book_updated" in self._listening:
            self._emit("book_updated", BookUpdated(sub.parsec_id, sub.outcome, sub.book.seq))

    def _on_book_state(self, sub: Subscription, what: str, reason: str) -> None:
        if what == "invalid":
            if reason != "disconnected" and self._authenticated:
                want = self._wants.get((sub.parsec_id, _okey(sub.outcome)))
                # Skip if a subscribe is due anyway, or its request is still in flight (unless
                # the server insists: resync_required means it waits for a resync).
                if want is not None and want.requested_at is not None and (
                        reason == "resync_required" or self._answered(want)):
                    self._schedule_resync(want)
            self._emit("book_invalid", BookInvalid(sub.parsec_id, sub.outcome, reason))
            self._notify()
        elif what == "recovered":
            self._emit("book_recovered", BookRecovered(sub.parsec_id, sub.outcome, sub.book.seq))
            self._check_waiters()
            self._notify()
        else:
            self._emit("book_state", BookStateChanged(sub.parsec_id, sub.outcome, what, reason))

    def _on_protocol_error(self, err: ProtocolError) -> None:
        log.warning("protocol error: %s", err)
        self._emit("protocol_error", ProtocolErrorEvent(err))

    def _decode(self, obj: dict[str, Any]) -> Any:
        try:
            return protocol.decode_message(obj)
        except ProtocolError as exc:
            self._on_protocol_error(exc)
            return None

    def _on_message(self, obj: dict[str, Any]) -> None:
        msg_type = obj.get("type")
        if msg_type == "activity":
            kind = obj.get("kind")
            wanted = "trade" if kind == "trade" else "fill" if kind == "fill" else "unknown"
            if wanted in self._listening:
                event = self._decode(obj)
                if event is not None:
                    self._emit(kind_of(event), event)
        elif msg_type == "heartbeat":
            if "heartbeat" in self._listening:
                event = self._decode(obj)
                if event is not None:
                    self._emit("heartbeat", event)
        elif msg_type == "auth_ok":
            conn = self._conn
            customer_id = obj.get("customer_id")
            if conn is not None and not conn.auth.done():
                conn.auth.set_result(customer_id if isinstance(customer_id, str) else "")
        elif msg_type == "auth_error":
            event = self._decode(obj)
            code = int(event.code) if event is not None else int(ErrorCode.INVALID_CREDENTIALS)
            message = event.message if event is not None else "auth_error"
            if event is not None:
                self._emit("error", event)
            conn = self._conn
            if conn is not None and not conn.auth.done():
                conn.auth.set_exception(AuthenticationError(code, message))
        elif msg_type == "error":
            event = self._decode(obj)
            if event is not None:
                self._on_error(event)
        elif msg_type == "wallet_activity":
            event = self._decode(obj)
            if event is not None:
                try:
                    address = AddressSelector(event.exchange, event.address)
                except ValueError:  # an exchange this version does not list: just pass it on
                    pass
                else:
                    self._address_answered[address] = time.monotonic()
                self._emit("wallet_activity", event)
        elif msg_type == "slow_reader":
            event = self._decode(obj)
            if event is not None:
                self._emit("slow_reader", event)
        elif msg_type == "resync_required":
            pass  # the feed handler invalidated the book; _on_book_state schedules the resync
        else:
            event = self._decode(obj)
            if event is not None:
                self._emit(kind_of(event), event)

    def _on_error(self, event: ErrorEvent) -> None:
        code = int(event.code)
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        if code == ErrorCode.RATE_LIMITED:
            self._rate_limited += 1
            log.warning("control message rate limited (3001): retrying after %.2f s",
                        self.control_window)
            self._limiter.penalize(self.control_window)
            self._timers.append(loop.call_later(self.control_window, self._retry_unanswered, now))
        elif code == ErrorCode.MAX_SUBSCRIPTIONS:
            self._limit_reached += 1
            if self._capped is None:
                log.warning("subscription limit reached (3002): %s", event.message)
                self._capped = event
            self._timers.append(loop.call_later(self.control_window, self._settle_cap, now, event))
        elif event.parsec_id is not None:
            for want in [w for w in self._wants.values() if w.parsec_id == event.parsec_id]:
                if want.requested_at is None or self._answered(want):
                    continue
                want.error_at = now
                if want.request_kind == "resync" and code == ErrorCode.INVALID_MESSAGE:
                    want.requested_at = None  # the server forgot it ("not subscribed")
                    self._wake_control()
                else:
                    self._fail(want, code, event.message)
        self._timers = [t for t in self._timers if not t.cancelled()][-64:]
        self._emit("error", event)

    # -- events -----------------------------------------------------------------------------------
    def on(self, kind: str, callback: Callable[[Any], Any] | None = None) -> Any:
        """Call ``callback(event)`` for every event of ``kind`` (see
        :mod:`parsec_fast.client_events`; ``"*"`` = every kind). Usable as a decorator
        (``@client.on("trade")``). Callbacks run on the receive path and should be quick; a
        coroutine function is run as a task. Exceptions are logged and counted
        (``metrics.callback_errors``), never propagated."""
        if kind != "*" and kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; one of {sorted(EVENT_KINDS)} or '*'")
        if callback is None:
            def decorator(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
                self.on(kind, fn)
                return fn
            return decorator
        self._callbacks.setdefault(kind, []).append(callback)
        self._update_listening()
        return callback

    def off(self, kind: str, callback: Callable[[Any], Any]) -> None:
        """Remove a callback added with :meth:`on` (no error if absent)."""
        callbacks = self._callbacks.get(kind, [])
        if callback in callbacks:
            callbacks.remove(callback)
        self._update_listening()

    def events(self, maxsize: int | None = None, kinds: Iterable[str] | None = None) -> EventStream:
        """A new :class:`EventStream` of events (all kinds, or ``kinds``), bounded by
        ``maxsize`` (default ``event_queue_size``); it starts collecting at once."""
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted <= EVENT_KINDS:
            raise ValueError(f"unknown event kind(s) {sorted(wanted - EVENT_KINDS)}")
        stream = EventStream(self, maxsize or self.event_queue_size, wanted)
        if self._closing:
            stream._closed = True
        else:
            self._streams.add(stream)
            self._update_listening()
        return stream

    def _update_listening(self) -> None:
        kinds: set[str] = set()
        if self._callbacks.get("*"):
            kinds |= EVENT_KINDS
        kinds |= {k for k, cbs in self._callbacks.items() if cbs and k != "*"}
        for stream in self._streams:
            kinds |= EVENT_KINDS if stream._kinds is None else stream._kinds
        self._listening = frozenset(kinds)

    def _emit(self, kind: str, event: Any) -> None:
        if kind not in self._listening:
            return
        for callbacks in (self._callbacks.get(kind), self._callbacks.get("*")):
            if not callbacks:
                continue
            for callback in list(callbacks):
                try:
                    result = callback(event)
                    if inspect.isawaitable(result):
                        task = asyncio.ensure_future(result)
                        self._callback_tasks.add(task)
                        task.add_done_callback(self._callback_task_done)
                except Exception:
                    self._callback_failed(kind)
        for stream in self._streams:
            stream._put(kind, event)

    def _callback_failed(self, kind: str) -> None:
        self._callback_errors += 1
        n = self._callback_errors
        if n <= 10 or n % 1000 == 0:  # do not flood the log from the hot path
            log.exception("event callback for %r raised (error #%d)", kind, n)

    def _callback_task_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._callback_errors += 1
            log.error("async event callback raised", exc_info=task.exception())

    # -- queries ----------------------------------------------------------------------------------
    def book(self, parsec_id: str, outcome: str = "Yes") -> Any:
        """The live compiled :class:`~parsec_fast.Book` of a subscribed market outcome
        (``KeyError`` if not subscribed). Check ``client.subscription(...).trustworthy``
        before trading on it."""
        return self.subscription(parsec_id, outcome).book

    def subscription(self, parsec_id: str, outcome: str = "Yes") -> Subscription:
        """The feed handler's :class:`Subscription` (``trustworthy``, ``why_not()``, states,
        stats) of a subscribed market outcome; ``KeyError`` if not subscribed."""
        sub = self._feed.get(parsec_id, outcome)
        if sub is None or (parsec_id, _okey(outcome)) not in self._wants:
            raise KeyError(f"not subscribed: {parsec_id}/{outcome}")
        return sub

    def subscriptions(self) -> list[Subscription]:
        """Every subscribed market outcome's Subscription."""
        return [w.sub for w in self._wants.values()]

    @property
    def addresses(self) -> list[AddressSelector]:
        """Subscribed wallet addresses."""
        return list(self._addresses)

    @property
    def customer_id(self) -> str | None:
        """From the last ``auth_ok`` (None before)."""
        return self._customer_id

    @property
    def connected(self) -> bool:
        """True while an authenticated connection is open."""
        return self._authenticated

    @property
    def connection_frames(self) -> int:
        """Text frames received on the current connection (0 when not connected)."""
        conn = self._conn
        listener = conn.listener if conn is not None else None
        return int(listener.frames) if listener is not None else 0

    @property
    def feed_handler(self) -> FeedHandler:
        """The compiled feed handler (for diagnostics and the replayer)."""
        return self._feed

    @property
    def metrics(self) -> ClientMetrics:
        """Counters and latency percentiles (see :class:`ClientMetrics`)."""
        s = self._feed.stats
        samples = list(self._latency_ns)
        conn = self._conn
        if conn is not None and conn.listener is not None:
            samples += conn.listener.latency_samples()
        samples.sort()

        def pct(q: float) -> float | None:
            if not samples:
                return None
            index = min(len(samples) - 1, max(0, int(-(-q * len(samples) // 1)) - 1))
            return samples[index] / 1000.0

        return ClientMetrics(
            frames=s["frames"], bytes=s["bytes"], native_frames=s["native_frames"],
            orjson_frames=s["orjson_frames"], snapshots=s["snapshots"],
            deltas_applied=s["deltas_applied"], duplicates=s["duplicates"], gaps=s["gaps"],
            dropped=s["dropped"], rejected=s["rejected"], unrouted=s["unrouted"],
            protocol_errors=s["protocol_errors"], activity=s["activity"],
            slow_reader=s["slow_reader"], control_sent=sum(self._sent.values()),
            subscribes_sent=self._sent["subscribe"], unsubscribes_sent=self._sent["unsubscribe"],
            resyncs_sent=self._sent["resync"], coalesced_resyncs=self._coalesced,
            rate_limited=self._rate_limited, limit_reached=self._limit_reached,
            connects=self._connects, reconnects=max(0, self._connects - 1),
            callback_errors=self._callback_errors, events_dropped=self._events_dropped,
            latency_samples=len(samples), latency_p50_us=pct(0.5), latency_p90_us=pct(0.9),
            latency_p99_us=pct(0.99),
        )

    async def wait_ready(self, timeout: float | None = 10.0) -> None:
        """Wait until connected and every subscribed book is valid. Raises the fatal error
        (e.g. :class:`AuthenticationError`) if the client stopped, ``TimeoutError`` after
        ``timeout``."""
        if self._changed is None:
            raise RuntimeError("client not started")
        changed = self._changed

        async def wait() -> None:
            while True:
                if self._fatal is not None:
                    raise self._fatal
                if self._authenticated and all(w.sub.book.is_valid for w in self._wants.values()):
                    return
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def __repr__(self) -> str:
        state = "connected" if self._authenticated else "closed" if self._closing else "connecting"
        return f"Client({self.url!r}, {state}, {len(self._wants)} markets)"
