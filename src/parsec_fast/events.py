"""The events a :class:`parsec_fast.Client` delivers: one typed union, discriminated by ``kind``.

Every event is a frozen, slotted dataclass with a ``kind`` class attribute. Callbacks registered
with ``client.on(kind, cb)`` and the iterator ``client.events()`` receive the same objects, all
members of :data:`Event`; type checkers narrow an :data:`Event` by comparing ``event.kind`` with a
literal, and ``client.on("trade", cb)`` types ``cb``'s argument as :class:`Trade`.

Client events are defined here; the server messages the client passes on (trades, fills, wallet
snapshots, heartbeats, ``slow_reader``, ``error``, ``auth_error``, unknown types) are the typed
messages of :mod:`parsec_fast.messages`, re-exported here.

======================= ====================================================================
kind                    event
======================= ====================================================================
``book_updated``        :class:`BookUpdated` — which book and its seq (read the live book)
``book_invalid``        :class:`BookInvalid` — with the reason; a resync is on its way
``book_recovered``      :class:`BookRecovered` — a snapshot made the book valid again
``book_state``          :class:`BookStateChanged` — server book/feed state, local stale/fresh
``trade``               :class:`Trade`
``fill``                :class:`Fill`
``wallet_activity``     :class:`WalletActivity`
``heartbeat``           :class:`Heartbeat`
``slow_reader``         :class:`SlowReader`
``error``               :class:`ErrorMessage` — a server ``error`` frame
``auth_error``          :class:`AuthError` — the credential was refused (the client stops)
``subscription_failed`` :class:`SubscriptionFailed` — the server refused one market
``unknown``             :class:`UnknownMessage` — a frame type this version does not know
``protocol_error``      :class:`ProtocolErrorEvent` — a malformed frame (its book is resynced)
``connected``           :class:`Connected`
``disconnected``        :class:`Disconnected` — with the typed cause
``reconnecting``        :class:`Reconnecting` — with the delay and the last error
``events_dropped``      :class:`EventsDropped` — only in ``client.events()`` streams
======================= ====================================================================
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Union, get_args

from .errors import ParsecConnectionError, ProtocolError
from .messages import (AuthError, ErrorMessage, Fill, Heartbeat, SlowReader, Trade,
                       UnknownMessage, WalletActivity)

__all__ = ["Event", "EventKind", "ClientEvent", "BookUpdated", "BookInvalid", "BookRecovered",
           "BookStateChanged", "Connected", "Disconnected", "Reconnecting", "SubscriptionFailed",
           "ProtocolErrorEvent", "EventsDropped", "Trade", "Fill", "WalletActivity", "Heartbeat",
           "SlowReader", "ErrorMessage", "AuthError", "UnknownMessage", "EVENT_KINDS",
           "DROPPABLE_KINDS", "new_book_updated"]


class ClientEvent:
    """Base class of the client-level events (the others are :mod:`parsec_fast.messages`)."""

    __slots__ = ()
    kind: ClassVar[str]


@dataclass(frozen=True, slots=True)
class BookUpdated(ClientEvent):
    """A book changed (one event per book per read batch: updates are coalesced).

    Carries no copy of the book: read ``client.book(parsec_id, outcome)``, which is always
    current. ``seq`` is the book's seq when the event was made. ``read_ns`` is
    ``time.monotonic_ns()`` when the bytes of the frames that changed it were read (the start of
    their read batch; 0 when unknown): ``time.monotonic_ns() - event.read_ns`` in a callback is
    the time since the data reached the process, the first part of a tick-to-trade.
    """

    kind: ClassVar[Literal["book_updated"]] = "book_updated"
    parsec_id: str
    outcome: str
    seq: int
    read_ns: int = 0


# The receive path's constructor of BookUpdated (one per book per read batch): a frozen
# dataclass's __init__ sets each field through object.__setattr__; writing the slots through
# their descriptors builds the same object in about half the time (~0.35 instead of ~0.7 µs).
_new_object = object.__new__
_SET_PARSEC_ID: Callable[[BookUpdated, str], None] = vars(BookUpdated)["parsec_id"].__set__
_SET_OUTCOME: Callable[[BookUpdated, str], None] = vars(BookUpdated)["outcome"].__set__
_SET_SEQ: Callable[[BookUpdated, int], None] = vars(BookUpdated)["seq"].__set__
_SET_READ_NS: Callable[[BookUpdated, int], None] = vars(BookUpdated)["read_ns"].__set__


def new_book_updated(parsec_id: str, outcome: str, seq: int, read_ns: int) -> BookUpdated:
    """``BookUpdated(parsec_id, outcome, seq, read_ns)``, built faster: the same frozen object
    (equal, hashed, compared and printed alike), for the client's receive path."""
    event = _new_object(BookUpdated)
    _SET_PARSEC_ID(event, parsec_id)
    _SET_OUTCOME(event, outcome)
    _SET_SEQ(event, seq)
    _SET_READ_NS(event, read_ns)
    return event


@dataclass(frozen=True, slots=True)
class BookInvalid(ClientEvent):
    """A book became invalid (``reason``: gap, resync_required, needs_refresh, rejected,
    seq_conflict, disconnected); do not trade on it until :class:`BookRecovered`."""

    kind: ClassVar[Literal["book_invalid"]] = "book_invalid"
    parsec_id: str
    outcome: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookRecovered(ClientEvent):
    """A snapshot made the book valid again (also sent for each book's first snapshot)."""

    kind: ClassVar[Literal["book_recovered"]] = "book_recovered"
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

    kind: ClassVar[Literal["book_state"]] = "book_state"
    parsec_id: str
    outcome: str
    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class Connected(ClientEvent):
    """Authenticated on a new connection (``attempt`` 0 for the first connection)."""

    kind: ClassVar[Literal["connected"]] = "connected"
    url: str
    customer_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Disconnected(ClientEvent):
    """The connection ended; every book is now invalid (reason ``"disconnected"``).

    ``error`` is the typed cause (e.g. :class:`~parsec_fast.errors.DeadConnectionError`,
    :class:`~parsec_fast.errors.ConnectionClosedError`), None when the client closed it.
    """

    kind: ClassVar[Literal["disconnected"]] = "disconnected"
    reason: str
    will_reconnect: bool
    error: ParsecConnectionError | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Reconnecting(ClientEvent):
    """The client waits ``delay`` seconds (exponential backoff with jitter), then connects;
    ``error`` is why the previous attempt or connection ended."""

    kind: ClassVar[Literal["reconnecting"]] = "reconnecting"
    attempt: int
    delay: float
    error: ParsecConnectionError | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SubscriptionFailed(ClientEvent):
    """The server refused a market subscription (e.g. 2002 not found, 3002 limit reached);
    the client no longer holds it."""

    kind: ClassVar[Literal["subscription_failed"]] = "subscription_failed"
    parsec_id: str
    outcome: str
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ProtocolErrorEvent(ClientEvent):
    """A frame was not a valid protocol message; the book it named (if any) is resynced."""

    kind: ClassVar[Literal["protocol_error"]] = "protocol_error"
    error: ProtocolError = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class EventsDropped(ClientEvent):
    """An ``events()`` stream was full and dropped some droppable events (book updates,
    heartbeats, trades, fills, wallet snapshots) since its previous notice.

    ``counts`` maps kind -> number dropped; ``books`` lists the (parsec_id, outcome) whose
    ``book_updated`` events were dropped (their books are current: read them).
    State events (invalid/recovered/state/connection/errors) are never dropped.
    """

    kind: ClassVar[Literal["events_dropped"]] = "events_dropped"
    counts: dict[str, int] = field(hash=False)
    books: frozenset[tuple[str, str]] = frozenset()

    @property
    def total(self) -> int:
        """Number of events dropped."""
        return sum(self.counts.values())


#: Every event a client delivers (narrow it with ``event.kind == "..."``).
Event = Union[BookUpdated, BookInvalid, BookRecovered, BookStateChanged, Trade, Fill,
              WalletActivity, Heartbeat, SlowReader, ErrorMessage, AuthError, SubscriptionFailed,
              UnknownMessage, ProtocolErrorEvent, Connected, Disconnected, Reconnecting,
              EventsDropped]

#: The ``kind`` of each member of :data:`Event`.
EventKind = Literal["book_updated", "book_invalid", "book_recovered", "book_state", "trade",
                    "fill", "wallet_activity", "heartbeat", "slow_reader", "error", "auth_error",
                    "subscription_failed", "unknown", "protocol_error", "connected",
                    "disconnected", "reconnecting", "events_dropped"]

#: Every kind ``client.on`` accepts (plus ``"*"`` for all).
EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))

#: Kinds a full ``events()`` stream may drop (with an :class:`EventsDropped` notice).
DROPPABLE_KINDS: frozenset[str] = frozenset(("book_updated", "heartbeat", "trade", "fill",
                                             "wallet_activity"))
