"""Property test: the compiled ``parsec_fast.Book`` and ``parsec_fast.reference.Book`` agree.

A Hypothesis ``RuleBasedStateMachine`` drives one book of each kind with the same arbitrary
operation sequence (snapshots, deltas, set_level, invalidate, reads with arguments) and, after
every step, requires the same return value or the same exception (type and message), and the same
observable state. It also checks a few structural invariants of the reference itself (sorted
sides, no zero sizes, at most ``max_levels`` levels), so a bug shared by both is not invisible.

Run more examples with ``HYPOTHESIS_PROFILE=heavy`` (profiles live in ``tests/conftest.py``).
"""
from __future__ import annotations

import array
import math

import numpy as np
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from parsec_fast import Book as FastBook
from parsec_fast.rules import DeltaResult
from parsec_fast.errors import BookDataError
from parsec_fast.reference import Book as RefBook

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


# ------------------------------------------------------------------------------------------------
# Comparison helpers
# ------------------------------------------------------------------------------------------------

def canon(value):
    """A structure that is equal iff the values are identical: types, exact floats (NaN and -0.0
    included), container kinds."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, DeltaResult):
        return ("DeltaResult", value.name)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(k, canon(v)) for k, v in value.items()])
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, canon(value.tolist()))
    raise AssertionError(f"unexpected value {value!r}")


def outcome(fn, *args):
    try:
        return ("ok", canon(fn(*args)))
    except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
        return ("raised", type(exc).__name__, str(exc))


def same(fast_fn, ref_fn, *args):
    """Call both, require identical results or identical exceptions; return the outcome."""
    got = outcome(fast_fn, *args)
    want = outcome(ref_fn, *args)
    assert got == want, f"args={args!r}\ncompiled:  {got}\nreference: {want}"
    if want[0] == "raised":
        # Only the documented exception types may escape.
        assert want[1] in ("BookDataError", "ValueError", "TypeError"), want
        event(f"{getattr(ref_fn, '__name__', '?')} raised {want[1]}: "
              f"{want[2].split(':')[0].split('[')[0]} {'max_levels' in want[2]}")
    else:
        event(f"{getattr(ref_fn, '__name__', '?')} -> {want[1][1] if want[1][0] == 'DeltaResult' else 'ok'}")
    return want


# ------------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------------

def weighted(*pairs):
    """one_of with integer weights: weighted((9, a), (1, b))."""
    return st.one_of(*[s for w, s in pairs for _ in range(w)])


# Prices on decimal tick grids inside (0, 1], computed two ways: k * tick is often *not* the
# nearest double of the decimal (3 * 0.1 = 0.30000000000000004), k / (1 / tick) usually is, so
# both books must round them to the same key. Precomputed tables keep generation cheap (one
# draw per price), which buys more examples per second.
CENT_PRICES = [k * 0.01 for k in range(1, 101)] + [k / 100 for k in range(1, 101)]
FINE_PRICES = ([min(k * 0.001, 1.0) for k in range(1, 1001, 3)]
               + [k / 10_000 for k in range(1, 10_001, 37)] + [k * 0.0001 for k in range(1, 10_001, 41)])
# Prices that land on an existing key although the double differs (0.1 vs 0.1000000000001),
# and ties of the nano rounding.
NEAR_PRICES = [p + eps for p in CENT_PRICES[:100:7] for eps in (1e-13, -1e-13, 4e-10, -4e-10, 5e-10)]
ODD_PRICES = [1, 1.0, 7, 1e9, 10**9, 999_999_999.999, 1e-9, 1.5e-9, 6e-10, 2.5e-9, 3.5e-9,
              0.1 + 0.2, 0.3, 123456.789, 2**29 + 0.5, 9_007_199.254740993, 0.5 + 5e-10, 1.0000000005]
grid_price = st.sampled_from(CENT_PRICES)
valid_price = weighted(
    (10, grid_price),
    (3, st.sampled_from(FINE_PRICES)),
    (2, st.sampled_from(NEAR_PRICES)),
    (1, st.sampled_from(ODD_PRICES)),
    (1, st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)),
    (1, st.integers(1, 10**9)),
)
bad_price = st.sampled_from([
    float("nan"), float("inf"), float("-inf"), 0, 0.0, -0.0, -0.01, -1, 1e9 + 1, 1e9 * 1.0000001,
    10**9 + 1, 1e-10, 4e-10, 5e-10, 1e-300, True, False, "0.5", None, 10**400, -(10**400), [0.5],
    b"0.5",
])
any_price = weighted((20, valid_price), (1, bad_price))

SIZES = [0, 0.0, -0.0, 1, 2, 10, 100, 0.5, 1.25, 3.75, 12.5, 99.999, 250.0, 1000, 0.001,
         123.456, 7.0, 42, 0.1 + 0.2, 1e-300, 5e-324, 1e300, 2**53 + 1, 10**20]
valid_size = weighted(
    (6, st.sampled_from(SIZES)),
    (1, st.floats(min_value=0, max_value=1e6, allow_nan=False)),
)
bad_size = st.sampled_from([
    float("nan"), float("inf"), float("-inf"), -1, -1.5, -1e-300, True, False, "1", None,
    10**400, [1.0],
])
any_size = weighted((20, valid_size), (1, bad_size))

valid_side = st.sampled_from(["bid", "ask"])
bad_side = st.sampled_from(["BID", "Ask", "buy", "bid ", "", None, 0, 1, b"bid", True, ["bid"]])
any_side = weighted((30, valid_side), (1, bad_side))


def price_key(price):
    """The nano-unit key of a valid price, None for an invalid one (the documented rule)."""
    if isinstance(price, bool) or not isinstance(price, (int, float)):
        return None
    try:
        value = float(price)
    except OverflowError:
        return None
    if not math.isfinite(value) or value <= 0 or value > 1e9:
        return None
    return round(value * 1e9) or None


BAD_CHANGES = [None, "bid", 1, ["bid", 0.5, 1.0], ("ask", 0.5, 1.0), {"bid": 0.5}]


def valid_change(price=valid_price, side=valid_side):
    return st.fixed_dictionaries({"side": side, "price": price, "size": valid_size})


@st.composite
def corrupt_changes(draw, changes: list):
    """Inject one defect into a list of (valid) changes: a bad field value, a missing key, a
    non-dict change, or a container that is not a list."""
    kind = draw(st.integers(0, 5))
    if kind == 5 or not changes:
        return draw(st.sampled_from([None, {}, {"side": "bid", "price": 0.5, "size": 1.0}, "bid", 5,
                                     b"x", range(2)]))
    i = draw(st.integers(0, len(changes) - 1))
    changes = [dict(c) for c in changes]
    if kind == 0:
        changes[i]["side"] = draw(bad_side)
    elif kind == 1:
        changes[i]["price"] = draw(bad_price)
    elif kind == 2:
        changes[i]["size"] = draw(bad_size)
    elif kind == 3:
        del changes[i][draw(st.sampled_from(["side", "price", "size"]))]
    else:
        changes[i] = draw(st.sampled_from(BAD_CHANGES))
    return changes


@st.composite
def changes_arg(draw, existing=()):
    """Mostly valid changes (some touching ``existing`` (side, price) levels), sometimes one
    defect, sometimes a tuple; unknown keys and key order must not matter."""
    n = draw(st.integers(0, 6))
    changes = []
    for _ in range(n):
        if existing and draw(st.booleans()):
            side, price = draw(st.sampled_from(existing))
            price = price + draw(st.sampled_from([0.0, 0.0, 1e-13, -1e-13]))
            c = {"side": side, "price": price, "size": draw(valid_size)}
        else:
            c = draw(valid_change())
        extra = draw(st.integers(0, 19))
        if extra == 0:
            c["extra"] = None
        elif extra == 1:
            c = dict(reversed(list(c.items())))
        changes.append(c)
    defect = draw(st.integers(0, 9))
    if defect < 2:
        return draw(corrupt_changes(changes))
    if defect == 2:
        return tuple(changes)
    return changes


@st.composite
def snapshot_side(draw, is_bid: bool, max_levels: int, center: float | None):
    """A valid snapshot side (sorted best first, unique keys, maybe zero sizes), as lists or
    tuples. With ``center`` (a price) the side stays on its side of it (an uncrossed book)."""
    prices = draw(st.lists(valid_price, max_size=min(max_levels, 25), unique_by=price_key))
    if center is not None:
        c = round(center * 1e9)
        prices = [p for p in prices if (price_key(p) < c if is_bid else price_key(p) > c)]
    sizes = draw(st.lists(weighted((8, valid_size), (1, st.just(0.0)), (1, st.just(0))),
                          min_size=len(prices), max_size=len(prices)))
    by_key = {price_key(p): (p, size) for p, size in zip(prices, sizes)}
    pairs = [by_key[k] for k in sorted(by_key, reverse=is_bid)]
    form = draw(st.integers(0, 3))
    return [list(p) if form else tuple(p) for p in pairs]


@st.composite
def corrupt_snapshot(draw, bids: list, asks: list, max_levels: int):
    """Inject one defect into one side of a snapshot."""
    sides = [list(bids), list(asks)]
    which = draw(st.integers(0, 1))
    side = sides[which]
    kind = draw(st.integers(0, 8))
    if kind == 0 or (kind <= 5 and not side):
        sides[which] = draw(st.sampled_from([None, {}, "[]", 0, range(1)]))
    elif kind == 1:
        i = draw(st.integers(0, len(side) - 1))
        side[i] = [draw(bad_price), side[i][1]]
    elif kind == 2:
        i = draw(st.integers(0, len(side) - 1))
        side[i] = (side[i][0], draw(bad_size))
    elif kind == 3:
        i = draw(st.integers(0, len(side) - 1))
        side[i] = draw(st.sampled_from([[side[i][0]], [side[i][0], 1.0, 1.0], {"price": 0.5},
                                        side[i][0], None, "0.5,1"]))
    elif kind == 4:                         # a repeated price (same key, maybe another double)
        i = draw(st.integers(0, len(side) - 1))
        price = side[i][0] + draw(st.sampled_from([0.0, 1e-13]))
        side.insert(i + draw(st.integers(0, 1)), [price, draw(valid_size)])
    elif kind == 5:                         # out of order
        sides[which] = draw(st.permutations(side))
    elif max_levels > 100:                  # too big to overflow cheaply: a non-list instead
        sides[which] = draw(st.sampled_from([None, {}, "[]", 0, range(1)]))
    else:                                   # more than max_levels levels
        count = max_levels + draw(st.integers(1, 2))
        start = draw(st.integers(1, 50))
        grid = sorted((k / 10_000 for k in range(start, start + count)), reverse=(which == 0))
        size = 0.0 if kind == 8 else draw(valid_size)   # zero-size levels count too
        sides[which] = [[p, size] for p in grid]
    return sides


valid_seq_values = st.integers(INT64_MIN, INT64_MAX)
bad_seq = st.sampled_from([True, False, 1.0, "5", None, b"5", 2**63, -(2**63) - 1, 2**64, 10**30,
                           float("nan"), [1]])


# ------------------------------------------------------------------------------------------------
# The state machine
# ------------------------------------------------------------------------------------------------

class BookMachine(RuleBasedStateMachine):

    @initialize(max_levels=weighted((2, st.just(10_000)), (3, st.integers(1, 8)), (1, st.integers(9, 40))),
                parsec_id=st.sampled_from(["p1", "", "é-market"]),
                outcome_name=st.sampled_from(["yes", "no"]))
    def init_books(self, max_levels, parsec_id, outcome_name):
        self.fast = FastBook(parsec_id, outcome_name, max_levels=max_levels)
        self.ref = RefBook(parsec_id, outcome_name, max_levels=max_levels)
        self.max_levels = max_levels
        self.seen_prices: list[float] = [0.5]

    # -- seq helpers ------------------------------------------------------------------------
    def draw_seq(self, data):
        last = self.ref.seq
        base = 0 if last is None else last
        kind = data.draw(st.integers(0, 99), label="seq kind")
        if kind < 55:
            seq = base + 1                                     # the next one
        elif kind < 65:
            seq = base                                         # duplicate
        elif kind < 72:
            seq = base - data.draw(st.integers(1, 5))          # stale
        elif kind < 80:
            seq = base + data.draw(st.integers(2, 4))          # gap
        elif kind < 85:
            seq = data.draw(st.sampled_from([INT64_MAX, INT64_MIN, 0, -1]))
        elif kind < 90:
            return data.draw(bad_seq, label="bad seq")
        else:
            seq = data.draw(valid_seq_values)
        if not INT64_MIN <= seq <= INT64_MAX:
            seq = base
        return seq if INT64_MIN <= seq <= INT64_MAX else 0

    def remember(self, price):
        if isinstance(price, float) and len(self.seen_prices) < 64:
            self.seen_prices.append(price)

    # -- writes -----------------------------------------------------------------------------
    @rule(data=st.data())
    def snapshot(self, data):
        kind = data.draw(st.integers(0, 9), label="snapshot kind")
        center = None if kind >= 7 else data.draw(grid_price, label="center")  # >= 7: may cross
        bids = data.draw(snapshot_side(True, self.max_levels, center), label="bids")
        asks = data.draw(snapshot_side(False, self.max_levels, center), label="asks")
        if data.draw(st.integers(0, 4)) == 0:
            bids, asks = data.draw(corrupt_snapshot(bids, asks, self.max_levels), label="corrupted")
        if data.draw(st.integers(0, 9)) == 0 and isinstance(bids, list) and isinstance(asks, list):
            bids, asks = tuple(bids), tuple(asks)
        seq_kind = data.draw(st.integers(0, 19))
        if seq_kind == 0:
            seq = data.draw(bad_seq, label="bad seq")
        elif seq_kind < 4:
            seq = data.draw(valid_seq_values, label="seq")
        else:  # near the last seq, lower ones included (a snapshot's seq is the baseline anyway)
            last = self.ref.seq or 0
            seq = max(INT64_MIN, min(INT64_MAX, last + data.draw(st.integers(-3, 10), label="dseq")))
        for side in (bids, asks):
            if isinstance(side, (list, tuple)):
                for level in side:
                    if isinstance(level, (list, tuple)) and level:
                        self.remember(level[0])
        same(self.fast.apply_snapshot, self.ref.apply_snapshot, bids, asks, seq)

    @rule(data=st.data())
    def delta(self, data):
        existing = [("bid", p) for p, _ in self.ref.bids()] + [("ask", p) for p, _ in self.ref.asks()]
        changes = data.draw(changes_arg(existing), label="changes")
        seq = self.draw_seq(data)
        for c in changes if isinstance(changes, (list, tuple)) else ():
            if isinstance(c, dict):
                self.remember(c.get("price"))
        same(self.fast.apply_delta, self.ref.apply_delta, changes, seq)

    @rule(data=st.data())
    def deltas_in_a_row(self, data):
        """Several consecutive deltas (what a live stream mostly is)."""
        existing = [("bid", p) for p, _ in self.ref.bids()] + [("ask", p) for p, _ in self.ref.asks()]
        for _ in range(data.draw(st.integers(1, 5))):
            changes = data.draw(changes_arg(existing), label="changes")
            seq = min((self.ref.seq or 0) + 1, INT64_MAX)
            same(self.fast.apply_delta, self.ref.apply_delta, changes, seq)

    @rule(side=any_side, price=any_price, size=any_size)
    def set_level(self, side, price, size):
        self.remember(price)
        same(self.fast.set_level, self.ref.set_level, side, price, size)

    @rule(really=st.integers(0, 3))
    def invalidate(self, really):
        if really == 0:  # rarely, or the books would seldom be valid
            same(self.fast.invalidate, self.ref.invalidate)

    # -- reads with arguments ---------------------------------------------------------------
    @rule(data=st.data())
    def sizes_at(self, data):
        price = data.draw(weighted((6, st.sampled_from(self.seen_prices)), (3, valid_price),
                                   (1, bad_price)))
        before = self.ref.is_valid, self.ref.stats
        same(self.fast.bid_size, self.ref.bid_size, price)
        same(self.fast.ask_size, self.ref.ask_size, price)
        assert (self.ref.is_valid, self.ref.stats) == before

    @rule(side=weighted((10, valid_side), (1, bad_side)))
    def level_count(self, side):
        same(self.fast.level_count, self.ref.level_count, side)

    @rule(n=st.one_of(st.none(), st.integers(-3, 12), st.sampled_from([10**30, -(10**30), True, 1.0, "2"])))
    def levels_n(self, n):
        same(self.fast.bids, self.ref.bids, n)
        same(self.fast.asks, self.ref.asks, n)
        same(self.fast.bids_array, self.ref.bids_array, n)
        same(self.fast.asks_array, self.ref.asks_array, n)

    @rule(length=st.integers(0, 13), kind=st.sampled_from(["array", "numpy", "numpy2d"]))
    def into(self, length, kind):
        for fast_fn, ref_fn in ((self.fast.bids_into, self.ref.bids_into),
                                (self.fast.asks_into, self.ref.asks_into)):
            if kind == "array":
                a, b = array.array("d", [-7.0] * length), array.array("d", [-7.0] * length)
            elif kind == "numpy":
                a, b = np.full(length, -7.0), np.full(length, -7.0)
            else:
                a, b = np.full((length, 2), -7.0), np.full((length, 2), -7.0)
            got, want = outcome(fast_fn, a), outcome(ref_fn, b)
            assert got == want
            assert canon(a.tolist()) == canon(b.tolist())

    # -- state ------------------------------------------------------------------------------
    @invariant()
    def same_state(self):
        f, r = self.fast, self.ref
        for name in ("parsec_id", "outcome", "max_levels", "seq", "is_valid", "best_bid", "best_ask",
                     "best_bid_price", "best_bid_size", "best_ask_price", "best_ask_size", "mid",
                     "spread", "crossed", "stats"):
            assert canon(getattr(f, name)) == canon(getattr(r, name)), name
        assert canon(f.bids()) == canon(r.bids())
        assert canon(f.asks()) == canon(r.asks())
        assert canon(f.to_dict()) == canon(r.to_dict())
        for side in ("bid", "ask"):
            assert f.level_count(side) == r.level_count(side)
        for n in (0, 1, 3):
            assert canon(f.bids(n)) == canon(r.bids(n))
            assert canon(f.asks(n)) == canon(r.asks(n))
        for price in self.seen_prices[-6:]:
            same(f.bid_size, r.bid_size, price)
            same(f.ask_size, r.ask_size, price)

    @invariant()
    def reference_is_sane(self):
        """Structural rules the reference must keep (guards against a bug shared by both)."""
        r = self.ref
        bids, asks = r.bids(), r.asks()
        assert len(bids) <= self.max_levels and len(asks) <= self.max_levels
        assert all(s > 0 and math.isfinite(s) for _, s in bids + asks)
        assert all(0 < p <= 1e9 for p, _ in bids + asks)
        assert all(a[0] > b[0] for a, b in zip(bids, bids[1:]))
        assert all(a[0] < b[0] for a, b in zip(asks, asks[1:]))
        assert all(p == round(p * 1e9) / 1e9 for p, _ in bids + asks)
        if not bids or not asks:
            assert r.mid is None and r.spread is None and not r.crossed
        else:
            assert r.crossed == (bids[0][0] >= asks[0][0])
        if r.seq is None:
            assert not r.is_valid
        event(f"levels {min(len(bids) + len(asks), 20) // 5 * 5}+, crossed={r.crossed}, valid={r.is_valid}")


# A failure can take minutes to shrink: let it finish instead of the suite's 120 s timeout.
TestBookEquivalence = pytest.mark.timeout(1800)(BookMachine.TestCase)


def test_machine_is_sensitive():
    """The comparison helpers notice a one-ulp price difference and a different message."""
    assert canon(0.30000000000000004) != canon(0.3)
    assert canon(float("nan")) == canon(float("nan"))
    assert canon(0.0) != canon(-0.0)
    assert canon(1) != canon(1.0)
    assert outcome(lambda: (_ for _ in ()).throw(BookDataError("a"))) != outcome(
        lambda: (_ for _ in ()).throw(BookDataError("b")))
