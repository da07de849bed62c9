"""What :class:`~parsec_fast.server.faults.Faults` acts on: the server's subscriptions, market
status and listening socket (:class:`ServerFaultTarget` implements the public
:class:`~parsec_fast.server.faults.FaultTarget` protocol)."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from typing import Any

from .config import ServerConfig
from .connection import Connection
from .registry import Registry
from .simulator import Simulator
from .status import MarketStatus
from .stream import LiveStream
from .subscription import Subscription

__all__ = ["ServerFaultTarget"]


class ServerFaultTarget:
    """Fault actions on one server. ``refuse(seconds)`` is the server's way of closing its
    listening socket for a while (it owns the socket)."""

    def __init__(self, config: ServerConfig, simulator: Simulator, registry: Registry[Any],
                 status: MarketStatus, stream: LiveStream, refuse: Callable[[float], None]) -> None:
        self.config = config
        self.simulator = simulator
        self.registry: Registry[Connection] = registry
        self.status = status
        self.stream = stream
        self._refuse = refuse

    @property
    def stale_after_s(self) -> float:
        """``stale_after_ms`` in seconds (the default stall length is twice that)."""
        return self.config.stale_after_ms / 1000.0

    def _matching_subs(self, parsec_id: str | None,
                       outcome: str | None) -> list[tuple[Connection, Subscription]]:
        out = []
        for conn in list(self.registry.connections):
            for sub in list(conn.subs.values()):
                if (parsec_id is None or sub.market.parsec_id == parsec_id) and \
                        (outcome is None or sub.outcome.casefold() == outcome.casefold()):
                    out.append((conn, sub))
        return out

    def resync_required(self, parsec_id: str | None, outcome: str | None) -> int:
        """``resync_required`` on the matching subscriptions; returns how many were hit."""
        return sum(conn.require_resync(sub) for conn, sub in self._matching_subs(parsec_id, outcome))

    def needs_refresh(self, parsec_id: str | None, outcome: str | None) -> int:
        """``needs_refresh`` on the matching subscriptions; returns how many were hit."""
        return sum(conn.needs_refresh(sub) for conn, sub in self._matching_subs(parsec_id, outcome))

    def stall(self, parsec_id: str, seconds: float) -> None:
        """Freeze a market for ``seconds``."""
        if self.simulator.spec(parsec_id) is None:
            raise ValueError(f"stall: unknown market {parsec_id!r}")
        loop = asyncio.get_running_loop()
        status = self.status
        status.stall(parsec_id, loop.time() + seconds, loop.time())
        loop.call_later(seconds, lambda: status.update_paused(loop.time()))

    def set_feed_state(self, exchange: str | None, state: str) -> None:
        """Set the venue link of ``exchange`` (every exchange when None), announced in-band."""
        status = self.status
        exchanges = {exchange} if exchange is not None else status.exchanges()
        status.set_feed_state(exchanges, state, asyncio.get_running_loop().time())
        for key in list(self.registry.subscribed_keys()):
            if key[0].split(":", 1)[0] in exchanges:
                self.stream.announce(key)

    def exchange_unavailable(self, exchange: str, unavailable: bool) -> None:
        """New subscriptions to ``exchange`` fail with 2003 (or work again)."""
        if unavailable:
            self.status.unavailable_exchanges.add(exchange)
        else:
            self.status.unavailable_exchanges.discard(exchange)

    def close_all(self) -> int:
        """Abort every connection (no close frame); returns how many were open."""
        conns = list(self.registry.connections)
        for conn in conns:
            conn.disconnect_now()
        return len(conns)

    def refuse(self, seconds: float) -> None:
        """Stop listening for ``seconds``."""
        self._refuse(seconds)

    def random_subscribed_market(self, rng: random.Random) -> str | None:
        """A subscribed parsec_id drawn with ``rng`` (None when nothing is subscribed)."""
        pids = sorted({k[0] for k in self.registry.subscribed_keys()})
        return rng.choice(pids) if pids else None
