"""Book and venue state of the local server: ``book_state`` per book, ``feed_state`` per exchange,
stalled markets, unavailable exchanges, and which markets the simulator must leave alone.

Times are event-loop times (``loop.time()``), passed in by the callers.
"""
from __future__ import annotations

from .simulator import Simulator
from .subscription import BookKey

__all__ = ["MarketStatus", "FEED_STATES"]

FEED_STATES = ("healthy", "degraded", "disconnected")


class MarketStatus:
    """What every frame about a book or a venue reports, and the pauses faults put on markets."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        #: Exchanges whose new subscriptions fail with 2003.
        self.unavailable_exchanges: set[str] = set()
        self._book_state: dict[BookKey, str] = {}
        self._last_update: dict[BookKey, float] = {}
        self._feed_state: dict[str, str] = {}
        self._disconnected: set[str] = set()
        self._stalled_until: dict[str, float] = {}

    # -- books -------------------------------------------------------------------------------------
    def book_state(self, key: BookKey) -> str:
        """``fresh`` or ``stale`` for a market outcome."""
        return self._book_state.get(key, "fresh")

    def track(self, key: BookKey, now: float) -> None:
        """Start the staleness clock of a newly watched book (kept if already running)."""
        self._last_update.setdefault(key, now)

    def updated(self, key: BookKey, now: float) -> bool:
        """Record an update of ``key``; True if that turned it from ``stale`` to ``fresh``."""
        self._last_update[key] = now
        if self._book_state.get(key) == "stale":
            self._book_state[key] = "fresh"
            return True
        return False

    def newly_stale(self, keys: list[BookKey], now: float, limit: float) -> list[BookKey]:
        """Mark ``stale`` the fresh books of ``keys`` not updated within ``limit`` seconds; return
        them (each is to be announced in-band)."""
        out = []
        for key in keys:
            if self.book_state(key) == "fresh" and now - self._last_update.get(key, now) > limit:
                self._book_state[key] = "stale"
                out.append(key)
        return out

    # -- venues ------------------------------------------------------------------------------------
    def feed_state(self, exchange: str) -> str:
        """``healthy``, ``degraded`` or ``disconnected`` for a venue."""
        return self._feed_state.get(exchange, "healthy")

    def exchanges(self) -> set[str]:
        """Every exchange with a simulated market."""
        return {st.spec.exchange for st in self.simulator.markets.values()}

    def set_feed_state(self, exchanges: set[str], state: str, now: float) -> None:
        """Set the venue link of ``exchanges``; a ``disconnected`` venue's markets stop moving."""
        if state not in FEED_STATES:
            raise ValueError(f"feed state {state!r}")
        for ex in exchanges:
            self._feed_state[ex] = state
            if state == "disconnected":
                self._disconnected.add(ex)
            else:
                self._disconnected.discard(ex)
        self.update_paused(now)

    def stall(self, parsec_id: str, until: float, now: float) -> None:
        """Freeze a market until loop time ``until`` (call :meth:`update_paused` then)."""
        self._stalled_until[parsec_id] = until
        self.update_paused(now)

    def update_paused(self, now: float) -> None:
        """Recompute the simulator's paused markets: stalled ones and those of disconnected
        venues."""
        for pid, until in list(self._stalled_until.items()):
            if until <= now:
                del self._stalled_until[pid]
        paused = set(self._stalled_until)
        for pid, state in self.simulator.markets.items():
            if state.spec.exchange in self._disconnected:
                paused.add(pid)
        self.simulator.paused = paused
