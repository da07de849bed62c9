"""Busy-poll receive mode: an event loop that never sleeps in the kernel while it is asked to.

``Client(..., busy_poll=True)`` holds the loop's :class:`BusyPoll` from the moment a
connection's WebSocket is open until the connection ended (so it sleeps again while it backs off
to reconnect); ``run(main, busy_poll=True)`` holds it for the whole of ``main``. While it is
held the loop does not block in ``epoll_wait``: it polls its file descriptors with a zero
timeout, again and again, and runs its timers, ready callbacks and other tasks between polls
exactly as it would after a wake-up. Nothing else changes: the same listener, the same frames,
the same events, in the same order.

Why: on an idle receiver, data that arrives must first wake the sleeping thread (an
inter-processor interrupt, on a VM a trip through the hypervisor, then the scheduler). That
wake-up, not parsing, is most of the send-to-visible latency of a sleeping client
(``bench/bench_latency.py``; ``bench/RESULTS.md`` has the figures). A loop that never sleeps
sees the bytes as soon as the kernel queued them.

Two mechanisms, one per kind of loop, both chosen by measurement (``bench/bench_latency.py``;
the figures are in ``bench/results_notes.md``):

* **Spinning callback** (uvloop, and any loop this module did not make): a callback that
  re-schedules itself with ``call_soon``, so the loop always has a ready callback and polls with
  a zero timeout instead of sleeping. Under uvloop one turn is ~0.8 µs (libuv's iteration in C),
  and a frame then goes from the socket to the listener without Python in between: the lowest
  send-to-visible latency measured, so it is what :func:`busy_loop_factory` gives when uvloop is
  installed (as the default mode uses uvloop). Under asyncio a turn is ~1.9 µs (its
  ``_run_once`` is Python).
* **Spinning selector** (asyncio loops from :func:`busy_loop_factory`, when uvloop is not
  installed or ``use_uvloop=False``): a ``SelectorEventLoop`` over :class:`SpinSelector`, an
  epoll selector whose blocking waits become a loop of ``epoll_wait(0)`` (~0.3 µs a turn) until
  a descriptor is ready or the loop's next timer is due; asyncio's own iteration runs only when
  there is work. Lower latency than the spinning callback on asyncio.

Tried and dropped: a spinning callback that also polls the connection's socket with its own
``epoll_wait(0)`` between uvloop iterations (no better than the plain one). The socket's
``SO_BUSY_POLL`` option busy-polls a NIC's queue inside the kernel; on loopback, with no NAPI
device, it does nothing (measured with ``raw-sobusypoll``: a blocking socket with it still sleeps,
0.14-0.20 core, and its p50 stays the blocking floor's), so it is not used (it may help on a real
NIC: untested).

Cost and bounds: it is one thread, so it uses exactly one core, all of it, the whole time it is
held (``getrusage`` shows ~1 CPU-second per second), whatever the message rate. Use it only
where a core is dedicated to the process (pinned, e.g. ``taskset``/``isolcpus``, no other busy
process on it). **Do not use it** on shared cores (a spinning process and another busy one on
the same core slow each other down: the spinner's time slices are what the other needs, and the
latency gets *worse* than sleeping, by whole scheduler slices, milliseconds), on laptops or
battery power, in containers with a CPU quota below one core, or with many client processes per
core. A sleeping loop wakes within tens of microseconds; busy-polling is for the last few.
"""
from __future__ import annotations

import asyncio
import select
import selectors
import time
import weakref
from collections.abc import Callable
from typing import Literal

__all__ = ["BusyPoll", "SpinSelector", "busy_loop_factory", "Mechanism"]

Mechanism = Literal["selector", "callback"]

_READ_MASK = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
_WRITE_MASK = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP


class SpinSelector(selectors.EpollSelector):
    """An epoll selector that, while :attr:`spinning`, never blocks: a wait of ``timeout``
    seconds (None: until ready) is a loop of zero-timeout polls that returns as soon as a
    descriptor is ready, or empty once the timeout has passed."""

    #: Spin instead of blocking (set by the loop's :class:`BusyPoll`).
    spinning: bool = False

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """The ready ``(key, events)`` pairs, as ``EpollSelector.select``. While
        :attr:`spinning` and ``timeout`` is None or > 0, it never sleeps: zero-timeout epoll
        polls until a descriptor is ready, ``timeout`` has passed or spinning stops (then
        ``[]``). That keeps one core at 100 % for as long as it spins."""
        if not self.spinning or (timeout is not None and timeout <= 0):
            return super().select(timeout)
        poll = self._selector.poll  # type: ignore[attr-defined]  # the select.epoll
        fd_to_key = self._fd_to_key  # type: ignore[attr-defined]  # (a mapping per call: slow)
        max_ev = max(len(fd_to_key), 1)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ready = poll(0, max_ev)
            if ready:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return []
            if not self.spinning:  # released from a signal handler while we spun
                return []
        key_of = fd_to_key.get
        out = []
        for fd, ev in ready:
            key = key_of(fd)
            if key is None:
                continue
            mask = (selectors.EVENT_READ if ev & _READ_MASK else 0) | \
                (selectors.EVENT_WRITE if ev & _WRITE_MASK else 0)
            out.append((key, mask & key.events))
        return out


#: The SpinSelector of each loop busy_loop_factory made.
_SELECTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SpinSelector] = \
    weakref.WeakKeyDictionary()


def busy_loop_factory(use_uvloop: bool | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event-loop factory for busy polling: uvloop's loop (spinning callback) when it is
    installed (None) or forced (True: ImportError naming the fix if it is missing); asyncio's
    selector loop over a :class:`SpinSelector` otherwise or with ``use_uvloop=False``."""
    if use_uvloop is not False:
        try:
            import uvloop
        except ImportError:
            if use_uvloop:
                raise ImportError("use_uvloop=True but uvloop is not installed: pip install "
                                  "uvloop (or parsec_fast[uvloop])") from None
        else:
            return uvloop.new_event_loop

    def factory() -> asyncio.AbstractEventLoop:
        selector = SpinSelector()
        loop = asyncio.SelectorEventLoop(selector)
        _SELECTORS[loop] = selector
        return loop
    return factory


class BusyPoll:
    """The busy poller of one event loop: it spins while :meth:`acquire` calls outnumber
    :meth:`release` calls (several clients on one loop share it). Get it with :meth:`of`."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BusyPoll] = \
        weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._selector = _SELECTORS.get(loop)
        self._holders = 0
        self._handle: asyncio.Handle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop | None = None) -> BusyPoll:
        """The busy poller of ``loop`` (default: the running loop)."""
        loop = loop if loop is not None else asyncio.get_running_loop()
        poller = cls._by_loop.get(loop)
        if poller is None:
            poller = cls._by_loop[loop] = cls(loop)
        return poller

    @property
    def mechanism(self) -> Mechanism:
        """``"selector"`` on an asyncio loop from :func:`busy_loop_factory`, else
        ``"callback"``."""
        return "selector" if self._selector is not None else "callback"

    @property
    def spinning(self) -> bool:
        """True while held."""
        return self._holders > 0

    def acquire(self) -> None:
        """Start (or keep) spinning."""
        self._holders += 1
        if self._holders > 1:
            return
        if self._selector is not None:
            self._selector.spinning = True
            # a loop sleeping in the kernel right now (we were called from another
            # callback, so it is not) would stay asleep until its timeout: wake it anyway
            self._loop.call_soon(_nothing)
        elif self._handle is None:
            self._handle = self._loop.call_soon(self._tick)

    def release(self) -> None:
        """Stop spinning once every holder released."""
        if self._holders == 0:
            return
        self._holders -= 1
        if self._holders:
            return
        if self._selector is not None:
            self._selector.spinning = False
        elif self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        # a ready callback keeps the loop's next poll at a zero timeout
        self._handle = self._loop.call_soon(self._tick) if self._holders else None


def _nothing() -> None:
    pass
