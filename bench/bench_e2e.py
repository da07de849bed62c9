"""End-to-end benchmark over loopback (suite 3; issue 7's end-to-end figures).

Run from the repo root::

    python bench/bench_e2e.py                 # full run (a few minutes on 2 shared cores)
    python bench/bench_e2e.py --quick         # tiny, for smoke tests
    python bench/bench_e2e.py --contenders native-uvloop,sdk --json /tmp/e2e.json

Layout. Every contender runs in a **fresh client process** (pinned with ``taskset`` to one core
when available) that starts its own **server process** (``LocalServer`` in this file's
``--_server`` mode, pinned to the other core). The client connects, subscribes ``--markets`` books
at depth ``--depth``, waits for every snapshot, then asks the server (over the server's stdin) to
``blast`` ``N`` deltas: ``LocalServer.blast`` pre-generates and pre-encodes a seeded stream, then
writes it in chunks of 256 KiB honouring the transport's flow control. Same seed, same
subscriptions → every contender receives the same byte stream.

Throughput. The clock starts when the server starts writing (``time.monotonic()``, which is
system-wide on Linux, reported by the server: call time + generation time) and stops at the
first moment the client held every book at the final ``server_seq`` the server reports: the
client polls its books every 1 ms during the blast and keeps a record of when they changed, so
the stop time does not include the server's reply, which it sends only after its last write and
after computing the expected books (waiting for it added ~30 ms to a 400 k-delta blast, a fifth
of the fastest contender's interval). deltas/s = frames written / that interval.
``--repeats`` blasts run back to back on the same connection (the stream continues, identical
for every contender); the median is reported.

Contenders:

* ``count-bytes``: a minimal raw-socket WebSocket client that only counts bytes — the sender's
  capacity. If it is not well above the fastest contender, the sender is the bottleneck.
* ``native-uvloop`` / ``native-asyncio``: ``parsec_fast.Client(parser="native")`` (Cython picows
  listener + zero-allocation scanner), with and without uvloop.
* ``orjson-uvloop``: ``parsec_fast.Client(parser="orjson")``.
* ``picows+orjson+SortedDict`` / ``picows+msgspec+order-book``: the best clients a skilled user
  would write by hand (``bench/contenders.py``, the same ones as suite 5's): a Python picows
  listener, ``orjson.loads`` and a ``SortedDict`` per side, or msgspec's typed decoder and the
  ``order-book`` C extension; a sequence check per book and a (no-op) user call per delta.
* ``compat-<shape>`` / ``sdk-<shape>``: ``parsec_fast.compat.ParsecWebSocket`` (the drop-in) and
  the official SDK's ``parsec_api.streaming.ParsecWebSocket`` (websockets + json + lists), each
  with the ``async def`` ``orderbook`` handler an SDK user writes (``bench/bench_compat.py``'s
  shapes: ``mid`` reads ``book.mid_price``; ``top`` the best bid price and best ask size;
  ``top5`` sums the sizes of ``bids[:5]`` and ``asks[:5]``; ``keep`` keeps the payload;
  ``iterate`` reads every level of both sides), asyncio loop (as SDK users run it). A compat
  row's ratio is to the SDK row with the same handler.
* ``compat`` / ``sdk``: the same two clients with no handler at all (the SDK builds its event
  objects anyway; compat then builds none). No SDK user runs without a handler: extra rows,
  not the compat figures.

Correctness. After the last repeat every contender's books are compared level by level (price
and size, exact) with the server's own top-``depth`` view of each book and the final seq; the
number of mismatching books is reported per contender.

Latency (paced). A separate run with the server's live stream at ``--paced-rate`` simulator
events/s (deltas plus ~7 % trades/fills) for ``--paced-seconds``: our engine's frame-to-apply
latency percentiles p50/p90/p99 from ``client.metrics`` (time from the start of the read batch a
frame arrived in to the end of its apply, in-process; sampled), for the native and orjson parsers.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_JSON = os.path.join(HERE, "out", "e2e.json")
THIS = os.path.abspath(__file__)

#: Contenders in report order, with a one-line label and whether they run under uvloop.
CONTENDERS: dict[str, tuple[str, bool]] = {
    "count-bytes": ("raw socket, counts bytes only (sender capacity)", True),
    "native-uvloop": ("parsec_fast.Client, native scanner, uvloop", True),
    "native-asyncio": ("parsec_fast.Client, native scanner, asyncio loop", False),
    "orjson-uvloop": ("parsec_fast.Client, orjson parser, uvloop", True),
    # The best clients a skilled user would write by hand (bench/contenders.py), uvloop too.
    "picows+orjson+SortedDict": ("hand-written: picows Python listener, orjson.loads, a "
                                 "SortedDict per side, uvloop", True),
    "picows+msgspec+order-book": ("hand-written: picows Python listener, msgspec typed Structs, "
                                  "order-book C ext, uvloop", True),
    "compat": ("parsec_fast.compat.ParsecWebSocket, NO handler (extra row), asyncio loop", False),
    "sdk": ("official SDK parsec_api.streaming.ParsecWebSocket, no handler, asyncio loop", False),
}
#: The orderbook handler shapes of bench/bench_compat.py, one compat and one SDK row each.
HANDLER_SHAPES = ("mid", "top", "top5", "keep", "iterate")
_SHAPE_LABELS = {"mid": "reads mid_price", "top": "reads best bid price, best ask size",
                 "top5": "sums sizes of bids[:5], asks[:5]", "keep": "keeps the payload",
                 "iterate": "reads every level of both sides"}
for _shape in HANDLER_SHAPES:
    CONTENDERS[f"compat-{_shape}"] = (
        f"parsec_fast.compat.ParsecWebSocket, async handler {_SHAPE_LABELS[_shape]}", False)
for _shape in HANDLER_SHAPES:
    CONTENDERS[f"sdk-{_shape}"] = (
        f"official SDK ParsecWebSocket, async handler {_SHAPE_LABELS[_shape]}", False)
#: Contenders of the SDK's API (the slow ones: shorter blasts).
SDK_API = {name for name in CONTENDERS if name.split("-")[0] in ("compat", "sdk")}


def _sdk_ratio_base(name: str) -> str:
    """The SDK row a contender's ratio is to: the same handler shape for compat rows."""
    if name.startswith("compat-"):
        return "sdk-" + name.split("-", 1)[1]
    return "sdk"

# ── server process ─────────────────────────────────────────────────────────────────────────────


def _server_main(config_json: str) -> None:
    """``--_server``: run a LocalServer; print its URL; obey JSON commands on stdin."""
    from parsec_fast.server import LocalServer, ServerConfig

    cfg = json.loads(config_json)
    config = ServerConfig(markets=cfg["markets"], seed=cfg["seed"], live=cfg["rate"] > 0,
                          rate=cfg["rate"] or None, tier="scale", heartbeat_interval=30.0,
                          stale_after_ms=600_000, fill_account=None, wallet_interval=0)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def read_stdin() -> None:
            for line in sys.stdin:
                if line.strip():
                    loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
            loop.call_soon_threadsafe(commands.put_nowait, None)

        threading.Thread(target=read_stdin, daemon=True).start()
        async with LocalServer(config) as srv:
            print(json.dumps({"url": srv.url}), flush=True)
            while True:
                cmd = await commands.get()
                if cmd is None or cmd["cmd"] == "quit":
                    return
                if cmd["cmd"] == "blast":
                    t_call = time.monotonic()
                    res = await srv.blast(cmd["n"], chunk_size=cmd.get("chunk", 256 * 1024))
                    t_end = time.monotonic()
                    print(json.dumps({
                        "frames": res.frames, "nbytes": res.nbytes, "generate_s": res.generate_s,
                        "write_s": res.write_s, "t_write_start": t_call + res.generate_s,
                        "t_write_end": t_end, "expected": _expected(srv)}), flush=True)
                elif cmd["cmd"] == "expected":
                    print(json.dumps({"expected": _expected(srv)}), flush=True)

    try:  # the sender is the same for every contender; uvloop makes it cheaper
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


def _expected(srv: Any) -> dict[str, Any]:
    """What a correct client holds now: per ``parsec_id|outcome``, the final seq and the server's
    top-``depth`` levels (the server keeps each subscription's window exactly this)."""
    out: dict[str, Any] = {}
    for conn in srv.connections:
        for key, sub in conn.subs.items():
            book = srv.simulator.book(*key)
            # Connection._seq is the subscription's last server_seq (no public accessor).
            out[f"{key[0]}|{key[1]}"] = {"seq": conn._seq.get(key), "bids": book.top("bid", sub.depth),
                                         "asks": book.top("ask", sub.depth)}
    return out


class ServerProc:
    """The server process, driven over its stdin/stdout (JSON lines)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.url = ""

    @classmethod
    async def start(cls, *, markets: int, seed: int, rate: float, cpu: int | None) -> ServerProc:
        cmd = [sys.executable, THIS, "--_server",
               json.dumps({"markets": markets, "seed": seed, "rate": rate})]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.PIPE,
                                                    stdout=subprocess.PIPE, limit=1 << 28)
        self = cls(proc)
        self.url = (await self.reply())["url"]
        return self

    async def reply(self, timeout: float = 300.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("bench server process exited")
        return json.loads(line)

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())

    async def stop(self) -> None:
        try:
            self.send({"cmd": "quit"})
            await asyncio.wait_for(self.proc.wait(), 10)
        except Exception:
            self.proc.kill()
            await self.proc.wait()


# ── contenders (client process) ─────────────────────────────────────────────────────────────────

Key = tuple[str, str]


class Engine:
    """parsec_fast.Client with one parser."""

    def __init__(self, parser: str, latency_sample_every: int = 16) -> None:
        self.parser = parser
        self.sample_every = latency_sample_every
        self.client: Any = None
        self.keys: list[Key] = []
        self._books: list[Any] = []

    async def start(self, url: str, keys: list[Key], depth: int) -> None:
        from parsec_fast.client import Client

        self.keys = keys
        self.client = Client(url, api_key="bench", parser=self.parser,  # type: ignore[arg-type]
                             heartbeat_interval=30.0, reconnect=False,
                             latency_sample_every=self.sample_every)
        await self.client.start()
        await self.client.subscribe([{"parsec_id": p, "outcome": o} for p, o in keys], depth=depth,
                                    timeout=60)
        self._books = [self.client.book(p, o) for p, o in keys]

    def seqs(self) -> list[int]:
        return [self.client.book(p, o).seq or 0 for p, o in self.keys]

    def progress(self) -> list[int]:
        # polled every 1 ms on the client's own loop: read the live Book objects directly (a
        # subscription keeps its Book for its lifetime, and nothing resubscribes mid-blast)
        return [book.seq or 0 for book in self._books]

    def books(self) -> dict[str, Any]:
        out = {}
        for p, o in self.keys:
            book = self.client.book(p, o)
            out[f"{p}|{o}"] = {"seq": book.seq, "bids": [list(x) for x in book.bids()],
                               "asks": [list(x) for x in book.asks()], "valid": book.is_valid}
        return out

    async def close(self) -> None:
        await self.client.close()


class SdkLike:
    """The official SDK's ParsecWebSocket, or our compat drop-in (same API), with one of
    bench_compat's orderbook handler shapes (or none)."""

    def __init__(self, module: str, shape: str | None = None) -> None:
        self.module = module
        self.shape = shape
        self.ws: Any = None
        self.keys: list[Key] = []

    async def start(self, url: str, keys: list[Key], depth: int) -> None:
        mod = __import__(self.module, fromlist=["ParsecWebSocket", "MarketSubscription"])
        self.keys = keys
        self.ws = mod.ParsecWebSocket(api_key="bench", ws_url=url)
        if self.shape is not None:
            from bench_compat import Sink, make_handler  # same directory (sys.path[0])

            self.sink = Sink()
            self.ws.on("orderbook")(make_handler(self.shape, self.sink))
        await self.ws.connect()
        self.ws.subscribe([mod.MarketSubscription(p, o, depth) for p, o in keys])
        deadline = time.monotonic() + 60
        while any(self.ws.get_book(p, o) is None for p, o in keys):
            if time.monotonic() > deadline:
                raise TimeoutError("snapshots did not arrive")
            await asyncio.sleep(0.01)
        self._seq_readers = [self._seq_reader(p, o) for p, o in keys]

    def _seq_reader(self, parsec_id: str, outcome: str) -> Any:
        """A cheap way to read a book's last seq while it is being hammered (``get_book`` deep
        copies the whole book; polling it every 0.5 ms would slow the contender down)."""
        books = getattr(self.ws, "_books", None)
        key = f"{parsec_id}:{outcome.lower()}"
        if isinstance(books, dict) and key in books and hasattr(books[key], "last_seq"):
            return lambda: books[key].last_seq  # the SDK's _LocalBook
        if getattr(self.ws, "client", None) is not None:  # compat: the engine client's book
            return lambda: self.ws.client.book(parsec_id, outcome).seq
        return lambda: (self.ws.get_book(parsec_id, outcome) or {}).get("last_seq", 0)

    def seqs(self) -> list[int]:
        return [read() or 0 for read in self._seq_readers]

    def progress(self) -> list[int]:
        return self.seqs()

    def books(self) -> dict[str, Any]:
        out = {}
        for p, o in self.keys:
            b = self.ws.get_book(p, o) or {"bids": [], "asks": [], "last_seq": None}
            out[f"{p}|{o}"] = {"seq": b["last_seq"],
                               "bids": [[x["price"], x["size"]] for x in b["bids"]],
                               "asks": [[x["price"], x["size"]] for x in b["asks"]], "valid": True}
        return out

    async def close(self) -> None:
        await self.ws.close()


class HandWritten:
    """One of bench/contenders.py's hand-written picows clients."""

    def __init__(self, name: str) -> None:
        from contenders import HAND_WRITTEN_CLIENTS  # same directory (sys.path[0])

        self.client: Any = HAND_WRITTEN_CLIENTS[name]()
        self.keys: list[Key] = []

    async def start(self, url: str, keys: list[Key], depth: int) -> None:
        self.keys = keys
        await self.client.start(url, keys, depth, lambda i, seq: None)

    def seqs(self) -> list[int]:
        return list(self.client.seqs)

    def progress(self) -> list[int]:
        return list(self.client.seqs)

    def books(self) -> dict[str, Any]:
        out = {}
        for i, (p, o) in enumerate(self.keys):
            bids, asks = self.client.levels(i)
            out[f"{p}|{o}"] = {"seq": self.client.seqs[i], "bids": [list(x) for x in bids],
                               "asks": [list(x) for x in asks], "valid": self.client.gaps == 0}
        return out

    async def close(self) -> None:
        await self.client.close()


class _Counter(asyncio.BufferedProtocol):
    """Counts received bytes into one reused buffer (no per-read allocation)."""

    def __init__(self) -> None:
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.count = 0
        self.head = bytearray()
        self.handshaken = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.handshaken.done():
            self.head += self.buf[:nbytes]
            end = self.head.find(b"\r\n\r\n")
            if end >= 0:
                self.count += len(self.head) - end - 4
                self.handshaken.set_result(bytes(self.head[:end]))
            return
        self.count += nbytes

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshaken.done():
            self.handshaken.set_exception(ConnectionError("closed during handshake"))


def _client_frame(payload: bytes) -> bytes:
    """A masked client text frame (mask key 0: the payload is sent as is, which is legal)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    else:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


class ByteCounter:
    """Minimal client: handshake, auth, subscribe, then only count bytes."""

    def __init__(self) -> None:
        self.proto: _Counter | None = None
        self.transport: Any = None
        self.target = -1

    async def start(self, url: str, keys: list[Key], depth: int) -> None:
        hostport = url.split("://", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        loop = asyncio.get_running_loop()
        self.transport, self.proto = await loop.create_connection(_Counter, host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write((f"GET /ws HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        status = await asyncio.wait_for(self.proto.handshaken, 10)
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"handshake refused: {status[:80]!r}")
        self.transport.write(_client_frame(json.dumps({"type": "auth", "api_key": "bench"}).encode()))
        markets = [{"parsec_id": p, "outcome": o, "depth": depth} for p, o in keys]
        self.transport.write(_client_frame(json.dumps({"type": "subscribe",
                                                       "markets": markets}).encode()))
        await asyncio.sleep(0.5)  # snapshots arrive; nothing else is sent before the blast

    def reset(self) -> None:
        assert self.proto is not None
        self.proto.count = 0

    def progress(self) -> int:
        assert self.proto is not None
        return self.proto.count

    def books(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        self.transport.close()


def _compare(books: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Keys of the books that differ from the server's (seq, every level, validity)."""
    bad = []
    for key, exp in expected.items():
        got = books.get(key)
        if got is None or got["seq"] != exp["seq"] or not got["valid"] or \
                [list(map(float, x)) for x in got["bids"]] != exp["bids"] or \
                [list(map(float, x)) for x in got["asks"]] != exp["asks"]:
            bad.append(key)
    return bad


def _pick_keys(markets: int, seed: int, n_books: int) -> list[Key]:
    """One outcome per market (``Yes`` or the first category), the first ``n_books`` markets."""
    from parsec_fast.server import make_markets

    specs = make_markets(markets, seed)
    return [(s.parsec_id, s.outcomes[0]) for s in specs[:n_books]]


async def _watch(contender: Any, seen: list[tuple[float, float, Any]]) -> None:
    """Append (time, CPU time, progress) whenever the contender's progress (book seqs, or bytes)
    changes, polled on the client's own loop (so between its read batches). The moment the
    client held the final state is then known from this record, not from when the server's
    reply (sent after its last write, and after it computed the expected books) arrived.

    The first entry is the progress before the blast, with the CPU time of the last poll that
    still saw it: the server spends seconds generating the stream, and the client's CPU count
    must start when frames start to arrive, not include that wait. Polls every 2 ms until the
    first change, then every 1 ms (uvloop's timer resolution; shorter sleeps would spin)."""
    last = contender.progress()
    prev_cpu = time.process_time()
    seen.append((time.monotonic(), prev_cpu, last))
    while True:
        await asyncio.sleep(0.002 if len(seen) == 1 else 0.001)
        cpu = time.process_time()
        cur = contender.progress()
        if cur != last:
            if len(seen) == 1:   # frames started arriving since the previous poll
                seen[0] = (seen[0][0], prev_cpu, last)
            seen.append((time.monotonic(), time.process_time(), cur))
            last = cur
        prev_cpu = cpu


def _reached(progress: Any, target: Any) -> bool:
    """Bytes counted >= bytes sent, or every book at its final seq."""
    return progress >= target if isinstance(target, int) else progress == target


async def _throughput(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Client-process body of one contender's throughput run."""
    keys = _pick_keys(args.markets, args.seed, args.books)
    server = await ServerProc.start(markets=args.markets, seed=args.seed, rate=0,
                                    cpu=args.server_cpu)
    if name == "count-bytes":
        contender: Any = ByteCounter()
    elif name.startswith("native"):
        contender = Engine("native")
    elif name.startswith("orjson"):
        contender = Engine("orjson")
    elif name.startswith("picows+"):
        contender = HandWritten(name)
    elif name.startswith("compat"):
        contender = SdkLike("parsec_fast.compat", name.partition("-")[2] or None)
    else:
        contender = SdkLike("parsec_api.streaming", name.partition("-")[2] or None)
    result: dict[str, Any] = {"runs": []}
    try:
        await contender.start(server.url, keys, args.depth)
        for _ in range(args.repeats):
            if isinstance(contender, ByteCounter):
                contender.reset()
            seen: list[tuple[float, float, Any]] = []
            watcher = asyncio.create_task(_watch(contender, seen))
            server.send({"cmd": "blast", "n": args.deltas})
            reply = await server.reply()
            target: Any = reply["nbytes"] if isinstance(contender, ByteCounter) else [
                reply["expected"][f"{p}|{o}"]["seq"] for p, o in keys]
            t_done = cpu_done = None
            checked = 0
            while t_done is None:
                while checked < len(seen) and t_done is None:
                    if _reached(seen[checked][2], target):
                        t_done, cpu_done = seen[checked][0], seen[checked][1]
                    checked += 1
                if t_done is None:
                    await asyncio.sleep(0.001)
            watcher.cancel()
            cpu = cpu_done - seen[0][1]
            elapsed = t_done - reply["t_write_start"]
            result["runs"].append({"frames": reply["frames"], "nbytes": reply["nbytes"],
                                   "elapsed_s": elapsed, "deltas_per_s": reply["frames"] / elapsed,
                                   "client_cpu_s": cpu,
                                   "deltas_per_cpu_s": reply["frames"] / cpu if cpu > 0 else None,
                                   "server_generate_s": reply["generate_s"],
                                   "server_write_s": reply["write_s"]})
            result["expected"] = reply["expected"]
        expected = result.pop("expected")
        if not isinstance(contender, ByteCounter):
            bad = _compare(contender.books(), expected)
            result["books_checked"] = len(expected)
            result["books_mismatched"] = len(bad)
            result["mismatched_keys"] = bad[:5]
    finally:
        try:
            await contender.close()
        finally:
            await server.stop()
    rates = [r["deltas_per_s"] for r in result["runs"]]
    result["deltas_per_s"] = statistics.median(rates)
    per_cpu = [r["deltas_per_cpu_s"] for r in result["runs"] if r["deltas_per_cpu_s"]]
    result["deltas_per_cpu_s"] = statistics.median(per_cpu) if per_cpu else None
    result["deltas_per_run"] = args.deltas
    result["bytes_per_frame"] = result["runs"][0]["nbytes"] / max(1, result["runs"][0]["frames"])
    return result


async def _paced(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Client-process body of a paced latency run (our engine only)."""
    from parsec_fast.server import make_markets

    # Every outcome of every market: the server's rate is spread over all of them.
    keys = [(s.parsec_id, o) for s in make_markets(args.markets, args.seed) for o in s.outcomes]
    server = await ServerProc.start(markets=args.markets, seed=args.seed, rate=args.paced_rate,
                                    cpu=args.server_cpu)
    expected_frames = args.paced_rate * args.paced_seconds
    engine = Engine("native" if name.startswith("native") else "orjson",
                    latency_sample_every=max(1, int(expected_frames // 4000)))
    try:
        await engine.start(server.url, keys, args.depth)
        await asyncio.sleep(0.5)
        m0 = engine.client.metrics
        t0 = time.monotonic()
        await asyncio.sleep(args.paced_seconds)
        m1 = engine.client.metrics
        elapsed = time.monotonic() - t0
    finally:
        await engine.close()
        await server.stop()
    return {"deltas_per_s": (m1.deltas_applied - m0.deltas_applied) / elapsed,
            "frames_per_s": (m1.frames - m0.frames) / elapsed,
            "latency_p50_us": m1.latency_p50_us, "latency_p90_us": m1.latency_p90_us,
            "latency_p99_us": m1.latency_p99_us, "latency_samples": m1.latency_samples,
            "gaps": m1.gaps, "books": len(keys)}


def _client_main(args: argparse.Namespace) -> None:
    """``--_client NAME``: one contender in this (fresh) process; prints a RESULT line."""
    from parsec_fast.client import run

    name = args._client
    body = _paced(name, args) if args.paced else _throughput(name, args)
    result = run(body, use_uvloop=CONTENDERS[name][1])
    print("RESULT " + json.dumps(result), flush=True)


# ── orchestration ──────────────────────────────────────────────────────────────────────────────


def _cpus() -> tuple[int | None, int | None]:
    """(client core, server core) when pinning is possible."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return None, None
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return None, None
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else (None, None)


def _run_child(name: str, args: argparse.Namespace, paced: bool) -> dict[str, Any]:
    client_cpu, server_cpu = (None, None) if args.no_pin else _cpus()
    cmd = [sys.executable, THIS, "--_client", name, "--deltas", str(args.deltas),
           "--repeats", str(args.repeats), "--markets", str(args.markets), "--books",
           str(args.books), "--depth", str(args.depth), "--seed", str(args.seed),
           "--paced-rate", str(args.paced_rate), "--paced-seconds", str(args.paced_seconds)]
    if server_cpu is not None:
        cmd += ["--server-cpu", str(server_cpu)]
        cmd = ["taskset", "-c", str(client_cpu)] + cmd
    if paced:
        cmd.append("--paced")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def _available(name: str) -> str | None:
    """None if the contender can run here, else why not."""
    mods = {"compat": "parsec_fast.compat", "sdk": "parsec_api.streaming",
            "native-uvloop": "uvloop", "orjson-uvloop": "uvloop", "count-bytes": "uvloop",
            "picows+orjson+SortedDict": "sortedcontainers", "picows+msgspec+order-book": "msgspec"}
    mod = mods.get(name.split("-")[0] if name in SDK_API else name)
    if mod is None:
        return None
    try:
        __import__(mod)
    except ImportError as exc:
        return f"{mod} not importable ({exc})"
    return None


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=HERE).stdout.strip()
    except OSError:
        commit = ""
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cpus": os.cpu_count(), "commit": commit,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests (seconds)")
    ap.add_argument("--deltas", type=int, default=None,
                    help="deltas per blast (default 400000; quick 5000)")
    ap.add_argument("--sdk-deltas", type=int, default=None,
                    help="deltas per blast for the SDK-API contenders sdk*/compat* (default "
                         "100000; quick 2000); same stream, a prefix")
    ap.add_argument("--repeats", type=int, default=None, help="blasts per contender (default 3)")
    ap.add_argument("--markets", type=int, default=24, help="simulated markets on the server")
    ap.add_argument("--books", type=int, default=12, help="books subscribed and blasted")
    ap.add_argument("--depth", type=int, default=50, help="subscribed depth per side")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--paced-rate", type=float, default=20_000.0,
                    help="simulator events/s in the paced latency run (default 20000)")
    ap.add_argument("--paced-seconds", type=float, default=None, help="default 5; quick 1")
    ap.add_argument("--contenders", default=None,
                    help=f"comma-separated subset of: {', '.join(CONTENDERS)}")
    ap.add_argument("--no-paced", action="store_true", help="skip the paced latency run")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    ap.add_argument("--timeout", type=float, default=900.0, help="per contender process, s")
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    ap.add_argument("--_server", help=argparse.SUPPRESS)
    ap.add_argument("--_client", help=argparse.SUPPRESS)
    ap.add_argument("--server-cpu", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--paced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._server:
        _server_main(args._server)
        return 0
    if args.paced_seconds is None:
        args.paced_seconds = 1.0 if args.quick else 5.0
    if args._client:
        _client_main(args)
        return 0

    fast_n = args.deltas or (5_000 if args.quick else 400_000)
    slow_n = args.sdk_deltas or (2_000 if args.quick else 100_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    names = list(CONTENDERS) if args.contenders is None else \
        [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contender(s) {unknown}; choose from {list(CONTENDERS)}")
    client_cpu, server_cpu = (None, None) if args.no_pin else _cpus()
    t_start = time.perf_counter()
    out: dict[str, Any] = {
        "meta": {**_machine(), "quick": args.quick, "deltas_fast": fast_n, "deltas_slow": slow_n,
                 "repeats": args.repeats, "books": args.books, "markets": args.markets,
                 "depth": args.depth, "seed": args.seed, "client_cpu": client_cpu,
                 "server_cpu": server_cpu, "chunk_bytes": 256 * 1024},
        "throughput": {}, "skipped": {}, "paced": {}, "targets": {}}
    print(f"e2e: {args.books} books at depth {args.depth}, blasts of {fast_n:,} deltas "
          f"({slow_n:,} for sdk*/compat*) x {args.repeats}; client cpu {client_cpu}, "
          f"server cpu {server_cpu}", flush=True)
    for name in names:
        why = _available(name)
        if why is not None:
            out["skipped"][name] = why
            print(f"  {name:15s} skipped: {why}", flush=True)
            continue
        args.deltas = slow_n if name in SDK_API else fast_n
        res = _run_child(name, args, paced=False)
        res["label"] = CONTENDERS[name][0]
        out["throughput"][name] = res
        if "error" in res:
            print(f"  {name:15s} ERROR {res['error']}", flush=True)
        else:
            mism = res.get("books_mismatched")
            per_cpu = res.get("deltas_per_cpu_s")
            print(f"  {name:15s} {_fmt_rate(res['deltas_per_s']):>9s} deltas/s wall, "
                  f"{_fmt_rate(per_cpu):>9s} per client CPU-s"
                  + ("" if mism is None else f"   books wrong: {mism}/{res['books_checked']}"),
                  flush=True)
    tp = {k: v for k, v in out["throughput"].items() if "deltas_per_s" in v}
    for name, res in tp.items():
        base = tp.get(_sdk_ratio_base(name), {})
        sdk, sdk_cpu = base.get("deltas_per_s"), base.get("deltas_per_cpu_s")
        res["ratio_to"] = _sdk_ratio_base(name)
        res["ratio_to_sdk"] = res["deltas_per_s"] / sdk if sdk else None
        per_cpu = res.get("deltas_per_cpu_s")
        res["ratio_to_sdk_cpu"] = per_cpu / sdk_cpu if per_cpu and sdk_cpu else None
    if not args.no_paced:
        for name in ("native-uvloop", "orjson-uvloop"):
            if name not in names or _available(name) is not None:
                continue
            res = _run_child(name, args, paced=True)
            out["paced"][name] = res
            if "error" in res:
                print(f"  paced {name}: ERROR {res['error']}", flush=True)
            else:
                print(f"  paced {name:15s} {res['deltas_per_s']:,.0f} deltas/s applied, latency "
                      f"p50 {res['latency_p50_us']:.1f} us, p90 {res['latency_p90_us']:.1f} us, "
                      f"p99 {res['latency_p99_us']:.1f} us", flush=True)
    out["targets"] = _targets(tp)
    for t in out["targets"].values():
        mark = "met" if t["met"] else ("MISSED" if t["met"] is False else "n/a")
        print(f"  target {t['what']}: {t['value']} -> {mark}", flush=True)
    out["elapsed_s"] = time.perf_counter() - t_start
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json} ({out['elapsed_s']:.1f} s)", flush=True)
    return 0


def _targets(tp: dict[str, Any]) -> dict[str, Any]:
    """Targets of issues 5 and 7 and of the compat handler shapes, as measured in this run
    (None when a side is missing)."""
    def ratio(name: str) -> float | None:
        return tp.get(name, {}).get("ratio_to_sdk")

    engine = max((r for r in (ratio("native-uvloop"), ratio("native-asyncio"),
                              ratio("orjson-uvloop")) if r is not None), default=None)
    native = tp.get("native-uvloop", {}).get("deltas_per_s")
    rows = {
        "engine_vs_sdk": ("issue 5: best engine contender >= 10x SDK", engine, 10.0),
        "native_vs_sdk": ("issue 7: native >= 50x SDK", ratio("native-uvloop"), 50.0),
        "native_deltas_per_s": ("issue 7: native >= 2 M deltas/s on one core", native, 2e6),
    }
    for shape in HANDLER_SHAPES:  # compat with an SDK user's handler, vs the SDK with the same
        goal = 1.5 if shape == "iterate" else 10.0
        rows[f"compat_{shape}_vs_sdk"] = (
            f"compat >= {goal:g}x SDK, handler {shape}", ratio(f"compat-{shape}"), goal)
    out = {}
    for key, (what, value, goal) in rows.items():
        out[key] = {"what": what, "goal": goal,
                    "value": None if value is None else round(value, 2),
                    "met": None if value is None else value >= goal}
    return out


if __name__ == "__main__":
    sys.exit(main())
