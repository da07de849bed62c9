"""The rule book: the data rules that both books, the protocol layer and the client share.

Written once and imported by the compiled core (``_book.pyx``, ``_feed.pyx``), the pure-Python
reference book, the selectors and the client, so that a price, a size, a sequence number or an
outcome means the same thing everywhere. The compiled book checks the same rules in C on its fast
paths; on its error path it calls the validators here, so the messages of both books are
identical by construction.

The rules
---------
* A level's identity is ``round(price * PRICE_SCALE)`` (nano-units, ties to even); reported
  prices are ``key / PRICE_SCALE``, the exact double of any decimal tick-grid price.
* Prices must be finite, ``> 0``, ``<= MAX_PRICE`` and not round to zero nano-units; sizes must
  be finite and ``>= 0`` (0 removes a level). Numbers are ``int`` or ``float``; ``bool`` is
  refused; an ``int`` is converted with ``float()``.
* Sequence numbers are ints (not bool) within the signed 64-bit range.
* A side is ``"bid"`` or ``"ask"``.
* A snapshot side lists at most ``max_levels`` levels, bids strictly descending and asks strictly
  ascending by key (a repeated price is an error); zero-size levels are accepted and not stored.
* Outcomes are compared ASCII-case-insensitively (the protocol compares them case-insensitively;
  only ASCII letters are folded, as the compiled router folds raw UTF-8 bytes). A market selector
  without an outcome means :data:`DEFAULT_OUTCOME`.

What a book does with them (both books; ``tests/test_book_equivalence.py`` keeps them equal):

* ``apply_delta``: no snapshot yet -> ``NO_SNAPSHOT``; book invalid -> ``GAP``; ``seq <= last``
  -> ``DUPLICATE``; ``seq > last + 1`` -> ``GAP`` and the book is invalid until the next
  snapshot; ``seq == last + 1`` -> the changes are validated and applied in order. Only a delta
  that would be applied is validated, so a replayed duplicate is dropped unread.
* Bad data raises ``BookDataError``; the levels are exactly as before, the book becomes invalid
  (its stream lost an update) and ``stats["rejected"]`` counts it. Validation runs over every
  change before the first one is applied; only the ``max_levels`` overflow is found while
  applying, and then the changes already applied are rolled back.
* A snapshot replaces the whole book and its seq becomes the baseline whatever its value.
* The constructor takes ``str`` ids (``TypeError`` otherwise; a ``str`` subclass such as a
  ``StrEnum`` member is stored as its plain ``str`` value) and an integer ``max_levels`` in
  ``[1, sys.maxsize]`` (``ValueError`` otherwise). ``n`` of ``bids(n)``/``asks(n)`` is ``None``
  or an integer ``>= 0`` (any size; larger than the side means all of it).
* ``set_level`` validates like a delta change but does not touch seq, validity or counters, and
  a bad ``set_level`` call does not invalidate the book (the caller holds the data and the error).

Every validator raises :class:`~parsec_fast.errors.BookDataError` naming the field and the value.
"""
from __future__ import annotations

import math
import operator
import sys
from enum import IntEnum
from types import ModuleType
from typing import Literal

from .errors import BookDataError

__all__ = ["DeltaResult", "Side", "PRICE_SCALE", "MAX_PRICE", "STAT_NAMES", "INT64_MIN", "INT64_MAX",
           "DEFAULT_OUTCOME", "number", "price_key", "size", "side_index", "seq", "level_count",
           "snapshot_side", "changes", "float64_buffer", "book_identity", "fold_outcome",
           "book_key", "BookKey", "require_text", "import_numpy"]

#: A book side, as the API names it.
Side = Literal["bid", "ask"]

#: A level's identity is ``round(price * PRICE_SCALE)`` (nano-units, ties to even).
PRICE_SCALE = 1e9

#: Largest accepted price. Parsec prices are probabilities in (0, 1]; the books accept any
#: positive price up to this bound, so their integer keys can never overflow 64 bits.
MAX_PRICE = 1e9

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: The identity of one subscribed book: (parsec_id, ASCII-lowercased outcome).
BookKey = tuple[str, str]

#: The outcome of a market selector that names none (binary markets; PROTOCOL.md §2).
DEFAULT_OUTCOME = "Yes"

#: Keys of ``Book.stats`` (all ints, counted per book since construction).
STAT_NAMES = (
    "snapshots",    # snapshots applied
    "applied",      # deltas applied (in the shared activity counter, activity frames too)
    "duplicates",   # deltas dropped because seq <= last (replays, duplicates)
    "gaps",         # deltas that revealed a gap (seq > last + 1); each made the book invalid
    "dropped",      # deltas dropped while the book was invalid (awaiting a snapshot)
    "no_snapshot",  # deltas dropped before the first snapshot
    "rejected",     # snapshots and deltas refused with BookDataError
)

# Buffer format strings of a native float64 ('<d' is NumPy's spelling on little-endian machines).
FLOAT64_FORMATS = ("d", "@d", "=d", "<d" if sys.byteorder == "little" else ">d")


class DeltaResult(IntEnum):
    """Outcome of ``Book.apply_delta``."""

    #: ``seq == last + 1``: the changes were applied and ``seq`` is the new last seq.
    APPLIED = 0
    #: ``seq <= last``: a duplicate or replay; dropped, book unchanged.
    DUPLICATE = 1
    #: ``seq > last + 1`` (the book is now invalid), or the book was already invalid: dropped.
    GAP = 2
    #: No snapshot has set a baseline yet: dropped.
    NO_SNAPSHOT = 3


def _type_name(value: object) -> str:
    return type(value).__name__


def number(value: object, field: str) -> float:
    """A JSON number (int or float, never bool) as a float, or BookDataError."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise BookDataError(f"{field}: number out of range, got {value!r}") from None
    raise BookDataError(f"{field}: expected a number, got {_type_name(value)} {value!r}")


def price_key(value: object, field: str) -> int:
    """Validate a price and return its nano-unit key."""
    price = number(value, field)
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


def size(value: object, field: str) -> float:
    """Validate a size (finite, >= 0) and return it as a float."""
    result = number(value, field)
    if not math.isfinite(result):
        raise BookDataError(f"{field}: size must be finite, got {result!r}")
    if result < 0.0:
        raise BookDataError(f"{field}: size must be >= 0, got {result!r}")
    return result


def side_index(value: object, field: str) -> int:
    """0 for ``"bid"``, 1 for ``"ask"``, else BookDataError."""
    if isinstance(value, str):
        if value == "bid":
            return 0
        if value == "ask":
            return 1
    raise BookDataError(f"{field}: expected 'bid' or 'ask', got {value!r}")


def seq(value: object) -> int:
    """Validate a sequence number (an int, not bool, within int64)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if INT64_MIN <= value <= INT64_MAX:
            return int(value)
        raise BookDataError(f"seq: out of the 64-bit range, got {value!r}")
    raise BookDataError(f"seq: expected an integer, got {_type_name(value)} {value!r}")


def level_count(n: object) -> int | None:
    """``n`` of ``bids(n)``/``asks(n)``: None (all) or an int >= 0 of any size (ValueError)."""
    if n is None:
        return None
    count = operator.index(n)  # type: ignore[arg-type]
    if count < 0:
        raise ValueError(f"n: must be >= 0 or None, got {count}")
    return count


def snapshot_side(levels: object, name: str, is_bid: bool,
                  max_levels: int) -> list[tuple[int, float]]:
    """Validate one snapshot side; return its non-zero levels as (key, size), best first."""
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
        key = price_key(level[0], f"{field}.price")
        amount = size(level[1], f"{field}.size")
        if previous is not None and (key >= previous if is_bid else key <= previous):
            order = "descending" if is_bid else "ascending"
            raise BookDataError(
                f"{field}.price: {name} must be strictly {order}, got {key / PRICE_SCALE!r} "
                f"after {previous / PRICE_SCALE!r}")
        previous = key
        if amount != 0.0:
            parsed.append((key, amount))
    return parsed


def changes(items: object) -> list[tuple[int, int, float]]:
    """Validate a delta's changes (every change, side then price then size, in order);
    return them as (side index, key, size)."""
    if not isinstance(items, (list, tuple)):
        raise BookDataError(f"changes: expected a list, got {_type_name(items)}")
    parsed = []
    for i, change in enumerate(items):
        field = f"changes[{i}]"
        if not isinstance(change, dict):
            raise BookDataError(f"{field}: expected an object, got {_type_name(change)}")
        for name in ("side", "price", "size"):
            if name not in change:
                raise BookDataError(f"{field}: missing {name!r}")
        parsed.append((side_index(change["side"], f"{field}.side"),
                       price_key(change["price"], f"{field}.price"),
                       size(change["size"], f"{field}.size")))
    return parsed


def float64_buffer(out: object) -> memoryview:
    """``out`` of ``bids_into``/``asks_into`` as a memoryview; ValueError unless it is a writable,
    C-contiguous float64 buffer (TypeError when it is not a buffer at all)."""
    view = memoryview(out)  # type: ignore[arg-type]
    if view.readonly:
        raise ValueError("out: buffer must be writable")
    if view.format not in FLOAT64_FORMATS or not view.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous float64 buffer, got format {view.format!r}")
    return view


def book_identity(parsec_id: object, outcome: object, max_levels: object) -> tuple[str, str, int]:
    """Validate a Book's constructor arguments: ``str`` ids (a ``str`` subclass such as a
    ``StrEnum`` member becomes its plain ``str`` value; TypeError otherwise) and an integer
    ``max_levels`` in ``[1, sys.maxsize]`` (ValueError otherwise)."""
    if not isinstance(parsec_id, str):
        raise TypeError(f"parsec_id: expected str, got {_type_name(parsec_id)}")
    if not isinstance(outcome, str):
        raise TypeError(f"outcome: expected str, got {_type_name(outcome)}")
    limit = operator.index(max_levels)  # type: ignore[arg-type]
    if limit < 1:
        raise ValueError(f"max_levels: must be >= 1, got {limit}")
    if limit > sys.maxsize:
        raise ValueError(f"max_levels: must be <= {sys.maxsize}, got {limit}")
    return str.__str__(parsec_id), str.__str__(outcome), limit


def fold_outcome(outcome: str) -> str:
    """The outcome as compared: ASCII letters lowercased, every other character kept."""
    return outcome.encode("utf-8").lower().decode("utf-8")


def book_key(parsec_id: str, outcome: str | None) -> BookKey:
    """The identity of one subscribed book: ``(parsec_id, fold_outcome(outcome))``, the outcome
    defaulting to :data:`DEFAULT_OUTCOME`."""
    return parsec_id, fold_outcome(DEFAULT_OUTCOME if outcome is None else outcome)


def require_text(owner: str, name: str, value: object) -> None:
    """ValueError unless ``value`` is a string with a non-blank character (ids, keys, tokens)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}.{name} must be a non-empty string, got {value!r}")


def import_numpy(method: str) -> ModuleType:
    """NumPy for the array readers (an optional dependency), or an ImportError that says how to
    install it."""
    try:
        import numpy
    except ImportError:
        raise ImportError(f"Book.{method} needs NumPy, which is not installed: "
                          "pip install numpy (or parsec_fast[numpy])") from None
    return numpy
