"""Who wants which book: the relay's consumers, their leases, and the union it subscribes upstream.

No I/O and no clock of its own (``now`` is passed in), so lease expiry is tested with a fake
clock. A consumer is known from its ``auth`` on; its wants change with its ``subscribe`` /
``unsubscribe`` requests, and every ``lease`` it sends (every ``lease_ttl / 3`` seconds) carries
its whole want list and renews it: the lease is the truth, so a lost request or a relay restart
heals within one renewal. A consumer that stops renewing (crashed, partitioned, paused) stops
counting ``lease_ttl`` seconds after its last message; one that says ``bye`` at once.

:meth:`Wants.union` is what the relay's upstream client must hold: every book some live consumer
wants, at the deepest depth any of them asked for (``None`` = the server's default, 50).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..rules import BookKey
from ..selectors import MarketSelector

__all__ = ["Consumer", "Wants", "deepest"]


@dataclass(slots=True)
class Consumer:
    """One consumer the relay serves."""

    id: str
    #: Where its replies go (its data connection's inbox).
    inbox: str
    expires_at: float
    wants: dict[BookKey, MarketSelector] = field(default_factory=dict)
    authenticated: bool = False


def deepest(selectors: Iterable[MarketSelector]) -> MarketSelector:
    """The selector with the largest depth (None counts as the default 50)."""
    best: MarketSelector | None = None
    for sel in selectors:
        if best is None or (sel.depth or 50) > (best.depth or 50):
            best = sel
    if best is None:
        raise ValueError("no selector")
    return best


class Wants:
    """The consumers and their wants (see the module docstring)."""

    def __init__(self, lease_ttl: float) -> None:
        if not lease_ttl > 0:
            raise ValueError(f"lease_ttl must be > 0, got {lease_ttl!r}")
        self.lease_ttl: float = lease_ttl
        self._consumers: dict[str, Consumer] = {}

    def __len__(self) -> int:
        return len(self._consumers)

    def get(self, consumer_id: str) -> Consumer | None:
        """A known consumer, or None."""
        return self._consumers.get(consumer_id)

    def consumers(self) -> list[Consumer]:
        """Every known consumer."""
        return list(self._consumers.values())

    def touch(self, consumer_id: str, inbox: str | None, now: float) -> Consumer:
        """The consumer (created if new), its lease renewed."""
        consumer = self._consumers.get(consumer_id)
        if consumer is None:
            consumer = Consumer(consumer_id, inbox or "", now + self.lease_ttl)
            self._consumers[consumer_id] = consumer
        consumer.expires_at = now + self.lease_ttl
        if inbox:
            consumer.inbox = inbox
        return consumer

    def add(self, consumer_id: str, selectors: Iterable[MarketSelector], inbox: str | None,
            now: float) -> Consumer:
        """The consumer wants these books (with their depths)."""
        consumer = self.touch(consumer_id, inbox, now)
        for sel in selectors:
            consumer.wants[sel.key] = sel
        return consumer

    def remove(self, consumer_id: str, keys: Iterable[BookKey], now: float) -> None:
        """The consumer no longer wants these books."""
        consumer = self._consumers.get(consumer_id)
        if consumer is None:
            return
        consumer.expires_at = now + self.lease_ttl
        for key in keys:
            consumer.wants.pop(key, None)

    def lease(self, consumer_id: str, selectors: Iterable[MarketSelector], inbox: str | None,
              now: float) -> Consumer:
        """A renewal: ``selectors`` is the consumer's whole want list."""
        consumer = self.touch(consumer_id, inbox, now)
        consumer.wants = {sel.key: sel for sel in selectors}
        return consumer

    def drop(self, consumer_id: str) -> Consumer | None:
        """The consumer said goodbye (or was refused): forget it now."""
        return self._consumers.pop(consumer_id, None)

    def forget_book(self, key: BookKey) -> list[Consumer]:
        """Nobody may want ``key`` any more (the upstream refused it); the consumers that did."""
        had = [c for c in self._consumers.values() if key in c.wants]
        for consumer in had:
            del consumer.wants[key]
        return had

    def expire(self, now: float) -> list[Consumer]:
        """Forget the consumers whose lease ran out; returns them."""
        gone = [c for c in self._consumers.values() if c.expires_at <= now]
        for consumer in gone:
            del self._consumers[consumer.id]
        return gone

    def wanting(self, key: BookKey) -> list[Consumer]:
        """The consumers that want ``key``."""
        return [c for c in self._consumers.values() if key in c.wants]

    def union(self) -> dict[BookKey, MarketSelector]:
        """Every wanted book, at the deepest depth wanted."""
        by_key: dict[BookKey, list[MarketSelector]] = {}
        for consumer in self._consumers.values():
            for key, sel in consumer.wants.items():
                by_key.setdefault(key, []).append(sel)
        return {key: deepest(sels) for key, sels in by_key.items()}
