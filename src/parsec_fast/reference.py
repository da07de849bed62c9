"""The pure-Python reference book: the specification of ``parsec_fast.Book``, written to be read.

``parsec_fast.reference.Book`` and the compiled ``parsec_fast.Book`` have the same constructor,
methods, properties, return values and exceptions; either can be imported in place of the other.
The property tests (``tests/test_book_equivalence.py``) drive both with generated operation
sequences and require identical results after every step.

This implementation favours obviousness over speed: a dict of levels per side keyed by integer
nano-prices plus a sorted list of keys (``bisect``). Use it to check the compiled book, to debug,
or where a C extension cannot be installed; it is ~30-60x slower per delta.

Rules both books follow
-----------------------
* A level's identity is ``round(price * 1e9)`` (nano-units, ties to even); reported prices are
  ``key / 1e9``, the exact double of any price on a decimal tick grid.
* Prices must be finite, ``> 0``, ``<= MAX_PRICE`` (1e9) and not round to zero nano-units; sizes
  must be finite and ``>= 0``. A size of 0 removes a level; removing an absent level is a no-op.
  Numbers are ``int`` or ``float`` (``bool`` is refused); an ``int`` is converted with ``float()``.
* Sequence (``apply_delta``): no snapshot yet -> ``NO_SNAPSHOT``; book invalid -> ``GAP``;
  ``seq <= last`` -> ``DUPLICATE``; ``seq > last + 1`` -> ``GAP`` and the book becomes invalid
  until the next snapshot; ``seq == last + 1`` -> the changes are validated and applied in order.
  Only a delta that would be applied is validated, so a replayed duplicate is dropped unread.
* Bad data raises ``BookDataError`` naming the field and the value; the levels are exactly as
  before, the book becomes invalid (its stream lost an update) and ``stats["rejected"]`` counts
  it. Validation runs over every change (side, then price, then size, change after change)
  before the first one is applied; only the ``max_levels`` overflow is found while applying, and
  then the changes already applied are rolled back.
* A snapshot replaces the whole book and its seq becomes the baseline whatever its value. Bids
  must be strictly descending and asks strictly ascending by key (a repeated price is an error);
  zero-size levels are accepted and not stored; a side may not list more than ``max_levels``.
* The constructor takes ``str`` ids (``TypeError`` otherwise; a ``str`` subclass such as a
  ``StrEnum`` member is stored as its plain ``str`` value) and an integer ``max_levels`` in
  ``[1, sys.maxsize]`` (``ValueError`` otherwise). ``n`` of ``bids(n)``/``asks(n)`` is ``None`` or
  an integer ``>= 0`` (any size; larger than the side means all of it).
* ``set_level`` validates like a delta change but does not touch seq, validity or counters, and
  a bad ``set_level`` call does not invalidate the book (the caller holds the data and the error).
"""
from __future__ import annotations

import math
import operator
import sys
from bisect import bisect_left
from typing import Any, Sequence

from .book_api import MAX_PRICE, PRICE_SCALE, STAT_NAMES, DeltaResult
from .errors import BookDataError

__all__ = ["Book"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_NAN = float("nan")
# Buffer format strings of a native float64 ('<d' is NumPy's spelling on little-endian machines).
_FLOAT64_FORMATS = ("d", "@d", "=d", "<d" if sys.byteorder == "little" else ">d")


def _type_name(value: object) -> str:
    return type(value).__name__


def _number(value: object, field: str) -> float:
    """Convert a JSON number (int or float, never bool) to a float, or raise BookDataError."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise BookDataError(f"{field}: number out of range, got {value!r}") from None
    raise BookDataError(f"{field}: expected a number, got {_type_name(value)} {value!r}")


def _price_key(value: object, field: str) -> int:
    """Validate a price and return its nano-unit key."""
    price = _number(value, field)
    if not math.isfinite(price):
        raise BookDataError(f"{field}: price must be finite, got {price!r}")
    if price <= 0.0:
        raise BookDataError(f"{field}: price must be > 0, got {price!r}")
    if price > MAX_PRICE:
        raise BookDataError(f"{field}: price must be <= {MAX_PRICE:g}, got {price!r}")
    key = round(price * PRICE_SCALE)
    if key == 0:
        raise BookDataError(f"{field}: price rounds to zero nano-units, got {price!r}")
    return key


def _size(value: object, field: str) -> float:
    size = _number(value, field)
    if not math.isfinite(size):
        raise BookDataError(f"{field}: size must be finite, got {size!r}")
    if size < 0.0:
        raise BookDataError(f"{field}: size must be >= 0, got {size!r}")
    return size


def _side_index(value: object, field: str) -> int:
    """0 for bids, 1 for asks."""
    if isinstance(value, str):
        if value == "bid":
            return 0
        if value == "ask":
            return 1
    raise BookDataError(f"{field}: expected 'bid' or 'ask', got {value!r}")


def _seq(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT64_MIN <= value <= _INT64_MAX:
            return int(value)
        raise BookDataError(f"seq: out of the 64-bit range, got {value!r}")
    raise BookDataError(f"seq: expected an integer, got {_type_name(value)} {value!r}")


def _float64_buffer(out: object) -> memoryview:
    """``out`` of bids_into/asks_into as a memoryview, or ValueError unless it is a writable,
    C-contiguous float64 buffer (TypeError when it is not a buffer at all)."""
    view = memoryview(out)
    if view.readonly:
        raise ValueError("out: buffer must be writable")
    if view.format not in _FLOAT64_FORMATS or not view.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous float64 buffer, got format {view.format!r}")
    return view


def _count(n: object) -> int | None:
    if n is None:
        return None
    count = operator.index(n)
    if count < 0:
        raise ValueError(f"n: must be >= 0 or None, got {count}")
    return count


def _parse_snapshot_side(levels: object, name: str, is_bid: bool, max_levels: int) -> list[tuple[int, float]]:
    if not isinstance(levels, (list, tuple)):
        raise BookDataError(f"{name}: expected a list of [price, size], got {_type_name(levels)}")
    if len(levels) > max_levels:
        raise BookDataError(f"{name}: {len(levels)} levels exceed max_levels={max_levels}")
    parsed: list[tuple[int, float]] = []
    previous: int | None = None
    for i, level in enumerate(levels):
        field = f"{name}[{i}]"
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise BookDataError(f"{field}: expected [price, size], got {level!r}")
        key = _price_key(level[0], f"{field}.price")
        size = _size(level[1], f"{field}.size")
        if previous is not None and (key >= previous if is_bid else key <= previous):
            order = "descending" if is_bid else "ascending"
            raise BookDataError(
                f"{field}.price: {name} must be strictly {order}, got {key / PRICE_SCALE!r} "
                f"after {previous / PRICE_SCALE!r}")
        previous = key
        if size != 0.0:
            parsed.append((key, size))
    return parsed

def _parse_changes(changes: object) -> list[tuple[int, int, float]]:
    if not isinstance(changes, (list, tuple)):
        raise BookDataError(f"changes: expected a list, got {_type_name(changes)}")
    parsed = []
    for i, change in enumerate(changes):
        field = f"changes[{i}]"
        if not isinstance(change, dict):
            raise BookDataError(f"{field}: expected an object, got {_type_name(change)}")
        for name in ("side", "price", "size"):
            if name not in change:
                raise BookDataError(f"{field}: missing {name!r}")
        index = _side_index(change["side"], f"{field}.side")
        key = _price_key(change["price"], f"{field}.price")
        size = _size(change["size"], f"{field}.size")
        parsed.append((index, key, size))
    return parsed


class _Side:
    """One side of the book: sizes by key, and the keys sorted best first."""

    __slots__ = ("sizes", "order", "is_bid")

    def __init__(self, is_bid: bool) -> None:
        self.sizes: dict[int, float] = {}
        # Keys sorted ascending by "rank": -key for bids, key for asks, so index 0 is the best.
        self.order: list[int] = []
        self.is_bid = is_bid

    def rank(self, key: int) -> int:
        return -key if self.is_bid else key

    def set(self, key: int, size: float) -> None:
        if size == 0.0:
            if key in self.sizes:
                del self.sizes[key]
                self.order.pop(bisect_left(self.order, self.rank(key)))
        else:
            if key not in self.sizes:
                rank = self.rank(key)
                self.order.insert(bisect_left(self.order, rank), rank)
            self.sizes[key] = size

    def key_at(self, index: int) -> int:
        rank = self.order[index]
        return -rank if self.is_bid else rank

    def levels(self, n: int | None) -> list[tuple[float, float]]:
        ranks = self.order if n is None else self.order[:n]
        sign = -1 if self.is_bid else 1
        return [((sign * r) / PRICE_SCALE, self.sizes[sign * r]) for r in ranks]

    def replace(self, keys_sizes: list[tuple[int, float]]) -> None:
        self.sizes = {k: s for k, s in keys_sizes}
        self.order = [self.rank(k) for k, _ in keys_sizes]


class Book:
    """One L2 order book for a (parsec_id, outcome): the pure-Python reference implementation.

    See the module docstring for the rules; the compiled ``parsec_fast.Book`` follows them
    exactly.
    """

    __slots__ = ("_parsec_id", "_outcome", "_max_levels", "_sides", "_seq", "_valid", "_stats")

    def __init__(self, parsec_id: str, outcome: str, *, max_levels: int = 10_000) -> None:
        if not isinstance(parsec_id, str):
            raise TypeError(f"parsec_id: expected str, got {_type_name(parsec_id)}")
        if not isinstance(outcome, str):
            raise TypeError(f"outcome: expected str, got {_type_name(outcome)}")
        max_levels = operator.index(max_levels)
        if max_levels < 1:
            raise ValueError(f"max_levels: must be >= 1, got {max_levels}")
        if max_levels > sys.maxsize:
            raise ValueError(f"max_levels: must be <= {sys.maxsize}, got {max_levels}")
        # str subclasses (e.g. a StrEnum outcome) are stored as their exact str value.
        self._parsec_id = str.__str__(parsec_id)
        self._outcome = str.__str__(outcome)
        self._max_levels = max_levels
        self._sides = (_Side(True), _Side(False))
        self._seq: int | None = None
        self._valid = False
        self._stats = dict.fromkeys(STAT_NAMES, 0)

    # -- identity ---------------------------------------------------------------------------
    @property
    def parsec_id(self) -> str:
        return self._parsec_id

    @property
    def outcome(self) -> str:
        return self._outcome

    @property
    def max_levels(self) -> int:
        return self._max_levels

    # -- writes -----------------------------------------------------------------------------
    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int) -> None:
        """Replace the whole book with ``bids`` (best first: descending) and ``asks`` (ascending);
        ``seq`` becomes the baseline. Raises BookDataError (book unchanged but invalid)."""
        try:
            seq_value = _seq(seq)
            parsed = [_parse_snapshot_side(bids, "bids", True, self._max_levels),
                      _parse_snapshot_side(asks, "asks", False, self._max_levels)]
        except BookDataError:
            self._reject()
            raise
        for side, levels in zip(self._sides, parsed):
            side.replace(levels)
        self._seq = seq_value
        self._valid = True
        self._stats["snapshots"] += 1

    def apply_delta(self, changes: Sequence[dict[str, Any]], seq: int) -> DeltaResult:
        """Apply one ``orderbook_delta``'s ``changes`` (in order) if ``seq`` is the next one.

        Returns a DeltaResult; raises BookDataError on bad data (book unchanged but invalid)."""
        try:
            seq_value = _seq(seq)
        except BookDataError:
            self._reject()
            raise
        if self._seq is None:
            self._stats["no_snapshot"] += 1
            return DeltaResult.NO_SNAPSHOT
        if not self._valid:
            self._stats["dropped"] += 1
            return DeltaResult.GAP
        if seq_value <= self._seq:
            self._stats["duplicates"] += 1
            return DeltaResult.DUPLICATE
        if seq_value != self._seq + 1:
            self._valid = False
            self._stats["gaps"] += 1
            return DeltaResult.GAP
        try:
            parsed = _parse_changes(changes)
            self._apply_parsed(parsed)
        except BookDataError:
            self._reject()
            raise
        self._seq = seq_value
        self._stats["applied"] += 1
        return DeltaResult.APPLIED

    def set_level(self, side: str, price: float, size: float) -> None:
        """Set one level directly (``size`` 0 removes it). No sequence check; a bad call raises
        BookDataError and leaves the book, its validity and its counters unchanged."""
        index = _side_index(side, "side")
        key = _price_key(price, "price")
        size_value = _size(size, "size")
        self._apply_parsed([(index, key, size_value)], in_delta=False)

    def invalidate(self) -> None:
        """Mark the book invalid (e.g. on ``resync_required``): deltas return GAP until the next
        snapshot. Levels are kept for inspection."""
        self._valid = False

    # -- reads ------------------------------------------------------------------------------
    @property
    def seq(self) -> int | None:
        """Last applied server_seq, or None before the first snapshot."""
        return self._seq

    @property
    def is_valid(self) -> bool:
        """True once a snapshot was applied and no gap, rejection or invalidate() since."""
        return self._valid

    @property
    def best_bid(self) -> tuple[float, float] | None:
        return self._best(0)

    @property
    def best_ask(self) -> tuple[float, float] | None:
        return self._best(1)

    @property
    def best_bid_price(self) -> float:
        """Best bid price, NaN when there are no bids (no tuple is created)."""
        return self._best_field(0, True)

    @property
    def best_bid_size(self) -> float:
        return self._best_field(0, False)

    @property
    def best_ask_price(self) -> float:
        return self._best_field(1, True)

    @property
    def best_ask_size(self) -> float:
        return self._best_field(1, False)

    @property
    def mid(self) -> float | None:
        """(best bid + best ask) / 2, or None when a side is empty."""
        bid, ask = self._sides
        if not bid.order or not ask.order:
            return None
        return (bid.key_at(0) / PRICE_SCALE + ask.key_at(0) / PRICE_SCALE) / 2.0

    @property
    def spread(self) -> float | None:
        """best ask - best bid, or None when a side is empty (negative when crossed)."""
        bid, ask = self._sides
        if not bid.order or not ask.order:
            return None
        return ask.key_at(0) / PRICE_SCALE - bid.key_at(0) / PRICE_SCALE

    @property
    def crossed(self) -> bool:
        """True when both sides are non-empty and best bid >= best ask."""
        bid, ask = self._sides
        return bool(bid.order and ask.order and bid.key_at(0) >= ask.key_at(0))

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` bids (all when None) as (price, size), best first."""
        return self._sides[0].levels(_count(n))

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` asks (all when None) as (price, size), best first."""
        return self._sides[1].levels(_count(n))

    def bid_size(self, price: float) -> float:
        """Size at ``price`` on the bid side, 0.0 when absent (BookDataError for a bad price)."""
        return self._sides[0].sizes.get(_price_key(price, "price"), 0.0)

    def ask_size(self, price: float) -> float:
        return self._sides[1].sizes.get(_price_key(price, "price"), 0.0)

    def level_count(self, side: str) -> int:
        """Number of levels on ``side`` ("bid" or "ask")."""
        return len(self._sides[_side_index(side, "side")].order)

    def bids_array(self, n: int | None = None) -> Any:
        """The best ``n`` bids as a float64 NumPy array of shape (k, 2), k = min(n, levels)."""
        return self._array(0, n)

    def asks_array(self, n: int | None = None) -> Any:
        return self._array(1, n)

    def bids_into(self, out: Any) -> int:
        """Write the best bids as price, size pairs into ``out``, a writable C-contiguous float64
        buffer (array.array('d'), NumPy array, ...); returns the number of levels written
        (min(levels, len(out) // 2))."""
        return self._into(0, out)

    def asks_into(self, out: Any) -> int:
        return self._into(1, out)

    @property
    def stats(self) -> dict[str, int]:
        """Counters since construction; keys are ``parsec_fast.book_api.STAT_NAMES``."""
        return dict(self._stats)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: parsec_id, outcome, seq, is_valid, bids and asks as [price, size]."""
        return {
            "parsec_id": self._parsec_id,
            "outcome": self._outcome,
            "seq": self._seq,
            "is_valid": self._valid,
            "bids": [[p, s] for p, s in self.bids()],
            "asks": [[p, s] for p, s in self.asks()],
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self._parsec_id!r}, {self._outcome!r}, seq={self._seq}, "
                f"valid={self._valid}, bids={len(self._sides[0].order)}, asks={len(self._sides[1].order)})")

    # -- internals --------------------------------------------------------------------------
    def _reject(self) -> None:
        self._valid = False
        self._stats["rejected"] += 1

    def _best(self, index: int) -> tuple[float, float] | None:
        side = self._sides[index]
        if not side.order:
            return None
        key = side.key_at(0)
        return (key / PRICE_SCALE, side.sizes[key])

    def _best_field(self, index: int, price: bool) -> float:
        side = self._sides[index]
        if not side.order:
            return _NAN
        key = side.key_at(0)
        return key / PRICE_SCALE if price else side.sizes[key]

    def _array(self, index: int, n: int | None) -> Any:
        import numpy as np  # optional dependency, only for this method

        levels = self._sides[index].levels(_count(n))
        return np.array(levels, dtype=np.float64).reshape(len(levels), 2)

    def _into(self, index: int, out: Any) -> int:
        view = _float64_buffer(out)
        if view.nbytes < 16:
            return 0  # (also: memoryview cannot cast a view with a zero in its shape)
        flat = view.cast("B").cast("d")
        levels = self._sides[index].levels(len(flat) // 2)
        for i, (price, size) in enumerate(levels):
            flat[2 * i] = price
            flat[2 * i + 1] = size
        return len(levels)

    def _apply_parsed(self, parsed: list[tuple[int, int, float]], in_delta: bool = True) -> None:
        """Apply validated changes in order; on max_levels overflow roll back and raise."""
        undo: list[tuple[int, int, float]] = []
        for i, (index, key, size) in enumerate(parsed):
            side = self._sides[index]
            old = side.sizes.get(key, 0.0)
            if size != 0.0 and old == 0.0 and len(side.order) >= self._max_levels:
                for u_index, u_key, u_old in reversed(undo):
                    self._sides[u_index].set(u_key, u_old)
                name = "bid" if index == 0 else "ask"
                field = f"changes[{i}]" if in_delta else "price"
                raise BookDataError(
                    f"{field}: a new {name} level would exceed max_levels={self._max_levels}")
            undo.append((index, key, old))
            side.set(key, size)
