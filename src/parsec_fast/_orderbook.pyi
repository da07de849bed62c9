"""Type stub of the compat layer's compiled ``orderbook`` event (src/_core/parsec_fast/_orderbook.pyx).

``OrderbookSnapshot`` is the official SDK's payload dataclass, compiled; ``OrderbookEmitter``
turns the feed handler's per-frame hook into payloads and runs the ``orderbook`` handlers.
"""
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, List, Optional

from ._book import Book
from ._feed import Subscription
from ._levels import StreamingOrderbookLevel

class OrderbookSnapshot:
    """Payload of the ``"orderbook"`` event (the SDK's dataclass of the same name). ``bids`` /
    ``asks`` of an emitted payload are ``LevelList`` objects: the book as of that frame."""

    __match_args__: ClassVar[tuple[str, ...]]
    __dataclass_fields__: ClassVar[dict[str, Any]]
    parsec_id: str
    outcome: str
    exchange: str
    token_id: str
    market_id: str
    title: Optional[str]
    bids: List[StreamingOrderbookLevel]
    asks: List[StreamingOrderbookLevel]
    mid_price: float
    spread: float
    tick_size: Optional[float]
    kind: str
    server_seq: int
    feed_state: str
    book_state: str
    stale_after_ms: int
    exchange_ts_ms: Optional[int]
    ingest_ts_ms: Optional[int]

    def __init__(self, parsec_id: str, outcome: str, exchange: str, token_id: str,
                 market_id: str, title: Optional[str], bids: List[StreamingOrderbookLevel],
                 asks: List[StreamingOrderbookLevel], mid_price: float, spread: float,
                 tick_size: Optional[float], kind: str, server_seq: int, feed_state: str,
                 book_state: str, stale_after_ms: int, exchange_ts_ms: Optional[int],
                 ingest_ts_ms: Optional[int]) -> None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

class BookMeta:
    """A book's snapshot fields the engine does not keep (title, tick size, ...)."""

    @property
    def parsec_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def exchange(self) -> str: ...
    @property
    def token_id(self) -> str: ...
    @property
    def market_id(self) -> str: ...
    @property
    def title(self) -> Optional[str]: ...
    @property
    def tick_size(self) -> Optional[float]: ...
    def __init__(self, parsec_id: str, outcome: str, exchange: str, token_id: str,
                 market_id: str, title: Optional[str], tick_size: Optional[float]) -> None: ...
    @staticmethod
    def of_frame(frame: dict[str, Any]) -> BookMeta:
        """From a snapshot frame, with the SDK's defaults for absent fields."""

class OrderbookEmitter:
    """Builds ``orderbook`` payloads and calls the handlers (see the module docstring)."""

    def __init__(self, handlers: list[Callable[..., Any]],
                 on_frame: Callable[[Subscription, dict[str, Any]], None],
                 spawn_suspended: Callable[[Coroutine[Any, Any, Any], Any], None],
                 spawn_awaitable: Callable[[Any], None],
                 on_error: Callable[[Optional[str]], None]) -> None: ...
    def set_meta(self, sub: Subscription, meta: BookMeta) -> None:
        """Applied deltas of ``sub`` are published with ``meta`` from now on (replacing any
        earlier metadata)."""
    def meta(self, sub: Subscription) -> Optional[BookMeta]:
        """The metadata set for ``sub``, or None (before its first snapshot, or forgotten)."""
    def forget(self, sub: Subscription) -> None:
        """Drop ``sub``'s metadata: no more delta events for it until ``set_meta`` again."""
    def clear(self) -> None:
        """Drop every subscription's metadata (no delta events until ``set_meta`` again)."""
    def on_book_frame(self, sub: Subscription, frame: Optional[dict[str, Any]]) -> None:
        """The feed handler's per-frame hook (``Client.set_frame_hook``)."""
    def publish(self, meta: BookMeta, kind: str, book: Book, server_seq: object,
                feed_state: object, book_state: object, stale_after_ms: object,
                exchange_ts_ms: object, ingest_ts_ms: object) -> None:
        """Emit one ``orderbook`` event with ``book``'s levels now and these fields (as the
        frame held them: the SDK passed frame values through unchecked)."""
