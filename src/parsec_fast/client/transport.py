"""What a :class:`~parsec_fast.Client` needs from the thing that carries its frames.

The default transport is :class:`~parsec_fast.client.session.Session` (the Parsec WebSocket:
``ws://``, ``wss://``, or an ``http(s)://`` REST base). Another transport (e.g. the NATS relay
consumer, ``nats://``) implements :class:`Transport`; ``Client(url, ...)`` picks the transport by
the URL's scheme (:data:`TRANSPORTS`), or takes one given as ``transport=``, so everything above
it (books, ledger, events, compat) is the same whatever carries the frames.

A transport feeds every received text message to the client's FeedHandler (``feed_ptr`` from a
compiled listener, or ``feed(bytes)`` + ``flush()`` per batch), reports through
:class:`~parsec_fast.client.session.SessionHandlers`, and sends the control messages the ledger
plans (``subscribe`` / ``unsubscribe`` / ``resync`` frames, JSON bytes) wherever they must go.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol
from urllib.parse import urlsplit

from .._feed import FeedHandler
from .._histogram import LatencyHistogram
from ..errors import AuthenticationError, ParsecConnectionError
from .config import ClientConfig
from .session import FrameTap, SessionHandlers

__all__ = ["Transport", "TransportFactory", "TRANSPORTS", "transport_for"]


class Transport(Protocol):
    """The transport side of a client (see the module docstring)."""

    url: str
    #: Authenticated connections so far.
    connects: int
    #: Connections dropped because a message exceeded ``max_message_size``.
    oversized_messages: int
    #: The error that ended the last connection or attempt (None before any).
    last_error: ParsecConnectionError | None

    @property
    def connected(self) -> bool:
        """True while an authenticated connection is open."""
    @property
    def frames(self) -> int:
        """Text messages received on the current connection."""
    #: Read-to-apply latencies (ns) over the client's whole run (sampled; empty for a
    #: transport that cannot tell when a frame's bytes were read).
    latency_histogram: LatencyHistogram

    def set_tap(self, tap: FrameTap | None) -> None:
        """See every received text message (recording)."""
    def auth_ok(self, customer_id: str) -> None:
        """The server accepted the credential."""
    def auth_refused(self, error: AuthenticationError) -> None:
        """The server refused the credential."""
    def send(self, frame: bytes) -> bool:
        """Send one control frame; False when not connected."""
    def check_alive(self, now_ns: int) -> None:
        """Drop a silent connection."""
    def close(self) -> None:
        """Close and stop reconnecting."""
    async def run(self) -> None:
        """Connect, serve, reconnect until closed; raise the fatal error."""


#: ``factory(url, auth_frame, config, feed, handlers)`` -> a Transport.
TransportFactory = Callable[[str, bytes, ClientConfig, FeedHandler, SessionHandlers], Transport]

#: The transport of each URL scheme, as ``"module:attribute"``, imported on first use (a
#: transport may depend on packages the WebSocket client does not need). Another transport is
#: given to the client directly: ``Client(url, ..., transport=factory)``.
TRANSPORTS: Mapping[str, str] = MappingProxyType({
    "ws": "parsec_fast.client.session:Session",
    "wss": "parsec_fast.client.session:Session",
    "nats": "parsec_fast.relay.consumer:NatsTransport",
})


def transport_for(url: str) -> TransportFactory | None:
    """The transport of ``url``'s scheme, or None for a scheme no transport serves (the
    client then reads the URL as a REST base: ``https://X`` -> ``wss://X/ws``)."""
    target = TRANSPORTS.get(urlsplit(url).scheme.lower())
    if target is None:
        return None
    module, _, name = target.partition(":")
    factory: TransportFactory = getattr(importlib.import_module(module), name)
    return factory
