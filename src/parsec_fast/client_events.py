"""Events the :class:`parsec_fast.Client` emits, by kind.

Every event has a ``kind`` (class attribute). Callbacks registered with ``client.on(kind, cb)``
and the async iterator ``client.events()`` receive the same objects.

Client-level events are defined here (frozen, slotted dataclasses). Decoded server frames are
delivered as the protocol events of :mod:`parsec_fast.events`:

=================== ====================================================================
kind                event
=================== ====================================================================
``book_updated``    :class:`BookUpdated` — which book and its seq (read the live book)
``book_invalid``    :class:`BookInvalid` — with the reason; a resync is on its way
``book_recovered``  :class:`BookRecovered` — a snapshot made the book valid again
``book_state``      :class:`BookStateChanged` — server book/feed state, local stale/fresh
``trade``           :class:`parsec_fast.events.Trade`
``fill``            :class:`parsec_fast.events.Fill`
``wallet_activity`` :class:`parsec_fast.events.WalletActivity`
``heartbeat``       :class:`parsec_fast.events.Heartbeat`
``slow_reader``     :class:`parsec_fast.events.SlowReader`
``error``           :class:`parsec_fast.events.ErrorEvent` (server ``error`` frame) or
                    :class:`parsec_fast.events.AuthError`
``subscription_failed`` :class:`SubscriptionFailed` — the server refused one market
``unknown``         :class:`parsec_fast.events.UnknownMessage` (a newer server feature)
``protocol_error``  :class:`ProtocolErrorEvent` — a malformed frame (its book is resynced)
``connected``       :class:`Connected`
``disconnected``    :class:`Disconnected`
``reconnecting``    :class:`Reconnecting`
``events_dropped``  :class:`EventsDropped` — only in ``client.events()`` streams
=================== ====================================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .errors import ProtocolError
from .events import AuthError, ErrorEvent, Fill, Heartbeat, SlowReader, Trade, UnknownMessage, \
    WalletActivity

__all__ = ["ClientEvent", "BookUpdated", "BookInvalid", "BookRecovered", "BookStateChanged",
           "Connected", "Disconnected", "Reconnecting", "SubscriptionFailed",
           "ProtocolErrorEvent", "EventsDropped", "EVENT_KINDS", "DROPPABLE_KINDS", "kind_of"]


class ClientEvent:
    """Base class of the client-level events."""

    __slots__ = ()
    kind: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class BookUpdated(ClientEvent):
    """A book changed (one event per book per read batch: updates are coalesced).

    Carries no copy of the book: read ``client.book(parsec_id, outcome)``, which is always
    current. ``seq`` is the book's seq when the event was made.
    """

    kind: ClassVar[str] = "book_updated"
    parsec_id: str
    outcome: str
    seq: int


@dataclass(frozen=True, slots=True)
class BookInvalid(ClientEvent):
    """A book became invalid (``reason``: gap, resync_required, needs_refresh, rejected,
    seq_conflict, disconnected); do not trade on it until :class:`BookRecovered`."""

    kind: ClassVar[str] = "book_invalid"
    parsec_id: str
    outcome: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookRecovered(ClientEvent):
    """A snapshot made the book valid again (also sent for each book's first snapshot)."""

    kind: ClassVar[str] = "book_recovered"
    parsec_id: str
    outcome: str
    seq: int


@dataclass(frozen=True, slots=True)
class BookStateChanged(ClientEvent):
    """A state change of a book that does not invalidate it.

    ``what`` is ``"state"`` (the server announced a new ``book_state``/``feed_state``;
    ``reason`` like ``"feed_state=degraded"``), ``"stale"`` (no book frame within
    ``stale_after_ms``, detected locally) or ``"fresh"`` (frames again).
    """

    kind: ClassVar[str] = "book_state"
    parsec_id: str
    outcome: str
    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class Connected(ClientEvent):
    """Authenticated on a new connection (``attempt`` 0 for the first connection)."""

    kind: ClassVar[str] = "connected"
    url: str
    customer_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Disconnected(ClientEvent):
    """The connection ended; every book is now invalid (reason ``"disconnected"``)."""

    kind: ClassVar[str] = "disconnected"
    reason: str
    will_reconnect: bool


@dataclass(frozen=True, slots=True)
class Reconnecting(ClientEvent):
    """The client waits ``delay`` seconds (exponential backoff with jitter), then connects."""

    kind: ClassVar[str] = "reconnecting"
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class SubscriptionFailed(ClientEvent):
    """The server refused a market subscription (e.g. 2002 not found, 3002 limit reached);
    the client no longer holds it."""

    kind: ClassVar[str] = "subscription_failed"
    parsec_id: str
    outcome: str
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ProtocolErrorEvent(ClientEvent):
    """A frame was not a valid protocol message; the book it named (if any) is resynced."""

    kind: ClassVar[str] = "protocol_error"
    error: ProtocolError = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class EventsDropped(ClientEvent):
    """An ``events()`` stream was full and dropped some droppable events (book updates,
    heartbeats, trades, fills, wallet snapshots) since its previous notice.

    ``counts`` maps kind -> number dropped; ``books`` lists the (parsec_id, outcome) whose
    ``book_updated`` events were dropped (their books are current: read them).
    State events (invalid/recovered/state/connection/errors) are never dropped.
    """

    kind: ClassVar[str] = "events_dropped"
    counts: dict[str, int] = field(hash=False)
    books: frozenset[tuple[str, str]] = frozenset()

    @property
    def total(self) -> int:
        """Number of events dropped."""
        return sum(self.counts.values())


#: kind of each protocol event class the client delivers.
_PROTOCOL_KINDS: dict[type, str] = {
    Trade: "trade", Fill: "fill", WalletActivity: "wallet_activity", Heartbeat: "heartbeat",
    SlowReader: "slow_reader", ErrorEvent: "error", AuthError: "error", UnknownMessage: "unknown",
}

#: Every kind ``client.on`` accepts (plus ``"*"`` for all).
EVENT_KINDS = frozenset(("book_updated", "book_invalid", "book_recovered", "book_state", "trade",
                         "fill", "wallet_activity", "heartbeat", "slow_reader", "error",
                         "subscription_failed", "unknown", "protocol_error", "connected",
                         "disconnected", "reconnecting", "events_dropped"))

#: Kinds a full ``events()`` stream may drop (with an :class:`EventsDropped` notice).
DROPPABLE_KINDS = frozenset(("book_updated", "heartbeat", "trade", "fill", "wallet_activity"))


def kind_of(event: object) -> str:
    """The kind of an event delivered by the client."""
    kind = getattr(type(event), "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    try:
        return _PROTOCOL_KINDS[type(event)]
    except KeyError:
        raise TypeError(f"not a client event: {type(event).__name__}") from None
