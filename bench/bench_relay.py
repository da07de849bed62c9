"""The NATS relay against the direct WebSocket, side by side in one run (suite ``relay``).

Run from the repo root (needs ``nats-server`` on PATH and ``pip install -e ".[relay]"``)::

    python bench/bench_relay.py             # full run (~3 minutes on 2 shared cores)
    python bench/bench_relay.py --quick     # seconds, for the smoke test

Every process is a fresh one; with two cores the clients (the direct WebSocket client, the NATS
consumers) are pinned to one core and everything they read from (the local Parsec server, the
relay, nats-server) to the other. Three targets:

1. **Throughput** (``throughput``). The server pre-generates a seeded stream of ``--deltas``
   deltas on ``--books`` books and writes it as fast as its reader takes it
   (``LocalServer.blast``). *direct*: a ``Client`` on the WebSocket, clocked from the server's
   first write to the moment every book holds its final seq (e2e suite's method). *nats-live*:
   the same blast through server -> relay -> nats-server -> consumer, all running at once (on two
   cores this measures the machine more than the consumer). *nats-drain*: the consumer process is
   stopped (SIGSTOP) while the relay republishes the whole blast into nats-server's buffer for it,
   then continued: from SIGCONT to every book at its final seq — what a consumer sustains
   when data is waiting for it, as the direct client does in its run. Both also report deltas per
   client CPU-second. Target: the consumer >= 1 M deltas/s.
2. **Latency** (``latency``). The server's live stream at ``--rate`` simulator events/s (deltas
   and ~7 % trades) on ``--latency-books`` books, read at once by a direct client and, through the
   relay, by a consumer. Both subscribe while the stream is paused, so a delta has the same
   (book, seq) on both connections; each records ``time.monotonic_ns()`` (one clock for every
   process of a host) in its per-frame hook, after the delta is applied. Added latency = consumer
   time - direct time, per delta, joined by (book, seq). Target: p50 <= 200 µs at 20 k deltas/s.
3. **Fan-out** (``fanout``). 100 books at ``--fanout-rate`` events/s; the relay's CPU time
   (``/proc``, user + system) over ``--fanout-seconds`` with 1 consumer, then with 50 consumers of
   the same 100 books (5 processes x 10 clients). Target: 50 consumers cost < 2x the relay CPU of
   one.

JSON (``--json``, default ``bench/out/relay.json``): ``{"meta", "throughput": {contender:
{...}}, "latency": {...}, "fanout": {...}, "targets": {...}}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
THIS = os.path.abspath(__file__)
DEFAULT_JSON = os.path.join(HERE, "out", "relay.json")
Key = tuple[str, str]


# ── child processes: a JSON command per stdin line, a JSON reply per stdout line ────────────────
async def _commands(handle: Any) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            return
        reply = await handle(cmd)
        print(json.dumps(reply), flush=True)


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_main(cfg: dict[str, Any]) -> None:
    from parsec_fast.server import LocalServer, ServerConfig

    config = ServerConfig(markets=cfg["markets"], seed=cfg["seed"], live=cfg["rate"] > 0,
                          rate=cfg["rate"] or None, tier="scale", heartbeat_interval=30.0,
                          stale_after_ms=600_000, fill_account=None, wallet_interval=0)

    async def main() -> None:
        async with LocalServer(config) as srv:
            srv.pause_stream()
            print(json.dumps({"url": srv.url}), flush=True)

            async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
                if cmd["cmd"] == "pause":
                    srv.pause_stream()
                elif cmd["cmd"] == "resume":
                    srv.resume_stream()
                elif cmd["cmd"] == "blast":
                    t_call = time.monotonic()
                    res = await srv.blast(cmd["n"])
                    return {"frames": res.frames, "t_write_start": t_call + res.generate_s,
                            "expected": [{f"{k[0]}|{k[1]}": c.last_seq(k) for k in c.subs}
                                         for c in srv.connections]}
                return {}
            await _commands(handle)
    _run(main())


def _relay_main(cfg: dict[str, Any]) -> None:
    from parsec_fast.client.config import ClientConfig
    from parsec_fast.relay import Relay, RelayConfig

    async def main() -> None:
        relay = Relay(cfg["url"], "bench", nats_url=cfg["nats"],
                      config=RelayConfig(heartbeat_interval=1.0, lease_ttl=30.0),
                      client_config=ClientConfig(heartbeat_interval=30.0, reconnect=False))
        await relay.start()
        records: list[tuple[str, str, int, int]] = []
        if cfg.get("record"):  # when the relay's own book applied each delta
            def hook(sub: Any, frame: Any) -> None:
                if frame is None:
                    records.append((sub.parsec_id, sub.outcome, sub.book.seq,
                                    time.monotonic_ns()))
            relay.upstream.set_frame_hook(hook)
        print(json.dumps({"epoch": relay.epoch}), flush=True)

        async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
            if cmd["cmd"] in ("records", "clear"):
                out = list(records)
                records.clear()
                return {"records": out if cmd["cmd"] == "records" else []}
            if cmd["cmd"] == "wait_seqs":
                want = cmd["seqs"]
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    subs = {f"{s.parsec_id}|{s.outcome}": s.book.seq
                            for s in relay.upstream.subscriptions()}
                    if all(subs.get(k) == v for k, v in want.items()):
                        break
                    await asyncio.sleep(0.005)
            s = relay.snapshot_stats()
            return {"cpu_s": time.process_time(), "frames_in": s.frames_in,
                    "frames_out": s.frames_out, "messages_out": s.messages_out,
                    "snapshots_served": s.snapshots_served, "consumers": s.consumers}
        try:
            await _commands(handle)
        finally:
            await relay.close()
    _run(main())


def _client_main(cfg: dict[str, Any]) -> None:
    from parsec_fast import Client

    keys: list[Key] = [tuple(k) for k in cfg["keys"]]  # type: ignore[misc]

    async def main() -> None:
        options = dict(heartbeat_interval=30.0, reconnect=False, control_rate=50,
                       request_timeout=60.0, open_timeout=30.0)
        clients = [Client(cfg["url"], api_key="bench", **options)  # type: ignore[arg-type]
                   for _ in range(cfg.get("count", 1))]
        records: list[tuple[str, str, int, int]] = []
        for client in clients:
            await client.start()
            await client.subscribe([{"parsec_id": p, "outcome": o} for p, o in keys],
                                   depth=cfg["depth"], timeout=120)
        books = [clients[0].book(p, o) for p, o in keys]
        if cfg.get("record"):
            def hook(sub: Any, frame: Any) -> None:
                if frame is None:   # an applied delta
                    records.append((sub.parsec_id, sub.outcome, sub.book.seq,
                                    time.monotonic_ns()))
            clients[0].set_frame_hook(hook)
        seen: list[tuple[float, float, list[int]]] = []
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            # the first entry's CPU time is the last poll that still saw no change (the server
            # spends seconds generating the stream first: that wait is not the client's work)
            last = [b.seq for b in books]
            prev_cpu = time.process_time()
            seen.append((time.monotonic(), prev_cpu, last))
            while True:
                await asyncio.sleep(0.001)
                cpu = time.process_time()
                cur = [b.seq for b in books]
                if cur != last:
                    if len(seen) == 1:
                        seen[0] = (seen[0][0], prev_cpu, last)
                    seen.append((time.monotonic(), time.process_time(), cur))
                    last = cur
                prev_cpu = cpu

        async def handle(cmd: dict[str, Any]) -> dict[str, Any]:
            nonlocal watcher
            if cmd["cmd"] == "arm":
                seen.clear()
                watcher = asyncio.ensure_future(watch())
            elif cmd["cmd"] == "until":
                target = [cmd["seqs"][f"{p}|{o}"] for p, o in keys]
                deadline = time.monotonic() + 300
                while not (seen and seen[-1][2] == target) and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                assert watcher is not None
                watcher.cancel()
                if not (seen and seen[-1][2] == target):
                    return {"error": "books did not reach the final seqs"}
                first = next((s for s in seen[1:]), seen[-1])
                exact = all(c.subscription(p, o).book.is_valid for c in clients for p, o in keys)
                m = clients[0].metrics
                return {"t_first": first[0], "cpu_first": seen[0][1], "t_done": seen[-1][0],
                        "cpu_done": seen[-1][1], "valid": exact, "gaps": m.gaps,
                        "frames": m.frames}
            elif cmd["cmd"] == "records":
                out = list(records)
                records.clear()
                m = clients[0].metrics
                return {"records": out, "p50_us": m.latency_p50_us, "gaps": m.gaps}
            elif cmd["cmd"] == "clear":
                records.clear()
            return {}
        print(json.dumps({"ready": True}), flush=True)
        try:
            await _commands(handle)
        finally:
            for client in clients:
                await client.close()
    _run(main())


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


# ── orchestration ────────────────────────────────────────────────────────────────────────────────
class Child:
    """A child process driven over stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, mode: str, cfg: dict[str, Any], cpu: int | None) -> tuple[Child, Any]:
        cmd = [sys.executable, THIS, mode, json.dumps(cfg)]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=subprocess.PIPE,
                                                    stdout=subprocess.PIPE, limit=1 << 28)
        self = cls(proc)
        return self, await self.reply()

    async def reply(self, timeout: float = 300.0) -> Any:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("bench child exited")
        return json.loads(line)

    async def ask(self, cmd: str, **fields: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        return await self.reply()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    async def stop(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await asyncio.wait_for(self.proc.wait(), 15)
        except Exception:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()


class Nats:
    """A nats-server for the run (buffers big enough for a whole blast to wait for a stopped
    consumer)."""

    def __init__(self, cpu: int | None, gomaxprocs: int | None = None) -> None:
        self.cpu = cpu
        self.gomaxprocs = gomaxprocs
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.conf = ""

    def start(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        fd, self.conf = tempfile.mkstemp(suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write('max_pending: 1073741824\nwrite_deadline: "300s"\n')
        cmd = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-c", self.conf]
        env = dict(os.environ)
        if self.gomaxprocs:
            env["GOMAXPROCS"] = str(self.gomaxprocs)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return f"nats://127.0.0.1:{self.port}"
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not start") from None
                time.sleep(0.02)

    def pin(self, cpu: int | None) -> None:
        """Move every thread of the running server to ``cpu`` (None: any core)."""
        if self.proc is None or shutil.which("taskset") is None:
            return
        cores = str(cpu) if cpu is not None else ",".join(map(str, sorted(os.sched_getaffinity(0))))
        subprocess.run(["taskset", "-a", "-p", "-c", cores, str(self.proc.pid)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.conf:
            os.unlink(self.conf)


def _keys(markets: int, seed: int, n: int, all_outcomes: bool = False) -> list[Key]:
    from parsec_fast.server import make_markets

    specs = make_markets(markets, seed)
    if all_outcomes:
        return [(s.parsec_id, o) for s in specs for o in s.outcomes][:n]
    return [(s.parsec_id, s.outcomes[0]) for s in specs[:n]]


async def _throughput(args: argparse.Namespace, cpus: tuple[int | None, int | None],
                      nats_url: str) -> dict[str, Any]:
    client_cpu, back_cpu = cpus
    keys = _keys(args.markets, args.seed, args.books)
    base = {"keys": keys, "depth": args.depth}
    out: dict[str, Any] = {}
    for name in ("direct", "nats-live", "nats-drain"):
        runs = []
        for _ in range(args.repeats):
            server, info = await Child.start("--_server", {"markets": args.markets,
                                                           "seed": args.seed, "rate": 0},
                                             back_cpu)
            relay = client = None
            try:
                url = info["url"]
                if name != "direct":
                    relay, _ = await Child.start("--_relay", {"url": url, "nats": nats_url},
                                                 back_cpu)
                    url = nats_url
                client, _ = await Child.start("--_client", {**base, "url": url}, client_cpu)
                await client.ask("arm")
                if name == "nats-drain":
                    client.signal(signal.SIGSTOP)
                before = await relay.ask("stats") if relay is not None else None
                blast = await server.ask("blast", n=args.deltas)
                target = blast["expected"][0]
                after = await relay.ask("wait_seqs", seqs=target) if relay is not None else None
                t_cont = 0.0
                if name == "nats-drain":
                    await asyncio.sleep(0.5)   # nats-server holds the rest for the consumer
                    t_cont = time.monotonic()
                    client.signal(signal.SIGCONT)
                res = await client.ask("until", seqs=target)
                if "error" in res:
                    runs.append(res)
                    continue
                start = t_cont if name == "nats-drain" else blast["t_write_start"]
                elapsed = max(1e-9, res["t_done"] - start)
                cpu = res["cpu_done"] - res["cpu_first"]
                run = {"frames": blast["frames"], "elapsed_s": elapsed,
                       "deltas_per_s": blast["frames"] / elapsed, "client_cpu_s": cpu,
                       "deltas_per_cpu_s": blast["frames"] / cpu if cpu > 0 else None,
                       "books_valid": res["valid"], "gaps": res["gaps"]}
                if before is not None and after is not None:
                    frames = after["frames_in"] - before["frames_in"]
                    run["frames_per_message"] = (after["frames_out"] - before["frames_out"]) / \
                        max(1, after["messages_out"] - before["messages_out"])
                    # the relay's CPU per upstream frame (tap, own feed, republish) at saturation
                    run["relay_us_per_frame"] = (after["cpu_s"] - before["cpu_s"]) / \
                        max(1, frames) * 1e6
                runs.append(run)
            finally:
                for child in (client, relay, server):
                    if child is not None:
                        await child.stop()
        good = [r for r in runs if "deltas_per_s" in r]
        if not good:
            out[name] = {"error": runs[0].get("error", "no run")}
            continue
        res = {"deltas_per_s": statistics.median(r["deltas_per_s"] for r in good),
               "deltas_per_cpu_s": statistics.median(r["deltas_per_cpu_s"] or 0 for r in good),
               "books_valid": all(r["books_valid"] for r in good), "runs": good,
               "deltas_per_run": args.deltas}
        if "frames_per_message" in good[0]:
            res["frames_per_message"] = statistics.median(r["frames_per_message"] for r in good)
            res["relay_us_per_frame"] = statistics.median(r["relay_us_per_frame"] for r in good)
        out[name] = res
        relay_cost = (f", relay {res['relay_us_per_frame']:.2f} us CPU per frame, "
                      f"{res['frames_per_message']:.0f} frames per message"
                      if "relay_us_per_frame" in res else "")
        print(f"  throughput {name:11s} {res['deltas_per_s'] / 1e6:6.2f} M deltas/s wall, "
              f"{res['deltas_per_cpu_s'] / 1e6:6.2f} M per client CPU-s{relay_cost}", flush=True)
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _latency(args: argparse.Namespace, cpus: tuple[int | None, int | None],
                   nats_url: str) -> dict[str, Any]:
    # Unpinned unless --pin-latency: on this VM a wake-up of an idle vCPU costs 0.1-2 ms, and
    # with the server, the relay and nats-server sharing one pinned core each hop of the relay's
    # path waits for that core; the scheduler places them better (measured both ways).
    client_cpu, back_cpu = cpus if args.pin_latency else (None, None)
    keys = _keys(args.latency_markets, args.seed, args.latency_books, all_outcomes=True)
    server, info = await Child.start("--_server", {"markets": args.latency_markets,
                                                   "seed": args.seed, "rate": args.rate},
                                     back_cpu)
    children: list[Child] = [server]
    try:
        relay, _ = await Child.start("--_relay", {"url": info["url"], "nats": nats_url,
                                                  "record": True}, back_cpu)
        children.append(relay)
        cfg = {"keys": keys, "depth": args.depth, "record": True}
        direct, _ = await Child.start("--_client", {**cfg, "url": info["url"]}, client_cpu)
        children.append(direct)
        consumer, _ = await Child.start("--_client", {**cfg, "url": nats_url}, client_cpu)
        children.append(consumer)
        await server.ask("resume")
        await asyncio.sleep(args.warmup)
        await direct.ask("clear")
        await consumer.ask("clear")
        await relay.ask("clear")
        t0 = time.monotonic()
        await asyncio.sleep(args.latency_seconds)
        await server.ask("pause")
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0.5)
        d = await direct.ask("records")
        n = await consumer.ask("records")
        r = await relay.ask("records")
    finally:
        for child in reversed(children):
            await child.stop()
    direct_at = {(p, o, s): t for p, o, s, t in d["records"]}
    added = [(t - direct_at[(p, o, s)]) / 1000.0 for p, o, s, t in n["records"]
             if (p, o, s) in direct_at]
    if not added:
        return {"error": "no delta seen by both"}
    relay_at = {(p, o, s): t for p, o, s, t in r["records"]}
    hop_in = [(t - direct_at[k]) / 1000.0 for k, t in relay_at.items() if k in direct_at]
    hop_out = [(t - relay_at[(p, o, s)]) / 1000.0 for p, o, s, t in n["records"]
               if (p, o, s) in relay_at]
    res = {"deltas_per_s": len(d["records"]) / elapsed, "deltas_joined": len(added),
           "added_p50_us": _pct(added, 0.5), "added_p90_us": _pct(added, 0.9),
           "added_p99_us": _pct(added, 0.99), "added_max_us": max(added),
           "direct_read_to_apply_p50_us": d["p50_us"], "consumer_read_to_apply_p50_us": n["p50_us"],
           "relay_minus_direct_p50_us": _pct(hop_in, 0.5) if hop_in else None,
           "consumer_minus_relay_p50_us": _pct(hop_out, 0.5) if hop_out else None,
           "gaps_direct": d["gaps"], "gaps_consumer": n["gaps"], "books": len(keys),
           "rate_events_per_s": args.rate}
    print(f"  latency at {res['deltas_per_s']:,.0f} deltas/s: consumer - direct p50 "
          f"{res['added_p50_us']:.0f} us, p90 {res['added_p90_us']:.0f} us, p99 "
          f"{res['added_p99_us']:.0f} us ({len(added):,} deltas joined); relay - direct p50 "
          f"{res['relay_minus_direct_p50_us']:.0f} us, consumer - relay p50 "
          f"{res['consumer_minus_relay_p50_us']:.0f} us", flush=True)
    return res


async def _fanout(args: argparse.Namespace, cpus: tuple[int | None, int | None],
                  nats_url: str) -> dict[str, Any]:
    client_cpu, back_cpu = cpus
    keys = _keys(100, args.seed, 100)
    out: dict[str, Any] = {}
    for consumers, procs in ((1, 1), (args.fanout_consumers, args.fanout_procs)):
        server, info = await Child.start("--_server", {"markets": 100, "seed": args.seed,
                                                       "rate": args.fanout_rate}, back_cpu)
        children: list[Child] = [server]
        try:
            relay, _ = await Child.start("--_relay", {"url": info["url"], "nats": nats_url},
                                         back_cpu)
            children.append(relay)
            per = consumers // procs
            for _ in range(procs):
                child, _ = await Child.start("--_client", {"keys": keys, "depth": args.depth,
                                                           "url": nats_url, "count": per},
                                             client_cpu)
                children.append(child)
            await server.ask("resume")
            await asyncio.sleep(args.warmup)
            c0, t0 = _cpu_of(relay.proc.pid), time.monotonic()
            s0 = await relay.ask("stats")
            await asyncio.sleep(args.fanout_seconds)
            c1, t1 = _cpu_of(relay.proc.pid), time.monotonic()
            s1 = await relay.ask("stats")
            await server.ask("pause")
        finally:
            for child in reversed(children):
                await child.stop()
        frames = s1["frames_in"] - s0["frames_in"]
        out[str(consumers)] = {"consumers": consumers, "relay_cpu_s": c1 - c0,
                               "relay_cpu_share": (c1 - c0) / (t1 - t0),
                               "frames_in_per_s": frames / (t1 - t0),
                               "relay_us_per_frame": (c1 - c0) / max(1, frames) * 1e6,
                               "consumers_seen": s1["consumers"]}
        print(f"  fan-out {consumers:3d} consumer(s): relay CPU {(c1 - c0) / (t1 - t0):.3f} of a "
              f"core at {frames / (t1 - t0):,.0f} frames/s "
              f"({(c1 - c0) / max(1, frames) * 1e6:.2f} us per frame)", flush=True)
    one, many = out["1"], out[str(args.fanout_consumers)]
    out["ratio"] = many["relay_cpu_s"] / one["relay_cpu_s"] if one["relay_cpu_s"] else None
    return out


def _nats_version() -> str:
    try:
        return subprocess.run(["nats-server", "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _busy_share(seconds: float = 1.0) -> float:
    """CPU used by everything on the machine over ``seconds``, in cores (from /proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4]   # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    cores = os.cpu_count() or 1
    return cores * (1 - (i1 - i0) / max(1, t1 - t0))


async def _wait_quiet(limit: float) -> float:
    """Wait (at most ``limit`` s) until other processes use under 0.1 core; returns the last
    measured busy share (in cores)."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + limit
    busy = await loop.run_in_executor(None, _busy_share, 0.5)
    while busy > 0.1 and time.monotonic() < deadline:
        busy = await loop.run_in_executor(None, _busy_share, 1.0)
    return round(busy, 3)


def _cpus(no_pin: bool) -> tuple[int | None, int | None]:
    if no_pin or shutil.which("taskset") is None:
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else (None, None)


def _targets(out: dict[str, Any]) -> dict[str, Any]:
    tp = out.get("throughput", {})
    drain = tp.get("nats-drain", {}).get("deltas_per_s")
    lat = out.get("latency", {}).get("added_p50_us")
    ratio = out.get("fanout", {}).get("ratio")
    rows = {
        "consumer_deltas_per_s": ("NATS consumer >= 1 M deltas/s (drain)", drain, 1e6, True),
        "added_latency_p50_us": ("added latency p50 <= 200 us at 20 k deltas/s", lat, 200.0,
                                 False),
        "fanout_cpu_ratio": ("50 consumers < 2x the relay CPU of 1", ratio, 2.0, False),
    }
    result = {}
    for key, (what, value, goal, higher) in rows.items():
        met = None if value is None else (value >= goal if higher else value <= goal if
                                          key != "fanout_cpu_ratio" else value < goal)
        result[key] = {"what": what, "goal": goal,
                       "value": None if value is None else round(value, 3), "met": met}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    ap.add_argument("--deltas", type=int, default=None, help="deltas per blast (400000)")
    ap.add_argument("--repeats", type=int, default=None, help="blasts per contender (3)")
    ap.add_argument("--markets", type=int, default=24)
    ap.add_argument("--books", type=int, default=12)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=28_000.0,
                    help="latency run: simulator events/s over the books (~72 %% of them are "
                         "deltas on the subscribed books: ~20 k deltas/s)")
    ap.add_argument("--latency-markets", type=int, default=12)
    ap.add_argument("--latency-books", type=int, default=24)
    ap.add_argument("--latency-seconds", type=float, default=None, help="default 10")
    ap.add_argument("--warmup", type=float, default=None, help="default 1.5 s")
    ap.add_argument("--fanout-rate", type=float, default=None, help="default 5000 events/s")
    ap.add_argument("--fanout-seconds", type=float, default=None, help="default 8")
    ap.add_argument("--fanout-consumers", type=int, default=None, help="default 50 (quick 10)")
    ap.add_argument("--fanout-procs", type=int, default=None,
                    help="processes the consumers are spread over (default 5; quick 2)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--nats-gomaxprocs", type=int, default=None,
                    help="GOMAXPROCS of nats-server (default: Go's, the number of cores)")
    ap.add_argument("--pin-latency", action="store_true",
                    help="pin the latency run too (clients on one core, the rest on the other)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each phase wait up to S s for the machine to be idle (other "
                         "processes under 10 %% of a core)")
    ap.add_argument("--phases", default="throughput,latency,fanout",
                    help="comma-separated subset of throughput,latency,fanout")
    ap.add_argument("--json", default=DEFAULT_JSON)
    ap.add_argument("--_server", help=argparse.SUPPRESS)
    ap.add_argument("--_relay", help=argparse.SUPPRESS)
    ap.add_argument("--_client", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for mode, fn in (("_server", _server_main), ("_relay", _relay_main),
                     ("_client", _client_main)):
        if getattr(args, mode):
            fn(json.loads(getattr(args, mode)))
            return 0
    if shutil.which("nats-server") is None:
        print("bench_relay: nats-server is not installed (apt-get install nats-server)",
              file=sys.stderr)
        return 1
    q = args.quick
    args.deltas = args.deltas or (20_000 if q else 400_000)
    args.repeats = args.repeats or (1 if q else 3)
    args.latency_seconds = args.latency_seconds or (1.5 if q else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if q else 1.5)
    args.fanout_rate = args.fanout_rate or (500.0 if q else 5000.0)
    args.fanout_seconds = args.fanout_seconds or (1.5 if q else 8.0)
    args.fanout_consumers = args.fanout_consumers or (10 if q else 50)
    args.fanout_procs = min(args.fanout_consumers, args.fanout_procs or (2 if q else 5))
    cpus = _cpus(args.no_pin)
    from parsec_fast.benchreport import machine

    out: dict[str, Any] = {"meta": {**machine(), "quick": q, "deltas": args.deltas,
                                    "repeats": args.repeats, "books": args.books,
                                    "depth": args.depth, "client_cpu": cpus[0],
                                    "back_cpu": cpus[1], "rate": args.rate,
                                    "fanout_rate": args.fanout_rate,
                                    "fanout_consumers": args.fanout_consumers,
                                    "pin_latency": args.pin_latency,
                                    "nats_gomaxprocs": args.nats_gomaxprocs,
                                    "nats_server": _nats_version()}}
    t0 = time.perf_counter()
    nats = Nats(cpus[1], args.nats_gomaxprocs)
    nats_url = nats.start()

    async def body() -> None:
        print(f"relay bench: {args.books} books, blasts of {args.deltas:,} x {args.repeats}; "
              f"clients on cpu {cpus[0]}, server/relay/nats on cpu {cpus[1]}", flush=True)
        phases = {p.strip() for p in args.phases.split(",")}
        for name, run in (("throughput", _throughput), ("latency", _latency),
                          ("fanout", _fanout)):
            if name not in phases:
                continue
            out.setdefault("meta", {}).setdefault("busy_at_start", {})[name] = \
                await _wait_quiet(args.wait_quiet)
            pinned = cpus if (name != "latency" or args.pin_latency) else (None, None)
            nats.pin(pinned[1])
            out[name] = await run(args, cpus, nats_url)
    try:
        asyncio.run(body())
    finally:
        nats.stop()
    out["targets"] = _targets(out)
    for t in out["targets"].values():
        mark = "met" if t["met"] else ("MISSED" if t["met"] is False else "n/a")
        print(f"  target {t['what']}: {t['value']} -> {mark}", flush=True)
    out["elapsed_s"] = time.perf_counter() - t0
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json} ({out['elapsed_s']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
