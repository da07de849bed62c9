"""Type stub of the compiled order book (src/_core/parsec_fast/_book.pyx).

``parsec_fast.Book`` has exactly the API of the pure-Python ``parsec_fast.reference.Book``; the
rules (price identity, validation, sequencing, atomicity) are in that module's docstring.
"""
import sys
from typing import Any, Literal, Sequence

# NumPy is optional at run time (``parsec_fast[numpy]``; ``bids_array`` raises ImportError
# without it). A stub is never executed: these imports are for type checkers only.
from numpy import float64
from numpy.typing import NDArray

from .rules import DeltaResult

# ``out`` of bids_into / asks_into: any buffer (array.array('d'), memoryview, ...) or a NumPy
# array, named as well because NumPy's stubs make an array a Buffer only on Python >= 3.12.
if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:
    from typing_extensions import Buffer

Side = Literal["bid", "ask"]

class Book:
    """One L2 order book for a (parsec_id, outcome), in contiguous C arrays, best level first."""

    def __init__(self, parsec_id: str, outcome: str, *, max_levels: int = 10_000) -> None:
        """TypeError for non-str ids; ValueError unless 1 <= max_levels <= sys.maxsize."""

    # -- identity ----------------------------------------------------------------------------
    @property
    def parsec_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def max_levels(self) -> int:
        """Most levels either side may hold."""

    # -- writes ------------------------------------------------------------------------------
    def apply_snapshot(
        self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int
    ) -> None:
        """Replace the whole book with ``bids`` (strictly descending) and ``asks`` (strictly
        ascending), each a list/tuple of ``[price, size]``; ``seq`` becomes the baseline.
        Raises BookDataError (levels unchanged, book invalid)."""
    def apply_delta(self, changes: Sequence[dict[str, Any]], seq: int) -> DeltaResult:
        """Apply one delta's ``{"side", "price", "size"}`` changes in order if ``seq`` is the next
        one: APPLIED, DUPLICATE, GAP or NO_SNAPSHOT. Raises BookDataError on bad data (levels
        unchanged, book invalid)."""
    def set_level(self, side: Side, price: float, size: float) -> None:
        """Set one level directly (``size`` 0 removes it). No sequence check; a bad call raises
        BookDataError and changes nothing (not even validity or counters)."""
    def invalidate(self) -> None:
        """Mark the book invalid: deltas return GAP until the next snapshot; levels are kept."""

    # -- reads -------------------------------------------------------------------------------
    @property
    def seq(self) -> int | None:
        """Last applied server_seq, or None before the first snapshot."""
    @property
    def is_valid(self) -> bool:
        """True once a snapshot was applied and no gap, rejection or invalidate() since."""
    @property
    def best_bid(self) -> tuple[float, float] | None:
        """(price, size) of the best bid, or None."""
    @property
    def best_ask(self) -> tuple[float, float] | None:
        """(price, size) of the best ask, or None."""
    @property
    def best_bid_price(self) -> float:
        """Best bid price, NaN when there are no bids (no tuple is created)."""
    @property
    def best_bid_size(self) -> float:
        """Best bid size, NaN when there are no bids."""
    @property
    def best_ask_price(self) -> float:
        """Best ask price, NaN when there are no asks."""
    @property
    def best_ask_size(self) -> float:
        """Best ask size, NaN when there are no asks."""
    @property
    def mid(self) -> float | None:
        """(best bid + best ask) / 2, or None when a side is empty."""
    @property
    def spread(self) -> float | None:
        """best ask - best bid, or None when a side is empty (<= 0 when crossed)."""
    @property
    def crossed(self) -> bool:
        """True when both sides are non-empty and best bid >= best ask."""
    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` bids (all when None) as (price, size), best first."""
    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` asks (all when None) as (price, size), best first."""
    def bid_size(self, price: float) -> float:
        """Size at ``price`` on the bid side, 0.0 when absent (BookDataError for a bad price)."""
    def ask_size(self, price: float) -> float:
        """Size at ``price`` on the ask side, 0.0 when absent (BookDataError for a bad price)."""
    def level_count(self, side: Side) -> int:
        """Number of levels on ``side``."""
    def bids_array(self, n: int | None = None) -> NDArray[float64]:
        """The best ``n`` bids as a float64 NumPy array of shape (k, 2), k = min(n, levels)
        (ImportError naming the fix when NumPy is not installed)."""
    def asks_array(self, n: int | None = None) -> NDArray[float64]:
        """The best ``n`` asks as a float64 NumPy array of shape (k, 2) (needs NumPy)."""
    def bids_into(self, out: Buffer | NDArray[float64]) -> int:
        """Write the best bids as price, size pairs into ``out``, a writable C-contiguous float64
        buffer; returns the number of levels written (min(levels, len(out) // 2)). ValueError
        for a read-only or non-float64 buffer."""
    def asks_into(self, out: Buffer | NDArray[float64]) -> int:
        """As ``bids_into``, for the asks."""
    @property
    def stats(self) -> dict[str, int]:
        """Counters since construction; keys are ``parsec_fast.rules.STAT_NAMES``."""
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: parsec_id, outcome, seq, is_valid, bids and asks as [price, size]."""
