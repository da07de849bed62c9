"""``parsec-fast watch``: the live view against any Parsec server (the real service by
default)."""
from __future__ import annotations

import argparse
import asyncio
import os

from .connect import open_client
from .exits import EXIT_OK, EXIT_USAGE, CliError
from .monitor import SessionMonitor
from .signals import StopSignals
from .view import print_summary, run_view

__all__ = ["cmd_watch", "credential"]


def credential(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(api_key, terminal_token) from the options or ``$PARSEC_API_KEY``; exit 2 without."""
    key = args.api_key or (None if args.terminal_token else os.environ.get("PARSEC_API_KEY"))
    if not key and not args.terminal_token:
        raise CliError("no credential: give --api-key, --terminal-token or set PARSEC_API_KEY",
                       EXIT_USAGE)
    return key, (args.terminal_token if not key else None)


async def cmd_watch(args: argparse.Namespace) -> int:
    """``parsec-fast watch``."""
    key, token = credential(args)
    with StopSignals(asyncio.get_running_loop()) as stop:
        client = await stop.guard(
            open_client(args.url, args.markets, depth=args.depth, api_key=key,
                        terminal_token=token, parser=args.parser,
                        connect_timeout=args.connect_timeout), f"connecting to {args.url}")
        monitor = SessionMonitor(client, f"parsec-fast watch: {client.url}")
        try:
            await run_view(monitor, args.seconds, stop, rows=args.rows)
            monitor.sample()
            summary = monitor.summary()
        finally:
            await client.close()
        print_summary(summary, args.json_summary)
    return stop.exit_code or EXIT_OK
