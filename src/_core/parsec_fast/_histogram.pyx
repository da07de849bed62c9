# cython: language_level=3
"""A fixed-memory, log-linear latency histogram (HDR-style), mergeable.

Values are non-negative integers (nanoseconds here). Below 128 every value has its own bucket;
from 128 on, each power-of-two range ``[2**k, 2**(k+1))`` is split into 64 equal buckets. So a
bucket never spans more than 1/64 of its lower bound, and a percentile, reported as the
midpoint of its bucket, is within **1/128 (0.8 %)** of the recorded value it stands for
(exact below 128 ns). Values up to ``2**41 - 1`` ns (~36.6 minutes) are resolved; larger ones
are counted in the last bucket (``max`` stays exact); negative ones (a clock read out of order)
count as 0. 2,304 buckets of 8 bytes: 18 KiB per histogram, whatever the run's length.

``record`` is a handful of instructions (a count-leading-zeros, two shifts, an increment), no
allocation, so the compiled receive path can call it; ``merge`` adds another histogram's
counts (e.g. one per connection, or per process); percentiles walk the buckets (~2 µs).
"""
from cpython.time cimport monotonic_ns
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, memset

cimport cython

cdef extern from *:
    int __builtin_clzll(unsigned long long x) nogil

cdef int64_t _LIMIT = (<int64_t>1 << (HIST_MAX_EXP + HIST_SUB_BITS)) - 1


cdef inline Py_ssize_t bucket_of(int64_t value) noexcept nogil:
    cdef int e
    if value < HIST_SUB:
        return value if value > 0 else 0
    if value > _LIMIT:
        value = _LIMIT
    # e >= 1: value >> e lies in [HIST_HALF, HIST_SUB)
    e = (63 - __builtin_clzll(<unsigned long long>value)) - (HIST_SUB_BITS - 1)
    return e * HIST_HALF + (value >> e)


cdef inline int64_t bucket_low(Py_ssize_t i) noexcept nogil:
    cdef int e
    if i < HIST_SUB:
        return i
    e = <int>(i // HIST_HALF) - 1
    return (<int64_t>(i - e * HIST_HALF)) << e


cdef inline int64_t bucket_width(Py_ssize_t i) noexcept nogil:
    if i < HIST_SUB:
        return 1
    return (<int64_t>1) << (<int>(i // HIST_HALF) - 1)


@cython.final
cdef class LatencyHistogram:
    """``LatencyHistogram()``: counts of non-negative integer values (ns) in log-linear buckets
    (see the module docstring: relative precision 1/128, fixed 18 KiB)."""

    #: Largest relative error of a reported percentile (half a bucket's relative width).
    RELATIVE_PRECISION = 1.0 / HIST_SUB

    def __cinit__(self):
        self._min = -1

    cpdef void record(self, int64_t value) noexcept:
        """Count one value (ns)."""
        if value < 0:
            value = 0
        self._counts[bucket_of(value)] += 1
        self._total += 1
        self._sum += <double>value
        if value > self._max:
            self._max = value
        if self._min < 0 or value < self._min:
            self._min = value

    cpdef void record_since(self, int64_t start_ns) noexcept:
        """Count ``time.monotonic_ns() - start_ns`` (nothing when ``start_ns`` is 0: unknown)."""
        if start_ns > 0:
            self.record(monotonic_ns() - start_ns)

    def merge(self, LatencyHistogram other not None):
        """Add ``other``'s counts to this histogram."""
        cdef Py_ssize_t i
        if other._total == 0:
            return
        for i in range(HIST_BUCKETS):
            self._counts[i] += other._counts[i]
        self._total += other._total
        self._sum += other._sum
        if other._max > self._max:
            self._max = other._max
        if self._min < 0 or (other._min >= 0 and other._min < self._min):
            self._min = other._min

    def reset(self):
        """Forget every value."""
        memset(self._counts, 0, sizeof(self._counts))
        self._total = 0
        self._sum = 0.0
        self._max = 0
        self._min = -1

    def copy(self):
        """An independent snapshot of this histogram."""
        cdef LatencyHistogram out = LatencyHistogram.__new__(LatencyHistogram)
        memcpy(out._counts, self._counts, sizeof(self._counts))
        out._total = self._total
        out._sum = self._sum
        out._max = self._max
        out._min = self._min
        return out

    @property
    def count(self):
        """Values recorded."""
        return self._total

    @property
    def min(self):
        """Smallest value recorded (exact), None when empty."""
        return self._min if self._total else None

    @property
    def max(self):
        """Largest value recorded (exact), None when empty."""
        return self._max if self._total else None

    @property
    def mean(self):
        """Mean of the values recorded (exact up to float rounding), None when empty."""
        return self._sum / self._total if self._total else None

    def __len__(self):
        return self._total

    def percentile(self, double q):
        """The ``q`` quantile (0 <= q <= 1, nearest rank) in ns, within 1/128 of the recorded
        value it stands for (``q=0`` and ``q=1`` give the exact min and max); None when empty."""
        cdef int64_t rank, seen = 0, low, value
        cdef Py_ssize_t i
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q!r}")
        if self._total == 0:
            return None
        if q == 0.0:
            return float(self._min)
        if q == 1.0:
            return float(self._max)
        rank = <int64_t>(q * self._total)
        if rank < q * self._total:
            rank += 1
        if rank < 1:
            rank = 1
        for i in range(HIST_BUCKETS):
            seen += self._counts[i]
            if seen >= rank:
                low = bucket_low(i)
                value = low + (bucket_width(i) - 1) // 2
                if value > self._max:
                    value = self._max
                if value < self._min:
                    value = self._min
                return float(value)
        return float(self._max)  # pragma: no cover - the counts add up to _total

    def percentiles(self, qs):
        """``[percentile(q) for q in qs]``."""
        return [self.percentile(q) for q in qs]

    def buckets(self):
        """The non-empty buckets as ``(low, high, count)``: values ``low <= v < high``."""
        cdef Py_ssize_t i
        return [(bucket_low(i), bucket_low(i) + bucket_width(i), self._counts[i])
                for i in range(HIST_BUCKETS) if self._counts[i]]

    def __repr__(self):
        if not self._total:
            return "LatencyHistogram(empty)"
        return (f"LatencyHistogram(count={self._total}, p50={self.percentile(0.5):.0f} ns, "
                f"p99={self.percentile(0.99):.0f} ns, max={self._max} ns)")
