"""The live terminal view of ``demo`` and ``watch``, laid out for the terminal's size.

Every refresh is laid out for the current width and height: numbers are never cut. When the
table is too wide, whole columns go, least useful first (upd/s, seq, the sizes, outcome), then
the two text columns (state, then market) are shortened with ``…``; when it is too tall, fewer
books are shown (the busiest, plus books that are not trustworthy: recovery is the point of the
demo) and fewer event lines. Readable down to about 40x12. Without a terminal the view is one
plain status line per interval.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .monitor import SessionMonitor, SessionSummary, format_us
from .signals import StopSignals

if TYPE_CHECKING:
    from rich.text import Text

    from .._feed import Subscription

__all__ = ["render_view", "run_view", "print_summary", "format_number", "state_label",
           "Column", "COLUMNS", "DROP_ORDER"]

#: Columns between two table columns.
_GAP = 2
#: Event lines kept on screen even when books need the room.
_MIN_EVENT_LINES = 3


def format_number(x: float) -> str:
    """A price or size as the view shows it (``-`` for an empty side): 4 significant digits
    below 1, else 2 decimals with thousands separators."""
    if x != x:  # NaN: empty side
        return "-"
    return f"{x:,.4g}" if x < 1 else f"{x:,.2f}"


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the books table: its header and which side its cells hug."""

    name: str
    justify: Literal["left", "right"]


#: The table's columns, in display order.
COLUMNS: tuple[Column, ...] = (
    Column("market", "left"), Column("outcome", "left"), Column("seq", "right"),
    Column("upd/s", "right"), Column("bid size", "right"), Column("bid", "right"),
    Column("ask", "right"), Column("ask size", "right"), Column("state", "left"))
#: Columns dropped, in this order, while the table is too wide; market, bid and ask stay.
DROP_ORDER: tuple[str, ...] = ("upd/s", "seq", "ask size", "bid size", "outcome")
#: The layouts tried, in order, until one fits: (columns dropped, shortest widths the text
#: columns may be cut to). The state's reason is cut before a column goes; the market id
#: only once every optional column is gone.
_LAYOUTS: tuple[tuple[tuple[str, ...], dict[str, int]], ...] = (
    *((DROP_ORDER[:k], {"state": 16}) for k in range(len(DROP_ORDER) + 1)),
    (DROP_ORDER, {"state": 6, "market": 10}),
    ((*DROP_ORDER, "state"), {"market": 8}),
)


def state_label(sub: Subscription) -> str:
    """The state column: ``ok``, or why the book is not trustworthy in a few words (the full
    sentence is ``sub.why_not()``)."""
    if sub.trustworthy:
        return "ok"
    if not sub.book.is_valid:
        return f"invalid: {sub.invalid_reason or 'no snapshot'}"
    if sub.book_state != "fresh":
        return f"server: {sub.book_state}"
    if sub.locally_stale:
        return "stale: no frames"
    if sub.feed_state != "healthy":
        return f"venue: {sub.feed_state}"
    return sub.why_not() or "not trustworthy"


def _cells(sub: Subscription, monitor: SessionMonitor) -> dict[str, str]:
    book = sub.book
    return {"market": sub.parsec_id, "outcome": sub.outcome,
            "seq": "-" if book.seq is None else str(book.seq),
            "upd/s": f"{monitor.busy.get((sub.parsec_id, sub.outcome), 0.0):.0f}",
            "bid size": format_number(book.best_bid_size),
            "bid": format_number(book.best_bid_price),
            "ask": format_number(book.best_ask_price),
            "ask size": format_number(book.best_ask_size),
            "state": state_label(sub)}


def _shorten(text: str, width: int, *, middle: bool) -> str:
    """``text`` in ``width`` columns: cut in the middle (ids: both ends tell) or at the end."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if not middle:
        return text[:width - 1] + "…"
    head = (width - 1) // 3
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def _fit(rows: Sequence[dict[str, str]], width: int) -> list[tuple[Column, int]]:
    """The columns shown in ``width`` and the width of each (the first of :data:`_LAYOUTS`
    that fits; past the last, the line is cropped at the terminal's edge)."""
    natural = {c.name: max([len(c.name)] + [len(r[c.name]) for r in rows]) for c in COLUMNS}
    layout: list[tuple[Column, int]] = []
    for dropped, shortest in _LAYOUTS:
        shown = [c for c in COLUMNS if c.name not in dropped]
        widths = {c.name: natural[c.name] for c in shown}
        excess = sum(widths.values()) + _GAP * (len(shown) - 1) - width
        for name, least in shortest.items():
            if name in widths and excess > 0:
                cut = max(0, min(excess, widths[name] - least))
                widths[name] -= cut
                excess -= cut
        layout = [(c, widths[c.name]) for c in shown]
        if excess <= 0:
            break
    return layout


def _pack(items: Sequence[str], width: int) -> list[str]:
    """``items`` joined by three spaces into lines of at most ``width`` (an item is never
    split; one longer than ``width`` gets a line of its own)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 3 + len(item) <= width:
            lines[-1] += "   " + item
        else:
            lines.append(item)
    return lines


def _pick_books(monitor: SessionMonitor, count: int) -> list[Subscription]:
    """The ``count`` books to show: the busiest, plus up to a third not trustworthy."""
    subs = monitor.client.subscriptions()
    ranked = sorted(subs, key=lambda s: (-monitor.busy.get((s.parsec_id, s.outcome), 0.0),
                                         s.parsec_id, s.outcome))
    untrusted = [s for s in ranked[count:] if not s.trustworthy][:max(1, count // 3)]
    return ranked[:max(0, count - len(untrusted))] + untrusted


def render_view(monitor: SessionMonitor, width: int, height: int, rows: int = 12) -> Text:
    """The whole view for a ``width`` x ``height`` terminal, at most ``rows`` books."""
    from rich.text import Text

    m = monitor.client.metrics
    subs = monitor.client.subscriptions()
    valid = sum(1 for s in subs if s.book.is_valid)
    trusted = sum(1 for s in subs if s.trustworthy)
    title = _shorten(f"{monitor.title} — {monitor.elapsed:.0f} s", width, middle=False)
    stats = _pack([f"msg/s {monitor.frames_per_s:,.0f}", f"deltas/s {monitor.deltas_per_s:,.0f}",
                   f"frames {m.frames:,}", f"deltas applied {m.deltas_applied:,}",
                   f"latency p50 {format_us(m.latency_p50_us)}",
                   f"p90 {format_us(m.latency_p90_us)}", f"p99 {format_us(m.latency_p99_us)}",
                   f"parser {monitor.client.feed_handler.parser}", f"gaps {m.gaps}",
                   f"resyncs {m.resyncs_sent} (+{m.coalesced_resyncs} coalesced)",
                   f"reconnects {m.reconnects}",
                   f"books {valid}/{len(subs)} valid, {trusted} trustworthy"], width)
    if len(stats) > 2 and height < 20:  # a short terminal: the figures that show recovery
        stats = _pack([f"msg/s {monitor.frames_per_s:,.0f}",
                       f"p99 {format_us(m.latency_p99_us)}", f"gaps {m.gaps}",
                       f"resyncs {m.resyncs_sent + m.coalesced_resyncs}",
                       f"reconnects {m.reconnects}",
                       f"valid {valid}/{len(subs)}", f"trusted {trusted}"], width)
    fixed = 1 + len(stats) + 1 + 1  # title, stats, table header, events title
    room = max(0, height - fixed)
    books = _pick_books(monitor, min(rows, len(subs), max(1, room - _MIN_EVENT_LINES)))
    events = list(monitor.log)[-max(1, room - len(books)):] or ["(no events yet)"]

    cells = [_cells(s, monitor) for s in books]
    columns = _fit(cells, width)
    out = Text(no_wrap=True, overflow="crop", end="")
    out.append(title + "\n", style="bold")
    for line in stats:
        out.append(line + "\n")

    def table_line(values: dict[str, str], header: bool = False) -> None:
        for i, (col, w) in enumerate(columns):
            value = values[col.name]
            text = _shorten(value, w, middle=col.name == "market")
            text = text.ljust(w) if col.justify == "left" else text.rjust(w)
            style = ""
            if header:
                style = "bold"
            elif col.name == "state":
                style = "green" if value == "ok" else "red"
            out.append(text if i == 0 else " " * _GAP + text, style=style)
        out.append("\n")

    table_line({c.name: c.name for c, _ in columns}, header=True)
    for row in cells:
        table_line(row)
    rule = f"── events ({len(books)} of {len(subs)} books shown, busiest first) "
    if len(rule) > width:
        rule = f"── events ({len(books)}/{len(subs)} books) "
    out.append(rule.ljust(width, "─")[:width] + "\n", style="dim")
    out.append("\n".join(_shorten(e, width, middle=False) for e in events))
    return out


async def run_view(monitor: SessionMonitor, seconds: float | None, stop: StopSignals, *,
                   rows: int = 12, interval: float = 1.0,
                   tick: Callable[[float], None] | None = None,
                   plain: bool | None = None) -> None:
    """Show the view until ``seconds`` pass or a stop signal; ``tick(elapsed)`` is called
    every 0.25 s (the demo injects faults from it). ``plain``: one status line per
    ``interval`` (default when stdout is not a terminal). Raises the client's fatal error."""
    if plain is None:
        plain = not sys.stdout.isatty()
    live = None
    if not plain:
        from rich.console import Console
        from rich.live import Live

        console = Console()
        live = Live(console=console, auto_refresh=False, transient=False)
        live.start()

    def draw() -> None:
        if live is not None:
            w, h = live.console.size
            live.update(render_view(monitor, w, h, rows), refresh=True)

    start = last_line = time.monotonic()
    try:
        while stop.received is None:
            elapsed = time.monotonic() - start
            if seconds is not None and elapsed >= seconds:
                break
            fatal = monitor.client.fatal_error
            if fatal is not None:  # e.g. auth failed on a reconnect
                raise fatal
            if tick is not None:
                tick(elapsed)
            monitor.sample()
            draw()
            if live is None and time.monotonic() - last_line >= interval:
                last_line = time.monotonic()
                print(monitor.status_line(), flush=True)
            await stop.wait(0.25)
    finally:
        if live is not None:
            draw()
            live.stop()


def print_summary(summary: SessionSummary, json_path: str | None) -> None:
    """Print the end-of-session summary; also write it as JSON (``-`` = stdout)."""
    s = summary
    print(f"summary: {s['seconds']:.1f} s, {s['frames']:,} frames, {s['snapshots']:,} snapshots, "
          f"{s['deltas_applied']:,} deltas applied; gaps {s['gaps']}, resyncs "
          f"{s['resyncs_sent']} (+{s['coalesced_resyncs']} coalesced), reconnects "
          f"{s['reconnects']}, recoveries {s['recoveries']}; books valid at the end "
          f"{s['books_valid']}/{s['books']}; latency p50 {format_us(s['latency_p50_us'])}, "
          f"p99 {format_us(s['latency_p99_us'])}", flush=True)
    if s["faults_injected"]:
        print(f"faults injected: {', '.join(s['faults_injected'])}", flush=True)
    if json_path:
        text = json.dumps(summary, indent=2)
        if json_path == "-":
            print(text, flush=True)
        else:
            Path(json_path).write_text(text + "\n")
