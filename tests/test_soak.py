"""Soak: the server and the client under random faults and floods for N minutes, reporting RSS
and book correctness at every checkpoint. Off unless asked for (not in CI):

    python -m pytest tests/test_soak.py --soak 10 -s

Faults: a random one about every 0.5 s (gap, duplicate, reorder, resync_required, needs_refresh,
stall, degraded feed) plus an abrupt close every ~20 s. Floods, all the time: a peer that sends
garbage and never reads, and a peer that subscribes to everything and never reads. At every
checkpoint (~every 15 s) the stream pauses, the client settles, and each of its books must equal
the server's book at the subscribed depth; RSS is sampled there. The run fails if a book is wrong,
if a book does not recover, or if RSS keeps growing (last third above the first third by more
than 64 MB).
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson
import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_connect

from client_helpers import make_client
from parsec_fast.server import LocalServer, ServerConfig


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Peer(WSListener):
    """A client that never reads its socket (frames it is sent pile up on the server side)."""

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.underlying_transport.pause_reading()


async def _garbage_flood(url: str, stop: asyncio.Event) -> None:
    rng = random.Random(1)
    while not stop.is_set():
        try:
            transport, peer = await ws_connect(_Peer, url)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            for _ in range(100_000):
                if stop.is_set() or transport.is_disconnected:
                    break
                transport.send(WSMsgType.TEXT, bytes(rng.getrandbits(8) for _ in range(64)))
                await asyncio.sleep(0.0005)
        finally:
            transport.disconnect(graceful=False)


async def _non_reader(url: str, markets: list[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            transport, peer = await ws_connect(_Peer, url)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        transport.send(WSMsgType.TEXT, orjson.dumps({"type": "auth", "api_key": "soak"}))
        transport.send(WSMsgType.TEXT, orjson.dumps(
            {"type": "subscribe", "markets": [{"parsec_id": m} for m in markets]}))
        while not stop.is_set() and not transport.is_disconnected:
            await asyncio.sleep(0.2)
        transport.disconnect(graceful=False)


def _check_books(client: Any, srv: LocalServer) -> int:
    checked = 0
    for sub in client.subscriptions():
        assert sub.book.is_valid, f"{sub.parsec_id}: {sub.why_not()}"
        truth = srv.simulator.book(sub.parsec_id, sub.outcome)
        assert [list(lv) for lv in sub.book.bids()] == truth.top("bid", 20), sub.parsec_id
        assert [list(lv) for lv in sub.book.asks()] == truth.top("ask", 20), sub.parsec_id
        checked += 1
    return checked


async def _soak(minutes: float) -> None:
    config = ServerConfig(markets=24, rate=4000.0, seed=11, heartbeat_interval=0.5,
                          stale_after_ms=2000, faults=["random@0.5"], wallet_interval=0)
    async with LocalServer(config) as srv:
        markets = sorted(srv.simulator.markets)
        binary = [m for m in markets if not srv.simulator.spec(m).categorical]
        stop = asyncio.Event()
        floods = [asyncio.ensure_future(_garbage_flood(srv.url, stop)),
                  asyncio.ensure_future(_non_reader(srv.url, binary, stop))]
        async with make_client(srv, backoff_initial=0.05, backoff_max=0.5,
                               request_timeout=3.0) as client:
            await client.subscribe(binary, depth=20, timeout=20)
            deadline = time.monotonic() + minutes * 60
            rss: list[float] = []
            next_close = time.monotonic() + 20
            round_no = 0
            while time.monotonic() < deadline:
                await asyncio.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
                if time.monotonic() > next_close:
                    srv.faults.close_all_abruptly()
                    next_close = time.monotonic() + 20
                # Checkpoint: no new faults or updates; let the client settle; compare.
                srv.pause_stream()
                srv.faults.feed_healthy()
                for _ in range(6):
                    await asyncio.sleep(0.5)
                    try:
                        await client.wait_ready(10)
                    except TimeoutError:
                        continue
                    frames = client.metrics.frames
                    await asyncio.sleep(0.3)
                    if client.metrics.frames == frames and all(
                            s.book.is_valid for s in client.subscriptions()):
                        break
                checked = _check_books(client, srv)
                rss.append(_rss_mb())
                round_no += 1
                m = client.metrics
                print(f"soak round {round_no}: {checked} books correct; RSS {rss[-1]:.1f} MB; "
                      f"frames {m.frames:,}, gaps {m.gaps}, resyncs {m.resyncs_sent}, "
                      f"reconnects {m.reconnects}, faults {len(srv.faults.log)}", flush=True)
                srv.resume_stream()
            stop.set()
            for task in floods:
                task.cancel()
            await asyncio.gather(*floods, return_exceptions=True)
            assert round_no >= 1
            third = max(1, len(rss) // 3)
            first, last = rss[:third], rss[-third:]
            assert max(last) - max(first) < 64, f"RSS keeps growing: {rss}"


@pytest.mark.timeout(0)  # bounded by --soak below
def test_soak(request: pytest.FixtureRequest) -> None:
    minutes = request.config.getoption("--soak")
    if not minutes:
        pytest.skip("soak runs only with --soak MINUTES")
    asyncio.run(asyncio.wait_for(_soak(minutes), minutes * 60 + 300))
