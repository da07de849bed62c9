"""Unit tests of the documented edge cases, run against both books (compiled and reference).

Every test asserts a concrete value. The rules are in ``parsec_fast.reference``'s docstring.
"""
from __future__ import annotations

import array
import gc
import math
import sys
import tracemalloc

import numpy as np
import pytest

import parsec_fast
from parsec_fast import Book, BookDataError, DeltaResult
from parsec_fast import reference

BOOKS = [pytest.param(Book, id="compiled"), pytest.param(reference.Book, id="reference")]

ZERO_STATS = dict.fromkeys(("snapshots", "applied", "duplicates", "gaps", "dropped",
                            "no_snapshot", "rejected"), 0)


def stats(**counts):
    return {**ZERO_STATS, **counts}


def ch(side, price, size):
    return {"side": side, "price": price, "size": size}


@pytest.fixture(params=BOOKS)
def cls(request):
    return request.param


@pytest.fixture
def book(cls):
    """A valid book at seq 10: bids 0.50 x 10, 0.49 x 20; asks 0.52 x 5, 0.53 x 7."""
    b = cls("pid", "yes")
    b.apply_snapshot([[0.50, 10.0], [0.49, 20.0]], [[0.52, 5.0], [0.53, 7.0]], 10)
    return b


# -- imports ---------------------------------------------------------------------------------------

def test_public_imports():
    assert parsec_fast.Book is Book
    assert Book.__module__ == "parsec_fast._book"
    assert issubclass(BookDataError, ValueError)
    assert [m.name for m in DeltaResult] == ["APPLIED", "DUPLICATE", "GAP", "NO_SNAPSHOT"]
    assert DeltaResult.APPLIED == 0 and DeltaResult.NO_SNAPSHOT == 3


# -- constructor -----------------------------------------------------------------------------------

def test_constructor_defaults(cls):
    b = cls("pid", "no")
    assert (b.parsec_id, b.outcome, b.max_levels) == ("pid", "no", 10_000)
    assert b.seq is None and b.is_valid is False
    assert b.bids() == [] and b.asks() == []
    assert b.best_bid is None and b.best_ask is None and b.mid is None and b.spread is None
    assert b.crossed is False
    assert b.stats == ZERO_STATS
    assert b.to_dict() == {"parsec_id": "pid", "outcome": "no", "seq": None, "is_valid": False,
                           "bids": [], "asks": []}


@pytest.mark.parametrize("args, message", [
    ((1, "yes"), "parsec_id: expected str, got int"),
    (("pid", None), "outcome: expected str, got NoneType"),
    ((b"pid", "yes"), "parsec_id: expected str, got bytes"),
])
def test_constructor_type_errors(cls, args, message):
    with pytest.raises(TypeError) as info:
        cls(*args)
    assert str(info.value) == message


@pytest.mark.parametrize("max_levels, message", [
    (0, "max_levels: must be >= 1, got 0"),
    (-5, "max_levels: must be >= 1, got -5"),
    (2**64, f"max_levels: must be <= {sys.maxsize}, got {2**64}"),
])
def test_constructor_max_levels_errors(cls, max_levels, message):
    with pytest.raises(ValueError) as info:
        cls("pid", "yes", max_levels=max_levels)
    assert str(info.value) == message
    with pytest.raises(TypeError):
        cls("pid", "yes", max_levels=2.0)
    with pytest.raises(TypeError):
        cls("pid", "yes", 5)  # keyword-only


def test_str_subclass_ids_are_stored_as_str(cls):
    from enum import StrEnum

    class Outcome(StrEnum):
        YES = "yes"

    b = cls("pid", Outcome.YES)
    assert type(b.outcome) is str and b.outcome == "yes"


# -- price identity --------------------------------------------------------------------------------

def test_prices_with_the_same_nano_key_are_one_level(cls):
    b = cls("pid", "yes")
    b.apply_snapshot([], [], 0)
    assert 0.1 + 0.2 != 0.3
    b.set_level("bid", 0.1 + 0.2, 1.0)
    b.set_level("bid", 0.3, 2.0)
    b.set_level("bid", 0.3000000000001, 3.0)
    assert b.bids() == [(0.3, 3.0)]
    assert b.level_count("bid") == 1
    assert b.bid_size(0.1 + 0.2) == 3.0
    price = b.bids()[0][0]
    assert price == 0.3 and price.hex() == (0.3).hex()
    assert b.best_bid_price == 0.3


def test_reported_price_is_the_decimal_double(cls):
    b = cls("pid", "yes")
    b.apply_snapshot([[57 * 0.01, 1]], [[0.0001 * 3, 1]], 1)  # 0.5700000000000001, 0.00030000000000000003
    assert b.bids() == [(0.57, 1.0)] and b.asks() == [(0.0003, 1.0)]
    assert b.best_ask_price == 0.0003
    assert b.mid == (0.57 + 0.0003) / 2


def test_nano_rounding_ties_to_even(cls):
    b = cls("pid", "yes")
    b.set_level("ask", 2.5e-9, 1.0)     # 2.5 nano-units -> 2
    b.set_level("ask", 3.5e-9, 1.0)     # 3.5 -> 4
    b.set_level("ask", 6e-10, 1.0)      # 0.6 -> 1
    assert [p for p, _ in b.asks()] == [1e-9, 2e-9, 4e-9]


def test_int_sizes_and_prices_become_floats(cls):
    b = cls("pid", "yes")
    b.apply_snapshot([[1, 3]], [], 1)
    assert b.bids() == [(1.0, 3.0)]
    assert type(b.bids()[0][0]) is float and type(b.bids()[0][1]) is float


# -- snapshots -------------------------------------------------------------------------------------

def test_snapshot_replaces_everything_and_sets_baseline_even_if_lower(book):
    book.apply_delta([ch("bid", 0.51, 1.0)], 11)
    book.apply_snapshot([[0.40, 1.0]], [[0.60, 2.0]], 3)
    assert book.seq == 3 and book.is_valid
    assert book.bids() == [(0.40, 1.0)] and book.asks() == [(0.60, 2.0)]
    assert book.apply_delta([ch("ask", 0.61, 1.0)], 4) is DeltaResult.APPLIED
    assert book.stats == stats(snapshots=2, applied=2)


def test_snapshot_zero_size_levels_are_skipped(cls):
    b = cls("pid", "yes")
    b.apply_snapshot([[0.5, 0], [0.4, 1.0], [0.3, 0.0]], [(0.6, 0.0)], 1)
    assert b.bids() == [(0.4, 1.0)] and b.asks() == []
    assert b.level_count("bid") == 1 and b.level_count("ask") == 0


def test_snapshot_tuple_levels_and_containers(cls):
    b = cls("pid", "yes")
    b.apply_snapshot(((0.5, 1.0), [0.4, 2]), ((0.6, 3.0),), 1)
    assert b.bids() == [(0.5, 1.0), (0.4, 2.0)] and b.asks() == [(0.6, 3.0)]


def test_snapshot_restores_validity_after_gap(book):
    assert book.apply_delta([], 15) is DeltaResult.GAP
    assert not book.is_valid
    book.apply_snapshot([], [], 20)
    assert book.is_valid and book.seq == 20 and book.bids() == []


@pytest.mark.parametrize("bids, asks, message", [
    ([[0.4, 1.0], [0.5, 1.0]], [], "bids[1].price: bids must be strictly descending, got 0.5 after 0.4"),
    ([], [[0.6, 1.0], [0.6, 2.0]], "asks[1].price: asks must be strictly ascending, got 0.6 after 0.6"),
    ([], [[0.3, 1.0], [0.1 + 0.2, 2.0]], "asks[1].price: asks must be strictly ascending, got 0.3 after 0.3"),
    ([[0.5, -1.0]], [], "bids[0].size: size must be >= 0, got -1.0"),
    ([[0.5, float("nan")]], [], "bids[0].size: size must be finite, got nan"),
    ([[0.0, 1.0]], [], "bids[0].price: price must be > 0, got 0.0"),
    ([], [[0.6, 1.0], [1e10, 1.0]], "asks[1].price: price must be <= 1e+09, got 10000000000.0"),
    ([[1e-10, 1.0]], [], "bids[0].price: price rounds to zero nano-units, got 1e-10"),
    ([[True, 1.0]], [], "bids[0].price: expected a number, got bool True"),
    ([["0.5", 1.0]], [], "bids[0].price: expected a number, got str '0.5'"),
    ([[0.5]], [], "bids[0]: expected [price, size], got [0.5]"),
    ([[0.5, 1.0, 2.0]], [], "bids[0]: expected [price, size], got [0.5, 1.0, 2.0]"),
    (None, [], "bids: expected a list of [price, size], got NoneType"),
    ([], {"0.5": 1}, "asks: expected a list of [price, size], got dict"),
    ([[10**400, 1.0]], [], f"bids[0].price: number out of range, got {10**400!r}"),
])
def test_bad_snapshot_is_rejected_atomically(book, bids, asks, message):
    before = book.to_dict()
    with pytest.raises(BookDataError) as info:
        book.apply_snapshot(bids, asks, 50)
    assert str(info.value) == message
    assert [list(x) for x in book.bids()] == before["bids"]
    assert [list(x) for x in book.asks()] == before["asks"]
    assert book.seq == 10 and not book.is_valid
    assert book.stats == stats(snapshots=1, rejected=1)


def test_snapshot_too_many_levels(cls):
    b = cls("pid", "yes", max_levels=3)
    b.apply_snapshot([[0.5, 1], [0.4, 1], [0.3, 1]], [], 1)
    with pytest.raises(BookDataError) as info:
        b.apply_snapshot([], [[0.6, 0], [0.7, 0], [0.8, 0], [0.9, 0]], 2)
    assert str(info.value) == "asks: 4 levels exceed max_levels=3"
    assert b.level_count("bid") == 3 and not b.is_valid and b.seq == 1


@pytest.mark.parametrize("seq, message", [
    (True, "seq: expected an integer, got bool True"),
    (1.0, "seq: expected an integer, got float 1.0"),
    ("7", "seq: expected an integer, got str '7'"),
    (None, "seq: expected an integer, got NoneType None"),
    (2**63, f"seq: out of the 64-bit range, got {2**63}"),
    (-(2**63) - 1, f"seq: out of the 64-bit range, got {-(2**63) - 1}"),
])
def test_bad_seq(book, seq, message):
    with pytest.raises(BookDataError) as info:
        book.apply_snapshot([], [], seq)
    assert str(info.value) == message
    with pytest.raises(BookDataError) as info:
        book.apply_delta([], seq)
    assert str(info.value) == message
    assert book.stats == stats(snapshots=1, rejected=2) and book.bids() == [(0.5, 10.0), (0.49, 20.0)]


def test_int64_seq_bounds(cls):
    b = cls("pid", "yes")
    b.apply_snapshot([], [], 2**63 - 1)
    assert b.seq == 2**63 - 1
    assert b.apply_delta([], 2**63 - 1) is DeltaResult.DUPLICATE
    b.apply_snapshot([], [], -(2**63))
    assert b.apply_delta([ch("bid", 0.5, 1)], -(2**63) + 1) is DeltaResult.APPLIED
    assert b.seq == -(2**63) + 1


# -- deltas: sequencing ----------------------------------------------------------------------------

def test_delta_results_and_counters(cls):
    b = cls("pid", "yes")
    assert b.apply_delta([ch("bid", 0.5, 1.0)], 1) is DeltaResult.NO_SNAPSHOT
    assert b.bids() == [] and b.seq is None and not b.is_valid
    b.apply_snapshot([], [], 5)
    assert b.apply_delta([ch("bid", 0.5, 1.0)], 6) is DeltaResult.APPLIED
    assert b.apply_delta([ch("bid", 0.5, 9.0)], 6) is DeltaResult.DUPLICATE
    assert b.apply_delta([ch("bid", 0.5, 9.0)], 2) is DeltaResult.DUPLICATE
    assert b.bids() == [(0.5, 1.0)] and b.seq == 6
    assert b.apply_delta([ch("bid", 0.4, 1.0)], 8) is DeltaResult.GAP
    assert not b.is_valid and b.seq == 6 and b.bids() == [(0.5, 1.0)]
    assert b.apply_delta([ch("bid", 0.4, 1.0)], 7) is DeltaResult.GAP    # dropped while invalid
    assert b.apply_delta([ch("bid", 0.4, 1.0)], 9) is DeltaResult.GAP
    assert b.bids() == [(0.5, 1.0)]
    assert b.stats == stats(snapshots=1, applied=1, duplicates=2, gaps=1, dropped=2, no_snapshot=1)


def test_duplicate_is_dropped_unread(book):
    assert book.apply_delta("garbage", 10) is DeltaResult.DUPLICATE
    assert book.apply_delta([{"side": "nope"}], 3) is DeltaResult.DUPLICATE
    assert book.is_valid and book.stats == stats(snapshots=1, duplicates=2)


def test_invalidate_then_gap_until_snapshot(book):
    book.invalidate()
    assert not book.is_valid and book.seq == 10
    assert book.bids() == [(0.5, 10.0), (0.49, 20.0)]   # levels kept for inspection
    assert book.apply_delta([], 11) is DeltaResult.GAP
    book.apply_snapshot([], [[0.7, 1]], 11)
    assert book.apply_delta([], 12) is DeltaResult.APPLIED
    assert book.stats == stats(snapshots=2, applied=1, dropped=1)


def test_empty_delta_advances_seq(book):
    assert book.apply_delta([], 11) is DeltaResult.APPLIED
    assert book.apply_delta((), 12) is DeltaResult.APPLIED
    assert book.seq == 12


# -- deltas: changes -------------------------------------------------------------------------------

def test_delta_applies_changes_in_order(book):
    result = book.apply_delta([ch("bid", 0.51, 1.0), ch("bid", 0.51, 4.0), ch("ask", 0.52, 0),
                               ch("ask", 0.515, 2.0), {"price": 0.49, "size": 0.0, "side": "bid", "x": 1}], 11)
    assert result is DeltaResult.APPLIED
    assert book.bids() == [(0.51, 4.0), (0.5, 10.0)]
    assert book.asks() == [(0.515, 2.0), (0.53, 7.0)]
    assert book.best_bid == (0.51, 4.0) and book.best_ask == (0.515, 2.0)
    assert book.spread == 0.515 - 0.51 and book.mid == (0.51 + 0.515) / 2


def test_zero_size_removes_and_absent_removal_is_noop(book):
    assert book.apply_delta([ch("bid", 0.49, 0.0), ch("ask", 0.99, 0), ch("bid", 0.11, -0.0)], 11) \
        is DeltaResult.APPLIED
    assert book.bids() == [(0.5, 10.0)] and book.asks() == [(0.52, 5.0), (0.53, 7.0)]
    assert book.level_count("bid") == 1 and book.level_count("ask") == 2
    book.set_level("ask", 0.77, 0)
    assert book.level_count("ask") == 2


def test_atomic_delta_third_change_bad(book):
    before_bids, before_asks = book.bids(), book.asks()
    changes = [ch("bid", 0.51, 1.0), ch("ask", 0.52, 0), ch("ask", 0.6, float("inf")), ch("bid", 0.4, 1)]
    with pytest.raises(BookDataError) as info:
        book.apply_delta(changes, 11)
    assert str(info.value) == "changes[2].size: size must be finite, got inf"
    assert book.bids() == before_bids and book.asks() == before_asks
    assert not book.is_valid and book.seq == 10
    assert book.stats == stats(snapshots=1, rejected=1)
    assert book.apply_delta([ch("bid", 0.51, 1.0)], 11) is DeltaResult.GAP


@pytest.mark.parametrize("changes, message", [
    ([ch("bid", 0.5, 1), ch("bid", -0.5, 1)], "changes[1].price: price must be > 0, got -0.5"),
    ([ch("bid", 0.5, 1), ch("bid", float("nan"), 1)], "changes[1].price: price must be finite, got nan"),
    ([ch("ask", 0.5, -2)], "changes[0].size: size must be >= 0, got -2.0"),
    ([ch("ask", 0.5, True)], "changes[0].size: expected a number, got bool True"),
    ([ch("ask", 0.5, None)], "changes[0].size: expected a number, got NoneType None"),
    ([ch("buy", 0.5, 1)], "changes[0].side: expected 'bid' or 'ask', got 'buy'"),
    ([ch(None, 0.5, 1)], "changes[0].side: expected 'bid' or 'ask', got None"),
    ([ch("bid", 0.5, 1), {"side": "bid", "size": 1}], "changes[1]: missing 'price'"),
    ([{"price": 0.5, "size": 1}], "changes[0]: missing 'side'"),
    ([["bid", 0.5, 1]], "changes[0]: expected an object, got list"),
    ({"side": "bid"}, "changes: expected a list, got dict"),
    (None, "changes: expected a list, got NoneType"),
    ([ch("bid", 1e-10, 1)], "changes[0].price: price rounds to zero nano-units, got 1e-10"),
    ([ch("bid", 10**9 + 1, 1)], "changes[0].price: price must be <= 1e+09, got 1000000001.0"),
    ([ch("bid", 0.5, 10**400)], f"changes[0].size: number out of range, got {10**400!r}"),
])
def test_delta_error_messages_name_the_field(book, changes, message):
    with pytest.raises(BookDataError) as info:
        book.apply_delta(changes, 11)
    assert str(info.value) == message
    assert book.bids() == [(0.5, 10.0), (0.49, 20.0)] and not book.is_valid


def test_max_levels_overflow_rolls_back_mid_delta(cls):
    b = cls("pid", "yes", max_levels=3)
    b.apply_snapshot([[0.5, 1.0], [0.4, 2.0]], [[0.6, 1.0]], 1)
    changes = [ch("bid", 0.5, 9.0),     # update
               ch("bid", 0.4, 0),       # remove
               ch("bid", 0.45, 3.0),    # new (3 levels again after removal? 2)
               ch("bid", 0.44, 3.0),    # new -> 3 levels
               ch("ask", 0.7, 1.0),     # other side, fine
               ch("bid", 0.43, 1.0)]    # 4th bid level: overflow
    with pytest.raises(BookDataError) as info:
        b.apply_delta(changes, 2)
    assert str(info.value) == "changes[5]: a new bid level would exceed max_levels=3"
    assert b.bids() == [(0.5, 1.0), (0.4, 2.0)] and b.asks() == [(0.6, 1.0)]
    assert not b.is_valid and b.seq == 1 and b.stats == stats(snapshots=1, rejected=1)
    # updating an existing level at the limit is fine
    b.apply_snapshot([[0.5, 1.0], [0.4, 2.0], [0.3, 1.0]], [], 5)
    assert b.apply_delta([ch("bid", 0.3, 5.0), ch("bid", 0.5, 0), ch("bid", 0.2, 1)], 6) is DeltaResult.APPLIED
    assert b.bids() == [(0.4, 2.0), (0.3, 5.0), (0.2, 1.0)]


# -- set_level -------------------------------------------------------------------------------------

def test_set_level_does_not_touch_seq_validity_or_counters(book):
    book.set_level("ask", 0.51, 1.5)
    assert book.best_ask == (0.51, 1.5) and book.seq == 10 and book.is_valid
    with pytest.raises(BookDataError) as info:
        book.set_level("ask", 0.51, -1)
    assert str(info.value) == "size: size must be >= 0, got -1.0"
    with pytest.raises(BookDataError) as info:
        book.set_level("bids", 0.51, 1)
    assert str(info.value) == "side: expected 'bid' or 'ask', got 'bids'"
    with pytest.raises(BookDataError) as info:
        book.set_level("bid", "0.51", 1)
    assert str(info.value) == "price: expected a number, got str '0.51'"
    assert book.is_valid and book.stats == stats(snapshots=1) and book.best_ask == (0.51, 1.5)


def test_set_level_overflow(cls):
    b = cls("pid", "yes", max_levels=1)
    b.set_level("bid", 0.5, 1)
    with pytest.raises(BookDataError) as info:
        b.set_level("bid", 0.4, 1)
    assert str(info.value) == "price: a new bid level would exceed max_levels=1"
    assert b.bids() == [(0.5, 1.0)]
    b.set_level("ask", 0.6, 1)   # the other side has its own limit
    assert b.level_count("ask") == 1


# -- reads -----------------------------------------------------------------------------------------

def test_crossed_book_reads(cls):
    b = cls("pid", "yes")
    b.apply_snapshot([[0.6, 1.0]], [[0.55, 2.0]], 1)
    assert b.crossed is True
    assert b.spread == 0.55 - 0.6 and b.spread < 0
    b.set_level("ask", 0.55, 0)
    b.set_level("ask", 0.6, 1.0)
    assert b.crossed is True and b.spread == 0.0   # locked counts as crossed
    b.set_level("ask", 0.61, 1.0)
    b.set_level("ask", 0.6, 0)
    assert b.crossed is False


def test_best_prices_nan_when_empty(cls):
    b = cls("pid", "yes")
    for value in (b.best_bid_price, b.best_bid_size, b.best_ask_price, b.best_ask_size):
        assert math.isnan(value)
    b.set_level("bid", 0.25, 4)
    assert (b.best_bid_price, b.best_bid_size) == (0.25, 4.0)
    assert math.isnan(b.best_ask_price) and b.mid is None and b.spread is None


def test_levels_n(book):
    assert book.bids(1) == [(0.5, 10.0)]
    assert book.asks(0) == []
    assert book.asks(100) == [(0.52, 5.0), (0.53, 7.0)]
    assert book.bids(10**30) == [(0.5, 10.0), (0.49, 20.0)]
    with pytest.raises(ValueError, match=r"^n: must be >= 0 or None, got -1$"):
        book.bids(-1)
    with pytest.raises(TypeError):
        book.asks(1.5)


def test_reads_do_not_change_state(book):
    before = (book.to_dict(), book.stats)
    for _ in range(3):
        book.bids(), book.asks(1), book.best_bid, book.best_ask, book.mid, book.spread
        book.crossed, book.bid_size(0.5), book.ask_size(0.9), book.level_count("ask")
        book.bids_array(), book.asks_into(array.array("d", [0.0] * 4)), book.to_dict(), repr(book)
    assert (book.to_dict(), book.stats) == before


def test_bid_size_bad_price_raises_without_invalidating(book):
    assert book.bid_size(0.49) == 20.0 and book.ask_size(0.49) == 0.0
    assert book.ask_size(0.53 + 1e-13) == 7.0
    with pytest.raises(BookDataError) as info:
        book.bid_size(-1)
    assert str(info.value) == "price: price must be > 0, got -1.0"
    with pytest.raises(BookDataError):
        book.ask_size(float("nan"))
    assert book.is_valid and book.stats == stats(snapshots=1)


def test_level_count_bad_side(book):
    with pytest.raises(BookDataError, match=r"^side: expected 'bid' or 'ask', got 'BID'$"):
        book.level_count("BID")


def test_to_dict(book):
    assert book.to_dict() == {"parsec_id": "pid", "outcome": "yes", "seq": 10, "is_valid": True,
                              "bids": [[0.5, 10.0], [0.49, 20.0]], "asks": [[0.52, 5.0], [0.53, 7.0]]}


def test_repr(book):
    assert repr(book) == f"{type(book).__name__}('pid', 'yes', seq=10, valid=True, bids=2, asks=2)"


# -- arrays and buffers ----------------------------------------------------------------------------

def test_arrays(book):
    bids = book.bids_array()
    assert bids.dtype == np.float64 and bids.shape == (2, 2)
    assert bids.tolist() == [[0.5, 10.0], [0.49, 20.0]]
    asks = book.asks_array(1)
    assert asks.shape == (1, 2) and asks.tolist() == [[0.52, 5.0]]
    assert book.asks_array(0).shape == (0, 2)
    empty = type(book)("p", "o").bids_array()
    assert empty.shape == (0, 2) and empty.dtype == np.float64


def test_into_array_array(book):
    out = array.array("d", [-1.0] * 6)
    assert book.bids_into(out) == 2
    assert out.tolist() == [0.5, 10.0, 0.49, 20.0, -1.0, -1.0]
    short = array.array("d", [-1.0] * 3)   # room for one level only
    assert book.asks_into(short) == 1
    assert short.tolist() == [0.52, 5.0, -1.0]
    assert book.asks_into(array.array("d")) == 0


def test_into_numpy(book):
    out = np.full((3, 2), -1.0)
    assert book.asks_into(out) == 2
    assert out.tolist() == [[0.52, 5.0], [0.53, 7.0], [-1.0, -1.0]]
    assert book.bids_into(np.zeros((0, 2))) == 0
    flat = np.zeros(2)
    assert book.bids_into(flat) == 1 and flat.tolist() == [0.5, 10.0]


def readonly_array():
    a = np.zeros(4)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("make, message", [
    (readonly_array, "out: buffer must be writable"),
    (lambda: bytes(32), "out: buffer must be writable"),
    (lambda: np.zeros(4, dtype=np.float32), "out: expected a C-contiguous float64 buffer, got format 'f'"),
    (lambda: array.array("q", [0] * 4), "out: expected a C-contiguous float64 buffer, got format 'q'"),
    (lambda: np.zeros(8)[::2], "out: expected a C-contiguous float64 buffer, got format 'd'"),
    (lambda: np.zeros(4, dtype=">f8"), "out: expected a C-contiguous float64 buffer, got format '>d'"),
])
def test_into_bad_buffers(book, make, message):
    with pytest.raises(ValueError) as info:
        book.bids_into(make())
    assert str(info.value) == message
    with pytest.raises(TypeError):
        book.asks_into([0.0, 0.0])
    assert book.is_valid


# -- no allocation in apply_delta ------------------------------------------------------------------

def _delta_workload(n_levels=50):
    """A warm book plus pre-built (changes, seq) pairs: updates, removals and re-adds."""
    changes = []
    for i in range(200):
        price = (50 + i % 10) / 100
        changes.append([{"side": "ask", "price": price, "size": float(i % 3)}])
        changes.append([{"side": "bid", "price": (40 - i % 7) / 100, "size": 1.0 + i % 5},
                        {"side": "ask", "price": 0.99, "size": 0.0}])
    seqs = list(range(2, 2 + 10_000))
    work = [(changes[i % len(changes)], seqs[i]) for i in range(10_000)]
    return work


def _traced_peak(loop, work):
    """Peak bytes of Python allocations above the start while ``loop(work)`` runs."""
    gc.collect()
    gc.disable()
    try:
        tracemalloc.start()
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loop(work)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        gc.enable()
    return peak - start


def _measure(book_cls):
    """(net memory blocks, extra transient bytes) over 10,000 apply_delta calls, compared
    with the same loop that does not call the book."""
    book = book_cls("pid", "yes")
    snapshot = ([[(40 - i) / 100, 1.0] for i in range(30)], [[(50 + i) / 100, 1.0] for i in range(40)])
    book.apply_snapshot(*snapshot, 1)
    work = _delta_workload()
    apply = book.apply_delta
    for changes, seq in work[:100]:  # warm up (buffers grow once)
        apply(changes, seq)
    book.apply_snapshot(*snapshot, 1)

    def idle(work):
        for changes, seq in work:
            pass

    def busy(work):
        for changes, seq in work:
            apply(changes, seq)

    baseline = _traced_peak(idle, work)
    gc.collect()
    blocks = sys.getallocatedblocks()
    peak = _traced_peak(busy, work)
    net = sys.getallocatedblocks() - blocks
    assert book.seq == 1 + len(work) and book.stats["applied"] == 100 + len(work)
    return net, peak - baseline


def test_compiled_apply_delta_allocates_nothing():
    net, peak = _measure(Book)
    assert net <= 4, f"{net} Python memory blocks leaked over 10,000 apply_delta calls"
    assert peak <= 16, f"apply_delta allocated {peak} bytes of Python objects (transiently)"


def test_allocation_probe_sees_the_reference_allocating():
    """The probe is sensitive: the reference book builds a list of tuples per call."""
    _, peak = _measure(reference.Book)
    assert peak > 64, peak
