"""What the compiled ``parsec_fast.Book`` and the pure-Python ``parsec_fast.reference.Book`` share.

Both classes implement exactly one API (see ``parsec_fast.reference.Book`` for the documented
behaviour of every method); the property tests in ``tests/test_book_equivalence.py`` keep
them equal. The names here are the vocabulary of that API.
"""
from __future__ import annotations

from enum import IntEnum

__all__ = ["DeltaResult", "PRICE_SCALE", "MAX_PRICE", "STAT_NAMES"]

#: A level's identity is ``round(price * PRICE_SCALE)`` (nano-units, ties to even); reported
#: prices are ``key / PRICE_SCALE``, which is the exact double of any decimal tick-grid price.
PRICE_SCALE = 1e9

#: Largest accepted price. Parsec prices are probabilities in (0, 1]; the book accepts any
#: positive price up to this bound, so its integer keys can never overflow 64 bits.
MAX_PRICE = 1e9

#: Keys of ``Book.stats`` (all ints, counted per book since construction).
STAT_NAMES = (
    "snapshots",    # snapshots applied
    "applied",      # deltas applied
    "duplicates",   # deltas dropped because seq <= last (replays, duplicates)
    "gaps",         # deltas that revealed a gap (seq > last + 1); each made the book invalid
    "dropped",      # deltas dropped while the book was invalid (awaiting a snapshot)
    "no_snapshot",  # deltas dropped before the first snapshot
    "rejected",     # snapshots and deltas refused with BookDataError
)


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
