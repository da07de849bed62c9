"""``parsec-fast relay``: one Parsec connection republished on a NATS server for any number of
consumers (``Client("nats://HOST:4222")``) on any host; runs until Ctrl-C or SIGTERM.

It prints one line once it serves (the upstream URL, the NATS URL, the subject prefix and the
relay's epoch), then, with ``--stats S``, one line of counters every S seconds. ``local`` as the
URL runs the local Parsec-compatible server in-process as the upstream (demos, tests)."""
from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from .exits import EXIT_CONNECT, EXIT_OK, EXIT_USAGE, CliError
from .signals import StopSignals

__all__ = ["cmd_relay", "add_relay_command"]


def add_relay_command(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``relay`` with the parser's ``add(name, help, description)``."""
    r = add("relay", "republish one Parsec connection on NATS for many consumers",
            "Hold one Parsec connection (URL, or 'local' for an in-process local server) and "
            "its compiled books, and republish every book on the NATS server --nats under "
            "PREFIX.EXCHANGE.MARKET.OUTCOME. Consumers are ordinary clients of nats://HOST:PORT "
            "(python: Client('nats://HOST:4222'); compat: ParsecWebSocket(key, "
            "'nats://HOST:4222')); the relay subscribes upstream to the union of their wants "
            "within the account's cap and the 3/s limit, and answers their snapshots and "
            "resyncs from its own books. Exit 3 when Parsec or NATS cannot be reached, 4 for a "
            "refused credential.")
    r.add_argument("source", metavar="URL|local",
                   help="the Parsec WebSocket (wss://api.parsecapi.com/ws) or 'local'")
    r.add_argument("--nats", default="nats://127.0.0.1:4222", metavar="URL",
                   help="NATS server, nats://[user:pass@]host:port (default "
                        "nats://127.0.0.1:4222)")
    r.add_argument("--api-key", help="Parsec API key (default: $PARSEC_API_KEY)")
    r.add_argument("--terminal-token", help="authenticate with a terminal token instead")
    r.add_argument("--prefix", default="parsec",
                   help="subject prefix, one per Parsec account on a NATS server (default "
                        "parsec; consumers use nats://HOST:PORT/PREFIX for another)")
    r.add_argument("--heartbeat", type=float, default=1.0, metavar="S",
                   help="seconds between heartbeats (default 1; keep at or below the "
                        "consumers' heartbeat_interval)")
    r.add_argument("--lease-ttl", type=float, default=10.0, metavar="S",
                   help="a silent consumer's wants stop counting after S seconds (default 10)")
    r.add_argument("--linger", type=float, default=5.0, metavar="S",
                   help="unsubscribe upstream S seconds after the last consumer left a book "
                        "(default 5)")
    r.add_argument("--consumer-key", default=None,
                   help="the key consumers must send (default: any; NATS's own auth is the "
                        "boundary)")
    r.add_argument("--stats", type=float, default=0.0, metavar="S",
                   help="print counters every S seconds (default: never)")
    r.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    r.add_argument("--local-markets", type=int, default=12, help=argparse.SUPPRESS)
    r.add_argument("--local-rate", type=float, default=1000.0, help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_relay, is_async=True)


def _config(args: argparse.Namespace) -> Any:
    from ..relay import RelayConfig

    try:
        return RelayConfig(prefix=args.prefix, heartbeat_interval=args.heartbeat,
                           lease_ttl=args.lease_ttl, unsubscribe_linger=args.linger,
                           consumer_key=args.consumer_key)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


async def cmd_relay(args: argparse.Namespace) -> int:
    """``parsec-fast relay``: 0 after --seconds, 130/143 when stopped by a signal."""
    import os

    try:
        from ..relay import LinkError, Relay
    except ImportError as exc:
        raise CliError(str(exc)) from None
    config = _config(args)
    local = None
    url = args.source
    key = args.api_key or (None if args.terminal_token else os.environ.get("PARSEC_API_KEY"))
    with StopSignals(asyncio.get_running_loop()) as stop:
        try:
            if url == "local":
                from ..server import LocalServer, ServerConfig

                local = await LocalServer(ServerConfig(markets=args.local_markets,
                                                       rate=args.local_rate)).start()
                url, key = local.url, key or "local"
            if not key and not args.terminal_token:
                raise CliError("no credential: give --api-key, --terminal-token or set "
                               "PARSEC_API_KEY", EXIT_USAGE)
            try:
                relay = Relay(url, key if not args.terminal_token else None,
                              terminal_token=args.terminal_token, nats_url=args.nats,
                              config=config)
            except ValueError as exc:
                raise CliError(str(exc), EXIT_USAGE) from None
            try:
                await stop.guard(relay.start(), f"connecting to {url} and {args.nats}")
            except LinkError as exc:
                raise CliError(f"cannot connect to the NATS server: {exc}", EXIT_CONNECT) \
                    from None
            print(f"parsec-fast relay: {relay.upstream.url} -> {args.nats}, subjects "
                  f"{config.prefix}.EXCHANGE.MARKET.OUTCOME, epoch {relay.epoch:x}; "
                  "Ctrl-C stops it", flush=True)
            try:
                await _serve(relay, stop, args)
            finally:
                await relay.close()
        finally:
            if local is not None:
                await local.close()
    if stop.received is not None:
        print("parsec-fast relay: stopped", flush=True)
    return stop.exit_code or EXIT_OK


async def _serve(relay: Any, stop: StopSignals, args: argparse.Namespace) -> None:
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    period = args.stats if args.stats > 0 else None
    while True:
        wait = [x for x in (period, None if deadline is None else deadline - time.monotonic())
                if x is not None]
        if await stop.wait(min(wait) if wait else None):
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        if period is not None:
            s = relay.snapshot_stats()
            print(f"relay: {s.consumers} consumers, {s.books} books, frames in {s.frames_in:,} "
                  f"out {s.frames_out:,} in {s.messages_out:,} messages, snapshots served "
                  f"{s.snapshots_served:,}, waiting {s.waiting}, upstream "
                  f"{'connected' if relay.upstream.connected else 'DISCONNECTED'}", flush=True)
