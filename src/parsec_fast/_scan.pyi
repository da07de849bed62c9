"""Type stub of the compiled frame scanner (src/_core/parsec_fast/_scan.pyx).

The scanner reads a book frame (``orderbook_snapshot`` / ``orderbook_delta``) in place, without
creating Python objects, bit-identical to ``orjson.loads`` on everything it accepts; anything it
does not fully understand is reported as ``fallback`` and decoded by orjson instead. The hot path
uses its C API (``_scan.pxd``); the Python methods below exist for tests, fuzzing and benchmarks.
"""
from typing import Any, Final

#: The result codes of :meth:`FrameScanner.scan_bytes`, by name: ``fallback`` (let orjson
#: decide), ``delta``, ``snapshot``, ``other`` (a well-formed frame of another type).
SCAN_CODES: Final[dict[str, int]]

class FrameScanner:
    """A reusable scanner with growable scratch arrays (grown, never shrunk). Not thread-safe:
    one per connection."""

    def __init__(self) -> None: ...
    def scan_bytes(self, data: bytes) -> int:
        """Scan ``data``; returns its ``SCAN_CODES`` value."""
    def scan_exact(self, data: bytes) -> int:
        """Scan a malloc'd copy of exactly ``len(data)`` bytes, so that under AddressSanitizer
        a read past the payload hits the redzone (fuzzing). Returns the ``SCAN_CODES`` value."""
    def bench_loop(self, data: bytes, iterations: int) -> int:
        """Scan ``data`` ``iterations`` times in a C loop without the GIL; total nanoseconds."""
    def to_python(self, data: bytes | bytearray | memoryview) -> dict[str, Any]:
        """What the scanner read, as a dict (tests only): always ``kind`` (``fallback``,
        ``other``, ``delta`` or ``snapshot``); for book frames also ``type``, ``parsec_id``,
        ``outcome``, ``server_seq``, the states and timestamps, and ``changes`` (delta: a list
        of ``(side, price, size)``) or ``bids`` / ``asks`` (snapshot: ``(price, size)`` lists).
        Allocates; not the hot path."""

def scan_to_python(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """:meth:`FrameScanner.to_python` on a module-level scanner (tests only)."""

def parse_number(data: bytes | bytearray | memoryview) -> float | None:
    """The double the scanner reads for one JSON number token (tests only); None when it would
    fall back (invalid token, int64 overflow, infinity, too long) or ``data`` has anything after
    the number."""
