"""``parsec-fast``: the command-line tool.

Subcommands (``parsec-fast COMMAND --help`` for each):

* ``demo``   local server in-process + the engine + a live terminal view, with faults injected;
* ``watch``  the same view against any server (the real service by default);
* ``serve``  the local Parsec-compatible server as a process;
* ``record`` record the raw frames of a session to a file; ``replay`` replays one;
* ``bench``  run the benchmark suites, collect their JSON, draw the chart, update RESULTS.md.

Exit codes: 0 ok (also after Ctrl-C in demo/watch/record), 1 other error, 2 bad arguments,
3 cannot connect, 4 authentication failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import AuthenticationError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_AUTH = 4

EPILOG = ("exit codes: 0 ok, 1 other error, 2 bad arguments, 3 cannot connect, "
          "4 authentication failed")


class CliError(Exception):
    """An expected failure: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# ── market arguments ─────────────────────────────────────────────────────────────────────────────


def parse_market(text: str) -> tuple[str, str]:
    """``PARSEC_ID[/OUTCOME]`` → (parsec_id, outcome); outcome defaults to ``Yes``."""
    pid, _, outcome = text.partition("/")
    exchange, sep, market_id = pid.partition(":")
    if not sep or not exchange or not market_id:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected EXCHANGE:MARKET_ID[/OUTCOME], e.g. kalshi:KXBTC-26MAR10 or "
            "polymarket:572473/No")
    return pid, outcome or "Yes"


# ── the live view ────────────────────────────────────────────────────────────────────────────────


class Session:
    """What the view and the summary need from a running client: counters and an event log.

    Listens to the client's state events (never to ``book_updated``: books are read directly).
    A *recovery* is a book that became valid again after having been valid and then invalid.
    """

    def __init__(self, client: Any, title: str) -> None:
        self.client = client
        self.title = title
        self.started = time.monotonic()
        self.log: deque[str] = deque(maxlen=8)
        self.recoveries = 0
        self.invalidations = 0
        self.faults: list[str] = []
        # Books valid before the session started listening (first snapshots came already).
        self._was_valid: set[tuple[str, str]] = {(s.parsec_id, s.outcome)
                                                  for s in client.subscriptions() if s.book.is_valid}
        self._broken: set[tuple[str, str]] = set()
        self._last_frames = 0
        self._last_deltas = 0
        self._last_t = self.started
        self._last_applied: dict[tuple[str, str], int] = {}
        self.frames_per_s = 0.0
        self.deltas_per_s = 0.0
        self.busy: dict[tuple[str, str], float] = {}
        for kind in ("book_invalid", "book_recovered", "connected", "disconnected",
                     "reconnecting", "subscription_failed", "protocol_error", "slow_reader"):
            client.on(kind, self._on_event)

    def note(self, text: str) -> None:
        """Add a line to the event log."""
        self.log.append(f"{time.monotonic() - self.started:6.1f}s  {text}")

    def _on_event(self, ev: Any) -> None:
        kind = ev.kind
        if kind == "book_invalid":
            key = (ev.parsec_id, ev.outcome)
            if key in self._was_valid:
                self._broken.add(key)
            self.invalidations += 1
            if ev.reason != "disconnected":
                self.note(f"[invalid] {ev.parsec_id}/{ev.outcome}: {ev.reason} -> resync")
        elif kind == "book_recovered":
            key = (ev.parsec_id, ev.outcome)
            if key in self._broken:
                self._broken.discard(key)
                self.recoveries += 1
                self.note(f"[recovered] {ev.parsec_id}/{ev.outcome} at seq {ev.seq}")
            self._was_valid.add(key)
        elif kind == "connected":
            self.note(f"[connected] {ev.url}" + (f" (attempt {ev.attempt})" if ev.attempt else ""))
        elif kind == "disconnected":
            self.note(f"[disconnected] {ev.reason}")
        elif kind == "reconnecting":
            self.note(f"[reconnecting] in {ev.delay:.2f} s")
        elif kind == "subscription_failed":
            self.note(f"[refused] {ev.parsec_id}/{ev.outcome}: {ev.code} {ev.message}")
        elif kind == "protocol_error":
            self.note(f"[protocol error] {ev.error}")
        elif kind == "slow_reader":
            self.note("[slow_reader] the server says we read too slowly")

    def sample(self) -> None:
        """Update the rates (call about once per refresh)."""
        now = time.monotonic()
        dt = now - self._last_t
        if dt < 0.2:
            return
        m = self.client.metrics
        self.frames_per_s = (m.frames - self._last_frames) / dt
        self.deltas_per_s = (m.deltas_applied - self._last_deltas) / dt
        self._last_frames, self._last_deltas, self._last_t = m.frames, m.deltas_applied, now
        for sub in self.client.subscriptions():
            key = (sub.parsec_id, sub.outcome)
            applied = sub.stats["applied"]
            rate = (applied - self._last_applied.get(key, applied)) / dt
            self.busy[key] = 0.7 * self.busy.get(key, rate) + 0.3 * rate
            self._last_applied[key] = applied

    def summary(self) -> dict[str, Any]:
        """End-of-session figures."""
        m = self.client.metrics
        subs = self.client.subscriptions()
        return {
            "seconds": round(time.monotonic() - self.started, 3), "frames": m.frames,
            "bytes": m.bytes, "snapshots": m.snapshots, "deltas_applied": m.deltas_applied,
            "gaps": m.gaps, "duplicates": m.duplicates, "resyncs_sent": m.resyncs_sent,
            "coalesced_resyncs": m.coalesced_resyncs, "reconnects": m.reconnects,
            "invalidations": self.invalidations, "recoveries": self.recoveries,
            "faults_injected": list(self.faults), "protocol_errors": m.protocol_errors,
            "books": len(subs), "books_valid": sum(1 for s in subs if s.book.is_valid),
            "books_trustworthy": sum(1 for s in subs if s.trustworthy),
            "latency_p50_us": m.latency_p50_us, "latency_p90_us": m.latency_p90_us,
            "latency_p99_us": m.latency_p99_us, "parser": self.client.feed_handler.parser,
        }

    def status_line(self) -> str:
        """One plain line (for output that is not a terminal)."""
        m = self.client.metrics
        subs = self.client.subscriptions()
        valid = sum(1 for s in subs if s.book.is_valid)
        return (f"t={time.monotonic() - self.started:6.1f}s frames={m.frames} "
                f"msg/s={self.frames_per_s:,.0f} deltas={m.deltas_applied} gaps={m.gaps} "
                f"resyncs={m.resyncs_sent + m.coalesced_resyncs} reconnects={m.reconnects} "
                f"valid={valid}/{len(subs)} p50={_us(m.latency_p50_us)} "
                f"p99={_us(m.latency_p99_us)}")

    def render(self, rows: int) -> Any:
        """The rich renderable of the whole view."""
        from rich.console import Group
        from rich.markup import escape
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        m = self.client.metrics
        subs = self.client.subscriptions()
        valid = sum(1 for s in subs if s.book.is_valid)
        trusted = sum(1 for s in subs if s.trustworthy)
        head = Table.grid(padding=(0, 3))
        for _ in range(4):
            head.add_column()
        head.add_row(f"[b]msg/s[/b] {self.frames_per_s:,.0f}",
                     f"[b]deltas/s[/b] {self.deltas_per_s:,.0f}",
                     f"[b]frames[/b] {m.frames:,}", f"[b]deltas applied[/b] {m.deltas_applied:,}")
        head.add_row(f"[b]latency[/b] p50 {_us(m.latency_p50_us)}",
                     f"p90 {_us(m.latency_p90_us)}", f"p99 {_us(m.latency_p99_us)}",
                     f"[b]parser[/b] {self.client.feed_handler.parser}")
        head.add_row(f"[b]gaps[/b] {m.gaps}",
                     f"[b]resyncs[/b] {m.resyncs_sent} (+{m.coalesced_resyncs} coalesced)",
                     f"[b]reconnects[/b] {m.reconnects}",
                     f"[b]books[/b] {valid}/{len(subs)} valid, {trusted} trustworthy")
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for name, justify in (("market", "left"), ("outcome", "left"), ("seq", "right"),
                              ("upd/s", "right"), ("bid size", "right"), ("bid", "right"),
                              ("ask", "right"), ("ask size", "right"), ("state", "left")):
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        ranked = sorted(subs, key=lambda s: (-self.busy.get((s.parsec_id, s.outcome), 0.0),
                                             s.parsec_id, s.outcome))
        shown = ranked[:rows]
        # Books that are not trustworthy are always shown (recovery is the point of the demo).
        shown += [s for s in ranked[rows:] if not s.trustworthy][:4]
        for sub in shown:
            book = sub.book
            ok = sub.trustworthy
            state = "[green]ok[/green]" if ok else f"[red]{escape(sub.why_not() or '')}[/red]"
            table.add_row(sub.parsec_id, sub.outcome, str(book.seq if book.seq is not None else "-"),
                          f"{self.busy.get((sub.parsec_id, sub.outcome), 0.0):.0f}",
                          _num(book.best_bid_size), _num(book.best_bid_price),
                          _num(book.best_ask_price), _num(book.best_ask_size), state)
        events = "\n".join(self.log) or "(no events yet)"
        elapsed = time.monotonic() - self.started
        return Group(Panel(head, title=f"{self.title} — {elapsed:.0f} s", title_align="left"),
                     table, Panel(Text(events), title="events", title_align="left"))


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} µs"


def _num(x: float) -> str:
    if x != x:  # NaN: empty side
        return "-"
    return f"{x:,.4g}" if x < 1 else f"{x:,.2f}"


async def run_view(session: Session, seconds: float | None, *, rows: int = 12,
                   interval: float = 1.0, tick: Callable[[float], None] | None = None,
                   plain: bool | None = None) -> None:
    """Show the view until ``seconds`` pass or Ctrl-C (SIGINT/SIGTERM); ``tick(elapsed)`` is
    called every 0.25 s (the demo injects faults from it). ``plain``: one line per ``interval``
    (default when stdout is not a terminal)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass
    if plain is None:
        plain = not sys.stdout.isatty()
    live = None
    if not plain:
        from rich.live import Live

        live = Live(session.render(rows), refresh_per_second=4, transient=False)
        live.start()
    start = time.monotonic()
    last_line = start
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if seconds is not None and elapsed >= seconds:
                break
            if session.client.fatal_error is not None:  # e.g. auth failed on a reconnect
                raise session.client.fatal_error
            if tick is not None:
                tick(elapsed)
            session.sample()
            if live is not None:
                live.update(session.render(rows))
            elif time.monotonic() - last_line >= interval:
                last_line = time.monotonic()
                print(session.status_line(), flush=True)
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
    finally:
        if live is not None:
            live.update(session.render(rows))
            live.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass


def print_summary(summary: dict[str, Any], json_path: str | None) -> None:
    """Print the end-of-session summary; also write it as JSON (``-`` = stdout)."""
    s = summary
    print(f"summary: {s['seconds']:.1f} s, {s['frames']:,} frames, {s['snapshots']:,} snapshots, "
          f"{s['deltas_applied']:,} deltas applied; gaps {s['gaps']}, resyncs "
          f"{s['resyncs_sent']} (+{s['coalesced_resyncs']} coalesced), reconnects "
          f"{s['reconnects']}, recoveries {s['recoveries']}; books valid at the end "
          f"{s['books_valid']}/{s['books']}; latency p50 {_us(s['latency_p50_us'])}, "
          f"p99 {_us(s['latency_p99_us'])}", flush=True)
    if s.get("faults_injected"):
        print(f"faults injected: {', '.join(s['faults_injected'])}", flush=True)
    if json_path:
        text = json.dumps(summary, indent=2)
        if json_path == "-":
            print(text, flush=True)
        else:
            Path(json_path).write_text(text + "\n")


# ── connecting ───────────────────────────────────────────────────────────────────────────────────


async def open_client(url: str, markets: Sequence[tuple[str, str]], *, depth: int | None,
                      api_key: str | None = None, terminal_token: str | None = None,
                      connect_timeout: float = 10.0, **options: Any) -> Any:
    """Create a Client, connect (one attempt: failures map to exit codes 3/4), subscribe and
    wait for the first snapshots; then turn reconnecting on."""
    from .client import Client
    from .errors import AuthenticationError, SubscriptionError

    try:
        client = Client(url, api_key=api_key, terminal_token=terminal_token,
                        connect_timeout=connect_timeout, open_timeout=connect_timeout + 20,
                        **options)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        await client.start()
    except AuthenticationError as exc:
        raise CliError(f"authentication failed: {exc.message} (code {exc.code})",
                       EXIT_AUTH) from None
    except (OSError, asyncio.TimeoutError) as exc:  # ParsecConnectionError is an OSError
        raise CliError(f"cannot connect to {client.url}: {exc or type(exc).__name__}",
                       EXIT_CONNECT) from None
    if markets:
        try:
            await client.subscribe([{"parsec_id": p, "outcome": o} for p, o in markets],
                                   depth=depth, timeout=30)
        except SubscriptionError as exc:
            refused = ", ".join(f"{p}/{o}: {m} ({c})" for (p, o), (c, m) in exc.failures.items())
            if len(exc.failures) >= len(markets):
                await client.close()
                raise CliError(f"every market was refused: {refused}") from None
            print(f"warning: refused: {refused}", file=sys.stderr)
        except asyncio.TimeoutError:
            print("warning: some snapshots did not arrive within 30 s; showing what there is",
                  file=sys.stderr)
    return client


# ── demo ─────────────────────────────────────────────────────────────────────────────────────────

#: Faults the demo cycles through (the first comes early so a short demo sees a recovery).
DEMO_FAULTS = ("gap", "resync_required", "needs_refresh", "close", "stall")


def demo_markets(count: int, seed: int) -> list[Any]:
    """``count`` simulated kalshi/polymarket markets, binary and categorical."""
    from .server import make_markets

    specs = [s for s in make_markets(count * 3, seed) if s.exchange in ("kalshi", "polymarket")]
    return specs[:count]


class FaultInjector:
    """Injects one demo fault every ``every`` seconds (first at ``first``)."""

    def __init__(self, server: Any, session: Session, *, first: float = 0.8,
                 every: float = 4.0) -> None:
        self.server = server
        self.session = session
        self.next_at = first
        self.every = every
        self.count = 0

    def __call__(self, elapsed: float) -> None:
        if elapsed < self.next_at:
            return
        self.next_at = elapsed + self.every
        name = DEMO_FAULTS[self.count % len(DEMO_FAULTS)]
        self.count += 1
        faults = self.server.faults
        subs = self.session.client.subscriptions()
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
        self.session.faults.append(name)
        self.session.note(f"[fault] {detail}")


async def cmd_demo(args: argparse.Namespace) -> int:
    """``parsec-fast demo``."""
    from .server import LocalServer, ServerConfig

    specs = demo_markets(args.markets, args.seed)
    config = ServerConfig(markets=specs, seed=args.seed, rate=args.rate, heartbeat_interval=1.0,
                          stale_after_ms=2000, tier="pro", fill_account=None, wallet_interval=0)
    async with LocalServer(config) as srv:
        markets = [(s.parsec_id, o) for s in specs
                   for o in (s.outcomes if s.categorical else ("Yes",))]
        client = await open_client(srv.url, markets, depth=args.depth, api_key="demo",
                                   parser=args.parser, heartbeat_interval=1.0,
                                   backoff_initial=0.3, backoff_max=2.0)
        session = Session(client, f"parsec-fast demo: {len(markets)} books on {srv.url}")
        tick = None if args.no_faults else FaultInjector(srv, session, every=args.fault_every)
        try:
            await run_view(session, args.seconds, rows=args.rows, tick=tick)
            session.sample()
            summary = session.summary()
        finally:
            await client.close()
    print_summary(summary, args.json_summary)
    return EXIT_OK


# ── watch ────────────────────────────────────────────────────────────────────────────────────────


async def cmd_watch(args: argparse.Namespace) -> int:
    """``parsec-fast watch``."""
    key = args.api_key or (None if args.terminal_token else os.environ.get("PARSEC_API_KEY"))
    if not key and not args.terminal_token:
        raise CliError("no credential: give --api-key, --terminal-token or set PARSEC_API_KEY",
                       EXIT_USAGE)
    client = await open_client(args.url, args.markets, depth=args.depth, api_key=key,
                               terminal_token=args.terminal_token if not key else None,
                               parser=args.parser)
    session = Session(client, f"parsec-fast watch: {client.url}")
    try:
        await run_view(session, args.seconds, rows=args.rows)
        session.sample()
        summary = session.summary()
    finally:
        await client.close()
    print_summary(summary, args.json_summary)
    return EXIT_OK


# ── serve ────────────────────────────────────────────────────────────────────────────────────────


def cmd_serve(args: argparse.Namespace) -> int:
    """``parsec-fast serve``."""
    from .server import ServerConfig, parse_fault_spec, serve_forever

    for spec in args.fault:
        try:
            parse_fault_spec(spec)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    try:
        config = ServerConfig(host=args.host, port=args.port, markets=args.markets,
                              seed=args.seed, rate=args.rate or None, tier=args.tier,
                              heartbeat_interval=args.heartbeat,
                              stale_after_ms=args.stale_after_ms, faults=list(args.fault))
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        serve_forever(config)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return EXIT_OK


# ── record / replay ──────────────────────────────────────────────────────────────────────────────


async def cmd_record(args: argparse.Namespace) -> int:
    """``parsec-fast record``."""
    out = Path(args.out)
    if out.exists() and not args.append:
        raise CliError(f"{out} exists (use --append to add to it, or choose another file)",
                       EXIT_USAGE)
    if out.parent and not out.parent.exists():
        raise CliError(f"directory {out.parent} does not exist", EXIT_USAGE)

    async def session(url: str, markets: list[tuple[str, str]], key: str | None) -> dict[str, Any]:
        client = await open_client(url, markets, depth=args.depth, api_key=key,
                                   terminal_token=args.terminal_token if not key else None,
                                   record_path=str(out))
        start = time.monotonic()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            try:
                await asyncio.wait_for(stop.wait(), args.seconds)
            except asyncio.TimeoutError:
                pass
            m = client.metrics
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await client.close()
        return {"seconds": time.monotonic() - start, "frames": m.frames, "bytes": m.bytes,
                "deltas": m.deltas_applied, "snapshots": m.snapshots}

    if args.source == "local":
        from .server import LocalServer, ServerConfig

        specs = demo_markets(args.local_markets, 0)
        markets = args.markets or [(s.parsec_id, s.outcomes[0]) for s in specs[:5]]
        async with LocalServer(ServerConfig(markets=specs, rate=args.rate)) as srv:
            stats = await session(srv.url, markets, "record")
    else:
        if not args.markets:
            raise CliError("give at least one MARKET to record from a remote server", EXIT_USAGE)
        key = args.api_key or (None if args.terminal_token else os.environ.get("PARSEC_API_KEY"))
        if not key and not args.terminal_token:
            raise CliError("no credential: give --api-key, --terminal-token or set "
                           "PARSEC_API_KEY", EXIT_USAGE)
        stats = await session(args.source, args.markets, key)
    print(f"recorded {stats['frames']:,} frames ({stats['bytes']:,} bytes; {stats['snapshots']} "
          f"snapshots, {stats['deltas']:,} deltas) in {stats['seconds']:.1f} s to {out}",
          flush=True)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """``parsec-fast replay``."""
    from .recording import Replayer

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        replayer = Replayer(path, parser=args.parser)
        # A recording ends with the client's disconnect, which invalidates every book: count
        # the books that were valid up to that point.
        valid_books: set[tuple[str, str]] = set()

        def on_state(sub: Any, what: str, reason: str) -> None:
            key = (sub.parsec_id, sub.outcome)
            if what == "recovered":
                valid_books.add(key)
            elif what == "invalid" and reason != "disconnected":
                valid_books.discard(key)

        replayer.handler.on_book_state = on_state
        stats = replayer.run(speed=None if args.fast else args.speed)
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None
    subs = replayer.handler.subscriptions()
    valid = sum(1 for s in subs if (s.parsec_id, s.outcome) in valid_books)
    h = stats.handler_stats
    result = {"frames": stats.frames, "bytes": stats.bytes, "elapsed_s": stats.elapsed_s,
              "frames_per_s": stats.frames_per_s, "recorded_span_s": stats.recorded_span_s,
              "snapshots": h.get("snapshots", 0), "deltas_applied": h.get("deltas_applied", 0),
              "gaps": h.get("gaps", 0), "rejected": h.get("rejected", 0),
              "protocol_errors": h.get("protocol_errors", 0), "books": len(subs),
              "books_valid": valid, "truncated": stats.truncated, "corrupt": stats.corrupt,
              "error": stats.error, "parser": replayer.handler.parser}
    print(f"replayed {stats.frames:,} frames ({stats.bytes:,} bytes, {stats.recorded_span_s:.1f} s "
          f"recorded) in {stats.elapsed_s:.3f} s = {stats.frames_per_s:,.0f} frames/s "
          f"[{result['parser']}]; snapshots {result['snapshots']}, deltas applied "
          f"{result['deltas_applied']:,}, gaps {result['gaps']}, rejected {result['rejected']}; "
          f"books valid at the end of the session {valid}/{len(subs)}", flush=True)
    if stats.error:
        print(f"warning: {stats.error} (the records before it were replayed)", file=sys.stderr)
    if args.json_summary:
        text = json.dumps(result, indent=2)
        if args.json_summary == "-":
            print(text)
        else:
            Path(args.json_summary).write_text(text + "\n")
    return EXIT_OK


# ── bench ────────────────────────────────────────────────────────────────────────────────────────

#: Suite name → (script in bench/, one-line description).
SUITES: dict[str, tuple[str, str]] = {
    "book": ("bench_book.py", "book apply (ns/delta)"),
    "parse": ("bench_parse.py", "parse + apply (ns/frame)"),
    "e2e": ("bench_e2e.py", "end to end over loopback (deltas/s)"),
    "memory": ("bench_memory.py", "memory and scale (RSS)"),
}


def find_bench_dir() -> Path | None:
    """The source checkout's ``bench/`` (next to ``src/``), or ``./bench``."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "bench", Path.cwd() / "bench"):
        if (candidate / "bench_book.py").is_file():
            return candidate
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    """``parsec-fast bench``."""
    from . import benchreport

    bench_dir = find_bench_dir()
    if bench_dir is None:
        raise CliError("bench/ scripts not found: run from a source checkout of parsec_fast")
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise CliError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}", EXIT_USAGE)
    out_dir = Path(args.out) if args.out else bench_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        try:
            combined = json.loads((out_dir / "results.json").read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"--report-only needs {out_dir / 'results.json'}: {exc}") from None
        _report(combined, bench_dir, out_dir, update=True)
        return EXIT_OK
    pin = [] if args.pin is None else ["taskset", "-c", str(args.pin)]
    results: dict[str, Any] = {}
    commands: dict[str, str] = {}

    def run_suite(name: str) -> None:
        script, _ = SUITES[name]
        path = bench_dir / script
        json_path = out_dir / f"{name}.json"
        if not path.is_file():
            results[name] = {"not_run": f"bench/{script} not found"}
            return
        cmd = [sys.executable, str(path), "--json", str(json_path)]
        if args.quick:
            cmd.append("--quick")
        if name != "e2e":  # e2e pins its own client and server processes
            cmd = pin + cmd
        commands[name] = " ".join(cmd)
        with open(out_dir / f"{name}.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=bench_dir.parent)
        if proc.returncode != 0:
            tail = (out_dir / f"{name}.log").read_text().strip().splitlines()[-3:]
            results[name] = {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
            return
        try:
            results[name] = json.loads(json_path.read_text())
        except (OSError, ValueError) as exc:
            results[name] = {"error": f"bad JSON from {script}: {exc}"}

    if sys.stdout.isatty():
        from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} suites"),
                      TimeElapsedColumn()) as progress:
            task = progress.add_task("benchmarks", total=len(suites))
            for name in suites:
                progress.update(task, description=f"{name}: {SUITES[name][1]}")
                run_suite(name)
                progress.advance(task)
    else:
        for i, name in enumerate(suites, 1):
            print(f"[{i}/{len(suites)}] {name}: {SUITES[name][1]} ...", flush=True)
            t0 = time.monotonic()
            run_suite(name)
            r = results[name]
            status = "error: " + r["error"] if "error" in r else \
                "not run: " + r["not_run"] if "not_run" in r else "ok"
            print(f"[{i}/{len(suites)}] {name}: {status} ({time.monotonic() - t0:.1f} s)",
                  flush=True)
    combined = {"meta": benchreport.machine(), "quick": args.quick, "commands": commands,
                "argv": "parsec-fast " + " ".join(args.argv), "suites": results}
    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(combined, indent=2) + "\n")
    print(f"wrote {results_path}")
    _report(combined, bench_dir, out_dir, update=args.update_results)
    failed = [n for n, r in results.items() if "error" in r]
    if failed:
        print(f"error: suite(s) failed: {', '.join(failed)} (see {out_dir}/<suite>.log)",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _report(combined: dict[str, Any], bench_dir: Path, out_dir: Path, *, update: bool) -> None:
    """Chart, headline and (``update``) bench/RESULTS.md + bench/results.png."""
    from . import benchreport

    chart = out_dir / "results.png"
    note = benchreport.render_chart(combined, chart)
    print(note or f"wrote {chart}")
    for line in benchreport.headline(combined):
        print(line)
    if update:
        md = bench_dir / "RESULTS.md"
        png = bench_dir / "results.png"
        if note is None:
            png.write_bytes(chart.read_bytes())
        notes_path = bench_dir / "results_notes.md"
        notes = notes_path.read_text() if notes_path.is_file() else ""
        md.write_text(benchreport.results_markdown(combined, has_chart=note is None, notes=notes))
        print(f"wrote {md}" + ("" if note else f" and {png}"))


# ── argument parsing ─────────────────────────────────────────────────────────────────────────────


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value
    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="parsec-fast", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"parsec-fast {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description, epilog=EPILOG,
                              formatter_class=fmt)

    view_opts = argparse.ArgumentParser(add_help=False)
    view_opts.add_argument("--seconds", type=_positive(float), default=None,
                           help="stop after N seconds (default: until Ctrl-C)")
    view_opts.add_argument("--parser", choices=("native", "orjson"), default="native",
                           help="frame parser (default native)")
    view_opts.add_argument("--rows", type=_positive(int), default=12,
                           help="markets shown, busiest first (default 12)")
    view_opts.add_argument("--json-summary", metavar="PATH",
                           help="also write the end summary as JSON ('-' = stdout)")

    d = add("demo", "local server + engine + live view, with faults injected",
            "Start the local server in-process with simulated kalshi/polymarket markets, connect "
            "the engine and show a live view; inject a fault every few seconds (gap, "
            "resync_required, needs_refresh, dropped connection, stall) so recovery can be "
            "seen. Ends on Ctrl-C or after --seconds with a summary. Without a terminal it "
            "prints one plain line per second.")
    d.add_argument("--markets", type=_positive(int), default=36,
                   help="simulated markets (default 36)")
    d.add_argument("--rate", type=_positive(float), default=2000.0,
                   help="simulator events/s over all markets (default 2000)")
    d.add_argument("--depth", type=_positive(int), default=50, help="levels per side (default 50)")
    d.add_argument("--no-faults", action="store_true", help="do not inject faults")
    d.add_argument("--fault-every", type=_positive(float), default=4.0,
                   help="seconds between faults (default 4; the first comes at 0.8 s)")
    d.add_argument("--seed", type=int, default=0, help="simulator seed")
    for action in view_opts._actions:
        d._add_action(action)
    d.set_defaults(func=cmd_demo, is_async=True)

    w = add("watch", "live view of markets on any server",
            "Connect to a Parsec server (the real service by default), subscribe MARKETs and show "
            "the live view. MARKET is EXCHANGE:MARKET_ID[/OUTCOME] (outcome defaults to Yes).")
    w.add_argument("markets", nargs="+", type=parse_market, metavar="MARKET")
    w.add_argument("--url", default="wss://api.parsecapi.com/ws",
                   help="server URL (ws://, wss://, or an http(s) REST base)")
    w.add_argument("--api-key", help="API key (default: $PARSEC_API_KEY)")
    w.add_argument("--terminal-token", help="authenticate with a terminal token instead")
    w.add_argument("--depth", type=_positive(int), default=None,
                   help="levels per side (default: the server's, 50)")
    for action in view_opts._actions:
        w._add_action(action)
    w.set_defaults(func=cmd_watch, is_async=True)

    s = add("serve", "run the local Parsec-compatible server",
            "Run the local server until Ctrl-C; it prints its URL. Any non-empty key is "
            "accepted except keys starting with 'bad'.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    s.add_argument("--markets", type=_positive(int), default=20)
    s.add_argument("--rate", type=float, default=200.0,
                   help="simulator events/s over all markets; 0 = as fast as possible")
    s.add_argument("--tier", choices=("free", "pro", "scale"), default="pro")
    s.add_argument("--heartbeat", type=_positive(float), default=5.0, help="seconds")
    s.add_argument("--stale-after-ms", type=_positive(int), default=5000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help='fault spec, repeatable: "gap@2.0", "stall:3/kalshi:KXSIM-0000@5", '
                        '"close@10", "random@5"')
    s.set_defaults(func=cmd_serve, is_async=False)

    r = add("record", "record the raw frames of a session",
            "Connect to SOURCE (a URL, or 'local' for an in-process local server), subscribe "
            "MARKETs and record every received frame to --out until --seconds or Ctrl-C.")
    r.add_argument("source", metavar="URL|local")
    r.add_argument("markets", nargs="*", type=parse_market, metavar="MARKET")
    r.add_argument("--out", required=True, help="recording file to write")
    r.add_argument("--append", action="store_true", help="append to an existing recording")
    r.add_argument("--seconds", type=_positive(float), default=10.0, help="default 10")
    r.add_argument("--api-key", help="API key (default: $PARSEC_API_KEY; not needed for local)")
    r.add_argument("--terminal-token")
    r.add_argument("--depth", type=_positive(int), default=None)
    r.add_argument("--rate", type=_positive(float), default=1000.0,
                   help="local only: simulator events/s (default 1000)")
    r.add_argument("--local-markets", type=_positive(int), default=12, help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_record, is_async=True)

    y = add("replay", "replay a recording through the feed handler and print stats",
            "Feed a recording through the same compiled feed handler the client uses, as fast "
            "as possible (--fast, the default) or paced (--speed X, 1 = recorded pace).")
    y.add_argument("file")
    pace = y.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=_positive(float), default=None,
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``parsec-fast`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    args.argv = argv
    library_log = logging.getLogger("parsec_fast")
    saved_level = library_log.level
    if not os.environ.get("PARSEC_FAST_DEBUG"):
        # The view and the summary report what the library logs as warnings. Restored on the
        # way out: main() is also called in-process (tests, embedding).
        library_log.setLevel(logging.ERROR)
    try:
        return _dispatch(args)
    finally:
        library_log.setLevel(saved_level)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the chosen subcommand; expected failures become one line and an exit code."""
    try:
        if args.is_async:
            from .client import run

            return int(run(args.func(args)))
        return int(args.func(args))
    except CliError as exc:
        print(f"parsec-fast {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except AuthenticationError as exc:  # refused on a reconnect, after the first auth_ok
        print(f"parsec-fast {args.command}: error: authentication failed: {exc.message}",
              file=sys.stderr)
        return EXIT_AUTH
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # unexpected: one line, and the type for a bug report
        print(f"parsec-fast {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("PARSEC_FAST_DEBUG"):
            raise
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
