"""Property test: on the same server stream, ``parsec_fast.compat`` payloads equal the payloads
the official SDK (``parsec_api.streaming`` 0.17.0) builds, field by field, whatever the books
(random markets, tick sizes, depths, seeds) and whatever the handler reads (indexes, negative
too, slices, iteration, lengths, or keeping the payload and reading it after later deltas).

Both clients connect to one ``LocalServer`` (no live stream), subscribe the same markets at the
same depth, and then the server blasts one seeded stream of deltas to both connections, so each
receives the same frames. The SDK's own kept payloads are not compared after later deltas: they
alias its live book (``docs/sdk-compat-notes.md`` §7.3); a kept compat payload must equal what
the SDK showed at that event.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsec_fast.compat import MarketSubscription, ParsecWebSocket
from parsec_fast.server import LocalServer, MarketSpec, ServerConfig

sdk = pytest.importorskip("parsec_api.streaming")

pytestmark = pytest.mark.timeout(120)

SCALARS = ("parsec_id", "outcome", "exchange", "token_id", "market_id", "title", "mid_price",
           "spread", "tick_size", "kind", "server_seq", "feed_state", "book_state",
           "stale_after_ms", "exchange_ts_ms", "ingest_ts_ms")

Op = tuple[Any, ...]
sides = st.sampled_from(["bids", "asks"])
small = st.integers(-60, 60)
ops = st.one_of(
    st.tuples(st.just("index"), sides, small),
    st.tuples(st.just("slice"), sides, st.none() | small, st.none() | small,
              st.none() | st.integers(-4, 4).filter(bool)),
    st.tuples(st.just("iter"), sides),
    st.tuples(st.just("reversed"), sides),
    st.tuples(st.just("len"), sides),
    st.tuples(st.just("contains_top"), sides),
)


def pairs(levels: Any) -> list[tuple[float, float]]:
    return [(lv.price, lv.size) for lv in levels]


def read(book: Any, op: Op) -> Any:
    """What one access pattern reads from a payload (levels as (price, size))."""
    kind, side = op[0], op[1]
    levels = getattr(book, side)
    try:
        if kind == "index":
            lv = levels[op[2]]
            return (lv.price, lv.size)
        if kind == "slice":
            return pairs(levels[op[2]:op[3]:op[4]])
        if kind == "iter":
            return pairs(levels)
        if kind == "reversed":
            return pairs(reversed(levels))
        if kind == "len":
            return len(levels)
        top = levels[0] if len(levels) else None
        return top is not None and top in levels
    except IndexError:
        return IndexError


class Recorder:
    """An ``async def`` orderbook handler that records every payload as read at its event,
    and keeps every ``keep_every``-th payload for reading at the end."""

    def __init__(self, pattern: list[Op], keep_every: int) -> None:
        self.pattern = pattern
        self.keep_every = keep_every
        self.seen: list[dict[str, Any]] = []
        self.kept: list[tuple[int, Any]] = []

    async def __call__(self, book: Any) -> None:
        record = {name: getattr(book, name) for name in SCALARS}
        record["reads"] = [read(book, op) for op in self.pattern]
        record["levels"] = (pairs(book.bids), pairs(book.asks))
        if self.keep_every and len(self.seen) % self.keep_every == 0:
            self.kept.append((len(self.seen), book))
        self.seen.append(record)

    def deltas(self) -> int:
        return sum(r["kind"] == "delta" for r in self.seen)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    if record["kind"] == "snapshot":  # the server stamps each connection's snapshot itself
        assert isinstance(record["exchange_ts_ms"], int) and isinstance(record["ingest_ts_ms"], int)
        return {k: v for k, v in record.items() if k not in ("exchange_ts_ms", "ingest_ts_ms")}
    return record


async def scenario(seed: int, tick: float, n_markets: int, depth: int, n_deltas: int,
                   pattern: list[Op], keep_every: int) -> None:
    specs = [MarketSpec("polymarket", str(700 + i), f"Market {i}?", tick) for i in range(n_markets)]
    config = ServerConfig(markets=specs, seed=seed, live=False, heartbeat_interval=30.0,
                          fill_account=None, wallet_interval=0, tier="scale")
    async with LocalServer(config) as srv:
        recorders = {"sdk": Recorder(pattern, keep_every), "compat": Recorder(pattern, keep_every)}
        clients = {"sdk": sdk.ParsecWebSocket("demo", srv.url),
                   "compat": ParsecWebSocket("demo", srv.url)}
        subs = {"sdk": sdk.MarketSubscription, "compat": MarketSubscription}
        try:
            for name, ws in clients.items():
                ws.on("orderbook")(recorders[name])
                await ws.connect()
                ws.subscribe([subs[name](s.parsec_id, "Yes", depth) for s in specs])
            for _ in range(1000):  # bounded: every snapshot on both connections
                if all(ws.get_book(s.parsec_id) is not None for ws in clients.values()
                       for s in specs):
                    break
                await asyncio.sleep(0.01)
            result = await srv.blast(n_deltas)
            per_connection = result.frames // 2
            for _ in range(1000):
                if all(r.deltas() >= per_connection for r in recorders.values()):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        finally:
            for ws in clients.values():
                await ws.close()
    ours, theirs = recorders["compat"], recorders["sdk"]
    assert ours.deltas() == theirs.deltas() == per_connection
    assert len(ours.seen) == len(theirs.seen) == per_connection + n_markets
    for i, (a, b) in enumerate(zip(ours.seen, theirs.seen)):
        assert comparable(a) == comparable(b), f"event {i}"
    # Kept payloads, read after every later delta: still the book of their own event.
    for index, book in ours.kept:
        assert (pairs(book.bids), pairs(book.asks)) == theirs.seen[index]["levels"], index
        assert [read(book, op) for op in pattern] == theirs.seen[index]["reads"], index
        assert book.server_seq == theirs.seen[index]["server_seq"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), tick=st.sampled_from([0.01, 0.001, 0.0001]),
       n_markets=st.integers(1, 3), depth=st.integers(1, 60), n_deltas=st.integers(1, 300),
       pattern=st.lists(ops, max_size=6), keep_every=st.integers(0, 7))
def test_payloads_equal_the_sdk_payloads(seed: int, tick: float, n_markets: int, depth: int,
                                         n_deltas: int, pattern: list[Op], keep_every: int) -> None:
    asyncio.run(scenario(seed, tick, n_markets, depth, n_deltas, pattern, keep_every))
