"""What a hostile or broken peer can make the local server hold: the send budget, the refused-
message budget, the message size cap, the auth window, closing on time, and the work one control
message may cause (duplicates, names over the cap, slices that let other connections through).

Floods come from :class:`RawPeer`, a WebSocket client on a bare socket that never reads unless
told to, so the server's replies pile up exactly as with a peer that stopped reading.
"""
from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import Any

import orjson
import pytest
import websockets

from parsec_fast.codes import ErrorCode
from parsec_fast.server import LocalServer, ServerConfig
from test_server import Client, binary, cfg

pytestmark = pytest.mark.timeout(30)

GARBAGE = b"x"  # invalid JSON: answered with a 2001 error frame


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A final client-to-server frame, masked with a zero key (valid, and costs nothing)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def text(obj: dict[str, Any]) -> bytes:
    return client_frame(orjson.dumps(obj))


class RawPeer:
    """A WebSocket client that does the handshake, then only writes (it never reads)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, url: str, rcvbuf: int | None = None) -> RawPeer:
        host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # small: the kernel holds little of what the server sends
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (host, int(port))), 5)
        await loop.sock_sendall(sock, (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
            assert chunk, "server closed during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock)

    async def send(self, data: bytes) -> bool:
        """Write ``data``; False once the server has ended the connection."""
        try:
            await asyncio.wait_for(self.loop.sock_sendall(self.sock, data), 5)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            return False
        return True

    async def flood(self, frame: bytes, seconds: float, batch: int = 2000) -> float | None:
        """Send ``frame`` over and over for up to ``seconds``; return how long it took the
        server to end the connection, or None if it never did."""
        block = frame * batch
        t0 = self.loop.time()
        while self.loop.time() - t0 < seconds:
            if not await self.send(block):
                return self.loop.time() - t0
        return None

    def close(self) -> None:
        self.sock.close()


def flood_cfg(**kw: Any) -> ServerConfig:
    """Small buffers and limits so floods hit them in milliseconds; nothing recorded."""
    base: dict[str, Any] = dict(markets=4, seed=7, live=False, record=False, control_rate=100,
                                heartbeat_interval=30.0, auth_timeout=5.0, so_sndbuf=4096,
                                soft_buffer_limit=16 * 1024, hard_buffer_limit=32 * 1024,
                                disconnect_buffer_limit=64 * 1024)
    base.update(kw)
    return ServerConfig(**base)


async def until(pred: Any, seconds: float) -> bool:
    for _ in range(int(seconds / 0.01)):
        if pred():
            return True
        await asyncio.sleep(0.01)
    return bool(pred())


# -- the send budget ---------------------------------------------------------------------------

@pytest.mark.parametrize("authenticated", [False, True])
async def test_error_replies_count_against_the_send_budget(authenticated: bool) -> None:
    # The refused-message budget is off: only the send budget can stop the error replies.
    async with LocalServer(flood_cfg(invalid_burst=None)) as srv:
        peer = await RawPeer.open(srv.url, rcvbuf=4096)
        if authenticated:
            assert await peer.send(text({"type": "auth", "api_key": "demo"}))
        (conn,) = await srv.wait_for_connections(1)
        assert await peer.flood(client_frame(GARBAGE), 5.0) is not None
        assert conn.abort_reason == "send_buffer" and srv.aborted == {"send_buffer": 1}
        assert conn.invalid.spent > 1000  # answered until the budget was gone
        assert await until(lambda: not srv.connections, 1)
        peer.close()


async def test_pongs_count_against_the_send_budget() -> None:
    async with LocalServer(flood_cfg(invalid_burst=None)) as srv:
        peer = await RawPeer.open(srv.url, rcvbuf=4096)
        assert await peer.flood(client_frame(b"p" * 125, opcode=0x9), 5.0, batch=200) is not None
        assert srv.aborted == {"send_buffer": 1}
        peer.close()


@pytest.mark.parametrize("opcode", [0x9, 0xA])  # pings, unsolicited pongs
async def test_a_ping_flood_is_cut(opcode: int) -> None:
    async with LocalServer(flood_cfg(invalid_burst=20, invalid_rate=0.0,
                                     disconnect_buffer_limit=None)) as srv:
        peer = await RawPeer.open(srv.url)
        assert await peer.flood(client_frame(b"p", opcode=opcode), 5.0) is not None
        assert srv.aborted == {"ping_flood": 1}
        peer.close()


# -- what a peer can make us read ----------------------------------------------------------------

@pytest.mark.parametrize("authenticated", [False, True])
async def test_garbage_flood_is_cut_by_the_refused_message_budget(authenticated: bool) -> None:
    async with LocalServer(flood_cfg(invalid_burst=20, invalid_rate=0.0,
                                     disconnect_buffer_limit=None)) as srv:
        peer = await RawPeer.open(srv.url, rcvbuf=4096)
        if authenticated:
            assert await peer.send(text({"type": "auth", "api_key": "demo"}))
        (conn,) = await srv.wait_for_connections(1)
        assert await peer.flood(client_frame(GARBAGE), 5.0) is not None
        assert conn.abort_reason == "invalid_messages" and conn.invalid.spent == 21
        peer.close()


async def test_a_few_refused_messages_are_answered_and_the_connection_lives() -> None:
    async with LocalServer(cfg(live=False, invalid_burst=5, invalid_rate=0.0)) as srv:
        c = await Client.open(srv.url)
        for raw in ("nope", "[]", '{"type": "launch"}', '{"type": "auth", "api_key": "demo"}',
                    '{"type": "subscribe"}'):
            await c.ws.send(raw)
            assert (await c.recv())["type"] == "error"
        await c.send(type="subscribe", markets=[{"parsec_id": binary(srv).parsec_id}])
        assert (await c.recv())["type"] == "orderbook"
        await c.ws.send("one too many")
        with pytest.raises(websockets.ConnectionClosed):
            await c.recv()
        assert srv.aborted == {"invalid_messages": 1}


async def test_a_frame_over_max_message_size_is_refused_with_1009() -> None:
    async with LocalServer(cfg(live=False, max_message_size=1024)) as srv:
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": "x" * 2000}])
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        assert await until(lambda: srv.aborted == {"message_too_big": 1}, 1)


async def test_messages_queued_behind_a_long_subscribe_are_bounded() -> None:
    # One write: a subscribe big enough to be served in slices, then 50 more messages read in
    # the same go. Reading pauses during the slices; only 4 may wait.
    async with LocalServer(flood_cfg(markets=20, max_pending_messages=4,
                                     disconnect_buffer_limit=None)) as srv:
        keys = [(p, o) for p, st in srv.simulator.markets.items() for o in st.spec.outcomes]
        assert len(keys) > 40
        peer = await RawPeer.open(srv.url, rcvbuf=4096)
        sub = text({"type": "subscribe", "markets": [{"parsec_id": p, "outcome": o}
                                                     for p, o in keys]})
        assert await peer.send(text({"type": "auth", "api_key": "demo"}) + sub
                               + client_frame(GARBAGE) * 50)
        assert await until(lambda: srv.aborted, 2)
        assert srv.aborted == {"backlog": 1}
        peer.close()


# -- closing on time -------------------------------------------------------------------------------

async def _backlogged_peer(srv: LocalServer) -> RawPeer:
    """A peer that sent 3,000 garbage messages and read none of the replies."""
    peer = await RawPeer.open(srv.url, rcvbuf=4096)
    assert await peer.send(client_frame(GARBAGE) * 3000)
    (conn,) = await srv.wait_for_connections(1)
    assert await until(lambda: conn.invalid.spent == 3000, 2)
    assert conn.buffer_size() > 64 * 1024  # the replies wait in the server's send buffer
    return peer


async def test_auth_window_ends_a_non_reading_connection_on_time() -> None:
    async with LocalServer(flood_cfg(auth_timeout=0.5, invalid_burst=None,
                                     disconnect_buffer_limit=None)) as srv:
        peer = await _backlogged_peer(srv)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await until(lambda: not srv.connections, 2.0)
        assert loop.time() - t0 < 1.0  # the window ends 0.5 s after the connection opened
        assert srv.aborted == {"auth_timeout": 1}
        peer.close()


async def test_auth_window_closes_a_silent_connection_with_1008() -> None:
    async with LocalServer(flood_cfg(auth_timeout=0.3)) as srv:
        peer = await RawPeer.open(srv.url, rcvbuf=4096)  # sends nothing, reads nothing
        await srv.wait_for_connections(1)
        assert await until(lambda: not srv.connections, 1.0)
        data = await asyncio.wait_for(peer.loop.sock_recv(peer.sock, 4096), 1)
        assert data[:2] == b"\x88\x0e" and data[2:4] == (1008).to_bytes(2, "big")  # close 1008
        assert not srv.aborted
        peer.close()


async def test_a_close_frame_that_cannot_flush_ends_in_an_abort() -> None:
    async with LocalServer(flood_cfg(invalid_burst=None, disconnect_buffer_limit=None,
                                     close_timeout=0.3)) as srv:
        peer = await _backlogged_peer(srv)
        assert await peer.send(client_frame((1000).to_bytes(2, "big"), opcode=0x8))
        assert await until(lambda: not srv.connections, 1.5)
        assert srv.aborted == {"close_timeout": 1}
        peer.close()


# -- bounded work per control message --------------------------------------------------------

async def test_duplicate_selectors_are_answered_once() -> None:
    async with LocalServer(cfg(live=False)) as srv:
        a, b = binary(srv, 0), binary(srv, 1)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[
            {"parsec_id": a.parsec_id}, {"parsec_id": a.parsec_id, "outcome": "yes"},
            {"exchange": a.exchange, "market_id": a.market_id, "outcome": "YES"},
            {"parsec_id": "kalshi:NOPE"}, {"parsec_id": b.parsec_id, "outcome": "No"},
            {"parsec_id": "kalshi:NOPE"}, 42, 42, {"parsec_id": a.parsec_id, "outcome": None}],
            addresses=[{"exchange": "polymarket", "address": "0x1"}] * 3)
        frames = await c.collect(0.3)
        assert [(f["type"], f.get("parsec_id"), f.get("code")) for f in frames] == [
            ("orderbook", a.parsec_id, None), ("error", "kalshi:NOPE", 2002),
            ("orderbook", b.parsec_id, None), ("error", None, 2001),
            ("wallet_activity", None, None)]
        (conn,) = srv.connections
        assert set(conn.subs) == {(a.parsec_id, "Yes"), (b.parsec_id, "No")}
        await c.close()


async def test_other_clients_are_served_during_a_40000_duplicate_subscribe() -> None:
    async with LocalServer(cfg(live=False, max_message_size=4 * 1024 * 1024)) as srv:
        m, other = binary(srv, 0), binary(srv, 1)
        victim = await Client.open(srv.url)
        attacker = await RawPeer.open(srv.url)
        assert await attacker.send(text({"type": "auth", "api_key": "attacker"}))
        flood = text({"type": "subscribe",
                      "markets": [{"parsec_id": m.parsec_id, "outcome": "yes"}] * 40_000})
        assert len(flood) > 1_800_000
        assert await attacker.send(flood)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await victim.send(type="subscribe", markets=[{"parsec_id": other.parsec_id}])
        assert (await victim.recv(timeout=2))["type"] == "orderbook"
        assert loop.time() - t0 < 0.5
        conns = {c.account: c for c in srv.connections}
        assert await until(lambda: bool(conns["attacker"].subs), 2)
        frames = srv.recorder.get(conns["attacker"].conn_id).of_type("orderbook")  # type: ignore
        assert len(frames) == 1  # answered once
        attacker.close()
        await victim.close()


@pytest.mark.parametrize("policy", ["truncate", "refuse"])
async def test_a_message_naming_more_markets_than_the_cap_gets_one_3002(policy: str) -> None:
    async with LocalServer(cfg(live=False, tier="free", over_cap_policy=policy,
                               max_message_size=4 * 1024 * 1024)) as srv:
        pids = [binary(srv, i).parsec_id for i in range(5)]
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": p} for p in pids + pids])
        frames = await c.collect(0.3)
        served = 3 if policy == "truncate" else 0
        assert [f["type"] for f in frames] == ["orderbook"] * served + ["error"]
        assert (frames[-1]["code"], frames[-1]["message"]) == \
            (3002, "max subscriptions reached (limit: 3, tier: free)")
        assert "parsec_id" not in frames[-1]
        (conn,) = srv.connections
        assert len(conn.subs) == served
        # 40,000 distinct unknown markets: at most the cap looked at, never 40,000 errors.
        await c.send(type="unsubscribe", markets=[{"parsec_id": f"kalshi:NOPE-{i}"}
                                                  for i in range(40_000)])
        frames = await c.collect(0.3)
        errors = [f["code"] for f in frames]
        assert errors == ([2002] * 3 if policy == "truncate" else []) + [3002]
        await c.close()


async def test_a_full_account_still_gets_per_market_3002_within_the_cap() -> None:
    async with LocalServer(cfg(live=False, tier="free")) as srv:
        pids = [binary(srv, i).parsec_id for i in range(5)]
        c = await Client.open(srv.url, key="acct")
        await c.send(type="subscribe", markets=[{"parsec_id": pids[0]}, {"parsec_id": pids[1]}])
        await c.collect(0.2)
        c2 = await Client.open(srv.url, key="acct")  # same account: 1 slot left of 3
        await c2.send(type="subscribe", markets=[{"parsec_id": p} for p in pids[2:]])
        frames = await c2.collect(0.3)
        assert [(f["type"], f.get("code")) for f in frames] == \
            [("orderbook", None), ("error", 3002), ("error", 3002)]
        await c.close()
        await c2.close()


async def test_many_books_in_slices_keep_order_and_resubscribe_in_one_pair() -> None:
    # More books than one slice, re-subscribed the way the client coalesces resyncs: one
    # unsubscribe + one subscribe, sent back to back, with a resync queued behind them.
    async with LocalServer(cfg(markets=20, rate=2000.0)) as srv:
        keys = [(p, o) for p, st in sorted(srv.simulator.markets.items())
                for o in st.spec.outcomes]
        sels = [{"parsec_id": p, "outcome": o, "depth": 10} for p, o in keys]
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=sels)
        first = [await c.expect("orderbook") for _ in keys]
        assert [(f["parsec_id"], f["outcome"]) for f in first] == keys
        await c.send(type="unsubscribe", markets=sels)
        await c.send(type="subscribe", markets=sels)
        await c.send(type="resync", parsec_id=keys[0][0], outcome=keys[0][1])
        again = [await c.expect("orderbook") for _ in range(len(keys) + 1)]
        assert [(f["parsec_id"], f["outcome"]) for f in again] == keys + [keys[0]]
        await c.collect(0.2)
        srv.pause_stream()
        await c.collect(0.2)
        (conn,) = srv.connections
        for key in keys:  # every book's frames are contiguous after its last snapshot
            frames = [f for f in c.received if (f.get("parsec_id"), f.get("outcome")) == key
                      and "server_seq" in f]
            last = max(i for i, f in enumerate(frames) if f["type"] == "orderbook")
            seqs = [f["server_seq"] for f in frames[last:]]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert seqs[-1] == conn.last_seq(key)
        await c.close()


# -- a real process, a real RSS ------------------------------------------------------------------

def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
async def test_server_rss_stays_bounded_under_garbage_floods() -> None:
    import parsec_fast

    env = dict(os.environ)
    # the directory parsec_fast is imported from: src/ of a checkout, or site-packages
    src = os.path.dirname(os.path.dirname(os.path.abspath(parsec_fast.__file__)))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parsec_fast.server", "--port", "0", "--markets", "3",
        "--heartbeat", "30", stdout=asyncio.subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = line.split(" on ", 1)[1].split()[0]
        before = _rss_kb(proc.pid)
        for auth in (False, True):  # default limits, a peer that never reads
            peer = await RawPeer.open(url)
            if auth:
                assert await peer.send(text({"type": "auth", "api_key": "demo"}))
            cut_after = await peer.flood(client_frame(GARBAGE), 3.0)
            peer.close()
            assert cut_after is not None and cut_after < 2.0, (auth, cut_after)
        grown_mb = (_rss_kb(proc.pid) - before) / 1024
        assert grown_mb < 16, f"server RSS grew {grown_mb:.1f} MB"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 5)
