"""Every option of :class:`parsec_fast.Client`, in one typed, validated, documented object.

``Client(url, api_key, config=ClientConfig(heartbeat_interval=1.0))`` and
``Client(url, api_key, heartbeat_interval=1.0)`` are the same: the keyword form builds the config
(:class:`ClientOptions` types those keywords for a type checker). Times are in seconds.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, fields
from typing import Literal, TypedDict

from ..codes import AUTH_TIMEOUT_S, CONTROL_MESSAGES_PER_SECOND

__all__ = ["ClientConfig", "ClientOptions", "Parser", "ActivitySeq"]

Parser = Literal["native", "orjson"]
ActivitySeq = Literal["shared", "separate"]


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The client's behaviour; every field has a safe default (PROTOCOL.md's values where it
    names one). Invalid values raise ``ValueError`` naming the field."""

    # -- parsing ----------------------------------------------------------------------------------
    #: ``"native"``: the zero-allocation scanner (orjson for anything it does not fully
    #: understand); ``"orjson"``: orjson + the object path for every frame (same results, ~4x
    #: slower; rules the scanner out in one line).
    parser: Parser = "native"
    #: ``"shared"``: activity frames consume the book's seq counter, as the public docs' example
    #: numbers suggest; ``"separate"``: they have their own (PROTOCOL.md §3, an open question).
    activity_seq: ActivitySeq = "shared"
    #: Most levels either side of one book may hold (a hostile snapshot is refused past it).
    max_levels: int = 10_000
    #: Largest message accepted, reassembled from fragments or not (bytes). Past it the client
    #: drops the connection (``MessageTooLargeError``) and reconnects, instead of buffering a
    #: peer's endless message. A snapshot of ``max_levels`` levels a side is ~0.6 MB.
    max_message_size: int = 8 * 1024 * 1024

    # -- connection -------------------------------------------------------------------------------
    #: Interval of the server's heartbeats; with ``dead_after`` it sets when a silent
    #: connection is declared dead (``dead_after * heartbeat_interval`` without any frame).
    heartbeat_interval: float = 5.0
    dead_after: float = 3.0
    #: Reconnect (with backoff) after a connection that was open ends.
    reconnect: bool = True
    #: Retry the *first* connection too (until ``open_timeout``). False: ``start()`` raises the
    #: first attempt's typed error at once (DNS, refused, TLS, handshake, auth timeout).
    retry_first_connect: bool = False
    #: Exponential backoff: ``backoff_initial`` doubling to ``backoff_max``, ``±jitter``.
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    jitter: float = 0.2
    #: No ``auth_ok`` within this after the WebSocket opened: the attempt fails
    #: (``AuthTimeoutError``). The server closes after 15 s.
    auth_timeout: float = AUTH_TIMEOUT_S
    #: Bounds each phase of one attempt: TCP connect, TLS handshake, WebSocket handshake.
    connect_timeout: float = 10.0
    #: Bounds ``start()`` / ``async with`` as a whole (``None``: no bound).
    open_timeout: float | None = 60.0
    #: TLS context for ``wss://`` (default: the system trust store).
    ssl_context: ssl.SSLContext | None = None
    #: Create the event loop with uvloop in :func:`run` / :meth:`Client.run` (None: if installed).
    use_uvloop: bool | None = None
    #: Busy-poll the connection: while it is open the event loop never sleeps in the kernel,
    #: it polls the socket (running timers and other tasks) in a tight loop on one core, which
    #: takes the wake-up out of the latency (see :mod:`parsec_fast.client.busypoll`). It burns
    #: 100 % of a core the whole time: only for a process on a dedicated core (not on shared
    #: cores, laptops, or many processes per core).
    busy_poll: bool = False
    #: Seed of the backoff jitter (tests).
    seed: int | None = None

    # -- control messages (PROTOCOL.md §5) --------------------------------------------------------
    #: At most ``control_rate`` subscribe/unsubscribe/resync messages in any ``control_window``
    #: (+ ``control_margin`` for network jitter) seconds.
    control_rate: int = CONTROL_MESSAGES_PER_SECOND
    control_window: float = 1.0
    control_margin: float = 0.05
    #: More books than this waiting for a resync at once are re-subscribed with one
    #: ``unsubscribe`` + one ``subscribe`` instead of a ``resync`` each.
    coalesce_threshold: int = 2
    #: A subscribe or resync unanswered for this long is sent again.
    request_timeout: float = 10.0
    #: How often local staleness, dead connections and unanswered requests are checked.
    stale_check_interval: float = 0.25

    # -- events, metrics, recording ---------------------------------------------------------------
    #: Default bound of an ``events()`` stream (droppable events past it are dropped, counted).
    event_queue_size: int = 10_000
    #: Read-to-apply latency (``metrics.latency_*``) is sampled every N frames (1: every frame,
    #: at the cost of a clock read per frame).
    latency_sample_every: int = 16
    #: Record every received frame to this file (see :mod:`parsec_fast.recording`).
    record_path: str | None = None
    #: Seconds between fsyncs of the recording: how much of it an OS crash may lose (0: every
    #: frame; None: never, the OS writes it back). See :mod:`parsec_fast.recording.writer`.
    record_fsync_interval: float | None = 1.0

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "dead_after", "backoff_initial", "auth_timeout",
                     "connect_timeout", "stale_check_interval", "request_timeout",
                     "control_window"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.open_timeout is not None and not self.open_timeout > 0:
            raise ValueError(f"open_timeout must be > 0 or None, got {self.open_timeout!r}")
        if not self.backoff_max >= self.backoff_initial:
            raise ValueError(f"backoff_max must be >= backoff_initial, got {self.backoff_max!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter!r}")
        if not self.control_margin >= 0:
            raise ValueError(f"control_margin must be >= 0, got {self.control_margin!r}")
        for name in ("max_levels", "max_message_size", "control_rate", "event_queue_size",
                     "latency_sample_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.coalesce_threshold < 0:
            raise ValueError(f"coalesce_threshold must be >= 0, got {self.coalesce_threshold!r}")
        if self.parser not in ("native", "orjson"):
            raise ValueError(f"parser must be 'native' or 'orjson', got {self.parser!r}")
        if self.record_fsync_interval is not None and not self.record_fsync_interval >= 0:
            raise ValueError(f"record_fsync_interval must be >= 0 or None, "
                             f"got {self.record_fsync_interval!r}")
        if not isinstance(self.busy_poll, bool):
            raise ValueError(f"busy_poll must be True or False, got {self.busy_poll!r}")
        if self.activity_seq not in ("shared", "separate"):
            raise ValueError(f"activity_seq must be 'shared' or 'separate', "
                             f"got {self.activity_seq!r}")

    @property
    def dead_after_s(self) -> float:
        """Seconds without any frame after which the connection is declared dead."""
        return self.dead_after * self.heartbeat_interval

    @property
    def control_period(self) -> float:
        """``control_window + control_margin``: how long a spent control token stays spent."""
        return self.control_window + self.control_margin


class ClientOptions(TypedDict, total=False):
    """The keyword form of :class:`ClientConfig` (``Client(url, key, **options)``); the same
    names and types, checked against the dataclass by the test suite."""

    parser: Parser
    activity_seq: ActivitySeq
    max_levels: int
    max_message_size: int
    heartbeat_interval: float
    dead_after: float
    reconnect: bool
    retry_first_connect: bool
    backoff_initial: float
    backoff_max: float
    jitter: float
    auth_timeout: float
    connect_timeout: float
    open_timeout: float | None
    ssl_context: ssl.SSLContext | None
    use_uvloop: bool | None
    busy_poll: bool
    seed: int | None
    control_rate: int
    control_window: float
    control_margin: float
    coalesce_threshold: int
    request_timeout: float
    stale_check_interval: float
    event_queue_size: int
    latency_sample_every: int
    record_path: str | None
    record_fsync_interval: float | None


#: Field names of ClientConfig (the keyword form accepts exactly these).
CONFIG_FIELDS = frozenset(f.name for f in fields(ClientConfig))
