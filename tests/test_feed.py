"""Unit tests of the compiled feed handler (parsec_fast._feed.FeedHandler).

Every behaviour that does not depend on the parser runs on both parsers ("native": scanner with
orjson fallback, "orjson": orjson only). Frames are built with orjson.dumps from dicts, so the
values asserted are exactly the ones on the wire.
"""
from __future__ import annotations

import orjson
import pytest

from parsec_fast._feed import FeedHandler, Subscription
from parsec_fast.errors import ProtocolError

PARSERS = ["native", "orjson"]
PID = "polymarket:572473"
PID2 = "kalshi:KXBTC-26MAR10"
_MISSING = object()

STAT_KEYS = {"frames", "bytes", "native_frames", "orjson_frames", "snapshots", "deltas_applied",
             "duplicates", "gaps", "dropped", "no_snapshot", "rejected", "unrouted",
             "protocol_errors", "activity", "slow_reader"}


# ---------------------------------------------------------------------------------------------
# helpers


class Recorder:
    """Installs every callback on a FeedHandler and records what it hears, in order."""

    def __init__(self, fh: FeedHandler) -> None:
        self.events: list[tuple] = []
        self.seen_seq: list[tuple[str, int | None]] = []
        fh.on_message = lambda obj: self.events.append(("message", obj.get("type")))
        fh.on_book_updated = self._updated
        fh.on_book_state = lambda sub, what, reason: self.events.append(
            ("state", sub.parsec_id, sub.outcome, what, reason))
        fh.on_protocol_error = lambda err: self.events.append(("protocol_error", type(err), str(err)))
        self.messages: list[dict] = []

    def _updated(self, sub: Subscription) -> None:
        self.events.append(("updated", sub.parsec_id, sub.outcome, sub.book.seq))

    def take(self) -> list[tuple]:
        out, self.events = self.events, []
        return out

    def states(self) -> list[tuple[str, str]]:
        """(what, reason) of the book-state events, consumed."""
        return [(e[3], e[4]) for e in self.take() if e[0] == "state"]


def make(parser: str, activity_seq: str = "shared", **kw) -> tuple[FeedHandler, Recorder]:
    fh = FeedHandler(parser=parser, activity_seq=activity_seq, **kw)
    return fh, Recorder(fh)


def _common(pid, outcome) -> dict:
    d = {"parsec_id": pid, "exchange": pid.partition(":")[0], "token_id": "50310842821",
         "market_id": pid.partition(":")[2]}
    if outcome is not _MISSING:
        d["outcome"] = outcome
    return d


def snap(seq=100, bids=((0.65, 1000.0), (0.64, 2500.0)), asks=((0.66, 800.0), (0.67, 1500.0)),
         pid=PID, outcome="Yes", **extra) -> bytes:
    d = {"type": "orderbook", **_common(pid, outcome), "tick_size": 0.001, "kind": "snapshot",
         "bids": [list(b) for b in bids], "asks": [list(a) for a in asks], "server_seq": seq,
         "book_state": "fresh", "feed_state": "healthy", "stale_after_ms": 5000}
    d.update(extra)
    return orjson.dumps({k: v for k, v in d.items() if v is not _MISSING})


def delta(seq, changes=(("bid", 0.65, 900.0),), pid=PID, outcome="Yes", **extra) -> bytes:
    d = {"type": "orderbook_delta", **_common(pid, outcome),
         "changes": [{"side": s, "price": p, "size": z} for s, p, z in changes],
         "server_seq": seq, "feed_state": "healthy", "book_state": "fresh", "stale_after_ms": 5000}
    d.update(extra)
    return orjson.dumps({k: v for k, v in d.items() if v is not _MISSING})


def activity(seq, pid=PID, outcome="Yes", kind="trade") -> bytes:
    return orjson.dumps({"type": "activity", **_common(pid, outcome), "kind": kind, "price": 0.65,
                         "size": 100.0, "trade_id": f"t{seq}", "side": "buy", "server_seq": seq,
                         "feed_state": "healthy"})


def levels(sub: Subscription) -> tuple[list, list]:
    return sub.book.bids(), sub.book.asks()


SNAP_LEVELS = ([(0.65, 1000.0), (0.64, 2500.0)], [(0.66, 800.0), (0.67, 1500.0)])


def ready(parser, activity_seq="shared", **kw):
    """Handler with one subscription (PID, "Yes") holding the default snapshot at seq 100."""
    fh, rec = make(parser, activity_seq, **kw)
    sub = fh.add(PID, "Yes")
    fh.feed(snap(100))
    fh.flush()
    rec.take()
    return fh, rec, sub


# ---------------------------------------------------------------------------------------------
# construction and subscriptions


def test_constructor_arguments():
    fh = FeedHandler()
    assert (fh.parser, fh.activity_seq) == ("native", "shared")
    fh = FeedHandler(parser="orjson", activity_seq="separate")
    assert (fh.parser, fh.activity_seq) == ("orjson", "separate")
    with pytest.raises(ValueError, match="parser"):
        FeedHandler(parser="json")
    with pytest.raises(ValueError, match="activity_seq"):
        FeedHandler(activity_seq="both")
    with pytest.raises(ValueError, match="max_levels"):
        FeedHandler(max_levels=0)


@pytest.mark.parametrize("parser", PARSERS)
def test_add_get_remove(parser):
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    assert isinstance(sub, Subscription)
    assert (sub.parsec_id, sub.outcome) == (PID, "Yes")
    assert fh.add(PID, "YES") is sub            # idempotent, case-insensitive
    assert fh.get(PID, "yes") is sub
    assert fh.get(PID, "No") is None
    assert fh.get(PID2, "Yes") is None
    no = fh.add(PID, "No")
    assert no is not sub
    assert {(s.parsec_id, s.outcome) for s in fh.subscriptions()} == {(PID, "Yes"), (PID, "No")}
    # a new subscription starts empty and invalid, "no_snapshot"
    assert sub.book.seq is None and not sub.book.is_valid
    assert sub.invalid_reason == "no_snapshot"
    assert not sub.trustworthy
    assert sub.why_not() == "book invalid (no_snapshot); awaiting a snapshot"
    assert fh.remove(PID, "yEs") is True
    assert fh.remove(PID, "Yes") is False
    assert fh.get(PID, "Yes") is None
    assert fh.subscriptions() == [no]
    # frames for the removed subscription are unrouted; the remaining one still routes
    fh.feed(snap(1))
    fh.feed(snap(7, outcome="No"))
    assert fh.stats["unrouted"] == 1
    assert no.book.seq == 7 and no.book.is_valid
    assert sub.book.seq is None
    assert [e[:4] for e in rec.take()] == [("state", PID, "No", "recovered")]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("wire_outcome", ["YES", "yes", "Yes", "yEs"])
def test_outcome_case_insensitive(parser, wire_outcome):
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    fh.feed(snap(100, outcome=wire_outcome))
    assert sub.book.seq == 100 and sub.book.is_valid
    fh.feed(delta(101, outcome=wire_outcome.swapcase()))
    assert sub.book.seq == 101
    assert fh.stats["unrouted"] == 0


@pytest.mark.parametrize("parser", PARSERS)
def test_non_ascii_outcome_routes_byte_exact(parser):
    # Only ASCII letters are case-folded: "É" and "é" are different outcomes.
    fh, _ = make(parser)
    sub = fh.add(PID, "Élection")
    fh.feed(snap(5, outcome="éLECTION"))
    assert fh.stats["unrouted"] == 1 and sub.book.seq is None
    fh.feed(snap(6, outcome="ÉLECTION"))
    assert sub.book.seq == 6


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("outcome", [_MISSING, None])
def test_missing_or_null_outcome_is_yes(parser, outcome):
    fh, _ = make(parser)
    yes = fh.add(PID, "yes")
    no = fh.add(PID, "No")
    fh.feed(snap(100, outcome=outcome))
    fh.feed(delta(101, outcome=outcome))
    assert yes.book.seq == 101 and yes.book.bids()[0] == (0.65, 900.0)
    assert no.book.seq is None


@pytest.mark.parametrize("parser", PARSERS)
def test_unknown_market_counts_unrouted(parser):
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    fh.feed(snap(1, pid=PID2))
    fh.feed(delta(2, pid=PID2))
    fh.feed(snap(1, outcome="No"))
    fh.feed(snap(1, pid=PID + "0"))         # a prefix of the frame's id is not a match
    fh.feed(snap(1, pid=PID[:-1]))
    fh.flush()
    st = fh.stats
    assert st["unrouted"] == 5
    assert st["snapshots"] == 0 and st["protocol_errors"] == 0
    assert rec.take() == []
    assert sub.book.seq is None


@pytest.mark.parametrize("parser", PARSERS)
def test_many_subscriptions_route_after_table_growth(parser):
    fh, _ = make(parser)
    subs = [fh.add(f"polymarket:{i}", "Yes" if i % 2 else "No") for i in range(300)]
    for i, sub in enumerate(subs):
        fh.feed(snap(1000 + i, pid=f"polymarket:{i}", outcome="yes" if i % 2 else "NO"))
    assert [s.book.seq for s in subs] == [1000 + i for i in range(300)]
    assert fh.stats["unrouted"] == 0
    for i in range(0, 300, 3):
        assert fh.remove(f"polymarket:{i}", "Yes" if i % 2 else "No")
    for i, sub in enumerate(subs):
        fh.feed(delta(1001 + i, pid=f"polymarket:{i}", outcome="Yes" if i % 2 else "No"))
    assert fh.stats["unrouted"] == 100
    assert [s.book.seq for s in subs] == [1000 + i + (i % 3 != 0) for i in range(300)]


# ---------------------------------------------------------------------------------------------
# snapshots, deltas, coalescing


@pytest.mark.parametrize("parser", PARSERS)
def test_snapshot_recovers(parser):
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    fh.feed(snap(1234))
    assert rec.take() == [("state", PID, "Yes", "recovered", "snapshot")]
    assert sub.book.seq == 1234 and sub.book.is_valid
    assert levels(sub) == SNAP_LEVELS
    assert sub.invalid_reason is None
    assert sub.trustworthy and sub.why_not() is None
    assert sub.stale_after_ms == 5000
    assert sub.last_frame_ns > 0
    # a second snapshot on a valid book replaces it silently (no "recovered"), any seq
    fh.feed(snap(17, bids=[(0.5, 1.0)], asks=[]))
    assert rec.take() == []
    assert sub.book.seq == 17
    assert levels(sub) == ([(0.5, 1.0)], [])
    fh.flush()
    assert rec.take() == [("updated", PID, "Yes", 17)]
    assert fh.stats["snapshots"] == 2


@pytest.mark.parametrize("parser", PARSERS)
def test_delta_applied_and_coalesced(parser):
    fh, rec, sub = ready(parser)
    fh.add(PID2, "Yes")
    fh.feed(snap(50, pid=PID2))
    rec.take()
    fh.feed(delta(101, [("bid", 0.65, 900.0), ("ask", 0.66, 0.0)]))
    fh.feed(delta(51, [("ask", 0.665, 10.0)], pid=PID2))
    fh.feed(delta(102, [("bid", 0.645, 5.0)]))
    fh.feed(delta(103, [("ask", 0.68, 1.5)]))
    assert rec.take() == []                      # nothing before flush
    assert levels(sub) == ([(0.65, 900.0), (0.645, 5.0), (0.64, 2500.0)],
                           [(0.67, 1500.0), (0.68, 1.5)])
    fh.flush()
    assert sorted(rec.take()) == sorted([("updated", PID, "Yes", 103), ("updated", PID2, "Yes", 51)])
    fh.flush()
    assert rec.take() == []                      # a flush with nothing new is silent
    fh.feed(delta(104, [("bid", 0.65, 0.0)]))
    fh.flush()
    assert rec.take() == [("updated", PID, "Yes", 104)]
    assert sub.book.best_bid == (0.645, 5.0)
    st = fh.stats
    assert (st["deltas_applied"], st["snapshots"]) == (5, 2)


@pytest.mark.parametrize("parser", PARSERS)
def test_flush_without_callback_clears_dirty(parser):
    fh, rec, sub = ready(parser)
    cb = fh.on_book_updated
    fh.on_book_updated = None
    fh.feed(delta(101))
    fh.flush()
    fh.on_book_updated = cb
    fh.flush()
    assert rec.take() == []


@pytest.mark.parametrize("parser", PARSERS)
def test_removed_subscription_not_notified(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101))
    assert fh.remove(PID, "Yes")
    fh.flush()
    assert rec.take() == []


@pytest.mark.parametrize("parser", PARSERS)
def test_delta_before_snapshot(parser):
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    fh.feed(delta(5))
    fh.flush()
    assert rec.take() == []
    assert fh.stats["no_snapshot"] == 1 and fh.stats["deltas_applied"] == 0
    assert sub.book.seq is None and sub.invalid_reason == "no_snapshot"


@pytest.mark.parametrize("parser", PARSERS)
def test_duplicate_dropped(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101))
    fh.feed(delta(101, [("bid", 0.65, 1.0)]))
    fh.feed(delta(90, [("bid", 0.65, 2.0)]))
    fh.flush()
    assert rec.take() == [("updated", PID, "Yes", 101)]
    assert sub.book.bids()[0] == (0.65, 900.0)
    assert sub.book.is_valid and sub.book.seq == 101
    assert fh.stats["duplicates"] == 2


@pytest.mark.parametrize("parser", PARSERS)
def test_gap_invalidates_until_snapshot(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101))
    fh.feed(delta(103, [("bid", 0.65, 1.0)]))    # 102 missing
    assert rec.take() == [("state", PID, "Yes", "invalid", "gap")]
    assert not sub.book.is_valid and sub.invalid_reason == "gap"
    assert sub.why_not() == "book invalid (gap); awaiting a snapshot"
    fh.feed(delta(104, [("bid", 0.65, 2.0)]))
    fh.feed(delta(105, [("bid", 0.65, 3.0)]))
    assert rec.take() == []                      # dropped silently, no second "invalid"
    assert sub.book.bids()[0] == (0.65, 900.0)
    assert sub.book.seq == 101
    st = fh.stats
    assert (st["gaps"], st["dropped"], st["deltas_applied"]) == (1, 2, 1)
    fh.feed(snap(200))
    assert rec.take() == [("state", PID, "Yes", "recovered", "snapshot")]
    assert sub.book.is_valid and sub.invalid_reason is None and levels(sub) == SNAP_LEVELS
    fh.feed(delta(201))
    assert sub.book.seq == 201
    fh.flush()
    assert rec.take() == [("updated", PID, "Yes", 201)]


@pytest.mark.parametrize("parser", PARSERS)
def test_resync_required(parser):
    fh, rec, sub = ready(parser)
    frame = orjson.dumps({"type": "resync_required", "parsec_id": PID, "outcome": "YES"})
    fh.feed(frame)
    assert rec.take() == [("state", PID, "Yes", "invalid", "resync_required"),
                          ("message", "resync_required")]
    assert sub.invalid_reason == "resync_required"
    # reported again even though the book is already invalid
    fh.feed(frame)
    assert rec.take() == [("state", PID, "Yes", "invalid", "resync_required"),
                          ("message", "resync_required")]
    assert sub.stats["resync_required"] == 2
    fh.feed(delta(101))
    assert fh.stats["dropped"] == 1 and sub.book.seq == 100
    # an unknown market's resync_required is only a message
    fh.feed(orjson.dumps({"type": "resync_required", "parsec_id": PID2, "outcome": "Yes"}))
    assert rec.take() == [("message", "resync_required")]


@pytest.mark.parametrize("parser", PARSERS)
def test_needs_refresh_delta_not_applied(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, [("bid", 0.65, 1.0)], book_state="needs_refresh"))
    assert rec.take() == [("state", PID, "Yes", "state", "book_state=needs_refresh"),
                          ("state", PID, "Yes", "invalid", "needs_refresh")]
    assert sub.book.bids()[0] == (0.65, 1000.0)
    assert sub.book.seq == 100 and not sub.book.is_valid
    assert sub.invalid_reason == "needs_refresh" and sub.book_state == "needs_refresh"
    assert sub.stats["needs_refresh"] == 1
    fh.flush()
    assert rec.take() == []
    # a fresh snapshot brings it back
    fh.feed(snap(300))
    assert rec.take() == [("state", PID, "Yes", "state", "book_state=fresh"),
                          ("state", PID, "Yes", "recovered", "snapshot")]
    assert sub.trustworthy


@pytest.mark.parametrize("parser", PARSERS)
def test_needs_refresh_snapshot_not_applied(parser):
    fh, rec, sub = ready(parser)
    fh.feed(snap(300, bids=[(0.1, 1.0)], asks=[], book_state="needs_refresh"))
    assert rec.take() == [("state", PID, "Yes", "state", "book_state=needs_refresh"),
                          ("state", PID, "Yes", "invalid", "needs_refresh")]
    assert levels(sub) == SNAP_LEVELS and sub.book.seq == 100 and not sub.book.is_valid


@pytest.mark.parametrize("parser", PARSERS)
def test_feed_and_book_state_changes(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, feed_state="degraded"))
    assert rec.states() == [("state", "feed_state=degraded")]
    assert sub.feed_state == "degraded" and sub.book.seq == 101 and sub.book.is_valid
    assert not sub.trustworthy and sub.why_not() == "venue feed is degraded"
    fh.feed(delta(102, feed_state="degraded"))   # unchanged: no event
    assert rec.states() == []
    fh.feed(delta(103, feed_state="healthy", book_state="stale"))
    assert rec.states() == [("state", "book_state=stale"), ("state", "feed_state=healthy")]
    assert sub.why_not() == "server reports book_state=stale"
    fh.feed(delta(104, feed_state=None, book_state="fresh"))   # null = not announced
    assert rec.states() == [("state", "book_state=fresh")]
    assert sub.feed_state == "healthy" and sub.trustworthy
    # an unknown state string is kept verbatim (and is not trustworthy)
    fh.feed(delta(105, feed_state="maintenance"))
    assert rec.states() == [("state", "feed_state=maintenance")]
    assert sub.feed_state == "maintenance" and not sub.trustworthy
    fh.feed(delta(106, feed_state="rebooting"))
    assert rec.states() == [("state", "feed_state=rebooting")]
    fh.feed(delta(107, feed_state="disconnected", book_state="weird"))
    assert rec.states() == [("state", "book_state=weird"), ("state", "feed_state=disconnected")]
    assert sub.book_state == "weird" and sub.book.seq == 107
    # state changes are never coalesced away; the update still is
    fh.flush()
    assert rec.take() == [("updated", PID, "Yes", 107)]


@pytest.mark.parametrize("parser", PARSERS)
def test_empty_delta_announces_state(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, [], feed_state="degraded", stale_after_ms=250))
    assert rec.states() == [("state", "feed_state=degraded")]
    assert sub.book.seq == 101 and sub.stale_after_ms == 250 and levels(sub) == SNAP_LEVELS


@pytest.mark.parametrize("parser", PARSERS)
def test_local_staleness(parser):
    fh, rec, sub = ready(parser)
    t = sub.last_frame_ns
    assert t > 0 and sub.stale_after_ms == 5000
    fh.check_stale(t + 5000 * 1_000_000)         # exactly the limit: not stale yet
    assert rec.take() == [] and not sub.locally_stale
    fh.check_stale(t + 5000 * 1_000_000 + 1)
    assert rec.take() == [("state", PID, "Yes", "stale", "no book frame for 5000 ms")]
    assert sub.locally_stale and not sub.trustworthy
    assert sub.why_not() == "no book frame for more than stale_after_ms=5000"
    fh.check_stale(t + 10**13)                   # reported once
    assert rec.take() == []
    fh.feed(delta(101))
    assert rec.take() == [("state", PID, "Yes", "fresh", "book frame received")]
    assert not sub.locally_stale and sub.trustworthy
    assert sub.last_frame_ns >= t
    # a delta that is dropped (duplicate) still counts as a book frame
    fh.check_stale(sub.last_frame_ns + 6000 * 1_000_000)
    assert rec.states() == [("stale", "no book frame for 5000 ms")]
    fh.feed(delta(50))
    assert rec.states() == [("fresh", "book frame received")]


@pytest.mark.parametrize("parser", PARSERS)
def test_no_local_staleness_without_stale_after_ms_or_frames(parser):
    fh, rec = make(parser)
    never = fh.add(PID2, "Yes")
    sub = fh.add(PID, "Yes")
    fh.feed(snap(1, stale_after_ms=None))
    rec.take()
    assert sub.stale_after_ms is None
    fh.check_stale(sub.last_frame_ns + 10**15)
    assert rec.take() == []
    assert never.last_frame_ns == 0 and not never.locally_stale


@pytest.mark.parametrize("parser", PARSERS)
def test_huge_stale_after_ms_never_overflows(parser):
    # stale_after_ms accepted up to 2**62 - 1; converting it to ns must not wrap around.
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    fh.feed(snap(1, stale_after_ms=10**13))      # ~317 years
    rec.take()
    assert sub.stale_after_ms == 10**13
    fh.check_stale(sub.last_frame_ns + 1)
    assert rec.take() == [] and not sub.locally_stale


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("value", [-1, -5000, 2**62, 2**63 - 1, 5000.0, True, "5000"])
def test_bad_stale_after_ms_is_a_protocol_error(parser, value):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, stale_after_ms=value))
    ev = rec.take()
    assert [e[0] for e in ev] == ["state", "protocol_error"]
    assert ev[0][3:] == ("invalid", "rejected") and ev[1][1] is ProtocolError
    assert sub.book.seq == 100 and sub.stale_after_ms == 5000
    assert fh.stats["protocol_errors"] == 1


# ---------------------------------------------------------------------------------------------
# bad data and malformed frames


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("changes, field", [
    ([("bid", 0.65, -1.0)], "changes[0].size"),
    ([("bid", 0.65, 1.0), ("ask", 0.0, 1.0)], "changes[1].price"),
    ([("ask", -0.5, 1.0)], "changes[0].price"),
    ([("buy", 0.65, 1.0)], "changes[0].side"),
    ([("bid", 2e9, 1.0)], "changes[0].price"),
    ([("bid", 1e-12, 1.0)], "changes[0].price"),
    ([("bid", 0.65, "1.0")], "changes[0].size"),
    ([("bid", True, 1.0)], "changes[0].price"),
])
def test_bad_delta_rejected(parser, changes, field):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, changes))
    assert rec.take() == [("state", PID, "Yes", "invalid", "rejected")]
    assert levels(sub) == SNAP_LEVELS and sub.book.seq == 100
    assert sub.invalid_reason == "rejected"
    assert sub.last_error.startswith(field), sub.last_error
    assert sub.why_not().startswith("book invalid (rejected data: " + field)
    st = fh.stats
    assert (st["rejected"], st["deltas_applied"], st["protocol_errors"]) == (1, 0, 0)
    fh.flush()
    assert rec.take() == []
    fh.feed(delta(102))                          # dropped until a snapshot
    assert fh.stats["dropped"] == 1 and levels(sub) == SNAP_LEVELS


@pytest.mark.parametrize("parser", PARSERS)
def test_bad_delta_is_atomic(parser):
    # a valid first change must not be applied when the second is bad
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, [("bid", 0.60, 5.0), ("ask", 0.66, -2.0)]))
    assert levels(sub) == SNAP_LEVELS and sub.invalid_reason == "rejected"


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("bids, asks, field", [
    ([(0.64, 1.0), (0.65, 1.0)], [], "bids"),          # not descending
    ([], [(0.66, 1.0), (0.66, 2.0)], "asks"),          # repeated price
    ([(0.64, -1.0)], [], "bids"),
    ([(0.64, 1.0, 3.0)], [], "bids"),
])
def test_bad_snapshot_rejected(parser, bids, asks, field):
    fh, rec, sub = ready(parser)
    fh.feed(snap(500, bids=bids, asks=asks))
    assert rec.take() == [("state", PID, "Yes", "invalid", "rejected")]
    assert levels(sub) == SNAP_LEVELS and sub.book.seq == 100
    assert sub.last_error.startswith(field), sub.last_error
    assert fh.stats["rejected"] == 1 and fh.stats["snapshots"] == 1


@pytest.mark.parametrize("parser", PARSERS)
def test_snapshot_over_max_levels_rejected(parser):
    fh, rec = make(parser, max_levels=2)
    sub = fh.add(PID, "Yes")
    fh.feed(snap(1, bids=[(0.5, 1.0), (0.4, 1.0), (0.3, 1.0)]))
    assert rec.states() == [("invalid", "rejected")]
    assert sub.book.seq is None and fh.stats["rejected"] == 1
    fh.feed(snap(2))
    assert rec.states() == [("recovered", "snapshot")]
    fh.feed(delta(3, [("bid", 0.63, 1.0)]))     # a third bid level: over max_levels
    assert rec.states() == [("invalid", "rejected")]
    assert levels(sub) == SNAP_LEVELS and "max_levels=2" in sub.last_error


MALFORMED = [
    b"", b" ", b"{", b"}", b"[]", b"null", b"42", b'"orderbook"', b"{}",
    b'{"type": 1}', b'{"type": null}', b'{"parsec_id": "polymarket:572473"}',
    b"\xff\xfe", b'{"type":"heartbeat"', b'{"type":"heartbeat"} x', b'{"type":"heartbeat",}',
    b'\xef\xbb\xbf{"type":"heartbeat"}', b'{"type":"orderbook_delta","parsec_id":"a\xff"}',
    b'{"type":"heartbeat","x":NaN}', b'{"type":"heartbeat","x":1e999}',
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("frame", MALFORMED)
def test_malformed_frame_is_a_protocol_error(parser, frame):
    fh, rec, sub = ready(parser)
    fh.feed(frame)                               # must not raise
    ev = rec.take()
    assert len(ev) == 1 and ev[0][0] == "protocol_error" and ev[0][1] is ProtocolError, ev
    assert fh.stats["protocol_errors"] == 1
    assert sub.book.is_valid                     # no book can be told: none is harmed
    fh.on_protocol_error = None
    fh.feed(frame)                               # no callback: still no exception
    assert fh.stats["protocol_errors"] == 2


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("frame", [
    delta("101"), delta(101.0), delta(True), delta(None), snap("x"),
    delta(101, book_state=3), delta(101, feed_state=["healthy"]),
    snap(101, book_state={"a": 1}),
])
def test_wrong_field_type_invalidates_named_book(parser, frame):
    fh, rec, sub = ready(parser)
    fh.feed(frame)
    ev = rec.take()
    assert [e[0] for e in ev] == ["state", "protocol_error"], ev
    assert ev[0][3:] == ("invalid", "rejected") and ev[1][1] is ProtocolError
    assert sub.last_error is not None and sub.last_error.startswith(ev[1][2][:20])
    assert levels(sub) == SNAP_LEVELS and sub.book.seq == 100
    st = fh.stats
    assert (st["protocol_errors"], st["rejected"]) == (1, 0)


@pytest.mark.parametrize("parser", PARSERS)
def test_seq_out_of_int64_is_rejected(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(2**63))
    assert rec.states() == [("invalid", "rejected")]
    assert sub.last_error.startswith("seq") and fh.stats["rejected"] == 1


@pytest.mark.parametrize("parser", PARSERS)
def test_book_frame_with_bad_parsec_id_type(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101).replace(b'"parsec_id":"' + PID.encode() + b'"', b'"parsec_id":7'))
    fh.feed(delta(101, outcome=5))
    ev = rec.take()
    assert [e[0] for e in ev] == ["protocol_error", "protocol_error"]
    assert sub.book.is_valid and fh.stats["unrouted"] == 0


@pytest.mark.parametrize("parser", PARSERS)
def test_callback_exceptions_propagate(parser):
    fh, rec = make(parser)
    fh.add(PID, "Yes")

    def boom(*a):
        raise KeyError("from callback")

    fh.on_book_state = boom
    with pytest.raises(KeyError):
        fh.feed(snap(1))
    fh.on_message = boom
    with pytest.raises(KeyError):
        fh.feed(b'{"type":"heartbeat","ts_ms":1}')


# ---------------------------------------------------------------------------------------------
# messages, activity sequence modes, counters


@pytest.mark.parametrize("parser", PARSERS)
def test_messages_reach_on_message_book_frames_do_not(parser):
    fh, rec = make(parser)
    got = []
    fh.on_message = got.append
    fh.add(PID, "Yes")
    frames = [
        {"type": "auth_ok", "customer_id": "cust_abc123"},
        {"type": "heartbeat", "ts_ms": 1708123456400},
        {"type": "error", "code": 2002, "message": "market not found", "parsec_id": "kalshi:NOPE"},
        {"type": "wallet_activity", "exchange": "polymarket", "address": "0xabc", "data": {"x": [1]}},
        {"type": "brand_new_type", "x": {"y": [1, 2.5, None]}},
    ]
    fh.feed(snap(1))
    fh.feed(delta(2))
    for f in frames:
        fh.feed(orjson.dumps(f))
    assert got == frames
    st = fh.stats
    assert st["frames"] == 7 and st["protocol_errors"] == 0


@pytest.mark.parametrize("parser", PARSERS)
def test_activity_shared_seq(parser):
    fh, rec, sub = ready(parser, "shared")
    fh.feed(activity(101))
    assert sub.book.seq == 101 and sub.book.is_valid
    assert rec.take() == [("message", "activity")]
    fh.feed(delta(102))
    assert sub.book.seq == 102 and sub.book.is_valid
    fh.feed(activity(103, kind="fill"))
    fh.feed(delta(104, [("ask", 0.66, 1.0)]))
    assert sub.book.seq == 104 and sub.book.asks()[0] == (0.66, 1.0)
    assert sub.stats["activity"] == 2 and fh.stats["activity"] == 2
    fh.flush()
    assert rec.take() == [("message", "activity"), ("updated", PID, "Yes", 104)]


@pytest.mark.parametrize("parser", PARSERS)
def test_activity_shared_seq_conflict(parser):
    fh, rec, sub = ready(parser, "shared")
    fh.feed(activity(101))
    rec.take()
    fh.feed(delta(101, [("bid", 0.65, 1.0)]))   # reuses the trade's seq: contradiction
    assert rec.take() == [("state", PID, "Yes", "invalid", "seq_conflict")]
    assert sub.invalid_reason == "seq_conflict" and sub.stats["seq_conflicts"] == 1
    assert sub.book.bids()[0] == (0.65, 1000.0)
    # a plain duplicate (seq not consumed by activity) is only counted
    fh.feed(snap(200))
    rec.take()
    fh.feed(delta(201))
    fh.feed(delta(201))
    assert rec.take() == [] and sub.book.is_valid and fh.stats["duplicates"] == 2


@pytest.mark.parametrize("parser", PARSERS)
def test_activity_shared_gap(parser):
    fh, rec, sub = ready(parser, "shared")
    fh.feed(activity(105))
    assert rec.take() == [("state", PID, "Yes", "invalid", "gap"), ("message", "activity")]
    assert fh.stats["gaps"] == 1 and sub.invalid_reason == "gap"


@pytest.mark.parametrize("parser", PARSERS)
def test_activity_separate_seq(parser):
    fh, rec, sub = ready(parser, "separate")
    fh.feed(activity(7))
    fh.feed(activity(8))
    assert sub.book.seq == 100
    fh.feed(activity(101))                       # would be the book's next seq if shared
    fh.feed(activity(102))
    assert sub.book.seq == 100 and sub.stats["duplicates"] == 0
    fh.feed(delta(101))                          # the book's own counter
    fh.feed(activity(101))                       # same number as a delta: no conflict
    fh.feed(activity(20))                        # older: neither a gap nor a conflict
    fh.feed(delta(102))
    assert sub.book.seq == 102 and sub.book.is_valid
    st = sub.stats
    assert (st["activity"], st["activity_gaps"], st["seq_conflicts"]) == (6, 1, 0)
    assert (st["duplicates"], st["gaps"], st["applied"]) == (0, 0, 2)
    assert [e for e in rec.take() if e[0] == "state"] == []


@pytest.mark.parametrize("parser", PARSERS)
def test_activity_unrouted_or_bad_seq_still_a_message(parser):
    fh, rec, sub = ready(parser)
    fh.feed(activity(101, pid=PID2))
    fh.feed(activity("101"))
    assert rec.take() == [("message", "activity"), ("message", "activity")]
    assert sub.book.seq == 100 and fh.stats["activity"] == 2 and sub.stats["activity"] == 0


@pytest.mark.parametrize("parser", PARSERS)
def test_slow_reader_counter(parser):
    fh, rec, sub = ready(parser)
    frame = orjson.dumps({"type": "slow_reader", "parsec_id": PID, "outcome": "Yes"})
    fh.feed(frame)
    fh.feed(frame)
    assert fh.stats["slow_reader"] == 2
    assert rec.take() == [("message", "slow_reader")] * 2
    assert sub.book.is_valid


@pytest.mark.parametrize("parser", PARSERS)
def test_invalidate_and_invalidate_all(parser):
    fh, rec, sub = ready(parser)
    other = fh.add(PID2, "No")
    fh.invalidate(sub, "disconnected")
    assert rec.states() == [("invalid", "disconnected")]
    assert sub.invalid_reason == "disconnected" and levels(sub) == SNAP_LEVELS
    fh.invalidate_all("disconnected")
    assert sorted(rec.take()) == sorted([("state", PID, "Yes", "invalid", "disconnected"),
                                         ("state", PID2, "No", "invalid", "disconnected")])
    assert other.invalid_reason == "disconnected"


@pytest.mark.parametrize("parser", PARSERS)
def test_stats_keys_and_values(parser):
    fh, rec = make(parser)
    sub = fh.add(PID, "Yes")
    frames = [
        delta(1),                                # no_snapshot
        snap(100),                               # snapshot
        delta(101), delta(102),                  # applied x2
        delta(102),                              # duplicate
        delta(104),                              # gap
        delta(105),                              # dropped
        snap(200),                               # snapshot
        delta(201, [("bid", 0.5, -1.0)]),        # rejected
        snap(1, pid=PID2),                       # unrouted
        b"{oops",                                # protocol error
        activity(300),                           # activity (dropped: book invalid)
        orjson.dumps({"type": "slow_reader", "parsec_id": PID}),
        b'{"type":"heartbeat","ts_ms":1}',
    ]
    for f in frames:
        fh.feed(f)
    st = fh.stats
    assert set(st) == STAT_KEYS
    assert st["frames"] == len(frames)
    assert st["bytes"] == sum(len(f) for f in frames)
    assert st["native_frames"] + st["orjson_frames"] == len(frames)
    expected = {"snapshots": 2, "deltas_applied": 2, "duplicates": 1, "gaps": 1, "dropped": 1,
                "no_snapshot": 1, "rejected": 1, "unrouted": 1, "protocol_errors": 1,
                "activity": 1, "slow_reader": 1}
    assert {k: st[k] for k in expected} == expected
    if parser == "orjson":
        assert st["native_frames"] == 0
    else:
        # snapshots x2, deltas 1..105, the unrouted snapshot go native; the rejected delta, the
        # bad frame and the non-book frames go through orjson
        assert st["native_frames"] == 9
    bs = sub.stats
    assert {k: bs[k] for k in ("snapshots", "applied", "duplicates", "gaps", "rejected",
                               "activity", "activity_gaps", "seq_conflicts", "resync_required",
                               "needs_refresh")} == {
        "snapshots": 2, "applied": 2, "duplicates": 1, "gaps": 1, "rejected": 1, "activity": 1,
        "activity_gaps": 0, "seq_conflicts": 0, "resync_required": 0, "needs_refresh": 0}


def test_native_path_is_taken_for_clean_frames():
    fh, _ = make("native")
    sub = fh.add(PID, "Yes")
    fh.feed(snap(100))
    for s in range(101, 111):
        fh.feed(delta(s, [("bid", 0.65, float(s))]))
    assert fh.stats["native_frames"] == 11 and fh.stats["orjson_frames"] == 0
    assert sub.book.bids()[0] == (0.65, 110.0)
    # an escape in a field the scanner needs sends the frame to orjson, same result
    fh.feed(delta(111, pid=PID).replace(b'"Yes"', b'"Y\\u0065s"'))
    assert fh.stats["orjson_frames"] == 1 and sub.book.seq == 111


def test_feed_accepts_bytes_like():
    fh, _ = make("native")
    sub = fh.add(PID, "Yes")
    fh.feed(bytearray(snap(100)))
    fh.feed(memoryview(delta(101)))
    assert sub.book.seq == 101


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("dup, check", [
    # orjson keeps the last occurrence of a key; the native path must agree (it defers)
    ('"book_state":"needs_refresh","book_state":null',
     lambda sub: sub.book.is_valid and sub.book.seq == 101 and sub.book_state == "fresh"),
    ('"stale_after_ms":7,"stale_after_ms":null',
     lambda sub: sub.stale_after_ms == 5000 and sub.book.seq == 101),
    ('"server_seq":101,"server_seq":103',
     lambda sub: sub.invalid_reason == "gap" and sub.book.seq == 100),
    ('"outcome":"No","outcome":"Yes"', lambda sub: sub.book.seq == 101),
    ('"changes":[{"side":"bid","price":0.65,"size":1}],"changes":[]',
     lambda sub: sub.book.seq == 101 and sub.book.bids()[0] == (0.65, 1000.0)),
    ('"feed_state":"degraded","feed_state":null',
     lambda sub: sub.feed_state == "healthy" and sub.trustworthy),
])
def test_duplicate_keys_last_wins(parser, dup, check):
    fh, rec, sub = ready(parser)
    base = {"type": "orderbook_delta", "parsec_id": PID, "outcome": "Yes", "server_seq": 101,
            "changes": [], "stale_after_ms": 5000}
    names = [part.split(":")[0].strip('"') for part in dup.split(',"')]
    body = orjson.dumps({k: v for k, v in base.items() if k not in names})
    fh.feed(body[:-1] + b"," + dup.encode() + b"}")
    assert check(sub), (sub.book.seq, sub.invalid_reason, sub.stale_after_ms, sub.book_state)
    assert fh.stats["protocol_errors"] == 0


# ---------------------------------------------------------------------------------------------
# per-frame listener and frame timestamps (used by parsec_fast.compat)

@pytest.mark.parametrize("parser", PARSERS)
def test_on_book_frame_reports_every_applied_frame(parser):
    fh, _ = make(parser)
    sub = fh.add(PID, "Yes")
    seen = []
    fh.on_book_frame = lambda s, snapshot: seen.append(
        (s is sub, None if snapshot is None else snapshot["title"], s.book.seq,
         s.exchange_ts_ms, s.ingest_ts_ms))
    fh.feed(delta(99))                                   # before any snapshot: not applied
    fh.feed(snap(100, title="Will it?", exchange_ts_ms=1708123456000, ingest_ts_ms=None))
    fh.feed(delta(101, exchange_ts_ms=1708123456100, ingest_ts_ms=1708123456105))
    fh.feed(delta(101))                                  # duplicate: not reported
    fh.feed(delta(102))                                  # applied, no timestamps
    fh.feed(delta(104))                                  # gap: not reported
    assert seen == [(True, "Will it?", 100, 1708123456000, None),
                    (True, None, 101, 1708123456100, 1708123456105),
                    (True, None, 102, None, None)]
    # Every frame is reported once, never coalesced, and nothing waits for flush().
    fh.flush()
    assert len(seen) == 3


@pytest.mark.parametrize("parser", PARSERS)
def test_frame_timestamps_of_odd_types_read_as_none(parser):
    fh, rec, sub = ready(parser)
    fh.feed(delta(101, exchange_ts_ms=1.5e12, ingest_ts_ms="1708123456105"))
    assert sub.book.seq == 101
    assert (sub.exchange_ts_ms, sub.ingest_ts_ms) == (None, None)
    fh.feed(delta(102, exchange_ts_ms=2**63, ingest_ts_ms=-5))
    assert (sub.exchange_ts_ms, sub.ingest_ts_ms) == (None, -5)


def test_native_snapshots_take_the_orjson_path_only_with_a_frame_listener():
    fh, _ = make("native")
    fh.add(PID, "Yes")
    fh.feed(snap(100))
    assert fh.stats["native_frames"] == 1
    fh.on_book_frame = lambda s, snapshot: None
    fh.feed(snap(200))
    fh.feed(delta(201))
    assert fh.stats["native_frames"] == 2 and fh.stats["orjson_frames"] == 1
