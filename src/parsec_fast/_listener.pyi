"""Type stub of the compiled picows listener (src/_core/parsec_fast/_listener.pyx).

The session creates one per connection; it feeds every text frame to the FeedHandler in place,
caps reassembled messages at ``max_message_size`` and reports transport events to ``session``.
"""
from typing import Callable, Protocol

from picows import WSListener, WSTransport

from ._feed import FeedHandler
from ._histogram import LatencyHistogram

class ListenerSession(Protocol):
    """What the listener calls on its session (public names only)."""

    def transport_connected(self, transport: WSTransport) -> None: ...
    def transport_disconnected(self) -> None: ...
    def transport_problem(self, message: str) -> None: ...
    def message_too_large(self, size: int) -> None: ...

class FeedListener(WSListener):
    """``FeedListener(feed, session, sample_every=16, max_message_size=8 MiB, tap=None,
    histogram=None)``: ``tap(payload, mono_ns, last_in_buffer)`` sees every complete text
    message (recording); every ``sample_every``-th frame's read-to-apply latency goes into
    ``histogram`` (a new one when None)."""

    def __init__(self, feed: FeedHandler, session: ListenerSession, sample_every: int = 16,
                 max_message_size: int = 8 * 1024 * 1024,
                 tap: Callable[[bytes, int, bool], None] | None = None,
                 histogram: LatencyHistogram | None = None) -> None: ...
    @property
    def last_frame_ns(self) -> int:
        """time.monotonic_ns() at the end of the last read batch."""
    @property
    def frames(self) -> int:
        """Complete text messages received."""
    @property
    def latency_histogram(self) -> LatencyHistogram:
        """Sampled read-to-apply latencies (ns): from the read batch's start to the end of the
        frame's apply."""
