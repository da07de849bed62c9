"""Typed, immutable messages decoded from Parsec server frames (see ../shared/PROTOCOL.md §3).

Every message is a frozen dataclass with ``slots=True`` deriving from :class:`Message`, and has a
``kind`` (a class attribute): the event kind under which the client delivers it (``trade``,
``fill``, ``wallet_activity``, ``heartbeat``, ``slow_reader``, ``error``, ``auth_error``,
``unknown``; see :mod:`parsec_fast.events`), or, for the messages the client consumes itself,
a name of its own (``auth_ok``, ``resync_required``, ``book_snapshot``, ``book_delta``).
Frames become messages with :func:`parsec_fast.protocol.decode` /
:func:`parsec_fast.protocol.decode_message`.

:class:`BookSnapshot` and :class:`BookDelta` are typed *views* of the hot book frames, for
users who ask for them; the client feeds those frames to the book core without building them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .codes import ErrorCode

__all__ = [
    "Message", "AuthOk", "AuthError", "Trade", "Fill", "WalletActivity", "Heartbeat",
    "ResyncRequired", "SlowReader", "ErrorMessage", "UnknownMessage", "BookSnapshot", "BookDelta",
    "Level", "Change",
]

#: One book level: ``(price, size)``.
Level = tuple[float, float]
#: One delta change: ``(side, price, size)`` with side ``"bid"`` or ``"ask"``; size 0 removes.
Change = tuple[str, float, float]


class Message:
    """Base class of every decoded server frame."""

    __slots__ = ()
    kind: ClassVar[str]


@dataclass(frozen=True, slots=True)
class AuthOk(Message):
    """``auth_ok``: the connection is authenticated."""

    kind: ClassVar[Literal["auth_ok"]] = "auth_ok"
    customer_id: str


@dataclass(frozen=True, slots=True)
class AuthError(Message):
    """``auth_error``: the key or token was refused (fatal: never reconnect with it).

    ``code`` is an :class:`~parsec_fast.codes.ErrorCode` when the code is a known one, else
    the plain int (both compare equal to the int).
    """

    kind: ClassVar[Literal["auth_error"]] = "auth_error"
    code: ErrorCode | int
    message: str


@dataclass(frozen=True, slots=True)
class Trade(Message):
    """``activity`` with ``kind == "trade"``: a public trade on a subscribed market."""

    kind: ClassVar[Literal["trade"]] = "trade"
    parsec_id: str
    exchange: str
    outcome: str
    token_id: str
    market_id: str
    price: float
    size: float
    server_seq: int
    trade_id: str | None
    side: str | None
    aggressor_side: str | None
    feed_state: str | None
    exchange_ts_ms: int | None
    ingest_ts_ms: int | None
    source_channel: str | None


@dataclass(frozen=True, slots=True)
class Fill(Message):
    """``activity`` with ``kind == "fill"``: one of the account's own orders was filled."""

    kind: ClassVar[Literal["fill"]] = "fill"
    parsec_id: str
    exchange: str
    outcome: str
    token_id: str
    market_id: str
    price: float
    size: float
    server_seq: int
    fill_id: str | None
    order_id: str | None
    side: str | None
    liquidity_role: str | None
    feed_state: str | None
    exchange_ts_ms: int | None
    ingest_ts_ms: int | None
    source_channel: str | None


@dataclass(frozen=True, slots=True)
class WalletActivity(Message):
    """``wallet_activity``: a full snapshot of a watched wallet.

    ``data``'s inner schema is undocumented; it is passed through as parsed (not copied, so
    do not mutate it if the event is shared).
    """

    kind: ClassVar[Literal["wallet_activity"]] = "wallet_activity"
    exchange: str
    address: str
    data: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """``heartbeat``: the connection is alive; ``ts_ms`` is the server's clock."""

    kind: ClassVar[Literal["heartbeat"]] = "heartbeat"
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ResyncRequired(Message):
    """``resync_required``: the server dropped data for this subscription; its book is corrupt."""

    kind: ClassVar[Literal["resync_required"]] = "resync_required"
    parsec_id: str
    outcome: str | None


@dataclass(frozen=True, slots=True)
class SlowReader(Message):
    """``slow_reader``: the client reads too slowly and may miss updates."""

    kind: ClassVar[Literal["slow_reader"]] = "slow_reader"
    parsec_id: str | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class ErrorMessage(Message):
    """``error``: a non-fatal error; ``parsec_id`` is set only for market-scoped errors.

    ``code`` is an :class:`~parsec_fast.codes.ErrorCode` when known, else the plain int.
    """

    kind: ClassVar[Literal["error"]] = "error"
    code: ErrorCode | int
    message: str
    parsec_id: str | None


@dataclass(frozen=True, slots=True)
class UnknownMessage(Message):
    """A frame whose ``type`` (or ``activity`` kind) this version does not know, passed through
    as the parsed object so newer server features never crash an older client."""

    kind: ClassVar[Literal["unknown"]] = "unknown"
    type: str
    raw: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class BookSnapshot(Message):
    """Typed view of an ``orderbook`` snapshot frame.

    ``bids``/``asks`` are given in frame order (not re-sorted or checked: the book core judges
    the data). Metadata the frame omits or sends as ``null`` is ``None``.
    """

    kind: ClassVar[Literal["book_snapshot"]] = "book_snapshot"
    parsec_id: str
    exchange: str
    outcome: str
    token_id: str
    market_id: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    server_seq: int
    book_state: str | None
    feed_state: str | None
    stale_after_ms: int | None
    tick_size: float | None
    min_order_size: float | None
    title: str | None
    exchange_ts_ms: int | None
    ingest_ts_ms: int | None


@dataclass(frozen=True, slots=True)
class BookDelta(Message):
    """Typed view of an ``orderbook_delta`` frame; ``changes`` apply in order."""

    kind: ClassVar[Literal["book_delta"]] = "book_delta"
    parsec_id: str
    exchange: str
    outcome: str
    token_id: str
    market_id: str
    changes: tuple[Change, ...]
    server_seq: int
    book_state: str | None
    feed_state: str | None
    stale_after_ms: int | None
    exchange_ts_ms: int | None
    ingest_ts_ms: int | None
