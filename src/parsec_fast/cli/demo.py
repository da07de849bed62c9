"""``parsec-fast demo``: the local server in-process, the engine on it, the live view, and a
fault every few seconds so that recovery can be watched."""
from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from .connect import open_client, say
from .exits import EXIT_OK
from .monitor import SessionMonitor
from .signals import StopSignals
from .view import print_summary, run_view

if TYPE_CHECKING:
    from ..server import LocalServer, MarketSpec

__all__ = ["cmd_demo", "demo_markets", "FaultInjector", "DEMO_FAULTS"]

#: Faults the demo cycles through (the first comes early so a short demo sees a recovery).
DEMO_FAULTS: tuple[str, ...] = ("gap", "resync_required", "needs_refresh", "close", "stall")


def demo_markets(count: int, seed: int) -> list[MarketSpec]:
    """``count`` simulated kalshi/polymarket markets, binary and categorical."""
    from ..server import make_markets

    specs = [s for s in make_markets(count * 3, seed) if s.exchange in ("kalshi", "polymarket")]
    return specs[:count]


class FaultInjector:
    """Injects one demo fault every ``every`` seconds (the first at ``first``); call it with
    the elapsed time (the view's ``tick``)."""

    def __init__(self, server: LocalServer, monitor: SessionMonitor, *, first: float = 0.8,
                 every: float = 4.0) -> None:
        #: The server the faults are injected into.
        self.server: LocalServer = server
        #: Where each fault is noted.
        self.monitor: SessionMonitor = monitor
        #: Elapsed time of the next fault.
        self.next_at: float = first
        #: Seconds between faults.
        self.every: float = every
        #: Faults injected so far.
        self.count: int = 0

    def __call__(self, elapsed: float) -> None:
        """Inject the next fault if it is due at ``elapsed`` seconds."""
        if elapsed < self.next_at:
            return
        self.next_at = elapsed + self.every
        name = DEMO_FAULTS[self.count % len(DEMO_FAULTS)]
        self.count += 1
        faults = self.server.faults
        subs = self.monitor.client.subscriptions()
        if not subs:
            return
        target = subs[(self.count * 7) % len(subs)]
        pid = target.parsec_id
        if name == "gap":
            faults.drop_next_delta()
            detail = "a delta is dropped (next market to update)"
        elif name == "resync_required":
            faults.send_resync_required(pid, target.outcome)
            detail = f"resync_required on {pid}/{target.outcome}"
        elif name == "needs_refresh":
            faults.mark_needs_refresh(pid, target.outcome)
            detail = f"needs_refresh on {pid}/{target.outcome}"
        elif name == "close":
            faults.close_all_abruptly()
            detail = "the server drops the connection"
        else:
            faults.stall(pid, 3.0)
            detail = f"{pid} stalls for 3 s (goes stale)"
        self.monitor.faults.append(name)
        self.monitor.note(f"[fault] {detail}")


async def cmd_demo(args: argparse.Namespace) -> int:
    """``parsec-fast demo``."""
    from ..server import LocalServer, ServerConfig

    with StopSignals(asyncio.get_running_loop()) as stop:
        specs = demo_markets(args.markets, args.seed)
        config = ServerConfig(markets=specs, seed=args.seed, rate=args.rate,
                              heartbeat_interval=1.0, stale_after_ms=2000, tier="pro",
                              fill_account=None, wallet_interval=0)
        say(f"starting the local server ({len(specs)} simulated markets) ...")
        async with LocalServer(config) as srv:
            markets = [(s.parsec_id, o) for s in specs
                       for o in (s.outcomes if s.categorical else ("Yes",))]
            client = await stop.guard(
                open_client(srv.url, markets, depth=args.depth, api_key="demo",
                            parser=args.parser, heartbeat_interval=1.0, backoff_initial=0.3,
                            backoff_max=2.0), f"connecting to {srv.url}")
            monitor = SessionMonitor(client, f"parsec-fast demo: {len(markets)} books on "
                                             f"{srv.url}")
            tick = None if args.no_faults else FaultInjector(srv, monitor,
                                                             every=args.fault_every)
            try:
                await run_view(monitor, args.seconds, stop, rows=args.rows, tick=tick)
                monitor.sample()
                summary = monitor.summary()
            finally:
                await client.close()
        print_summary(summary, args.json_summary)
    return stop.exit_code or EXIT_OK
