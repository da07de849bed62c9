"""The compiled LatencyHistogram (``parsec_fast._histogram``): log-linear buckets with a stated
relative precision (1/128), exact min/max, nearest-rank percentiles, merge/copy/reset, fixed
memory and no allocation per record."""
from __future__ import annotations

import math
import random
import sys
import time

import pytest

from parsec_fast._histogram import LatencyHistogram


def _nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_every_value_lands_in_a_bucket_within_the_stated_precision() -> None:
    rng = random.Random(3)
    values = list(range(0, 300)) + [rng.randrange(1, 2 ** 41) for _ in range(3000)] + \
        [2 ** k + d for k in range(7, 41) for d in (-1, 0, 1)]
    for v in values:
        h = LatencyHistogram()
        h.record(v)
        [(low, high, count)] = h.buckets()
        assert count == 1 and low <= v < high
        assert high - low <= max(1, low / 64), (v, low, high)     # width <= 1/64 of low
        h.record(0)           # one value either side: p50 is v's bucket value, not a clamp
        h.record(2 ** 45)
        p = h.percentile(0.5)
        assert p is not None and abs(p - v) <= v * LatencyHistogram.RELATIVE_PRECISION + 0.5
    assert LatencyHistogram.RELATIVE_PRECISION == 1 / 128


def test_percentiles_match_nearest_rank_within_precision() -> None:
    rng = random.Random(5)
    values = [int(rng.lognormvariate(10, 1.5)) for _ in range(20_000)] + [0, 1, 2]
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    assert h.count == len(h) == len(values)
    assert h.min == min(values) and h.max == max(values)
    assert h.mean == pytest.approx(sum(values) / len(values))
    for q in (0.001, 0.25, 0.5, 0.9, 0.99, 0.999):
        exact = _nearest_rank(values, q)
        got = h.percentile(q)
        assert got is not None
        assert abs(got - exact) <= exact / 128 + 0.5, (q, exact, got)
    assert h.percentile(0.0) == min(values) and h.percentile(1.0) == max(values)
    assert h.percentiles([0.5, 1.0]) == [h.percentile(0.5), float(max(values))]


def test_edges_empty_negative_huge_and_bad_quantiles() -> None:
    h = LatencyHistogram()
    assert h.count == 0 and h.percentile(0.5) is None and h.min is None and h.max is None
    assert h.mean is None and "empty" in repr(h)
    h.record(-5)           # a clock read out of order counts as 0
    h.record(2 ** 50)      # past the resolved range: the last bucket, max exact
    assert h.min == 0 and h.max == 2 ** 50
    assert h.percentile(1.0) == 2 ** 50
    assert h.buckets()[-1][0] < 2 ** 41 <= h.buckets()[-1][1]
    with pytest.raises(ValueError):
        h.percentile(1.5)
    with pytest.raises(ValueError):
        h.percentile(-0.1)
    h.record_since(0)      # 0 = unknown read time: nothing recorded
    assert h.count == 2


def test_merge_copy_reset() -> None:
    rng = random.Random(9)
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(5000):
        v = rng.randrange(10 ** 7)
        (a if i % 3 else b).record(v)
        both.record(v)
    snapshot = a.copy()
    a.merge(b)
    assert a.buckets() == both.buckets()
    assert (a.count, a.min, a.max) == (both.count, both.min, both.max)
    assert a.percentile(0.99) == both.percentile(0.99)
    assert snapshot.count == both.count - b.count          # the copy did not move
    a.merge(LatencyHistogram())                            # merging an empty one changes nothing
    assert a.count == both.count
    a.reset()
    assert a.count == 0 and a.buckets() == [] and a.max is None


def test_record_is_allocation_free_and_memory_fixed() -> None:
    h = LatencyHistogram()
    size = sys.getsizeof(h)
    record = h.record
    values = [random.Random(1).randrange(10 ** 9) for _ in range(1000)] * 10
    before = sys.getallocatedblocks()
    for v in values:
        record(v)
    assert sys.getallocatedblocks() - before < 16
    assert sys.getsizeof(h) == size and size < 20 * 1024


def test_record_since_measures_elapsed_time() -> None:
    h = LatencyHistogram()
    start = time.monotonic_ns()
    time.sleep(0.002)
    h.record_since(start)
    assert h.count == 1 and 2_000_000 <= h.max < 2_000_000_000
