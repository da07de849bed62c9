"""Order-book implementations behind one adapter interface, for side-by-side benchmarks.

Every contender exposes:

* ``apply_snapshot(bids, asks, seq)``: replace the book (``bids``/``asks`` are lists of
  ``[price, size]``, as orjson decodes them);
* ``apply_delta(changes, seq)``: apply decoded ``{"side","price","size"}`` dicts in order, if ``seq``
  is the next one;
* ``best_bid()`` / ``best_ask()``: ``(price, size)`` or ``None``;
* ``levels()``: ``(bids, asks)`` as lists of ``(price, size)``, best first. This is for correctness
  checks only and is never timed;
* ``read_top(n)``: ``n`` reads of both best levels in the contender's natural idiom. The benchmark
  times this, so that the cost of an adapter call does not hide the cost of the read itself.

Fairness rules: every contender checks the sequence number (``seq == last + 1``), since the
compiled book does so internally. ``apply_delta`` is the *underlying* bound method when the
implementation already has that signature (the parsec_fast books), so no adapter layer is timed
for them. The Python contenders are written as tightly as their authors would reasonably write them.

Contenders:

``parsec_fast.Book``
    The compiled Cython book (C arrays, binary search + memmove).
``parsec_fast.reference.Book``
    Its pure-Python twin (dict + bisect-sorted key list, full validation).
``dict+SortedDict``
    A typical pure-Python book: one ``sortedcontainers.SortedDict`` per side, keyed by the float price.
``sdk-list (reimpl.)``
    **A reimplementation, written for this benchmark, of the official SDK's list-based book**
    (``parsec_api.streaming.ParsecWebSocket``, parsec-api 0.17.0; algorithm described in
    ``docs/sdk-compat-notes.md`` §7). It is not the SDK's code. It keeps lists of level objects per
    side; a removal rebuilds the side's list without the prices within 1e-9; an upsert does a linear
    scan and either replaces the level object or appends one; both sides are re-sorted with a key
    function after every delta. The SDK also builds an event dataclass and computes mid/spread for
    every delta; that is event delivery, not book maintenance, so it is left out here. This row is
    therefore a lower bound on the SDK's cost per delta.
``order-book (C ext)``
    bmoscon's ``order_book.OrderBook`` (C SortedDict per side), driven by a Python loop over the
    changes. Skipped if it does not import.
``sdk actual (handler)``
    For reference only: the installed SDK's own private per-delta handler, driven without a socket
    (see the class). It shows what the lower bound above leaves out, and its final books must equal
    the reimplementation's. Skipped if ``parsec-api`` is not installed.

Hand-written WebSocket clients (for ``bench_latency.py``; see the end of this file): what a
careful engineer writes without parsec_fast, on the same transport (picows, whose Python
``WSListener`` is the fastest Python-level frame callback there is), each calling a user callback
``on_update(market_index, seq)`` once per applied delta, with the book already updated:

``picows+orjson+SortedDict``
    ``orjson.loads`` of every frame, a dict dispatch on ``type``, one ``SortedDict`` per side.
``picows+msgspec+order-book``
    ``msgspec.json.Decoder`` of a tagged union of typed ``Struct``s (unknown fields skipped in C),
    bmoscon's ``order_book.OrderBook`` (C sorted dict per side).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

__all__ = ["Contender", "available_contenders", "CONTENDER_NAMES", "HandWrittenClient",
           "OrjsonSortedDictClient", "MsgspecOrderBookClient", "HAND_WRITTEN_CLIENTS"]

Top = Optional[tuple[float, float]]


def _import_parsec_fast() -> Any:
    """Import parsec_fast, falling back to the repo's ``src/`` (an in-place build, not installed)."""
    try:
        import parsec_fast  # noqa: F401
    except ImportError:
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
        if src not in sys.path and os.path.isdir(src):
            sys.path.insert(0, src)
        for name in [m for m in sys.modules if m == "parsec_fast" or m.startswith("parsec_fast.")]:
            del sys.modules[name]  # drop a half-imported package before retrying
        import parsec_fast  # noqa: F401
    return sys.modules["parsec_fast"]


class Contender:
    """Base adapter. Subclasses set ``name``, ``label`` and implement the interface above."""

    name: str = "?"
    #: A longer description for reports.
    label: str = ""

    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int) -> None:
        raise NotImplementedError

    def apply_delta(self, changes: list[dict[str, Any]], seq: int) -> Any:
        raise NotImplementedError

    def best_bid(self) -> Top:
        raise NotImplementedError

    def best_ask(self) -> Top:
        raise NotImplementedError

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        raise NotImplementedError

    def read_top(self, n: int) -> None:
        raise NotImplementedError


# ── (1)/(2) parsec_fast books ──────────────────────────────────────────────────────────────────


class ParsecFastContender(Contender):
    """Adapter for ``parsec_fast.Book`` or ``parsec_fast.reference.Book``: they share one API."""

    def __init__(self, book_cls: type, name: str, label: str) -> None:
        self.name = name
        self.label = label
        self._book = book_cls("bench:1", "Yes")
        # The real bound methods, not wrappers: the benchmark times the book, not this adapter.
        self.apply_snapshot = self._book.apply_snapshot  # type: ignore[method-assign]
        self.apply_delta = self._book.apply_delta  # type: ignore[method-assign]

    def best_bid(self) -> Top:
        return self._book.best_bid

    def best_ask(self) -> Top:
        return self._book.best_ask

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return list(self._book.bids()), list(self._book.asks())

    def read_top(self, n: int) -> None:
        b = self._book
        for _ in range(n):
            b.best_bid
            b.best_ask


# ── (3) dict + SortedDict ──────────────────────────────────────────────────────────────────────


class SortedDictContender(Contender):
    """A straightforward pure-Python book: a ``SortedDict`` price -> size per side."""

    name = "dict+SortedDict"
    label = "pure Python, sortedcontainers.SortedDict per side, float price keys"

    def __init__(self) -> None:
        from sortedcontainers import SortedDict

        self._sd = SortedDict
        self._bids = SortedDict()
        self._asks = SortedDict()
        self._seq = -1

    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int) -> None:
        self._bids = self._sd((p, s) for p, s in bids if s > 0)
        self._asks = self._sd((p, s) for p, s in asks if s > 0)
        self._seq = seq

    def apply_delta(self, changes: list[dict[str, Any]], seq: int) -> bool:
        if seq != self._seq + 1:
            return False
        self._seq = seq
        bids, asks = self._bids, self._asks
        for ch in changes:
            side = bids if ch["side"] == "bid" else asks
            size = ch["size"]
            if size == 0:
                side.pop(ch["price"], None)
            else:
                side[ch["price"]] = size
        return True

    def best_bid(self) -> Top:
        return self._bids.peekitem(-1) if self._bids else None

    def best_ask(self) -> Top:
        return self._asks.peekitem(0) if self._asks else None

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return list(reversed(self._bids.items())), list(self._asks.items())

    def read_top(self, n: int) -> None:
        bids, asks = self._bids, self._asks
        for _ in range(n):
            bids.peekitem(-1) if bids else None
            asks.peekitem(0) if asks else None


# ── (4) the official SDK's list-based book, reimplemented ─────────────────────────────────────


@dataclass
class _Level:
    """A price level as the SDK models it: a plain (non-slots) dataclass, so that creating and
    reading one costs what it costs there."""

    price: float
    size: float


_EPS = 1e-9  # the SDK's price-equality tolerance


def _level_price(level: _Level) -> float:
    return level.price


class SdkListContender(Contender):
    """REIMPLEMENTATION (not the SDK's code) of parsec-api 0.17.0's list-based local book.

    It reproduces the SDK's apply algorithm step for step, as described in docs/sdk-compat-notes.md §7:
    the sequence check is done only once a baseline exists; the type check skips non-numeric
    changes; any side other than "bid" means asks; ``size <= 0`` rebuilds the list without the
    levels within 1e-9; an upsert replaces the first level within 1e-9 with a new object, or
    appends one; then both sides are re-sorted by price, every delta. It leaves out the per-delta
    event object and the mid/spread computation (event delivery), so it is a lower bound on the SDK.
    """

    name = "sdk-list (reimpl.)"
    label = "official SDK's list algorithm, reimplemented for this bench (lower bound of the SDK)"

    def __init__(self) -> None:
        self.bids: list[_Level] = []
        self.asks: list[_Level] = []
        self.last_seq = 0

    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int) -> None:
        # As the SDK does: float() each pair (size-0 levels kept), then sort each side.
        b = [_Level(float(p[0]), float(p[1])) for p in bids if len(p) >= 2]
        a = [_Level(float(p[0]), float(p[1])) for p in asks if len(p) >= 2]
        b.sort(key=_level_price, reverse=True)
        a.sort(key=_level_price)
        self.bids, self.asks, self.last_seq = b, a, seq

    def apply_delta(self, changes: list[dict[str, Any]], seq: int) -> bool:
        if self.last_seq > 0 and seq != self.last_seq + 1:
            return False  # the SDK sends a resync here and drops the delta
        self.last_seq = seq
        for ch in changes:
            price = ch.get("price")
            size = ch.get("size")
            side = ch.get("side")
            if not isinstance(price, (int, float)) or not isinstance(size, (int, float)):
                continue
            is_bid = side == "bid"
            levels = self.bids if is_bid else self.asks
            if size <= 0:
                kept = [lv for lv in levels if abs(lv.price - price) >= _EPS]
                if is_bid:
                    self.bids = kept
                else:
                    self.asks = kept
                continue
            for i, lv in enumerate(levels):
                if abs(lv.price - price) < _EPS:
                    levels[i] = _Level(price, size)
                    break
            else:
                levels.append(_Level(price, size))
        # The SDK re-sorts both sides after every delta, whatever changed.
        self.bids.sort(key=_level_price, reverse=True)
        self.asks.sort(key=_level_price)
        return True

    def best_bid(self) -> Top:
        return (self.bids[0].price, self.bids[0].size) if self.bids else None

    def best_ask(self) -> Top:
        return (self.asks[0].price, self.asks[0].size) if self.asks else None

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return [(lv.price, lv.size) for lv in self.bids], [(lv.price, lv.size) for lv in self.asks]

    def read_top(self, n: int) -> None:
        # Reading the internal lists directly: the cheapest possible SDK-style read. The SDK's public
        # read, get_book(), costs far more (see get_book_like).
        for _ in range(n):
            b = self.bids
            (b[0].price, b[0].size) if b else None
            a = self.asks
            (a[0].price, a[0].size) if a else None

    def get_book_like(self) -> dict[str, Any]:
        """What the SDK's public ``get_book()`` does to read a book: build a dict of level dicts,
        compute mid/spread, deep-copy it. Used to show what a top-of-book read costs through that API."""
        import copy

        bb = self.bids[0].price if self.bids else 0.0
        ba = self.asks[0].price if self.asks else 0.0
        if bb > 0 and ba > 0:
            mid, spread = (bb + ba) / 2, abs(ba - bb)
        else:
            mid, spread = bb or ba, 0.0
        out = {
            "parsec_id": "bench:1",
            "outcome": "Yes",
            "exchange": "bench",
            "token_id": "",
            "market_id": "1",
            "title": None,
            "bids": [{"price": lv.price, "size": lv.size} for lv in self.bids],
            "asks": [{"price": lv.price, "size": lv.size} for lv in self.asks],
            "mid_price": mid,
            "spread": spread,
            "tick_size": 0.001,
            "last_seq": self.last_seq,
        }
        return copy.deepcopy(out)


class SdkActualContender(Contender):
    """The installed SDK's own per-delta handler, for reference and to check the reimplementation.

    It drives ``ParsecWebSocket._handle_orderbook_snapshot`` / ``_handle_orderbook_delta``, which are
    private coroutines, with no socket and no listeners. Each coroutine is run to completion with
    ``send(None)``: it never suspends when no listener is registered and no resync is sent. The
    per-delta cost therefore includes the SDK's event dataclass and mid/spread computation, plus
    building the message dict that its JSON decoder would have produced. It does not include JSON
    decoding or the event loop. This row is not part of the reimplementation, and it is skipped if
    ``parsec-api`` is not installed.
    """

    name = "sdk actual (handler)"
    label = "parsec-api 0.17 ParsecWebSocket private handlers, no socket/listeners (reference)"

    _KEY = ("bench:1", "Yes")

    def __init__(self) -> None:
        from parsec_api.streaming import ParsecWebSocket

        self._ws = ParsecWebSocket("bench", "ws://127.0.0.1:9/ws")
        self._on_delta = self._ws._handle_orderbook_delta

    @staticmethod
    def _run(coro: Any) -> None:
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()
        raise RuntimeError("SDK handler suspended: it was not meant to await anything here")

    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int) -> None:
        pid, outcome = self._KEY
        self._run(
            self._ws._handle_orderbook_snapshot(
                {"type": "orderbook", "parsec_id": pid, "outcome": outcome, "exchange": "bench",
                 "market_id": "1", "tick_size": 0.001, "bids": bids, "asks": asks, "server_seq": seq}
            )
        )
        self._book = self._ws._books[f"{pid}:{outcome.lower()}"]

    def apply_delta(self, changes: list[dict[str, Any]], seq: int) -> None:
        self._run(
            self._on_delta(
                {"type": "orderbook_delta", "parsec_id": "bench:1", "outcome": "Yes", "changes": changes,
                 "server_seq": seq, "feed_state": "healthy", "book_state": "fresh"}
            )
        )

    def best_bid(self) -> Top:
        b = self._book.bids
        return (b[0].price, b[0].size) if b else None

    def best_ask(self) -> Top:
        a = self._book.asks
        return (a[0].price, a[0].size) if a else None

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        d = self._ws.get_book(*self._KEY)
        assert d is not None
        return [(x["price"], x["size"]) for x in d["bids"]], [(x["price"], x["size"]) for x in d["asks"]]

    def read_top(self, n: int) -> None:
        for _ in range(n):
            b = self._book.bids
            (b[0].price, b[0].size) if b else None
            a = self._book.asks
            (a[0].price, a[0].size) if a else None


# ── (5) bmoscon's order-book C extension ───────────────────────────────────────────────────────


class OrderBookExtContender(Contender):
    """``order_book.OrderBook`` (C SortedDict per side) driven by a Python loop over the changes."""

    name = "order-book (C ext)"
    label = "bmoscon order-book 0.6 C extension, Python loop over changes"

    def __init__(self) -> None:
        from order_book import OrderBook

        self._cls = OrderBook
        self._ob = OrderBook()
        self._seq = -1

    def apply_snapshot(self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], seq: int) -> None:
        ob = self._cls()
        ob.bids = {p: s for p, s in bids if s > 0}
        ob.asks = {p: s for p, s in asks if s > 0}
        self._ob = ob
        self._bids, self._asks = ob.bids, ob.asks  # cached side objects, as a careful user would
        self._seq = seq

    def apply_delta(self, changes: list[dict[str, Any]], seq: int) -> bool:
        if seq != self._seq + 1:
            return False
        self._seq = seq
        bids, asks = self._bids, self._asks
        for ch in changes:
            side = bids if ch["side"] == "bid" else asks
            size = ch["size"]
            if size == 0:
                try:
                    del side[ch["price"]]
                except KeyError:
                    pass
            else:
                side[ch["price"]] = size
        return True

    def best_bid(self) -> Top:
        return self._bids.index(0) if len(self._bids) else None

    def best_ask(self) -> Top:
        return self._asks.index(0) if len(self._asks) else None

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return list(self._bids.to_list()), list(self._asks.to_list())

    def read_top(self, n: int) -> None:
        bids, asks = self._bids, self._asks
        for _ in range(n):
            bids.index(0) if len(bids) else None
            asks.index(0) if len(asks) else None


# ── registry ───────────────────────────────────────────────────────────────────────────────────


def _make_compiled() -> Contender:
    pf = _import_parsec_fast()
    return ParsecFastContender(pf.Book, "parsec_fast.Book", "compiled Cython book (C arrays per side)")


def _make_reference() -> Contender:
    _import_parsec_fast()
    from parsec_fast.reference import Book

    return ParsecFastContender(Book, "reference.Book", "parsec_fast.reference.Book, pure-Python twin")


#: Factories in report order. Each one raises if its contender cannot be built here.
_FACTORIES: list[tuple[str, Callable[[], Contender]]] = [
    ("parsec_fast.Book", _make_compiled),
    ("reference.Book", _make_reference),
    ("dict+SortedDict", SortedDictContender),
    ("sdk-list (reimpl.)", SdkListContender),
    ("order-book (C ext)", OrderBookExtContender),
    ("sdk actual (handler)", SdkActualContender),
]

CONTENDER_NAMES = [n for n, _ in _FACTORIES]


def available_contenders(
    names: Iterable[str] | None = None,
) -> tuple[list[Callable[[], Contender]], dict[str, str]]:
    """Return the factories that work here, and ``{name: reason}`` for those that do not.

    Factories rather than instances, so that each measurement can start from a fresh book."""
    wanted = set(names) if names is not None else None
    ok: list[Callable[[], Contender]] = []
    skipped: dict[str, str] = {}
    for name, factory in _FACTORIES:
        if wanted is not None and name not in wanted:
            continue
        try:
            factory()  # probe: import and construct once
        except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
            skipped[name] = f"{type(exc).__name__}: {exc}"
            continue
        ok.append(factory)
    return ok, skipped



# ── hand-written WebSocket clients (bench_latency.py) ───────────────────────────────────────────

#: ``on_update(market_index, seq)``: the user code a hand-written client calls after each applied
#: delta (the book is already updated when it runs).
OnUpdate = Callable[[int, int], None]


class HandWrittenClient:
    """Base of the hand-written picows clients: connect, authenticate, subscribe every market in
    one message, wait for the snapshots, then apply deltas and call ``on_update`` per delta.

    A careful but ordinary client: a Python ``picows.WSListener`` (one Python call per frame),
    a sequence check per book (a gap marks the book stale and stops applying it, as any correct
    client must), no reconnect logic (the benchmark does not need it).
    """

    name = "?"
    label = ""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str], int] = {}
        self.seqs: list[int] = []
        self.gaps = 0
        self.on_update: OnUpdate = lambda i, seq: None
        self._transport: Any = None
        self._auth: Any = None
        self._snapshots_missing: set[int] = set()
        self._ready: Any = None

    # -- subclass interface ----------------------------------------------------------------------
    def handle(self, payload: bytes) -> None:
        """Decode one text frame and act on it (a subclass's whole receive path)."""
        raise NotImplementedError

    def levels(self, i: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Book ``i``'s (bids, asks), best first (for the correctness check, never timed)."""
        raise NotImplementedError

    # -- shared plumbing ---------------------------------------------------------------------------
    def _snapshot_done(self, i: int) -> None:
        self._snapshots_missing.discard(i)
        if not self._snapshots_missing and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _authenticated(self) -> None:
        if self._auth is not None and not self._auth.done():
            self._auth.set_result(None)

    async def start(self, url: str, markets: list[tuple[str, str]], depth: int,
                    on_update: OnUpdate) -> None:
        """Connect to ``url``, subscribe ``markets`` at ``depth``; return once every snapshot
        is in."""
        import asyncio

        import orjson
        from picows import WSListener, WSMsgType, ws_connect

        self.on_update = on_update
        self.index = {(p, o): i for i, (p, o) in enumerate(markets)}
        self.seqs = [-1] * len(markets)
        loop = asyncio.get_running_loop()
        self._auth = loop.create_future()
        self._ready = loop.create_future()
        self._snapshots_missing = set(range(len(markets)))
        handle = self.handle

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.TEXT:
                    handle(frame.get_payload_as_bytes())
                elif frame.msg_type == WSMsgType.PING:
                    transport.send_pong(frame.get_payload_as_bytes())
                elif frame.msg_type == WSMsgType.CLOSE:
                    transport.disconnect()

        self._transport, _ = await ws_connect(Listener, url)
        self._transport.send(WSMsgType.TEXT, orjson.dumps({"type": "auth", "api_key": "bench"}))
        await asyncio.wait_for(self._auth, 10)
        self._transport.send(WSMsgType.TEXT, orjson.dumps({"type": "subscribe", "markets": [
            {"parsec_id": p, "outcome": o, "depth": depth} for p, o in markets]}))
        await asyncio.wait_for(self._ready, 30)

    async def close(self) -> None:
        """Drop the connection."""
        if self._transport is not None:
            self._transport.disconnect()


class OrjsonSortedDictClient(HandWrittenClient):
    """picows + ``orjson.loads`` + one ``sortedcontainers.SortedDict`` (price -> size) per side."""

    name = "picows+orjson+SortedDict"
    label = "hand-written: picows Python listener, orjson.loads, SortedDict per side"

    def __init__(self) -> None:
        super().__init__()
        import orjson
        from sortedcontainers import SortedDict

        self._loads = orjson.loads
        self._sd = SortedDict
        self.bids: list[Any] = []
        self.asks: list[Any] = []

    def handle(self, payload: bytes) -> None:
        msg = self._loads(payload)
        kind = msg.get("type")
        if kind == "orderbook_delta":
            i = self.index.get((msg["parsec_id"], msg["outcome"]))
            if i is None:
                return
            seq = msg["server_seq"]
            if seq != self.seqs[i] + 1:
                if seq > self.seqs[i]:
                    self.gaps += 1
                return
            self.seqs[i] = seq
            bids, asks = self.bids[i], self.asks[i]
            for ch in msg["changes"]:
                side = bids if ch["side"] == "bid" else asks
                size = ch["size"]
                if size == 0:
                    side.pop(ch["price"], None)
                else:
                    side[ch["price"]] = size
            self.on_update(i, seq)
        elif kind == "orderbook":
            i = self.index.get((msg["parsec_id"], msg["outcome"]))
            if i is None:
                return
            while len(self.bids) <= i:
                self.bids.append(None)
                self.asks.append(None)
            self.bids[i] = self._sd((p, s) for p, s in msg["bids"] if s > 0)
            self.asks[i] = self._sd((p, s) for p, s in msg["asks"] if s > 0)
            self.seqs[i] = msg["server_seq"]
            self._snapshot_done(i)
        elif kind == "auth_ok":
            self._authenticated()

    def levels(self, i: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return list(reversed(self.bids[i].items())), list(self.asks[i].items())


class MsgspecOrderBookClient(HandWrittenClient):
    """picows + ``msgspec.json.Decoder`` of typed Structs + bmoscon's ``order_book.OrderBook``."""

    name = "picows+msgspec+order-book"
    label = "hand-written: picows Python listener, msgspec typed Structs, order-book C ext"

    def __init__(self) -> None:
        super().__init__()
        import msgspec
        from order_book import OrderBook

        # defstruct, not class statements: this module's annotations are strings (PEP 563),
        # which msgspec cannot resolve for classes local to a function.
        change = msgspec.defstruct("Change", [("side", str), ("price", float), ("size", float)])
        Delta = msgspec.defstruct("Delta", [("parsec_id", str), ("outcome", str),
                                            ("changes", list[change]), ("server_seq", int)],
                                  tag_field="type", tag="orderbook_delta")
        Snapshot = msgspec.defstruct("Snapshot", [
            ("parsec_id", str), ("outcome", str), ("bids", list[tuple[float, float]]),
            ("asks", list[tuple[float, float]]), ("server_seq", int)],
            tag_field="type", tag="orderbook")
        AuthOk = msgspec.defstruct("AuthOk", [("customer_id", str, "")], tag_field="type",
                                   tag="auth_ok")
        self._decode = msgspec.json.Decoder(Delta | Snapshot | AuthOk).decode  # type: ignore[operator]
        self._error = msgspec.ValidationError
        self._delta, self._snapshot = Delta, Snapshot
        self._ob = OrderBook
        self.books: list[Any] = []

    def handle(self, payload: bytes) -> None:
        try:
            msg = self._decode(payload)
        except self._error:  # another message type: nothing this client acts on
            return
        if type(msg) is self._delta:
            i = self.index.get((msg.parsec_id, msg.outcome))
            if i is None:
                return
            seq = msg.server_seq
            if seq != self.seqs[i] + 1:
                if seq > self.seqs[i]:
                    self.gaps += 1
                return
            self.seqs[i] = seq
            bids, asks = self.books[i]
            for ch in msg.changes:
                side = bids if ch.side == "bid" else asks
                if ch.size == 0:
                    try:
                        del side[ch.price]
                    except KeyError:
                        pass
                else:
                    side[ch.price] = ch.size
            self.on_update(i, seq)
        elif type(msg) is self._snapshot:
            i = self.index.get((msg.parsec_id, msg.outcome))
            if i is None:
                return
            ob = self._ob()
            ob.bids = {p: s for p, s in msg.bids if s > 0}
            ob.asks = {p: s for p, s in msg.asks if s > 0}
            while len(self.books) <= i:
                self.books.append(None)
            self.books[i] = (ob.bids, ob.asks)  # the side objects, cached as a careful user would
            self.seqs[i] = msg.server_seq
            self._snapshot_done(i)
        else:
            self._authenticated()

    def levels(self, i: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids, asks = self.books[i]
        return list(bids.to_list()), list(asks.to_list())


#: The hand-written clients by name (report order).
HAND_WRITTEN_CLIENTS: dict[str, type[HandWrittenClient]] = {
    OrjsonSortedDictClient.name: OrjsonSortedDictClient,
    MsgspecOrderBookClient.name: MsgspecOrderBookClient,
}
