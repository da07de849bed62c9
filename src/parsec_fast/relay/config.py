"""Every option of the relay, in one validated object (the upstream client keeps its own
:class:`~parsec_fast.client.config.ClientConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from .wire import DEFAULT_PREFIX, validate_prefix

__all__ = ["RelayConfig"]


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The relay's behaviour; times in seconds. Invalid values raise ``ValueError``."""

    #: Subject prefix: one relay (one Parsec account) per prefix on a NATS server.
    prefix: str = DEFAULT_PREFIX
    #: Heartbeats on ``{prefix}._relay.heartbeat``. A consumer declares the relay dead after
    #: ``dead_after x heartbeat_interval`` of *its* ClientConfig without any message, so keep
    #: this at or below the consumers' ``heartbeat_interval``.
    heartbeat_interval: float = 1.0
    #: A consumer's wants stop counting this long after its last message (it renews every
    #: ``lease_ttl / 3``).
    lease_ttl: float = 10.0
    #: A book nobody wants any more is unsubscribed upstream after this (a consumer that
    #: restarts, or unsubscribes then subscribes, costs no Parsec control message).
    unsubscribe_linger: float = 5.0
    #: A market the upstream refused is refused to the next consumer at once for this long.
    refusal_ttl: float = 30.0
    #: Control requests one consumer may send per second (its subscribes, unsubscribes and
    #: resyncs cost no Parsec control message; the relay still bounds them). Past it: 3001.
    consumer_control_rate: int = 50
    #: None: any credential is accepted (the NATS server's own auth is the boundary); else the
    #: key (or terminal token) consumers must send.
    consumer_key: str | None = None
    #: Largest relay message body; a read batch's frames of one book above it are split.
    max_batch_bytes: int = 512 * 1024
    #: Most snapshot requests waiting for a valid book, over all consumers.
    max_waiting: int = 100_000

    def __post_init__(self) -> None:
        validate_prefix(self.prefix)
        for name in ("heartbeat_interval", "lease_ttl", "refusal_ttl"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not self.unsubscribe_linger >= 0:
            raise ValueError(f"unsubscribe_linger must be >= 0, got {self.unsubscribe_linger!r}")
        for name in ("consumer_control_rate", "max_batch_bytes", "max_waiting"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.max_batch_bytes < 4096:
            raise ValueError(f"max_batch_bytes must be >= 4096, got {self.max_batch_bytes!r}")
