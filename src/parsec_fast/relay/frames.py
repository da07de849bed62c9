"""The Parsec frames the relay writes itself: snapshots from its compiled book, errors, the
``resync_required`` that tells consumers to stop trusting a book, auth replies, heartbeats."""
from __future__ import annotations

import time
from typing import Any

import orjson

from .._feed import Subscription

__all__ = ["snapshot_frame", "error_frame", "resync_required_frame", "auth_ok_frame",
           "auth_error_frame", "heartbeat_frame", "snapshot_meta"]

#: Snapshot fields copied from the last upstream snapshot (the feed handler keeps the levels,
#: seq, states and timestamps; these it does not keep).
_META_FIELDS = ("exchange", "outcome", "token_id", "market_id", "tick_size", "min_order_size",
                "title")


def snapshot_meta(raw: bytes | None) -> dict[str, Any]:
    """The metadata fields of an upstream snapshot frame (empty if there is none)."""
    if raw is None:
        return {}
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return {k: obj[k] for k in _META_FIELDS if k in obj} if isinstance(obj, dict) else {}


def snapshot_frame(sub: Subscription, meta: dict[str, Any]) -> bytes:
    """An ``orderbook`` snapshot of the relay's book as it is now: its levels (every level it
    holds, bit-exact doubles: orjson writes the shortest repr that reads back to the same
    double), its seq, the server's book/feed states and timestamps, and the metadata of the last
    upstream snapshot. A book the relay holds as locally stale is sent as ``book_state: stale``
    (its next frame from upstream says fresh again), so a consumer never trusts a book the relay
    itself has not heard about for longer than ``stale_after_ms``."""
    book = sub.book
    exchange, _, market_id = sub.parsec_id.partition(":")
    obj: dict[str, Any] = {
        "type": "orderbook", "parsec_id": sub.parsec_id,
        "exchange": meta.get("exchange", exchange), "outcome": meta.get("outcome", sub.outcome),
        "token_id": meta.get("token_id", ""), "market_id": meta.get("market_id", market_id),
        "kind": "snapshot",
    }
    for name in ("tick_size", "min_order_size", "title"):
        if name in meta:
            obj[name] = meta[name]
    obj["bids"] = [[p, s] for p, s in book.bids()]
    obj["asks"] = [[p, s] for p, s in book.asks()]
    obj["book_state"] = "stale" if sub.locally_stale else sub.book_state
    obj["server_seq"] = book.seq
    obj["feed_state"] = sub.feed_state
    if sub.stale_after_ms is not None:
        obj["stale_after_ms"] = sub.stale_after_ms
    obj["exchange_ts_ms"] = sub.exchange_ts_ms
    obj["ingest_ts_ms"] = sub.ingest_ts_ms
    return orjson.dumps(obj)


def error_frame(code: int, message: str, parsec_id: str | None = None) -> bytes:
    """A Parsec ``error`` frame (market-scoped with ``parsec_id``)."""
    obj: dict[str, Any] = {"type": "error", "code": int(code), "message": message}
    if parsec_id is not None:
        obj["parsec_id"] = parsec_id
    return orjson.dumps(obj)


def resync_required_frame(parsec_id: str, outcome: str) -> bytes:
    """``resync_required`` for one book: the consumer marks it invalid and resyncs."""
    return orjson.dumps({"type": "resync_required", "parsec_id": parsec_id, "outcome": outcome})


def auth_ok_frame(customer_id: str, relay: dict[str, Any]) -> bytes:
    """``auth_ok``, with the relay's parameters in an extra ``relay`` field (unknown fields are
    ignored by Parsec clients)."""
    return orjson.dumps({"type": "auth_ok", "customer_id": customer_id, "relay": relay})


def auth_error_frame(code: int, message: str) -> bytes:
    """``auth_error`` (fatal for the consumer, as on the WebSocket)."""
    return orjson.dumps({"type": "auth_error", "code": int(code), "message": message})


def heartbeat_frame() -> bytes:
    """A Parsec ``heartbeat`` frame stamped now."""
    return orjson.dumps({"type": "heartbeat", "ts_ms": int(time.time() * 1000)})
