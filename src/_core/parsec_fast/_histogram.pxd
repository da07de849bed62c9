# C-level interface of the latency histogram, for the listener (and any other core module).
from libc.stdint cimport int64_t

cdef enum:
    # Log-linear buckets: values below HIST_SUB are exact; above, every power-of-two range
    # [2**k, 2**(k+1)) is split into HIST_HALF equal buckets, so a bucket spans at most
    # 1/HIST_HALF of its lower bound and its midpoint is within 1/HIST_SUB (0.8 %) of any value
    # in it.
    HIST_SUB_BITS = 7
    HIST_SUB = 128           # 1 << HIST_SUB_BITS
    HIST_HALF = 64           # HIST_SUB // 2
    # Largest exponent kept: values up to 2**(HIST_MAX_EXP + HIST_SUB_BITS) - 1 ns (~36.6 min);
    # larger ones count in the last bucket (max still exact).
    HIST_MAX_EXP = 34
    HIST_BUCKETS = 2304      # (HIST_MAX_EXP + 1) * HIST_HALF + HIST_HALF


cdef class LatencyHistogram:
    cdef int64_t _counts[HIST_BUCKETS]
    cdef int64_t _total
    cdef int64_t _min
    cdef int64_t _max
    cdef double _sum
    cpdef void record(self, int64_t value) noexcept
    cpdef void record_since(self, int64_t start_ns) noexcept
