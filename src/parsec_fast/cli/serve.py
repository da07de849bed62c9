"""``parsec-fast serve``: the local Parsec-compatible server as a process; it prints its URL and
the market ids it serves, and runs until Ctrl-C or SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import textwrap
from typing import TYPE_CHECKING

from .exits import EXIT_ERROR, EXIT_USAGE, CliError
from .signals import Interrupted, StopSignals

if TYPE_CHECKING:
    from ..server import LocalServer, ServerConfig

__all__ = ["cmd_serve", "server_config", "describe_server"]


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The server's configuration from the options (exit 2 for a bad one)."""
    from ..server import ServerConfig, parse_fault_spec

    try:
        for spec in args.fault:
            parse_fault_spec(spec)
        return ServerConfig(host=args.host, port=args.port, markets=args.markets,
                            seed=args.seed, rate=args.rate or None, tier=args.tier,
                            heartbeat_interval=args.heartbeat,
                            stale_after_ms=args.stale_after_ms, faults=list(args.fault))
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def describe_server(srv: LocalServer, width: int = 100) -> list[str]:
    """The lines ``serve`` prints once the server listens: its URL first (tests and scripts
    read it from the first line), then every market it serves, with its outcomes."""
    cfg = srv.config
    found = (srv.simulator.spec(pid) for pid in srv.simulator.markets)
    specs = [s for s in found if s is not None]
    lines = [f"parsec_fast local server listening on {srv.url} ({len(specs)} markets, tier "
             f"{cfg.tier}, rate {cfg.rate or 'max'}/s, seed {cfg.seed}); Ctrl-C stops it"]
    binary = [s.parsec_id for s in specs if not s.categorical]
    categorical = [f"{s.parsec_id} ({'/'.join(s.outcomes)})" for s in specs if s.categorical]
    if binary:
        lines.append("binary markets (outcomes Yes/No):")
        lines += textwrap.wrap(", ".join(binary), width, initial_indent="  ",
                               subsequent_indent="  ", break_on_hyphens=False)
    if categorical:
        lines.append("categorical markets (an outcome is required, e.g. MARKET/OUTCOME):")
        lines += textwrap.wrap(", ".join(categorical), width, initial_indent="  ",
                               subsequent_indent="  ", break_on_hyphens=False)
    return lines


async def cmd_serve(args: argparse.Namespace) -> int:
    """``parsec-fast serve``: returns 130/143 when stopped by a signal, its way to end."""
    from ..server import run_server

    config = server_config(args)

    def ready(srv: LocalServer) -> None:
        for line in describe_server(srv):
            print(line, flush=True)

    with StopSignals(asyncio.get_running_loop()) as stop:
        try:
            await stop.guard(run_server(config, ready), "serving")
        except Interrupted:
            print("parsec_fast local server stopped", flush=True)
            return stop.exit_code
        except OSError as exc:
            raise CliError(f"cannot listen on {args.host}:{args.port}: "
                           f"{exc.strerror or exc}") from None
    return EXIT_ERROR  # run_server only returns when cancelled
