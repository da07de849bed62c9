"""The client's event bus: callbacks by kind, bounded streams, and the drop policy.

The bus owns who listens to what. The receive path asks :attr:`EventBus.listening` before it
builds an event (so a kind nobody listens to costs a set lookup), then calls :meth:`emit`, which
runs the callbacks of that kind and of ``"*"`` inline and queues the event in every stream that
takes it. A callback that returns an awaitable is run as a task. Exceptions in callbacks are
logged (rate-limited) and counted, never propagated to the receive path.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from ..events import DROPPABLE_KINDS, EVENT_KINDS, BookUpdated, Event, EventsDropped

__all__ = ["EventBus", "EventStream", "Callback"]

log: logging.Logger = logging.getLogger("parsec_fast.client")

E = TypeVar("E", bound=Event)
#: A callback: a function of one event; an awaitable result is run as a task.
Callback = Callable[[E], object]


class _Notice:
    """Queue marker: an EventsDropped notice is due at this place."""

    __slots__ = ()


_NOTICE = _Notice()


class EventStream(Generic[E]):
    """An async iterator over client events (``client.events()``), with a bounded queue.

    When the queue holds ``maxsize`` events, new *droppable* events (``book_updated``,
    ``heartbeat``, ``trade``, ``fill``, ``wallet_activity``) are dropped and counted, and one
    :class:`~parsec_fast.events.EventsDropped` notice is queued where the first drop happened;
    it reports every drop up to the moment it is read. Books are always current, so a dropped
    ``book_updated`` only means "read the book" (the notice lists which). State events (book
    invalid/recovered/state, connection, errors) are never dropped: they may take the queue past
    ``maxsize`` (they are rare). Iteration ends after the client closes and the queue is
    drained, or after :meth:`close`.
    """

    def __init__(self, bus: EventBus, maxsize: int, kinds: frozenset[str] | None) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
        self._bus = bus
        self.maxsize: int = maxsize
        self._kinds = kinds
        self._queue: deque[E | _Notice] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._dropped: dict[str, int] = {}
        self._dropped_books: set[tuple[str, str]] = set()
        self._notice_queued = False
        #: Events dropped by this stream since it was opened.
        self.dropped_total: int = 0

    @property
    def kinds(self) -> frozenset[str] | None:
        """The kinds this stream takes (None: all)."""
        return self._kinds

    def wants(self, kind: str) -> bool:
        """Whether this stream takes events of ``kind``."""
        return not self._closed and (self._kinds is None or kind in self._kinds)

    def put(self, kind: str, event: E) -> bool:
        """Queue ``event`` (the bus calls this); False if the queue was full and it was dropped."""
        if self._closed or (self._kinds is not None and kind not in self._kinds):
            return True
        kept = True
        if kind in DROPPABLE_KINDS and len(self._queue) >= self.maxsize:
            kept = False
            self._dropped[kind] = self._dropped.get(kind, 0) + 1
            if isinstance(event, BookUpdated):
                self._dropped_books.add((event.parsec_id, event.outcome))
            self.dropped_total += 1
            if self._notice_queued:
                return kept
            self._notice_queued = True
            self._queue.append(_NOTICE)
        else:
            self._queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return kept

    def qsize(self) -> int:
        """Events waiting (a pending drop notice counts as one)."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (or once the client closed)."""
        return self._closed

    def close(self) -> None:
        """Stop receiving events; iteration ends once the queue is drained."""
        if self._closed:
            return
        self._closed = True
        self._bus.discard_stream(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> EventStream[E]:
        return self

    async def __anext__(self) -> E | EventsDropped:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue.popleft()
        if isinstance(item, _Notice):
            notice = EventsDropped(dict(self._dropped), frozenset(self._dropped_books))
            self._dropped.clear()
            self._dropped_books.clear()
            self._notice_queued = False
            return notice
        return item

    async def get(self, timeout: float | None = None) -> E | EventsDropped:
        """The next event; ``TimeoutError`` after ``timeout`` seconds, ``StopAsyncIteration``
        when the stream is closed and drained."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def __aenter__(self) -> EventStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Callbacks and streams of one client. Not thread-safe (one event loop)."""

    def __init__(self, default_maxsize: int) -> None:
        self.default_maxsize: int = default_maxsize
        self._callbacks: dict[str, list[Callback[Event]]] = {}
        self._streams: set[EventStream[Any]] = set()
        #: What emit() walks, rebuilt by _update() on every change (so emit copies nothing and
        #: a callback that adds or removes one affects the next event, not this one): per kind,
        #: its callbacks then the "*" ones; the open streams.
        self._dispatch: dict[str, tuple[Callback[Event], ...]] = {}
        self._open_streams: tuple[EventStream[Any], ...] = ()
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False
        #: The kinds someone listens to now: the receive path checks this before it builds an
        #: event. Replaced (never mutated) on every change.
        self.listening: frozenset[str] = frozenset()
        #: Exceptions raised by callbacks (sync and async).
        self.callback_errors: int = 0
        #: Droppable events dropped by full streams.
        self.events_dropped: int = 0

    @staticmethod
    def check_kind(kind: str) -> None:
        """ValueError unless ``kind`` is an event kind or ``"*"``."""
        if kind != "*" and kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; one of {sorted(EVENT_KINDS)} or '*'")

    def add(self, kind: str, callback: Callback[Event]) -> None:
        """Call ``callback(event)`` for every event of ``kind`` (``"*"``: every kind)."""
        self.check_kind(kind)
        self._callbacks.setdefault(kind, []).append(callback)
        self._update()

    def remove(self, kind: str, callback: Callback[Event]) -> None:
        """Remove one registration of ``callback`` (no error if absent)."""
        callbacks = self._callbacks.get(kind, [])
        if callback in callbacks:
            callbacks.remove(callback)
        self._update()

    def stream(self, maxsize: int | None = None,
               kinds: Iterable[str] | None = None) -> EventStream[Event]:
        """A new stream of every event (or of ``kinds``); it collects from now on."""
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted <= EVENT_KINDS:
            raise ValueError(f"unknown event kind(s) {sorted(wanted - EVENT_KINDS)}")
        stream: EventStream[Event] = EventStream(self, maxsize or self.default_maxsize, wanted)
        if self._closed:
            stream.close()
        else:
            self._streams.add(stream)
            self._update()
        return stream

    def discard_stream(self, stream: EventStream[Any]) -> None:
        """Forget a closed stream (called by :meth:`EventStream.close`)."""
        self._streams.discard(stream)
        self._update()

    def _update(self) -> None:
        kinds: set[str] = set()
        if self._callbacks.get("*"):
            kinds |= EVENT_KINDS
        kinds |= {k for k, cbs in self._callbacks.items() if cbs and k != "*"}
        for stream in self._streams:
            kinds |= EVENT_KINDS if stream.kinds is None else stream.kinds
        self.listening = frozenset(kinds)
        every = tuple(self._callbacks.get("*", ()))
        self._dispatch = {kind: tuple(self._callbacks.get(kind, ())) + every for kind in kinds}
        self._open_streams = tuple(self._streams)

    def emit(self, kind: str, event: Event) -> None:
        """Deliver ``event`` to the callbacks of ``kind`` and ``"*"``, then to the streams."""
        if kind not in self.listening:
            return
        for callback in self._dispatch[kind]:
            try:
                result = callback(event)
                # (most callbacks return None: skip the awaitable check, ~0.16 µs an event)
                if result is not None and inspect.isawaitable(result):
                    task: asyncio.Task[object] = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:
                self._callback_failed(kind)
        for stream in self._open_streams:
            if not stream.put(kind, event):
                self.events_dropped += 1

    def _callback_failed(self, kind: str) -> None:
        self.callback_errors += 1
        n = self.callback_errors
        if n <= 10 or n % 1000 == 0:  # do not flood the log from the hot path
            log.exception("event callback for %r raised (error #%d)", kind, n)

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.callback_errors += 1
            log.error("async event callback raised", exc_info=task.exception())

    def close(self) -> None:
        """End every stream (after its queue drains) and cancel running callback tasks."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for stream in list(self._streams):
            stream.close()

