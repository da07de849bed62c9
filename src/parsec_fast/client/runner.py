"""Running a coroutine in a fresh event loop, with uvloop when it is installed."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run", "loop_factory"]

T = TypeVar("T")


def loop_factory(use_uvloop: bool | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event-loop factory for ``use_uvloop``: uvloop's when installed (None), forced
    (True: ImportError naming the fix if it is missing), or asyncio's default (False)."""
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


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None) -> T:
    """Run ``main`` in a new event loop (see :func:`loop_factory` for ``use_uvloop``)."""
    with asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
        return runner.run(main)
