"""Encoding of the server's market-scoped frames (PROTOCOL.md §3), field order as on the wire."""
from __future__ import annotations

from typing import Any

import orjson

from .simulator import WireChange
from .subscription import Subscription

__all__ = ["snapshot_frame", "delta_frame", "activity_frame", "market_fields"]


def market_fields(sub: Subscription) -> dict[str, Any]:
    """The fields every market-scoped frame carries."""
    m = sub.market
    return {"parsec_id": m.parsec_id, "exchange": m.exchange, "outcome": sub.outcome,
            "token_id": m.token_id(sub.outcome), "market_id": m.market_id}


def snapshot_frame(sub: Subscription, bids: list[list[float]], asks: list[list[float]], *,
                   book_state: str, seq: int, feed_state: str, stale_after_ms: int,
                   now_ms: int) -> bytes:
    """An ``orderbook`` snapshot of ``sub``."""
    m = sub.market
    return orjson.dumps({
        "type": "orderbook", "parsec_id": m.parsec_id, "exchange": m.exchange,
        "outcome": sub.outcome, "token_id": m.token_id(sub.outcome), "market_id": m.market_id,
        "tick_size": m.tick_size, "min_order_size": m.min_order_size, "kind": "snapshot",
        "title": m.title, "bids": bids, "asks": asks, "book_state": book_state,
        "server_seq": seq, "feed_state": feed_state, "stale_after_ms": stale_after_ms,
        "exchange_ts_ms": now_ms - 2, "ingest_ts_ms": now_ms,
    })


def delta_frame(sub: Subscription, changes: list[WireChange], *, seq: int, feed_state: str,
                book_state: str, stale_after_ms: int, ts_ms: int) -> bytes:
    """An ``orderbook_delta`` of ``sub`` (``changes`` may be empty: a state announcement)."""
    m = sub.market
    return orjson.dumps({
        "type": "orderbook_delta", "parsec_id": m.parsec_id, "exchange": m.exchange,
        "outcome": sub.outcome, "token_id": m.token_id(sub.outcome), "market_id": m.market_id,
        "changes": [{"side": s, "price": p, "size": z} for s, p, z in changes],
        "server_seq": seq, "feed_state": feed_state, "book_state": book_state,
        "stale_after_ms": stale_after_ms, "exchange_ts_ms": ts_ms - 2, "ingest_ts_ms": ts_ms,
    })


def activity_frame(sub: Subscription, fields: dict[str, Any], *, seq: int,
                   feed_state: str) -> bytes:
    """An ``activity`` frame (trade or fill) of ``sub``; ``fields`` holds the kind's fields."""
    return orjson.dumps({"type": "activity", **market_fields(sub), **fields,
                         "server_seq": seq, "feed_state": feed_state})
