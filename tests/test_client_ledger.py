"""The subscription ledger on its own: PROTOCOL.md §6 decisions with a fake clock, no I/O."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args, get_type_hints

import orjson
import pytest

from parsec_fast import ClientConfig, MarketSelector, SubscriptionLimitError
from parsec_fast._feed import FeedHandler
from parsec_fast.client.config import CONFIG_FIELDS, ClientOptions
from parsec_fast.client.ledger import ControlMessage, SubscriptionLedger
from parsec_fast.codes import ErrorCode
from parsec_fast.events import SubscriptionFailed
from parsec_fast.messages import ErrorMessage
from parsec_fast.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def __call__(self) -> float:
        return self.now

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        self.timers.append((self.now + delay, fn))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, fn in sorted(due, key=lambda t: t[0]):
            fn()


def make(coalesce_threshold: int = 2) -> tuple[SubscriptionLedger, FeedHandler, Clock,
                                                list[SubscriptionFailed]]:
    clock = Clock()
    feed = FeedHandler()
    failed: list[SubscriptionFailed] = []
    ledger = SubscriptionLedger(feed, RateLimiter(3, 1.0, margin=0.05, clock=clock),
                                schedule=clock.schedule, wake=lambda: None,
                                on_failed=failed.append, control_period=1.05,
                                coalesce_threshold=coalesce_threshold, request_timeout=10.0)
    return ledger, feed, clock, failed


def sels(*pids: str, depth: int | None = 10) -> list[MarketSelector]:
    return [MarketSelector.coerce(p).with_defaults(depth) for p in pids]


def frame(message: ControlMessage) -> dict[str, Any]:
    return orjson.loads(message.frame)  # type: ignore[no-any-return]


def snapshot(feed: FeedHandler, pid: str, seq: int = 1) -> None:
    feed.feed(orjson.dumps({"type": "orderbook", "parsec_id": pid, "outcome": "Yes",
                            "exchange": pid.split(":")[0], "market_id": pid.split(":")[1],
                            "token_id": "", "bids": [[0.4, 1.0]], "asks": [[0.6, 1.0]],
                            "server_seq": seq}))


def send_all(ledger: SubscriptionLedger, clock: Clock) -> list[ControlMessage]:
    out = []
    while (message := ledger.next_message(clock.now)) is not None:
        ledger.mark_sent(message, clock.now)
        out.append(message)
    return out


def test_everything_wanted_goes_out_in_one_batched_subscribe_with_defaults() -> None:
    ledger, feed, clock, _ = make()
    subs = ledger.add(sels("kalshi:A", "kalshi:B") + [MarketSelector(parsec_id="kalshi:C",
                                                                     outcome="No", depth=5)], [])
    assert [s.outcome for s in subs] == ["Yes", "Yes", "No"]
    assert ledger.has_work()  # the sender waits for a connection before it asks
    ledger.on_connected()
    (message,) = send_all(ledger, clock)
    assert frame(message) == {"type": "subscribe", "markets": [
        {"parsec_id": "kalshi:A", "outcome": "Yes", "depth": 10},
        {"parsec_id": "kalshi:B", "outcome": "Yes", "depth": 10},
        {"parsec_id": "kalshi:C", "outcome": "No", "depth": 5}]}
    assert ledger.sent_counts["subscribe"] == 1 and not ledger.has_work()


def test_many_invalid_books_are_resubscribed_in_one_pair() -> None:
    ledger, feed, clock, _ = make(coalesce_threshold=2)
    ledger.add(sels("kalshi:A", "kalshi:B", "kalshi:C"), [])
    ledger.on_connected()
    send_all(ledger, clock)
    for pid in ("kalshi:A", "kalshi:B", "kalshi:C"):
        snapshot(feed, pid)
    for sub in ledger.subscriptions():
        ledger.on_book_invalid(sub, "gap")
    unsub, sub = send_all(ledger, clock)
    assert frame(unsub)["type"] == "unsubscribe" and "depth" not in frame(unsub)["markets"][0]
    assert frame(sub)["type"] == "subscribe" and len(frame(sub)["markets"]) == 3
    assert ledger.coalesced == 1


def test_one_invalid_book_gets_one_resync_without_depth() -> None:
    ledger, feed, clock, _ = make()
    ledger.add(sels("kalshi:A"), [])
    ledger.on_connected()
    send_all(ledger, clock)
    ledger.on_book_invalid(ledger.subscriptions()[0], "gap")
    assert ledger.next_message(clock.now) is None  # its subscribe is still unanswered
    snapshot(feed, "kalshi:A")
    ledger.on_book_invalid(ledger.subscriptions()[0], "gap")
    (message,) = send_all(ledger, clock)
    assert frame(message) == {"type": "resync", "parsec_id": "kalshi:A", "outcome": "Yes"}


def test_rate_limited_messages_are_retried_after_a_full_window() -> None:
    ledger, feed, clock, _ = make()
    ledger.add(sels("kalshi:A"), [])
    ledger.on_connected()
    send_all(ledger, clock)
    ledger.on_error(ErrorMessage(ErrorCode.RATE_LIMITED, "rate limited", None), clock.now)
    assert ledger.rate_limited == 1 and ledger.limiter.delay() > 1.0
    assert ledger.next_message(clock.now) is None
    clock.advance(1.1)
    (message,) = send_all(ledger, clock)
    assert frame(message)["type"] == "subscribe"


def test_cap_reached_refuses_the_unanswered_and_then_everything_new() -> None:
    ledger, feed, clock, failed = make()
    ledger.add(sels("kalshi:A", "kalshi:B"), [])
    ledger.on_connected()
    send_all(ledger, clock)
    snapshot(feed, "kalshi:A")
    ledger.on_error(ErrorMessage(ErrorCode.MAX_SUBSCRIPTIONS,
                                 "max subscriptions reached (limit: 1, tier: free)", None),
                    clock.now)
    clock.advance(1.1)
    assert [f.parsec_id for f in failed] == ["kalshi:B"]
    assert [s.parsec_id for s in ledger.subscriptions()] == ["kalshi:A"]
    with pytest.raises(SubscriptionLimitError):
        ledger.add(sels("kalshi:C"), [])
    ledger.remove(sels("kalshi:A"), [])  # a slot is free again
    ledger.add(sels("kalshi:C"), [])


def test_a_late_3002_refuses_a_market_the_sweep_had_reset() -> None:
    # The subscribe went unanswered past request_timeout (the sweep marks it to be sent again),
    # then the 3002 arrives: the market is refused, not left waiting forever behind the cap.
    ledger, feed, clock, failed = make()
    ledger.add(sels("kalshi:A"), [])
    ledger.on_connected()
    send_all(ledger, clock)
    clock.advance(11)
    ledger.sweep(clock.now)
    ledger.on_error(ErrorMessage(ErrorCode.MAX_SUBSCRIPTIONS,
                                 "max subscriptions reached (limit: 0, tier: free)", None),
                    clock.now)
    clock.advance(1.1)
    assert [f.parsec_id for f in failed] == ["kalshi:A"] and not ledger.subscriptions()


def test_unanswered_requests_are_sent_again_after_request_timeout() -> None:
    ledger, feed, clock, _ = make()
    ledger.add(sels("kalshi:A"), [])
    ledger.on_connected()
    send_all(ledger, clock)
    clock.advance(5)
    ledger.sweep(clock.now)
    assert not ledger.has_work()
    clock.advance(6)
    ledger.sweep(clock.now)
    (message,) = send_all(ledger, clock)
    assert frame(message)["type"] == "subscribe"


def test_client_options_match_the_config_fields_and_types() -> None:
    assert set(ClientOptions.__annotations__) == CONFIG_FIELDS
    config_hints = get_type_hints(ClientConfig)
    option_hints = get_type_hints(ClientOptions)
    for name in CONFIG_FIELDS:
        assert set(get_args(option_hints[name]) or [option_hints[name]]) == \
            set(get_args(config_hints[name]) or [config_hints[name]]), name


@pytest.mark.parametrize("field, value", [("heartbeat_interval", 0), ("jitter", 1.0),
                                          ("max_message_size", 0), ("parser", "json"),
                                          ("open_timeout", -1), ("backoff_max", 0.5)])
def test_bad_options_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ClientConfig(**{field: value})  # type: ignore[arg-type]
