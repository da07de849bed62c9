"""Type stub of the relay consumer's compiled receive path (src/_core/parsec_fast/_natsfeed.pyx).

``NatsFeedReader.receive(data)`` parses the NATS server-to-client protocol; the STREAM batches
of *fast* subscriptions are fed to the FeedHandler frame by frame in C, everything else is
returned as ``(op, ...)`` items, in order.
"""
from typing import Callable, Final

from ._feed import FeedHandler

OP_MSG: Final[int]
OP_PING: Final[int]
OP_PONG: Final[int]
OP_INFO: Final[int]
OP_ERR: Final[int]
OP_OK: Final[int]

class NatsProtocolError(ValueError):
    """The server sent something that is not the NATS protocol."""

class NatsFeedReader:
    """See the module docstring."""

    #: ``tap(frame, mono_ns, last)`` for every frame fed, or None.
    tap: Callable[[bytes, int, bool], None] | None
    @property
    def messages(self) -> int:
        """MSG operations parsed."""
    @property
    def fast_messages(self) -> int:
        """Messages whose frames were fed to the FeedHandler in C."""
    @property
    def frames(self) -> int:
        """Frames fed: in C, plus those counted with ``count_frames``."""
    @property
    def bytes_in(self) -> int:
        """Bytes received."""
    @property
    def last_receive_ns(self) -> int:
        """monotonic_ns() of the last read (dead-connection detection)."""
    def __init__(self, feed: FeedHandler | None = None, max_frame_size: int = 8 * 1024 * 1024,
                 sample_every: int = 16) -> None: ...
    def set_fast(self, sid: int, epoch: int, next_rseq: int) -> None:
        """Feed ``sid``'s STREAM batches of relay ``epoch`` in C while their numbers follow on
        from ``next_rseq``."""
    def set_slow(self, sid: int) -> None:
        """Hand every message of ``sid`` back."""
    def state(self, sid: int) -> tuple[bool, int, int]:
        """``(fast, epoch, next_rseq)`` of subscription ``sid`` (for tests; ValueError for a
        negative ``sid``)."""
    def reset(self) -> None:
        """Forget buffered input and every subscription's fast state (for a new connection)."""
    def receive(self, data: bytes) -> list[tuple[object, ...]] | None:
        """Parse a read; ``(OP_MSG, sid, payload)`` and ``(OP_*, line | None)`` items, or None."""
    def count_frames(self, n: int) -> None:
        """Add ``n`` to ``frames``: frames the caller fed to the FeedHandler itself (the slow
        path)."""
    def latency_samples(self) -> list[int]:
        """Sampled receive-to-applied latencies (ns) of fast frames, oldest first: the last
        4096 samples, one every ``sample_every`` frames (a new list)."""
