"""The NATS relay: one engine process holds the Parsec connection and the compiled books; any
number of consumers, on any host, hold the same books from NATS.

::

    # the engine (or: parsec-fast relay wss://api.parsecapi.com/ws --nats nats://hub:4222)
    async with Relay("wss://api.parsecapi.com/ws", api_key="...", nats_url="nats://hub:4222"):
        await asyncio.Event().wait()

    # every strategy process: a Client in every way, reading the relay
    async with Client("nats://hub:4222", api_key="any") as client:
        await client.subscribe(["polymarket:572473"])

Modules: :mod:`.wire` (subjects, the batch layout, the control envelope), :mod:`.relay` (the
engine), :mod:`.upstream` (its Parsec session, the tap first), :mod:`.control` (its request
service, nats-py), :mod:`.wants` (consumers, leases, the union subscribed upstream),
:mod:`.frames` (the Parsec frames the relay writes), :mod:`.consumer` (``NatsTransport``:
``nats://`` URLs) and :mod:`.consumer_conn` (one connection's state), :mod:`.link` (the lean
NATS data connection), :mod:`.config`, :mod:`.report` (its bench report). Compiled: ``parsec_fast._relayscan`` (the relay's per-frame tap)
and ``parsec_fast._natsfeed`` (the consumer's receive path). Needs ``pip install
'parsec_fast[relay]'`` (nats-py) and a NATS server (``nats-server``).
"""
from __future__ import annotations

from .config import RelayConfig
from .consumer import NatsTransport
from .link import LinkError
from .relay import Relay, RelayStats
from .wants import Consumer, Wants
from .wire import DEFAULT_PREFIX, Batch, Kind, WireError, book_subject

__all__ = ["Relay", "RelayConfig", "RelayStats", "NatsTransport", "LinkError", "Wants",
           "Consumer", "Batch", "Kind", "WireError", "book_subject", "DEFAULT_PREFIX"]
