"""The compat payload types behave as the official SDK's: ``LevelList`` as the
``List[StreamingOrderbookLevel]`` it stands for (every list operation, against a plain list of
the same levels), ``StreamingOrderbookLevel`` and ``OrderbookSnapshot`` as the SDK's dataclasses
(fields, constructor, repr, ``==``, ``dataclasses`` functions, copy, pickle)."""
from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsec_fast import Book
from parsec_fast.compat import LevelList, OrderbookSnapshot, StreamingOrderbookLevel

L = StreamingOrderbookLevel


def make_book(n_bids: int, n_asks: int, seed: int = 0) -> Book:
    book = Book("polymarket:1", "Yes")
    bids = [[round(0.5 - i * 0.001, 3), float(10 + (i * 7 + seed) % 90)] for i in range(n_bids)]
    asks = [[round(0.501 + i * 0.001, 3), float(5 + (i * 3 + seed) % 40)] for i in range(n_asks)]
    book.apply_snapshot(bids, asks, 1)
    return book


def plain(book: Book, side: str) -> list[StreamingOrderbookLevel]:
    return [L(p, s) for p, s in (book.bids() if side == "bid" else book.asks())]


def outcome(fn: Callable[[], Any]) -> Any:
    """A value, or the exception type it raised (so both sides can be compared)."""
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("raised", type(exc))


# -- LevelList reads --------------------------------------------------------------------------------

def test_level_list_is_a_list_and_reads_as_one() -> None:
    book = make_book(12, 3)
    x, m = LevelList.of_book(book, "bid"), plain(book, "bid")
    assert isinstance(x, list) and type(x) is LevelList and not x.materialized
    assert len(x) == 12 and bool(x) and not LevelList.of_book(make_book(0, 0), "bid")
    assert x[0] == m[0] and x[-1] == m[-1] and x[-12] == m[0]
    for bad in (12, -13, 10**30):
        with pytest.raises(IndexError):
            x[bad]
    with pytest.raises(TypeError, match="list indices must be integers or slices, not str"):
        x["0"]  # type: ignore[call-overload]
    assert x[1:4] == m[1:4] and type(x[1:4]) is list and x[::-3] == m[::-3] and x[:] == m
    assert list(x) == m and list(reversed(x)) == m[::-1] and [*x] == m
    assert m[5] in x and L(0.9, 1.0) not in x and L(m[5].price, m[5].size) in x
    assert x == m and m == x and not (x != m) and x != m[:-1] and x != m + [m[0]]
    assert x + [L(0.1, 1.0)] == m + [L(0.1, 1.0)] and type(x + []) is list
    assert [L(0.1, 1.0)] + x == [L(0.1, 1.0)] + m and x + x == m + m
    assert x * 2 == m * 2 and 2 * x == m * 2
    assert x.copy() == m and type(x.copy()) is list
    assert sorted(x, key=lambda lv: lv.price) == sorted(m, key=lambda lv: lv.price)
    with pytest.raises(TypeError):
        sorted(x)  # levels are not orderable, as the SDK's dataclass
    assert x.index(m[3]) == 3 and x.index(m[3], 2, 9) == 3 and x.count(m[3]) == 1
    with pytest.raises(ValueError):
        x.index(L(0.9, 1.0))
    assert repr(x) == repr(m) and str(x) == str(m)
    assert copy.copy(x) == m and type(copy.copy(x)) is list
    deep = copy.deepcopy(x)
    assert deep == m and type(deep) is list and deep[0] is not x[0]
    assert pickle.loads(pickle.dumps(x)) == m
    assert x == LevelList.of_book(book, "bid") and x != LevelList.of_book(book, "ask")
    with pytest.raises(TypeError):
        hash(x)
    assert not x.materialized  # reading never materializes


def test_level_objects_are_built_once_and_shared_by_every_read() -> None:
    x = LevelList.of_book(make_book(30, 1), "bid")
    assert x[0] is x[0] and x[20] is x[20] and x[-1] is x[29]
    assert x[:3][2] is x[2] and list(x)[25] is x[25] and next(reversed(x)) is x[-1]
    x[3].size = 123.0  # a change to a level object stays (as on the list's own object)
    assert x[3].size == 123.0 and list(x)[3].size == 123.0 and copy.copy(x)[3] is x[3]
    assert copy.deepcopy(x)[3].size == 123.0 and pickle.loads(pickle.dumps(x))[3].size == 123.0


def test_each_side_is_a_copy_taken_once() -> None:
    book = make_book(5, 5)
    x = LevelList.of_book(book, "bid")
    before = plain(book, "bid")
    book.set_level("bid", 0.5, 999.0)
    book.set_level("bid", 0.45, 1.0)
    assert x == before and x[0].size != 999.0


# -- LevelList mutations: materialize, then a list ---------------------------------------------------

MUTATIONS: list[tuple[str, Callable[[list[Any], Any], Any]]] = [
    ("append", lambda s, v: s.append(v)),
    ("extend", lambda s, v: s.extend([v, v])),
    ("extend_self", lambda s, v: s.extend(s)),
    ("insert", lambda s, v: s.insert(1, v)),
    ("pop", lambda s, v: s.pop()),
    ("pop0", lambda s, v: s.pop(0)),
    ("remove", lambda s, v: s.remove(s[0] if s else v)),
    ("clear", lambda s, v: s.clear()),
    ("sort", lambda s, v: s.sort(key=lambda lv: lv.size)),
    ("reverse", lambda s, v: s.reverse()),
    ("setitem", lambda s, v: s.__setitem__(0, v)),
    ("setslice", lambda s, v: s.__setitem__(slice(1, 3), [v])),
    ("delitem", lambda s, v: s.__delitem__(-1)),
    ("delslice", lambda s, v: s.__delitem__(slice(None, None, 2))),
    ("iadd", lambda s, v: s.__iadd__([v])),
    ("imul", lambda s, v: s.__imul__(2)),
]


@settings(max_examples=60)
@given(n=st.integers(0, 20), side=st.sampled_from(["bid", "ask"]),
       ops=st.lists(st.sampled_from(range(len(MUTATIONS))), max_size=6),
       reads=st.lists(st.integers(-25, 25), max_size=4))
def test_mutations_behave_as_on_a_plain_list(n: int, side: str, ops: list[int],
                                             reads: list[int]) -> None:
    book = make_book(n, n, seed=n)
    x, m = LevelList.of_book(book, side), plain(book, side)
    other = LevelList.of_book(book, side)
    for i in reads:  # some levels already built before the first mutation
        assert outcome(lambda: x[i]) == outcome(lambda: m[i])
    extra = L(0.123, 4.0)
    for k in ops:
        name, op = MUTATIONS[k]
        assert outcome(lambda: op(x, extra)) == outcome(lambda: op(m, extra)), name
        assert x == m and list(x) == m and len(x) == len(m), name
    assert x.materialized == bool(ops)  # every op calls a mutating method, even when it raises
    assert other == plain(book, side)  # another list over the same book: untouched
    assert pickle.loads(pickle.dumps(x)) == m and copy.deepcopy(x) == m


@settings(max_examples=80)
@given(n=st.integers(0, 40), side=st.sampled_from(["bid", "ask"]),
       start=st.none() | st.integers(-50, 50), stop=st.none() | st.integers(-50, 50),
       step=st.none() | st.integers(-5, 5).filter(lambda s: s != 0),
       idx=st.integers(-45, 45))
def test_random_reads_equal_a_plain_list(n: int, side: str, start: int | None,
                                         stop: int | None, step: int | None, idx: int) -> None:
    book = make_book(n, n, seed=3)
    x, m = LevelList.of_book(book, side), plain(book, side)
    sl = slice(start, stop, step)
    assert x[sl] == m[sl]
    assert outcome(lambda: x[idx]) == outcome(lambda: m[idx])
    assert outcome(lambda: x < m) == outcome(lambda: m < m)
    assert outcome(lambda: x.index(m[idx], start or 0)) == outcome(lambda: m.index(m[idx], start or 0))
    assert list(reversed(x)) == m[::-1] and list(x) == m


def test_level_list_and_book_copy_are_still_importable_from_levels() -> None:
    # They live in parsec_fast._levellist since parsec_fast._levels was split; the old import
    # path still gives them (looked up on first use: _levellist cimports _levels).
    import parsec_fast._levellist as levellist
    import parsec_fast._levels as levels
    from parsec_fast._levels import BookCopy, LevelList as Old
    assert Old is LevelList is levellist.LevelList and BookCopy is levellist.BookCopy
    assert set(levels.__all__) <= set(dir(levels))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        levels.nope  # type: ignore[attr-defined]  # noqa: B018


# -- StreamingOrderbookLevel ------------------------------------------------------------------------

def test_level_is_the_sdk_dataclass() -> None:
    sdk = pytest.importorskip("parsec_api.streaming")
    assert [(f.name, f.type) for f in dataclasses.fields(L)] == \
        [(f.name, f.type) for f in dataclasses.fields(sdk.StreamingOrderbookLevel)]
    lv, theirs = L(0.65, 1000.0), sdk.StreamingOrderbookLevel(0.65, 1000.0)
    assert repr(lv) == repr(theirs) == "StreamingOrderbookLevel(price=0.65, size=1000.0)"
    assert L(price=1, size=2).price == 1 and type(L(1, 2).price) is int  # stored as given
    assert lv == L(0.65, 1000.0) and lv != L(0.65, 1.0) and (lv == theirs) is False
    assert dataclasses.is_dataclass(lv) and dataclasses.asdict(lv) == {"price": 0.65, "size": 1000.0}
    assert dataclasses.astuple(lv) == (0.65, 1000.0) and dataclasses.replace(lv, size=3).size == 3
    with pytest.raises(TypeError):
        hash(lv)
    with pytest.raises(TypeError):
        lv < lv  # type: ignore[operator]
    lv.size = 5.0
    assert lv.size == 5.0
    with pytest.raises(AttributeError):
        del lv.price
    assert copy.copy(lv) == lv and copy.deepcopy(lv) == lv and pickle.loads(pickle.dumps(lv)) == lv
    match lv:
        case L(price, size):
            assert (price, size) == (0.65, 5.0)
    nan = float("nan")
    same = L(nan, 1.0)
    # The dataclass's tuple semantics: identity first, then ==.
    assert same == same and L(nan, 1.0) == L(nan, 1.0) and L(nan, 1.0) != L(float("nan"), 1.0)


# -- OrderbookSnapshot ------------------------------------------------------------------------------

FIELDS = dict(parsec_id="polymarket:1", outcome="Yes", exchange="polymarket", token_id="t",
              market_id="1", title="T?", mid_price=0.5005, spread=0.001, tick_size=0.001,
              kind="delta", server_seq=1235, feed_state="healthy", book_state="fresh",
              stale_after_ms=5000, exchange_ts_ms=1708123456100, ingest_ts_ms=None)


def test_payload_is_the_sdk_dataclass() -> None:
    sdk = pytest.importorskip("parsec_api.streaming")
    assert [(f.name, f.type, f.default) for f in dataclasses.fields(OrderbookSnapshot)] == \
        [(f.name, f.type, f.default) for f in dataclasses.fields(sdk.OrderbookSnapshot)]
    ours = OrderbookSnapshot(bids=[L(0.5, 1.0)], asks=[L(0.501, 2.0)], **FIELDS)
    theirs = sdk.OrderbookSnapshot(bids=[sdk.StreamingOrderbookLevel(0.5, 1.0)],
                                   asks=[sdk.StreamingOrderbookLevel(0.501, 2.0)], **FIELDS)
    assert repr(ours) == repr(theirs)
    positional = OrderbookSnapshot(*dataclasses.astuple(ours)[:6], ours.bids, ours.asks,
                                   *list(FIELDS.values())[6:])
    assert positional == ours and not (positional != ours) and ours != theirs
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs)
    assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
    assert dataclasses.replace(ours, kind="snapshot").kind == "snapshot"
    assert copy.copy(ours).bids is ours.bids and copy.deepcopy(ours) == ours
    assert copy.deepcopy(ours).bids[0] is not ours.bids[0]
    assert pickle.loads(pickle.dumps(ours)) == ours
    with pytest.raises(TypeError):
        hash(ours)
    with pytest.raises(TypeError):
        OrderbookSnapshot(bids=[], asks=[])  # type: ignore[call-arg]  # every field is required
    with pytest.raises(AttributeError):
        del ours.kind
    with pytest.raises(AttributeError):
        ours.extra = 1  # type: ignore[attr-defined]  # no __dict__ (documented)
    ours.server_seq, ours.bids = 7, []
    assert (ours.server_seq, ours.bids) == (7, [])
    match ours:
        case OrderbookSnapshot(pid, outcome):
            assert (pid, outcome) == ("polymarket:1", "Yes")
