"""One market outcome watched by one connection, and the key subscriptions are indexed by."""
from __future__ import annotations

from dataclasses import dataclass

from .simulator import MarketSpec

__all__ = ["BookKey", "Subscription"]

#: (parsec_id, canonical outcome): one book, on the server and in every index.
BookKey = tuple[str, str]


@dataclass
class Subscription:
    """One market outcome watched by a connection."""

    market: MarketSpec
    outcome: str
    depth: int
    #: Deltas are withheld until the client sends ``resync`` (after resync_required,
    #: needs_refresh or a hard send-buffer overflow).
    awaiting_resync: bool = False
    #: A delta held back by the reorder fault, sent after the next one.
    held: bytes | None = None

    @property
    def key(self) -> BookKey:
        """(parsec_id, outcome)."""
        return (self.market.parsec_id, self.outcome)
