"""Fault injection of the local server, back-pressure from the transport, and blast mode."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from parsec_fast.server import LocalServer, expected_books, parse_fault_spec
from test_server import Client, apply_client_side, binary, cfg

pytestmark = pytest.mark.timeout(20)


async def _subscribed(srv: LocalServer, *pids: str, depth: int = 20, **kw: Any) -> Client:
    c = await Client.open(srv.url, **kw)
    await c.send(type="subscribe", markets=[{"parsec_id": p, "depth": depth} for p in pids])
    for _ in pids:
        await c.expect("orderbook")
    return c


def _book_seqs(frames: list[dict[str, Any]], pid: str) -> list[int]:
    return [f["server_seq"] for f in frames
            if f.get("parsec_id") == pid and f["type"] in ("orderbook", "orderbook_delta", "activity")]


async def test_drop_next_delta_is_a_visible_gap() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4)) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        await c.expect("orderbook_delta")
        srv.faults.drop_next_delta(m.parsec_id)
        await c.collect(0.3)
        s = _book_seqs(c.received, m.parsec_id)
        steps = [b - a for a, b in zip(s, s[1:])]
        assert steps.count(2) == 1 and set(steps) == {1, 2}
        assert srv.faults.log[-1] == ("drop", m.parsec_id)
        assert not expected_books(srv.recorder.connections[0].frames)[(m.parsec_id, "Yes")].valid
        await c.close()


async def test_duplicate_next_sends_the_same_seq_twice() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4)) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        srv.faults.duplicate_next()
        await c.collect(0.3)
        deltas = [f for f in c.received if f["type"] == "orderbook_delta"]
        dups = [(a, b) for a, b in zip(deltas, deltas[1:]) if a["server_seq"] == b["server_seq"]]
        assert len(dups) == 1 and dups[0][0] == dups[0][1]
        # A correct client drops the copy: the book stays valid and exact.
        expected = expected_books(srv.recorder.connections[0].frames)[(m.parsec_id, "Yes")]
        assert expected.valid
        got = apply_client_side(c.received)[(m.parsec_id, "Yes")]
        assert sorted(got["bid"].items(), reverse=True) == expected.bid_levels()
        await c.close()


async def test_reorder_next_swaps_two_deltas() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4)) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        srv.faults.reorder_next(m.parsec_id)
        await c.collect(0.3)
        s = [f["server_seq"] for f in c.received if f["type"] == "orderbook_delta"]
        backwards = [i for i in range(1, len(s)) if s[i] < s[i - 1]]
        assert len(backwards) == 1
        i = backwards[0]
        assert s[i] == s[i - 1] - 1  # n+1 arrived before n
        await c.close()


async def test_resync_required_withholds_deltas_until_resync() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4)) as srv:
        m, other = binary(srv, 0), binary(srv, 1)
        c = await _subscribed(srv, m.parsec_id, other.parsec_id)
        assert srv.faults.send_resync_required(m.parsec_id, "yes") == 1
        rr = await c.expect("resync_required")
        assert (rr["parsec_id"], rr["outcome"]) == (m.parsec_id, "Yes")
        after = await c.collect(0.3)
        assert not [f for f in after if f.get("parsec_id") == m.parsec_id]
        assert [f for f in after if f.get("parsec_id") == other.parsec_id]
        await c.send(type="resync", parsec_id=m.parsec_id)
        snap = await c.expect("orderbook")
        nxt = await c.expect("orderbook_delta", lambda f: f["parsec_id"] == m.parsec_id)
        assert nxt["server_seq"] > snap["server_seq"]
        await c.collect(0.1)
        books = expected_books(srv.recorder.connections[0].frames)
        assert books[(m.parsec_id, "Yes")].valid
        await c.close()


async def test_needs_refresh_is_announced_in_band() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4)) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        assert srv.faults.mark_needs_refresh(m.parsec_id) == 1
        d = await c.expect("orderbook_delta", lambda f: f["book_state"] != "fresh")
        assert (d["book_state"], d["changes"]) == ("needs_refresh", [])
        assert not [f for f in await c.collect(0.2) if f.get("parsec_id") == m.parsec_id]
        await c.send(type="resync", parsec_id=m.parsec_id)
        snap = await c.expect("orderbook")
        assert snap["book_state"] == "fresh" and snap["server_seq"] > d["server_seq"]
        await c.close()


async def test_stall_makes_the_book_stale_then_fresh() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4, stale_after_ms=150)) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        srv.faults.stall(m.parsec_id, 0.5)
        stale = await c.expect("orderbook_delta", lambda f: f["book_state"] == "stale", timeout=1)
        assert stale["changes"] == [] and stale["stale_after_ms"] == 150
        fresh = await c.expect("orderbook_delta", lambda f: f["book_state"] == "fresh", timeout=1.5)
        assert fresh["server_seq"] == stale["server_seq"] + 1
        assert _book_seqs(c.received, m.parsec_id) == sorted(set(_book_seqs(c.received, m.parsec_id)))
        await c.close()


async def test_feed_state_transitions_are_announced() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4, stale_after_ms=10_000)) as srv:
        m, other = binary(srv, 0), binary(srv, 1)
        assert m.exchange != other.exchange
        c = await _subscribed(srv, m.parsec_id, other.parsec_id)
        srv.faults.feed_degraded(m.exchange)
        d = await c.expect("orderbook_delta", lambda f: f["feed_state"] == "degraded")
        assert d["parsec_id"] == m.parsec_id and d["changes"] == []
        srv.faults.feed_disconnected(m.exchange)
        await c.expect("orderbook_delta", lambda f: f["feed_state"] == "disconnected")
        quiet = await c.collect(0.3)  # a disconnected venue sends no updates
        assert not [f for f in quiet if f.get("parsec_id") == m.parsec_id]
        assert [f for f in quiet if f.get("parsec_id") == other.parsec_id]
        await c.send(type="resync", parsec_id=m.parsec_id)
        assert (await c.expect("orderbook", timeout=1))["feed_state"] == "disconnected"
        srv.faults.feed_healthy()
        await c.expect("orderbook_delta",
                       lambda f: f["parsec_id"] == m.parsec_id and f["feed_state"] == "healthy")
        await c.close()


async def test_close_all_abruptly_sends_no_close_frame() -> None:
    async with LocalServer(cfg()) as srv:
        c = await _subscribed(srv, binary(srv).parsec_id)
        assert srv.faults.close_all_abruptly() == 1
        with pytest.raises(websockets.ConnectionClosed) as info:
            for _ in range(10_000):
                await c.recv()
        assert info.value.rcvd is None
        c2 = await Client.open(srv.url)  # still accepting
        await c2.close()


async def test_refuse_connections_for_a_while() -> None:
    async with LocalServer(cfg()) as srv:
        open_one = await Client.open(srv.url)
        srv.faults.refuse_connections(0.4)
        with pytest.raises(OSError):
            await Client.open(srv.url)
        open_one_alive = await open_one.silent_for(0.05)  # existing connection untouched
        assert open_one_alive
        await asyncio.sleep(0.5)
        c = await Client.open(srv.url)
        await c.close()
        await open_one.close()


async def test_slow_reader_and_resync_required_under_real_backpressure() -> None:
    config = cfg(rate=20_000.0, markets=2, so_sndbuf=16 * 1024, soft_buffer_limit=64 * 1024,
                 hard_buffer_limit=256 * 1024, stale_after_ms=10_000)
    async with LocalServer(config) as srv:
        m = binary(srv)
        # max_queue=1: the websockets client stops reading the socket while its queue is full.
        c = await _subscribed(srv, m.parsec_id, depth=50, max_queue=1)
        # From here the client simply stops calling recv().
        (conn,) = await srv.wait_for_connections(1)
        for _ in range(300):
            if conn.overload_events:
                break
            await asyncio.sleep(0.01)
        assert conn.slow_reader_events >= 1 and conn.overload_events >= 1
        assert conn.subs[(m.parsec_id, "Yes")].awaiting_resync
        # Read the backlog: slow_reader first, later resync_required, then no deltas.
        frames: list[dict[str, Any]] = []
        for _ in range(100_000):
            frames.append(await c.recv())
            if frames[-1]["type"] == "resync_required":
                break
        types = [f["type"] for f in frames]
        assert types.index("slow_reader") < types.index("resync_required")
        assert frames[types.index("slow_reader")]["parsec_id"] == m.parsec_id
        rest = await c.collect(0.3)
        assert all(f["type"] not in ("orderbook_delta", "activity") for f in rest)
        # The buffer drained: a resync brings a snapshot and the stream back.
        assert not conn.paused and not conn.overloaded
        await c.send(type="resync", parsec_id=m.parsec_id)
        snap = await c.expect("orderbook")
        await c.expect("orderbook_delta")
        after_snap = c.received[c.received.index(snap):]
        assert _book_seqs(after_snap, m.parsec_id)[:2] == [snap["server_seq"], snap["server_seq"] + 1]
        await c.close()


async def test_a_reading_client_gets_no_slow_reader() -> None:
    async with LocalServer(cfg(rate=5000.0, markets=2, soft_buffer_limit=64 * 1024,
                               hard_buffer_limit=256 * 1024)) as srv:
        c = await _subscribed(srv, binary(srv).parsec_id)
        frames = await c.collect(0.5)
        assert len(frames) > 100
        assert not [f for f in frames if f["type"] in ("slow_reader", "resync_required")]
        await c.close()


# -- scripted faults --------------------------------------------------------------------------

def test_parse_fault_spec() -> None:
    s = parse_fault_spec("stall:3/kalshi:KXSIM-0000@1.5")
    assert (s.name, s.arg, s.target, s.at) == ("stall", "3", "kalshi:KXSIM-0000", 1.5)
    assert parse_fault_spec("gap@2").name == "gap"
    assert parse_fault_spec("degraded/polymarket@0").target == "polymarket"
    assert parse_fault_spec("random@5").is_random
    for bad in ("gap", "@1", "gap@soon", "gap@-1", "explode@1", "stall:x@1", "random@0"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


async def test_scripted_gap_from_config() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4, faults=["gap@0.3"])) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        await c.collect(0.6)
        s = _book_seqs(c.received, m.parsec_id)
        assert [b - a for a, b in zip(s, s[1:])].count(2) == 1
        await c.close()


async def test_random_fault_mode_keeps_serving() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4, stale_after_ms=100,
                               faults=["random@0.05"])) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id)
        frames = await c.collect(1.0)
        assert len(srv.faults.log) >= 5
        assert frames
        await c.send(type="resync", parsec_id=m.parsec_id)
        assert (await c.expect("orderbook"))["parsec_id"] == m.parsec_id
        await c.close()


# -- blast --------------------------------------------------------------------------------------

async def test_blast_writes_a_pre_generated_stream_in_chunks() -> None:
    async with LocalServer(cfg(live=False, markets=4)) as srv:
        a, b = binary(srv, 0), binary(srv, 1)
        c = await _subscribed(srv, a.parsec_id, b.parsec_id, depth=10)
        result = await srv.blast(3000, chunk_size=64 * 1024)
        assert result.frames >= 3000 and result.connections == 1
        assert result.nbytes > 64 * 1024 * 3
        got = []
        while len(got) < result.frames:
            f = await c.recv()
            if f["type"] == "orderbook_delta":
                got.append(f)
        for m in (a, b):
            s = _book_seqs(c.received, m.parsec_id)
            assert s == list(range(s[0], s[0] + len(s)))
        books = expected_books(srv.recorder.connections[0].frames)
        mine = apply_client_side(c.received)
        for key, book in books.items():
            assert book.valid
            assert sorted(mine[key]["bid"].items(), reverse=True) == book.bid_levels()
            sim = srv.simulator.book(*key)
            assert [tuple(x) for x in sim.top("bid", 10)] == book.bid_levels()
            assert [tuple(x) for x in sim.top("ask", 10)] == book.ask_levels()
        await c.close()


async def test_blast_honours_flow_control() -> None:
    config = cfg(live=False, markets=2, so_sndbuf=16 * 1024, soft_buffer_limit=64 * 1024,
                 hard_buffer_limit=256 * 1024)
    async with LocalServer(config) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id, depth=50, max_queue=1)
        (conn,) = await srv.wait_for_connections(1)
        task = asyncio.ensure_future(srv.blast(6_000, chunk_size=32 * 1024))
        await asyncio.sleep(0.3)
        assert not task.done()  # waiting for the reader, not buffering everything
        assert conn.buffer_size() <= config.soft_buffer_limit + 32 * 1024
        assert conn.slow_reader_events == 0 and conn.overload_events == 0
        n = 0
        while not task.done() or n < 6_000:
            f = await c.recv()
            n += f["type"] == "orderbook_delta"
        assert (await task).frames == n
        await c.close()


async def test_reader_that_never_drains_is_aborted() -> None:
    # Past disconnect_buffer_limit the connection is aborted: a close frame would wait behind a
    # backlog the peer never reads. The client sees the socket end without a close frame.
    config = cfg(rate=20_000.0, markets=2, so_sndbuf=16 * 1024, soft_buffer_limit=32 * 1024,
                 hard_buffer_limit=64 * 1024, disconnect_buffer_limit=128 * 1024,
                 stale_after_ms=10_000)
    async with LocalServer(config) as srv:
        m = binary(srv)
        c = await _subscribed(srv, m.parsec_id, depth=100, max_queue=1)
        (conn,) = await srv.wait_for_connections(1)
        # Keep asking for snapshots without ever reading: the backlog only grows.
        for _ in range(200):
            if conn.closed_slow:
                break
            if conn.overload_events:
                await c.send(type="resync", parsec_id=m.parsec_id)
            await asyncio.sleep(0.01)
        assert conn.closed_slow and conn.abort_reason == "send_buffer"
        assert srv.aborted["send_buffer"] == 1
        with pytest.raises(websockets.ConnectionClosed) as info:
            for _ in range(100_000):
                await c.recv()
        assert info.value.rcvd is None
        for _ in range(100):
            if not srv.connections:
                break
            await asyncio.sleep(0.01)
        assert not srv.connections
