"""The NATS relay: wire format, wants and leases (fake clock), the compiled tap and reader, and
end to end against a real nats-server: consumers hold exactly the relay's books (and the direct
WebSocket client's), refusals arrive as Parsec errors, the relay subscribes upstream to the union
of its consumers' wants, and a NATS message lost on purpose is recovered by a resync from the
relay. Failure behaviour (restarts, slow consumer, Parsec disconnect): test_relay_faults.py."""
from __future__ import annotations

import asyncio
import struct
import sys

import orjson
import pytest

from client_helpers import make_client, selectors, server_config
from parsec_fast import SubscriptionError, SubscriptionLimitError
from parsec_fast._natsfeed import OP_MSG, OP_PING, NatsFeedReader, NatsProtocolError
from parsec_fast._relayscan import BookOut, RelayTap, key_of
from parsec_fast.relay import wire
from parsec_fast.relay.wants import Wants
from parsec_fast.selectors import MarketSelector
from parsec_fast.server import LocalServer
from parsec_fast import FeedHandler
from relay_helpers import (NatsServer, Oracle, assert_same_books, consumer_for, needs_nats,
                           relay_for, settle, wait_until)

DELTA = (b'{"type":"orderbook_delta","parsec_id":"kalshi:A.B","exchange":"kalshi","outcome":"YES",'
         b'"token_id":"","market_id":"A.B","changes":[{"side":"bid","price":0.5,"size":3.0}],'
         b'"server_seq":%d,"feed_state":"healthy","book_state":"fresh"}')
SNAP = (b'{"type":"orderbook","parsec_id":"kalshi:A.B","exchange":"kalshi","outcome":"Yes",'
        b'"token_id":"","market_id":"A.B","bids":[[0.4,1.0]],"asks":[[0.6,2.0]],'
        b'"server_seq":%d,"book_state":"fresh","feed_state":"healthy"}')


# -- wire format -------------------------------------------------------------------------------
def test_nats_url_without_nats_py_fails_in_the_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the [relay] extra, Client("nats://...") raises at once, saying what to install,
    # rather than from its connection task (a logged traceback, then the same error).
    from parsec_fast import Client
    monkeypatch.setitem(sys.modules, "nats", None)  # `import nats` raises ImportError
    with pytest.raises(ImportError, match=r"parsec_fast\[relay\]"):
        Client("nats://127.0.0.1:1", api_key="any")


def test_wire_batch_roundtrip_and_refusals() -> None:
    body = wire.encode(wire.Kind.REPLY, 7, 42, [b'{"a":1}', b"", b"x" * 300], key=b"parsec.k.m.yes")
    batch = wire.decode(body)
    assert (batch.kind, batch.epoch, batch.rseq, batch.key) == (wire.Kind.REPLY, 7, 42,
                                                                  b"parsec.k.m.yes")
    assert batch.frames == [b'{"a":1}', b"", b"x" * 300]
    assert body[:1] == b"P"  # never the first byte of a JSON text
    with pytest.raises(wire.WireError):
        wire.decode(b'{"type":"heartbeat"}')
    with pytest.raises(wire.WireError, match="version"):
        wire.decode(b"PF\x02" + body[3:])
    with pytest.raises(wire.WireError, match="truncated"):
        wire.decode(body[:-1])


def test_subjects_escape_every_market_id_and_fold_outcomes() -> None:
    assert wire.book_subject("parsec", "kalshi:KXBTC-26MAR10", "Yes") == \
        "parsec.kalshi.KXBTC-26MAR10.yes"
    subject = wire.book_subject("parsec", "poly:a.b c*>~é", "Über Yes")
    tokens = subject.split(".")
    assert len(tokens) == 4 and all(t and " " not in t and "*" not in t and ">" not in t
                                    for t in tokens)
    assert wire.book_of_subject("parsec", subject) == ("poly:a.b c*>~é", "Über yes")
    assert wire.book_subject("p", "k:m", "YES") == wire.book_subject("p", "k:m", "yes")
    with pytest.raises(ValueError):
        wire.book_of_subject("parsec", wire.control_subject("parsec"))
    with pytest.raises(ValueError):
        wire.validate_prefix("bad prefix")


def test_envelope_embeds_the_frame_as_is() -> None:
    frame = b'{"type":"subscribe","markets":[{"parsec_id":"k:m"}]}'
    env = orjson.loads(wire.envelope("c1", "_INBOX.x", frame=frame))
    assert env == {"v": 1, "consumer": "c1", "inbox": "_INBOX.x", "frame": orjson.loads(frame)}


# -- wants and leases (fake clock) --------------------------------------------------------------
def test_wants_union_depth_and_leases() -> None:
    wants = Wants(lease_ttl=10.0)
    a, b, c = (MarketSelector(parsec_id=p, outcome="Yes", depth=d)
               for p, d in (("k:a", 10), ("k:b", None), ("k:c", 5)))
    wants.add("one", [a, b], "i1", now=0.0)
    wants.add("two", [MarketSelector(parsec_id="k:a", outcome="yes", depth=40), c], "i2", now=1.0)
    union = wants.union()
    assert set(union) == {a.key, b.key, c.key}
    assert union[a.key].depth == 40           # the deepest wanted
    assert [w.id for w in wants.wanting(a.key)] == ["one", "two"]
    wants.remove("two", [c.key], now=2.0)
    assert set(wants.union()) == {a.key, b.key}
    two = wants.get("two")
    wants.lease("one", [b], "i1", now=9.0)     # a lease is the whole want list
    assert set(wants.get("one").wants) == {b.key}  # type: ignore[union-attr]
    assert wants.expire(11.5) == []
    assert wants.expire(12.5) == [two] and wants.get("two") is None  # last message at 2.0
    assert set(wants.union()) == {b.key}
    assert wants.expire(19.5) and not wants.union()   # one renewed at 9.0
    wants.add("three", [a], "i3", now=20.0)
    assert wants.drop("three") is not None and not wants.union()


# -- the compiled pieces ------------------------------------------------------------------------
def test_tap_routes_by_raw_bytes_in_order_and_batches() -> None:
    scheduled: list[int] = []
    others: list[bytes] = []
    tap: RelayTap

    def route_other(payload: bytes) -> BookOut | None:
        others.append(payload)
        obj = orjson.loads(payload)
        if "parsec_id" not in obj:
            return None
        return tap.book(obj["parsec_id"], obj.get("outcome") or "Yes")

    tap = RelayTap(route_other, lambda: scheduled.append(1))
    out = tap.add_book("kalshi:A.B", "Yes", b"parsec.kalshi.A~2EB.yes")
    assert tap.classify(DELTA % 5) == ("delta", "kalshi:A.B", "YES", 5)
    trade = b'{"type":"activity","parsec_id":"kalshi:A.B","outcome":"Yes","kind":"trade","server_seq":7}'
    for frame in (SNAP % 4, DELTA % 5, DELTA % 6, trade):
        tap(frame, 0, False)
    tap(b'{"type":"heartbeat","ts_ms":1}', 0, True)  # no book: not relayed
    assert scheduled == [1] and out.pending == 4 and out.last_snapshot == SNAP % 4
    assert tap.take_dirty() == [out]
    bodies = out.encode(99, 1 << 20)
    assert len(bodies) == 1 and out.rseq == 1
    batch = wire.decode(bodies[0])
    assert (batch.kind, batch.epoch, batch.rseq) == (wire.Kind.STREAM, 99, 1)
    assert batch.frames == [SNAP % 4, DELTA % 5, DELTA % 6, trade]  # upstream order kept
    tap(DELTA % 8, 0, True)
    assert scheduled == [1, 1]
    small = out.encode(99, 300)  # a limit below two frames: one message each
    assert out.rseq == 2 and len(small) == 1
    for i in range(3):
        tap(DELTA % (9 + i), 0, False)
    assert len(out.encode(99, 500)) == 2 and out.rseq == 4  # two frames fit in 500 bytes
    assert key_of("kalshi:A.B", "YES") == b"kalshi:A.B\x00yes"
    # every dirty book's messages as PUB commands in one buffer
    other = tap.add_book("kalshi:C", "No", b"p.kalshi.C.no")
    for i in range(3):
        tap(DELTA % (30 + i), 0, False)
    tap.inject(other, b'{"type":"resync_required","parsec_id":"kalshi:C","outcome":"No"}')
    data, messages, dropped = tap.publish_batch(99, 500, 1 << 20)
    assert (messages, dropped) == (3, 0) and out.rseq == 6 and other.rseq == 1
    parsed, pos = [], 0
    while pos < len(data):
        eol = data.index(b"\r\n", pos)
        verb, subj, size = data[pos:eol].split()
        body = data[eol + 2:eol + 2 + int(size)]
        assert verb == b"PUB" and data[eol + 2 + int(size):eol + 4 + int(size)] == b"\r\n"
        parsed.append((subj, wire.decode(body)))
        pos = eol + 4 + int(size)
    assert [(s_, b.rseq, len(b.frames)) for s_, b in parsed] == [
        (out.subject, 5, 2), (out.subject, 6, 1), (other.subject, 1, 1)]
    assert parsed[0][1].frames == [DELTA % 30, DELTA % 31] and not tap.take_dirty()
    tap(DELTA % 40, 0, False)
    assert tap.publish_batch(99, 500, 100) == (b"", 0, 1) and out.rseq == 7  # over max_payload
    # with flush_now: the last frame of a read publishes at once, no event-loop round
    flushed: list[int] = []
    fast = RelayTap(route_other, lambda: scheduled.append(2),
                    lambda: flushed.append(sum(len(o.encode(1, 1 << 20))
                                               for o in fast.take_dirty())))
    fast.add_book("kalshi:A.B", "Yes", b"s")
    fast(DELTA % 20, 0, False)
    fast(DELTA % 21, 0, True)
    assert scheduled[-1] == 2 and flushed == [1]
    fast(DELTA % 22, 0, True)          # a one-frame read: flushed, nothing scheduled
    assert flushed == [1, 1] and scheduled.count(2) == 1
    assert tap.frames == 13 and tap.unrouted == 1 and tap.others == 2


def _msg(sid: int, body: bytes, subject: bytes = b"s") -> bytes:
    return b"MSG %s %d %d\r\n%s\r\n" % (subject, sid, len(body), body)


def test_reader_feeds_fast_subscriptions_in_place_and_hands_back_the_rest() -> None:
    feed = FeedHandler()
    sub = feed.add("kalshi:A.B", "Yes")
    reader = NatsFeedReader(feed)
    snap = wire.encode(wire.Kind.STREAM, 5, 1, [SNAP % 10])
    deltas = wire.encode(wire.Kind.STREAM, 5, 2, [DELTA % 11, DELTA % 12])
    data = b"PING\r\n" + _msg(3, snap) + _msg(3, deltas)
    items = reader.receive(data)  # sid 3 is not fast yet: everything comes back
    assert items is not None and [i[0] for i in items] == [OP_PING, OP_MSG, OP_MSG]
    assert items[1][1:] == (3, snap)
    reader.set_fast(3, 5, 1)
    half = len(data) // 2
    assert reader.receive(data[6:half]) is None       # a partial read is buffered
    assert reader.receive(data[half:]) is None        # both messages fed in C
    feed.flush()
    assert sub.book.is_valid and sub.book.seq == 12 and reader.frames == 3
    assert reader.state(3) == (True, 5, 3)
    # a message number that does not follow, another relay, a non-stream batch: handed back,
    # and the subscription turns slow so Python sees the rest of the read in order
    hole = wire.encode(wire.Kind.STREAM, 5, 9, [DELTA % 13])
    items = reader.receive(_msg(3, hole) + _msg(3, deltas))
    assert items is not None and [i[2] for i in items] == [hole, deltas]
    assert reader.state(3)[0] is False and sub.book.seq == 12
    with pytest.raises(NatsProtocolError):
        NatsFeedReader(feed).receive(b"BOGUS\r\n")
    good = wire.encode(wire.Kind.STREAM, 5, 3, [DELTA % 13])
    bad = good[:20] + (2).to_bytes(4, "little") + good[24:]  # says 2 frames, holds 1
    r2 = NatsFeedReader(feed)
    r2.set_fast(3, 5, 3)
    assert r2.receive(_msg(3, bad)) == [(OP_MSG, 3, bad)] and r2.frames == 0  # never half fed
    assert struct.calcsize("<2sBBQQIH") == wire.HEADER_SIZE


# -- end to end (nats-server) -------------------------------------------------------------------


@needs_nats
async def test_consumers_hold_the_relays_and_the_direct_clients_books() -> None:
    oracle = Oracle()
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=6, rate=800.0)) as srv:
            relay = relay_for(srv.url, nats.url)
            oracle.watch_relay(relay)
            await relay.start()
            direct = make_client(srv)
            consumers = [consumer_for(nats.url) for _ in range(2)]
            try:
                sels = selectors(srv)
                await direct.start()
                await direct.subscribe(sels, depth=20)
                for i, c in enumerate(consumers):
                    oracle.watch_consumer(c, f"consumer{i}")
                    await c.start()
                    await c.subscribe(sels, depth=20, timeout=8)
                assert consumers[0].customer_id == relay.upstream.customer_id
                await asyncio.sleep(1.0)      # live stream: deltas, trades, fills
                await settle(relay, srv, consumers)
                await direct.wait_ready(5)
                await wait_until(lambda: all(
                    direct.book(s["parsec_id"], s["outcome"]).bids() ==
                    relay.book(s["parsec_id"], s["outcome"]).book.bids() for s in sels), 5,
                    "direct client caught up")
                for c in consumers:
                    assert assert_same_books(relay, c) == len(sels)
                    for s in sels:   # the same levels as the direct WebSocket client
                        assert c.book(s["parsec_id"], s["outcome"]).bids() == \
                            direct.book(s["parsec_id"], s["outcome"]).bids()
                        assert c.book(s["parsec_id"], s["outcome"]).asks() == \
                            direct.book(s["parsec_id"], s["outcome"]).asks()
                    m = c.metrics
                    assert m.gaps == 0 and m.resyncs_sent == 0 and m.activity > 0
                    oracle.check_all(c)
                # one upstream subscription per market, whatever the number of consumers
                assert relay.upstream.metrics.subscribes_sent == 1
                assert oracle.checked > 0 and not oracle.finish(), oracle.violations[:3]
                # the oracle itself: a valid book one level off is caught
                s0 = sels[0]
                consumers[0].book(s0["parsec_id"], s0["outcome"]).set_level("bid", 0.001, 7.0)
                oracle.check_all(consumers[0])
                assert any("differs" in v for v in oracle.finish())
            finally:
                for c in consumers:
                    await c.close()
                await direct.close()
                await relay.close()


@needs_nats
async def test_compat_drop_in_reads_the_relay() -> None:
    from parsec_fast.compat import MarketSubscription, ParsecWebSocket

    with NatsServer() as nats:
        async with LocalServer(server_config(markets=3)) as srv:
            async with relay_for(srv.url, nats.url) as relay:
                events: list[object] = []
                async with ParsecWebSocket("any-key", nats.url) as ws:
                    ws.on("orderbook")(events.append)
                    sel = selectors(srv, 1)[0]
                    ws.subscribe([MarketSubscription(sel["parsec_id"], sel["outcome"], 10)])
                    await wait_until(lambda: len(events) > 5, 5, "compat updates")
                    srv.pause_stream()
                    mine = relay.book(sel["parsec_id"], sel["outcome"])
                    assert mine is not None
                    await wait_until(lambda: events[-1].server_seq == mine.book.seq,  # type: ignore[attr-defined]
                                     5, "compat caught up")
                    first = events[0]
                    # the relay's snapshot carries the upstream snapshot's metadata
                    assert first.kind == "snapshot" and first.title  # type: ignore[attr-defined]
                    last = events[-1]
                    assert [(lv.price, lv.size) for lv in last.bids] == \
                        mine.book.bids(10)  # type: ignore[attr-defined]


@needs_nats
async def test_refusals_reach_the_consumer_as_parsec_errors() -> None:
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=6, tier="free")) as srv:  # cap 3
            async with relay_for(srv.url, nats.url) as relay:
                # a cap refusal reaches a consumer ~2 s after its subscribe (the upstream
                # ledger settles a 3002 after a control period, then the consumer's does):
                # request_timeout must be longer, or the consumer's sweep re-requests first
                a, b = (consumer_for(nats.url, request_timeout=5.0) for _ in range(2))
                await a.start()
                await b.start()
                try:
                    sels = selectors(srv)
                    with pytest.raises(SubscriptionError) as info:
                        await a.subscribe(["kalshi:NOPE"], timeout=5)
                    assert list(info.value.failures.values())[0][0] == 2002
                    await a.subscribe(sels[:3], timeout=5)
                    await b.subscribe(sels[1:3], timeout=5)  # already upstream: no slot used
                    with pytest.raises(SubscriptionLimitError) as cap:
                        await b.subscribe(sels[3:4], timeout=8)
                    assert list(cap.value.failures.values())[0][0] == 3002
                    assert relay.snapshot_stats().books == 3
                    assert relay.upstream.metrics.limit_reached >= 1
                    await b.wait_ready(5)   # b's accepted books are unaffected
                finally:
                    await a.close()
                    await b.close()


@needs_nats
async def test_union_of_wants_bye_and_lease_expiry_drive_the_upstream() -> None:
    import nats as nats_py

    with NatsServer() as nats:
        async with LocalServer(server_config(markets=6)) as srv:
            async with relay_for(srv.url, nats.url, lease_ttl=0.8) as relay:
                sels = selectors(srv)
                a = consumer_for(nats.url)
                await a.start()
                await a.subscribe(sels[:2], timeout=5)
                # a consumer that vanishes without a goodbye: one lease, never renewed
                raw = await nats_py.connect(nats.url)
                try:
                    wants = [[s["parsec_id"], s["outcome"], None] for s in sels[1:4]]
                    await raw.publish(wire.control_subject("parsec"),
                                      wire.envelope("ghost", "_INBOX.ghost", op="lease",
                                                    wants=wants))
                    await raw.flush()
                    upstream = relay.upstream
                    await wait_until(lambda: len(upstream.subscriptions()) == 4, 5, "union of 4")
                    await wait_until(lambda: all(s.book.is_valid
                                                 for s in upstream.subscriptions()), 5)
                    # the ghost's lease runs out: its markets leave after the linger
                    await wait_until(lambda: len(upstream.subscriptions()) == 2, 5,
                                     "ghost's wants expired")
                    assert {s.parsec_id for s in upstream.subscriptions()} == \
                        {s["parsec_id"] for s in sels[:2]}
                    await a.wait_ready(5)   # the live consumer's lease kept its books
                    await a.close()         # bye: its wants stop counting at once
                    await wait_until(lambda: not upstream.subscriptions(), 5, "bye")
                finally:
                    await raw.close()
                    await a.close()


@needs_nats
async def test_a_lost_nats_message_is_a_gap_and_a_resync_from_the_relay() -> None:
    oracle = Oracle()
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=2, rate=300.0)) as srv:
            relay = relay_for(srv.url, nats.url)
            oracle.watch_relay(relay)
            await relay.start()
            c = consumer_for(nats.url)
            oracle.watch_consumer(c)
            try:
                await c.start()
                sel = selectors(srv, 1)[0]
                await c.subscribe([sel], timeout=5)
                await asyncio.sleep(0.3)
                link = relay._link
                assert link is not None
                subject = wire.book_subject("parsec", sel["parsec_id"], sel["outcome"]).encode()
                real_write = link.write_commands
                dropped: list[bytes] = []

                def lossy(data: bytes, messages: int, size: int) -> bool:
                    # the relay writes a read's PUB commands at once: drop one of them
                    kept, pos = [], 0
                    while pos < len(data):
                        eol = data.index(b"\r\n", pos)
                        head = data[pos:eol].split()
                        end = eol + 2 + int(head[-1]) + 2
                        if head[1] == subject and not dropped and \
                                b'"type":"orderbook_delta"' in data[eol:end]:
                            dropped.append(data[pos:end])   # lost on the way
                        else:
                            kept.append(data[pos:end])
                        pos = end
                    return real_write(b"".join(kept), messages, size)
                link.write_commands = lossy  # type: ignore[method-assign]
                upstream_resyncs = relay.upstream.metrics.resyncs_sent
                await wait_until(lambda: c.metrics.resyncs_sent >= 1, 5, "consumer resync")
                assert dropped and c.metrics.gaps >= 1
                await settle(relay, srv, [c])
                assert assert_same_books(relay, c) == 1
                # served from the relay's book: no Parsec control message
                assert relay.upstream.metrics.resyncs_sent == upstream_resyncs
                assert relay.snapshot_stats().snapshots_served >= 2
                assert not oracle.finish(), oracle.violations[:3]
            finally:
                await c.close()
                await relay.close()


# -- the consumer's hold / replay / hole logic, without a network ------------------------------
def _transport_with_book() -> tuple[object, object, object, FeedHandler]:
    from parsec_fast.client.config import ClientConfig
    from parsec_fast.client.session import SessionHandlers
    from parsec_fast.relay.consumer import NatsTransport
    from parsec_fast.relay.consumer_conn import BookStream, ConsumerConnection

    feed = FeedHandler()
    feed.add("kalshi:A.B", "Yes")
    noop = SessionHandlers(lambda *a: None, lambda *a: None, lambda *a: None, lambda *a: None)
    transport = NatsTransport("nats://127.0.0.1:1", b"{}", ClientConfig(), feed, noop)
    loop = asyncio.new_event_loop()
    conn = ConsumerConnection(loop)
    conn.auth.cancel()
    loop.close()   # only its futures' home; nothing runs on it
    conn.epoch = 5
    subject = wire.book_subject("parsec", "kalshi:A.B", "Yes").encode()
    book = BookStream(("kalshi:A.B", "yes"), "kalshi:A.B", "Yes", subject, 7)
    conn.books[book.key] = book
    conn.by_sid[7] = book
    conn.by_subject[subject] = book
    conn.inbox_sid = 2
    return transport, conn, book, feed


def test_consumer_holds_until_the_reply_then_replays_only_later_messages() -> None:
    transport, conn, book, feed = _transport_with_book()
    on_message = transport._on_message  # type: ignore[attr-defined]
    sub = feed.get("kalshi:A.B", "Yes")
    assert sub is not None
    stream = [wire.encode(wire.Kind.STREAM, 5, r, [DELTA % (100 + r)]) for r in (1, 2, 3)]
    for body in stream:
        on_message(conn, 7, body)          # held: nothing fed before the snapshot
    assert len(book.held) == 3 and sub.book.seq is None  # type: ignore[attr-defined]
    reply = wire.encode(wire.Kind.REPLY, 5, 2, [SNAP % 102], key=book.subject)  # type: ignore[attr-defined]
    on_message(conn, 2, reply)
    feed.flush()
    # the snapshot (seq 102, after messages 1-2), then only message 3 replayed (seq 103)
    assert sub.book.is_valid and sub.book.seq == 103 and sub.book.stats["duplicates"] == 0
    assert not book.holding and book.next_rseq == 4  # type: ignore[attr-defined]
    on_message(conn, 2, reply)             # a repeated answer: ignored, no step back
    assert sub.book.seq == 103
    on_message(conn, 7, wire.encode(wire.Kind.STREAM, 5, 4, [DELTA % 104]))
    assert sub.book.seq == 104 and transport.lost_messages == 0  # type: ignore[attr-defined]
    # message 5 lost: 6 is fed (its seq reveals the gap) and the book is invalid
    on_message(conn, 7, wire.encode(wire.Kind.STREAM, 5, 6, [DELTA % 106]))
    assert not sub.book.is_valid and transport.lost_messages == 1  # type: ignore[attr-defined]
    # a hole that hides no seq (e.g. a lost resync_required): our own resync_required
    on_message(conn, 2, wire.encode(wire.Kind.REPLY, 5, 8, [SNAP % 110], key=book.subject))  # type: ignore[attr-defined]
    assert not sub.book.is_valid       # not holding: a stale answer is not fed
    transport._hold(conn, book)  # type: ignore[attr-defined]
    on_message(conn, 2, wire.encode(wire.Kind.REPLY, 5, 8, [SNAP % 110], key=book.subject))  # type: ignore[attr-defined]
    assert sub.book.is_valid and sub.book.seq == 110
    on_message(conn, 7, wire.encode(wire.Kind.STREAM, 5, 10, [b'{"type":"heartbeat","ts_ms":1}']))
    assert not sub.book.is_valid and sub.invalid_reason == "resync_required"
