"""The local Parsec-compatible server: :class:`LocalServer` and the ``serve_forever`` entry.

The server owns the simulator, the connections and the background tasks (live stream, heartbeats,
staleness, wallet snapshots, scripted faults) and fans simulator events out to subscriptions.
"""
from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

from picows import WSUpgradeRequest, ws_create_server

from .config import ServerConfig
from .connection import BookKey, Connection, Subscription
from .faults import Faults, parse_fault_spec
from .recorder import Recorder
from .simulator import BookChange, FillEvent, SimEvent, Simulator, TradeEvent, make_markets
from .throughput import BlastResult, ChunkBuilder

__all__ = ["LocalServer", "serve_forever", "run_server"]

log = logging.getLogger("parsec_fast.server")


class LocalServer:
    """A local Parsec-compatible WebSocket server (picows, asyncio).

    Use in-process as ``async with LocalServer(config) as srv: ... srv.url``; ``srv.faults``
    injects faults, ``srv.recorder`` (with ``record=True``) holds every frame sent per connection,
    and :meth:`blast` writes a pre-generated delta stream as fast as the client reads.
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
        self.simulator = Simulator(specs, config.seed)
        self.faults = Faults(self, config.seed)
        self.recorder: Recorder | None = Recorder() if config.record else None
        self.connections: list[Connection] = []
        self.unavailable_exchanges: set[str] = set()
        self.port: int = config.port
        self._fault_specs = [parse_fault_spec(s) for s in config.faults]
        self._server: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs_by_key: dict[BookKey, set[Connection]] = {}
        self._key_list: list[BookKey] | None = None
        self._book_state: dict[BookKey, str] = {}
        self._last_update: dict[BookKey, float] = {}
        self._feed_state: dict[str, str] = {}
        self._disconnected_exchanges: set[str] = set()
        self._stalled_until: dict[str, float] = {}
        self._refusing = False
        self._blasting = 0
        self._stream_paused = False
        self._next_conn_id = 0
        self._wallet_counter = 0
        self._conn_changed = asyncio.Event()

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

    async def start(self) -> LocalServer:
        """Bind and start the background tasks."""
        self._server = await self._listen(self.config.port)
        sockets = self._server.sockets or ()
        self.port = sockets[0].getsockname()[1]
        self._started = asyncio.get_running_loop().time()
        self._conn_changed = asyncio.Event()
        self._spawn(self._heartbeat_loop())
        self._spawn(self._stale_loop())
        if self.config.live:
            self._spawn(self._pump())
        if self.config.wallet_interval > 0:
            self._spawn(self._wallet_loop())
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
            if conn.transport is not None:
                conn.transport.disconnect(graceful=False)
        for _ in range(100):  # let on_ws_disconnected run
            if not self.connections:
                break
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> LocalServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _listen(self, port: int) -> asyncio.AbstractServer:
        return await ws_create_server(self._listener_factory, self.config.host, port,
                                      websocket_handshake_timeout=5, reuse_address=True,
                                      ssl=self.ssl_context)

    def _listener_factory(self, request: WSUpgradeRequest) -> Connection | None:
        path = request.path.split(b"?", 1)[0].decode("latin-1")
        if path != self.config.path:
            return None  # picows answers 404
        self._next_conn_id += 1
        return Connection(self, self._next_conn_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("server task failed", exc_info=task.exception())

    async def wait_for_connections(self, n: int, timeout: float = 2.0) -> list[Connection]:
        """Wait until ``n`` connections are open (handshake done); return them."""
        async def wait() -> None:
            while len(self.connections) < n:
                self._conn_changed.clear()
                await self._conn_changed.wait()
        await asyncio.wait_for(wait(), timeout)
        return list(self.connections)

    # -- connection registry (called by Connection) -------------------------------------------
    def _register(self, conn: Connection) -> None:
        self.connections.append(conn)
        self._conn_changed.set()

    def _unregister(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        for sub in conn.subs.values():
            self._unindex(conn, sub)
        self._conn_changed.set()

    def _index(self, conn: Connection, sub: Subscription) -> None:
        key = sub.key
        self._subs_by_key.setdefault(key, set()).add(conn)
        self.simulator.watch(key, sub.depth)
        self._last_update.setdefault(key, asyncio.get_running_loop().time())
        self._key_list = None

    def _unindex(self, conn: Connection, sub: Subscription) -> None:
        key = sub.key
        conns = self._subs_by_key.get(key)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        if not conns:
            del self._subs_by_key[key]
        self.simulator.unwatch(key, sub.depth)
        self._key_list = None

    def subscribed_keys(self) -> list[BookKey]:
        """(parsec_id, outcome) pairs with at least one subscriber, sorted."""
        if self._key_list is None:
            self._key_list = sorted(self._subs_by_key)
        return self._key_list

    # -- shared state --------------------------------------------------------------------------
    def credential_ok(self, kind: str, credential: Any) -> bool:
        """Whether an ``auth`` key / ``auth_terminal`` token is accepted (see ServerConfig)."""
        if not isinstance(credential, str) or not credential:
            return False
        accepted = self.config.accepted_keys if kind == "auth" else self.config.accepted_tokens
        if accepted is not None:
            return credential in accepted
        return not credential.startswith(tuple(self.config.reject_prefixes))

    def account_subscriptions(self, account: str | None) -> int:
        """Markets + addresses subscribed by every connection of ``account``."""
        return sum(len(c.subs) + len(c.addresses) for c in self.connections
                   if c.account == account)

    def book_state(self, key: BookKey) -> str:
        """``fresh`` or ``stale`` for a market outcome."""
        return self._book_state.get(key, "fresh")

    def feed_state(self, exchange: str) -> str:
        """``healthy``, ``degraded`` or ``disconnected`` for a venue."""
        return self._feed_state.get(exchange, "healthy")

    # -- live stream ---------------------------------------------------------------------------
    async def _pump(self) -> None:
        """Generate simulator events at ``rate`` (over all markets) or, with no rate, as fast as
        possible over the subscribed markets only, and fan them out."""
        loop = asyncio.get_running_loop()
        rate = self.config.rate
        if not rate:
            while True:
                await asyncio.sleep(0)
                keys = self.subscribed_keys()
                if self._blasting or self._stream_paused or not keys:
                    await asyncio.sleep(0.005)
                    continue
                self._run_events(256, keys)
        tick = max(0.002, min(0.05, 1.0 / rate))
        last, credit = loop.time(), 0.0
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            credit = min(credit + (now - last) * rate, max(1.0, rate * 0.5))
            last = now
            n = int(credit)
            credit -= n
            if not self._blasting:
                self._run_events(n, None)

    def pause_stream(self) -> None:
        """Stop generating live events (heartbeats, faults and control replies continue)."""
        self._stream_paused = True

    def resume_stream(self) -> None:
        """Undo :meth:`pause_stream`."""
        self._stream_paused = False

    def _run_events(self, n: int, keys: list[BookKey] | None) -> None:
        if self._stream_paused:
            return
        ts_ms = int(time.time() * 1000)
        step, dispatch = self.simulator.step, self._dispatch
        for _ in range(n):
            for event in step(keys):
                dispatch(event, ts_ms)

    def _dispatch(self, event: SimEvent, ts_ms: int) -> None:
        key = (event.parsec_id, event.outcome)
        if isinstance(event, BookChange):
            self._last_update[key] = asyncio.get_running_loop().time()
            was_stale = self._book_state.get(key) == "stale"
            if was_stale:
                self._book_state[key] = "fresh"
            for conn in list(self._subs_by_key.get(key, ())):
                sub = conn.subs[key]
                changes = event.windows.get(sub.depth)
                if changes or was_stale:  # an empty delta still announces stale -> fresh
                    conn.emit_delta(sub, changes or [], ts_ms=ts_ms)
            return
        conns = self._subs_by_key.get(key)
        if not conns:
            return
        if isinstance(event, TradeEvent):
            fields = {"kind": "trade", "price": event.price, "size": event.size,
                      "trade_id": event.trade_id, "side": event.aggressor_side,
                      "aggressor_side": event.aggressor_side, "exchange_ts_ms": ts_ms - 2,
                      "ingest_ts_ms": ts_ms, "source_channel": f"{event.parsec_id.split(':')[0]}_trades"}
            for conn in list(conns):
                conn.emit_activity(key, fields)
        elif isinstance(event, FillEvent):
            account = self.config.fill_account
            if account is None:
                return
            fields = {"kind": "fill", "price": event.price, "size": event.size,
                      "fill_id": event.fill_id, "order_id": event.order_id, "side": event.side,
                      "liquidity_role": event.liquidity_role, "exchange_ts_ms": ts_ms - 2,
                      "ingest_ts_ms": ts_ms, "source_channel": "fills"}
            for conn in list(conns):
                if account == "*" or conn.account == account:
                    conn.emit_activity(key, fields)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            ts_ms = int(time.time() * 1000)
            for conn in list(self.connections):
                if conn.authenticated:
                    conn.send_obj({"type": "heartbeat", "ts_ms": ts_ms})

    async def _stale_loop(self) -> None:
        """Mark subscribed books ``stale`` when nothing changed within ``stale_after_ms``,
        announced by a delta with no changes (the next update turns them ``fresh``)."""
        limit = self._stale_after_s
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(0.25, limit / 4))
            now = loop.time()
            for key in list(self._subs_by_key):
                if self.book_state(key) == "fresh" and now - self._last_update.get(key, now) > limit:
                    self._book_state[key] = "stale"
                    self._announce(key)

    def _announce(self, key: BookKey) -> None:
        for conn in list(self._subs_by_key.get(key, ())):
            conn.emit_delta(conn.subs[key], [])

    async def _wallet_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.wallet_interval)
            for conn in list(self.connections):
                for addr in sorted(conn.addresses):
                    self.send_wallet_activity(conn, addr)

    def send_wallet_activity(self, conn: Connection, addr: tuple[str, str]) -> None:
        """Send a ``wallet_activity`` snapshot of a watched wallet (synthetic, seeded by address)."""
        exchange, address = addr
        self._wallet_counter += 1
        rng = random.Random(f"{self.config.seed}:{exchange}:{address}:{self._wallet_counter}")
        specs = [s for s in (st.spec for st in self.simulator.markets.values())
                 if s.exchange == exchange] or [st.spec for st in self.simulator.markets.values()]
        now_ms = int(time.time() * 1000)

        def pick() -> tuple[str, str]:
            spec = rng.choice(specs)
            return spec.parsec_id, rng.choice(spec.outcomes)

        positions = [dict(zip(("parsec_id", "outcome"), pick()), size=float(rng.randint(1, 500)),
                          avg_price=round(rng.uniform(0.05, 0.95), 2)) for _ in range(rng.randint(0, 3))]
        orders = [dict(zip(("parsec_id", "outcome"), pick()), order_id=f"ord_{rng.randrange(10**8)}",
                       side=rng.choice(("buy", "sell")), price=round(rng.uniform(0.05, 0.95), 2),
                       size=float(rng.randint(1, 200))) for _ in range(rng.randint(0, 3))]
        trades = [dict(zip(("parsec_id", "outcome"), pick()), trade_id=f"wt_{rng.randrange(10**8)}",
                       side=rng.choice(("buy", "sell")), price=round(rng.uniform(0.05, 0.95), 2),
                       size=float(rng.randint(1, 200)), ts_ms=now_ms - rng.randint(0, 10**6))
                  for _ in range(rng.randint(0, 3))]
        conn.send_obj({"type": "wallet_activity", "exchange": exchange, "address": address,
                       "data": {"positions": positions, "orders": orders, "trades": trades},
                       "ts_ms": now_ms})

    # -- throughput mode -------------------------------------------------------------------------
    async def blast(self, n_deltas: int, parsec_ids: Iterable[str] | None = None, *,
                    chunk_size: int = 256 * 1024) -> BlastResult:
        """Pre-generate ``n_deltas`` delta frames (over all connections) on the subscribed books of
        ``parsec_ids`` (default: every subscribed book), then write them in chunks of about
        ``chunk_size`` bytes, one transport write each, waiting on the transport's flow control.

        The live stream pauses meanwhile; every connection subscribed to a blasted book receives
        the stream (with its own seqs and depth trimming), so books stay exact. Activity events
        are skipped. Returns when the last chunk is handed to the transport.
        """
        wanted = None if parsec_ids is None else set(parsec_ids)
        keys = [k for k in self.subscribed_keys() if wanted is None or k[0] in wanted]
        if not keys:
            raise RuntimeError("blast: no subscribed book matches")
        loop = asyncio.get_running_loop()
        self._blasting += 1
        try:
            t0 = time.perf_counter()
            builders: dict[Connection, ChunkBuilder] = {}
            ts_ms = int(time.time() * 1000)
            produced = 0
            while produced < n_deltas:
                events = self.simulator.step(keys)
                if not events:
                    break  # every blasted market is paused
                for event in events:
                    if not isinstance(event, BookChange):
                        continue
                    key = (event.parsec_id, event.outcome)
                    self._last_update[key] = loop.time()
                    self._book_state[key] = "fresh"
                    for conn in self._subs_by_key.get(key, ()):
                        sub = conn.subs[key]
                        changes = event.windows.get(sub.depth)
                        if not changes or sub.awaiting_resync:
                            continue
                        builder = builders.get(conn)
                        if builder is None:
                            builder = builders[conn] = ChunkBuilder(chunk_size)
                        builder.add(conn.delta_payload(sub, changes, "fresh", ts_ms))
                        produced += 1
            for builder in builders.values():
                builder.finish()
            t1 = time.perf_counter()
            await asyncio.gather(*(self._write_chunks(c, b) for c, b in builders.items()))
            t2 = time.perf_counter()
        finally:
            self._blasting -= 1
        return BlastResult(sum(b.frames for b in builders.values()),
                           sum(b.nbytes for b in builders.values()), t1 - t0, t2 - t1, len(builders))

    @staticmethod
    async def _write_chunks(conn: Connection, builder: ChunkBuilder) -> None:
        conn.blasting = True
        try:
            for chunk, payloads in zip(builder.chunks, builder.payloads):
                await conn.writable.wait()
                if not conn.open:
                    return
                if conn.record is not None:
                    conn.record.frames.extend(payloads)
                assert conn.transport is not None
                conn.transport.underlying_transport.write(chunk)
        finally:
            conn.blasting = False

    # -- fault target (called by Faults) ---------------------------------------------------------
    @property
    def _stale_after_s(self) -> float:
        return self.config.stale_after_ms / 1000.0

    def _matching_subs(self, parsec_id: str | None,
                       outcome: str | None) -> list[tuple[Connection, Subscription]]:
        out = []
        for conn in list(self.connections):
            for sub in list(conn.subs.values()):
                if (parsec_id is None or sub.market.parsec_id == parsec_id) and \
                        (outcome is None or sub.outcome.casefold() == outcome.casefold()):
                    out.append((conn, sub))
        return out

    def _fault_resync_required(self, parsec_id: str | None, outcome: str | None) -> int:
        return sum(conn.require_resync(sub) for conn, sub in self._matching_subs(parsec_id, outcome))

    def _fault_needs_refresh(self, parsec_id: str | None, outcome: str | None) -> int:
        return sum(conn.needs_refresh(sub) for conn, sub in self._matching_subs(parsec_id, outcome))

    def _fault_stall(self, parsec_id: str, seconds: float) -> None:
        if self.simulator.spec(parsec_id) is None:
            raise ValueError(f"stall: unknown market {parsec_id!r}")
        loop = asyncio.get_running_loop()
        self._stalled_until[parsec_id] = loop.time() + seconds
        self._update_paused()
        loop.call_later(seconds, self._update_paused)

    def _update_paused(self) -> None:
        now = asyncio.get_running_loop().time()
        for pid, until in list(self._stalled_until.items()):
            if until <= now:
                del self._stalled_until[pid]
        paused = set(self._stalled_until)
        for pid, state in self.simulator.markets.items():
            if state.spec.exchange in self._disconnected_exchanges:
                paused.add(pid)
        self.simulator.paused = paused

    def _fault_feed_state(self, exchange: str | None, state: str) -> None:
        exchanges = {exchange} if exchange is not None else \
            {st.spec.exchange for st in self.simulator.markets.values()}
        for ex in exchanges:
            self._feed_state[ex] = state
            if state == "disconnected":
                self._disconnected_exchanges.add(ex)
            else:
                self._disconnected_exchanges.discard(ex)
        self._update_paused()
        for key in list(self._subs_by_key):
            if key[0].split(":", 1)[0] in exchanges:
                self._announce(key)

    def _fault_exchange_unavailable(self, exchange: str, unavailable: bool) -> None:
        if unavailable:
            self.unavailable_exchanges.add(exchange)
        else:
            self.unavailable_exchanges.discard(exchange)

    def _fault_close_all(self) -> int:
        conns = list(self.connections)
        for conn in conns:
            if conn.transport is not None:
                conn.transport.disconnect(graceful=False)
        return len(conns)

    def _fault_refuse(self, seconds: float) -> None:
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

    def _random_subscribed_market(self, rng: random.Random) -> str | None:
        pids = sorted({k[0] for k in self._subs_by_key})
        return rng.choice(pids) if pids else None


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
