"""What a connection of the local server shares with the rest of the server.

:class:`ServerContext` is built once by :class:`~parsec_fast.server.app.LocalServer` and handed to
every :class:`~parsec_fast.server.connection.Connection`, so that a connection reaches the config,
the simulator, the registry, the book/venue status, the frame faults, the wallet feed and the
recorder through public names, without knowing the server object.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .config import ServerConfig
from .faults import Faults
from .recorder import Recorder
from .registry import Registry
from .simulator import Simulator
from .status import MarketStatus
from .wallet import WalletFeed

__all__ = ["ServerContext"]


@dataclass
class ServerContext:
    """The server's shared state, as seen by its connections."""

    config: ServerConfig
    simulator: Simulator
    #: Open connections and the subscription index (``Registry[Connection]``).
    registry: Registry[Any]
    status: MarketStatus
    #: Frame faults (drop / duplicate / reorder) are taken from here by each delta.
    faults: Faults
    wallets: WalletFeed
    recorder: Recorder | None = None
    #: Connections the server ended for passing a limit, by reason (``send_buffer``,
    #: ``invalid_messages``, ``ping_flood``, ``backlog``, ``auth_timeout``, ``close_timeout``,
    #: ``message_too_big``, ``internal_error``).
    aborted: Counter[str] = field(default_factory=Counter)
