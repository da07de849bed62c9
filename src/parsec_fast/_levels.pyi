"""Type stub of the level objects (src/_core/parsec_fast/_levels.pyx).

``StreamingOrderbookLevel`` is the official SDK's level dataclass, compiled. ``UnreadLevel`` is
the placeholder a ``LevelList`` (``parsec_fast._levellist``) keeps in its list storage for each
level not read yet, so C code reading the storage directly (orjson, msgspec) raises instead of
seeing an empty list (see the module docstring). ``LevelList`` and ``BookCopy`` are still
importable from here.
"""
from typing import Any, ClassVar

from ._levellist import BookCopy as BookCopy, LevelList as LevelList

class StreamingOrderbookLevel:
    """One book level (the SDK's dataclass of the same name: fields, order, repr, ``==``)."""

    __match_args__: ClassVar[tuple[str, str]]
    __dataclass_fields__: ClassVar[dict[str, Any]]
    price: float
    size: float

    def __init__(self, price: float, size: float) -> None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

class UnreadLevelError(TypeError):
    """A placeholder of a level not built was used (C code read a LevelList's storage)."""

class UnreadLevel:
    """The placeholder of a level not built yet, in a LevelList's own storage: every use
    raises UnreadLevelError."""
