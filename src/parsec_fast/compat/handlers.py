"""The SDK's event handlers: who is registered for what, and how a handler runs.

Handlers run inline on the receive path, in registration order. A coroutine handler is driven
until it finishes or really suspends (awaits I/O, a sleep, a future); then it continues as a
task and the next handler (and the next frame) does not wait for it. A handler that raises is
logged at WARNING ("Callback error in <event> handler", as the SDK's logger does) and the next
one still runs. ``orderbook`` payloads are driven from compiled code
(``parsec_fast._orderbook.OrderbookEmitter``) with the same rules; the other events from here.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["EVENTS", "Handler", "Handlers", "logger"]

logger: logging.Logger = logging.getLogger("parsec_fast.compat")

#: The SDK's event names, in its order.
EVENTS = ("orderbook", "activity", "error", "connected", "disconnected", "reconnecting",
          "slow_reader", "heartbeat")

#: A registered callback: a plain function or a coroutine function, any arguments.
Handler = Callable[..., Any]

_CoroutineType = types.CoroutineType


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    """Run the rest of a handler coroutine that suspended during inline dispatch, the way a
    Task would: wait for what it yielded, then resume it."""
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


class Handlers:
    """The handler lists per event (``by_event``; the ``orderbook`` list object is never
    replaced, the compiled emitter holds it) and the tasks of handlers that suspended."""

    def __init__(self) -> None:
        self.by_event: dict[str, list[Handler]] = {e: [] for e in EVENTS}
        self._tasks: set[asyncio.Future[Any]] = set()

    def add(self, event: str, fn: Handler) -> None:
        """Register ``fn`` (again, if already there: it then runs twice). An unknown event is
        accepted with a warning and never fires, as in the SDK."""
        handlers = self.by_event.get(event)
        if handlers is None:
            logger.warning("unknown event %r: its handler will never be called; one of %s",
                           event, ", ".join(EVENTS))
            handlers = self.by_event[event] = []
        handlers.append(fn)

    def remove(self, event: str, fn: Handler) -> None:
        """Remove the first registration of ``fn`` for ``event`` (nothing if absent)."""
        handlers = self.by_event.get(event)
        if handlers is not None and fn in handlers:
            handlers.remove(fn)

    def listening(self, event: str) -> bool:
        """True when ``event`` has at least one handler (the caller skips building a payload
        nobody receives)."""
        return bool(self.by_event.get(event))

    def emit(self, event: str, *args: Any) -> None:
        """Run the handlers of ``event`` now, in order (see the module docstring)."""
        for fn in tuple(self.by_event[event]):  # a handler may call off()
            try:
                result = fn(*args)
                if result is None:
                    continue
                if type(result) is _CoroutineType:
                    try:
                        yielded = result.send(None)
                    except StopIteration:
                        continue
                    self.spawn_suspended(result, yielded, event)
                else:
                    self.spawn_awaitable(result, event)
            except Exception:
                self.log_error(event)

    def spawn_suspended(self, coro: Coroutine[Any, Any, Any], yielded: Any,
                        event: str = "orderbook") -> None:
        """Continue a handler coroutine that suspended after yielding ``yielded``."""
        self._spawn(_finish(coro, yielded), event)

    def spawn_awaitable(self, result: Any, event: str = "orderbook") -> None:
        """A handler returned something other than None or a coroutine: await it if it is
        awaitable (as the SDK did), else ignore it."""
        if inspect.isawaitable(result):
            self._spawn(result, event)

    def _spawn(self, awaitable: Awaitable[Any], event: str) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.warning("Callback error in %s handler", event, exc_info=t.exception())
        task.add_done_callback(done)

    @staticmethod
    def log_error(event: str | None) -> None:
        """Called inside ``except``: a handler of ``event`` raised, or (None) a book frame could
        not be turned into an event."""
        if event is None:
            logger.debug("compat: frame not handled", exc_info=True)
        else:
            logger.warning("Callback error in %s handler", event, exc_info=True)

    def cancel_all(self) -> None:
        """Cancel the handlers still running as tasks (on close)."""
        for task in list(self._tasks):
            task.cancel()
