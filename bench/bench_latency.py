"""Latency from the server's send to "book updated and visible to user code" (suite 5).

Run from the repo root::

    python bench/bench_latency.py                # full run: 2 rates x 2 market counts x 5 rounds
    python bench/bench_latency.py --quick        # seconds, for the smoke test
    python bench/bench_latency.py --rates 20000 --markets 1 --rounds 3 --contenders raw-busypoll,pf-busy-callback

What is measured. A **sender process** pinned to one core (``taskset``) plays the server: a raw
socket speaking just enough WebSocket and Parsec (handshake, ``auth_ok``, one ``orderbook``
snapshot per subscribed market) and then paces pre-encoded ``orderbook_delta`` frames (the
seeded realistic stream of ``bench/stream.py``, PROTOCOL.md's fields and nothing else), one
``send()`` per delta, at a fixed rate: open loop, each frame's send time fixed in advance, the
sender spinning (it has its own core) until it is due. Immediately before each ``send`` it reads
``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for every process of a host) and records
``(market, seq, send ns, end offset of the frame in the connection's byte stream)``. With 100
markets each delta's market is drawn at random (seeded). TCP_NODELAY is set.

A **client process** pinned to the other core runs one contender. It records, at the moment user
code runs with the book already updated, ``(market, seq, time.monotonic_ns())``: as the first
statement of the ``book_updated`` callback, or of the body of ``async for event in
client.events()``, or of the hand-written clients' per-delta callback. Nothing is added to the
frames and nothing on the contenders' receive paths changes: the two records are **joined
afterwards** by (market, seq). A contender that coalesces (parsec_fast reports a book once per
read batch, with the book's latest seq) makes a delta visible at the first record of its market
with a seq >= its own: that is when user code could first see it. The raw floors parse nothing:
they record ``(time after recv returned, bytes received so far)`` and a delta is visible at the
first read that brought its last byte in.

Latency = visible - sent, per delta, after a warm-up (the first ``--warmup`` seconds of deltas
are dropped). Per run: p50 / p99 / p99.9 / max, lost deltas (never visible), reordered ones (a
market's visible seqs going backwards), the final books against the stream's (exact), and the
client's CPU: user + system seconds of the client process (``getrusage``) from the start of the
paced phase to its end, divided by the wall time (1.0 = one core busy all the time).

Contenders (each run is a fresh client process; in each round every contender runs once, in an
order rotated from round to round, so slow drifts of the shared machine hit all of them):

* ``raw-blocking``: the floor of a sleeping receiver: blocking ``recv_into``, no parsing.
* ``raw-busypoll``: the floor of a spinning receiver: a non-blocking ``recv_into`` in a loop
  (an empty one raises ``BlockingIOError``, ~1.1 µs).
* ``raw-sobusypoll`` (only when named): ``raw-blocking`` with the socket's ``SO_BUSY_POLL``
  (50 µs): the kernel's own busy poll of the device queue (a candidate mechanism; it needs a
  NAPI device).
* ``raw-epollspin``: the other way to spin: ``epoll_wait(0)`` in a loop (~250 ns when empty),
  then one non-blocking ``recv_into``. The busy-poll targets use, per round, the lower of the
  two spinning floors.
* ``pf-callback`` / ``pf-iterator``: ``parsec_fast.Client`` as users run it (``run()``: uvloop),
  a ``book_updated`` callback / the ``events()`` iterator.
* ``pf-busy-callback`` / ``pf-busy-iterator``: the same with ``busy_poll=True``.
* ``picows+orjson+SortedDict``, ``picows+msgspec+order-book``: the hand-written clients of
  ``bench/contenders.py`` (uvloop), a callback per applied delta.
* ``sdk``: the official SDK's ``ParsecWebSocket`` (websockets, asyncio), its ``orderbook``
  callback (20 k deltas/s only: it cannot sustain 100 k/s on one core).

Reported per (contender, rate, markets): the median over rounds of each figure and its spread
(min-max over rounds); ratios to the floors are the median over rounds of the per-round ratio
(contender / floor measured in the same round). The machine is shared: check ``uptime``, and
treat p99.9 as the noisiest figure (it swings several-fold between rounds).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
THIS = os.path.abspath(__file__)
DEFAULT_JSON = os.path.join(HERE, "out", "latency.json")
sys.path.insert(0, HERE)

#: name -> (label, kind). kind: "floor" (raw bytes), "pf" (parsec_fast), "hand", "sdk".
CONTENDERS: dict[str, tuple[str, str]] = {
    "raw-blocking": ("raw socket, blocking recv, no parsing (floor)", "floor"),
    "raw-busypoll": ("raw socket, busy-poll non-blocking recv, no parsing (floor)", "floor"),
    "raw-epollspin": ("raw socket, epoll_wait(0) loop then non-blocking recv, no parsing (floor)",
                      "floor"),
    "raw-sobusypoll": ("raw socket, blocking recv with SO_BUSY_POLL=50 us (the kernel's own busy "
                       "poll), no parsing", "floor"),
    "pf-callback": ("parsec_fast.Client, book_updated callback (default)", "pf"),
    "pf-iterator": ("parsec_fast.Client, events() iterator (default)", "pf"),
    "pf-busy-callback": ("parsec_fast.Client(busy_poll=True), callback", "pf"),
    "pf-busy-iterator": ("parsec_fast.Client(busy_poll=True), events() iterator", "pf"),
    "picows+orjson+SortedDict": ("hand-written: picows, orjson, SortedDict, callback", "hand"),
    "picows+msgspec+order-book": ("hand-written: picows, msgspec, order-book C ext, callback",
                                  "hand"),
    "sdk": ("official SDK parsec_api ParsecWebSocket, orderbook callback", "sdk"),
}
#: Run only when named (the mechanism comparison of results_notes.md).
EXTRA_CONTENDERS = ("raw-sobusypoll",)
QUICK_CONTENDERS = ["raw-blocking", "raw-epollspin", "pf-callback", "pf-busy-iterator"]
FLOORS = ("raw-blocking", "raw-busypoll", "raw-epollspin")
#: Contenders that cannot keep up above this rate on one core (skipped, and said so).
MAX_RATE = {"sdk": 20_000}
DEPTH = 50
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def market_ids(n: int) -> list[tuple[str, str]]:
    """The (parsec_id, outcome) of the ``n`` markets, shared by sender and clients."""
    return [(f"polymarket:{572473 + i}", "Yes") for i in range(n)]


# ── WebSocket framing (just enough) ─────────────────────────────────────────────────────────────


def server_frame(payload: bytes, opcode: int = 1) -> bytes:
    """An unmasked server frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + struct.pack(">H", n)
    else:
        head = bytes((0x80 | opcode, 127)) + struct.pack(">Q", n)
    return head + payload


def client_frame(payload: bytes) -> bytes:
    """A masked client text frame (mask key 0: the payload goes as is, which is legal)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + struct.pack(">H", n)
    else:
        head = bytes((0x81, 0x80 | 127)) + struct.pack(">Q", n)
    return head + b"\0\0\0\0" + payload


class FrameReader:
    """Reads client frames from a blocking socket (unmasking them)."""

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(initial)

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("peer closed")
            self.buf += chunk

    def read(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        masked, pos = self.buf[1] & 0x80, 2
        if n == 126:
            self._need(4)
            n, pos = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, pos = struct.unpack(">Q", self.buf[2:10])[0], 10
        mask = b""
        if masked:
            self._need(pos + 4)
            mask, pos = bytes(self.buf[pos:pos + 4]), pos + 4
        self._need(pos + n)
        data = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        if mask and mask != b"\0\0\0\0":
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return opcode, data


# ── sender process ─────────────────────────────────────────────────────────────────────────────


class Plan:
    """The paced stream of one configuration: every delta frame (WebSocket-framed), its market
    and seq, each market's snapshot frame and final book."""

    def __init__(self, markets: int, n_deltas: int, seed: int) -> None:
        from stream import make_stream, stream_frames

        rng = random.Random(seed)
        order = [rng.randrange(markets) for _ in range(n_deltas)] if markets > 1 \
            else [0] * n_deltas
        counts = [order.count(m) for m in range(markets)] if markets > 1 else [n_deltas]
        ids = market_ids(markets)
        self.snapshots: dict[tuple[str, str], bytes] = {}
        self.final: list[dict[str, Any]] = []
        per_market: list[list[tuple[bytes, int]]] = []
        for m, (pid, outcome) in enumerate(ids):
            st = make_stream(DEPTH, max(1, counts[m]), seed=seed * 1000 + m)
            snap, frames = stream_frames(st, parsec_id=pid, outcome=outcome)
            self.snapshots[(pid, outcome.lower())] = server_frame(snap)
            per_market.append([(server_frame(f), seq) for f, (_, seq) in zip(frames, st.deltas)])
            self.final.append({"seq": st.deltas[counts[m] - 1][1] if counts[m] else st.snapshot_seq,
                               "bids": st.final_bids, "asks": st.final_asks})
        pos = [0] * markets
        self.frames: list[bytes] = []
        self.market = array("q")
        self.seq = array("q")
        for m in order:
            frame, seq = per_market[m][pos[m]]
            pos[m] += 1
            self.frames.append(frame)
            self.market.append(m)
            self.seq.append(seq)


def _handshake(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read the HTTP upgrade request; return (the 101 response, bytes read past it)."""
    req = b""
    while b"\r\n\r\n" not in req:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during handshake")
        req += chunk
    head, _, rest = req.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", head)
    if match is None:
        raise ConnectionError("no Sec-WebSocket-Key")
    accept = base64.b64encode(hashlib.sha1(match.group(1) + WS_GUID).digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"), rest


def _serve_one(listener: socket.socket, plan: Plan, rate: float, record: str,
               commands: Any) -> dict[str, Any]:
    """One client connection: handshake, auth, snapshots, wait for "go", pace, close."""
    import orjson

    listener.settimeout(60)
    sock, _ = listener.accept()
    sock.settimeout(60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = 0

    def send(data: bytes) -> None:
        nonlocal sent
        sock.sendall(data)
        sent += len(data)

    response, rest = _handshake(sock)
    send(response)
    reader = FrameReader(sock, rest)
    want = len(plan.snapshots)
    subscribed: set[tuple[str, str]] = set()
    while len(subscribed) < want:
        opcode, data = reader.read()
        if opcode == 8:
            raise ConnectionError("client closed before subscribing")
        if opcode == 9:  # ping
            send(server_frame(data, 10))
            continue
        if opcode != 1:
            continue
        msg = orjson.loads(data)
        if msg.get("type") in ("auth", "auth_terminal"):
            send(server_frame(b'{"type":"auth_ok","customer_id":"bench"}'))
        elif msg.get("type") == "subscribe":
            for sel in msg.get("markets") or []:
                key = (sel.get("parsec_id"), (sel.get("outcome") or "Yes").lower())
                if key in plan.snapshots and key not in subscribed:
                    subscribed.add(key)
                    send(plan.snapshots[key])
    print(json.dumps({"event": "subscribed"}), flush=True)
    cmd = commands()
    if cmd.get("cmd") != "go":
        sock.close()
        return {"aborted": cmd}
    n = len(plan.frames)
    frames = plan.frames
    send_ns = array("q", bytes(8 * n))
    late_ns = array("q", bytes(8 * n))
    end_off = array("q", bytes(8 * n))
    interval = 1e9 / rate
    mono = time.monotonic_ns
    sock.setblocking(True)
    raw_send = sock.send
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = mono() + 2_000_000
    for i in range(n):
        target = t0 + int(i * interval)
        now = mono()
        while now < target:
            now = mono()
        frame = frames[i]
        t = mono()
        k = raw_send(frame)
        if k != len(frame):
            sock.sendall(frame[k:])
        sent += len(frame)
        send_ns[i] = t
        late_ns[i] = t - target
        end_off[i] = sent
    t_end = mono()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.05)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    import numpy as np

    np.savez(record, send_ns=np.frombuffer(send_ns, dtype=np.int64),
             late_ns=np.frombuffer(late_ns, dtype=np.int64),
             end_off=np.frombuffer(end_off, dtype=np.int64),
             market=np.frombuffer(plan.market, dtype=np.int64),
             seq=np.frombuffer(plan.seq, dtype=np.int64))
    return {"frames": n, "seconds": (t_end - t0) / 1e9,
            "cpu_s": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime}


def _sender_main(config_json: str) -> None:
    """``--_sender``: build the plan, listen, print the port, obey JSON lines on stdin."""
    cfg = json.loads(config_json)
    plan = Plan(cfg["markets"], cfg["n"], cfg["seed"])
    with open(cfg["final"], "w") as f:
        json.dump(plan.final, f)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)

    def commands() -> dict[str, Any]:
        line = sys.stdin.readline()
        return json.loads(line) if line.strip() else {"cmd": "quit"}

    while True:
        cmd = commands()
        if cmd.get("cmd") != "serve":
            return
        try:
            res = _serve_one(listener, plan, cfg["rate"], cmd["record"], commands)
        except (OSError, ConnectionError) as exc:
            res = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({"event": "done", **res}), flush=True)


# ── client process ─────────────────────────────────────────────────────────────────────────────


class Control:
    """The client's side of the orchestrator's stdin: ``mark`` (the paced phase starts: take the
    CPU and wall clocks) and ``stop``. A thread blocked in ``read`` costs nothing meanwhile."""

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.on_stop = on_stop
        self.mark: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None
        self.stopped = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def clocks() -> tuple[float, float]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return time.monotonic(), ru.ru_utime + ru.ru_stime

    def finish(self) -> None:
        """The paced phase is over for this client (EOF or stop), take the clocks once."""
        if self.end is None and self.mark is not None:
            self.end = self.clocks()

    def _read(self) -> None:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "mark":
                self.mark = self.clocks()
            elif cmd == "stop":
                break
        self.finish()
        self.stopped.set()
        if self.on_stop is not None:
            self.on_stop()

    def cpu(self) -> float | None:
        if self.mark is None or self.end is None or self.end[0] <= self.mark[0]:
            return None
        return (self.end[1] - self.mark[1]) / (self.end[0] - self.mark[0])


def _raw_connect(port: int, markets: list[tuple[str, str]]) -> socket.socket:
    import orjson

    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    sock.sendall(client_frame(orjson.dumps({"type": "auth", "api_key": "bench"})))
    sock.sendall(client_frame(orjson.dumps({"type": "subscribe", "markets": [
        {"parsec_id": p, "outcome": o, "depth": DEPTH} for p, o in markets]})))
    return sock


def _run_floor(name: str, port: int, markets: list[tuple[str, str]], out: str) -> dict[str, Any]:
    """The raw floors: every read's (time, bytes so far); nothing parsed."""
    import numpy as np

    sock = _raw_connect(port, markets)
    ctl = Control()
    buf = bytearray(1 << 20)
    times = array("q")
    totals = array("q")
    total = 0
    mono = time.monotonic_ns
    recv_into = sock.recv_into
    t_append, n_append = times.append, totals.append
    print("READY", flush=True)
    if name == "raw-sobusypoll":  # the kernel busy-polls the device queue in recv, up to 50 us
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_BUSY_POLL", 46), 50)
    if name in ("raw-blocking", "raw-sobusypoll"):  # (the spinning floors record the same way)
        while True:
            n = recv_into(buf)
            t = mono()
            if not n:
                break
            total += n
            t_append(t)
            n_append(total)
    elif name == "raw-busypoll":
        sock.setblocking(False)
        while True:
            try:
                n = recv_into(buf)
            except BlockingIOError:
                continue
            t = mono()
            if not n:
                break
            total += n
            t_append(t)
            n_append(total)
    else:
        import select

        sock.setblocking(False)
        ep = select.epoll()
        ep.register(sock.fileno(), select.EPOLLIN)
        poll = ep.poll
        while True:
            if not poll(0):
                continue
            try:
                n = recv_into(buf)
            except BlockingIOError:  # pragma: no cover - epoll said readable
                continue
            t = mono()
            if not n:
                break
            total += n
            t_append(t)
            n_append(total)
    ctl.finish()
    np.savez(out, t=np.frombuffer(times, dtype=np.int64), total=np.frombuffer(totals, dtype=np.int64))
    return {"cpu": ctl.cpu()}


class Recorder:
    """What every framed contender's user code does first: (market, seq, now) into arrays."""

    def __init__(self, markets: list[tuple[str, str]]) -> None:
        self.index = {p: i for i, (p, _) in enumerate(markets)}
        self.market = array("q")
        self.seq = array("q")
        self.t = array("q")

    def save(self, out: str, books: list[dict[str, Any]] | None, extra: dict[str, Any]) -> None:
        import numpy as np

        np.savez(out, market=np.frombuffer(self.market, dtype=np.int64),
                 seq=np.frombuffer(self.seq, dtype=np.int64),
                 t=np.frombuffer(self.t, dtype=np.int64))
        with open(out + ".json", "w") as f:
            json.dump({"books": books, **extra}, f)


def _pf_main(name: str, port: int, markets: list[tuple[str, str]], out: str,
             loop_kind: str, mechanism: str) -> dict[str, Any]:
    """parsec_fast.Client: callback or iterator, default or busy-poll, in the loop users get
    (``run()``: uvloop; busy-poll: the loop ``Client.run`` makes for it). ``loop_kind`` /
    ``mechanism`` (``name@loop+mechanism`` on the command line) override that for the
    mechanism comparison: loop ``uvloop`` or ``asyncio``; mechanism ``callback`` makes the
    busy poller use its spinning callback (a plain loop, not the busy-poll loop), ``nowatch``
    turns off the spinning callback's socket watch."""
    import asyncio

    from parsec_fast.client import Client
    from parsec_fast.client.runner import loop_factory, run_in_loop

    rec = Recorder(markets)
    busy = "busy" in name
    result: dict[str, Any] = {}

    async def body() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        ctl = Control(lambda: loop.call_soon_threadsafe(done.set))
        client = Client(f"ws://127.0.0.1:{port}/ws", api_key="bench", heartbeat_interval=30.0,
                        reconnect=False, busy_poll=busy)
        index, m_app, s_app, t_app = rec.index, rec.market.append, rec.seq.append, rec.t.append
        mono = time.monotonic_ns
        client.on("disconnected", lambda ev: done.set())
        if name.endswith("callback"):
            def on_update(ev: Any) -> None:
                t = mono()
                m_app(index[ev.parsec_id])
                s_app(ev.seq)
                t_app(t)
            client.on("book_updated", on_update)
        task = None
        if name.endswith("iterator"):
            stream = client.events(kinds=["book_updated"], maxsize=1_000_000)

            async def consume() -> None:
                async for ev in stream:
                    t = mono()
                    m_app(index[ev.parsec_id])
                    s_app(ev.seq)
                    t_app(t)
            task = asyncio.ensure_future(consume())
        await client.start()
        await client.subscribe([{"parsec_id": p, "outcome": o} for p, o in markets], depth=DEPTH,
                               timeout=30)
        print("READY", flush=True)
        await done.wait()
        ctl.finish()
        m = client.metrics
        if task is not None:
            await asyncio.sleep(0)
            task.cancel()
        books = [{"seq": client.book(p, o).seq, "bids": client.book(p, o).bids(),
                  "asks": client.book(p, o).asks()} for p, o in markets]
        await client.close()
        result["cpu"] = ctl.cpu()
        result["gaps"] = m.gaps
        result["metrics"] = {k: getattr(m, k) for k in (
            "latency_samples", "latency_p50_us", "latency_p99_us", "latency_p999_us",
            "callback_latency_samples", "callback_latency_p50_us", "callback_latency_p99_us",
            "callback_latency_p999_us")}
        rec.save(out, books, {})

    use_uvloop = {"uvloop": True, "asyncio": False}.get(loop_kind)
    if mechanism == "nowatch":  # the spinning callback without its socket watch (comparison)
        from parsec_fast.client.busypoll import BusyPoll
        BusyPoll.watch = lambda self, fd: None  # type: ignore[method-assign]
    if busy and mechanism == "callback":
        factory = loop_factory(bool(use_uvloop))
    else:
        factory = loop_factory(use_uvloop, busy_poll=busy)
    run_in_loop(body(), factory)
    return result


def _hand_main(name: str, port: int, markets: list[tuple[str, str]], out: str) -> dict[str, Any]:
    """The hand-written picows clients of contenders.py, under uvloop."""
    import asyncio

    import uvloop
    from contenders import HAND_WRITTEN_CLIENTS

    rec = Recorder(markets)
    result: dict[str, Any] = {}

    async def body() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        ctl = Control(lambda: loop.call_soon_threadsafe(done.set))
        client = HAND_WRITTEN_CLIENTS[name]()
        m_app, s_app, t_app = rec.market.append, rec.seq.append, rec.t.append
        mono = time.monotonic_ns

        def on_update(i: int, seq: int) -> None:
            t = mono()
            m_app(i)
            s_app(seq)
            t_app(t)

        await client.start(f"ws://127.0.0.1:{port}/ws", markets, DEPTH, on_update)
        print("READY", flush=True)
        await done.wait()
        ctl.finish()
        books = []
        for i in range(len(markets)):
            bids, asks = client.levels(i)
            books.append({"seq": client.seqs[i], "bids": bids, "asks": asks})
        await client.close()
        result["cpu"] = ctl.cpu()
        result["gaps"] = client.gaps
        rec.save(out, books, {})

    uvloop.run(body())
    return result


def _sdk_main(port: int, markets: list[tuple[str, str]], out: str) -> dict[str, Any]:
    """The official SDK, as its users run it (asyncio loop)."""
    import asyncio

    from parsec_api.streaming import MarketSubscription, ParsecWebSocket

    rec = Recorder(markets)
    result: dict[str, Any] = {}

    async def body() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        ctl = Control(lambda: loop.call_soon_threadsafe(done.set))
        ws = ParsecWebSocket(api_key="bench", ws_url=f"ws://127.0.0.1:{port}/ws")
        index, m_app, s_app, t_app = rec.index, rec.market.append, rec.seq.append, rec.t.append
        mono = time.monotonic_ns

        async def on_book(book: Any) -> None:
            t = mono()
            if book.kind == "delta":
                m_app(index[book.parsec_id])
                s_app(book.server_seq)
                t_app(t)

        async def on_disconnected(*_: Any) -> None:
            done.set()

        ws.on("orderbook")(on_book)
        ws.on("disconnected")(on_disconnected)
        await ws.connect()
        ws.subscribe([MarketSubscription(p, o, DEPTH) for p, o in markets])
        deadline = time.monotonic() + 30
        while any(ws.get_book(p, o) is None for p, o in markets):
            if time.monotonic() > deadline:
                raise TimeoutError("snapshots did not arrive")
            await asyncio.sleep(0.005)
        print("READY", flush=True)
        await done.wait()
        ctl.finish()
        books = []
        for p, o in markets:
            b = ws.get_book(p, o) or {"bids": [], "asks": [], "last_seq": None}
            books.append({"seq": b["last_seq"], "bids": [(x["price"], x["size"]) for x in b["bids"]],
                          "asks": [(x["price"], x["size"]) for x in b["asks"]]})
        try:
            await asyncio.wait_for(ws.close(), 5)
        except Exception:
            pass
        result["cpu"] = ctl.cpu()
        rec.save(out, books, {})

    asyncio.run(body())
    return result


def _client_main(args: argparse.Namespace) -> None:
    """``--_client NAME``: one contender in this process; prints a RESULT line."""
    if os.environ.get("PF_LATENCY_NO_GC"):  # diagnostics: is a p99 the garbage collector's?
        import gc
        gc.disable()
    name = args._client
    markets = market_ids(args.n_markets)
    kind = CONTENDERS[name][1]
    if kind == "floor":
        res = _run_floor(name, args.port, markets, args.out)
    elif kind == "pf":
        res = _pf_main(name, args.port, markets, args.out, args.loop, args.mechanism)
    elif kind == "hand":
        res = _hand_main(name, args.port, markets, args.out)
    else:
        res = _sdk_main(args.port, markets, args.out)
    print("RESULT " + json.dumps(res), flush=True)
    sys.stdout.flush()
    os._exit(0)  # no lingering threads (the stdin reader) or loop teardown in the figures


# ── joining and statistics ─────────────────────────────────────────────────────────────────────


def _quantiles(lat_ns: Any) -> dict[str, float]:
    import numpy as np

    q = np.quantile(lat_ns, [0.5, 0.99, 0.999], method="inverted_cdf") / 1e3
    return {"p50_us": float(q[0]), "p99_us": float(q[1]), "p999_us": float(q[2]),
            "max_us": float(lat_ns.max() / 1e3), "mean_us": float(lat_ns.mean() / 1e3)}


def join(kind: str, sender: Any, client: Any, n_markets: int, warmup_n: int) -> dict[str, Any]:
    """Per-delta latency (visible - sent) and the lost / reordered counts."""
    import numpy as np

    send_ns = sender["send_ns"]
    n = len(send_ns)
    visible = np.full(n, -1, dtype=np.int64)
    reordered = 0
    if kind == "floor":
        totals, times = client["total"], client["t"]
        j = np.searchsorted(totals, sender["end_off"], side="left")
        ok = j < len(totals)
        visible[ok] = times[j[ok]]
    else:
        cm, cs, ct = client["market"], client["seq"], client["t"]
        for m in range(n_markets):
            sel = sender["market"] == m
            mine = cm == m
            seqs, times = cs[mine], ct[mine]
            if len(seqs) > 1:
                reordered += int(np.count_nonzero(np.diff(seqs) <= 0))
            j = np.searchsorted(seqs, sender["seq"][sel], side="left")
            ok = j < len(seqs)
            idx = np.nonzero(sel)[0]
            visible[idx[ok]] = times[j[ok]]
    lost = int(np.count_nonzero(visible[warmup_n:] < 0))
    lat = (visible - send_ns)[warmup_n:]
    lat = lat[visible[warmup_n:] >= 0]
    out: dict[str, Any] = {"deltas": n - warmup_n, "lost": lost, "reordered": reordered}
    if len(lat):
        out.update(_quantiles(lat))
        out["negative"] = int(np.count_nonzero(lat < 0))
    late = sender["late_ns"][warmup_n:]
    out["sender_late_p99_us"] = float(np.quantile(late, 0.99) / 1e3) if len(late) else None
    return out


def _books_ok(books: list[dict[str, Any]] | None, final: list[dict[str, Any]]) -> bool | None:
    if books is None:
        return None
    for got, want in zip(books, final):
        if got["seq"] != want["seq"]:
            return False
        if [tuple(x) for x in got["bids"]] != [tuple(x) for x in want["bids"]]:
            return False
        if [tuple(x) for x in got["asks"]] != [tuple(x) for x in want["asks"]]:
            return False
    return len(books) == len(final)


# ── orchestration ──────────────────────────────────────────────────────────────────────────────


def _busy_jiffies() -> tuple[int, float]:
    """(busy clock ticks of all cores so far, now): /proc/stat's first line."""
    try:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
    except OSError:  # pragma: no cover - not Linux
        return 0, time.monotonic()
    return sum(vals) - vals[3] - vals[4], time.monotonic()


def _busy_cores(since: tuple[int, float]) -> float:
    """Cores busy (all processes) since ``since``."""
    now = _busy_jiffies()
    return (now[0] - since[0]) / os.sysconf("SC_CLK_TCK") / max(1e-6, now[1] - since[1])


def _wait_quiet(limit: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the machine, with nothing of ours running, is busier
    than ``limit`` cores no more; return the last busy figure."""
    deadline = time.monotonic() + max_wait
    while True:
        t0 = _busy_jiffies()
        time.sleep(0.5)
        busy = _busy_cores(t0)
        if busy <= limit or time.monotonic() >= deadline:
            return busy
        time.sleep(1.5)


def _cpus(no_pin: bool) -> tuple[int | None, int | None]:
    """(client core, sender core): the first two CPUs of this machine, when taskset exists.
    (Not this process's affinity: ``parsec-fast bench --pin`` may have narrowed it.)"""
    if no_pin or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return None, None
    return 0, 1


def _pin(cmd: list[str], cpu: int | None) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu)] + cmd


class Sender:
    """The sender process of one configuration."""

    def __init__(self, markets: int, rate: float, n: int, seed: int, cpu: int | None,
                 tmp: str) -> None:
        self.final_path = os.path.join(tmp, f"final-{markets}-{int(rate)}.json")
        cfg = {"markets": markets, "rate": rate, "n": n, "seed": seed, "final": self.final_path}
        self.proc = subprocess.Popen(_pin([sys.executable, THIS, "--_sender", json.dumps(cfg)], cpu),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self._line(600))["port"]
        with open(self.final_path) as f:
            self.final = json.load(f)

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        result: list[str] = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        t.start()
        t.join(timeout)
        if not result or not result[0]:
            raise RuntimeError("sender process did not answer")
        return result[0]

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def event(self, timeout: float = 120) -> dict[str, Any]:
        return json.loads(self._line(timeout))

    def stop(self, kill: bool = False) -> None:
        try:
            if kill:
                raise ProcessLookupError
            self.send({"cmd": "quit"})
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def _one_run(name: str, sender: Sender, args: argparse.Namespace, markets: int, rate: float,
             client_cpu: int | None, tmp: str, tag: str) -> dict[str, Any]:
    """One contender against the running sender: returns the joined figures of this run."""
    import numpy as np

    rec_s = os.path.join(tmp, f"s-{tag}.npz")
    rec_c = os.path.join(tmp, f"c-{tag}.npz")
    sender.send({"cmd": "serve", "record": rec_s})
    cname, _, variant = name.partition("@")
    loop_kind, _, mechanism = (variant or "default+config").partition("+")
    cmd = [sys.executable, THIS, "--_client", cname, "--port", str(sender.port),
           "--n-markets", str(markets), "--out", rec_c, "--loop", loop_kind,
           "--mechanism", mechanism or "config"]
    proc = subprocess.Popen(_pin(cmd, client_cpu), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"client did not get ready: {line!r} "
                               f"{proc.stderr.read()[-500:] if proc.stderr else ''}")
        ev = sender.event()
        if ev.get("event") != "subscribed":
            raise RuntimeError(f"sender: {ev}")
        proc.stdin.write("mark\n")
        proc.stdin.flush()
        time.sleep(0.02)
        busy0 = _busy_jiffies()
        sender.send({"cmd": "go"})
        done = sender.event(timeout=args.seconds * 10 + 60)
        busy = _busy_cores(busy0)
        wall = time.monotonic() - busy0[1]
        if "error" in done:
            raise RuntimeError(f"sender: {done['error']}")
        time.sleep(0.1)
        try:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        except BrokenPipeError:  # it ended by itself at the connection's end
            pass
        out, err = proc.communicate(timeout=60)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    result_line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if result_line is None:
        raise RuntimeError(f"client failed: {err.strip().splitlines()[-3:]}")
    res = json.loads(result_line[7:])
    kind = CONTENDERS[cname][1]
    s = np.load(rec_s)
    c = np.load(rec_c)
    warmup_n = int(rate * args.warmup)
    figures = join(kind, s, c, markets, warmup_n)
    figures["cpu_cores"] = res.get("cpu")
    # what other processes took meanwhile: all cores' busy time minus the sender's and ours
    figures["foreign_cores"] = round(busy - done.get("cpu_s", 0.0) / wall
                                     - (res.get("cpu") or 0.0), 3)
    if kind != "floor":
        with open(rec_c + ".json") as f:
            figures["books_ok"] = _books_ok(json.load(f)["books"], sender.final)
        figures["gaps"] = res.get("gaps")
    if "metrics" in res:
        figures["client_metrics"] = res["metrics"]
    for path in (rec_s, rec_c, rec_c + ".json"):
        if os.path.exists(path):
            os.remove(path)
    return figures


def _run_with_retries(name: str, sender: Sender, args: argparse.Namespace, markets: int,
                      rate: float, n_deltas: int, client_cpu: int | None, sender_cpu: int | None,
                      tmp: str, tag: str) -> tuple[dict[str, Any], Sender]:
    """One run, re-run (up to ``--retries`` times) while other processes took more than
    ``--max-foreign`` cores during it; the least contended attempt is kept and flagged."""
    best: dict[str, Any] | None = None
    tries = 0
    for attempt in range(args.retries + 1):
        tries += 1
        if args.wait_quiet > 0:
            _wait_quiet(args.max_foreign, args.wait_quiet)
        try:
            r = _one_run(name, sender, args, markets, rate, client_cpu, tmp, f"{tag}-{attempt}")
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            r = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            # the sender may be mid-connection: start a fresh one
            sender.stop(kill=True)
            sender = Sender(markets, rate, n_deltas, args.seed, sender_cpu, tmp)
        if "error" in r:
            best = best or r
            continue
        if best is None or "error" in best or r["foreign_cores"] < best["foreign_cores"]:
            best = r
        if r["foreign_cores"] <= args.max_foreign:
            break
    assert best is not None
    best["attempts"] = tries
    best["contended"] = "error" not in best and best["foreign_cores"] > args.max_foreign
    return best, sender


METRICS = ("p50_us", "p99_us", "p999_us", "max_us", "cpu_cores", "foreign_cores")


#: With at least this many uncontended runs, a cell's figures come from those alone.
MIN_CLEAN = 2


def _usable(r: dict[str, Any]) -> bool:
    return "error" not in r and "p50_us" in r


def _clean(r: dict[str, Any]) -> bool:
    return _usable(r) and not r.get("contended")


def _aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds (and min-max spread): over the uncontended runs when there are at
    least MIN_CLEAN of them, else over every run (``basis`` says which)."""
    good = [r for r in runs if _usable(r)]
    clean = [r for r in good if _clean(r)]
    use = clean if len(clean) >= MIN_CLEAN else good
    out: dict[str, Any] = {"rounds": len(good), "clean_rounds": len(clean),
                           "basis": "uncontended" if use is clean else "all",
                           "errors": [r["error"] for r in runs if "error" in r]}
    for m in METRICS:
        vals = [r[m] for r in use if r.get(m) is not None]
        if vals:
            out[m] = statistics.median(vals)
            out[m + "_spread"] = [min(vals), max(vals)]
    out["contended_rounds"] = sum(1 for r in good if r.get("contended"))
    out["attempts"] = sum(r.get("attempts", 1) for r in runs)
    # correctness counts over every run, contended or not
    out["lost"] = sum(r.get("lost", 0) for r in good)
    out["reordered"] = sum(r.get("reordered", 0) for r in good)
    books = [r.get("books_ok") for r in good if r.get("books_ok") is not None]
    out["books_ok"] = all(books) if books else None
    out["deltas_per_round"] = good[0]["deltas"] if good else None
    late = [r["sender_late_p99_us"] for r in use if r.get("sender_late_p99_us") is not None]
    out["sender_late_p99_us"] = statistics.median(late) if late else None
    return out


def _spin_floor(cell_runs: dict[str, list[dict[str, Any]]], i: int, m: str,
                clean_only: bool) -> float | None:
    """Round ``i``'s busy-poll floor for figure ``m``: the lower of the spinning raw floors."""
    ok = _clean if clean_only else _usable
    vals = [runs[i][m] for name in ("raw-busypoll", "raw-epollspin")
            for runs in [cell_runs.get(name, [])] if i < len(runs) and ok(runs[i])]
    return min(vals) if vals else None


def _pair_ratios(runs: list[dict[str, Any]], floor_of: Callable[[int, str, bool], float | None],
                 m: str) -> tuple[float | None, str]:
    """Median of per-round ratios to the floor: over rounds where both runs were uncontended
    when there are MIN_CLEAN such rounds, else over every round with both runs usable."""
    for clean_only in (True, False):
        ok = _clean if clean_only else _usable
        vals = []
        for i, a in enumerate(runs):
            floor = floor_of(i, m, clean_only)
            if ok(a) and floor:
                vals.append(a[m] / floor)
        if len(vals) >= (MIN_CLEAN if clean_only else 1):
            return statistics.median(vals), "uncontended" if clean_only else "all"
    return None, "none"


def _ratios(cell_runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per contender: median over rounds of (its figure / the floor's figure, same round);
    ``busypoll`` is the lower of the two spinning floors in each round."""
    blocking = cell_runs.get("raw-blocking", [])

    def blocking_of(i: int, m: str, clean_only: bool) -> float | None:
        ok = _clean if clean_only else _usable
        return blocking[i][m] if i < len(blocking) and ok(blocking[i]) else None

    def spin_of(i: int, m: str, clean_only: bool) -> float | None:
        return _spin_floor(cell_runs, i, m, clean_only)

    out: dict[str, dict[str, Any]] = {}
    for name, runs in cell_runs.items():
        r: dict[str, Any] = {}
        for m in ("p50_us", "p99_us", "p999_us"):
            for short, floor_of in (("blocking", blocking_of), ("busypoll", spin_of)):
                value, basis = _pair_ratios(runs, floor_of, m)
                if value is not None:
                    r[f"{m[:-3]}_x_{short}"] = value
                    r[f"{m[:-3]}_x_{short}_basis"] = basis
        out[name] = r
    return out


def _cell(runs: dict[str, list[dict[str, Any]]], loads: list[float]) -> dict[str, Any]:
    cell = {"contenders": {n: _aggregate(v) for n, v in runs.items()},
            "ratios": _ratios(runs), "runs": runs, "loadavg": loads}
    for n, agg in cell["contenders"].items():
        agg["label"] = CONTENDERS[n.partition("@")[0]][0]
        agg.update(cell["ratios"].get(n, {}))
    return cell


def _targets(cells: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, per configuration, as measured in this run."""
    rows = []
    for key, cell in cells.items():
        ratios = cell["ratios"]
        agg = cell["contenders"]
        for name in ("pf-callback", "pf-iterator"):
            r = ratios.get(name, {})
            for m, goal in (("p50", 1.1), ("p99", 1.1)):
                v = r.get(f"{m}_x_blocking")
                rows.append({"config": key, "what": f"{name} {m} <= {goal}x raw-blocking",
                             "value": None if v is None else round(v, 3), "goal": goal,
                             "met": None if v is None else v <= goal})
        for name in ("pf-busy-callback", "pf-busy-iterator"):
            r = ratios.get(name, {})
            for m, goal in (("p50", 1.3), ("p999", 3.0)):
                v = r.get(f"{m}_x_busypoll")
                rows.append({"config": key, "what": f"{name} {m} <= {goal}x busy-poll floor",
                             "value": None if v is None else round(v, 3), "goal": goal,
                             "met": None if v is None else v <= goal})
            a = agg.get(name)
            if a is not None:
                clean = a["lost"] == 0 and a["reordered"] == 0 and a["books_ok"] is not False
                rows.append({"config": key, "what": f"{name}: no lost or reordered events",
                             "value": f"lost {a['lost']}, reordered {a['reordered']}",
                             "goal": 0, "met": clean})
    return rows


def _machine() -> dict[str, Any]:
    try:
        from parsec_fast import benchreport
        return benchreport.machine()
    except Exception:  # noqa: BLE001 - the bench runs without the package's extras too
        return {"python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests (seconds)")
    ap.add_argument("--rates", default=None, help="deltas/s, comma-separated (default 20000,100000)")
    ap.add_argument("--markets", default=None, help="market counts (default 1,100)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 1)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="paced seconds per run (default 2; quick 0.3)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of deltas dropped at the start of a run (default 0.2; quick 0.05)")
    ap.add_argument("--contenders", default=None,
                    help=f"comma-separated subset of: {', '.join(CONTENDERS)}")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="a run during which other processes took more cores than this is re-run "
                         "(default 0.1)")
    ap.add_argument("--retries", type=int, default=None,
                    help="re-runs of a contended run (default 3; quick 0)")
    ap.add_argument("--wait-quiet", type=float, default=None,
                    help="before each run, wait up to this many s for the machine to be quiet "
                         "(default 20; quick 0)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    ap.add_argument("--reaggregate", metavar="JSON",
                    help="recompute the medians, ratios and targets of a saved run (to --json)")
    ap.add_argument("--_sender", help=argparse.SUPPRESS)
    ap.add_argument("--_client", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n-markets", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--loop", default="default", help=argparse.SUPPRESS)
    ap.add_argument("--mechanism", default="config", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._sender:
        _sender_main(args._sender)
        return 0
    if args._client:
        _client_main(args)
        return 0
    if args.reaggregate:
        with open(args.reaggregate) as f:
            out = json.load(f)
        out["cells"] = {key: _cell(cell["runs"], cell.get("loadavg", []))
                        for key, cell in out["cells"].items()}
        out["targets"] = _targets(out["cells"])
        _summary(out)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}", flush=True)
        return 0
    rates = [float(x) for x in (args.rates or ("20000" if args.quick else "20000,100000")).split(",")]
    market_counts = [int(x) for x in (args.markets or ("1,100" if args.quick else "1,100")).split(",")]
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.seconds = args.seconds or (0.3 if args.quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.05 if args.quick else 0.2)
    args.retries = args.retries if args.retries is not None else (0 if args.quick else 3)
    args.wait_quiet = args.wait_quiet if args.wait_quiet is not None else (0 if args.quick else 20)
    names = (QUICK_CONTENDERS if args.quick else
             [n for n in CONTENDERS if n not in EXTRA_CONTENDERS]) if args.contenders is None \
        else [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = [n for n in names if n.partition("@")[0] not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contender(s) {unknown}; choose from {list(CONTENDERS)}")
    skipped: dict[str, str] = {}
    for n in list(names):
        mod = {"hand": "picows", "sdk": "parsec_api.streaming"}.get(CONTENDERS[n.partition("@")[0]][1])
        extra = {"picows+msgspec+order-book": "msgspec", "picows+orjson+SortedDict": "sortedcontainers"}
        for m in filter(None, (mod, extra.get(n))):
            try:
                __import__(m)
            except ImportError as exc:
                skipped[n] = f"{m} not importable ({exc})"
                names.remove(n)
                break
    client_cpu, sender_cpu = _cpus(args.no_pin)
    t_start = time.perf_counter()
    out: dict[str, Any] = {
        "meta": {**_machine(), "quick": args.quick, "rates": rates, "markets": market_counts,
                 "rounds": args.rounds, "seconds": args.seconds, "warmup_s": args.warmup,
                 "depth": DEPTH, "seed": args.seed, "client_cpu": client_cpu,
                 "sender_cpu": sender_cpu, "contenders": names,
                 "max_foreign_cores": args.max_foreign, "retries": args.retries,
                 "wait_quiet_s": args.wait_quiet,
                 "labels": {n: CONTENDERS[n.partition("@")[0]][0] for n in names},
                 "loadavg_start": list(os.getloadavg())},
        "cells": {}, "skipped": skipped}
    print(f"latency: rates {rates}, markets {market_counts}, {args.rounds} rounds of "
          f"{args.seconds:g} s; client cpu {client_cpu}, sender cpu {sender_cpu}; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pf-latency-") as tmp:
        for rate in rates:
            for markets in market_counts:
                key = f"{int(rate)}/s, {markets} market{'s' if markets > 1 else ''}"
                here = [n for n in names if rate <= MAX_RATE.get(n.partition("@")[0], 1e18)]
                for n in names:
                    if n not in here:
                        out["skipped"][f"{n} @ {key}"] = (
                            f"cannot sustain {int(rate):,}/s on one core (max "
                            f"{MAX_RATE[n.partition('@')[0]]:,} here)")
                n_deltas = int(rate * (args.seconds + args.warmup))
                sender = Sender(markets, rate, n_deltas, args.seed, sender_cpu, tmp)
                runs: dict[str, list[dict[str, Any]]] = {n: [] for n in here}
                loads = []
                try:
                    for rnd in range(args.rounds):
                        loads.append(os.getloadavg()[0])
                        order = here[rnd % len(here):] + here[:rnd % len(here)]
                        for name in order:
                            tag = f"{int(rate)}-{markets}-{rnd}-{re.sub(r'[^a-z0-9]', '', name)}"
                            r, sender = _run_with_retries(name, sender, args, markets, rate,
                                                          n_deltas, client_cpu, sender_cpu, tmp, tag)
                            runs[name].append(r)
                            if "error" in r:
                                print(f"  [{key} r{rnd}] {name:28s} ERROR {r['error']}", flush=True)
                            else:
                                print(f"  [{key} r{rnd}] {name:28s} p50 {r.get('p50_us', 0):7.1f}"
                                      f"  p99 {r.get('p99_us', 0):7.1f}  p99.9 "
                                      f"{r.get('p999_us', 0):8.1f} us  cpu "
                                      f"{(r.get('cpu_cores') or 0):.2f}  lost {r['lost']}"
                                      f"  reord {r['reordered']}  books {r.get('books_ok')}"
                                      f"  foreign {r['foreign_cores']:.2f}"
                                      f"{' CONTENDED' if r['contended'] else ''}"
                                      f" (x{r['attempts']})", flush=True)
                finally:
                    sender.stop()
                # the i-th run of every contender is round i: the ratios pair them
                out["cells"][key] = _cell(runs, loads)
    out["targets"] = _targets(out["cells"])
    out["meta"]["loadavg_end"] = list(os.getloadavg())
    out["elapsed_s"] = time.perf_counter() - t_start
    _summary(out)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json} ({out['elapsed_s']:.1f} s)", flush=True)
    return 0


def _summary(out: dict[str, Any]) -> None:
    print("\nmedians over rounds (us; ratios: median of per-round ratios to the floor):")
    for key, cell in out["cells"].items():
        print(f"  {key}")
        for n, a in cell["contenders"].items():
            if "p50_us" not in a:
                print(f"    {n:28s} no result {a['errors'][:1]}")
                continue
            print(f"    {n:28s} p50 {a['p50_us']:7.1f} p99 {a['p99_us']:7.1f} p99.9 "
                  f"{a['p999_us']:8.1f} cpu {a.get('cpu_cores', 0) or 0:.2f}  "
                  f"x blocking {a.get('p50_x_blocking', 0):.2f}/{a.get('p99_x_blocking', 0):.2f}"
                  f"  x busypoll {a.get('p50_x_busypoll', 0):.2f}/"
                  f"{a.get('p999_x_busypoll', 0):.2f}")
    for t in out["targets"]:
        mark = "met" if t["met"] else ("MISSED" if t["met"] is False else "n/a")
        print(f"  target [{t['config']}] {t['what']}: {t['value']} -> {mark}")


if __name__ == "__main__":
    sys.exit(main())
