"""``needs_refresh`` snapshots and deltas, and the frame hook that reports them.

A scripted server (127.0.0.1, a free port) sends both clients, the official SDK's and
``parsec_fast.compat``'s, the same frames after their subscribe; the ``orderbook`` events are
compared field by field. The SDK reports a ``needs_refresh`` frame with the frame's
``book_state``/``feed_state`` (and applies it); compat reports it the same way while the engine
treats the book as needing a resync (PROTOCOL.md §6): the book is invalid, one resync is sent,
the deltas that follow are dropped, and the recovery snapshot is reported as a snapshot.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest

from parsec_fast._feed import FeedHandler
from parsec_fast.compat import OrderbookSnapshot, ParsecWebSocket

pytestmark = pytest.mark.timeout(60)

PID = "polymarket:572473"
BIDS = [[0.65, 1000.0], [0.64, 2500.0], [0.6, 10.0]]
ASKS = [[0.66, 800.0], [0.67, 1500.0]]


def snapshot(seq: int, bids: list[list[float]] = BIDS, asks: list[list[float]] = ASKS,
             **fields: Any) -> str:
    msg = {"type": "orderbook", "parsec_id": PID, "exchange": "polymarket", "outcome": "Yes",
           "token_id": "50310842821", "market_id": "572473", "tick_size": 0.001,
           "title": "Will ETH reach $5000?", "bids": bids, "asks": asks, "book_state": "fresh",
           "server_seq": seq, "feed_state": "healthy", "stale_after_ms": 600000,
           "exchange_ts_ms": 1708123456000, "ingest_ts_ms": 1708123456050}
    msg.update(fields)
    return json.dumps(msg)


def delta(seq: int, changes: list[tuple[str, float, float]], **fields: Any) -> str:
    msg = {"type": "orderbook_delta", "parsec_id": PID, "exchange": "polymarket",
           "outcome": "Yes", "token_id": "50310842821", "market_id": "572473",
           "changes": [{"side": s, "price": p, "size": z} for s, p, z in changes],
           "server_seq": seq, "feed_state": "healthy", "book_state": "fresh",
           "stale_after_ms": 600000, "exchange_ts_ms": 1708123456100 + seq,
           "ingest_ts_ms": 1708123456105 + seq}
    msg.update(fields)
    return json.dumps(msg)


class ScriptedServer:
    """Answers auth with auth_ok, a subscribe with ``frames``, a resync with ``on_resync``."""

    def __init__(self, frames: list[str], on_resync: list[str]) -> None:
        self.frames = frames
        self.on_resync = on_resync
        self.resyncs = 0
        self.url = ""

    async def handle(self, conn: Any) -> None:
        async for raw in conn:
            kind = json.loads(raw).get("type")
            if kind in ("auth", "auth_terminal"):
                await conn.send(json.dumps({"type": "auth_ok", "customer_id": "cust_1"}))
            elif kind == "subscribe":
                for frame in self.frames:
                    await conn.send(frame)
            elif kind == "resync":
                self.resyncs += 1
                for frame in self.on_resync:
                    await conn.send(frame)

    async def __aenter__(self) -> ScriptedServer:
        from websockets.asyncio.server import serve

        self._server = await serve(self.handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]  # type: ignore[index]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(self, *args: object) -> None:
        self._server.close()
        await self._server.wait_closed()


FIELDS = ("parsec_id", "outcome", "exchange", "token_id", "market_id", "title", "mid_price",
          "spread", "tick_size", "kind", "server_seq", "feed_state", "book_state",
          "stale_after_ms", "exchange_ts_ms", "ingest_ts_ms")


def record(book: Any) -> dict[str, Any]:
    out = {name: getattr(book, name) for name in FIELDS}
    out["bids"] = [(lv.price, lv.size) for lv in book.bids]
    out["asks"] = [(lv.price, lv.size) for lv in book.asks]
    return out


async def run_both(frames: list[str], on_resync: list[str], until: int, sdk_until: int
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], ScriptedServer, Any]:
    """Both clients on the scripted stream, until compat saw ``until`` events and the SDK
    ``sdk_until``: (SDK events, compat events, the server, compat's view of the book after)."""
    sdk = pytest.importorskip("parsec_api.streaming")
    async with ScriptedServer(frames, on_resync) as srv:
        seen: dict[str, list[dict[str, Any]]] = {"sdk": [], "compat": []}
        clients = {"sdk": sdk.ParsecWebSocket("demo", srv.url),
                   "compat": ParsecWebSocket("demo", srv.url)}
        for name, ws in clients.items():
            async def on_book(book: Any, _out: list[dict[str, Any]] = seen[name]) -> None:
                _out.append(record(book))
            ws.on("orderbook")(on_book)
            await ws.connect()
            ws.subscribe(parsec_id=PID)
        for _ in range(300):  # bounded
            if len(seen["compat"]) >= until and len(seen["sdk"]) >= sdk_until:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        book = clients["compat"].get_book(PID)
        state = clients["compat"].client.subscription(PID)  # type: ignore[union-attr]
        result = (seen["sdk"], seen["compat"], srv, (book, state.trustworthy, state.invalid_reason))
        for ws in clients.values():
            await ws.close()
    return result


async def test_needs_refresh_delta_is_reported_then_the_book_resyncs() -> None:
    frames = [snapshot(100), delta(101, [("bid", 0.65, 900.0)]),
              delta(102, [("ask", 0.66, 0.0), ("bid", 0.655, 7.0)], book_state="needs_refresh",
                    feed_state="degraded"),
              delta(103, [("ask", 0.665, 3.0)], book_state="needs_refresh", feed_state="degraded"),
              delta(104, [("bid", 0.64, 1.0)])]
    recovery = [snapshot(200, bids=[[0.7, 1.0]], asks=[[0.71, 2.0]])]
    theirs, ours, srv, (book, trustworthy, _) = await run_both(frames, recovery, until=5, sdk_until=5)
    # Everything up to and including the needs_refresh deltas: field for field the SDK's.
    assert ours[:4] == theirs[:4]
    assert [e["book_state"] for e in ours[2:4]] == ["needs_refresh", "needs_refresh"]
    assert ours[2]["feed_state"] == "degraded" and ours[3]["server_seq"] == 103
    # Both needs_refresh deltas' changes are in the view, as in the SDK's book.
    assert ours[3]["bids"][0] == (0.655, 7.0) and ours[3]["asks"][0] == (0.665, 3.0)
    # Then the engine's recovery: delta 104 dropped, one resync, the snapshot reported.
    assert srv.resyncs == 1
    assert [(e["kind"], e["server_seq"]) for e in ours[4:]] == [("snapshot", 200)]
    assert ours[4]["bids"] == [(0.7, 1.0)] and ours[4]["book_state"] == "fresh"
    assert theirs[4]["server_seq"] == 104  # the SDK applied it to the book its server disowned
    assert trustworthy and book is not None and book["last_seq"] == 200


async def test_needs_refresh_snapshot_is_reported_with_its_own_levels() -> None:
    frames = [snapshot(100),
              snapshot(150, bids=[[0.5, 1.0], [0.49, 2.0]], asks=[[0.52, 3.0]],
                       book_state="needs_refresh", feed_state="degraded", stale_after_ms=1000),
              delta(151, [("bid", 0.5, 5.0)], book_state="needs_refresh"),
              delta(152, [("bid", 0.49, 0.0)])]
    recovery = [snapshot(300)]
    theirs, ours, srv, (book, trustworthy, _) = await run_both(frames, recovery, until=4, sdk_until=4)
    assert ours[:3] == theirs[:3]
    assert (ours[1]["kind"], ours[1]["book_state"], ours[1]["feed_state"],
            ours[1]["stale_after_ms"], ours[1]["server_seq"]) == (
        "snapshot", "needs_refresh", "degraded", 1000, 150)
    assert ours[1]["bids"] == [(0.5, 1.0), (0.49, 2.0)] and ours[1]["mid_price"] == 0.51
    assert ours[2]["bids"][0] == (0.5, 5.0)  # the refused snapshot's levels, then this delta
    assert srv.resyncs == 1 and [(e["kind"], e["server_seq"]) for e in ours[3:]] == [("snapshot", 300)]
    assert trustworthy and book is not None and book["last_seq"] == 300


async def test_needs_refresh_before_any_snapshot_and_with_unusable_data() -> None:
    frames = [delta(99, [("bid", 0.5, 1.0)], book_state="needs_refresh"),  # no book: no event
              snapshot(100),
              delta(101, [("bid", "x", 1.0)], book_state="needs_refresh"),  # type: ignore[list-item]
              snapshot(102, bids=[[0.4, 1.0], [0.5, 1.0]], book_state="needs_refresh")]  # unsorted
    theirs, ours, srv, _ = await run_both(frames, [snapshot(400)], until=4, sdk_until=3)
    assert [(e["kind"], e["server_seq"], e["book_state"]) for e in ours[:3]] == [
        ("snapshot", 100, "fresh"), ("delta", 101, "needs_refresh"),
        ("snapshot", 102, "needs_refresh")]
    assert [e["server_seq"] for e in theirs[:3]] == [100, 101, 102]
    # Data the book rules refuse is left out of the view (the SDK skipped or kept it as sent).
    assert ours[1]["bids"] == [(lv[0], lv[1]) for lv in BIDS]
    assert ours[2]["bids"] == [] and ours[2]["asks"] == [] and ours[2]["mid_price"] == 0.0
    assert ours[3]["server_seq"] == 400


@pytest.mark.parametrize("parser", ["native", "orjson"])
def test_frame_hook_reports_needs_refresh_frames_parsed(parser: str) -> None:
    fh = FeedHandler(parser=parser)  # type: ignore[arg-type]
    sub = fh.add(PID, "Yes")
    seen: list[tuple[int | None, Any]] = []
    fh.on_book_frame = lambda s, frame: seen.append(
        (s.book.seq, None if frame is None else (frame["type"], frame["server_seq"],
                                                 frame.get("book_state"))))
    for frame in (snapshot(100), delta(101, [("bid", 0.65, 1.0)]),
                  delta(102, [("bid", 0.65, 2.0)], book_state="needs_refresh"),
                  delta(103, []), snapshot(104, book_state="needs_refresh"), snapshot(105)):
        fh.feed(frame.encode())
    assert seen == [(100, ("orderbook", 100, "fresh")), (101, None),
                    (101, ("orderbook_delta", 102, "needs_refresh")),
                    (101, ("orderbook", 104, "needs_refresh")), (105, ("orderbook", 105, "fresh"))]
    # Native: the two ordinary deltas; needs_refresh frames and snapshots took the orjson path.
    assert fh.stats["native_frames"] == (2 if parser == "native" else 0)
    assert sub.stats["needs_refresh"] == 2 and sub.book.is_valid
    fh.on_book_frame = None  # without a hook: needs_refresh stays on the native path
    fh.feed(delta(106, [], book_state="needs_refresh").encode())
    assert fh.stats["native_frames"] == (3 if parser == "native" else 0)
    assert not sub.book.is_valid and sub.invalid_reason == "needs_refresh"


def test_emitted_payloads_are_the_compat_type() -> None:
    frames = [snapshot(100), delta(101, [("bid", 0.65, 1.0)])]
    fh = FeedHandler(parser="native")
    fh.add(PID, "Yes")
    from parsec_fast.compat.books import BookEvents
    from parsec_fast.compat.handlers import Handlers

    handlers = Handlers()
    books = BookEvents(handlers)
    got: list[OrderbookSnapshot] = []
    handlers.add("orderbook", got.append)
    fh.on_book_frame = books.emitter.on_book_frame
    for frame in frames:
        fh.feed(orjson.dumps(json.loads(frame)))
    assert [type(b) for b in got] == [OrderbookSnapshot, OrderbookSnapshot]
    assert [b.kind for b in got] == ["snapshot", "delta"] and got[1].server_seq == 101
    assert got[1].exchange_ts_ms == 1708123456201 and got[1].stale_after_ms == 600000
