"""The control-message limiter, driven by a fake clock."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsec_fast.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(clock: FakeClock, rate: int = 3, margin: float = 0.0) -> RateLimiter:
    return RateLimiter(rate, 1.0, margin=margin, clock=clock, sleep=clock.sleep)


def test_burst_then_each_token_returns_one_window_after_use() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    assert [lim.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert lim.delay() == pytest.approx(1.0)
    clock.now += 0.5
    assert not lim.try_acquire() and lim.delay() == pytest.approx(0.5)
    clock.now += 0.5   # all three were spent at once: all three return at once
    assert [lim.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.4
    assert lim.delay() == pytest.approx(0.6)


def test_a_plain_token_bucket_would_allow_five_per_second_this_does_not() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    sent = []
    for _ in range(300):                  # try every 10 ms for 3 s
        if lim.try_acquire():
            sent.append(clock.now)
        clock.now += 0.01
    for i in range(len(sent) - 3):
        assert sent[i + 3] - sent[i] >= 1.0 - 1e-9
    assert len(sent) == 9


@settings(max_examples=100)
@given(st.lists(st.floats(min_value=0.0, max_value=0.7), min_size=1, max_size=60),
       st.integers(min_value=1, max_value=5), st.floats(min_value=0.0, max_value=0.1))
def test_never_more_than_rate_in_any_window(gaps: list[float], rate: int, margin: float) -> None:
    clock = FakeClock()
    lim = limiter(clock, rate, margin)
    granted = []
    for gap in gaps:
        clock.now += gap
        if lim.try_acquire():
            granted.append(clock.now)
    for i in range(len(granted) - rate):
        assert granted[i + rate] - granted[i] >= 1.0 + margin - 1e-9


async def test_acquire_sleeps_until_a_token_returns() -> None:
    clock = FakeClock()
    lim = limiter(clock, margin=0.05)
    for _ in range(3):
        await lim.acquire()
    assert clock.slept == []
    await lim.acquire()
    assert clock.slept == [pytest.approx(1.05, abs=1e-5)]
    assert list(lim.history)[-1] - list(lim.history)[0] == pytest.approx(1.05, abs=1e-5)


async def test_penalize_blocks_every_token_for_the_given_time() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    assert lim.try_acquire()
    lim.penalize(2.0)
    assert lim.delay() == pytest.approx(2.0)
    clock.now += 1.99
    assert not lim.try_acquire()
    clock.now += 0.02
    assert [lim.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_validation() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(3, 0.0)
