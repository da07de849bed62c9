"""Type stub of the relay's compiled tap (src/_core/parsec_fast/_relayscan.pyx).

``RelayTap`` is the relay's upstream session tap: it routes every frame to its book's
``BookOut`` (by the frame scanner's raw ``parsec_id`` / ``outcome``) and queues it there, in
upstream order; ``BookOut.encode`` turns the queued frames into STREAM messages
(``parsec_fast.relay.wire``).
"""
from typing import Callable, Literal

def key_of(parsec_id: str, outcome: str) -> bytes:
    """``parsec_id + NUL + outcome`` with the outcome's ASCII letters lowercased."""

class BookOut:
    """One relayed book: subject, message counter, frames waiting."""

    @property
    def parsec_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def subject(self) -> bytes: ...
    @property
    def key(self) -> bytes: ...
    @property
    def rseq(self) -> int:
        """Messages published (or meant to be) on the subject so far."""
    @property
    def frames_out(self) -> int: ...
    @property
    def messages_out(self) -> int: ...
    @property
    def pending(self) -> int:
        """Frames waiting to be published."""
    #: Raw bytes of the last upstream snapshot of this book.
    last_snapshot: bytes | None
    def __init__(self, parsec_id: str, outcome: str, subject: bytes) -> None: ...
    def encode(self, epoch: int, max_body: int) -> list[bytes]:
        """The waiting frames as STREAM messages of at most ``max_body`` bytes (a single bigger
        frame goes alone), each with the next rseq."""
    def skip(self) -> None:
        """Take one rseq for a message that could not be published."""

class RelayTap:
    """``tap(payload, mono_ns, last_in_buffer)`` for the relay's upstream session."""

    @property
    def frames(self) -> int: ...
    @property
    def routed(self) -> int: ...
    @property
    def unrouted(self) -> int: ...
    @property
    def others(self) -> int:
        """Frames the scanner did not route (handed to ``route_other``)."""
    def __init__(self, route_other: Callable[[bytes], BookOut | None],
                 schedule: Callable[[], None],
                 flush_now: Callable[[], None] | None = None) -> None: ...
    def __call__(self, payload: bytes, mono_ns: int, last_in_buffer: bool) -> None: ...
    def inject(self, out: BookOut, frame: bytes) -> None:
        """Queue a frame of the relay's own after the waiting upstream frames."""
    def publish_batch(self, epoch: int, max_body: int, max_payload: int
                      ) -> tuple[bytes, int, int]:
        """Every dirty book's frames as NATS PUB commands in one buffer: (data, messages,
        dropped over max_payload)."""
    def take_dirty(self) -> list[BookOut]:
        """The books with waiting frames, once each; the next frame schedules again."""
    def add_book(self, parsec_id: str, outcome: str, subject: bytes) -> BookOut: ...
    def remove_book(self, parsec_id: str, outcome: str) -> BookOut | None: ...
    def book(self, parsec_id: str, outcome: str) -> BookOut | None: ...
    def books(self) -> list[BookOut]: ...
    def classify(self, payload: bytes
                 ) -> tuple[Literal["snapshot", "delta"], str, str, int] | None:
        """``(kind, parsec_id, outcome, server_seq)`` of a scanned book frame, else None."""
