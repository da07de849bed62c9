"""The local server driven by an independent client (the ``websockets`` library): auth, every
documented reply and error code, limits, subscriptions, heartbeats and sequence numbers.

``Client`` and the market pickers are reused by tests/test_server_faults.py.
"""
from __future__ import annotations

import asyncio
import math
from typing import Any, Callable

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from parsec_fast.codes import TIER_LIMITS, ErrorCode
from parsec_fast.server import LocalServer, MarketSpec, ServerConfig, expected_books

pytestmark = pytest.mark.timeout(20)


class Client:
    """A thin test client: JSON in, JSON out, every received frame kept in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, key: str | None = "demo", **kwargs: Any) -> Client:
        client = cls(await connect(url, open_timeout=2, close_timeout=0.5, **kwargs))
        if key is not None:
            ok = await client.auth(key)
            assert ok["type"] == "auth_ok", ok
        return client

    async def send(self, **msg: Any) -> None:
        await self.ws.send(orjson.dumps(msg).decode())

    async def auth(self, key: str) -> dict[str, Any]:
        await self.send(type="auth", api_key=key)
        return await self.recv()

    async def recv(self, timeout: float = 2.0) -> dict[str, Any]:
        msg = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.received.append(msg)
        return msg

    async def expect(self, type_: str, pred: Callable[[dict[str, Any]], bool] | None = None,
                     timeout: float = 2.0) -> dict[str, Any]:
        """The next frame of ``type_`` (matching ``pred``), skipping others, within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(max(0.0, deadline - loop.time()))
            if msg["type"] == type_ and (pred is None or pred(msg)):
                return msg

    async def collect(self, seconds: float) -> list[dict[str, Any]]:
        """Every frame received during ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        out = []
        while (left := deadline - loop.time()) > 0:
            try:
                out.append(await self.recv(left))
            except (asyncio.TimeoutError, TimeoutError):
                break
        return out

    async def silent_for(self, seconds: float) -> bool:
        """True if nothing arrives within ``seconds``."""
        try:
            await self.recv(seconds)
        except (asyncio.TimeoutError, TimeoutError):
            return True
        return False

    async def close(self) -> None:
        await self.ws.close()


def binary(srv: LocalServer, i: int = 0) -> MarketSpec:
    """The i-th binary market."""
    return [m for m in (s.spec for s in srv.simulator.markets.values()) if not m.categorical][i]


def categorical(srv: LocalServer, i: int = 0) -> MarketSpec:
    """The i-th categorical market."""
    return [m for m in (s.spec for s in srv.simulator.markets.values()) if m.categorical][i]


def deep_binary(srv: LocalServer, levels: int) -> MarketSpec:
    """A binary market whose Yes book has more than ``levels`` levels on both sides."""
    for st in srv.simulator.markets.values():
        book = st.books.get("Yes")
        if book and not st.spec.categorical and min(len(book.bid_ticks), len(book.ask_ticks)) > levels:
            return st.spec
    raise AssertionError("no deep market")


def cfg(**kw: Any) -> ServerConfig:
    """Test defaults: quick, recorded, control rate generous unless a test checks it."""
    base: dict[str, Any] = dict(markets=12, seed=7, rate=300.0, record=True, control_rate=100,
                                heartbeat_interval=30.0, auth_timeout=5.0)
    base.update(kw)
    return ServerConfig(**base)


def apply_client_side(frames: list[dict[str, Any]], shared_seq: bool = True) -> dict:
    """An independent client-side reconstruction (same rules as a correct client)."""
    books: dict[tuple[str, str], dict[str, Any]] = {}
    for m in frames:
        t = m["type"]
        if t == "orderbook":
            books[(m["parsec_id"], m["outcome"])] = {
                "bid": {p: s for p, s in m["bids"]}, "ask": {p: s for p, s in m["asks"]},
                "seq": m["server_seq"], "ok": True}
        elif t == "orderbook_delta" or (t == "activity" and shared_seq):
            b = books.get((m["parsec_id"], m["outcome"]))
            if b is None or not b["ok"] or m["server_seq"] <= b["seq"]:
                continue
            if m["server_seq"] != b["seq"] + 1:
                b["ok"] = False
                continue
            b["seq"] = m["server_seq"]
            for c in m.get("changes", ()):
                if c["size"] == 0:
                    b[c["side"]].pop(c["price"], None)
                else:
                    b[c["side"]][c["price"]] = c["size"]
            if m.get("book_state") == "needs_refresh":
                b["ok"] = False
        elif t == "resync_required":
            b = books.get((m["parsec_id"], m["outcome"]))
            if b is not None:
                b["ok"] = False
    return books


def seqs(frames: list[dict[str, Any]], pid: str, types: tuple[str, ...]) -> list[int]:
    return [m["server_seq"] for m in frames if m["type"] in types and m.get("parsec_id") == pid]


# -- auth ------------------------------------------------------------------------------------

async def test_nothing_before_auth_then_auth_ok() -> None:
    async with LocalServer(cfg(heartbeat_interval=0.05)) as srv:
        c = await Client.open(srv.url, key=None)
        assert await c.silent_for(0.2)  # not even heartbeats
        ok = await c.auth("demo")
        assert ok["type"] == "auth_ok" and ok["customer_id"].startswith("cust_")
        assert (await c.expect("heartbeat", timeout=1))["ts_ms"] > 0
        await c.close()


async def test_auth_terminal_token() -> None:
    async with LocalServer(cfg()) as srv:
        c = await Client.open(srv.url, key=None)
        await c.send(type="auth_terminal", token="term-123")
        assert (await c.recv())["type"] == "auth_ok"
        await c.close()


@pytest.mark.parametrize("msg", [{"type": "auth", "api_key": "bad-key"},
                                 {"type": "auth", "api_key": ""},
                                 {"type": "auth", "api_key": 42},
                                 {"type": "auth_terminal", "token": "bad"}])
async def test_auth_error_1002_then_close_1008(msg: dict[str, Any]) -> None:
    async with LocalServer(cfg()) as srv:
        c = await Client.open(srv.url, key=None)
        await c.send(**msg)
        err = await c.recv()
        assert err["type"] == "auth_error" and err["code"] == ErrorCode.INVALID_CREDENTIALS == 1002
        assert isinstance(err["message"], str)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


async def test_accepted_keys_allow_list() -> None:
    async with LocalServer(cfg(accepted_keys=frozenset({"k1"}))) as srv:
        good = await Client.open(srv.url, key="k1")
        bad = await Client.open(srv.url, key=None)
        assert (await bad.auth("demo"))["type"] == "auth_error"
        await good.close()


async def test_second_auth_and_control_before_auth_are_1001() -> None:
    async with LocalServer(cfg()) as srv:
        c = await Client.open(srv.url, key=None)
        for msg in ({"type": "subscribe", "markets": [{"parsec_id": binary(srv).parsec_id}]},
                    {"type": "unsubscribe", "markets": [{"parsec_id": binary(srv).parsec_id}]},
                    {"type": "resync", "parsec_id": binary(srv).parsec_id}):
            await c.send(**msg)
            err = await c.recv()
            assert (err["type"], err["code"]) == ("error", 1001)
        assert (await c.auth("demo"))["type"] == "auth_ok"
        err = await c.auth("demo")
        assert (err["type"], err["code"]) == ("error", 1001)
        await c.close()


async def test_auth_timeout_closes_with_1008() -> None:
    async with LocalServer(cfg(auth_timeout=0.3)) as srv:
        c = await Client.open(srv.url, key=None)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.recv(timeout=3)
        assert 0.25 <= loop.time() - t0 < 2
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert c.received == []


async def test_authenticated_connection_outlives_auth_timeout() -> None:
    async with LocalServer(cfg(auth_timeout=0.2, heartbeat_interval=0.1)) as srv:
        c = await Client.open(srv.url)
        frames = await c.collect(0.5)
        assert frames and all(f["type"] == "heartbeat" for f in frames)
        await c.close()


# -- malformed and unknown -----------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "not json", "[1, 2]", '{"no_type": 1}', '{"type": "launch_rockets"}',
    '{"type": "subscribe"}', '{"type": "subscribe", "markets": []}',
    '{"type": "subscribe", "markets": "kalshi:X"}',
    '{"type": "subscribe", "markets": [42]}',
    '{"type": "subscribe", "markets": [{"exchange": "kalshi"}]}',
    '{"type": "subscribe", "markets": [{"parsec_id": 5}]}',
    '{"type": "subscribe", "markets": [{"parsec_id": "PID", "depth": "ten"}]}',
    '{"type": "subscribe", "markets": [{"parsec_id": "PID", "depth": 0}]}',
    '{"type": "subscribe", "markets": [{"parsec_id": "PID", "depth": true}]}',
    '{"type": "subscribe", "markets": [{"parsec_id": "PID", "outcome": 1}]}',
    '{"type": "subscribe", "markets": [{"parsec_id": "PID", "exchange": "x", "market_id": "y"}]}',
    '{"type": "subscribe", "addresses": [{"exchange": "kalshi", "address": "0xabc"}]}',
    '{"type": "subscribe", "addresses": [{"exchange": "polymarket"}]}',
    '{"type": "resync"}',
])
async def test_malformed_messages_are_2001(raw: str) -> None:
    async with LocalServer(cfg(live=False)) as srv:
        c = await Client.open(srv.url)
        await c.ws.send(raw.replace("PID", binary(srv).parsec_id))
        err = await c.recv()
        assert (err["type"], err["code"]) == ("error", ErrorCode.INVALID_MESSAGE)
        assert err["message"]
        # The connection survives: a valid subscribe still works.
        await c.send(type="subscribe", markets=[{"parsec_id": binary(srv).parsec_id}])
        assert (await c.recv())["type"] == "orderbook"
        await c.close()


async def test_unknown_market_2002_carries_parsec_id() -> None:
    async with LocalServer(cfg()) as srv:
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": "kalshi:NOPE"},
                                                {"exchange": "nowhere", "market_id": "1"}])
        e1, e2 = await c.recv(), await c.recv()
        assert (e1["code"], e1["parsec_id"]) == (2002, "kalshi:NOPE")
        assert (e2["code"], e2["parsec_id"]) == (2002, "nowhere:1")
        assert e1["message"] == "market not found"
        await c.close()


async def test_exchange_unavailable_2003() -> None:
    async with LocalServer(cfg()) as srv:
        m = binary(srv)
        srv.faults.exchange_unavailable(m.exchange)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id}])
        err = await c.recv()
        assert (err["code"], err["parsec_id"]) == (2003, m.parsec_id)
        srv.faults.exchange_unavailable(m.exchange, False)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id}])
        assert (await c.expect("orderbook"))["parsec_id"] == m.parsec_id
        await c.close()


async def test_unknown_path_is_refused() -> None:
    async with LocalServer(cfg()) as srv:
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(srv.url.replace("/ws", "/nope"), open_timeout=2)
        assert info.value.response.status_code == 404


# -- subscriptions ----------------------------------------------------------------------------

async def test_snapshot_has_every_documented_field() -> None:
    async with LocalServer(cfg(stale_after_ms=4321)) as srv:
        m = binary(srv, 1)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id}])
        snap = await c.recv()
        for field in ("type", "parsec_id", "exchange", "outcome", "token_id", "market_id",
                      "tick_size", "min_order_size", "kind", "title", "bids", "asks", "book_state",
                      "server_seq", "feed_state", "stale_after_ms", "exchange_ts_ms", "ingest_ts_ms"):
            assert field in snap, field
        assert (snap["type"], snap["kind"], snap["outcome"]) == ("orderbook", "snapshot", "Yes")
        assert (snap["exchange"], snap["market_id"]) == (m.exchange, m.market_id)
        assert snap["parsec_id"] == f"{m.exchange}:{m.market_id}"
        assert (snap["book_state"], snap["feed_state"], snap["stale_after_ms"]) == ("fresh", "healthy", 4321)
        assert snap["tick_size"] in (0.1, 0.01, 0.001, 0.0001)
        bids, asks = snap["bids"], snap["asks"]
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
        assert [p for p, _ in asks] == sorted(p for p, _ in asks)
        assert bids and asks and bids[0][0] < asks[0][0]
        for p, s in bids + asks:
            assert 0 < p <= 1 and s > 0
            assert math.isclose(p / snap["tick_size"], round(p / snap["tick_size"]), abs_tol=1e-6)
        await c.close()


async def test_exchange_and_market_id_selector_and_binary_default_yes() -> None:
    async with LocalServer(cfg()) as srv:
        m = binary(srv)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"exchange": m.exchange, "market_id": m.market_id,
                                                 "outcome": None}])
        snap = await c.recv()
        assert (snap["parsec_id"], snap["outcome"]) == (m.parsec_id, "Yes")
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id, "outcome": "nO"}])
        snap = await c.expect("orderbook")
        assert snap["outcome"] == "No"
        assert snap["token_id"] == m.token_id("No")
        await c.close()


async def test_categorical_outcomes() -> None:
    async with LocalServer(cfg()) as srv:
        m = categorical(srv)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id}])
        err = await c.recv()
        assert (err["type"], err["code"], err["parsec_id"]) == ("error", 2005, m.parsec_id)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id, "outcome": "Yes"}])
        err = await c.recv()
        assert (err["code"], err["parsec_id"]) == (2005, m.parsec_id)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id,
                                                 "outcome": m.outcomes[1].upper()}])
        snap = await c.expect("orderbook")
        assert snap["outcome"] == m.outcomes[1]
        await c.close()


async def test_unknown_outcome_on_binary_is_2005() -> None:
    async with LocalServer(cfg()) as srv:
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": binary(srv).parsec_id, "outcome": "Maybe"}])
        assert (await c.recv())["code"] == 2005
        await c.close()


@pytest.mark.parametrize("tier,asked,expected", [("free", None, 10), ("free", 100, 10),
                                                 ("pro", None, 50), ("pro", 500, 100),
                                                 ("pro", 3, 3)])
async def test_depth_default_and_clamp(tier: str, asked: int | None, expected: int) -> None:
    async with LocalServer(cfg(tier=tier, markets=20, rate=2000.0)) as srv:
        m = deep_binary(srv, 100)
        c = await Client.open(srv.url)
        sel: dict[str, Any] = {"parsec_id": m.parsec_id}
        if asked is not None:
            sel["depth"] = asked
        await c.send(type="subscribe", markets=[sel])
        snap = await c.recv()
        assert len(snap["bids"]) == len(snap["asks"]) == expected
        frames = [snap] + await c.collect(0.4)
        # The server keeps the view trimmed: replaying never exceeds the depth.
        books = apply_client_side([f for f in frames if f["type"] != "activity"], shared_seq=False)
        assert len(books[(m.parsec_id, "Yes")]["bid"]) <= expected
        assert len(books[(m.parsec_id, "Yes")]["ask"]) <= expected
        assert any(f["type"] == "orderbook_delta" for f in frames)
        await c.close()


async def test_subscription_cap_3002_per_account_across_connections() -> None:
    limit = TIER_LIMITS["free"][0]
    # "truncate": the first `limit` markets of an over-cap message are served (the default,
    # "refuse", refuses such a message whole: tests/test_server_limits.py).
    async with LocalServer(cfg(tier="free", live=False, over_cap_policy="truncate")) as srv:
        pids = [binary(srv, i).parsec_id for i in range(limit + 1)]
        c1 = await Client.open(srv.url, key="acct-a")
        await c1.send(type="subscribe", markets=[{"parsec_id": p} for p in pids])
        replies = [await c1.recv() for _ in range(limit + 1)]
        assert [r["type"] for r in replies] == ["orderbook"] * limit + ["error"]
        assert replies[-1]["code"] == 3002
        assert replies[-1]["message"] == f"max subscriptions reached (limit: {limit}, tier: free)"
        # Re-subscribing an existing market is not a new subscription.
        await c1.send(type="subscribe", markets=[{"parsec_id": pids[0], "depth": 5}])
        assert (await c1.recv())["type"] == "orderbook"
        # Same account on a second connection: capped; addresses count too.
        c2 = await Client.open(srv.url, key="acct-a")
        await c2.send(type="subscribe", addresses=[{"exchange": "polymarket", "address": "0x1"}])
        assert (await c2.recv())["code"] == 3002
        # Another account is independent.
        c3 = await Client.open(srv.url, key="acct-b")
        await c3.send(type="subscribe", markets=[{"parsec_id": pids[-1]}],
                      addresses=[{"exchange": "polymarket", "address": "0x1"}])
        assert (await c3.recv())["type"] == "orderbook"
        assert (await c3.recv())["type"] == "wallet_activity"
        # Unsubscribing frees a slot.
        await c1.send(type="unsubscribe", markets=[{"parsec_id": pids[0]}])
        await asyncio.sleep(0.05)
        await c2.send(type="subscribe", markets=[{"parsec_id": pids[-1]}])
        assert (await c2.recv())["type"] == "orderbook"
        for c in (c1, c2, c3):
            await c.close()


async def test_control_rate_limit_3001() -> None:
    async with LocalServer(cfg(control_rate=3, control_window=0.4, live=False)) as srv:
        m = binary(srv)
        c = await Client.open(srv.url)
        sub = {"type": "subscribe", "markets": [{"parsec_id": m.parsec_id}]}
        for _ in range(2):
            await c.send(**sub)
            assert (await c.recv())["type"] == "orderbook"
        await c.send(type="resync", parsec_id=m.parsec_id)
        assert (await c.recv())["type"] == "orderbook"
        await c.send(type="unsubscribe", markets=[{"parsec_id": m.parsec_id}])
        err = await c.recv()
        assert (err["type"], err["code"]) == ("error", 3001)
        await asyncio.sleep(0.45)
        await c.send(**sub)
        assert (await c.recv())["type"] == "orderbook"
        await c.close()


async def test_default_control_rate_is_three_per_second() -> None:
    async with LocalServer(cfg(control_rate=ServerConfig().control_rate, live=False)) as srv:
        c = await Client.open(srv.url)
        for _ in range(4):
            await c.send(type="subscribe", markets=[{"parsec_id": binary(srv).parsec_id}])
        replies = [await c.recv() for _ in range(4)]
        assert [r["type"] for r in replies] == ["orderbook"] * 3 + ["error"]
        assert replies[-1]["code"] == 3001
        await c.close()


async def test_unsubscribe_stops_the_stream() -> None:
    async with LocalServer(cfg(rate=2000.0, markets=4)) as srv:
        a, b = binary(srv, 0), binary(srv, 1)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": a.parsec_id}, {"parsec_id": b.parsec_id}])
        await c.collect(0.2)
        await c.send(type="unsubscribe", markets=[{"parsec_id": a.parsec_id}])
        await c.collect(0.2)  # frames in flight
        later = await c.collect(0.3)
        assert later and all(f.get("parsec_id") != a.parsec_id for f in later)
        assert any(f.get("parsec_id") == b.parsec_id for f in later)
        await c.close()


async def test_resync_sends_a_fresh_snapshot_with_a_higher_seq() -> None:
    async with LocalServer(cfg(rate=1000.0, markets=3)) as srv:
        m = binary(srv)
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id}])
        first = await c.expect("orderbook")
        await c.collect(0.2)
        await c.send(type="resync", parsec_id=m.parsec_id, outcome="yes")
        second = await c.expect("orderbook")
        last_before = max(seqs(c.received[:-1], m.parsec_id, ("orderbook_delta", "activity", "orderbook")))
        assert second["server_seq"] == last_before + 1 > first["server_seq"]
        # Resync of something not subscribed is an error, the connection lives on.
        await c.send(type="resync", exchange=binary(srv, 1).exchange, market_id=binary(srv, 1).market_id)
        err = await c.expect("error")
        assert err["code"] == 2001 and err["parsec_id"] == binary(srv, 1).parsec_id
        await c.close()


async def test_address_subscription_sends_wallet_activity() -> None:
    async with LocalServer(cfg(wallet_interval=0.2)) as srv:
        c = await Client.open(srv.url)
        await c.send(type="subscribe", addresses=[{"exchange": "limitless", "address": "0xAbC"}])
        w = await c.recv()
        assert set(w) == {"type", "exchange", "address", "data", "ts_ms"}
        assert (w["type"], w["exchange"], w["address"]) == ("wallet_activity", "limitless", "0xAbC")
        assert set(w["data"]) == {"positions", "orders", "trades"}
        assert all(isinstance(v, list) for v in w["data"].values())
        again = await c.expect("wallet_activity", timeout=1)  # periodic refresh
        assert again["address"] == "0xAbC"
        await c.send(type="unsubscribe", addresses=[{"exchange": "limitless", "address": "0xAbC"}])
        await c.collect(0.1)
        assert all(f["type"] != "wallet_activity" for f in await c.collect(0.35))
        await c.close()


async def test_heartbeat_interval() -> None:
    async with LocalServer(cfg(heartbeat_interval=0.1, live=False)) as srv:
        c = await Client.open(srv.url)
        frames = await c.collect(0.55)
        beats = [f for f in frames if f["type"] == "heartbeat"]
        assert 3 <= len(beats) <= 7
        assert beats == sorted(beats, key=lambda f: f["ts_ms"])
        assert set(beats[0]) == {"type", "ts_ms"}
        await c.close()


# -- sequence numbers and the recorder ------------------------------------------------------------

async def _stream(srv: LocalServer, seconds: float, n_markets: int = 3) -> tuple[Client, list[MarketSpec]]:
    markets = [binary(srv, i) for i in range(n_markets)]
    c = await Client.open(srv.url)
    await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id, "depth": 10} for m in markets])
    await c.collect(seconds)
    return c, markets


async def test_shared_counter_is_contiguous_over_book_and_activity() -> None:
    async with LocalServer(cfg(rate=3000.0, markets=4)) as srv:
        c, markets = await _stream(srv, 0.6)
        kinds = set()
        for m in markets:
            frames = [f for f in c.received if f.get("parsec_id") == m.parsec_id]
            kinds |= {f["type"] for f in frames}
            s = [f["server_seq"] for f in frames]
            assert frames[0]["type"] == "orderbook" and frames[0]["server_seq"] == srv.config.initial_seq
            assert s == list(range(s[0], s[0] + len(s)))
        assert {"orderbook", "orderbook_delta", "activity"} <= kinds
        await c.close()


async def test_separate_activity_counter_mode() -> None:
    async with LocalServer(cfg(rate=3000.0, markets=4, separate_activity_seq=True)) as srv:
        c, markets = await _stream(srv, 0.6)
        n_activity = 0
        for m in markets:
            book = seqs(c.received, m.parsec_id, ("orderbook", "orderbook_delta"))
            act = seqs(c.received, m.parsec_id, ("activity",))
            n_activity += len(act)
            assert book == list(range(book[0], book[0] + len(book)))
            assert act == list(range(act[0], act[0] + len(act))) if act else True
        assert n_activity > 0
        books = expected_books(srv.recorder.connections[0].frames, shared_seq=False)
        assert all(b.valid for b in books.values())
        await c.close()


async def test_activity_frames_have_documented_fields() -> None:
    async with LocalServer(cfg(rate=3000.0, markets=4)) as srv:
        c, _ = await _stream(srv, 0.6)
        acts = [f for f in c.received if f["type"] == "activity"]
        trades = [a for a in acts if a["kind"] == "trade"]
        fills = [a for a in acts if a["kind"] == "fill"]
        assert trades
        for t in trades:
            assert {"parsec_id", "exchange", "outcome", "token_id", "market_id", "price", "size",
                    "trade_id", "aggressor_side", "server_seq", "feed_state"} <= set(t)
            assert 0 < t["price"] <= 1 and t["size"] > 0
        for f in fills:
            assert {"fill_id", "order_id", "liquidity_role"} <= set(f)
        await c.close()


async def test_fills_only_for_the_configured_account() -> None:
    async with LocalServer(cfg(rate=6000.0, markets=2, fill_account="trader")) as srv:
        m = binary(srv)
        a = await Client.open(srv.url, key="trader")
        b = await Client.open(srv.url, key="other")
        for c in (a, b):
            await c.send(type="subscribe", markets=[{"parsec_id": m.parsec_id}])
        await asyncio.gather(a.collect(1.0), b.collect(1.0))
        assert any(f.get("kind") == "fill" for f in a.received)
        assert not any(f.get("kind") == "fill" for f in b.received)
        assert any(f.get("kind") == "trade" for f in b.received)


async def test_client_reconstruction_matches_recorder_and_simulator() -> None:
    async with LocalServer(cfg(rate=3000.0, markets=6)) as srv:
        markets = [binary(srv, 0), binary(srv, 1), categorical(srv)]
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[
            {"parsec_id": markets[0].parsec_id, "depth": 5},
            {"parsec_id": markets[1].parsec_id, "outcome": "No"},
            {"parsec_id": markets[2].parsec_id, "outcome": markets[2].outcomes[0], "depth": 100}])
        await c.collect(0.4)
        srv.pause_stream()
        await c.collect(0.2)  # drain what is in flight
        record = srv.recorder.connections[0]
        # Everything the client got is exactly what the recorder logged, in order.
        assert c.received == record.messages()
        mine = apply_client_side(c.received)
        expected = expected_books(record.frames)
        assert len(expected) == 3
        for key, book in expected.items():
            assert book.valid
            got = mine[key]
            assert sorted(got["bid"].items(), reverse=True) == book.bid_levels()
            assert sorted(got["ask"].items()) == book.ask_levels()
            assert got["seq"] == book.seq
        # With the stream paused, the server's own view agrees.
        for (pid, outcome), book in expected.items():
            depth = {markets[0].parsec_id: 5, markets[1].parsec_id: 50}.get(pid, 100)
            sim = srv.simulator.book(pid, outcome)
            assert [tuple(x) for x in sim.top("bid", depth)] == book.bid_levels()
            assert [tuple(x) for x in sim.top("ask", depth)] == book.ask_levels()
        await c.close()


async def test_serve_forever_in_a_separate_process_prints_its_url() -> None:
    import os
    import sys

    import parsec_fast

    env = dict(os.environ)
    # the directory parsec_fast is imported from: src/ of a checkout, or site-packages
    src = os.path.dirname(os.path.dirname(os.path.abspath(parsec_fast.__file__)))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parsec_fast.server", "--markets", "3", "--heartbeat", "0.1",
        stdout=asyncio.subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = line.split(" on ", 1)[1].split()[0]
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/ws")
        c = await Client.open(url)
        assert (await c.expect("heartbeat", timeout=2))["type"] == "heartbeat"
        await c.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 5)


async def test_explicit_market_list() -> None:
    markets = [MarketSpec("kalshi", "KXTEST-1", "Test?", 0.1),
               MarketSpec("opinion", "77", "Who?", 0.0001, ("A", "B", "C"), True, None, ("1", "2", "3"))]
    async with LocalServer(cfg(markets=markets)) as srv:
        c = await Client.open(srv.url)
        await c.send(type="subscribe", markets=[{"parsec_id": "kalshi:KXTEST-1", "depth": 3},
                                                {"parsec_id": "opinion:77", "outcome": "c"}])
        a, b = await c.expect("orderbook"), await c.expect("orderbook")
        assert (a["tick_size"], a["token_id"], len(a["bids"]) <= 3) == (0.1, "", True)
        assert (b["outcome"], b["token_id"], b["min_order_size"]) == ("C", "3", None)
        await c.close()
