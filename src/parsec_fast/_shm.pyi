"""Type stub of the shared-memory books (src/_core/parsec_fast/_shm.pyx).

One publisher process writes every book of a FeedHandler into ``/dev/shm/NAME`` (per-book
seqlock, generations, a hash directory, a futex change counter, a heartbeat); any number of
reader processes map it read-only. ``parsec_fast.shared`` is the public front.
"""
from typing import Any, Final, Iterator

from ._feed import BookSink, FeedHandler, Subscription
from .errors import ParsecError

#: The region layout version this build writes and reads.
LAYOUT_VERSION: Final[int]
#: Where regions live (``/dev/shm/``).
SHM_DIR: Final[str]

class SharedMemoryError(ParsecError):
    """Base of the shared-memory books' errors."""

class LayoutMismatchError(SharedMemoryError):
    """Not a region this parsec_fast can read (another layout version or sizes): says what."""

class BookGoneError(SharedMemoryError, LookupError):
    """The book was removed from the region (its slot may hold another book now)."""

class BookBusyError(SharedMemoryError):
    """The publisher stayed inside the slot for the whole bounded retry."""

class PublisherGoneError(SharedMemoryError):
    """The publisher closed, died, or stopped beating within the bound."""

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

class SharedBook:
    """A read-only view of one published book: ``Book``'s reads and ``Subscription``'s trust
    signals. Each read is one consistent copy; use ``top()`` for a bid/ask pair."""

    parsec_id: Final[str]
    outcome: Final[str]
    index: Final[int]
    @property
    def seq(self) -> int | None: ...
    @property
    def is_valid(self) -> bool: ...
    @property
    def best_bid(self) -> tuple[float, float] | None: ...
    @property
    def best_ask(self) -> tuple[float, float] | None: ...
    @property
    def best_bid_price(self) -> float: ...
    @property
    def best_bid_size(self) -> float: ...
    @property
    def best_ask_price(self) -> float: ...
    @property
    def best_ask_size(self) -> float: ...
    def top(self) -> tuple[float, float, float, float]:
        """(bid_price, bid_size, ask_price, ask_size) at one version; NaN for an empty side."""
    @property
    def mid(self) -> float | None: ...
    @property
    def spread(self) -> float | None: ...
    @property
    def crossed(self) -> bool: ...
    def bids(self, n: int | None = None) -> list[tuple[float, float]]: ...
    def asks(self, n: int | None = None) -> list[tuple[float, float]]: ...
    def bids_array(self, n: int | None = None) -> Any:
        """float64 NumPy array of shape (k, 2)."""
    def asks_array(self, n: int | None = None) -> Any: ...
    def bids_into(self, out: Any) -> int: ...
    def asks_into(self, out: Any) -> int: ...
    def bid_size(self, price: float) -> float: ...
    def ask_size(self, price: float) -> float: ...
    def level_count(self, side: str) -> int:
        """Levels published on ``side`` (what bids()/asks() return)."""
    def book_level_count(self, side: str) -> int:
        """Levels the publisher's book has on ``side``."""
    @property
    def truncated(self) -> bool:
        """The book has more levels on a side than the region's max_levels."""
    @property
    def max_levels(self) -> int: ...
    @property
    def gone(self) -> bool:
        """The book was removed from the region."""
    @property
    def trustworthy(self) -> bool:
        """Publisher live, book published, valid, fresh (server and locally), feed healthy."""
    def why_not(self) -> str | None: ...
    @property
    def invalid_reason(self) -> str | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def book_state(self) -> str: ...
    @property
    def feed_state(self) -> str: ...
    @property
    def locally_stale(self) -> bool: ...
    @property
    def stale_after_ms(self) -> int | None: ...
    @property
    def exchange_ts_ms(self) -> int | None: ...
    @property
    def ingest_ts_ms(self) -> int | None: ...
    @property
    def last_frame_ns(self) -> int:
        """The publisher's time.monotonic_ns() when the last book frame for it was read."""
    @property
    def publishes(self) -> int: ...
    def state(self) -> dict[str, Any]:
        """Every trust field at one version."""
    def to_dict(self) -> dict[str, Any]:
        """Like Book.to_dict(), at one version."""

class SharedRegion:
    """A read-only view of a publisher's region (``parsec_fast.shared.attach``)."""

    name: Final[str]
    path: Final[str]
    def __init__(self, name: str, *, heartbeat_timeout: float | None = None) -> None: ...
    def close(self) -> None:
        """Unmap this process's view (never the file)."""
    @property
    def alive(self) -> bool: ...
    @property
    def gone_reason(self) -> str | None: ...
    @property
    def heartbeat_age(self) -> float: ...
    @property
    def heartbeat_timeout(self) -> float: ...
    @property
    def publisher_pid(self) -> int: ...
    @property
    def max_books(self) -> int: ...
    @property
    def max_levels(self) -> int: ...
    @property
    def layout_version(self) -> int: ...
    @property
    def wake_protocol(self) -> str:
        """"membarrier" or "fenced": how the writer's wake decision is ordered."""
    @property
    def changes(self) -> int:
        """Change counter (uint32, wraps), bumped once per publishing flush."""
    @property
    def books_version(self) -> int: ...
    @property
    def n_unpublished(self) -> int: ...
    def __len__(self) -> int: ...
    def get(self, parsec_id: str, outcome: str = "Yes") -> SharedBook | None: ...
    def book(self, parsec_id: str, outcome: str = "Yes") -> SharedBook: ...
    def books(self) -> list[SharedBook]: ...
    def keys(self) -> list[tuple[str, str]]: ...
    def __iter__(self) -> Iterator[SharedBook]: ...
    def __contains__(self, key: object) -> bool: ...
    def wait(self, last: int | None = None, timeout: float | None = None, *,
             poll: float = 100e-6, linger: float = 0.01, spin: float = 0.0) -> int:
        """Block until ``changes`` differs from ``last``; return it (``last`` on timeout);
        PublisherGoneError when the publisher is gone."""
    def __enter__(self) -> SharedRegion: ...
    def __exit__(self, *exc: object) -> None: ...

def _hammer(pub: Publisher, sub: Subscription, n: int, levels: int, seq0: int = 1,
            gap: int = 0) -> int: ...
def _existing_owner(path: str) -> str | None: ...
