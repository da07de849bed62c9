"""The live stream of the local server: simulator events fanned out to subscriptions, heartbeats,
in-band staleness announcements and periodic wallet snapshots (one coroutine each, run as server
tasks)."""
from __future__ import annotations

import asyncio
import time

from typing import Any

from .config import ServerConfig
from .connection import Connection
from .registry import Registry
from .simulator import BookChange, FillEvent, SimEvent, Simulator, TradeEvent
from .status import MarketStatus
from .subscription import BookKey
from .wallet import WalletFeed

__all__ = ["LiveStream"]


class LiveStream:
    """Generates events at the configured rate and sends each to the connections watching it."""

    def __init__(self, config: ServerConfig, simulator: Simulator, registry: Registry[Any],
                 status: MarketStatus, wallets: WalletFeed) -> None:
        self.config = config
        self.simulator = simulator
        self.registry: Registry[Connection] = registry
        self.status = status
        self.wallets = wallets
        #: Set by :meth:`pause`; the pump generates nothing meanwhile.
        self.paused: bool = False
        #: Number of blasts in progress (the live stream stands aside meanwhile).
        self.blasting = 0

    def pause(self) -> None:
        """Stop generating live events (heartbeats, faults and control replies continue)."""
        self.paused = True

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self.paused = False

    # -- events ----------------------------------------------------------------------------------
    async def pump(self) -> None:
        """Generate simulator events at ``rate`` (over all markets) or, with no rate, as fast as
        possible over the subscribed markets only, and fan them out."""
        loop = asyncio.get_running_loop()
        rate = self.config.rate
        registry = self.registry
        if not rate:
            while True:
                await asyncio.sleep(0)
                keys = registry.subscribed_keys()
                if self.blasting or self.paused or not keys:
                    await asyncio.sleep(0.005)
                    continue
                self.run_events(256, keys)
        tick = max(0.002, min(0.05, 1.0 / rate))
        last, credit = loop.time(), 0.0
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            credit = min(credit + (now - last) * rate, max(1.0, rate * 0.5))
            last = now
            n = int(credit)
            credit -= n
            if not self.blasting:
                self.run_events(n, None)

    def run_events(self, n: int, keys: list[BookKey] | None) -> None:
        """Generate and dispatch ``n`` simulator steps (on ``keys``, default every market)."""
        if self.paused:
            return
        ts_ms = int(time.time() * 1000)
        step, dispatch = self.simulator.step, self.dispatch
        for _ in range(n):
            for event in step(keys):
                dispatch(event, ts_ms)

    def dispatch(self, event: SimEvent, ts_ms: int) -> None:
        """Send one simulator event to every subscription of its book."""
        key = (event.parsec_id, event.outcome)
        registry = self.registry
        if isinstance(event, BookChange):
            was_stale = self.status.updated(key, asyncio.get_running_loop().time())
            for conn in registry.subscribers(key):
                sub = conn.subs[key]
                changes = event.windows.get(sub.depth)
                if changes or was_stale:  # an empty delta still announces stale -> fresh
                    conn.emit_delta(sub, changes or [], ts_ms=ts_ms)
            return
        conns: list[Connection] = registry.subscribers(key)
        if not conns:
            return
        if isinstance(event, TradeEvent):
            fields = {"kind": "trade", "price": event.price, "size": event.size,
                      "trade_id": event.trade_id, "side": event.aggressor_side,
                      "aggressor_side": event.aggressor_side, "exchange_ts_ms": ts_ms - 2,
                      "ingest_ts_ms": ts_ms, "source_channel": f"{event.parsec_id.split(':')[0]}_trades"}
            for conn in conns:
                conn.emit_activity(key, fields)
        elif isinstance(event, FillEvent):
            account = self.config.fill_account
            if account is None:
                return
            fields = {"kind": "fill", "price": event.price, "size": event.size,
                      "fill_id": event.fill_id, "order_id": event.order_id, "side": event.side,
                      "liquidity_role": event.liquidity_role, "exchange_ts_ms": ts_ms - 2,
                      "ingest_ts_ms": ts_ms, "source_channel": "fills"}
            for conn in conns:
                if account == "*" or conn.account == account:
                    conn.emit_activity(key, fields)

    def announce(self, key: BookKey) -> None:
        """Send every subscription of ``key`` an empty delta carrying its current states."""
        for conn in self.registry.subscribers(key):
            conn.emit_delta(conn.subs[key], [])

    # -- periodic frames -----------------------------------------------------------------------
    async def heartbeats(self) -> None:
        """A ``heartbeat`` to every authenticated connection each ``heartbeat_interval``."""
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            ts_ms = int(time.time() * 1000)
            for conn in list(self.registry.connections):
                if conn.authenticated:
                    conn.send_obj({"type": "heartbeat", "ts_ms": ts_ms})

    async def staleness(self) -> None:
        """Mark subscribed books ``stale`` when nothing changed within ``stale_after_ms``,
        announced by a delta with no changes (the next update turns them ``fresh``)."""
        limit = self.config.stale_after_ms / 1000.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(0.25, limit / 4))
            keys = list(self.registry.subscribed_keys())
            for key in self.status.newly_stale(keys, loop.time(), limit):
                self.announce(key)

    async def wallet_snapshots(self) -> None:
        """Repeat a ``wallet_activity`` snapshot of every watched address each
        ``wallet_interval``."""
        while True:
            await asyncio.sleep(self.config.wallet_interval)
            for conn in list(self.registry.connections):
                for addr in sorted(conn.addresses):
                    conn.send_obj(self.wallets.frame(addr))
