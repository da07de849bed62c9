"""Record of every frame the local server sent, per connection, and a replay that computes the
book a correct client must hold.

The replay follows PROTOCOL.md §6: a snapshot sets the baseline; a delta with ``seq == last + 1``
is applied, ``seq <= last`` is dropped as a duplicate, ``seq > last + 1`` is a gap that invalidates
the book until the next snapshot; ``resync_required`` and ``book_state == "needs_refresh"``
invalidate it too. With the shared counter (default), ``activity`` frames advance the sequence of
their subscription; with separate counters they are ignored by book gap detection.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

__all__ = ["ConnectionRecord", "Recorder", "ExpectedBook", "expected_books"]

BookKey = tuple[str, str]  # (parsec_id, outcome)


@dataclass
class ConnectionRecord:
    """Frames sent on one connection, in order, as encoded JSON payloads."""

    conn_id: int
    frames: list[bytes] = field(default_factory=list)
    api_key: str | None = None

    def messages(self) -> list[dict[str, Any]]:
        """The frames decoded."""
        return [orjson.loads(f) for f in self.frames]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """The decoded frames of one ``type``."""
        return [m for m in self.messages() if m.get("type") == type_]


class Recorder:
    """Per-connection records, created by the server when recording is enabled."""

    def __init__(self) -> None:
        self.connections: list[ConnectionRecord] = []

    def open(self, conn_id: int) -> ConnectionRecord:
        """Start the record of a new connection."""
        record = ConnectionRecord(conn_id)
        self.connections.append(record)
        return record

    def get(self, conn_id: int) -> ConnectionRecord:
        """The record of a connection by id."""
        for record in self.connections:
            if record.conn_id == conn_id:
                return record
        raise KeyError(conn_id)

    def clear(self) -> None:
        """Forget every record."""
        self.connections.clear()


@dataclass
class ExpectedBook:
    """What a correct client holds for one subscription after a frame stream.

    ``valid`` is False when the book must be invalid / awaiting a snapshot; then ``bids``/``asks``
    are what was last known and carry no meaning.
    """

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    seq: int = 0
    valid: bool = True

    def bid_levels(self) -> list[tuple[float, float]]:
        """Bids, best (highest) first."""
        return sorted(self.bids.items(), reverse=True)

    def ask_levels(self) -> list[tuple[float, float]]:
        """Asks, best (lowest) first."""
        return sorted(self.asks.items())


def expected_books(frames: Iterable[bytes | dict[str, Any]], *,
                   shared_seq: bool = True) -> dict[BookKey, ExpectedBook]:
    """Replay ``frames`` (encoded or decoded) with a correct client's rules and return the book per
    (parsec_id, outcome). Books never snapshotted are absent; a book whose stream broke (gap,
    ``resync_required``, ``needs_refresh``) has ``valid=False`` until its next snapshot."""
    books: dict[BookKey, ExpectedBook] = {}
    for raw in frames:
        msg = orjson.loads(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else raw
        kind = msg.get("type")
        if kind == "orderbook":
            key = (msg["parsec_id"], msg["outcome"])
            books[key] = ExpectedBook({p: s for p, s in msg["bids"]}, {p: s for p, s in msg["asks"]},
                                      msg["server_seq"], True)
            if msg.get("book_state") == "needs_refresh":
                books[key].valid = False
        elif kind == "orderbook_delta" or (kind == "activity" and shared_seq):
            book = books.get((msg["parsec_id"], msg["outcome"]))
            if book is None or not book.valid:
                continue
            seq = msg["server_seq"]
            if seq <= book.seq:
                continue
            if seq != book.seq + 1:
                book.valid = False
                continue
            book.seq = seq
            if kind == "activity":
                continue
            for change in msg["changes"]:
                levels = book.bids if change["side"] == "bid" else book.asks
                if change["size"] == 0:
                    levels.pop(change["price"], None)
                else:
                    levels[change["price"]] = change["size"]
            if msg.get("book_state") == "needs_refresh":
                book.valid = False
        elif kind == "resync_required":
            book = books.get((msg["parsec_id"], msg["outcome"]))
            if book is not None:
                book.valid = False
    return books
