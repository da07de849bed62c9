"""Type stub of the lazy level sequences (src/_core/parsec_fast/_levels.pyx).

``StreamingOrderbookLevel`` is the official SDK's level dataclass, compiled; ``LevelList`` is
a ``list`` of them over a compact copy of one side of a ``Book``, building a level object only
for the indexes read. Its list storage holds an ``UnreadLevel`` placeholder for each level not
read yet, so C code reading the storage directly (orjson, msgspec) raises instead of seeing an
empty list (see the module docstring).
"""
from typing import Any, ClassVar, Literal

from ._book import Book

class StreamingOrderbookLevel:
    """One book level (the SDK's dataclass of the same name: fields, order, repr, ``==``)."""

    __match_args__: ClassVar[tuple[str, str]]
    __dataclass_fields__: ClassVar[dict[str, Any]]
    price: float
    size: float

    def __init__(self, price: float, size: float) -> None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

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

class UnreadLevelError(TypeError):
    """A placeholder of a level not built was used (C code read a LevelList's storage)."""

class UnreadLevel:
    """The placeholder of a level not built yet, in a LevelList's own storage: every use
    raises UnreadLevelError."""

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
