"""Seeded market simulator behind the local server.

The simulator owns one full-depth book per (market, outcome) and produces a deterministic stream of
events from a seed: book changes (mostly top-of-book size changes, some level adds/removals that
move levels in and out of a depth window), public trades and fills. Prices are held as integer
ticks so books stay exactly on their tick grid inside (0, 1] and are never crossed.

The server turns full-depth changes into per-subscription deltas trimmed to the subscribed depth
with :meth:`OutcomeBook.apply`, which returns the window changes for every requested depth.
"""
from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["MarketSpec", "OutcomeBook", "BookChange", "TradeEvent", "FillEvent", "SimEvent",
           "Simulator", "make_markets", "EXCHANGES", "TICK_SIZES"]

EXCHANGES = ("kalshi", "polymarket", "limitless", "opinion", "predictfun")
TICK_SIZES = (0.1, 0.01, 0.001, 0.0001)

#: One wire change: (side, price, size); size 0 removes the level.
WireChange = tuple[str, float, float]

_TITLES = ("Will BTC close above ${}k on Friday?", "Will ETH reach ${}?", "Fed cuts rates by {} bp?",
           "Will it rain {} mm in NYC tomorrow?", "Team {} wins the final?", "CPI above {}%?")
_CATEGORIES = (("Red", "Blue", "Green"), ("Alice", "Bob", "Carol", "Dave"),
               ("Under 2", "2 to 4", "Over 4"), ("Q1", "Q2", "Q3", "Q4", "Never"))


@dataclass(frozen=True)
class MarketSpec:
    """Static description of one simulated market.

    ``outcomes`` is ``("Yes", "No")`` for a binary market; a categorical market lists its own
    outcomes and requires one on subscribe.
    """

    exchange: str
    market_id: str
    title: str
    tick_size: float
    outcomes: tuple[str, ...] = ("Yes", "No")
    categorical: bool = False
    min_order_size: float | None = 1.0
    token_ids: tuple[str, ...] = ()

    @property
    def parsec_id(self) -> str:
        """``"{exchange}:{market_id}"``."""
        return f"{self.exchange}:{self.market_id}"

    def token_id(self, outcome: str) -> str:
        """Token id of ``outcome`` (``""`` when the venue has none)."""
        if not self.token_ids:
            return ""
        return self.token_ids[self.outcomes.index(outcome)]

    def resolve_outcome(self, outcome: str | None) -> str | None:
        """Canonical spelling of ``outcome`` (case-insensitive), the binary default ``"Yes"`` for
        ``None``, or ``None`` when the outcome is missing (categorical) or unknown."""
        if outcome is None:
            return None if self.categorical else "Yes"
        folded = outcome.casefold()
        for name in self.outcomes:
            if name.casefold() == folded:
                return name
        return None


def make_markets(count: int, seed: int = 0) -> list[MarketSpec]:
    """``count`` markets spread over :data:`EXCHANGES`, about a quarter of them categorical,
    with tick sizes cycling through :data:`TICK_SIZES`. Deterministic for a seed."""
    rng = random.Random(f"markets-{seed}")
    markets: list[MarketSpec] = []
    for i in range(count):
        exchange = EXCHANGES[i % len(EXCHANGES)]
        tick = TICK_SIZES[(i // len(EXCHANGES)) % len(TICK_SIZES)] if i >= len(EXCHANGES) \
            else TICK_SIZES[i % len(TICK_SIZES)]
        categorical = i % 4 == 3
        outcomes = _CATEGORIES[i % len(_CATEGORIES)] if categorical else ("Yes", "No")
        if exchange == "kalshi":
            market_id = f"KXSIM-{i:04d}"
            token_ids: tuple[str, ...] = ()
        else:
            market_id = str(500000 + i)
            token_ids = tuple(str(rng.randrange(10 ** 10, 10 ** 11)) for _ in outcomes)
        title = _TITLES[i % len(_TITLES)].format(rng.randrange(2, 200))
        min_size = None if i % 7 == 6 else 1.0
        markets.append(MarketSpec(exchange, market_id, title, tick, outcomes, categorical,
                                  min_size, token_ids))
    return markets


def _decimals(tick: float) -> int:
    return max(0, len(repr(tick).split(".")[1])) if "." in repr(tick) else 0


class OutcomeBook:
    """Full-depth book of one outcome, prices as integer ticks in ``1..n_ticks``.

    Each side keeps an ascending list of tick prices plus a dict of sizes: the best bid is the
    last bid, the best ask the first ask.
    """

    def __init__(self, tick_size: float) -> None:
        self.tick_size = tick_size
        self.n_ticks: int = round(1 / tick_size)
        self._ndigits = _decimals(tick_size)
        self.bid_ticks: list[int] = []
        self.ask_ticks: list[int] = []
        self.sizes: dict[tuple[str, int], float] = {}

    def price(self, ticks: int) -> float:
        """Wire price of a tick index."""
        return round(ticks * self.tick_size, self._ndigits)

    def _side(self, side: str) -> list[int]:
        return self.bid_ticks if side == "bid" else self.ask_ticks

    def rank(self, side: str, ticks: int) -> int:
        """Distance from the best level (0 = best) of a present or would-be level."""
        lst = self._side(side)
        if side == "bid":
            return len(lst) - bisect.bisect_right(lst, ticks)
        return bisect.bisect_left(lst, ticks)

    def level_at_rank(self, side: str, rank: int) -> int:
        """Tick price of the level ``rank`` places from the best."""
        lst = self._side(side)
        return lst[len(lst) - 1 - rank] if side == "bid" else lst[rank]

    def top(self, side: str, depth: int) -> list[list[float]]:
        """The best ``depth`` levels of a side as wire ``[price, size]`` pairs, best first."""
        lst = self._side(side)
        chosen = lst[:-depth - 1:-1] if side == "bid" else lst[:depth]
        return [[self.price(t), self.sizes[(side, t)]] for t in chosen]

    def apply(self, side: str, ticks: int, size: float,
              depths: Iterable[int] = ()) -> dict[int, list[WireChange]]:
        """Set the level at ``ticks`` to ``size`` (0 removes) and return, for each depth in
        ``depths``, the changes of the top-``depth`` window in order: the level itself when it is
        inside the window, a level pushed out (sent as size 0) or pulled in (sent as a set)."""
        lst = self._side(side)
        key = (side, ticks)
        present = key in self.sizes
        out: dict[int, list[WireChange]] = {d: [] for d in depths}
        price = self.price(ticks)
        if size > 0 and present:
            self.sizes[key] = size
            r = self.rank(side, ticks)
            for d, changes in out.items():
                if r < d:
                    changes.append((side, price, size))
        elif size > 0:
            r = self.rank(side, ticks)
            n_before = len(lst)
            for d, changes in out.items():
                if r < d:
                    changes.append((side, price, size))
                    if n_before >= d:  # the old last level of the window leaves it
                        pushed = self.level_at_rank(side, d - 1)
                        changes.append((side, self.price(pushed), 0.0))
            bisect.insort(lst, ticks)
            self.sizes[key] = size
        elif present:
            r = self.rank(side, ticks)
            lst.remove(ticks)
            del self.sizes[key]
            for d, changes in out.items():
                if r < d:
                    changes.append((side, price, 0.0))
                    if len(lst) >= d:  # the next level enters the window
                        pulled = self.level_at_rank(side, d - 1)
                        changes.append((side, self.price(pulled), self.sizes[(side, pulled)]))
        return out

    def best(self, side: str) -> int | None:
        """Tick price of the best level of a side, or ``None`` when the side is empty."""
        lst = self._side(side)
        if not lst:
            return None
        return lst[-1] if side == "bid" else lst[0]


@dataclass(frozen=True)
class BookChange:
    """Full-depth book changes of one outcome, applied in order."""

    parsec_id: str
    outcome: str
    changes: tuple[tuple[str, int, float], ...]  # (side, ticks, size)
    #: depth -> wire changes of the top-``depth`` window, for every depth being watched
    windows: dict[int, list[WireChange]] = field(default_factory=dict)


@dataclass(frozen=True)
class TradeEvent:
    """A public trade (its book effect comes as a separate :class:`BookChange`)."""

    parsec_id: str
    outcome: str
    price: float
    size: float
    trade_id: str
    aggressor_side: str


@dataclass(frozen=True)
class FillEvent:
    """A fill of the configured account's order."""

    parsec_id: str
    outcome: str
    price: float
    size: float
    fill_id: str
    order_id: str
    side: str
    liquidity_role: str


SimEvent = BookChange | TradeEvent | FillEvent


@dataclass
class _MarketState:
    spec: MarketSpec
    books: dict[str, OutcomeBook] = field(default_factory=dict)


class Simulator:
    """Deterministic random-walk simulator over a set of markets.

    ``step()`` returns the next events (one book change, or a trade followed by its book change,
    or a fill). Events are applied to the simulator's books before they are returned. Markets in
    ``paused`` (stalled, venue disconnected) are left untouched.
    """

    def __init__(self, markets: list[MarketSpec], seed: int = 0, *, max_levels: int = 120,
                 fill_probability: float = 0.01, trade_probability: float = 0.06) -> None:
        self.rng: random.Random = random.Random(seed)
        self.max_levels = max_levels
        self.fill_probability = fill_probability
        self.trade_probability = trade_probability
        self.markets: dict[str, _MarketState] = {}
        self.keys: list[tuple[str, str]] = []
        self.paused: set[str] = set()
        #: (parsec_id, outcome) -> {depth: number of watchers}; windows are computed for these
        self.watched: dict[tuple[str, str], dict[int, int]] = {}
        self._counter = 0
        self._windows: dict[int, list[WireChange]] = {}
        for spec in markets:
            state = _MarketState(spec)
            for outcome in spec.outcomes:
                book = OutcomeBook(spec.tick_size)
                self._seed_book(book)
                state.books[outcome] = book
                self.keys.append((spec.parsec_id, outcome))
            self.markets[spec.parsec_id] = state

    def spec(self, parsec_id: str) -> MarketSpec | None:
        """The market with this parsec_id, or ``None``."""
        state = self.markets.get(parsec_id)
        return state.spec if state else None

    def book(self, parsec_id: str, outcome: str) -> OutcomeBook:
        """The full-depth book of one outcome."""
        return self.markets[parsec_id].books[outcome]

    def watch(self, key: tuple[str, str], depth: int) -> None:
        """Compute top-``depth`` windows for ``key`` from now on (counted: pair with unwatch)."""
        depths = self.watched.setdefault(key, {})
        depths[depth] = depths.get(depth, 0) + 1

    def unwatch(self, key: tuple[str, str], depth: int) -> None:
        """Undo one :meth:`watch`."""
        depths = self.watched.get(key)
        if depths is None or depth not in depths:
            return
        depths[depth] -= 1
        if depths[depth] <= 0:
            del depths[depth]
        if not depths:
            del self.watched[key]

    def _size(self, book: OutcomeBook) -> float:
        # Heavy-tailed sizes with two decimals, like real venues; whole numbers on coarse ticks.
        raw = self.rng.lognormvariate(5.5, 1.2)
        return float(max(1, round(raw))) if book.tick_size >= 0.01 else round(max(raw, 1.0), 2)

    def _seed_book(self, book: OutcomeBook) -> None:
        n = book.n_ticks
        mid = self.rng.randint(max(2, n // 10), max(2, n - n // 10 - 1))
        spread = self.rng.randint(1, max(1, min(3, n // 20)))
        best_bid = max(1, mid - spread // 2)
        best_ask = min(n, best_bid + spread)
        depth = self.rng.randint(max(2, self.max_levels // 3), self.max_levels)
        t = best_bid
        while t >= 1 and len(book.bid_ticks) < depth:
            book.apply("bid", t, self._size(book))
            t -= 1 if n <= 100 or self.rng.random() < 0.8 else self.rng.randint(2, 4)
        t = best_ask
        while t <= n and len(book.ask_ticks) < depth:
            book.apply("ask", t, self._size(book))
            t += 1 if n <= 100 or self.rng.random() < 0.8 else self.rng.randint(2, 4)

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def step(self, keys: list[tuple[str, str]] | None = None) -> list[SimEvent]:
        """Advance one event on a random (market, outcome) among ``keys`` (default: all) that is not
        paused; return ``[]`` when every candidate is paused."""
        rng = self.rng
        pool = keys if keys is not None else self.keys
        if self.paused:
            pool = [k for k in pool if k[0] not in self.paused]
        if not pool:
            return []
        pid, outcome = pool[rng.randrange(len(pool))]
        book = self.markets[pid].books[outcome]
        self._windows = {d: [] for d in self.watched.get((pid, outcome), ())}
        roll = rng.random()
        if roll < self.fill_probability:
            return [self._fill(pid, outcome, book)]
        if roll < self.fill_probability + self.trade_probability:
            return self._trade(pid, outcome, book)
        return [BookChange(pid, outcome, self._book_move(book), self._windows)]

    def _apply_all(self, book: OutcomeBook,
                   changes: list[tuple[str, int, float]]) -> tuple[tuple[str, int, float], ...]:
        windows = self._windows
        for side, t, size in changes:
            for depth, wire in book.apply(side, t, size, windows.keys()).items():
                windows[depth].extend(wire)
        return tuple(changes)

    def _book_move(self, book: OutcomeBook) -> tuple[tuple[str, int, float], ...]:
        rng = self.rng
        side = "bid" if rng.random() < 0.5 else "ask"
        lst = book.bid_ticks if side == "bid" else book.ask_ticks
        roll = rng.random()
        if lst and roll < 0.70:
            # Top-of-book size change, mostly at the best level.
            r = min(len(lst) - 1, int(rng.expovariate(1.5)))
            t = book.level_at_rank(side, r)
            old = book.sizes[(side, t)]
            new = max(1.0, round(old * rng.uniform(0.5, 1.6), 2))
            if book.tick_size >= 0.01:
                new = float(round(new))
            return self._apply_all(book, [(side, t, new)])
        if roll < 0.85 or len(lst) < 2:
            free = self._free_tick(book, side)
            if free is not None and len(lst) < self.max_levels:
                return self._apply_all(book, [(side, free, self._size(book))])
        if len(lst) >= 2:
            # Remove a level, nearer the top more often (moves levels across depth windows).
            r = min(len(lst) - 1, int(rng.expovariate(0.08)))
            return self._apply_all(book, [(side, book.level_at_rank(side, r), 0.0)])
        best = book.best(side)
        return self._apply_all(book, [(side, best, self._size(book))]) if best is not None else ()

    def _free_tick(self, book: OutcomeBook, side: str) -> int | None:
        """A tick with no level on ``side`` that keeps the book uncrossed: inside the spread half
        the time, otherwise somewhere in the upper part of the side."""
        rng = self.rng
        best_bid, best_ask = book.best("bid"), book.best("ask")
        lo_bid, hi_ask = 1, book.n_ticks
        if side == "bid":
            hi = (best_ask - 1) if best_ask is not None else book.n_ticks
            lo = max(lo_bid, hi - 4 * self.max_levels)
        else:
            lo = (best_bid + 1) if best_bid is not None else 1
            hi = min(hi_ask, lo + 4 * self.max_levels)
        if lo > hi:
            return None
        for _ in range(8):
            if rng.random() < 0.5:
                t = hi - int(rng.expovariate(0.5)) if side == "bid" else lo + int(rng.expovariate(0.5))
            else:
                t = rng.randint(lo, hi)
            if lo <= t <= hi and (side, t) not in book.sizes:
                return t
        return None

    def _trade(self, pid: str, outcome: str, book: OutcomeBook) -> list[SimEvent]:
        rng = self.rng
        aggressor = "buy" if rng.random() < 0.5 else "sell"
        side = "ask" if aggressor == "buy" else "bid"
        t = book.best(side)
        if t is None:
            return [BookChange(pid, outcome, self._book_move(book), self._windows)]
        level = book.sizes[(side, t)]
        take = round(min(level, max(1.0, level * rng.uniform(0.05, 1.0))), 2)
        remaining = round(level - take, 2)
        # Keep at least one level per side so the book never empties.
        if remaining <= 0 and len(book._side(side)) == 1:
            remaining = self._size(book)
        trade = TradeEvent(pid, outcome, book.price(t), take, self._next_id("trade"), aggressor)
        change = BookChange(pid, outcome, self._apply_all(book, [(side, t, max(remaining, 0.0))]),
                            self._windows)
        return [trade, change]

    def _fill(self, pid: str, outcome: str, book: OutcomeBook) -> FillEvent:
        rng = self.rng
        side = "buy" if rng.random() < 0.5 else "sell"
        t = book.best("ask" if side == "buy" else "bid") or 1
        return FillEvent(pid, outcome, book.price(t), float(rng.randint(1, 50)),
                         self._next_id("fill"), self._next_id("order"), side,
                         "taker" if rng.random() < 0.6 else "maker")


def customer_id_for(key: str) -> str:
    """Stable customer id derived from an API key or terminal token."""
    return "cust_" + hashlib.sha256(key.encode()).hexdigest()[:12]
