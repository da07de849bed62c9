"""Ctrl-C and SIGTERM: a clean stop, then exit 130 / 143.

While a :class:`StopSignals` block runs, the first SIGINT or SIGTERM does not raise: it is
remembered (``received``), wakes whoever waits (:meth:`StopSignals.wait`, :meth:`guard`) and
runs the ``on_stop`` callbacks, so a command can close its client and its recording and print
its summary before it exits with :attr:`exit_code`. The handlers that were there before come
back at once, so a second Ctrl-C interrupts the way it did before (``KeyboardInterrupt``).

Outside such a block (argument parsing, the bench runner), ``main`` turns SIGTERM into
:class:`Interrupted` the way Python turns SIGINT into ``KeyboardInterrupt``.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from types import FrameType, TracebackType
from typing import TypeVar

from .exits import exit_code_for_signal

__all__ = ["StopSignals", "Interrupted", "raise_interrupted", "STOP_SIGNALS"]

T = TypeVar("T")

#: The signals that stop a command.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Interrupted(Exception):
    """A stop signal ended a step that cannot finish half-way (connecting, say)."""

    def __init__(self, signum: int, while_: str = "") -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}" + (f" while {while_}" if while_ else ""))
        #: The signal's number.
        self.signum: int = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM."""
        return exit_code_for_signal(self.signum)


def raise_interrupted(signum: int, frame: FrameType | None) -> None:
    """A ``signal.signal`` handler: raise :class:`Interrupted` (``main`` sets it for
    SIGTERM)."""
    raise Interrupted(signum)


class StopSignals:
    """``with StopSignals(loop) as stop:`` — the first SIGINT/SIGTERM becomes a request to stop
    (see the module docstring). With an event loop the handlers run in the loop
    (``loop.add_signal_handler``); without one, in Python's signal handler (sync commands).
    Off the main thread it does nothing (signals only reach the main thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        #: The first stop signal received (None: none yet).
        self.received: int | None = None
        self._loop = loop
        self._event: asyncio.Event | None = asyncio.Event() if loop is not None else None
        self._callbacks: list[Callable[[], None]] = []
        self._previous: dict[signal.Signals, _Handler] = {}

    @property
    def exit_code(self) -> int:
        """0 when no stop signal came, else 130 (SIGINT) or 143 (SIGTERM)."""
        return 0 if self.received is None else exit_code_for_signal(self.received)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the stop signal comes (in the signal handler: keep it
        short, e.g. set a flag)."""
        self._callbacks.append(callback)

    def __enter__(self) -> StopSignals:
        """Install the handlers (remembering the ones they replace)."""
        for sig in STOP_SIGNALS:
            try:
                previous = signal.getsignal(sig)
                if self._loop is not None:
                    self._loop.add_signal_handler(sig, self._receive, int(sig))
                else:
                    signal.signal(sig, self._python_handler)
            except (ValueError, RuntimeError):  # not the main thread: signals never reach us
                continue
            self._previous[sig] = previous
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Put the previous handlers back."""
        self._restore()

    def _python_handler(self, signum: int, frame: FrameType | None) -> None:
        self._receive(signum)

    def _receive(self, signum: int) -> None:
        if self.received is not None:
            return
        self.received = signum
        self._restore()  # a second signal acts as it did before this block
        if self._event is not None:
            self._event.set()
        for callback in self._callbacks:
            callback()

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            if self._loop is not None:
                self._loop.remove_signal_handler(sig)
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait for the stop signal (at most ``timeout`` seconds); True if it came."""
        if self._event is None:
            raise RuntimeError("StopSignals.wait needs an event loop")
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self._event.is_set()

    async def guard(self, step: Awaitable[T], while_: str) -> T:
        """Await ``step``; if a stop signal comes first, cancel it (its cleanup runs) and raise
        :class:`Interrupted` saying what was interrupted (``while_``)."""
        task = asyncio.ensure_future(step)
        waiter = asyncio.ensure_future(self.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # we were cancelled: so is the step
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        try:
            await task
        except BaseException:  # the step's own error after cancellation does not matter now
            pass
        assert self.received is not None
        raise Interrupted(self.received, while_)
