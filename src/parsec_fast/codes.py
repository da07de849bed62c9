"""Protocol vocabulary shared by the client, the protocol layer and the local server
(see ../shared/PROTOCOL.md §3)."""
from __future__ import annotations

from enum import IntEnum

__all__ = ["ErrorCode", "DEFAULT_WS_URL", "DEFAULT_DEPTH", "MAX_DEPTH", "CONTROL_MESSAGES_PER_SECOND",
           "AUTH_TIMEOUT_S", "BOOK_STATES", "FEED_STATES", "ADDRESS_EXCHANGES", "TIER_LIMITS"]

DEFAULT_WS_URL = "wss://api.parsecapi.com/ws"
DEFAULT_DEPTH = 50
MAX_DEPTH = 100
CONTROL_MESSAGES_PER_SECOND = 3
AUTH_TIMEOUT_S = 15.0

BOOK_STATES = ("fresh", "stale", "needs_refresh")
FEED_STATES = ("healthy", "degraded", "disconnected")
ADDRESS_EXCHANGES = ("polymarket", "limitless", "opinion", "predictfun")

#: tier -> (max subscriptions per account, max depth per side)
TIER_LIMITS = {"free": (3, 10), "pro": (500, 100), "scale": (2000, 100)}


class ErrorCode(IntEnum):
    """Codes of ``error`` / ``auth_error`` frames."""

    AUTH_REQUIRED = 1001        # control message before auth, or a second auth
    INVALID_CREDENTIALS = 1002  # bad api key or terminal token (auth_error)
    INVALID_MESSAGE = 2001      # malformed JSON, unknown type, bad selector
    MARKET_NOT_FOUND = 2002
    EXCHANGE_UNAVAILABLE = 2003
    INVALID_OUTCOME = 2005
    RATE_LIMITED = 3001         # subscribe/unsubscribe/resync over 3 per second
    MAX_SUBSCRIPTIONS = 3002
