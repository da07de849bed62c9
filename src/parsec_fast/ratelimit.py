"""Rate limiter for control messages (subscribe / unsubscribe / resync: 3 per second).

The server counts control messages in a sliding window ("at most 3 in any 1 s"). A classic
token bucket with burst 3 and refill 3/s is *not* enough: it allows a burst of 3 and then one
more every 1/3 s, i.e. 5 messages inside one second. So this is a token bucket whose tokens
come back individually, each exactly ``window`` (+ a safety ``margin`` for network jitter)
after it was spent — equivalent to a sliding-window log, and never over the server's limit.

The clock (and the sleep used by :meth:`RateLimiter.acquire`) are injectable for tests.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``rate`` acquisitions in any ``window + margin`` seconds.

    ``try_acquire()`` takes a token if one is free; ``delay()`` says how long until one is;
    ``await acquire()`` sleeps until it gets one. Not thread-safe (one event loop).
    """

    def __init__(self, rate: int = 3, window: float = 1.0, *, margin: float = 0.05,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if not isinstance(rate, int) or rate < 1:
            raise ValueError(f"rate must be an int >= 1, got {rate!r}")
        if window <= 0 or margin < 0:
            raise ValueError(f"need window > 0 and margin >= 0, got {window!r}, {margin!r}")
        self.rate: int = rate
        self.period: float = window + margin
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[float] = deque()  # times of the last `rate` acquisitions
        #: Every acquisition time (bounded: the last 10,000), for tests and diagnostics.
        self.history: deque[float] = deque(maxlen=10_000)

    def _expire(self, now: float) -> None:
        spent = self._spent
        while spent and spent[0] + self.period <= now:  # same expression as in delay()
            spent.popleft()

    def delay(self) -> float:
        """Seconds until a token is free (0.0 if one is free now)."""
        now = self._clock()
        self._expire(now)
        if len(self._spent) < self.rate:
            return 0.0
        return max(0.0, self._spent[0] + self.period - now)

    def try_acquire(self) -> bool:
        """Take a token now if one is free; return whether it did."""
        now = self._clock()
        self._expire(now)
        if len(self._spent) >= self.rate:
            return False
        self._spent.append(now)
        self.history.append(now)
        return True

    async def wait(self) -> None:
        """Sleep until a token is free, without taking it."""
        for _ in range(1_000_000):  # bounded; each pass sleeps until the oldest token returns
            d = self.delay()
            if d <= 0.0:
                return
            # +1 µs: sleeping exactly `d` can land one float ulp short of the deadline.
            await self._sleep(d + 1e-6)
        raise RuntimeError("RateLimiter.wait: clock does not advance")

    async def acquire(self) -> None:
        """Sleep until a token is free, then take it."""
        for _ in range(1_000_000):
            await self.wait()
            if self.try_acquire():
                return
        raise RuntimeError("RateLimiter.acquire: clock does not advance")

    def penalize(self, seconds: float) -> None:
        """Treat every token as spent now and unavailable for ``seconds`` (after the server
        said 3001: its window and ours disagree, so back off for a full window)."""
        now = self._clock()
        until = now + seconds - self.period  # a token spent at `until` returns at now+seconds
        self._spent = deque([max(until, t) for t in self._spent] +
                            [until] * (self.rate - len(self._spent)))
