"""Helpers of the client end-to-end tests: short-interval configs, settling a session, and
comparing the client's books with what the server's recorder says a correct client holds."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from parsec_fast.client import Client
from parsec_fast.server import LocalServer, ServerConfig, expected_books
from parsec_fast.server.simulator import MarketSpec

#: Short timings so a scenario takes about a second.
SERVER_DEFAULTS: dict[str, Any] = dict(markets=8, rate=400.0, heartbeat_interval=0.2, record=True,
                                       seed=7, stale_after_ms=5000, wallet_interval=0)
CLIENT_DEFAULTS: dict[str, Any] = dict(heartbeat_interval=0.2, dead_after=3.0,
                                       backoff_initial=0.05, backoff_max=0.2, auth_timeout=1.0,
                                       connect_timeout=2.0, open_timeout=5.0,
                                       request_timeout=2.0, stale_check_interval=0.05)


def server_config(**overrides: Any) -> ServerConfig:
    """A recording server config with short timings."""
    return ServerConfig(**{**SERVER_DEFAULTS, **overrides})


def make_client(srv: LocalServer, **overrides: Any) -> Client:
    """A client for ``srv`` with short timings."""
    kwargs = {**CLIENT_DEFAULTS, **overrides}
    api_key = kwargs.pop("api_key", "demo")
    return Client(srv.url, api_key=api_key, **kwargs)


def selectors(srv: LocalServer, n: int | None = None) -> list[dict[str, str]]:
    """One selector per market (first outcome), sorted by parsec_id."""
    specs: list[MarketSpec] = [srv.simulator.spec(p) for p in sorted(srv.simulator.markets)]
    return [{"parsec_id": s.parsec_id, "outcome": s.outcomes[0]} for s in specs[:n]]


async def quiesce(client: Client, srv: LocalServer, timeout: float = 5.0) -> list[bytes]:
    """Pause the live stream and wait until the client has read every frame the server sent on
    the current connection; return those frames."""
    srv.pause_stream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        conns = [c for c in srv.connections if c.authenticated]
        if conns and client.connected:
            record = conns[-1].record
            assert record is not None, "server must record (record=True)"
            await asyncio.sleep(0.05)
            if client.connection_frames == len(record.frames):
                return list(record.frames)
        if loop.time() > deadline:
            raise AssertionError(f"client did not catch up: {client.connection_frames} frames read, "
                                 f"server sent {len(record.frames) if conns else '?'}")
        await asyncio.sleep(0.02)


def check_books(client: Client, frames: Iterable[bytes], *, shared: bool = True,
                require_valid: bool = True) -> int:
    """Every subscribed book the client holds as valid equals the book a correct client holds
    after ``frames`` (levels and seq); with ``require_valid`` every book must be valid.
    Returns the number of valid books checked."""
    expected = expected_books(frames, shared_seq=shared)
    checked = 0
    for sub in client.subscriptions():
        book = sub.book
        exp = expected.get((sub.parsec_id, sub.outcome))
        if require_valid:
            assert book.is_valid, f"{sub.parsec_id}/{sub.outcome} invalid: {sub.why_not()}"
        if not book.is_valid:
            continue
        assert exp is not None, f"{sub.parsec_id}/{sub.outcome}: valid without a snapshot"
        assert exp.valid, f"{sub.parsec_id}/{sub.outcome}: valid but a correct client is not"
        assert book.seq == exp.seq, f"{sub.parsec_id}: seq {book.seq} != {exp.seq}"
        assert book.bids() == exp.bid_levels(), f"{sub.parsec_id}: bids differ"
        assert book.asks() == exp.ask_levels(), f"{sub.parsec_id}: asks differ"
        checked += 1
    return checked


async def settle_and_check(client: Client, srv: LocalServer, *, shared: bool = True,
                           timeout: float = 8.0) -> list[bytes]:
    """Wait until every book is valid, pause the stream, catch up, then check every book."""
    await client.wait_ready(timeout)
    frames = await quiesce(client, srv, timeout)
    await client.wait_ready(timeout)   # a resync may have been in flight at the pause
    frames = await quiesce(client, srv, timeout)
    check_books(client, frames, shared=shared)
    return frames


def assert_control_rate(client: Client, rate: int = 3, window: float = 1.0) -> None:
    """No ``rate + 1`` control messages inside any ``window`` seconds (client send times)."""
    times = [t for t, _ in client.control_log]
    for i in range(len(times) - rate):
        span = times[i + rate] - times[i]
        assert span >= window, f"{rate + 1} control messages within {span:.3f} s: {times[i:i + rate + 1]}"


async def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until true; AssertionError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class ThreadedServer:
    """A LocalServer on its own event loop in a thread, so that a client blocking its own loop
    really stops reading while the server keeps writing (in-process servers share the loop).
    Only read its state, and call ``pause_stream``/``resume_stream`` (flags), from the test."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._ready = threading.Event()
        self.srv: LocalServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with LocalServer(self.config) as srv:
                self.srv = srv
                self._ready.set()
                await self._stop.wait()
        asyncio.run(body())

    def __enter__(self) -> LocalServer:
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(5) or self.srv is None:
            raise RuntimeError("threaded server did not start")
        return self.srv

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
