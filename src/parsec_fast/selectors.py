"""Market and wallet selectors: what a subscribe, unsubscribe or resync names.

A :class:`MarketSelector` is ``parsec_id`` *or* ``exchange`` + ``market_id``, with an optional
``outcome`` and ``depth`` (PROTOCOL.md §2). The defaults the protocol leaves to the server (outcome
``"Yes"`` for binary markets, the subscription depth) are filled in here, once, by
:meth:`MarketSelector.with_defaults`; :attr:`MarketSelector.key` is the identity of the book it
names (``parsec_fast.rules.book_key``: outcome compared case-insensitively).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Union

from .codes import ADDRESS_EXCHANGES, MAX_DEPTH
from .rules import DEFAULT_OUTCOME, BookKey, book_key, require_text

__all__ = ["MarketSelector", "AddressSelector", "MarketLike", "AddressLike"]

_MARKET_KEYS = frozenset(("parsec_id", "exchange", "market_id", "outcome", "depth"))


@dataclass(frozen=True, slots=True)
class MarketSelector:
    """One market subscription: ``parsec_id`` *or* ``exchange`` + ``market_id``.

    ``outcome`` is optional for binary markets (the server defaults to ``"Yes"``) and required
    for categorical ones; ``depth`` is levels per side, 1..100 (server default 50, clamped to
    the account tier). Construction validates every field and raises ``ValueError`` naming it.
    """

    parsec_id: str | None = None
    exchange: str | None = None
    market_id: str | None = None
    outcome: str | None = None
    depth: int | None = None

    def __post_init__(self) -> None:
        if self.parsec_id is not None:
            if self.exchange is not None or self.market_id is not None:
                raise ValueError("MarketSelector: give either parsec_id or exchange+market_id, "
                                 f"not both (parsec_id={self.parsec_id!r}, "
                                 f"exchange={self.exchange!r}, market_id={self.market_id!r})")
            require_text("MarketSelector", "parsec_id", self.parsec_id)
            exchange, colon, market_id = self.parsec_id.partition(":")
            if not colon or not exchange.strip() or not market_id.strip():
                raise ValueError("MarketSelector.parsec_id must look like '{exchange}:{market_id}' "
                                 f"(e.g. 'kalshi:KXBTC-26MAR10'), got {self.parsec_id!r}")
        else:
            if self.exchange is None and self.market_id is None:
                raise ValueError("MarketSelector: parsec_id or exchange+market_id is required")
            require_text("MarketSelector", "exchange", self.exchange)
            require_text("MarketSelector", "market_id", self.market_id)
        if self.outcome is not None:
            require_text("MarketSelector", "outcome", self.outcome)
        depth = self.depth
        if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                                  or not 1 <= depth <= MAX_DEPTH):
            raise ValueError(f"MarketSelector.depth must be an int in 1..{MAX_DEPTH}, got {depth!r}")

    @classmethod
    def coerce(cls, value: MarketLike) -> MarketSelector:
        """Return ``value`` as a MarketSelector.

        Accepts a MarketSelector (returned as is), a ``"{exchange}:{market_id}"`` string, or a
        mapping with some of the keys ``parsec_id``, ``exchange``, ``market_id``, ``outcome``,
        ``depth`` (any other key is refused, to catch typos). Raises ``ValueError``.
        """
        if isinstance(value, MarketSelector):
            return value
        if isinstance(value, str):
            return cls(parsec_id=value)
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in _MARKET_KEYS]
            if unknown:
                raise ValueError(f"market selector has unknown key(s) {unknown!r}; "
                                 f"allowed: {sorted(_MARKET_KEYS)}")
            return cls(**value)
        raise ValueError("market selector must be a MarketSelector, an 'exchange:market_id' "
                         f"string or a dict, got {type(value).__name__}")

    @property
    def canonical_id(self) -> str:
        """The market's parsec_id (``"{exchange}:{market_id}"``), whichever form was given."""
        if self.parsec_id is not None:
            return self.parsec_id
        return f"{self.exchange}:{self.market_id}"

    @property
    def outcome_or_default(self) -> str:
        """The outcome, or ``"Yes"`` (:data:`parsec_fast.rules.DEFAULT_OUTCOME`) when none."""
        return DEFAULT_OUTCOME if self.outcome is None else self.outcome

    @property
    def key(self) -> BookKey:
        """The identity of the book this selector names: ``(parsec_id, folded outcome)``."""
        return book_key(self.canonical_id, self.outcome)

    def with_defaults(self, depth: int | None = None) -> MarketSelector:
        """This selector as the client sends it: the outcome filled in (``"Yes"`` when none) and
        ``depth`` used when the selector has no depth of its own."""
        return replace(self, outcome=self.outcome_or_default,
                       depth=self.depth if self.depth is not None else depth)

    def without_depth(self) -> MarketSelector:
        """The same market outcome without a depth (``unsubscribe`` and ``resync`` carry none)."""
        return self if self.depth is None else replace(self, depth=None)

    def to_wire(self, include_depth: bool = True) -> dict[str, Any]:
        """The selector as a protocol object; ``None`` fields are left out."""
        out: dict[str, Any] = {}
        if self.parsec_id is not None:
            out["parsec_id"] = self.parsec_id
        else:
            out["exchange"] = self.exchange
            out["market_id"] = self.market_id
        if self.outcome is not None:
            out["outcome"] = self.outcome
        if include_depth and self.depth is not None:
            out["depth"] = self.depth
        return out


@dataclass(frozen=True, slots=True)
class AddressSelector:
    """One wallet subscription; ``exchange`` must be one of ``codes.ADDRESS_EXCHANGES``."""

    exchange: str
    address: str

    def __post_init__(self) -> None:
        if self.exchange not in ADDRESS_EXCHANGES:
            raise ValueError(f"AddressSelector.exchange must be one of {ADDRESS_EXCHANGES}, "
                             f"got {self.exchange!r}")
        require_text("AddressSelector", "address", self.address)

    @classmethod
    def coerce(cls, value: AddressLike) -> AddressSelector:
        """Return ``value`` as an AddressSelector: accepts an AddressSelector, a mapping with
        exactly the keys ``exchange`` and ``address``, or an ``(exchange, address)`` pair."""
        if isinstance(value, AddressSelector):
            return value
        if isinstance(value, Mapping):
            if set(value) != {"exchange", "address"}:
                raise ValueError("address selector dict must have exactly the keys 'exchange' "
                                 f"and 'address', got {sorted(map(str, value))}")
            return cls(value["exchange"], value["address"])
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1])
        raise ValueError("address selector must be an AddressSelector, a dict "
                         "{'exchange', 'address'} or an (exchange, address) pair, "
                         f"got {type(value).__name__}")

    def to_wire(self) -> dict[str, str]:
        """The selector as a protocol object."""
        return {"exchange": self.exchange, "address": self.address}


#: What the encoders accept where a market selector is expected.
MarketLike = Union[MarketSelector, str, Mapping[str, Any]]
#: What the encoders accept where an address selector is expected.
AddressLike = Union[AddressSelector, Mapping[str, Any], tuple[str, str]]
