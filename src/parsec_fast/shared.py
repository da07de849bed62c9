"""Shared-memory books: one engine process holds the Parsec connection, any process on the host
reads its books (the compiled core: ``parsec_fast._shm``, whose docstring has the layout and the
protocol, ``parsec_fast._shm_writer``, the publisher, and ``parsec_fast._shm_reader``, the reader
side).

Publisher side (the engine)::

    from parsec_fast import Client
    from parsec_fast.shared import publish

    async with Client(url, api_key=key) as client:
        publish(client, "parsec-books")        # every book of the client, from now on
        await client.subscribe([...])
        ...                                    # closing the client closes the region

Reader side (any number of processes, e.g. one per strategy)::

    from parsec_fast.shared import attach

    books = attach("parsec-books")
    book = books.book("polymarket:572473", "Yes")       # a read-only SharedBook
    seen = books.changes
    while True:
        seen = books.wait(seen, timeout=1.0)            # or: await books.changed(seen)
        if book.trustworthy:
            bid_px, bid_sz, ask_px, ask_sz = book.top()  # one consistent read

A :class:`~parsec_fast._shm_reader.SharedBook` has the ``Book`` read API (``best_bid``, ``mid``,
``bids(n)``, ``*_array``, ``*_into``, ``seq``, ``is_valid`` ...) and the ``Subscription`` trust
signals (``trustworthy``, ``why_not()``, states, staleness, timestamps), plus the publisher's
liveness: when the publisher closes, dies or hangs past the heartbeat bound, every book reports
not trustworthy with the reason, and ``wait`` / ``changed`` raise
:class:`~parsec_fast._shm.PublisherGoneError`.

Performance (this repository's 2-core VM; ``bench/bench_shm.py``, ``bench/RESULTS.md``):
publishing adds one slot write per updated book per read batch to the engine's apply path;
a reader's top-of-book read costs about what ``Book.best_bid`` does; a change is visible to a
spinning reader within about a microsecond, to a sleeping one within its wake-up (tens of µs);
readers never slow the writer by more than the cache lines they share with it.
"""
from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ._feed import FeedHandler
from ._shm import (LAYOUT_VERSION, SHM_DIR, BookBusyError, BookGoneError, LayoutMismatchError,
                   PublisherGoneError, SharedMemoryError, region_owner)
from ._shm_reader import SharedBook, SharedRegion
from ._shm_writer import Publisher

if TYPE_CHECKING:
    from .client import Client

__all__ = ["publish", "attach", "unlink", "Publisher", "SharedBooks", "SharedBook",
           "SharedMemoryError", "LayoutMismatchError", "BookGoneError", "BookBusyError",
           "PublisherGoneError", "LAYOUT_VERSION"]

_live: weakref.WeakSet[Publisher] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    # A normal interpreter exit closes and unlinks what this process published (readers see
    # "publisher closed"); a killed process leaves the file, replaced by the next publisher.
    for pub in list(_live):
        try:
            pub.close("publisher process exited")
        except Exception:  # pragma: no cover - best effort at exit
            pass


def publish(source: Client | FeedHandler, name: str, *, max_books: int = 1024,
            max_levels: int = 100, heartbeat_timeout: float = 1.0, mode: int = 0o600,
            replace: bool = False) -> Publisher:
    """Publish every book of ``source`` (a :class:`~parsec_fast.Client` or its
    :class:`~parsec_fast.FeedHandler`) into the shared-memory region ``name``
    (``/dev/shm/NAME``) and return the :class:`~parsec_fast._shm_writer.Publisher`.

    ``max_books`` slots of ``max_levels`` levels per side (the top ones of a deeper book;
    readers see ``SharedBook.truncated``); ``heartbeat_timeout`` is the bound readers use by
    default to call the publisher gone (a ``Client`` beats every ``stale_check_interval`` and at
    every read batch; with a bare FeedHandler call ``Publisher.heartbeat()`` or
    ``FeedHandler.check_stale()`` at least every ``heartbeat_timeout / 4``); ``mode`` the file's
    permissions (readers need read and write: they set the waiter flag). Raises
    ``FileExistsError`` while a live publisher holds ``name``.

    Closing the client (or ``Publisher.close()``) marks every book invalid and the region
    closed, and unlinks it; so does a normal interpreter exit."""
    feed = source if isinstance(source, FeedHandler) else source.feed_handler
    pub = Publisher(name, max_books=max_books, max_levels=max_levels,
                    heartbeat_timeout=heartbeat_timeout, mode=mode, replace=replace)
    try:
        pub.attach(feed)
    except BaseException:
        pub.close("attach failed")
        raise
    _live.add(pub)
    return pub


def attach(name: str, *, heartbeat_timeout: float | None = None) -> SharedBooks:
    """Map the region ``name`` read-only and return its :class:`SharedBooks`.

    ``heartbeat_timeout`` (s) overrides the publisher's advertised bound. Raises
    ``FileNotFoundError`` when no publisher created ``name``, and
    :class:`~parsec_fast._shm.LayoutMismatchError` (naming the difference) when the region was
    written by a parsec_fast with another layout version."""
    return SharedBooks(name, heartbeat_timeout=heartbeat_timeout)


def unlink(name: str) -> bool:
    """Remove the region file ``name`` left by a publisher that was killed (a live or cleanly
    closed publisher needs none of this). Refuses (``FileExistsError``) while its publisher is
    live. True if a file was removed. Processes that mapped it keep their mapping."""
    path = SHM_DIR + name
    verdict = region_owner(path)
    if verdict is not None and verdict.startswith("held by"):
        raise FileExistsError(f"shared book region {name!r} is {verdict}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


class SharedBooks(SharedRegion):
    """The books of one region as a reader sees them (from :func:`attach`).

    ``book(parsec_id, outcome="Yes")`` / ``get`` / ``books()`` / ``keys()`` / ``in``;
    ``changes`` (a counter bumped once per publishing flush), ``wait(last, timeout)`` (blocking)
    and ``await changed(last, timeout)``; ``alive`` / ``gone_reason`` / ``heartbeat_age``.
    ``close()`` unmaps this process's view (never the file)."""

    def __init__(self, name: str, *, heartbeat_timeout: float | None = None) -> None:
        super().__init__(name, heartbeat_timeout=heartbeat_timeout)
        self._waiter: _Waiter | None = None
        self._waiter_lock = threading.Lock()

    async def changed(self, last: int | None = None, timeout: float | None = None) -> int:
        """Await a change of the counter from ``last`` (default: its value now); return the new
        value, or ``last`` after ``timeout`` s. Raises PublisherGoneError as ``wait`` does.

        The event loop never blocks: one helper thread per SharedBooks sleeps in ``wait`` (the
        GIL released) while coroutines await, and hands each change to their loop with
        ``call_soon_threadsafe``. That hand-off is one more wake-up than ``wait``'s (measured in
        ``bench/RESULTS.md``)."""
        if not self.alive:
            raise PublisherGoneError(f"shared region {self.name!r}: {self.gone_reason}")
        current = self.changes
        if last is None:
            last = current
        elif (last & 0xFFFFFFFF) != current:
            return current
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        waiter = self._ensure_waiter()
        waiter.add(fut, loop, last)
        try:
            if timeout is None:
                return await fut
            try:
                return await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                return last
        finally:
            waiter.discard(fut)

    def _ensure_waiter(self) -> _Waiter:
        with self._waiter_lock:
            if self._waiter is None:
                self._waiter = _Waiter(self)
            return self._waiter

    def close(self) -> None:
        """Stop the helper thread (if any) and unmap this process's view of the region."""
        waiter = getattr(self, "_waiter", None)
        if waiter is not None:
            self._waiter = None
            if not waiter.stop():
                return  # still inside wait(): the mapping goes when the last reference does
        super().close()

    def __enter__(self) -> SharedBooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Waiter:
    """The thread behind :meth:`SharedBooks.changed`: waits while futures are registered and
    resolves each one whose ``last`` differs from the counter."""

    def __init__(self, books: SharedBooks) -> None:
        self._books = books
        self._cond = threading.Condition()
        self._entries: dict[asyncio.Future[int], tuple[asyncio.AbstractEventLoop, int]] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"parsec_fast.shared:{books.name}",
                                        daemon=True)
        self._thread.start()

    def add(self, fut: asyncio.Future[int], loop: asyncio.AbstractEventLoop, last: int) -> None:
        with self._cond:
            self._entries[fut] = (loop, last)
            self._cond.notify()

    def discard(self, fut: asyncio.Future[int]) -> None:
        with self._cond:
            self._entries.pop(fut, None)

    def stop(self) -> bool:
        """Stop the thread; False if it did not end in time (it sleeps at most ~0.2 s)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)
        return not self._thread.is_alive()

    def _deliver(self, items: list[tuple[asyncio.Future[int], asyncio.AbstractEventLoop]],
                 value: Any) -> None:
        with self._cond:
            for fut, _ in items:
                self._entries.pop(fut, None)
        for fut, loop in items:
            try:
                loop.call_soon_threadsafe(_settle, fut, value)
            except RuntimeError:  # its loop is closed: nobody awaits it any more
                pass

    def _run(self) -> None:
        books = self._books
        while True:
            with self._cond:
                while not self._entries and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                entries = list(self._entries.items())
            try:
                if not books.alive:
                    raise PublisherGoneError(f"shared region {books.name!r}: {books.gone_reason}")
                current = books.changes
                ready = [(f, loop) for f, (loop, last) in entries if (last & 0xFFFFFFFF) != current]
                if ready:
                    self._deliver(ready, current)
                    continue
                books.wait(current, timeout=0.1)  # GIL released while it sleeps
            except PublisherGoneError as exc:
                self._deliver([(f, loop) for f, (loop, _) in entries], exc)
            except SharedMemoryError as exc:  # unmapped under us: close() is stopping us
                self._deliver([(f, loop) for f, (loop, _) in entries], exc)
                return


def _settle(fut: asyncio.Future[int], value: Any) -> None:
    if fut.done():
        return
    if isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)
