"""Type stub of the shared-memory books' writer (src/_core/parsec_fast/_shm_writer.pyx).

``Publisher`` writes every book of a FeedHandler into ``/dev/shm/NAME`` from the apply path (a
``BookSink``); the region's layout and the errors are ``parsec_fast._shm``'s, the reader side
``parsec_fast._shm_reader``'s. ``parsec_fast.shared.publish`` is the public front.
"""
from typing import Final

from ._feed import BookSink, FeedHandler, Subscription

__all__ = ["Publisher"]

class Publisher(BookSink):
    """Creates and writes the region ``/dev/shm/NAME``; ``attach`` a FeedHandler to it."""

    name: Final[str]
    path: Final[str]
    n_publishes: Final[int]
    n_commits: Final[int]
    n_wakes: Final[int]
    n_refused: Final[int]
    def __init__(self, name: str, *, max_books: int = 1024, max_levels: int = 100,
                 heartbeat_timeout: float = 1.0, mode: int = 0o600,
                 replace: bool = False) -> None: ...
    def attach(self, feed: FeedHandler) -> None:
        """Publish ``feed``'s books from now on (its current ones at once)."""
    def heartbeat(self) -> None:
        """Refresh the heartbeat now (a Client does it through its maintenance tick)."""
    def close(self, reason: str = "publisher closed") -> None:
        """Mark every book invalid and the region closed, wake readers, unlink, detach."""
    @property
    def closed(self) -> bool: ...
    @property
    def max_books(self) -> int: ...
    @property
    def max_levels(self) -> int:
        """Levels per side a slot holds (the best ones of a deeper book)."""
    @property
    def n_books(self) -> int: ...
    @property
    def n_unpublished(self) -> int:
        """Books of the FeedHandler not in the region (no free slot, identity too long)."""
    @property
    def stats(self) -> dict[str, int]:
        """publishes, commits, wakes, books, unpublished."""
    def __enter__(self) -> Publisher: ...
    def __exit__(self, *exc: object) -> None: ...

def _hammer(pub: Publisher, sub: Subscription, n: int, levels: int, seq0: int = 1,
            gap: int = 0) -> int: ...
