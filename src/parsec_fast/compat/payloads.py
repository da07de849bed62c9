"""The SDK's public payload types: same names, fields, order and defaults as ``parsec-api`` 0.17.0.

``OrderbookSnapshot`` and ``StreamingOrderbookLevel`` are compiled (``parsec_fast._orderbook``,
``parsec_fast._levels``: an ``orderbook`` event per delta must cost little, and so must a level
read from it); they behave as the SDK's dataclasses (``dataclasses.fields``/``asdict``/
``astuple``/``replace``, ``==``, ``repr``, copy, pickle). The others are plain dataclasses, as
in the SDK.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from .._levellist import LevelList
from .._levels import StreamingOrderbookLevel
from .._orderbook import OrderbookSnapshot

__all__ = ["OrderbookSnapshot", "StreamingOrderbookLevel", "LevelList", "Activity", "WsError",
           "MarketSubscription", "activity_of"]


@dataclass
class Activity:
    """Payload of the ``"activity"`` event (public trades and own fills)."""

    parsec_id: str
    outcome: str
    exchange: str
    token_id: str
    market_id: str
    kind: str  # "trade" | "fill"
    price: float
    size: float
    side: Optional[str]
    aggressor_side: Optional[str]
    trade_id: Optional[str]
    fill_id: Optional[str]
    order_id: Optional[str]
    server_seq: int
    feed_state: str
    exchange_ts_ms: Optional[int]
    ingest_ts_ms: Optional[int]
    source_channel: str
    liquidity_role: Optional[str]  # "maker" | "taker"


@dataclass
class WsError:
    """Payload of the ``"error"`` event."""

    message: str
    code: Optional[int] = None
    parsec_id: Optional[str] = None


@dataclass
class MarketSubscription:
    """A market to subscribe to (argument of ``subscribe``/``unsubscribe``)."""

    parsec_id: str
    outcome: Optional[str] = None
    depth: Optional[int] = None


def activity_of(msg: Mapping[str, Any]) -> Activity:
    """An ``activity`` frame as the SDK reports it: every field passed through untouched, its
    defaults for absent keys (an explicit JSON null stays None)."""
    g = msg.get
    return Activity(g("parsec_id", ""), g("outcome", ""), g("exchange", ""), g("token_id", ""),
                    g("market_id", ""), g("kind", "trade"), g("price", 0), g("size", 0),
                    g("side"), g("aggressor_side"), g("trade_id"), g("fill_id"), g("order_id"),
                    g("server_seq", 0), g("feed_state", "healthy"), g("exchange_ts_ms"),
                    g("ingest_ts_ms"), g("source_channel", ""), g("liquidity_role"))
