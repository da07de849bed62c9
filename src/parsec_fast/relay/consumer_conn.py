"""The state of one relay consumer connection: its NATS links, the relay's epoch, the book
subjects it reads and their holds (see :mod:`parsec_fast.relay.consumer`)."""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._natsfeed import NatsFeedReader
from ..errors import ParsecConnectionError
from ..rules import BookKey
from ..selectors import MarketSelector
from . import wire
from .link import NatsLink

__all__ = ["MAX_HELD", "BookStream", "ConsumerConnection", "split_url"]

#: Stream messages held per book while its snapshot is awaited (oldest dropped past it: the
#: replay then sees the hole and resyncs again).
MAX_HELD = 4096


@dataclass(slots=True)
class BookStream:
    """One subscribed book subject on the current connection: its sid on the data link, and
    while its snapshot is awaited (``holding``) the stream messages held back."""

    key: BookKey
    parsec_id: str
    outcome: str
    subject: bytes
    sid: int
    holding: bool = True
    next_rseq: int = 0
    held: deque[wire.Batch] = field(default_factory=lambda: deque(maxlen=MAX_HELD))


class ConsumerConnection:
    """One connection attempt: its links, relay epoch, books and why it ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.link: NatsLink | None = None
        self.nc: Any = None
        self.reader: NatsFeedReader | None = None
        self.epoch: int | None = None
        self.lease_ttl: float = 10.0
        self.auth: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Event = asyncio.Event()
        self.error: ParsecConnectionError | None = None
        self.ended_by_us: bool = False
        self.authenticated = False
        self.goodbye: asyncio.Task[None] | None = None
        #: The loop's busy poller while this connection holds it (``busy_poll``).
        self.busy: Any = None
        self.hb_sid = -1
        self.inbox_sid = -1
        self.books: dict[BookKey, BookStream] = {}
        self.by_sid: dict[int, BookStream] = {}
        self.by_subject: dict[bytes, BookStream] = {}
        self.wants: dict[BookKey, MarketSelector] = {}
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.python_frames = 0

    def drop(self, error: ParsecConnectionError | None) -> None:
        """End the connection; ``error`` is why (None: the client is closing)."""
        if not self.ended_by_us and not self.closed.is_set():
            self.ended_by_us = True
            self.error = error
        self.closed.set()


def split_url(url: str) -> tuple[str, str]:
    """(NATS server URL without path, subject prefix from the path; default ``parsec``)."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/") or wire.DEFAULT_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), wire.validate_prefix(prefix)
