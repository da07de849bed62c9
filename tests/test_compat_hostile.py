"""compat payloads under hostile handlers: kept slices, mutated lists, pickles and deep copies
read after later deltas, handlers that suspend before reading, many payloads kept and dropped.
A payload is a snapshot of the book at its event, whatever a handler does to it, and nothing
a handler does to a payload reaches the engine's book or another payload."""
from __future__ import annotations

import asyncio
import collections
import copy
import gc
import pickle
import random
import sys
import weakref
from typing import Any

import orjson
import pytest

from parsec_fast._feed import FeedHandler
from parsec_fast.compat import OrderbookSnapshot, ParsecWebSocket, StreamingOrderbookLevel
from parsec_fast.compat.books import BookEvents
from parsec_fast.compat.handlers import Handlers
from parsec_fast.server import LocalServer, MarketSpec, ServerConfig, expected_books

pytestmark = pytest.mark.timeout(60)

Levels = tuple[list[tuple[float, float]], list[tuple[float, float]]]


def pairs(levels: Any) -> list[tuple[float, float]]:
    return [(lv.price, lv.size) for lv in levels]


async def test_hostile_handlers_never_change_a_payload_the_book_or_each_other() -> None:
    spec = MarketSpec("polymarket", "900", "Hostile?", 0.001)
    config = ServerConfig(markets=[spec], seed=3, live=False, heartbeat_interval=30.0,
                          fill_account=None, wallet_interval=0, record=True)
    async with LocalServer(config) as srv:
        ws = ParsecWebSocket("demo", srv.url)
        truth: dict[int, Levels] = {}            # seq -> the engine's book during the event
        kept: list[tuple[int, Any, str]] = []    # (seq, artifact, what it is)
        suspended: list[tuple[int, Levels]] = []

        @ws.on("orderbook")
        def hostile(book: OrderbookSnapshot) -> None:
            assert ws.client is not None
            live = ws.client.book(spec.parsec_id)
            seq = book.server_seq
            truth[seq] = ([tuple(x) for x in live.bids()], [tuple(x) for x in live.asks()])
            assert (pairs(book.bids), pairs(book.asks)) == truth[seq]
            r = seq % 6
            if r == 0:
                kept.append((seq, book.bids[:3], "bid slice"))
                kept.append((seq, book, "payload"))
            elif r == 1:
                kept.append((seq, pickle.dumps(book), "pickle"))
                book.bids.append(StreamingOrderbookLevel(0.999, 1.0))   # mutate the lists
                book.asks.sort(key=lambda lv: -lv.price)
                if book.bids:
                    del book.bids[0]
            elif r == 2:
                kept.append((seq, copy.deepcopy(book), "deepcopy"))
                if book.asks:
                    book.asks[0].size = -1.0                           # mutate a level
                    book.asks[0] = StreamingOrderbookLevel(0.001, 2.0)
            elif r == 3:
                kept.append((seq, copy.copy(book), "copy"))
                book.bids.clear()
            elif r == 4:
                kept.append((seq, book.asks, "ask list"))

        @ws.on("orderbook")
        async def suspends(book: OrderbookSnapshot) -> None:
            seq = book.server_seq
            await asyncio.sleep(0)  # really suspends: later frames are applied meanwhile
            await asyncio.sleep(0.001)
            suspended.append((seq, (pairs(book.bids), pairs(book.asks))))

        await ws.connect()
        ws.subscribe(parsec_id=spec.parsec_id)
        for _ in range(500):
            if ws.get_book(spec.parsec_id) is not None:
                break
            await asyncio.sleep(0.01)
        result = await srv.blast(600)
        for _ in range(500):
            book = ws.get_book(spec.parsec_id)
            if book is not None and len(truth) >= result.frames + 1 and len(suspended) >= len(truth):
                break
            await asyncio.sleep(0.01)
        final = ws.get_book(spec.parsec_id)
        await ws.close()
    assert srv.recorder is not None
    exp = expected_books(srv.recorder.connections[0].frames)[(spec.parsec_id, "Yes")]
    assert final is not None and final["last_seq"] == exp.seq  # the engine's book: untouched
    assert [(x["price"], x["size"]) for x in final["bids"]] == exp.bid_levels()
    assert [(x["price"], x["size"]) for x in final["asks"]] == exp.ask_levels()
    assert len(truth) == result.frames + 1 and len(suspended) == len(truth)
    for seq, levels in suspended:  # the same payload object: it sees the other handler's changes
        if seq % 6 in (0, 4, 5):   # ... so compare where that one only read
            assert levels == truth[seq], seq
    kinds = collections.Counter(what for _, _, what in kept)
    assert set(kinds) == {"bid slice", "payload", "pickle", "deepcopy", "copy", "ask list"}
    for seq, artifact, what in kept:
        bids, asks = truth[seq]
        if what == "bid slice":
            assert pairs(artifact) == bids[:3]
        elif what == "payload":
            assert (pairs(artifact.bids), pairs(artifact.asks)) == (bids, asks)
        elif what == "pickle":
            again = pickle.loads(artifact)
            assert (pairs(again.bids), pairs(again.asks)) == (bids, asks)
            assert again.server_seq == seq and type(again) is OrderbookSnapshot
        elif what in ("deepcopy", "copy"):  # copy shares lists the handler changed after it
            if what == "deepcopy":
                assert (pairs(artifact.bids), pairs(artifact.asks)) == (bids, asks)
            assert artifact.server_seq == seq
        else:
            assert pairs(artifact) == asks


def _stream(n: int, seed: int) -> tuple[bytes, list[bytes]]:
    """A 50-level snapshot and ``n`` deltas of 1-3 changes (resize, add, remove)."""
    rng = random.Random(seed)
    bids = {k: float(k) for k in range(400, 450)}
    asks = {k: float(k) for k in range(451, 501)}
    base = {"parsec_id": "polymarket:1", "exchange": "polymarket", "outcome": "Yes",
            "token_id": "t", "market_id": "1", "feed_state": "healthy", "book_state": "fresh",
            "stale_after_ms": 600000, "exchange_ts_ms": 1708123456000, "ingest_ts_ms": None}
    snap = orjson.dumps({"type": "orderbook", "title": "T", "tick_size": 0.001, "server_seq": 1,
                         "bids": [[k / 1000, bids[k]] for k in sorted(bids, reverse=True)],
                         "asks": [[k / 1000, asks[k]] for k in sorted(asks)], **base})
    frames = []
    for i in range(n):
        changes = []
        for _ in range(rng.randint(1, 3)):
            side, book, lo, hi = (("bid", bids, 380, 450) if rng.random() < 0.5
                                  else ("ask", asks, 451, 520))
            tick = rng.randint(lo, hi) if rng.random() < 0.1 else rng.choice(list(book))
            size = 0.0 if rng.random() < 0.05 and len(book) > 40 else round(rng.uniform(1, 999), 2)
            if size:
                book[tick] = size
            else:
                book.pop(tick, None)
            changes.append({"side": side, "price": tick / 1000, "size": size})
        frames.append(orjson.dumps({"type": "orderbook_delta", "changes": changes,
                                    "server_seq": i + 2, **base}))
    return snap, frames


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_is_flat_when_payloads_are_kept_and_dropped() -> None:
    snap, frames = _stream(24_000, seed=9)
    fh = FeedHandler(parser="native")
    fh.add("polymarket:1", "Yes")
    handlers = Handlers()
    books = BookEvents(handlers)
    window: collections.deque[OrderbookSnapshot] = collections.deque(maxlen=200)
    every_side: list[float] = []

    def keep(book: OrderbookSnapshot) -> None:
        window.append(book)                      # kept, dropped 200 events later
        if book.server_seq % 3 == 0:
            every_side.append(sum(lv.size for lv in book.bids) + len(book.asks[2:9]))
            del every_side[:-10]
        if book.server_seq % 7 == 0:
            book.asks.append(book.asks[0] if book.asks else StreamingOrderbookLevel(1, 1))

    handlers.add("orderbook", keep)
    fh.on_book_frame = books.emitter.on_book_frame
    fh.feed(snap)
    samples = []
    for i in range(0, len(frames), 4_000):
        for frame in frames[i:i + 4_000]:
            fh.feed(frame)
        gc.collect()
        samples.append((sys.getallocatedblocks(), _rss_kib()))
    blocks = [b for b, _ in samples[1:]]
    rss = [r for _, r in samples[1:]]
    # Python objects: the 200 kept payloads hold a varying number of built levels, so the count
    # moves by ~1,000 blocks; a leak of one block per event would add 4,000 per sample.
    assert max(blocks) - min(blocks) < 2_500, samples
    assert max(rss) - rss[0] < 2_048, samples         # C level buffers (KiB): no growth
    assert len(window) == 200 and window[-1].server_seq == len(frames) + 1


def test_reference_cycles_through_payloads_and_levels_are_collected() -> None:
    snap, frames = _stream(3, seed=1)
    fh = FeedHandler(parser="native")
    fh.add("polymarket:1", "Yes")
    handlers = Handlers()
    books = BookEvents(handlers)
    refs: list[weakref.ref[Any]] = []

    def tangle(book: OrderbookSnapshot) -> None:
        level = book.bids[0]
        level.price = book           # payload -> bids -> level -> payload
        book.title = [book.asks]     # payload -> list -> asks -> ...
        refs.extend((weakref.ref(book), weakref.ref(level)))

    handlers.add("orderbook", tangle)
    fh.on_book_frame = books.emitter.on_book_frame
    fh.feed(snap)
    for frame in frames:
        fh.feed(frame)
    gc.collect()
    assert len(refs) == 8 and all(r() is None for r in refs)
