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
    def messages(self) -> int: ...
    @property
    def fast_messages(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def last_receive_ns(self) -> int:
        """monotonic_ns() of the last read (dead-connection detection)."""
    def __init__(self, feed: FeedHandler | None = None, max_frame_size: int = ...,
                 sample_every: int = 16) -> None: ...
    def set_fast(self, sid: int, epoch: int, next_rseq: int) -> None:
        """Feed ``sid``'s STREAM batches of relay ``epoch`` in C while their numbers follow on
        from ``next_rseq``."""
    def set_slow(self, sid: int) -> None:
        """Hand every message of ``sid`` back."""
    def state(self, sid: int) -> tuple[bool, int, int]: ...
    def reset(self) -> None: ...
    def receive(self, data: bytes) -> list[tuple[object, ...]] | None:
        """Parse a read; ``(OP_MSG, sid, payload)`` and ``(OP_*, line | None)`` items, or None."""
    def count_frames(self, n: int) -> None: ...
    def latency_samples(self) -> list[int]: ...
