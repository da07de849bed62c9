"""The pure-Python reference book: the specification of ``parsec_fast.Book``, written to be read.

``parsec_fast.reference.Book`` and the compiled ``parsec_fast.Book`` have the same constructor,
methods, properties, return values and exceptions; either can be imported in place of the other.
The property tests (``tests/test_book_equivalence.py``) drive both with generated operation
sequences and require identical results after every step.

This implementation favours obviousness over speed: a dict of levels per side keyed by integer
nano-prices plus a sorted list of keys (``bisect``). Use it to check the compiled book, to debug,
or where a C extension cannot be installed; it is ~30-60x slower per delta.

The rules both books follow (validation, price identity, sequencing, atomicity) are written once,
in :mod:`parsec_fast.rules`, and this book calls its validators directly.
"""
from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import rules
from .errors import BookDataError
from .rules import PRICE_SCALE, STAT_NAMES, DeltaResult, Side

if TYPE_CHECKING:
    from numpy import float64
    from numpy.typing import NDArray

    if sys.version_info >= (3, 12):
        from collections.abc import Buffer
    else:
        from typing_extensions import Buffer

__all__ = ["Book"]

_NAN = float("nan")


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

    See :mod:`parsec_fast.rules` for the rules; the compiled ``parsec_fast.Book`` follows them
    exactly.
    """

    __slots__ = ("_parsec_id", "_outcome", "_max_levels", "_sides", "_seq", "_valid", "_stats")

    def __init__(self, parsec_id: str, outcome: str, *, max_levels: int = 10_000) -> None:
        self._parsec_id, self._outcome, self._max_levels = rules.book_identity(
            parsec_id, outcome, max_levels)
        self._sides = (_Side(True), _Side(False))
        self._seq: int | None = None
        self._valid = False
        self._stats = dict.fromkeys(STAT_NAMES, 0)

    # -- identity ---------------------------------------------------------------------------
    @property
    def parsec_id(self) -> str:
        """The market's ``"{exchange}:{market_id}"`` id."""
        return self._parsec_id

    @property
    def outcome(self) -> str:
        """The outcome this book is for (as given to the constructor)."""
        return self._outcome

    @property
    def max_levels(self) -> int:
        """Most levels either side may hold."""
        return self._max_levels

    # -- writes -----------------------------------------------------------------------------
    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]],
                       seq: int) -> None:
        """Replace the whole book with ``bids`` (best first: descending) and ``asks`` (ascending);
        ``seq`` becomes the baseline. Raises BookDataError (book unchanged but invalid)."""
        try:
            seq_value = rules.seq(seq)
            parsed = [rules.snapshot_side(bids, "bids", True, self._max_levels),
                      rules.snapshot_side(asks, "asks", False, self._max_levels)]
        except BookDataError:
            self._reject()
            raise
        for side, levels in zip(self._sides, parsed):
            side.replace(levels)
        self._seq = seq_value
        self._valid = True
        self._stats["snapshots"] += 1

    def apply_delta(self, changes: Sequence[Mapping[str, object]], seq: int) -> DeltaResult:
        """Apply one ``orderbook_delta``'s ``changes`` (in order) if ``seq`` is the next one.

        Returns a DeltaResult; raises BookDataError on bad data (book unchanged but invalid)."""
        try:
            seq_value = rules.seq(seq)
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
            parsed = rules.changes(changes)
            self._apply_parsed(parsed)
        except BookDataError:
            self._reject()
            raise
        self._seq = seq_value
        self._stats["applied"] += 1
        return DeltaResult.APPLIED

    def set_level(self, side: Side, price: float, size: float) -> None:
        """Set one level directly (``size`` 0 removes it). No sequence check; a bad call raises
        BookDataError and leaves the book, its validity and its counters unchanged."""
        index = rules.side_index(side, "side")
        key = rules.price_key(price, "price")
        size_value = rules.size(size, "size")
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
        """(price, size) of the best bid, or None when there are no bids."""
        return self._best(0)

    @property
    def best_ask(self) -> tuple[float, float] | None:
        """(price, size) of the best ask, or None when there are no asks."""
        return self._best(1)

    @property
    def best_bid_price(self) -> float:
        """Best bid price, NaN when there are no bids (no tuple is created)."""
        return self._best_field(0, True)

    @property
    def best_bid_size(self) -> float:
        """Best bid size, NaN when there are no bids."""
        return self._best_field(0, False)

    @property
    def best_ask_price(self) -> float:
        """Best ask price, NaN when there are no asks."""
        return self._best_field(1, True)

    @property
    def best_ask_size(self) -> float:
        """Best ask size, NaN when there are no asks."""
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
        return self._sides[0].levels(rules.level_count(n))

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` asks (all when None) as (price, size), best first."""
        return self._sides[1].levels(rules.level_count(n))

    def bid_size(self, price: float) -> float:
        """Size at ``price`` on the bid side, 0.0 when absent (BookDataError for a bad price)."""
        return self._sides[0].sizes.get(rules.price_key(price, "price"), 0.0)

    def ask_size(self, price: float) -> float:
        """Size at ``price`` on the ask side, 0.0 when absent (BookDataError for a bad price)."""
        return self._sides[1].sizes.get(rules.price_key(price, "price"), 0.0)

    def level_count(self, side: Side) -> int:
        """Number of levels on ``side`` ("bid" or "ask")."""
        return len(self._sides[rules.side_index(side, "side")].order)

    def bids_array(self, n: int | None = None) -> NDArray[float64]:
        """The best ``n`` bids as a float64 NumPy array of shape (k, 2), k = min(n, levels)
        (ImportError naming the fix when NumPy is not installed)."""
        return self._array(0, n, "bids_array")

    def asks_array(self, n: int | None = None) -> NDArray[float64]:
        """The best ``n`` asks as a float64 NumPy array of shape (k, 2)."""
        return self._array(1, n, "asks_array")

    def bids_into(self, out: Buffer | NDArray[float64]) -> int:
        """Write the best bids as price, size pairs into ``out``, a writable C-contiguous float64
        buffer (array.array('d'), NumPy array, ...); returns the number of levels written
        (min(levels, len(out) // 2))."""
        return self._into(0, out)

    def asks_into(self, out: Buffer | NDArray[float64]) -> int:
        """As :meth:`bids_into`, for the asks."""
        return self._into(1, out)

    @property
    def stats(self) -> dict[str, int]:
        """Counters since construction; keys are ``parsec_fast.rules.STAT_NAMES``."""
        return dict(self._stats)

    def to_dict(self) -> dict[str, object]:
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

    def _array(self, index: int, n: int | None, method: str) -> NDArray[float64]:
        np = rules.import_numpy(method)
        levels = self._sides[index].levels(rules.level_count(n))
        return np.array(levels, dtype=np.float64).reshape(len(levels), 2)

    def _into(self, index: int, out: Buffer | NDArray[float64]) -> int:
        view = rules.float64_buffer(out)
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
