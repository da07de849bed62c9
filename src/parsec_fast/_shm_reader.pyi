"""Type stub of the shared-memory books' reader side (src/_core/parsec_fast/_shm_reader.pyx).

``SharedRegion`` maps a publisher's region read-only (``parsec_fast.shared.attach`` returns its
subclass ``SharedBooks``); ``SharedBook`` is one published book. The errors are
``parsec_fast._shm``'s, the writer ``parsec_fast._shm_writer``'s.
"""
import sys
from typing import Any, Final, Iterator

# NumPy is optional at run time (``parsec_fast[numpy]``; ``bids_array`` raises ImportError
# without it). A stub is never executed: these imports are for type checkers only.
from numpy import float64
from numpy.typing import NDArray

from .rules import Side

__all__ = ["SharedRegion", "SharedBook"]

# ``out`` of bids_into / asks_into: any buffer (array.array('d'), memoryview, ...) or a NumPy
# array, named as well because NumPy's stubs make an array a Buffer only on Python >= 3.12.
if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:
    from typing_extensions import Buffer

class SharedBook:
    """A read-only view of one published book: ``Book``'s reads and ``Subscription``'s trust
    signals. Each read is one consistent copy; use ``top()`` for a bid/ask pair.

    Data reads raise ``BookGoneError`` once the book was removed, ``BookBusyError`` if the
    publisher stayed inside the slot through every retry, ``SharedMemoryError`` after the
    region's ``close()``; after the publisher is gone they return its last published data."""

    parsec_id: Final[str]
    outcome: Final[str]
    index: Final[int]
    @property
    def seq(self) -> int | None:
        """Last applied server_seq, or None before the first snapshot."""
    @property
    def is_valid(self) -> bool:
        """The publisher's ``Book.is_valid`` as last published (see ``trustworthy``)."""
    @property
    def best_bid(self) -> tuple[float, float] | None:
        """(price, size) of the best bid, or None."""
    @property
    def best_ask(self) -> tuple[float, float] | None:
        """(price, size) of the best ask, or None."""
    @property
    def best_bid_price(self) -> float:
        """Best bid price, NaN when there are no bids."""
    @property
    def best_bid_size(self) -> float:
        """Best bid size, NaN when there are no bids."""
    @property
    def best_ask_price(self) -> float:
        """Best ask price, NaN when there are no asks."""
    @property
    def best_ask_size(self) -> float:
        """Best ask size, NaN when there are no asks."""
    def top(self) -> tuple[float, float, float, float]:
        """(bid_price, bid_size, ask_price, ask_size) at one version; NaN for an empty side."""
    @property
    def mid(self) -> float | None:
        """(best bid + best ask) / 2 at one version, or None when a side is empty."""
    @property
    def spread(self) -> float | None:
        """best ask - best bid at one version, or None when a side is empty."""
    @property
    def crossed(self) -> bool:
        """True when both sides are non-empty and best bid >= best ask (at one version)."""
    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` bids (all published when None) as (price, size), best first; at most
        ``max_levels``. Copies those levels out of the slot once (16 bytes each), then builds
        the list."""
    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` asks (all published when None) as (price, size), best first; at most
        ``max_levels``. Same cost as ``bids``."""
    def bids_array(self, n: int | None = None) -> NDArray[float64]:
        """The best ``n`` bids (all published when None) as a float64 NumPy array of shape
        (k, 2), at most ``max_levels`` rows (ImportError naming the fix without NumPy)."""
    def asks_array(self, n: int | None = None) -> NDArray[float64]:
        """The best ``n`` asks as a float64 NumPy array of shape (k, 2); as ``bids_array``."""
    def bids_into(self, out: Buffer | NDArray[float64]) -> int:
        """Write the best bids as price, size pairs into ``out``, a writable C-contiguous
        float64 buffer (array.array('d'), NumPy array, ...); returns the number of levels
        written (min(published levels, len(out) // 2, max_levels)). ValueError for a read-only
        or non-float64 buffer."""
    def asks_into(self, out: Buffer | NDArray[float64]) -> int:
        """As ``bids_into``, for the asks."""
    def bid_size(self, price: float) -> float:
        """Size at ``price`` on the bid side, 0.0 when absent or beyond the published depth
        (BookDataError for a bad price). Copies the published side and scans it: O(levels),
        where ``Book.bid_size`` is a binary search."""
    def ask_size(self, price: float) -> float:
        """Size at ``price`` on the ask side; as ``bid_size``."""
    def level_count(self, side: Side) -> int:
        """Levels published on ``side`` (what bids()/asks() return)."""
    def book_level_count(self, side: Side) -> int:
        """Levels the publisher's book has on ``side`` (more than published when truncated)."""
    @property
    def truncated(self) -> bool:
        """The book has more levels on a side than the region's max_levels."""
    @property
    def max_levels(self) -> int:
        """Levels per side the region publishes (the region's ``max_levels``)."""
    @property
    def gone(self) -> bool:
        """The book was removed from the region (also True once this process closed it)."""
    @property
    def trustworthy(self) -> bool:
        """Publisher live, book published, valid, fresh (server and locally), feed healthy."""
    def why_not(self) -> str | None:
        """None when ``trustworthy``, else a short reason: the region's (detached here, or the
        publisher gone, with why), the slot's (book removed, busy), or the published state's
        (invalid and why, the server's book_state, local staleness, the venue feed). Never
        raises for a gone book or publisher."""
    @property
    def invalid_reason(self) -> str | None:
        """Why the book is invalid (the publisher's ``Subscription.invalid_reason``, or
        "publisher_closed"); None while valid."""
    @property
    def last_error(self) -> str | None:
        """The publisher's ``Subscription.last_error``: the message of the last bad frame."""
    @property
    def book_state(self) -> str:
        """The publisher's ``Subscription.book_state`` ("fresh", "stale", "needs_refresh", ...)."""
    @property
    def feed_state(self) -> str:
        """The publisher's ``Subscription.feed_state`` ("healthy", "degraded", ...)."""
    @property
    def locally_stale(self) -> bool:
        """The publisher's ``Subscription.locally_stale``."""
    @property
    def stale_after_ms(self) -> int | None:
        """The server's ``stale_after_ms`` for this book, or None."""
    @property
    def exchange_ts_ms(self) -> int | None:
        """exchange_ts_ms of the last book frame (None when it had none)."""
    @property
    def ingest_ts_ms(self) -> int | None:
        """ingest_ts_ms of the last book frame (None when it had none)."""
    @property
    def last_frame_ns(self) -> int:
        """The publisher's time.monotonic_ns() when the last book frame for it was read."""
    @property
    def publishes(self) -> int:
        """Times the publisher wrote this book since it was placed (a version number)."""
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
    def alive(self) -> bool:
        """True while the publisher is live (see ``gone_reason``)."""
    @property
    def gone_reason(self) -> str | None:
        """Why the publisher is considered gone (closed, process gone, heartbeat too old), or
        None while it is live."""
    @property
    def heartbeat_age(self) -> float:
        """Seconds since the publisher's last heartbeat."""
    @property
    def heartbeat_timeout(self) -> float:
        """Seconds without a heartbeat after which the publisher counts as gone."""
    @property
    def publisher_pid(self) -> int:
        """The publisher's process id."""
    @property
    def max_books(self) -> int:
        """Books the region can hold."""
    @property
    def max_levels(self) -> int:
        """Levels per side a slot holds (a deeper book is published truncated to these)."""
    @property
    def layout_version(self) -> int:
        """The region layout version (``LAYOUT_VERSION``)."""
    @property
    def wake_protocol(self) -> str:
        """"membarrier" or "fenced": how the writer's wake decision is ordered."""
    @property
    def changes(self) -> int:
        """Change counter (uint32, wraps), bumped once per publishing flush."""
    @property
    def books_version(self) -> int:
        """Bumped whenever a book is added or removed (refresh a cached ``books()`` list)."""
    @property
    def n_unpublished(self) -> int:
        """Books the publisher holds but could not place in the region."""
    def __len__(self) -> int: ...
    def get(self, parsec_id: str, outcome: str = "Yes") -> SharedBook | None:
        """The SharedBook of (parsec_id, outcome), outcome compared as the FeedHandler does
        (ASCII case-insensitively), or None when it is not published. A hash lookup, but a
        new SharedBook (with a read buffer of 32 bytes per ``max_levels``) each call: look a
        book up once and keep it. BookBusyError if the directory (or the slot) stayed busy."""
    def book(self, parsec_id: str, outcome: str = "Yes") -> SharedBook:
        """Like ``get``, but KeyError (saying how many books the region could not hold) when
        the book is not published."""
    def books(self) -> list[SharedBook]:
        """Every published book, in slot order: a new SharedBook each. Reads every slot's
        identity, O(max_books); cache it and refresh when ``books_version`` changes."""
    def keys(self) -> list[tuple[str, str]]:
        """(parsec_id, outcome) of every published book, in slot order (built from ``books()``,
        at the same cost)."""
    def __iter__(self) -> Iterator[SharedBook]: ...
    def __contains__(self, key: object, /) -> bool: ...
    def wait(self, last: int | None = None, timeout: float | None = None, *,
             poll: float = 100e-6, linger: float = 0.01, spin: float = 0.0) -> int:
        """Block until ``changes`` differs from ``last``; return it (``last`` on timeout);
        PublisherGoneError when the publisher is gone."""
    def __enter__(self) -> SharedRegion: ...
    def __exit__(self, *exc: object) -> None: ...
