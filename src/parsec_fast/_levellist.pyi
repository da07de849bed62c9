"""Type stub of the lazy level lists (src/_core/parsec_fast/_levellist.pyx).

``LevelList`` is a ``list`` of ``StreamingOrderbookLevel`` over a compact copy of one side of a
``Book`` (``BookCopy``), building a level object only for the indexes read. Its list storage
holds an ``UnreadLevel`` placeholder for each level not read yet, so C code reading the storage
directly (orjson, msgspec) raises instead of seeing an empty list (see the module docstring).
"""
from typing import Literal

from ._book import Book
from ._levels import StreamingOrderbookLevel

class BookCopy:
    """Both sides of a ``Book`` at one moment, in a pooled C buffer; immutable."""

    @staticmethod
    def of(book: Book) -> BookCopy: ...
    @property
    def n_bids(self) -> int: ...
    @property
    def n_asks(self) -> int: ...
    def bids(self) -> LevelList:
        """The bid side, best first."""
    def asks(self) -> LevelList:
        """The ask side, best first."""

class LevelList(list[StreamingOrderbookLevel]):
    """``List[StreamingOrderbookLevel]`` over one side of a ``BookCopy``, built on read.
    ``LevelList(iterable)`` is an ordinary list of those items."""

    @staticmethod
    def of_book(book: Book, side: Literal["bid", "ask"]) -> LevelList:
        """A copy of one side of ``book`` now, best first."""
    @property
    def materialized(self) -> bool:
        """True once the list is an ordinary list (after a mutation): every level built, the
        book copy let go."""
