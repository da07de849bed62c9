"""Issue 7: a delta costs zero Python allocations end to end on the native path.

10,000 pre-encoded single-change delta frames go through ``FeedHandler(parser="native").feed``
with every callback None and no flush in the loop; ``sys.getallocatedblocks()`` must not grow by
more than a small constant (a few blocks of interpreter noise), i.e. nothing per frame.
"""
from __future__ import annotations

import gc
import random
import sys

import orjson
import pytest

from parsec_fast._feed import FeedHandler

PID = "polymarket:572473"
N = 10_000
SLACK = 16   # blocks: interpreter noise (freelists, caches), far below one per frame


def _frames(n: int, seed: int = 5) -> tuple[bytes, list[bytes]]:
    """A snapshot and n single-change deltas (resize, add and remove, both sides), PROTOCOL.md
    shape with the usual unknown fields, contiguous seqs."""
    rng = random.Random(seed)
    bids = {k: 100.0 + k for k in range(400, 450)}
    asks = {k: 100.0 + k for k in range(451, 501)}
    snap = orjson.dumps({
        "type": "orderbook", "parsec_id": PID, "exchange": "polymarket", "outcome": "Yes",
        "token_id": "50310842821", "market_id": "572473", "tick_size": 0.001,
        "bids": [[k / 1000, bids[k]] for k in sorted(bids, reverse=True)],
        "asks": [[k / 1000, asks[k]] for k in sorted(asks)],
        "book_state": "fresh", "server_seq": 1000, "feed_state": "healthy",
        "stale_after_ms": 5000, "exchange_ts_ms": 1708123456000, "ingest_ts_ms": 1708123456050})
    frames = []
    for i in range(n):
        side, book = ("bid", bids) if rng.random() < 0.5 else ("ask", asks)
        r = rng.random()
        if r < 0.05 and len(book) > 40:
            tick = rng.choice(list(book))
            del book[tick]
            size = 0.0
        else:
            lo, hi = (380, 450) if side == "bid" else (451, 520)
            tick = rng.randint(lo, hi) if r < 0.1 else rng.choice(list(book))
            size = rng.uniform(1, 5000) if rng.random() < 0.05 else round(rng.uniform(1, 999), 2)
            book[tick] = size
        frames.append(orjson.dumps({
            "type": "orderbook_delta", "parsec_id": PID, "exchange": "polymarket",
            "outcome": "Yes", "token_id": "50310842821", "market_id": "572473",
            "changes": [{"side": side, "price": tick / 1000, "size": size}],
            "server_seq": 1001 + i, "feed_state": "healthy", "book_state": "fresh",
            "stale_after_ms": 5000, "exchange_ts_ms": 1708123456100 + i,
            "ingest_ts_ms": 1708123456105 + i}))
    return snap, frames


def _run(fh: FeedHandler, frames: list[bytes]) -> int:
    feed = fh.feed
    gc.collect()
    gc.disable()
    try:
        before = sys.getallocatedblocks()
        for f in frames:
            feed(f)
        after = sys.getallocatedblocks()
    finally:
        gc.enable()
    return after - before


@pytest.mark.skipif(not hasattr(sys, "getallocatedblocks"), reason="needs sys.getallocatedblocks")
def test_native_deltas_allocate_nothing_per_frame():
    snap, frames = _frames(N + 200)
    fh = FeedHandler(parser="native")
    assert fh.on_message is fh.on_book_updated is fh.on_book_state is fh.on_protocol_error is None
    sub = fh.add(PID, "Yes")
    fh.feed(snap)
    # warm-up: the scanner's and the book's scratch arrays reach their working size, the
    # subscription enters the dirty list once
    for f in frames[:200]:
        fh.feed(f)
    grown = _run(fh, frames[200:])
    st = fh.stats
    # the loop really applied every frame, natively
    assert st["native_frames"] == N + 201 and st["orjson_frames"] == 0
    assert st["deltas_applied"] == N + 200 and sub.book.seq == 1000 + N + 200
    assert sub.book.is_valid
    assert grown <= SLACK, f"{grown} blocks allocated over {N} frames"
    # nothing was queued per frame either (a list of pointers grows outside pymalloc's blocks)
    updated = []
    fh.on_book_updated = updated.append
    fh.flush()
    assert updated == [sub]

