"""Shared-memory books in one process (publisher and reader mappings side by side): the read API
against the publisher's Book and Subscription, slot reuse, a full region, truncation, the layout
check on attach, closing, waiting, and no allocation per published delta.

The multi-process behaviour (other processes, faults, crashes, torn reads) is
tests/test_shared_processes.py.
"""
from __future__ import annotations

import array
import asyncio
import gc
import os
import struct
import sys
import time

import orjson
import pytest

from parsec_fast import Book, FeedHandler
from parsec_fast._shm import LAYOUT_VERSION, SHM_DIR
from parsec_fast.errors import BookDataError
from parsec_fast.shared import (BookGoneError, LayoutMismatchError, PublisherGoneError,
                                SharedBook, attach, publish, unlink)
from shared_helpers import dump_shared, dump_sub, unique_name

pytestmark = pytest.mark.skipif(not os.path.isdir(SHM_DIR), reason="needs /dev/shm")

PID = "polymarket:572473"


def snapshot(pid: str = PID, seq: int = 10, bids=((0.65, 1000.0), (0.64, 2500.0)),
             asks=((0.66, 800.0), (0.67, 1500.0)), outcome: str = "Yes", **extra) -> bytes:
    return orjson.dumps({"type": "orderbook", "parsec_id": pid, "outcome": outcome,
                         "bids": [list(b) for b in bids], "asks": [list(a) for a in asks],
                         "server_seq": seq, "book_state": "fresh", "feed_state": "healthy",
                         "stale_after_ms": 5000, "exchange_ts_ms": 1708123456000,
                         "ingest_ts_ms": 1708123456050, **extra})


def delta(seq: int, changes, pid: str = PID, outcome: str = "Yes", **extra) -> bytes:
    return orjson.dumps({"type": "orderbook_delta", "parsec_id": pid, "outcome": outcome,
                         "changes": [{"side": s, "price": p, "size": z} for s, p, z in changes],
                         "server_seq": seq, "exchange_ts_ms": 1708123456100 + seq, **extra})


@pytest.fixture
def region():
    name = unique_name("unit")
    fh = FeedHandler()
    pub = publish(fh, name, max_books=4, max_levels=8)
    books = attach(name)
    yield fh, pub, books
    books.close()
    pub.close()
    assert not os.path.exists(SHM_DIR + name)


def test_reads_match_the_book_and_the_subscription(region):
    fh, pub, books = region
    sub = fh.add(PID, "Yes")
    sb = books.book(PID, "YES")   # outcomes compare as the feed handler compares them
    assert isinstance(sb, SharedBook) and (sb.parsec_id, sb.outcome) == (PID, "Yes")
    assert dump_shared(sb) == dump_sub(sub)          # no snapshot yet: invalid, reason
    assert sb.why_not() == "book invalid (no_snapshot); awaiting a snapshot"
    fh.feed(snapshot())
    fh.feed(delta(11, [("bid", 0.65, 900.0), ("ask", 0.665, 10.5)]))
    fh.flush()
    book: Book = sub.book
    assert dump_shared(sb) == dump_sub(sub)
    assert sb.trustworthy and sb.why_not() is None
    for attr in ("seq", "is_valid", "best_bid", "best_ask", "mid", "spread", "crossed",
                 "best_bid_price", "best_bid_size", "best_ask_price", "best_ask_size"):
        assert getattr(sb, attr) == getattr(book, attr), attr
    assert sb.top() == (book.best_bid_price, book.best_bid_size, book.best_ask_price,
                        book.best_ask_size)
    assert sb.bids(1) == book.bids(1) and sb.asks(0) == [] and sb.asks(10**30) == book.asks()
    assert sb.level_count("bid") == book.level_count("bid") and sb.book_level_count("ask") == 3
    assert sb.bid_size(0.65) == 900.0 and sb.ask_size(0.5) == 0.0
    assert sb.to_dict() == book.to_dict()
    buf = array.array("d", [0.0] * 6)
    assert sb.asks_into(buf) == book.asks_into(array.array("d", [0.0] * 6)) == 3
    assert list(buf) == [x for level in book.asks() for x in level]
    np = pytest.importorskip("numpy")
    assert np.array_equal(sb.bids_array(), book.bids_array())
    assert np.array_equal(sb.asks_array(2), book.asks_array(2))
    with pytest.raises(BookDataError):
        sb.bid_size(-1)
    with pytest.raises(ValueError):
        sb.bids(-1)
    with pytest.raises(BookDataError):
        sb.level_count("buy")
    with pytest.raises(TypeError):
        SharedBook()
    assert (PID, "Yes") in books and PID in books and len(books) == 1
    assert books.keys() == [(PID, "Yes")]


def test_every_state_change_is_published(region):
    fh, pub, books = region
    sub = fh.add(PID, "Yes")
    sb = books.book(PID)
    fh.feed(snapshot())
    fh.flush()
    steps = [
        delta(12, [("bid", 0.65, 1.0)]),                              # gap
        snapshot(seq=20),                                              # recovered
        delta(21, [], book_state="stale"),                             # server: stale
        delta(22, [], book_state="fresh", feed_state="degraded"),      # venue feed
        delta(23, [], feed_state="weird-new-state"),                   # unknown text (orjson)
        delta(23, [("bid", 0.1, 1.0)]),                                # duplicate: timestamps
        delta(24, [("bid", "x", 1.0)]),                                # rejected data
        snapshot(seq=30, book_state="needs_refresh"),                  # refused snapshot
    ]
    for frame in steps:
        fh.feed(frame)
        fh.flush()
        assert dump_shared(sb) == dump_sub(sub), frame
    fh.feed(snapshot(seq=40))
    fh.flush()
    fh.check_stale(time.monotonic_ns() + 6 * 10**9)                  # local staleness
    assert sub.locally_stale and dump_shared(sb) == dump_sub(sub)
    assert sb.why_not() == "no book frame for more than stale_after_ms=5000"
    fh.invalidate_all("disconnected")                                  # outside a batch
    assert dump_shared(sb) == dump_sub(sub)
    assert sb.invalid_reason == "disconnected" and not sb.trustworthy


def test_activity_frames_move_the_published_seq(region):
    fh, pub, books = region
    sub = fh.add(PID, "Yes")
    fh.feed(snapshot(seq=10))
    fh.feed(orjson.dumps({"type": "activity", "parsec_id": PID, "outcome": "Yes",
                          "kind": "trade", "price": 0.65, "size": 1.0, "server_seq": 11}))
    fh.flush()
    assert sub.book.seq == 11 and books.book(PID).seq == 11


def test_removed_book_and_reused_slot_are_noticed(region):
    fh, pub, books = region
    fh.add(PID, "Yes")
    fh.add("kalshi:A", "Yes")
    fh.feed(snapshot())
    fh.flush()
    old = books.book(PID)
    index = old.index
    assert old.best_bid == (0.65, 1000.0) and not old.gone
    fh.remove(PID, "Yes")
    assert old.gone and not old.trustworthy
    assert old.why_not() == "book removed from the shared region (unsubscribed)"
    with pytest.raises(BookGoneError):
        old.best_bid
    with pytest.raises(KeyError):
        books.book(PID)
    fh.add("kalshi:B", "No")                  # takes the freed slot (the first free one)
    fh.feed(snapshot(pid="kalshi:B", outcome="No"))
    fh.flush()
    new = books.book("kalshi:B", "no")
    assert new.index == index and new.best_bid == (0.65, 1000.0)
    with pytest.raises(BookGoneError):        # same slot, another book: still gone
        old.bids()
    assert old.gone
    fh.add(PID, "Yes")                        # back, in another slot, new generation
    assert books.book(PID).seq is None and old.gone
    assert sorted(books.keys()) == [("kalshi:A", "Yes"), ("kalshi:B", "No"), (PID, "Yes")]


def test_a_full_region_says_so_and_places_books_as_slots_free(region):
    fh, pub, books = region                   # max_books=4
    for i in range(6):
        fh.add(f"kalshi:M{i}", "Yes")
    assert len(books) == 4 and pub.n_unpublished == 2 and books.n_unpublished == 2
    with pytest.raises(KeyError, match="2 book"):
        books.book("kalshi:M5")
    fh.remove("kalshi:M1", "Yes")
    assert books.get("kalshi:M4") is not None and books.get("kalshi:M5") is None
    fh.remove("kalshi:M5", "Yes")             # a waiting book leaves the queue
    assert pub.n_unpublished == 0 and len(books) == 4
    fh.add("kalshi:" + "x" * 200, "Yes")      # too long for a slot: refused, counted
    assert pub.n_unpublished == 1


def test_levels_beyond_the_slot_depth_are_truncated(region):
    fh, pub, books = region                   # max_levels=8
    sub = fh.add(PID, "Yes")
    bids = [(round(0.5 - i / 100, 2), 10.0 + i) for i in range(12)]
    fh.feed(snapshot(bids=bids, asks=[(0.6, 1.0)]))
    fh.flush()
    sb = books.book(PID)
    assert sb.truncated and sb.level_count("bid") == 8 and sb.book_level_count("bid") == 12
    assert sb.bids() == sub.book.bids(8) and sb.bids(3) == sub.book.bids(3)
    assert sb.to_dict()["bids"] == [list(x) for x in sub.book.bids(8)]
    fh.feed(delta(11, [("bid", b[0], 0.0) for b in bids[:5]]))
    fh.flush()
    assert not sb.truncated and sb.bids() == sub.book.bids()


def test_close_marks_every_book_and_unlinks(region):
    fh, pub, books = region
    fh.add(PID, "Yes")
    fh.feed(snapshot())
    fh.flush()
    sb = books.book(PID)
    assert sb.trustworthy and books.alive
    pub.close("maintenance")
    assert pub.closed and fh.sink is None and not os.path.exists(SHM_DIR + books.name)
    assert not books.alive and books.gone_reason == "publisher closed (maintenance)"
    assert not sb.trustworthy and not sb.is_valid and sb.invalid_reason == "publisher_closed"
    assert sb.why_not() == "publisher gone: publisher closed (maintenance)"
    assert sb.best_bid == (0.65, 1000.0)      # the last published data stays readable
    with pytest.raises(PublisherGoneError, match="maintenance"):
        books.wait(books.changes, 1.0)
    fh.feed(delta(11, [("bid", 0.65, 1.0)]))  # the handler goes on without a sink
    fh.flush()


def test_wait_returns_on_change_and_on_timeout(region):
    fh, pub, books = region
    fh.add(PID, "Yes")
    c = books.changes
    t0 = time.monotonic()
    assert books.wait(c, 0.05) == c and 0.04 < time.monotonic() - t0 < 1.0
    fh.feed(snapshot())
    fh.flush()
    assert books.wait(c, 0) == c + 1 == books.changes
    fh.flush()                                # nothing changed: no bump
    assert books.changes == c + 1


def test_changed_awaits_a_change(region):
    fh, pub, books = region
    fh.add(PID, "Yes")

    async def main() -> None:
        c = books.changes
        assert await books.changed(c, 0.05) == c          # timeout
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, lambda: (fh.feed(snapshot()), fh.flush()))
        assert await asyncio.wait_for(books.changed(c), 5) == c + 1
        assert await books.changed(c) == c + 1            # already differs: at once
        waiting = asyncio.ensure_future(books.changed(books.changes))
        await asyncio.sleep(0.02)
        pub.close("bye")
        with pytest.raises(PublisherGoneError, match="bye"):
            await asyncio.wait_for(waiting, 5)

    asyncio.run(main())


def test_attaching_to_another_layout_fails_clearly():
    name = unique_name("layout")
    path = SHM_DIR + name
    header = bytearray(8192)
    header[0:8] = b"PFBOOKS\0"
    struct.pack_into("<I", header, 8, LAYOUT_VERSION + 998)
    try:
        with open(path, "wb") as f:
            f.write(header)
        with pytest.raises(LayoutMismatchError, match=f"layout version {LAYOUT_VERSION + 998}"):
            attach(name)
        struct.pack_into("<II", header, 8, LAYOUT_VERSION, 0x01020304)
        struct.pack_into("<I", header, 16, 999)           # header_size of another build
        with open(path, "wb") as f:
            f.write(header)
        with pytest.raises(LayoutMismatchError, match="header_size"):
            attach(name)
        with open(path, "wb") as f:
            f.write(b"not a region" * 100)
        with pytest.raises(LayoutMismatchError, match="bad magic"):
            attach(name)
        with pytest.raises(FileExistsError, match="not a parsec_fast"):
            publish(FeedHandler(), name)                  # never overwrites a stranger
    finally:
        os.unlink(path)
    with pytest.raises(FileNotFoundError, match="publisher running"):
        attach(name)
    with pytest.raises(ValueError):
        attach("a/b")


def test_a_live_region_is_not_taken_and_a_dead_one_is():
    name = unique_name("owner")
    fh = FeedHandler()
    pub = publish(fh, name, max_books=2, max_levels=4, heartbeat_timeout=0.2)
    try:
        with pytest.raises(FileExistsError, match="live publisher"):
            publish(FeedHandler(), name)
        with pytest.raises(FileExistsError):
            unlink(name)
        time.sleep(0.3)                       # no heartbeat: looks hung, may be replaced
        books = attach(name)
        assert not books.alive and "heartbeat" in (books.gone_reason or "")
        pub2 = publish(FeedHandler(), name)
        assert attach(name).alive and not books.alive   # old readers keep the old mapping
        pub2.close()
        pub.close()                           # the name is no longer ours: not unlinked twice
        assert not os.path.exists(SHM_DIR + name)
    finally:
        pub.close()


def test_client_close_closes_the_publisher():
    from parsec_fast import Client

    name = unique_name("client")
    client = Client("ws://127.0.0.1:9/ws", api_key="k")
    pub = publish(client, name)
    books = attach(name)
    assert books.alive and client.feed_handler.sink is pub
    asyncio.run(client.close())
    assert pub.closed and books.gone_reason == "publisher closed (client closed)"
    assert not os.path.exists(SHM_DIR + name)


@pytest.mark.skipif(not hasattr(sys, "getallocatedblocks"), reason="needs sys.getallocatedblocks")
def test_publishing_allocates_nothing_per_delta():
    from test_feed_alloc import _frames

    name = unique_name("alloc")
    snap, frames = _frames(10_200)
    fh = FeedHandler(parser="native")
    fh.add("polymarket:572473", "Yes")
    pub = publish(fh, name, max_books=2, max_levels=100)
    books = attach(name)
    try:
        feed, flush = fh.feed, fh.flush
        feed(snap)
        for f in frames[:200]:
            feed(f)
            flush()
        gc.collect()
        gc.disable()
        try:
            before = sys.getallocatedblocks()
            for f in frames[200:]:
                feed(f)
                flush()
            after = sys.getallocatedblocks()
        finally:
            gc.enable()
        assert after - before <= 16, after - before
        assert pub.n_publishes >= 10_000 and books.book("polymarket:572473").seq == 1000 + 10_200
    finally:
        books.close()
        pub.close()
