"""Unit tests of the server's parts: simulator, depth windows, recorder replay, framing, config."""
from __future__ import annotations

from collections import Counter

import orjson
import pytest

from parsec_fast.server import (MarketSpec, ServerConfig, Simulator, expected_books, make_markets,
                                ws_text_frame)
from parsec_fast.server.simulator import BookChange, OutcomeBook


def _run(seed: int, n: int) -> list[object]:
    sim = Simulator(make_markets(10, seed), seed)
    out: list[object] = []
    for _ in range(n):
        out.extend(sim.step())
    return out


def test_markets_cover_exchanges_ticks_and_categorical() -> None:
    markets = make_markets(20, 1)
    assert {m.exchange for m in markets} >= {"kalshi", "polymarket"}
    assert {m.tick_size for m in markets} == {0.1, 0.01, 0.001, 0.0001}
    cats = [m for m in markets if m.categorical]
    assert cats and all(len(m.outcomes) >= 3 and "Yes" not in m.outcomes for m in cats)
    assert len({m.parsec_id for m in markets}) == 20
    assert all(m.parsec_id == f"{m.exchange}:{m.market_id}" for m in markets)


def test_outcome_resolution() -> None:
    binary = MarketSpec("kalshi", "X", "t", 0.01)
    assert binary.resolve_outcome(None) == "Yes"
    assert binary.resolve_outcome("no") == "No"
    assert binary.resolve_outcome("maybe") is None
    cat = MarketSpec("polymarket", "1", "t", 0.01, ("Red", "Blue"), True, token_ids=("1", "2"))
    assert cat.resolve_outcome(None) is None
    assert cat.resolve_outcome("BLUE") == "Blue"
    assert cat.token_id("Blue") == "2"


def test_simulator_is_deterministic_per_seed() -> None:
    assert _run(5, 2000) == _run(5, 2000)
    assert _run(5, 2000) != _run(6, 2000)


def test_books_stay_uncrossed_on_grid_inside_unit_interval() -> None:
    sim = Simulator(make_markets(12, 3), 3)
    for i in range(30_000):
        sim.step()
        if i % 1000 == 0:
            for pid, outcome in sim.keys:
                book = sim.book(pid, outcome)
                bids, asks = book.top("bid", 1000), book.top("ask", 1000)
                assert bids and asks
                assert bids[0][0] < asks[0][0]
                for p, s in bids + asks:
                    assert 0 < p <= 1 and s > 0
                    assert abs(p / book.tick_size - round(p / book.tick_size)) < 1e-6
                    assert len(repr(p)) <= 8  # shortest repr: no float noise on the wire


def test_event_mix_is_mostly_top_of_book_size_changes() -> None:
    sim = Simulator(make_markets(10, 2), 2)
    kinds: Counter[str] = Counter()
    for _ in range(20_000):
        for ev in sim.step():
            if isinstance(ev, BookChange):
                for side, t, size in ev.changes:
                    kinds["remove" if size == 0 else "set"] += 1
            else:
                kinds[type(ev).__name__] += 1
    total = sum(kinds.values())
    assert kinds["set"] / total > 0.6
    assert 0.02 < kinds["remove"] / total < 0.3
    assert kinds["TradeEvent"] > 0 and kinds["FillEvent"] > 0


@pytest.mark.parametrize("depth", [1, 3, 10, 50])
def test_depth_windows_track_the_top_levels(depth: int) -> None:
    sim = Simulator(make_markets(6, 4), 4, max_levels=60)
    views = {}
    for key in sim.keys:
        sim.watch(key, depth)
        book = sim.book(*key)
        views[key] = ({p: s for p, s in book.top("bid", depth)}, {p: s for p, s in book.top("ask", depth)})
    exits = entries = 0
    for _ in range(20_000):
        for ev in sim.step():
            if not isinstance(ev, BookChange):
                continue
            bids, asks = views[(ev.parsec_id, ev.outcome)]
            for side, p, s in ev.windows[depth]:
                levels = bids if side == "bid" else asks
                if s == 0:
                    exits += p in levels
                    levels.pop(p, None)
                else:
                    entries += p not in levels
                    levels[p] = s
    assert exits and entries
    for key, (bids, asks) in views.items():
        book = sim.book(*key)
        assert sorted(bids.items(), reverse=True) == [tuple(x) for x in book.top("bid", depth)]
        assert sorted(asks.items()) == [tuple(x) for x in book.top("ask", depth)]


def test_outcome_book_window_push_and_pull() -> None:
    book = OutcomeBook(0.01)
    for t in (50, 49, 48):
        book.apply("bid", t, 10.0)
    # A better bid pushes the third level out of a depth-3 window.
    assert book.apply("bid", 51, 5.0, [3]) == {3: [("bid", 0.51, 5.0), ("bid", 0.48, 0.0)]}
    # Removing it pulls that level back in.
    assert book.apply("bid", 51, 0.0, [3]) == {3: [("bid", 0.51, 0.0), ("bid", 0.48, 10.0)]}
    # Outside the window: nothing to send.
    assert book.apply("bid", 10, 1.0, [3]) == {3: []}
    assert book.apply("ask", 60, 2.0, [1, 3]) == {1: [("ask", 0.6, 2.0)], 3: [("ask", 0.6, 2.0)]}


def _snap(seq: int, bids: list[list[float]] | None = None) -> dict:
    return {"type": "orderbook", "parsec_id": "k:X", "outcome": "Yes", "bids": bids or [[0.5, 1.0]],
            "asks": [[0.6, 1.0]], "server_seq": seq, "book_state": "fresh"}


def _delta(seq: int, *changes: tuple[str, float, float], state: str = "fresh") -> dict:
    return {"type": "orderbook_delta", "parsec_id": "k:X", "outcome": "Yes", "server_seq": seq,
            "book_state": state,
            "changes": [{"side": s, "price": p, "size": z} for s, p, z in changes]}


def test_expected_books_rules() -> None:
    key = ("k:X", "Yes")
    ok = expected_books([_snap(10), _delta(11, ("bid", 0.5, 3.0)), _delta(11, ("bid", 0.5, 9.0)),
                         _delta(12, ("ask", 0.55, 2.0), ("bid", 0.5, 0.0))])[key]
    assert ok.valid and ok.seq == 12
    assert ok.bid_levels() == [] and ok.ask_levels() == [(0.55, 2.0), (0.6, 1.0)]
    gap = expected_books([_snap(10), _delta(12, ("bid", 0.5, 3.0))])[key]
    assert not gap.valid
    healed = expected_books([_snap(10), _delta(12), _snap(20, [[0.4, 2.0]]), _delta(21)])[key]
    assert healed.valid and healed.bid_levels() == [(0.4, 2.0)]
    rr = {"type": "resync_required", "parsec_id": "k:X", "outcome": "Yes"}
    assert not expected_books([_snap(1), rr, _delta(2)])[key].valid
    assert not expected_books([_snap(1), _delta(2, state="needs_refresh")])[key].valid
    act = {"type": "activity", "parsec_id": "k:X", "outcome": "Yes", "server_seq": 2}
    assert expected_books([_snap(1), act, _delta(3)])[key].valid
    assert not expected_books([_snap(1), act, _delta(3)], shared_seq=False)[key].valid
    assert expected_books([orjson.dumps(_snap(1))])[key].seq == 1


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_ws_text_frame_header(size: int) -> None:
    payload = b"x" * size
    frame = ws_text_frame(payload)
    assert frame[0] == 0x81 and not frame[1] & 0x80  # FIN + text, unmasked
    n = frame[1] & 0x7F
    if n == 126:
        n, start = int.from_bytes(frame[2:4], "big"), 4
    elif n == 127:
        n, start = int.from_bytes(frame[2:10], "big"), 10
    else:
        start = 2
    assert n == size and frame[start:] == payload


def test_config_validation_and_tier_limits() -> None:
    assert ServerConfig(tier="free").max_subscriptions == 3
    assert ServerConfig(tier="free").max_depth == 10
    assert ServerConfig(tier="scale").max_subscriptions == 2000
    assert ServerConfig().heartbeat_interval == 5.0 and ServerConfig().auth_timeout == 15.0
    for bad in (dict(tier="gold"), dict(rate=-1.0), dict(soft_buffer_limit=10, hard_buffer_limit=5),
                dict(heartbeat_interval=0)):
        with pytest.raises(ValueError):
            ServerConfig(**bad)
