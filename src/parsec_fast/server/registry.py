"""The connection registry and the subscription index of the local server.

A :class:`Registry` is handed to every connection: a connection registers itself once its
handshake is done, indexes each subscription it adds and unindexes each one it drops, and asks it
how many subscriptions its account holds (the tier's cap counts every connection of an account).
The fan-out, the fault target and the throughput blast read it to find who watches a book.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from .subscription import BookKey, Subscription

__all__ = ["Registry", "Member", "Watcher"]


class Member(Protocol):
    """What the registry reads from a connection."""

    account: str | None
    subs: dict[BookKey, Subscription]
    addresses: set[tuple[str, str]]


class Watcher(Protocol):
    """Told which (book, depth) pairs are watched (the simulator computes depth windows)."""

    def watch(self, key: BookKey, depth: int) -> None:
        """A subscription of ``key`` at ``depth`` was indexed: compute that window from now on
        (counted: each call is undone by one :meth:`unwatch`)."""
        ...

    def unwatch(self, key: BookKey, depth: int) -> None:
        """Undo one :meth:`watch` of the same ``key`` and ``depth`` (the subscription was
        unindexed)."""
        ...


M = TypeVar("M", bound=Member)


class Registry(Generic[M]):
    """Open connections, in handshake order, and the subscriptions indexed by book.

    ``on_index(key)`` is called whenever a subscription of ``key`` is indexed (the market status
    starts its staleness clock there).
    """

    def __init__(self, watcher: Watcher, on_index: Callable[[BookKey], None] | None = None) -> None:
        self.connections: list[M] = []
        self._watcher = watcher
        self._on_index = on_index
        self._by_key: dict[BookKey, set[M]] = {}
        self._keys: list[BookKey] | None = None
        self._changed: asyncio.Event | None = None

    # -- connections ---------------------------------------------------------------------------
    def register(self, conn: M) -> None:
        """Add an open connection."""
        self.connections.append(conn)
        self._notify()

    def unregister(self, conn: M) -> None:
        """Remove a closed connection and every subscription it held from the index."""
        if conn in self.connections:
            self.connections.remove(conn)
        for sub in conn.subs.values():
            self.unindex(conn, sub)
        self._notify()

    async def wait_for(self, n: int, timeout: float = 2.0) -> list[M]:
        """Wait until ``n`` connections are registered; return them."""
        async def wait() -> None:
            while len(self.connections) < n:
                if self._changed is None:
                    self._changed = asyncio.Event()
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)
        return list(self.connections)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- subscription index ----------------------------------------------------------------------
    def index(self, conn: M, sub: Subscription) -> None:
        """``conn`` now receives the stream of ``sub`` (at ``sub.depth``)."""
        key = sub.key
        self._by_key.setdefault(key, set()).add(conn)
        self._watcher.watch(key, sub.depth)
        if self._on_index is not None:
            self._on_index(key)
        self._keys = None

    def unindex(self, conn: M, sub: Subscription) -> None:
        """Undo :meth:`index` (a no-op when ``sub`` was not indexed for ``conn``)."""
        key = sub.key
        conns = self._by_key.get(key)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        if not conns:
            del self._by_key[key]
        self._watcher.unwatch(key, sub.depth)
        self._keys = None

    def subscribers(self, key: BookKey) -> list[M]:
        """The connections subscribed to ``key`` (a copy: safe to iterate while sending)."""
        conns = self._by_key.get(key)
        return list(conns) if conns else []

    def has_subscribers(self, key: BookKey) -> bool:
        """True when at least one connection watches ``key``."""
        return key in self._by_key

    def subscribed_keys(self) -> list[BookKey]:
        """(parsec_id, outcome) pairs with at least one subscriber, sorted (cached; do not mutate)."""
        if self._keys is None:
            self._keys = sorted(self._by_key)
        return self._keys

    def account_subscriptions(self, account: str | None) -> int:
        """Markets + addresses subscribed by every connection of ``account``."""
        return sum(len(c.subs) + len(c.addresses) for c in self.connections if c.account == account)
