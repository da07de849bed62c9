"""Validation of client control messages, and the two per-connection allowances on them.

- :func:`resolve_selector`, :func:`message_lists`, :func:`parse_address`: a selector or list that
  does not validate raises :class:`BadRequest`, which the connection answers with an ``error``.
- :func:`plan_selectors` turns a message's ``markets`` and ``addresses`` into its distinct names
  (duplicates, after outcome canonicalisation, are answered once), resolving in slices so that a
  huge list never holds the event loop, and stops as soon as the names outnumber the account's
  cap (the rest of the message can never be subscribed).
- :class:`ControlRateLimiter`: subscribe / unsubscribe / resync messages per window (3001).
- :class:`InvalidMessageBudget`: how many refused messages a connection may send before it is
  dropped (a peer that floods garbage makes us parse and answer every message).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from ..codes import ADDRESS_EXCHANGES, DEFAULT_DEPTH, ErrorCode
from .simulator import MarketSpec, Simulator

__all__ = ["BadRequest", "resolve_selector", "message_lists", "parse_address", "Plan",
           "plan_selectors", "ControlRateLimiter", "InvalidMessageBudget", "SELECTORS_PER_SLICE"]

#: Selectors resolved between two yields of :func:`plan_selectors` (about 0.5 ms of work).
SELECTORS_PER_SLICE = 256


class BadRequest(Exception):
    """A control message or selector the server answers with an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, parsec_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parsec_id = parsec_id

    @property
    def identity(self) -> tuple[int, str, str | None]:
        """What the error frame says: two equal identities are answered once per message."""
        return (int(self.code), self.message, self.parsec_id)


def resolve_selector(sel: Any, simulator: Simulator, max_depth: int, *,
                     with_depth: bool) -> tuple[MarketSpec, str, int]:
    """Validate a market selector; return (market, canonical outcome, clamped depth)."""
    if not isinstance(sel, dict):
        raise BadRequest(ErrorCode.INVALID_MESSAGE, "market selector must be an object")
    pid = sel.get("parsec_id")
    exchange, market_id = sel.get("exchange"), sel.get("market_id")
    if pid is not None:
        if not isinstance(pid, str) or ":" not in pid:
            raise BadRequest(ErrorCode.INVALID_MESSAGE,
                             "parsec_id must be a string 'exchange:market_id'")
        if (exchange is not None or market_id is not None) and pid != f"{exchange}:{market_id}":
            raise BadRequest(ErrorCode.INVALID_MESSAGE,
                             "parsec_id and exchange/market_id disagree", pid)
    elif isinstance(exchange, str) and isinstance(market_id, str) and exchange and market_id:
        pid = f"{exchange}:{market_id}"
    else:
        raise BadRequest(ErrorCode.INVALID_MESSAGE,
                         "selector needs parsec_id or exchange and market_id strings")
    outcome = sel.get("outcome")
    if outcome is not None and not isinstance(outcome, str):
        raise BadRequest(ErrorCode.INVALID_MESSAGE, "outcome must be a string", pid)
    depth = DEFAULT_DEPTH
    if with_depth and sel.get("depth") is not None:
        depth = sel["depth"]
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise BadRequest(ErrorCode.INVALID_MESSAGE, "depth must be a positive integer", pid)
    depth = min(depth, max_depth)
    market = simulator.spec(pid)
    if market is None:
        raise BadRequest(ErrorCode.MARKET_NOT_FOUND, "market not found", pid)
    canonical = market.resolve_outcome(outcome)
    if canonical is None:
        if outcome is None:
            raise BadRequest(ErrorCode.INVALID_OUTCOME, "outcome required for categorical market "
                             f"(one of {', '.join(market.outcomes)})", pid)
        raise BadRequest(ErrorCode.INVALID_OUTCOME, f"invalid outcome {outcome!r} "
                         f"(one of {', '.join(market.outcomes)})", pid)
    return market, canonical, depth


def message_lists(msg: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The ``markets`` and ``addresses`` lists of a subscribe / unsubscribe (one non-empty)."""
    markets, addresses = msg.get("markets"), msg.get("addresses")
    markets = [] if markets is None else markets
    addresses = [] if addresses is None else addresses
    if not isinstance(markets, list) or not isinstance(addresses, list):
        raise BadRequest(ErrorCode.INVALID_MESSAGE, "markets and addresses must be lists")
    if not markets and not addresses:
        raise BadRequest(ErrorCode.INVALID_MESSAGE, "markets or addresses must be non-empty")
    return markets, addresses


def parse_address(item: Any) -> tuple[str, str]:
    """Validate an address selector; return (exchange, address)."""
    if not isinstance(item, dict) or not isinstance(item.get("exchange"), str) \
            or not isinstance(item.get("address"), str) or not item["address"]:
        raise BadRequest(ErrorCode.INVALID_MESSAGE,
                         "address selector needs exchange and address strings")
    if item["exchange"] not in ADDRESS_EXCHANGES:
        raise BadRequest(ErrorCode.INVALID_MESSAGE, f"address subscriptions are not available "
                         f"on {item['exchange']!r} (one of {', '.join(ADDRESS_EXCHANGES)})")
    return (item["exchange"], item["address"])


@dataclass
class Plan:
    """The distinct names of one control message, in order of first appearance."""

    markets: list[tuple[MarketSpec, str, int] | BadRequest] = field(default_factory=list)
    addresses: list[tuple[str, str] | BadRequest] = field(default_factory=list)
    #: True when the message names more distinct markets + addresses than the cap (the lists
    #: then hold the first ``cap`` names only).
    over_cap: bool = False


def plan_selectors(markets: list[Any], addresses: list[Any], simulator: Simulator, *,
                   max_depth: int, cap: int, with_depth: bool) -> Generator[None, None, Plan]:
    """Resolve a message's selectors into a :class:`Plan`, yielding every
    :data:`SELECTORS_PER_SLICE` selectors (the caller lets the loop run there).

    Two selectors naming the same (parsec_id, canonical outcome), the same address, or earning the
    same error, are one name: the first occurrence counts (its depth too), later ones are skipped.
    Resolution stops at the first name past ``cap``.
    """
    plan = Plan()
    seen: set[object] = set()
    done = 0
    for sel in markets:
        done += 1
        if done % SELECTORS_PER_SLICE == 0:
            yield
        item: tuple[MarketSpec, str, int] | BadRequest
        try:
            item = resolve_selector(sel, simulator, max_depth, with_depth=with_depth)
            name: object = ("market", item[0].parsec_id, item[1])
        except BadRequest as exc:
            item, name = exc, ("error", exc.identity)
        if name in seen:
            continue
        if len(seen) >= cap:
            plan.over_cap = True
            return plan
        seen.add(name)
        plan.markets.append(item)
    for raw in addresses:
        done += 1
        if done % SELECTORS_PER_SLICE == 0:
            yield
        addr: tuple[str, str] | BadRequest
        try:
            addr = parse_address(raw)
            name = ("address", addr)
        except BadRequest as exc:
            addr, name = exc, ("error", exc.identity)
        if name in seen:
            continue
        if len(seen) >= cap:
            plan.over_cap = True
            return plan
        seen.add(name)
        plan.addresses.append(addr)
    return plan


class ControlRateLimiter:
    """At most ``rate`` control messages per sliding ``window`` seconds."""

    def __init__(self, rate: int, window: float) -> None:
        self.rate = rate
        self.window = window
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count one message at ``now``; False if it is over the rate (and then not counted)."""
        times = self._times
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.rate:
            return False
        times.append(now)
        return True


class InvalidMessageBudget:
    """A token bucket of refused messages: ``burst`` tokens, refilled at ``rate`` per second.

    Each message the server refuses as a whole (malformed JSON, unknown type, auth required,
    rate limited, bad list, over the cap) spends one token; :meth:`spend` returns False once the
    bucket is empty, and the connection is then dropped. ``burst=None`` disables the budget.
    """

    def __init__(self, burst: int | None, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens: float = float(burst) if burst is not None else 0.0
        self._last: float | None = None
        #: Refused messages seen, over the connection's life.
        self.spent: int = 0

    def spend(self, now: float) -> bool:
        """Spend one token at ``now``; False when the budget is exhausted."""
        self.spent += 1
        if self.burst is None:
            return True
        if self._last is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self._last) * self.rate)
        self._last = now
        self.tokens -= 1.0
        return self.tokens >= 0.0
