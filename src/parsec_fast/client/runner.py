"""Running a coroutine in a fresh event loop, with uvloop when it is installed, or busy-polling."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .busypoll import BusyPoll, busy_loop_factory

__all__ = ["run", "loop_factory"]

T = TypeVar("T")


def loop_factory(use_uvloop: bool | None = None, *,
                 busy_poll: bool = False) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event-loop factory for ``use_uvloop``: uvloop's when installed (None), forced
    (True: ImportError naming the fix if it is missing), or asyncio's default (False).

    With ``busy_poll``, a loop built to busy-poll
    (:func:`~parsec_fast.client.busypoll.busy_loop_factory`): uvloop's by the same rule (the
    lowest latency measured), else asyncio's selector loop over a spinning selector."""
    if busy_poll:
        return busy_loop_factory(use_uvloop)
    if use_uvloop is False:
        return None
    try:
        import uvloop
    except ImportError:
        if use_uvloop:
            raise ImportError("use_uvloop=True but uvloop is not installed: pip install uvloop "
                              "(or parsec_fast[uvloop])") from None
        return None
    return uvloop.new_event_loop


def run_in_loop(main: Coroutine[Any, Any, T],
                factory: Callable[[], asyncio.AbstractEventLoop] | None, *,
                spin: bool = False) -> T:
    """Run ``main`` in a new loop from ``factory`` (None: asyncio's default); with ``spin``,
    the loop busy-polls for the whole of ``main``."""
    async def spinning() -> T:
        poller = BusyPoll.of(asyncio.get_running_loop())
        poller.acquire()
        try:
            return await main
        finally:
            poller.release()

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(spinning() if spin else main)


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None,
        busy_poll: bool = False) -> T:
    """Run ``main`` in a new event loop (see :func:`loop_factory` for ``use_uvloop``).

    ``busy_poll=True``: the loop never sleeps in the kernel while ``main`` runs; it polls its
    sockets, timers and tasks in a tight loop on one core (100 % of it, all the time). For a
    process on a dedicated core only: see :mod:`parsec_fast.client.busypoll` for the cost and
    when not to use it. Clients created with ``busy_poll=True`` spin only while connected."""
    return run_in_loop(main, loop_factory(use_uvloop, busy_poll=busy_poll), spin=busy_poll)
