"""The SDK's view of the books: ``orderbook`` events and ``get_book``, on the engine's books.

The engine keeps levels and states; the SDK also reports each book's snapshot metadata (title,
tick size, ...), kept here per subscription (:class:`~parsec_fast._orderbook.BookMeta`). The
feed handler reports every applied frame through the client's frame hook, installed as
:meth:`OrderbookEmitter.on_book_frame <parsec_fast._orderbook.OrderbookEmitter.on_book_frame>`:
applied deltas become events in compiled code; snapshots and the frames the engine did not
apply because their ``book_state`` is ``needs_refresh`` come to :meth:`BookEvents.on_frame`.

``needs_refresh``. The engine treats such a frame as a gap (PROTOCOL.md §6: the book is
invalid, one resync is sent, its deltas are dropped until the snapshot), and does not apply it.
The SDK applies it and reports it; so that user code sees the state, an ``orderbook`` event is
emitted for it with the frame's own ``server_seq``, ``book_state``, ``feed_state``,
``stale_after_ms`` and timestamps, and the levels the SDK would show: for a snapshot its own
levels, for a delta the last book with its changes applied (and those of earlier
``needs_refresh`` frames since the last applied snapshot). Those levels are computed in a
scratch book; the engine's book and ``get_book`` are not changed. Levels that break the book
rules (a crossed or unsorted snapshot, a bad price) are left out of that view: an unusable
snapshot shows no levels, an unusable delta shows the book without its changes.
"""
from __future__ import annotations

from typing import Any, Optional

from .._book import Book
from .._feed import Subscription
from .._orderbook import BookMeta, OrderbookEmitter
from ..errors import BookDataError
from ..rules import fold_outcome
from .handlers import Handlers

__all__ = ["BookEvents", "mid_spread"]

BookKey = tuple[str, str]


def mid_spread(book: Book) -> tuple[float, float]:
    """The SDK's arithmetic: mid of both bests, else the one side's best (or 0.0); spread
    ``abs(ask - bid)`` when both sides exist, else 0.0. (Best prices are NaN for an empty
    side, and NaN > 0 is false; real prices are > 0.)"""
    bb = book.best_bid_price
    ba = book.best_ask_price
    if bb > 0 and ba > 0:
        return (bb + ba) / 2, abs(ba - bb)
    return (bb if bb > 0 else ba if ba > 0 else 0.0), 0.0


def _copy_levels(source: Book, parsec_id: str, outcome: str) -> Book:
    scratch = Book(parsec_id, outcome)
    scratch.apply_snapshot(source.bids(), source.asks(), 0)
    return scratch


class BookEvents:
    """Per subscription: the snapshot metadata, the ``needs_refresh`` view, the events."""

    def __init__(self, handlers: Handlers) -> None:
        self.emitter: OrderbookEmitter = OrderbookEmitter(
            handlers.by_event["orderbook"], self.on_frame, handlers.spawn_suspended,
            handlers.spawn_awaitable, handlers.log_error)
        self._subs: dict[BookKey, tuple[Subscription, BookMeta]] = {}
        # While a book is in needs_refresh: the levels the SDK would hold, and their metadata.
        self._refresh: dict[Subscription, tuple[Book, BookMeta]] = {}

    def on_frame(self, sub: Subscription, frame: dict[str, Any]) -> None:
        """A snapshot the engine applied, or a book frame it did not apply (needs_refresh)."""
        g = frame.get
        if g("book_state") == "needs_refresh":
            self._needs_refresh(sub, frame)
            return
        self._refresh.pop(sub, None)
        meta = BookMeta.of_frame(frame)
        self.emitter.set_meta(sub, meta)
        self._subs[(sub.parsec_id, fold_outcome(sub.outcome))] = (sub, meta)
        self.emitter.publish(meta, "snapshot", sub.book, g("server_seq", 0),
                             g("feed_state", "healthy"), g("book_state", "fresh"),
                             g("stale_after_ms", 0), g("exchange_ts_ms"), g("ingest_ts_ms"))

    def _needs_refresh(self, sub: Subscription, frame: dict[str, Any]) -> None:
        g = frame.get
        pid, outcome = sub.parsec_id, sub.outcome
        if g("type") == "orderbook":
            kind = "snapshot"
            meta = BookMeta.of_frame(frame)
            scratch = Book(pid, outcome)
            bids: Any = g("bids")  # whatever the frame holds: the book validates it
            asks: Any = g("asks")
            try:
                scratch.apply_snapshot(bids, asks, 0)
            except (BookDataError, TypeError, ValueError):
                scratch = Book(pid, outcome)
        else:
            kind = "delta"
            held = self._refresh.get(sub)
            if held is not None:
                base, meta = held
            else:
                found = self.emitter.meta(sub)
                if found is None:
                    return  # no book yet: the SDK ignores such a delta too
                base, meta = sub.book, found
            scratch = _copy_levels(base, pid, outcome)
            changes: Any = g("changes", [])
            try:
                scratch.apply_delta(changes, 1)
            except (BookDataError, TypeError, ValueError):
                scratch = _copy_levels(base, pid, outcome)
        self._refresh[sub] = (scratch, meta)
        self.emitter.publish(meta, kind, scratch, g("server_seq", 0), g("feed_state", "healthy"),
                             g("book_state", "fresh"), g("stale_after_ms", 0),
                             g("exchange_ts_ms"), g("ingest_ts_ms"))

    def forget(self, parsec_id: str, outcome: str) -> None:
        """Drop one book (unsubscribed): no more events, ``get_book`` returns None."""
        entry = self._subs.pop((parsec_id, fold_outcome(outcome)), None)
        if entry is not None:
            self.emitter.forget(entry[0])
            self._refresh.pop(entry[0], None)

    def clear(self) -> None:
        """Drop every book (a new connection's engine client, or close)."""
        self._subs.clear()
        self._refresh.clear()
        self.emitter.clear()

    def get_book(self, parsec_id: str, outcome: str) -> Optional[dict[str, Any]]:
        """The book as the SDK's ``get_book`` dict (a new object each call), or None."""
        entry = self._subs.get((parsec_id, fold_outcome(outcome)))
        if entry is None:
            return None
        sub, meta = entry
        book = sub.book
        mid, spread = mid_spread(book)
        return {
            "parsec_id": parsec_id,
            "outcome": meta.outcome,
            "exchange": meta.exchange,
            "token_id": meta.token_id,
            "market_id": meta.market_id,
            "title": meta.title,
            "bids": [{"price": p, "size": s} for p, s in book.bids()],
            "asks": [{"price": p, "size": s} for p, s in book.asks()],
            "mid_price": mid,
            "spread": spread,
            "tick_size": meta.tick_size,
            "last_seq": book.seq,
        }
