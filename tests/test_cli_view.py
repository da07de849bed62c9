"""The live view laid out for a terminal's size: it fits, and never cuts a price.

Rendered with rich's Console at 80x24 and other sizes from a real client on the local server,
with two markets stalled (not trustworthy: they must be shown, with a short reason)."""
from __future__ import annotations

import asyncio
import io
import re

import pytest
from rich.console import Console

from parsec_fast import Subscription
from parsec_fast.cli.connect import open_client
from parsec_fast.cli.demo import demo_markets
from parsec_fast.cli.monitor import SessionMonitor
from parsec_fast.cli.view import format_number, render_view, state_label
from parsec_fast.server import LocalServer, ServerConfig

pytestmark = pytest.mark.timeout(60)

SIZES = [(80, 24), (60, 20), (40, 12), (100, 30), (120, 40), (200, 60)]
_NUMBER = re.compile(r"\d")


def _screen(monitor: SessionMonitor, width: int, height: int) -> list[str]:
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      color_system=None)
    console.print(render_view(monitor, width, height))
    return console.export_text().rstrip("\n").split("\n")


async def test_view_fits_every_size_and_never_cuts_a_price() -> None:
    specs = demo_markets(24, 0)
    config = ServerConfig(markets=specs, rate=1500.0, heartbeat_interval=1.0,
                          stale_after_ms=500)
    async with LocalServer(config) as srv:
        markets = [(s.parsec_id, o) for s in specs
                   for o in (s.outcomes if s.categorical else ("Yes",))]
        client = await open_client(srv.url, markets, depth=50, api_key="demo",
                                   heartbeat_interval=1.0)
        try:
            monitor = SessionMonitor(client, f"parsec-fast demo: {len(markets)} books on "
                                             f"{srv.url}")
            for _ in range(4):
                await asyncio.sleep(0.25)
                monitor.sample()
            stalled = {specs[0].parsec_id, specs[1].parsec_id}
            for pid in stalled:
                srv.faults.stall(pid, 10.0)
            for _ in range(40):  # until the server calls them stale (bounded: 4 s)
                await asyncio.sleep(0.1)
                if all(not s.trustworthy for s in client.subscriptions()
                       if s.parsec_id in stalled):
                    break
            monitor.sample()
            # No await from here on: the books cannot change while the screens are checked.
            subs: dict[str, list[Subscription]] = {}
            for sub in client.subscriptions():
                subs.setdefault(sub.parsec_id, []).append(sub)
            for width, height in SIZES:
                lines = _screen(monitor, width, height)
                where = f"at {width}x{height}:\n" + "\n".join(lines)
                assert len(lines) <= height, where
                assert max(len(line) for line in lines) <= width, where
                header = next(i for i, line in enumerate(lines) if line.startswith("market"))
                names = lines[header].split()
                assert {"market", "bid", "ask"} <= set(names), where
                rule = next(i for i, line in enumerate(lines) if line.startswith("── events"))
                rows = lines[header + 1:rule]
                assert rows, where
                for row in rows:
                    # Only the market id (first) and the state (prose) may be shortened.
                    cut = [t for t in row.split()[1:] if "…" in t and _NUMBER.search(t)]
                    assert not cut, f"{cut} {where}"
                    cells = row.split()
                    if cells[0] in subs:  # the id is whole: the prices are one of its books'
                        assert any(format_number(b.book.best_bid_price) in cells
                                   and format_number(b.book.best_ask_price) in cells
                                   for b in subs[cells[0]]), where
                if width >= 60:  # the stalled books are shown, with their short reason
                    for pid in stalled:
                        stalled_row = next((r for r in rows if r.startswith(pid)), None)
                        assert stalled_row is not None, where
                        assert stalled_row.rstrip().endswith(state_label(subs[pid][0])), where
        finally:
            await client.close()
