"""The ``parsec-fast`` argument parser: every command, its options and its ``--help``."""
from __future__ import annotations

import argparse
import textwrap

from .. import __version__
from .bench import cmd_bench
from .demo import cmd_demo
from .exits import EXIT_CODES_HELP
from .record import cmd_record, parse_fsync_interval
from .relay import add_relay_command
from .replay import cmd_replay
from .serve import cmd_serve
from .watch import cmd_watch

__all__ = ["build_parser", "parse_market", "positive_int", "positive_float", "DESCRIPTION"]

#: The tool's one-line description (``parsec-fast --help``).
DESCRIPTION = ("parsec-fast: live Parsec order books at native speed — the demo, a live view of "
               "any server, the local server, recording and replay, the benchmarks, a NATS "
               "relay for many consumers.")


def parse_market(text: str) -> tuple[str, str]:
    """``PARSEC_ID[/OUTCOME]`` → (parsec_id, outcome); outcome defaults to ``Yes``."""
    pid, _, outcome = text.partition("/")
    exchange, sep, market_id = pid.partition(":")
    if not sep or not exchange or not market_id:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected EXCHANGE:MARKET_ID[/OUTCOME], e.g. kalshi:KXBTC-26MAR10 or "
            "polymarket:572473/No")
    return pid, outcome or "Yes"


def positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def positive_int(text: str) -> int:
    """An integer > 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid integer") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; each command's ``func`` and whether it is a coroutine
    (``is_async``) are set as defaults."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="parsec-fast", description=textwrap.fill(DESCRIPTION, 88),
                                epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"parsec-fast {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, description: str,
            parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=textwrap.fill(description, 88),
                              epilog=EXIT_CODES_HELP, formatter_class=fmt,
                              parents=parents or [])

    view = argparse.ArgumentParser(add_help=False)
    view.add_argument("--seconds", type=positive_float, default=None,
                      help="stop after N seconds (default: until Ctrl-C)")
    view.add_argument("--parser", choices=("native", "orjson"), default="native",
                      help="frame parser (default native)")
    view.add_argument("--rows", type=positive_int, default=12,
                      help="most markets shown, busiest first (default 12; fewer when the "
                           "terminal is short)")
    view.add_argument("--json-summary", metavar="PATH",
                      help="also write the end summary as JSON ('-' = stdout)")
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("--api-key", help="API key (default: $PARSEC_API_KEY)")
    remote.add_argument("--terminal-token", help="authenticate with a terminal token instead")
    remote.add_argument("--depth", type=positive_int, default=None,
                        help="levels per side (default: the server's, 50)")
    remote.add_argument("--connect-timeout", type=positive_float, default=10.0, metavar="S",
                        help="bound on each connection step: DNS, TCP, TLS, WebSocket "
                             "handshake (default 10)")

    d = add("demo", "local server + engine + live view, with faults injected",
            "Start the local server in-process with simulated kalshi/polymarket markets, connect "
            "the engine and show a live view; inject a fault every few seconds (gap, "
            "resync_required, needs_refresh, dropped connection, stall) so recovery can be "
            "seen. Ends on Ctrl-C or after --seconds with a summary. Without a terminal it "
            "prints one plain line per second.", [view])
    d.add_argument("--markets", type=positive_int, default=36,
                   help="simulated markets (default 36)")
    d.add_argument("--rate", type=positive_float, default=2000.0,
                   help="simulator events/s over all markets (default 2000)")
    d.add_argument("--depth", type=positive_int, default=50, help="levels per side (default 50)")
    d.add_argument("--no-faults", action="store_true", help="do not inject faults")
    d.add_argument("--fault-every", type=positive_float, default=4.0,
                   help="seconds between faults (default 4; the first comes at 0.8 s)")
    d.add_argument("--seed", type=int, default=0, help="simulator seed")
    d.set_defaults(func=cmd_demo, is_async=True)

    w = add("watch", "live view of markets on any server",
            "Connect to a Parsec server (the real service by default), subscribe MARKETs and show "
            "the live view. MARKET is EXCHANGE:MARKET_ID[/OUTCOME] (outcome defaults to Yes). "
            "While connecting it says so; a failed connection is one line naming the phase, "
            "URL and cause (exit 3; 4 for a refused credential).", [view, remote])
    w.add_argument("markets", nargs="+", type=parse_market, metavar="MARKET")
    w.add_argument("--url", default="wss://api.parsecapi.com/ws",
                   help="server URL (ws://, wss://, or an http(s) REST base)")
    w.set_defaults(func=cmd_watch, is_async=True)

    s = add("serve", "run the local Parsec-compatible server",
            "Run the local server until Ctrl-C; it prints its URL (first line) and the market "
            "ids it serves. Any non-empty key is accepted except keys starting with 'bad'.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    s.add_argument("--markets", type=positive_int, default=20)
    s.add_argument("--rate", type=float, default=200.0,
                   help="simulator events/s over all markets; 0 = as fast as possible")
    s.add_argument("--tier", choices=("free", "pro", "scale"), default="pro")
    s.add_argument("--heartbeat", type=positive_float, default=5.0, help="seconds")
    s.add_argument("--stale-after-ms", type=positive_int, default=5000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help='fault spec, repeatable: "gap@2.0", "stall:3/kalshi:KXSIM-0000@5", '
                        '"close@10", "random@5"')
    s.set_defaults(func=cmd_serve, is_async=True)

    r = add("record", "record the raw frames of a session",
            "Connect to SOURCE (a URL, or 'local' for an in-process local server), subscribe "
            "MARKETs and record every received frame to --out until --seconds or Ctrl-C. "
            "--append first checks the file and cuts a torn tail (it says how many bytes). A "
            "session that never connects leaves no file behind (an appended-to file is left "
            "as it was).", [remote])
    r.add_argument("source", metavar="URL|local")
    r.add_argument("markets", nargs="*", type=parse_market, metavar="MARKET")
    r.add_argument("--out", required=True, help="recording file to write")
    r.add_argument("--append", action="store_true", help="append to an existing recording")
    r.add_argument("--seconds", type=positive_float, default=10.0, help="default 10")
    r.add_argument("--fsync-interval", type=parse_fsync_interval, default=1.0, metavar="S",
                   help="seconds between fsyncs: about how much of the recording a crash may "
                        "lose (default 1; 0 = after every frame, slowest; 'never' = leave it "
                        "to the OS)")
    r.add_argument("--rate", type=positive_float, default=1000.0,
                   help="local only: simulator events/s (default 1000)")
    r.add_argument("--local-markets", type=positive_int, default=12, help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_record, is_async=True)

    y = add("replay", "replay a recording through the feed handler and print stats",
            "Feed a recording through the same compiled feed handler the client uses, as fast "
            "as possible (--fast, the default) or paced (--speed X, 1 = recorded pace). A "
            "damaged record is skipped (the records after it are replayed) and reported with "
            "its byte range; the exit code says whether the whole file was read.")
    y.add_argument("file")
    pace = y.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=positive_float, default=None,
                      help="pace relative to the recording (1 = as recorded)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible (default)")
    y.add_argument("--parser", choices=("native", "orjson"), default=None,
                   help="override the recording's parser")
    y.add_argument("--json-summary", metavar="PATH", help="also write the stats as JSON")
    y.set_defaults(func=cmd_replay, is_async=False)

    b = add("bench", "run the benchmark suites (progress bar, JSON, chart, RESULTS.md)",
            "Run bench/ suites one after the other, collect their JSON into OUT/results.json, "
            "draw OUT/results.png (needs matplotlib: pip install -e .[bench]) and, with "
            "--update-results, rewrite bench/RESULTS.md and bench/results.png.")
    b.add_argument("--quick", action="store_true", help="tiny runs (smoke test, seconds)")
    b.add_argument("--suite", default="book,parse,e2e,memory",
                   help="comma-separated suites (default book,parse,e2e,memory)")
    b.add_argument("--out", default=None, help="output directory (default bench/out)")
    b.add_argument("--pin", type=int, default=None, metavar="CPU",
                   help="run single-process suites under taskset -c CPU")
    b.add_argument("--update-results", action="store_true",
                   help="rewrite bench/RESULTS.md and bench/results.png")
    b.add_argument("--report-only", action="store_true",
                   help="run nothing: redraw the chart and rewrite RESULTS.md from "
                        "OUT/results.json (keeps bench/results_notes.md's analysis)")
    b.set_defaults(func=cmd_bench, is_async=False)
    add_relay_command(add)
    return p
