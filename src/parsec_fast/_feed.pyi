"""Type stub of the compiled feed handler (src/_core/parsec_fast/_feed.pyx).

The feed handler owns every subscription's book and state. The transport hands it each text
frame's payload; it parses (native scanner, orjson fallback), routes snapshots and deltas to the
compiled books by (parsec_id, outcome) — outcome compared ASCII-case-insensitively — checks
sequences once (in the book), and calls back into Python only for what Python must see.
"""
from typing import Any, Callable, Literal

from ._book import Book
from .errors import ProtocolError

ParserName = Literal["native", "orjson"]
ActivitySeq = Literal["shared", "separate"]

class Subscription:
    """State of one (parsec_id, outcome) subscription, owned by the FeedHandler."""

    @property
    def parsec_id(self) -> str: ...
    @property
    def outcome(self) -> str:
        """The outcome as first given to ``FeedHandler.add`` (matching is case-insensitive)."""
    @property
    def book(self) -> Book: ...
    @property
    def book_state(self) -> str:
        """Last ``book_state`` the server announced: "fresh", "stale", "needs_refresh" (or the
        unknown string it sent); "fresh" until told otherwise."""
    @property
    def feed_state(self) -> str:
        """Last ``feed_state``: "healthy", "degraded", "disconnected" (or unknown string)."""
    @property
    def stale_after_ms(self) -> int | None: ...
    @property
    def last_frame_ns(self) -> int:
        """time.monotonic_ns() when the last book frame (snapshot or delta) for it arrived; 0 = never."""
    @property
    def exchange_ts_ms(self) -> int | None:
        """exchange_ts_ms of the last book frame (None when it had none)."""
    @property
    def ingest_ts_ms(self) -> int | None:
        """ingest_ts_ms of the last book frame (None when it had none)."""
    @property
    def locally_stale(self) -> bool:
        """No book frame within stale_after_ms (set by ``FeedHandler.check_stale``)."""
    @property
    def invalid_reason(self) -> str | None:
        """Why the book is invalid: "no_snapshot", "gap", "resync_required", "needs_refresh",
        "rejected", "seq_conflict", "disconnected"; None while valid."""
    @property
    def last_error(self) -> str | None:
        """Message of the last BookDataError / ProtocolError that invalidated this book."""
    @property
    def trustworthy(self) -> bool:
        """Valid book, fresh (server and local), feed healthy."""
    def why_not(self) -> str | None:
        """None when trustworthy, else a short human-readable reason."""
    @property
    def stats(self) -> dict[str, int]:
        """Per-subscription counters: the book's stats plus activity/resync counters."""

class BookSink:
    """Base of what a FeedHandler publishes its books to (``FeedHandler.set_sink``), in C with
    no Python object per update; ``parsec_fast._shm_writer.Publisher`` is the one implementation."""

class FeedHandler:
    """Parses and applies frames; calls back for what Python must see.

    Callbacks (assign attributes; None = ignore):
      on_message(obj: dict) — every parsed non-book message (auth_ok, auth_error, heartbeat,
        activity (after its seq was accounted for), wallet_activity, resync_required,
        slow_reader, error, unknown types). Book frames never reach it.
      on_book_updated(sub: Subscription) — once per subscription per batch (coalesced; the seq
        is sub.book.seq), after ``flush()``.
      on_book_state(sub: Subscription, what: str, reason: str) — never coalesced; what is
        "invalid" (reason = sub.invalid_reason; the client must resync), "recovered" (a
        snapshot made it valid again), "state" (book_state/feed_state changed; reason like
        "feed_state=degraded"), "stale" / "fresh" (local staleness).
      on_protocol_error(err: ProtocolError) — a frame that is not a valid message; the book
        it names (if any can be told) is invalidated.
      on_book_frame(sub: Subscription, frame: dict | None) — per frame, not coalesced: after
        every applied snapshot (``frame`` is the parsed snapshot) and every applied delta
        (None); and after every snapshot or delta not applied because its ``book_state`` is
        "needs_refresh" (``frame`` is the parsed frame; the book is unchanged and invalid, as
        without the callback). Costs a Python call per delta; while set, snapshots and
        needs_refresh frames take the orjson path. For adapters that must report every frame
        (parsec_fast.compat).
    """

    on_message: Callable[[dict[str, Any]], None] | None
    on_book_updated: Callable[[Subscription], None] | None
    on_book_state: Callable[[Subscription, str, str], None] | None
    on_protocol_error: Callable[[ProtocolError], None] | None
    on_book_frame: Callable[[Subscription, dict[str, Any] | None], None] | None

    def __init__(self, *, parser: ParserName = "native", activity_seq: ActivitySeq = "shared",
                 max_levels: int = 10_000) -> None: ...
    @property
    def parser(self) -> ParserName: ...
    @property
    def activity_seq(self) -> ActivitySeq: ...
    def add(self, parsec_id: str, outcome: str) -> Subscription:
        """Register a subscription (idempotent); its book starts empty and invalid."""
    def remove(self, parsec_id: str, outcome: str) -> bool:
        """Forget a subscription and its book (outcome matched case-insensitively); True if it
        existed. Its counters stay in ``stats``; a sink is told. Rebuilds the routing table, as
        ``add`` does: O(subscriptions)."""
    def get(self, parsec_id: str, outcome: str) -> Subscription | None:
        """The subscription of (parsec_id, outcome), outcome matched case-insensitively, or
        None (a dict lookup)."""
    def subscriptions(self) -> list[Subscription]:
        """Every subscription, in the order they were added (a new list)."""
    def feed(self, payload: bytes) -> None:
        """Handle one complete text frame. Never raises for bad frame data (it is reported
        through the callbacks); exceptions from user callbacks propagate."""
    def flush(self) -> None:
        """End of a read batch: deliver the coalesced on_book_updated calls."""
    def invalidate(self, sub: Subscription, reason: str) -> None:
        """Mark one book invalid (e.g. resync_required, disconnect) and report it."""
    def invalidate_all(self, reason: str) -> None:
        """``invalidate`` every book with ``reason`` (e.g. "disconnected"): one on_book_state
        "invalid" call each, then (with a sink) one publishing flush."""
    def check_stale(self, now_ns: int) -> None:
        """Update local staleness of every subscription (calls on_book_state on changes); with
        a sink, also publishes those changes and refreshes the sink's heartbeat."""
    def set_sink(self, sink: BookSink) -> None:
        """Publish every book to ``sink`` from now on: the current ones at once, then each book
        changed (applied frames, validity, states, staleness) once per ``flush()``, and at the
        end of ``check_stale()`` / ``invalidate()`` / ``invalidate_all()``. One sink at a time
        (ValueError). ``parsec_fast.shared.publish`` calls it."""
    def close_sink(self, reason: str = "closed") -> None:
        """Stop publishing; the sink is told ``reason`` (a Publisher closes its region)."""
    @property
    def sink(self) -> BookSink | None: ...
    @property
    def stats(self) -> dict[str, int]:
        """frames, bytes, native_frames, orjson_frames, snapshots, deltas_applied, duplicates,
        gaps, dropped, no_snapshot, rejected, unrouted, protocol_errors, activity, slow_reader.
        The book counters (snapshots ... rejected) are sums over the books' own counters
        (removed subscriptions included), without activity frames' empty deltas."""
