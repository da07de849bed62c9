"""The local Parsec-compatible server: :class:`LocalServer` and the ``serve_forever`` entry.

The server assembles its parts and owns the listening socket and the background tasks:

- :class:`~parsec_fast.server.registry.Registry`: open connections, the subscription index;
- :class:`~parsec_fast.server.status.MarketStatus`: book and venue states, stalls;
- :class:`~parsec_fast.server.stream.LiveStream`: the live fan-out, heartbeats, staleness, wallets;
- :class:`~parsec_fast.server.fault_target.ServerFaultTarget` behind ``srv.faults``;
- :class:`~parsec_fast.server.throughput.Blaster` behind :meth:`LocalServer.blast`;
- one :class:`~parsec_fast.server.connection.Connection` per client, which sees all of this through
  a :class:`~parsec_fast.server.context.ServerContext`.

Per-connection limits (send budget, message size, refused messages, auth window, close timeout)
are described in :mod:`parsec_fast.server.connection` and :class:`ServerConfig`.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from picows import WSUpgradeRequest, ws_create_server

from .config import ServerConfig
from .connection import Connection
from .context import ServerContext
from .fault_target import ServerFaultTarget
from .faults import Faults, parse_fault_spec
from .recorder import Recorder
from .registry import Registry
from .simulator import Simulator, make_markets
from .status import MarketStatus
from .stream import LiveStream
from .subscription import BookKey
from .throughput import BlastResult, Blaster
from .wallet import WalletFeed

__all__ = ["LocalServer", "serve_forever", "run_server"]

log: logging.Logger = logging.getLogger("parsec_fast.server")

#: Seconds between two sweeps for close frames that never flush (see Connection.close).
_CLOSE_SWEEP_S = 0.25


class LocalServer:
    """A local Parsec-compatible WebSocket server (picows, asyncio).

    Use in-process as ``async with LocalServer(config) as srv: ... srv.url``; ``srv.faults``
    injects faults, ``srv.recorder`` (with ``record=True``) holds every frame sent per connection,
    and :meth:`blast` writes a pre-generated delta stream as fast as the client reads.
    ``srv.aborted`` counts the connections ended for passing a limit, by reason.
    """

    def __init__(self, config: ServerConfig | None = None, *,
                 ssl_context: ssl.SSLContext | None = None, **overrides: Any) -> None:
        # ssl_context: serve wss:// (TLS) with this server-side context (client TLS tests).
        self.ssl_context = ssl_context
        if config is None:
            config = ServerConfig(**overrides)
        elif overrides:
            raise TypeError("pass either a ServerConfig or keyword overrides, not both")
        self.config = config
        specs = make_markets(config.markets, config.seed) if isinstance(config.markets, int) \
            else list(config.markets)
        self.simulator: Simulator = Simulator(specs, config.seed)
        self.status: MarketStatus = MarketStatus(self.simulator)
        self.registry: Registry[Connection] = Registry(
            self.simulator, lambda key: self.status.track(key, asyncio.get_running_loop().time()))
        self.recorder: Recorder | None = Recorder() if config.record else None
        wallets = WalletFeed(self.simulator, config.seed)
        self.stream: LiveStream = LiveStream(
            config, self.simulator, self.registry, self.status, wallets)
        self.fault_target: ServerFaultTarget = ServerFaultTarget(
            config, self.simulator, self.registry, self.status, self.stream, self._refuse)
        self.faults: Faults = Faults(self.fault_target, config.seed)
        self.context: ServerContext = ServerContext(
            config, self.simulator, self.registry, self.status, self.faults, wallets, self.recorder)
        self._blaster = Blaster(self.simulator, self.registry, self.status, self.stream)
        self.port: int = config.port
        self._fault_specs = [parse_fault_spec(s) for s in config.faults]
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._refusing = False
        #: Connections accepted so far (upgrade requests on the right path), read by tests.
        self._next_conn_id = 0

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """Bound host."""
        return self.config.host

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/ws`` (``wss://`` with an ``ssl_context``)."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.config.host}:{self.port}{self.config.path}"

    @property
    def connections(self) -> list[Connection]:
        """Open connections (handshake done), oldest first."""
        return self.registry.connections

    @property
    def connections_accepted(self) -> int:
        """WebSocket upgrades accepted since start (connection attempts that reached us)."""
        return self._next_conn_id

    @property
    def aborted(self) -> Counter[str]:
        """Connections the server ended for passing a limit, by reason (see ServerContext)."""
        return self.context.aborted

    @property
    def unavailable_exchanges(self) -> set[str]:
        """Exchanges whose new subscriptions fail with 2003 (``srv.faults.exchange_unavailable``)."""
        return self.status.unavailable_exchanges

    async def start(self) -> LocalServer:
        """Bind and start the background tasks."""
        self._server = await self._listen(self.config.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self.stream.heartbeats())
        self._spawn(self.stream.staleness())
        self._spawn(self._sweep_closing())
        if self.config.live:
            self._spawn(self.stream.pump())
        if self.config.wallet_interval > 0:
            self._spawn(self.stream.wallet_snapshots())
        if self._fault_specs:
            self._spawn(self.faults.run_script(self._fault_specs))
        return self

    async def close(self) -> None:
        """Stop tasks, stop listening and disconnect every client."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            conn.disconnect_now()
        for _ in range(100):  # let on_ws_disconnected run
            if not self.connections:
                break
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> LocalServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _listen(self, port: int) -> asyncio.Server:
        # Pings are answered by Connection (enable_auto_pong=False) so that pongs count against
        # the send budget; frames over max_message_size are refused on their header (1009).
        return await ws_create_server(self._listener_factory, self.config.host, port,
                                      websocket_handshake_timeout=5, reuse_address=True,
                                      ssl=self.ssl_context, enable_auto_pong=False,
                                      max_frame_size=self.config.max_message_size)

    def _listener_factory(self, request: WSUpgradeRequest) -> Connection | None:
        path = request.path.split(b"?", 1)[0].decode("latin-1")
        if path != self.config.path:
            return None  # picows answers 404
        self._next_conn_id += 1
        return Connection(self.context, self._next_conn_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("server task failed", exc_info=task.exception())

    async def _sweep_closing(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_CLOSE_SWEEP_S)
            now = loop.time()
            for conn in list(self.connections):
                conn.enforce_close_deadline(now)

    def _refuse(self, seconds: float) -> None:
        """Close the listening socket for ``seconds`` (the ``refuse`` fault)."""
        if self._refusing or self._server is None:
            return
        self._refusing = True
        self._server.close()
        self._server = None
        self._spawn(self._listen_again(seconds))

    async def _listen_again(self, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
            self._server = await self._listen(self.port)
        finally:
            self._refusing = False

    async def wait_for_connections(self, n: int, timeout: float = 2.0) -> list[Connection]:
        """Wait until ``n`` connections are open (handshake done); return them."""
        return await self.registry.wait_for(n, timeout)

    # -- shared state --------------------------------------------------------------------------
    def subscribed_keys(self) -> list[BookKey]:
        """(parsec_id, outcome) pairs with at least one subscriber, sorted."""
        return self.registry.subscribed_keys()

    def credential_ok(self, kind: str, credential: Any) -> bool:
        """Whether an ``auth`` key / ``auth_terminal`` token is accepted (see ServerConfig)."""
        return self.config.accepts(kind, credential)

    def account_subscriptions(self, account: str | None) -> int:
        """Markets + addresses subscribed by every connection of ``account``."""
        return self.registry.account_subscriptions(account)

    def book_state(self, key: BookKey) -> str:
        """``fresh`` or ``stale`` for a market outcome."""
        return self.status.book_state(key)

    def feed_state(self, exchange: str) -> str:
        """``healthy``, ``degraded`` or ``disconnected`` for a venue."""
        return self.status.feed_state(exchange)

    def send_wallet_activity(self, conn: Connection, addr: tuple[str, str]) -> None:
        """Send a ``wallet_activity`` snapshot of a watched wallet (synthetic, seeded by address)."""
        conn.send_obj(self.context.wallets.frame(addr))

    # -- live stream and throughput mode ------------------------------------------------------------
    def pause_stream(self) -> None:
        """Stop generating live events (heartbeats, faults and control replies continue)."""
        self.stream.pause()

    def resume_stream(self) -> None:
        """Undo :meth:`pause_stream`."""
        self.stream.resume()

    async def blast(self, n_deltas: int, parsec_ids: Iterable[str] | None = None, *,
                    chunk_size: int = 256 * 1024) -> BlastResult:
        """Pre-generate ``n_deltas`` delta frames (over all connections) on the subscribed books of
        ``parsec_ids`` (default: every subscribed book), then write them in chunks of about
        ``chunk_size`` bytes, one transport write each, waiting on the transport's flow control.

        The live stream pauses meanwhile; every connection subscribed to a blasted book receives
        the stream (with its own seqs and depth trimming), so books stay exact. Activity events
        are skipped. Each chunk counts against the connection's send budget. Returns when the
        last chunk is handed to the transport.
        """
        return await self._blaster.blast(n_deltas, parsec_ids, chunk_size=chunk_size)


async def run_server(config: ServerConfig | None = None,
                     on_ready: Callable[[LocalServer], None] | None = None) -> None:
    """Run a server until cancelled; ``on_ready(srv)`` is called once it listens."""
    async with LocalServer(config) as srv:
        if on_ready is not None:
            on_ready(srv)
        await asyncio.Event().wait()


def serve_forever(config: ServerConfig | None = None) -> None:
    """Blocking entry for the CLI: start a server, print its URL, serve until Ctrl-C."""
    def ready(srv: LocalServer) -> None:
        cfg = srv.config
        print(f"parsec_fast local server listening on {srv.url} "
              f"({len(srv.simulator.markets)} markets, tier {cfg.tier}, "
              f"rate {cfg.rate or 'max'}/s, seed {cfg.seed})", flush=True)

    try:
        asyncio.run(run_server(config, ready))
    except KeyboardInterrupt:
        pass
