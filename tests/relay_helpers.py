"""Helpers of the relay tests: a real ``nats-server`` on a free loopback port, relays and
consumers with short timings, and the oracle that checks that no consumer ever reports a book
valid that differs from the relay's book at the same seq."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest

from client_helpers import CLIENT_DEFAULTS
from parsec_fast import Client
from parsec_fast.client.config import ClientConfig
from parsec_fast.relay import Relay, RelayConfig
from parsec_fast.rules import fold_outcome
from parsec_fast.server import LocalServer, ServerConfig

NATS_SERVER = shutil.which("nats-server")
needs_nats = pytest.mark.skipif(
    NATS_SERVER is None,
    reason="nats-server is not installed (apt-get install -y nats-server; .ci/run installs it)")

#: Relay timings for tests: heartbeats every 0.2 s, short leases and lingers.
RELAY_DEFAULTS: dict[str, Any] = dict(heartbeat_interval=0.2, lease_ttl=1.5,
                                      unsubscribe_linger=0.3)


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """``nats-server -a 127.0.0.1 -p PORT`` (plus a config file's ``extra`` lines), started and
    stopped by the test; :meth:`restart` keeps the port."""

    def __init__(self, extra: str = "") -> None:
        assert NATS_SERVER is not None
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self._conf: str | None = None
        fd, self.log_path = tempfile.mkstemp(suffix=".log")
        os.close(fd)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 5.0) -> NatsServer:
        cmd = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(self.port), "-l", self.log_path]
        if self.extra:
            fd, self._conf = tempfile.mkstemp(suffix=".conf")
            with os.fdopen(fd, "w") as f:
                f.write(self.extra)
            cmd += ["-c", self._conf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nats-server did not start on port {self.port}")
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._conf is not None:
            os.unlink(self._conf)
            self._conf = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        """What the server logged so far."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        os.unlink(self.log_path)


def relay_for(srv_url: str, nats_url: str, **overrides: Any) -> Relay:
    """A relay of ``srv_url`` (a LocalServer) with short timings."""
    client = dict(CLIENT_DEFAULTS)
    client.update(overrides.pop("client", {}))
    return Relay(srv_url, "demo", nats_url=nats_url,
                 config=RelayConfig(**{**RELAY_DEFAULTS, **overrides}),
                 client_config=ClientConfig(**client))


#: A consumer declares the relay dead after 3 x 0.5 s without a message (the relay beats every
#: 0.2 s): quick enough for the crash test, slack enough for a loaded CI machine.
CONSUMER_DEFAULTS: dict[str, Any] = {**CLIENT_DEFAULTS, "heartbeat_interval": 0.5,
                                     "control_rate": 20}


def consumer_for(nats_url: str, **overrides: Any) -> Client:
    """A consumer Client with short timings (and a relaxed control limiter)."""
    return Client(nats_url, api_key="consumer", **{**CONSUMER_DEFAULTS, **overrides})


Levels = tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]


class Oracle:
    """What each relay's book was at each seq, and a check on every consumer event that a book
    it reports valid is exactly that. ``violations`` must stay empty."""

    def __init__(self) -> None:
        self.history: dict[int, dict[tuple[str, str], dict[int, Levels]]] = {}
        self.violations: list[str] = []
        self.checked = 0
        self._pending: list[tuple[str, int | None, tuple[str, str], int, Levels]] = []

    def watch_relay(self, relay: Relay) -> None:
        books = self.history.setdefault(relay.epoch, {})

        def hook(sub: Any, frame: Any) -> None:
            book = sub.book
            if book.is_valid:
                key = (sub.parsec_id, fold_outcome(sub.outcome))
                books.setdefault(key, {})[book.seq] = (tuple(book.bids()), tuple(book.asks()))
        relay.upstream.set_frame_hook(hook)

    def watch_consumer(self, client: Client, name: str = "consumer") -> None:
        def check(event: Any) -> None:
            try:
                sub = client.subscription(event.parsec_id, event.outcome)
            except KeyError:
                return
            self.check_book(client, sub, name)
        client.on("book_updated", check)
        client.on("book_recovered", check)

    def check_book(self, client: Client, sub: Any, name: str) -> None:
        book = sub.book
        if not book.is_valid:
            return
        epoch = client._session.epoch  # the relay instance the consumer reads
        key = (sub.parsec_id, fold_outcome(sub.outcome))
        self.checked += 1
        self._pending.append((name, epoch, key, book.seq,
                              (tuple(book.bids()), tuple(book.asks()))))
        self._settle_pending(final=False)

    def _settle_pending(self, final: bool) -> None:
        """Compare the recorded consumer states with the relay's history. A state whose seq the
        relay has not recorded yet waits (a relay in another thread writes its reply before its
        frame hook runs); at the end (``final``) a missing one is a violation."""
        keep = []
        for name, epoch, key, seq, got in self._pending:
            hist = self.history.get(epoch, {}).get(key, {})
            want = hist.get(seq)
            if want is None:  # an activity frame moved the seq (shared counter): same levels
                earlier = [s for s in list(hist) if s <= seq]  # list(): another thread writes
                want = hist[max(earlier)] if earlier and (final or max(list(hist)) > seq) \
                    else None
            if want is None:
                if final:
                    self.violations.append(f"{name}: {key[0]} valid at seq {seq}, which the "
                                           "relay never held valid")
                else:
                    keep.append((name, epoch, key, seq, got))
            elif want != got:
                self.violations.append(f"{name}: {key[0]} at seq {seq} differs from the "
                                       "relay's book")
        self._pending = keep

    def finish(self) -> list[str]:
        """Every check settled; the violations (empty when every valid book was right)."""
        self._settle_pending(final=True)
        return self.violations

    def check_all(self, client: Client, name: str = "consumer") -> None:
        for sub in client.subscriptions():
            self.check_book(client, sub, name)


async def wait_until(predicate: Any, timeout: float = 8.0, what: str = "condition") -> None:
    """Poll ``predicate()`` every 20 ms; AssertionError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)


async def settle(relay: Relay, srv: LocalServer, consumers: Iterable[Client],
                 timeout: float = 8.0) -> None:
    """Pause the server's stream, then wait until the relay read everything the server sent
    and every consumer holds every book valid at the relay's seq."""
    srv.pause_stream()
    consumers = list(consumers)
    await asyncio.sleep(0.1)

    def caught_up() -> bool:
        for client in consumers:
            if not client.connected:
                return False
            for sub in client.subscriptions():
                mine = relay.book(sub.parsec_id, sub.outcome)
                if mine is None or not mine.book.is_valid or not sub.book.is_valid \
                        or sub.book.seq != mine.book.seq:
                    return False
        return True
    await wait_until(caught_up, timeout, "consumers caught up with the relay")


def assert_same_books(relay: Relay, client: Client) -> int:
    """Every book of ``client`` equals the relay's (seq, levels, validity, states); returns
    how many were compared."""
    n = 0
    for sub in client.subscriptions():
        mine = relay.book(sub.parsec_id, sub.outcome)
        assert mine is not None, f"relay does not hold {sub.parsec_id}"
        assert sub.book.is_valid and mine.book.is_valid, (sub.why_not(), mine.why_not())
        assert sub.book.seq == mine.book.seq, (sub.parsec_id, sub.book.seq, mine.book.seq)
        assert sub.book.bids() == mine.book.bids(), f"{sub.parsec_id}: bids differ"
        assert sub.book.asks() == mine.book.asks(), f"{sub.parsec_id}: asks differ"
        assert sub.feed_state == mine.feed_state and sub.book_state == mine.book_state
        n += 1
    return n


class ThreadedRelay:
    """A LocalServer and a relay on their own event loop in a thread, so the test's loop can
    block (a slow consumer) while they keep going. Call its methods only as documented."""

    def __init__(self, server: ServerConfig, nats_url: str, **relay_overrides: Any) -> None:
        self.server_config = server
        self.nats_url = nats_url
        self.relay_overrides = relay_overrides
        self.srv: LocalServer | None = None
        self.relay: Relay | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _main(self) -> None:
        async def body() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                async with LocalServer(self.server_config) as srv:
                    self.srv = srv
                    relay = relay_for(srv.url, self.nats_url, **self.relay_overrides)
                    await relay.start()
                    self.relay = relay
                    self._ready.set()
                    await self._stop.wait()
                    await relay.close()
            except BaseException as exc:  # reported by __enter__
                self._error = exc
                self._ready.set()
        asyncio.run(body())

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the relay's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> ThreadedRelay:
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError(f"threaded relay did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self._stop is not None and self._thread is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
