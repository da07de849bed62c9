"""parsec_fast.compat, used the way users of the official SDK's ParsecWebSocket use it, against
the in-process LocalServer; plus a parity test with the real ``parsec_api.streaming``."""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import pickle
import socket
from typing import Any, Callable

import pytest

from parsec_fast.compat import (Activity, MarketSubscription, OrderbookSnapshot, ParsecWebSocket,
                                StreamingOrderbookLevel, WsError, ws_url)
from parsec_fast.server import LocalServer, MarketSpec, ServerConfig, expected_books

pytestmark = pytest.mark.timeout(30)

FAST = {"backoff_initial": 0.1, "backoff_max": 0.5}
BOOK_KEYS = ["parsec_id", "outcome", "exchange", "token_id", "market_id", "title", "bids", "asks",
             "mid_price", "spread", "tick_size", "last_seq"]


def cfg(**kw: Any) -> ServerConfig:
    base: dict[str, Any] = dict(markets=8, seed=11, rate=400.0, record=True, control_rate=100,
                                heartbeat_interval=30.0, auth_timeout=5.0)
    base.update(kw)
    return ServerConfig(**base)


def lively(srv: LocalServer) -> None:
    """Make trades and fills frequent (the simulator's defaults are 6 % and 1 % of events)."""
    srv.simulator.fill_probability = 0.15
    srv.simulator.trade_probability = 0.3


def binary(srv: LocalServer, i: int = 0) -> MarketSpec:
    return [m for m in (s.spec for s in srv.simulator.markets.values()) if not m.categorical][i]


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) until ``cond()`` holds."""
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def frames_of(srv: LocalServer) -> list[bytes]:
    assert srv.recorder is not None
    return [f for conn in srv.recorder.connections for f in conn.frames]


def levels(side: list[dict[str, float]]) -> list[tuple[float, float]]:
    return [(lv["price"], lv["size"]) for lv in side]


async def settle(srv: LocalServer) -> None:
    """Stop the stream and let every frame reach the client."""
    srv.pause_stream()
    await asyncio.sleep(0.3)


def assert_book_matches(ws: ParsecWebSocket, srv: LocalServer, pid: str, outcome: str = "Yes",
                        conn_index: int = -1) -> dict[str, Any]:
    assert srv.recorder is not None
    exp = expected_books(srv.recorder.connections[conn_index].frames)[(pid, outcome)]
    assert exp.valid
    book = ws.get_book(pid, outcome)
    assert book is not None
    assert levels(book["bids"]) == exp.bid_levels()
    assert levels(book["asks"]) == exp.ask_levels()
    assert book["last_seq"] == exp.seq
    return book


# -- payload types ------------------------------------------------------------------------------

def test_payload_types_match_the_sdk_field_for_field() -> None:
    sdk = pytest.importorskip("parsec_api.streaming")
    for ours, theirs in ((OrderbookSnapshot, sdk.OrderbookSnapshot),
                         (StreamingOrderbookLevel, sdk.StreamingOrderbookLevel),
                         (Activity, sdk.Activity), (WsError, sdk.WsError),
                         (MarketSubscription, sdk.MarketSubscription)):
        ours_f = [(f.name, f.default) for f in dataclasses.fields(ours)]
        theirs_f = [(f.name, f.default) for f in dataclasses.fields(theirs)]
        assert ours_f == theirs_f, ours.__name__
    assert WsError("x") == WsError(message="x", code=None, parsec_id=None)
    assert ws_url("https://api.parsecapi.com/") == "wss://api.parsecapi.com/ws"
    assert ws_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"


# -- connect, orderbook events, get_book ----------------------------------------------------------

async def test_orderbook_events_and_get_book_equal_the_recorded_stream() -> None:
    async with LocalServer(cfg()) as srv:
        yes = binary(srv, 0)
        other = binary(srv, 1)
        events: list[OrderbookSnapshot] = []
        seen_inline: list[tuple[str, str, int, list[tuple[float, float]],
                                list[tuple[float, float]]]] = []
        async with ParsecWebSocket("demo", srv.url) as ws:
            assert ws._state == "connected"
            assert isinstance(ws.customer_id, str) and ws.customer_id

            @ws.on("orderbook")
            async def keep(ob: OrderbookSnapshot) -> None:
                events.append(ob)

            @ws.on("orderbook")
            def read_inline(ob: OrderbookSnapshot) -> None:  # a plain def works too
                seen_inline.append((ob.parsec_id, ob.outcome, ob.server_seq,
                                    [(lv.price, lv.size) for lv in ob.bids],
                                    [(lv.price, lv.size) for lv in ob.asks]))

            ws.subscribe(parsec_id=yes.parsec_id)
            ws.subscribe([MarketSubscription(yes.parsec_id, "No"),
                          MarketSubscription(other.parsec_id, depth=5)])
            await until(lambda: sum(e.kind == "delta" for e in events) >= 30)
            await settle(srv)

            # Snapshot first per book, then deltas; fields typed as the SDK's.
            first: dict[tuple[str, str], str] = {}
            for ob in events:
                first.setdefault((ob.parsec_id, ob.outcome), ob.kind)
                assert type(ob).__name__ == "OrderbookSnapshot" and isinstance(ob, OrderbookSnapshot)
                assert ob.kind in ("snapshot", "delta")
                assert all(type(lv) is StreamingOrderbookLevel for lv in ob.bids + ob.asks)
                assert [lv.price for lv in ob.bids] == sorted((lv.price for lv in ob.bids),
                                                              reverse=True)
                assert [lv.price for lv in ob.asks] == sorted(lv.price for lv in ob.asks)
                assert isinstance(ob.mid_price, float) and isinstance(ob.spread, float)
                assert isinstance(ob.server_seq, int) and isinstance(ob.stale_after_ms, int)
                assert ob.feed_state == "healthy" and ob.book_state in ("fresh", "stale")
                assert isinstance(ob.exchange_ts_ms, int) and isinstance(ob.ingest_ts_ms, int)
                exchange, _, market_id = ob.parsec_id.partition(":")
                assert (ob.exchange, ob.market_id) == (exchange, market_id)
                assert isinstance(ob.title, str) and isinstance(ob.tick_size, float)
            assert set(first) == {(yes.parsec_id, "Yes"), (yes.parsec_id, "No"),
                                  (other.parsec_id, "Yes")}
            assert set(first.values()) == {"snapshot"}

            # Every kept payload (and every inline read) is the book as of its own frame.
            frames = srv.recorder.connections[0].frames  # type: ignore[union-attr]
            seq_index = {}
            for i, raw in enumerate(frames):
                m = __import__("orjson").loads(raw)
                if m["type"] in ("orderbook", "orderbook_delta"):
                    seq_index[(m["parsec_id"], m["outcome"], m["server_seq"])] = i
            assert len(seen_inline) == len(events)
            for ob, inline in zip(events, seen_inline):
                i = seq_index[(ob.parsec_id, ob.outcome, ob.server_seq)]
                exp = expected_books(frames[:i + 1])[(ob.parsec_id, ob.outcome)]
                kept = ([(lv.price, lv.size) for lv in ob.bids], [(lv.price, lv.size) for lv in ob.asks])
                assert kept == (exp.bid_levels(), exp.ask_levels())
                assert inline[3:] == kept and inline[2] == ob.server_seq
            # Mid/spread with the SDK's arithmetic.
            last = events[-1]
            if last.bids and last.asks:
                assert last.mid_price == (last.bids[0].price + last.asks[0].price) / 2

            # get_book: the SDK's shape, equal to what a correct client must hold.
            for pid, outcome in ((yes.parsec_id, "Yes"), (yes.parsec_id, "No"),
                                 (other.parsec_id, "Yes")):
                book = assert_book_matches(ws, srv, pid, outcome, conn_index=0)
                assert list(book) == BOOK_KEYS
                assert book["outcome"] == outcome and book["title"] == (
                    yes.title if pid == yes.parsec_id else other.title)
                assert len(book["bids"]) <= (5 if pid == other.parsec_id else 50)
            book = ws.get_book(yes.parsec_id)  # default outcome "yes", case-insensitive
            assert book is not None and book["outcome"] == "Yes"
            book["bids"].clear()  # a new object each call
            assert ws.get_book(yes.parsec_id)["bids"]  # type: ignore[index]
            assert ws.get_book("kalshi:NOPE") is None
            assert ws.get_book(other.parsec_id, "No") is None

            # Payloads are safe to keep, copy, compare and pickle (plain OrderbookSnapshot).
            plain = copy.deepcopy(events[0])
            assert type(plain) is OrderbookSnapshot and plain == events[0] and events[0] == plain
            assert pickle.loads(pickle.dumps(events[1])) == events[1]
            assert dataclasses.asdict(events[2])["bids"] == [dataclasses.asdict(lv)
                                                             for lv in events[2].bids]
            assert repr(events[0]).startswith("OrderbookSnapshot(parsec_id=")


async def test_off_unsubscribe_and_close() -> None:
    async with LocalServer(cfg()) as srv:
        a, b = binary(srv, 0), binary(srv, 1)
        counts = {"a": 0, "b": 0}
        disconnects: list[str] = []
        ws = ParsecWebSocket("demo", srv.url)

        async def on_a(ob: OrderbookSnapshot) -> None:
            counts["a"] += 1

        async def on_b(ob: OrderbookSnapshot) -> None:
            if ob.parsec_id == b.parsec_id:
                counts["b"] += 1

        assert ws.on("orderbook")(on_a) is on_a
        ws.on("orderbook")(on_b)
        ws.on("disconnected")(disconnects.append)
        ws.subscribe(parsec_id=a.parsec_id)  # before connect: sent with the first batch
        ws.subscribe(parsec_id=b.parsec_id)
        await ws.connect()
        await ws.connect()  # already connected: no-op
        await until(lambda: counts["a"] > 5 and counts["b"] > 0)
        ws.off("orderbook", on_a)
        ws.off("orderbook", on_a)  # absent: no error
        ws.off("nonsense", on_a)
        before = counts["a"]
        ws.unsubscribe(parsec_id=b.parsec_id, outcome="Yes")  # keyed differently: no-op
        assert ws.get_book(b.parsec_id) is not None
        ws.unsubscribe(parsec_id=b.parsec_id)
        assert ws.get_book(b.parsec_id) is None
        b_after = counts["b"]
        await asyncio.sleep(0.4)
        assert counts["a"] == before and counts["b"] == b_after
        assert ws.get_book(a.parsec_id) is not None
        cid = ws.customer_id

        await ws.close()
        await ws.close()
        assert disconnects == ["Client closed", "Client closed"]
        assert ws._state == "closed" and ws.customer_id == cid
        assert ws.get_book(a.parsec_id) is None and ws._subscriptions == {}
        await asyncio.wait_for(ws.run_forever(), 1.0)  # returns at once when closed

        # connect() after close() works, with no subscription left.
        await ws.connect()
        assert ws._state == "connected"
        await asyncio.sleep(0.2)
        assert ws.get_book(a.parsec_id) is None
        await ws.close()


async def test_activity_heartbeat_and_errors() -> None:
    async with LocalServer(cfg(heartbeat_interval=0.2)) as srv:
        lively(srv)
        spec = binary(srv, 0)
        acts: list[Activity] = []
        errors: list[WsError] = []
        beats: list[int] = []
        async with ParsecWebSocket("demo", srv.url) as ws:
            ws.on("activity")(acts.append)
            ws.on("error")(errors.append)

            @ws.on("heartbeat")
            async def hb(ts_ms: int) -> None:
                beats.append(ts_ms)

            ws.subscribe(parsec_id=spec.parsec_id)
            ws.subscribe(parsec_id="kalshi:NOPE")
            ws.subscribe(parsec_id="no-colon")  # malformed: reported locally
            await until(lambda: {a.kind for a in acts} >= {"trade", "fill"} and len(beats) >= 1
                        and any(e.code == 2002 for e in errors))
        for act in acts:
            assert type(act) is Activity
            assert act.parsec_id == spec.parsec_id and act.exchange == spec.exchange
            assert isinstance(act.price, float) and isinstance(act.size, float)
            assert isinstance(act.server_seq, int) and isinstance(act.source_channel, str)
            if act.kind == "trade":
                assert isinstance(act.trade_id, str) and act.fill_id is None
            else:
                assert isinstance(act.fill_id, str) and isinstance(act.order_id, str)
                assert act.liquidity_role in ("maker", "taker")
        assert all(isinstance(t, int) and t > 0 for t in beats)
        nope = [e for e in errors if e.code == 2002]
        assert nope[0].parsec_id == "kalshi:NOPE" and type(nope[0]) is WsError and nope[0].message
        assert any(e.code == 2001 and e.parsec_id == "no-colon" for e in errors)


async def test_handler_errors_are_logged_and_the_next_handler_runs(
        caplog: pytest.LogCaptureFixture) -> None:
    async with LocalServer(cfg()) as srv:
        calls: list[str] = []
        async with ParsecWebSocket("demo", srv.url) as ws:
            @ws.on("orderbook")
            async def boom(ob: OrderbookSnapshot) -> None:
                raise RuntimeError("handler bug")

            after_sleep: list[tuple[int, list[tuple[float, float]]]] = []

            @ws.on("orderbook")
            async def slow(ob: OrderbookSnapshot) -> None:
                await asyncio.sleep(0.01)  # really suspends: continues as a task
                calls.append(ob.kind)
                # Read after the book moved on: still this frame's levels.
                after_sleep.append((ob.server_seq, [(lv.price, lv.size) for lv in ob.bids]))

            pid = binary(srv).parsec_id
            ws.subscribe(parsec_id=pid)
            await until(lambda: len(calls) >= 5)
            assert ws.get_book(pid) is not None
            frames = srv.recorder.connections[0].frames  # type: ignore[union-attr]
            for seq, bids in after_sleep:
                upto = next(i for i, f in enumerate(frames)
                            if f'"server_seq":{seq},'.encode() in f and pid.encode() in f)
                assert bids == expected_books(frames[:upto + 1])[(pid, "Yes")].bid_levels()
        assert "Callback error in orderbook handler" in caplog.text


# -- failures and recovery ------------------------------------------------------------------------

async def test_auth_failure_raises_and_stops() -> None:
    async with LocalServer(cfg()) as srv:
        errors: list[WsError] = []
        disconnects: list[str] = []
        ws = ParsecWebSocket("bad-key", srv.url)
        ws.on("error")(errors.append)
        ws.on("disconnected")(disconnects.append)
        with pytest.raises(ConnectionError):
            await ws.connect()
        assert errors and errors[0].code == 1002 and errors[0].parsec_id is None
        assert disconnects == [] and ws._state == "closed"
        await asyncio.wait_for(ws.run_forever(), 1.0)
        assert len(srv.connections) <= 1  # never retried


async def test_failed_connect_is_reported_and_retryable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    errors: list[WsError] = []
    ws = ParsecWebSocket("demo", f"ws://127.0.0.1:{port}/ws")
    ws.on("error")(errors.append)
    for attempt in range(2):  # the SDK silently did nothing on the second call
        with pytest.raises(OSError):
            await ws.connect()
        assert len(errors) == attempt + 1 and errors[-1].code is None
        assert ws._state == "disconnected"


async def test_reconnect_after_abrupt_close_rebuilds_books() -> None:
    async with LocalServer(cfg()) as srv:
        spec = binary(srv)
        seen: list[tuple[str, tuple[Any, ...]]] = []
        async with ParsecWebSocket("demo", srv.url, client_options=FAST) as ws:
            for name in ("connected", "disconnected", "reconnecting"):
                ws.on(name)(lambda *args, _n=name: seen.append((_n, args)))
            ws.subscribe(parsec_id=spec.parsec_id)
            await until(lambda: ws.get_book(spec.parsec_id) is not None)
            cid = ws.customer_id
            assert srv.faults.close_all_abruptly() == 1
            await until(lambda: [n for n, _ in seen] == ["disconnected", "reconnecting",
                                                         "connected"])
            assert seen[0][1] == ("Connection closed",)
            attempt, delay_ms = seen[1][1]
            assert attempt == 1 and isinstance(delay_ms, int) and 0 <= delay_ms <= 1000
            assert ws._state == "connected" and ws.customer_id == cid
            await until(lambda: len(srv.recorder.connections) == 2  # type: ignore[union-attr]
                        and bool(srv.recorder.connections[1].of_type("orderbook")))
            await asyncio.sleep(0.2)
            await settle(srv)
            assert_book_matches(ws, srv, spec.parsec_id)


async def test_gap_is_recovered_with_one_resync() -> None:
    async with LocalServer(cfg()) as srv:
        spec = binary(srv)
        kinds: list[tuple[str, int]] = []
        async with ParsecWebSocket("demo", srv.url) as ws:
            @ws.on("orderbook")
            async def on_book(ob: OrderbookSnapshot) -> None:
                if ob.parsec_id == spec.parsec_id and ob.outcome == "Yes":
                    kinds.append((ob.kind, ob.server_seq))

            ws.subscribe(parsec_id=spec.parsec_id)
            await until(lambda: len(kinds) >= 5)
            srv.faults.drop_next_delta(spec.parsec_id)
            await until(lambda: sum(k == "snapshot" for k, _ in kinds) >= 2)
            await asyncio.sleep(0.3)
            await settle(srv)
            assert_book_matches(ws, srv, spec.parsec_id)
            assert ws.client is not None
            metrics = ws.client.metrics
            assert metrics.gaps >= 1 and 1 <= metrics.resyncs_sent <= 2  # no storm
            # No orderbook event for dropped deltas: seqs only move forward.
            seqs = [s for _, s in kinds]
            assert seqs == sorted(seqs)


async def test_resync_required_and_duplicate_are_handled() -> None:
    async with LocalServer(cfg()) as srv:
        spec = binary(srv)
        async with ParsecWebSocket("demo", srv.url) as ws:
            ws.subscribe(parsec_id=spec.parsec_id)
            await until(lambda: ws.get_book(spec.parsec_id) is not None)
            srv.faults.duplicate_next(spec.parsec_id)
            await asyncio.sleep(0.2)
            srv.faults.send_resync_required(spec.parsec_id)
            assert ws.client is not None
            await until(lambda: ws.client.metrics.resyncs_sent >= 1)  # type: ignore[union-attr]
            await asyncio.sleep(0.4)
            await settle(srv)
            assert_book_matches(ws, srv, spec.parsec_id)
            assert ws.client.metrics.duplicates >= 1


# -- parity with the official SDK -----------------------------------------------------------------

def _shape(value: Any) -> Any:
    """Field names and value types (recursively), not values."""
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, [(f.name, _shape(getattr(value, f.name)))
                                      for f in dataclasses.fields(value)])
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", _shape(value[0]) if value else None]
    return type(value).__name__


async def test_parity_with_the_official_sdk() -> None:
    sdk = pytest.importorskip("parsec_api.streaming")
    async with LocalServer(cfg(rate=200.0)) as srv:
        lively(srv)
        spec = binary(srv)
        results: dict[str, dict[str, Any]] = {}
        clients = {"sdk": sdk.ParsecWebSocket("demo", srv.url),
                   "ours": ParsecWebSocket("demo", srv.url)}
        for name, ws in clients.items():
            got: dict[str, Any] = {"orderbook": {}, "activity": {}, "error": None}
            results[name] = got

            async def on_book(ob: Any, _got: dict[str, Any] = got) -> None:
                _got["orderbook"].setdefault(ob.kind, ob)

            async def on_act(act: Any, _got: dict[str, Any] = got) -> None:
                _got["activity"].setdefault(act.kind, act)

            async def on_err(err: Any, _got: dict[str, Any] = got) -> None:
                _got["error"] = err

            ws.on("orderbook")(on_book)
            ws.on("activity")(on_act)
            ws.on("error")(on_err)
            await ws.connect()
            ws.subscribe(parsec_id=spec.parsec_id)
            market_cls = sdk.MarketSubscription if name == "sdk" else MarketSubscription
            ws.subscribe(market_cls("kalshi:NOPE"))

        def complete(g: dict[str, Any]) -> bool:
            return (set(g["orderbook"]) == {"snapshot", "delta"} and g["error"] is not None
                    and set(g["activity"]) >= {"trade", "fill"})
        try:
            await until(lambda: all(complete(g) for g in results.values()), timeout=10)
            books = {n: ws.get_book(spec.parsec_id) for n, ws in clients.items()}
            assert books["sdk"] is not None and books["ours"] is not None
            assert _shape(books["ours"]) == _shape(books["sdk"])
            assert clients["ours"].customer_id == clients["sdk"].customer_id is not None
            for kind in ("snapshot", "delta"):
                assert _shape(results["ours"]["orderbook"][kind]) == \
                    _shape(results["sdk"]["orderbook"][kind])
            for kind in ("trade", "fill"):
                assert _shape(results["ours"]["activity"][kind]) == \
                    _shape(results["sdk"]["activity"][kind])
            assert _shape(results["ours"]["error"]) == _shape(results["sdk"]["error"])
            assert (results["ours"]["error"].code, results["ours"]["error"].parsec_id) == \
                (results["sdk"]["error"].code, results["sdk"]["error"].parsec_id)
            assert clients["ours"]._state == clients["sdk"]._state == "connected"
        finally:
            for ws in clients.values():
                await ws.close()
