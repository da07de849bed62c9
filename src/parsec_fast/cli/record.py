"""``parsec-fast record``: the raw frames of a session to a file, and nothing left behind when
the session never starts.

``--append`` first checks the file (it must be a recording: exit 5 otherwise) and cuts a torn
tail, saying how many bytes it dropped. A session that fails before it is connected and
subscribed (refused, DNS, timeout, Ctrl-C while connecting) removes the file it created, or
cuts an existing one back to what it was. ``--fsync-interval`` sets how much a crash may lose
(:mod:`parsec_fast.recording.writer`).
"""
from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..recording import FileCheckpoint, NotARecordingError, prepare_append
from .connect import open_client, say
from .exits import EXIT_NOT_A_RECORDING, EXIT_OK, EXIT_USAGE, CliError
from .signals import StopSignals
from .watch import credential

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["cmd_record", "parse_fsync_interval", "RecordedStats"]


def parse_fsync_interval(text: str) -> float | None:
    """``--fsync-interval``: seconds >= 0, or ``never`` (None)."""
    if text.lower() in ("never", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds (0 = every frame) or 'never'"
                                         ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0 (or 'never')")
    return value


def _durability(interval: float | None) -> str:
    if interval is None:
        return "no fsync"
    return "fsync after every frame" if interval == 0 else f"fsync every {interval:g} s"


@dataclass(frozen=True, slots=True)
class RecordedStats:
    """What one recording session received."""

    seconds: float
    frames: int
    bytes: int
    deltas: int
    snapshots: int


async def _record_until(client: Client, seconds: float, stop: StopSignals) -> None:
    """Let the client record for ``seconds`` or until a stop signal; raise its fatal error."""
    deadline = time.monotonic() + seconds
    while stop.received is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        fatal = client.fatal_error
        if fatal is not None:
            raise fatal
        await stop.wait(min(0.25, remaining))


async def cmd_record(args: argparse.Namespace) -> int:
    """``parsec-fast record``."""
    out = Path(args.out)
    if out.exists() and not args.append:
        raise CliError(f"{out} exists (use --append to add to it, or choose another file)",
                       EXIT_USAGE)
    if not out.parent.is_dir():
        raise CliError(f"directory {out.parent} does not exist", EXIT_USAGE)
    key: str | None = "record"
    token: str | None = None
    if args.source != "local":
        if not args.markets:
            raise CliError("give at least one MARKET to record from a remote server",
                           EXIT_USAGE)
        key, token = credential(args)
    if args.append and out.exists():
        try:
            point = prepare_append(out)
        except NotARecordingError as exc:
            raise CliError(f"cannot append: {exc}", EXIT_NOT_A_RECORDING) from None
        except OSError as exc:
            raise CliError(f"cannot append to {out}: {exc.strerror or exc}",
                           EXIT_NOT_A_RECORDING) from None
        say(f"appending to {point.describe()}")
    checkpoint = FileCheckpoint.take(out)

    async def session(url: str, markets: list[tuple[str, str]],
                      stop: StopSignals) -> RecordedStats:
        try:
            client = await stop.guard(
                open_client(url, markets, depth=args.depth, api_key=key, terminal_token=token,
                            connect_timeout=args.connect_timeout, record_path=str(out),
                            record_fsync_interval=args.fsync_interval),
                f"connecting to {url}")
        except BaseException:
            checkpoint.restore()  # nothing worth keeping was recorded
            raise
        say(f"recording {len(markets)} market(s) to {out} for {args.seconds:g} s "
            f"({_durability(args.fsync_interval)}); Ctrl-C stops")
        start = time.monotonic()
        try:
            await _record_until(client, args.seconds, stop)
        finally:
            m = client.metrics
            await client.close()
        return RecordedStats(time.monotonic() - start, m.frames, m.bytes, m.deltas_applied,
                             m.snapshots)

    with StopSignals(asyncio.get_running_loop()) as stop:
        if args.source == "local":
            from ..server import LocalServer, ServerConfig
            from .demo import demo_markets

            specs = demo_markets(args.local_markets, 0)
            markets = args.markets or [(s.parsec_id, s.outcomes[0]) for s in specs[:5]]
            async with LocalServer(ServerConfig(markets=specs, rate=args.rate)) as srv:
                stats = await session(srv.url, markets, stop)
        else:
            stats = await session(args.source, args.markets, stop)
    print(f"recorded {stats.frames:,} frames ({stats.bytes:,} bytes; {stats.snapshots} "
          f"snapshots, {stats.deltas:,} deltas) in {stats.seconds:.1f} s to {out}", flush=True)
    return stop.exit_code or EXIT_OK
