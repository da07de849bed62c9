"""Type stub of the compiled latency histogram (src/_core/parsec_fast/_histogram.pyx).

Log-linear buckets (exact below 128; 64 per power of two above), fixed 18 KiB, values up to
~2**41 ns resolved: a percentile is within 1/128 (0.8 %) of the recorded value it stands for.
"""
from typing import ClassVar, Iterable

class LatencyHistogram:
    """Counts of non-negative integer values (ns) in log-linear buckets; mergeable."""

    #: Largest relative error of a reported percentile.
    RELATIVE_PRECISION: ClassVar[float]

    def __init__(self) -> None: ...
    def record(self, value: int) -> None:
        """Count one value (ns; negative counts as 0)."""
    def record_since(self, start_ns: int) -> None:
        """Count ``time.monotonic_ns() - start_ns`` (nothing when ``start_ns`` is 0)."""
    def merge(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts to this histogram."""
    def reset(self) -> None:
        """Forget every value."""
    def copy(self) -> LatencyHistogram:
        """An independent snapshot."""
    @property
    def count(self) -> int:
        """Values recorded."""
    @property
    def min(self) -> int | None:
        """Smallest value (exact); None when empty."""
    @property
    def max(self) -> int | None:
        """Largest value (exact); None when empty."""
    @property
    def mean(self) -> float | None:
        """Mean value; None when empty."""
    def __len__(self) -> int: ...
    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (nearest rank, 0 <= q <= 1) in ns; None when empty."""
    def percentiles(self, qs: Iterable[float]) -> list[float | None]:
        """``[percentile(q) for q in qs]`` (each one a scan of the buckets)."""
    def buckets(self) -> list[tuple[int, int, int]]:
        """Non-empty buckets as ``(low, high, count)``."""
