"""Code that reads a ``LevelList`` without its methods never sees a silently empty or short list.

A ``LevelList`` builds its level objects on read, but its own list storage (what C code reads
directly: orjson, msgspec, ``list``'s methods called unbound, ``PyList_GET_ITEM``) always holds
``len(x)`` items: the level once built, else the placeholder of its index, whose every use
raises ``UnreadLevelError`` (a ``TypeError``) naming the fix. Every reader below, on a list
unread, partly read, fully read and materialized, gives what it gives for a plain list of the
same levels, or raises; never a shorter or empty result. And ``dataclasses.asdict(payload)``
then ``orjson.dumps`` gives exactly the official SDK's output. Reference counts stay exact.
"""
from __future__ import annotations

import asyncio
import copy
import ctypes
import dataclasses
import gc
import json
import pickle
import sys
import tracemalloc
from typing import Any, Callable

import numpy as np
import orjson
import pytest

from parsec_fast import Book
from parsec_fast._levels import UnreadLevel, UnreadLevelError, _release_spares
from parsec_fast._orderbook import BookMeta, OrderbookEmitter
from parsec_fast.compat import LevelList, OrderbookSnapshot, StreamingOrderbookLevel

import msgspec  # the test extra installs it

L = StreamingOrderbookLevel
FIX = ("list(levels)", "asdict(payload)")  # what every error names


def make_book(n_bids: int, n_asks: int, seed: int = 0) -> Book:
    book = Book("polymarket:1", "Yes")
    bids = [[round(0.5 - i * 0.001, 3), float(10 + (i * 7 + seed) % 90)] for i in range(n_bids)]
    asks = [[round(0.501 + i * 0.001, 3), float(5 + (i * 3 + seed) % 40)] for i in range(n_asks)]
    book.apply_snapshot(bids, asks, 1)
    return book


def plain(book: Book, side: str) -> list[StreamingOrderbookLevel]:
    return [L(p, s) for p, s in (book.bids() if side == "bid" else book.asks())]


def names_the_fix(exc: BaseException) -> bool:
    """The error, or one it was raised from, says what to do instead."""
    while exc is not None:
        if all(f in str(exc) for f in FIX) or isinstance(exc, UnreadLevelError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("raised", exc)


# The four states a LevelList is found in: nothing read, some levels read, every level read
# (still lazy), materialized by a mutation.
def unread(x: LevelList) -> None:
    pass


def partly(x: LevelList) -> None:
    x[0], x[-1]
    x[1:3]


def fully(x: LevelList) -> None:
    for _ in x:
        pass


def materialized(x: LevelList) -> None:
    x.append(L(9.0, 9.0))
    x.pop()
    assert x.materialized


STATES = {"unread": unread, "partly": partly, "fully": fully, "materialized": materialized}

api = ctypes.pythonapi
api.PyList_Size.restype = ctypes.c_ssize_t
api.PyList_Size.argtypes = [ctypes.py_object]
api.PyList_GetItem.restype = ctypes.c_void_p  # borrowed: taken as an object below, not stolen
api.PyList_GetItem.argtypes = [ctypes.py_object, ctypes.c_ssize_t]


def c_items(x: list[Any]) -> list[Any]:
    """The list's storage as a C extension reads it (PyList_Size, PyList_GetItem)."""
    return [ctypes.cast(api.PyList_GetItem(x, i), ctypes.py_object).value
            for i in range(api.PyList_Size(x))]


# Readers that go through the list's methods: equal to a plain list's result, or raise.
READERS: dict[str, Callable[[list[Any]], Any]] = {
    "orjson": lambda x: orjson.dumps(x),
    "orjson default=str": lambda x: orjson.dumps(x, default=str),
    "orjson default=asdict": lambda x: orjson.dumps(x, default=dataclasses.asdict),
    "orjson in a dict": lambda x: orjson.dumps({"bids": x}),
    "orjson passthrough": lambda x: orjson.dumps(x, option=orjson.OPT_PASSTHROUGH_SUBCLASS,
                                                 default=list),
    "json": lambda x: json.dumps(x),
    "json default=asdict": lambda x: json.dumps(x, default=dataclasses.asdict),
    "json default=str": lambda x: json.dumps(x, default=str),
    "json indent": lambda x: json.dumps(x, default=dataclasses.asdict, indent=1),
    "plain + x": lambda x: [L(1.0, 1.0)] + x,
    "x + plain": lambda x: x + [L(1.0, 1.0)],
    "plain += x": lambda x: (lambda p: (p.__iadd__(x), p)[1])([L(1.0, 1.0)]),
    "plain.extend": lambda x: (lambda p: (p.extend(x), p)[1])([]),
    "list": lambda x: list(x),
    "tuple": lambda x: tuple(x),
    "[*x]": lambda x: [*x],
    "sorted": lambda x: sorted(x, key=lambda lv: (lv.size, lv.price)),
    "numpy object": lambda x: np.array(x, dtype=object).tolist(),
    "numpy": lambda x: np.array(x).tolist(),
    "copy": lambda x: copy.copy(x),
    "deepcopy": lambda x: copy.deepcopy(x),
    "pickle": lambda x: pickle.loads(pickle.dumps(x)),
    "x.copy": lambda x: x.copy(),
    "x[:]": lambda x: x[:],
    "repr": lambda x: repr(x),
    "len": lambda x: len(x),
    "plain == x": lambda x: [L(0.5, 10.0)] * len(x) == x,
    "str.join": lambda x: ",".join(str(lv.size) for lv in x),
}
READERS["msgspec"] = lambda x: msgspec.json.encode(x)
READERS["msgspec enc_hook=str"] = lambda x: msgspec.json.encode(x, enc_hook=str)
READERS["msgspec in a dict"] = lambda x: msgspec.json.encode({"bids": x})

# Readers of the storage itself (list's own C methods called unbound, the C API): the right
# length, and each item the level or a placeholder (whose use raises: checked below).
DIRECT: dict[str, Callable[[list[Any]], list[Any]]] = {
    "list.__add__(plain, x)": lambda x: list.__add__([], x),
    "list.__add__(x, plain)": lambda x: list.__add__(x, []),
    "list.copy": lambda x: list.copy(x),
    "list.__iter__": lambda x: list(list.__iter__(x)),
    "list.__reversed__": lambda x: list(list.__reversed__(x))[::-1],
    "list.__getitem__ slice": lambda x: list.__getitem__(x, slice(None)),
    "list.__mul__": lambda x: list.__mul__(x, 1),
    "PyList_GetItem": c_items,
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("reader", READERS)
def test_readers_see_every_level_or_raise(state: str, reader: str) -> None:
    book = make_book(12, 7)
    for side in ("bid", "ask"):
        x, m = LevelList.of_book(book, side), plain(book, side)
        STATES[state](x)
        got, want = outcome(lambda: READERS[reader](x)), outcome(lambda: READERS[reader](m))
        if got[0] == "ok":
            assert want[0] == "ok" and got[1] == want[1], (reader, state, got, want)
        elif want[0] == "ok":  # only the placeholders may make it raise: loudly, with the fix
            assert state in ("unread", "partly"), (reader, state, got)
            assert isinstance(got[1], TypeError) and names_the_fix(got[1]), (reader, got)
        else:  # raises for a plain list of levels too (json without default, ...)
            assert type(got[1]) is type(want[1]), (reader, got, want)
        assert list(x) == m  # a reader never changes what the list holds


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("reader", DIRECT)
def test_storage_readers_get_every_slot(state: str, reader: str) -> None:
    book = make_book(12, 7)
    x, m = LevelList.of_book(book, "bid"), plain(book, "bid")
    STATES[state](x)
    got = DIRECT[reader](x)
    assert len(got) == len(m) == 12  # never empty, never short
    placeholders = [i for i, item in enumerate(got) if type(item) is UnreadLevel]
    assert [got[i] for i in range(12) if i not in placeholders] == \
        [m[i] for i in range(12) if i not in placeholders]
    if state in ("fully", "materialized"):
        assert placeholders == [] and got == m
    elif state == "partly":
        assert 0 not in placeholders and 11 not in placeholders and 1 not in placeholders
    else:
        assert len(placeholders) == 12
    for i in placeholders:
        check_placeholder(got[i])


def check_placeholder(p: Any) -> None:
    """Every use of a placeholder raises UnreadLevelError naming the fix."""
    uses: list[Callable[[], Any]] = [
        lambda: p.price, lambda: p.size, lambda: repr(p), lambda: str(p), lambda: f"{p}",
        lambda: bool(p), lambda: hash(p), lambda: p == p, lambda: p < 1, lambda: len(p),
        lambda: iter(p), lambda: p[0], lambda: 1 in p, lambda: float(p), lambda: int(p),
        lambda: p(), lambda: copy.copy(p), lambda: copy.deepcopy(p), lambda: pickle.dumps(p),
        lambda: dataclasses.replace(p), lambda: vars(p), lambda: setattr(p, "price", 1.0),
        lambda: np.asarray([p]), lambda: getattr(p, "price", None), lambda: hasattr(p, "x"),
    ]
    for use in uses:
        with pytest.raises(TypeError) as info:
            use()
        assert names_the_fix(info.value) or "dataclass" in str(info.value), info.value
    with pytest.raises(UnreadLevelError, match=r"level \d+ of a parsec_fast LevelList"):
        p.price


def test_serialisers_name_the_fix() -> None:
    x = LevelList.of_book(make_book(5, 5), "bid")
    with pytest.raises(TypeError, match=r"UnreadLevel .*list\(levels\) or asdict\(payload\)"):
        orjson.dumps(x)
    with pytest.raises(TypeError, match=r"UnreadLevel .*list\(levels\) or asdict\(payload\)"):
        json.dumps(list.copy(x))
    with pytest.raises(TypeError, match=r"UnreadLevel .*list\(levels\) or asdict\(payload\)"):
        msgspec.json.encode(x)
    x[0], x[1], x[2], x[3]
    with pytest.raises(TypeError, match=r"UnreadLevel"):  # one level still unread
        orjson.dumps(x)
    x[4]
    assert orjson.dumps(x) == orjson.dumps(list(x))
    assert UnreadLevel.__module__ == "parsec_fast._levels"
    assert issubclass(UnreadLevelError, TypeError)


def test_list_methods_called_unbound_keep_each_level_where_a_list_would() -> None:
    # A placeholder stands for "level i of the list holding it", wherever list's own C code
    # moves it; the list's methods then read the levels a list would hold.
    book = make_book(9, 3)
    v = L(0.123, 4.0)
    cases: list[tuple[str, Callable[[list[Any]], Any]]] = [
        ("reverse", lambda s: list.reverse(s)),
        ("insert", lambda s: list.insert(s, 2, v)),
        ("append", lambda s: list.append(s, v)),
        ("setitem", lambda s: list.__setitem__(s, 4, v)),
        ("setslice", lambda s: list.__setitem__(s, slice(1, 6, 2), [v, v, v])),
        ("delitem", lambda s: list.__delitem__(s, 0)),
        ("delslice", lambda s: list.__delitem__(s, slice(None, None, 3))),
        ("pop", lambda s: (list.pop(s, 3), None)[1]),
        ("extend", lambda s: list.extend(s, [v])),
        ("iadd", lambda s: list.__iadd__(s, [v])),
        ("imul", lambda s: list.__imul__(s, 2)),
        ("clear", lambda s: list.clear(s)),
    ]
    for name, op in cases:
        for read_first in (False, True):
            x, m = LevelList.of_book(book, "bid"), plain(book, "bid")
            if read_first:
                x[1], x[4]
            op(x)
            op(m)
            assert len(x) == len(m) and list(x) == m and x == m, name
            assert [lv.price for lv in x] == [lv.price for lv in m], name
            assert orjson.dumps(x) == orjson.dumps(m), name  # every slot read by now


def test_placeholders_of_another_list_raise() -> None:
    small, big = LevelList.of_book(make_book(2, 1), "bid"), LevelList.of_book(make_book(9, 1), "bid")
    list.__setitem__(small, slice(None), list.copy(big))  # nine placeholders of `big`
    assert len(small) == 9
    with pytest.raises(UnreadLevelError):
        small[8]  # index 8 does not exist in small's book: never a wrong level
    m = [L(1.0, 1.0)]
    list.__iadd__(m, list.copy(big))
    with pytest.raises(UnreadLevelError):
        LevelList(m)[1].price


# -- payloads ---------------------------------------------------------------------------------

FIELDS = dict(parsec_id="polymarket:1", outcome="Yes", exchange="polymarket", token_id="tok",
              market_id="1", title="Will it?", tick_size=0.001)


def emitted(book: Book) -> OrderbookSnapshot:
    """An ``orderbook`` payload as the compiled emitter hands it to a handler."""
    got: list[OrderbookSnapshot] = []

    def fail(*args: Any) -> None:
        raise AssertionError(args)

    em = OrderbookEmitter([got.append], fail, fail, fail, fail)
    em.publish(BookMeta(**FIELDS), "delta", book, 1235, "healthy", "fresh", 5000,
               1708123456100, None)
    return got[0]


def sdk_payload(book: Book) -> Any:
    sdk = pytest.importorskip("parsec_api.streaming")
    p = emitted(book)
    values = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    values["bids"] = [sdk.StreamingOrderbookLevel(a, b) for a, b in book.bids()]
    values["asks"] = [sdk.StreamingOrderbookLevel(a, b) for a, b in book.asks()]
    return sdk.OrderbookSnapshot(**values)


@pytest.mark.parametrize("state", STATES)
def test_payload_serialises_as_the_sdks_or_raises(state: str) -> None:
    book = make_book(50, 50, seed=3)
    theirs = sdk_payload(book)
    want = orjson.dumps(theirs)
    assert want == orjson.dumps(dataclasses.asdict(theirs)) and b'"bids":[{"price":0.5' in want

    def fresh() -> OrderbookSnapshot:
        p = emitted(book)
        STATES[state](p.bids)
        STATES[state](p.asks)
        return p

    assert orjson.dumps(dataclasses.asdict(fresh())) == want  # the documented way: exact
    assert json.dumps(dataclasses.asdict(fresh())) == json.dumps(dataclasses.asdict(theirs))
    got = outcome(lambda: orjson.dumps(fresh()))
    if state in ("unread", "partly"):
        assert got[0] == "raised" and isinstance(got[1], TypeError) and names_the_fix(got[1])
    else:
        assert got == ("ok", want)
    got = outcome(lambda: orjson.dumps(fresh().bids))
    assert got == ("ok", orjson.dumps(theirs.bids)) or \
        (state in ("unread", "partly") and names_the_fix(got[1]))
    got = outcome(lambda: msgspec.json.encode(fresh()))
    assert got == ("ok", msgspec.json.encode(theirs)) or \
        (state in ("unread", "partly") and names_the_fix(got[1]))
    p = fresh()
    assert pickle.loads(pickle.dumps(p)) == p and copy.deepcopy(p) == p
    assert dataclasses.astuple(p) == dataclasses.astuple(theirs)


def test_handlers_serialising_payloads_match_the_sdk_on_a_server_stream() -> None:
    sdk = pytest.importorskip("parsec_api.streaming")
    from parsec_fast.compat import MarketSubscription, ParsecWebSocket
    from parsec_fast.server import LocalServer, MarketSpec, ServerConfig

    async def main() -> tuple[list[Any], list[Any]]:
        spec = MarketSpec("polymarket", "810", "Serialised?", 0.001)
        config = ServerConfig(markets=[spec], seed=11, live=False, heartbeat_interval=30.0,
                              fill_account=None, wallet_interval=0)
        ours: list[Any] = []
        theirs: list[Any] = []
        async with LocalServer(config) as srv:
            clients = (sdk.ParsecWebSocket("demo", srv.url), ParsecWebSocket("demo", srv.url))

            @clients[0].on("orderbook")
            async def sdk_handler(book: Any) -> None:
                theirs.append((book.kind, orjson.dumps(book), orjson.dumps(book.bids)))

            @clients[1].on("orderbook")
            async def compat_handler(book: Any) -> None:
                plain_dumps = outcome(lambda: orjson.dumps(book))
                bids_dumps = outcome(lambda: orjson.dumps(book.bids))
                if book.bids and book.asks:  # nothing read yet: loud, never '"bids":[]'
                    assert plain_dumps[0] == bids_dumps[0] == "raised", plain_dumps
                    assert names_the_fix(plain_dumps[1]) and names_the_fix(bids_dumps[1])
                ours.append((book.kind, orjson.dumps(dataclasses.asdict(book)),
                             orjson.dumps(list(book.bids))))

            for ws, sub in zip(clients, (sdk.MarketSubscription, MarketSubscription)):
                await ws.connect()
                ws.subscribe([sub(spec.parsec_id, "Yes", 20)])
            for _ in range(1000):
                if all(ws.get_book(spec.parsec_id) is not None for ws in clients):
                    break
                await asyncio.sleep(0.01)
            result = await srv.blast(300)
            for _ in range(1000):
                if min(len(ours), len(theirs)) >= result.frames // 2 + 1:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            for ws in clients:
                await ws.close()
        return ours, theirs

    ours, theirs = asyncio.run(main())
    assert len(ours) == len(theirs) > 100
    for i, ((kind, a, bids_a), (_, b, bids_b)) in enumerate(zip(ours, theirs)):
        assert bids_a == bids_b, i
        if kind == "snapshot":  # the server stamps each connection's snapshot itself
            a, b = json.loads(a), json.loads(b)
            for d in (a, b):
                d.pop("exchange_ts_ms"), d.pop("ingest_ts_ms")
        assert a == b, i


# -- reference counts and memory --------------------------------------------------------------

def placeholder_refs(n: int) -> list[int]:
    """The reference counts of the placeholders of indexes 0..n-1, spares let go."""
    probe = LevelList.of_book(make_book(n, 0), "bid")
    tokens = list.copy(probe)
    del probe
    _release_spares()
    return [sys.getrefcount(t) - 2 for t in tokens]  # less `tokens` and the argument


def test_reference_counts_are_exact() -> None:
    gc.collect()
    before = placeholder_refs(60)
    assert min(before) >= 1  # the table's own reference (and any live list's)
    books = [make_book(n, n // 2 + 1, seed=n) for n in (1, 7, 50, 60, 300)]
    sentinel = object()
    base = sys.getrefcount(sentinel)
    kept = []
    for rnd in range(40):
        for book in books:
            p = emitted(book)
            r = rnd % 8
            if r == 1:
                p.bids[0].size
            elif r == 2:
                sum(lv.size for lv in p.bids[:5]) + sum(lv.size for lv in p.asks[:5])
            elif r == 3:
                for lv in p.bids:
                    lv.price
            elif r == 4:
                p.bids.append(sentinel)          # materialized
            elif r == 5:
                list.append(p.asks, sentinel)    # behind its methods' back
                list.__setitem__(p.bids, 0, sentinel)
                kept.append(p)
            elif r == 6:
                list.reverse(p.bids)
                p.asks[-1]
                list.copy(p.bids)
            elif r == 7:
                kept.append(p)
                p.bids[1:3]
    assert sys.getrefcount(sentinel) > base
    del p, kept
    gc.collect()
    assert sys.getrefcount(sentinel) == base
    assert placeholder_refs(60) == before


def test_many_payloads_leak_nothing() -> None:
    book = make_book(50, 50)

    def run(n: int) -> None:
        for i in range(n):
            p = emitted(book)
            if i % 3 == 0:
                p.bids[0].price + p.asks[0].size
            elif i % 3 == 1:
                for lv in p.asks:
                    lv.size
            if i % 50 == 0:
                orjson.dumps(dataclasses.asdict(p))
                outcome(lambda: orjson.dumps(p))

    run(2_000)  # warm: spares, free lists, caches
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        blocks = sys.getallocatedblocks()
        run(20_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
        assert grown < 20_000, grown  # bytes over 20,000 payloads: nothing per payload
    finally:
        tracemalloc.stop()
    assert abs(sys.getallocatedblocks() - blocks) < 200


def test_cycles_through_the_storage_are_collected() -> None:
    import weakref
    p = emitted(make_book(20, 20))
    level = p.bids[3]
    level.price = p          # payload -> bids storage -> level -> payload
    list.append(p.asks, p.asks)  # a list holding itself, through list's own method
    refs = [weakref.ref(p), weakref.ref(level)]
    del p, level
    gc.collect()
    assert all(r() is None for r in refs)
