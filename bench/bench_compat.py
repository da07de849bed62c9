"""The official SDK's ParsecWebSocket vs parsec_fast.compat.ParsecWebSocket, with real handlers.

An SDK user switches by changing one import and keeps an ``async def`` ``orderbook`` handler
registered with ``@ws.on("orderbook")``. So both clients run the same handler shapes:

* ``mid``      reads ``book.mid_price``;
* ``top``      reads ``book.bids[0].price`` and ``book.asks[0].size``;
* ``top5``     sums the sizes of ``book.bids[:5]`` and ``book.asks[:5]`` (``sum()`` over a
               generator expression each);
* ``top5loop`` the same sums written as two ``for`` loops (an extra row: it shows how much of
               ``top5`` is the handler's own generator machinery, which both clients pay);
* ``keep``     keeps the payload (``sink.last = book``);
* ``iterate``  sums price * size over every level of both sides;
* ``none``     no handler at all (the SDK builds its payloads anyway; extra row, not a target).

Layout: a child process (pinned to one core) starts a fresh ``LocalServer`` (live stream off,
same seed) for every measurement and deepens its books to 500 levels a side (the simulator's
books drift by ~100 levels over a blast; this keeps every depth-100 window full), so both
clients get the same stream; the clients run in this process (pinned to the other core). A
measurement connects a fresh client,
subscribes the scenario's markets at its depth, waits for the snapshots, asks the server to
``blast`` N pre-generated deltas (1-3 changes each after depth trimming, interleaved at random
over the markets), and times from the first delta the client applied to the last (progress is
each book's seq, polled every 1 ms on the client's loop; nothing is counted in the handler).
The clock therefore excludes the server's generation time. Rounds interleave the two clients
and the shapes (the order alternates per round); the report gives medians over rounds: deltas/s
by wall clock, deltas per client CPU-second, and the median of the per-round ratios.

Scenarios: one market at depth 10, 50 and 100, and 100 markets at depth 50 interleaved.

    python bench/bench_compat.py                     # all scenarios, 3 rounds (~8 minutes)
    python bench/bench_compat.py --quick             # tiny, for smoke tests
    python bench/bench_compat.py --scenarios 1x50 --shapes mid,keep --rounds 5 --json out.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

#: name -> (markets, depth)
SCENARIOS = {"1x10": (1, 10), "1x50": (1, 50), "1x100": (1, 100), "100x50": (100, 50)}
SHAPES = ("mid", "top", "top5", "top5loop", "keep", "iterate", "none")
#: The targets of the issue: compat / SDK, same run.
TARGETS = {"mid": 10.0, "top": 10.0, "top5": 10.0, "keep": 10.0, "iterate": 1.5}
TICK = 0.0001  # 9,999 ticks: room for BOOK_LEVELS levels a side


class Sink:
    """Where the handlers put what they read (so no read is optimised away)."""

    last: Any = None
    value: float = 0.0


def make_handler(shape: str, sink: Sink) -> Callable[[Any], Any] | None:
    """The ``orderbook`` handler of one shape, as an SDK user writes it."""
    if shape == "mid":
        async def on_book(book: Any) -> None:
            sink.value = book.mid_price
    elif shape == "top":
        async def on_book(book: Any) -> None:
            sink.value = book.bids[0].price + book.asks[0].size
    elif shape == "top5":
        async def on_book(book: Any) -> None:
            sink.value = sum(lv.size for lv in book.bids[:5]) + sum(lv.size for lv in book.asks[:5])
    elif shape == "top5loop":
        async def on_book(book: Any) -> None:
            total = 0.0
            for lv in book.bids[:5]:
                total += lv.size
            for lv in book.asks[:5]:
                total += lv.size
            sink.value = total
    elif shape == "keep":
        async def on_book(book: Any) -> None:
            sink.last = book
    elif shape == "iterate":
        async def on_book(book: Any) -> None:
            total = 0.0
            for lv in book.bids:
                total += lv.price * lv.size
            for lv in book.asks:
                total += lv.price * lv.size
            sink.value = total
    elif shape == "none":
        return None
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return on_book


# ── server process ─────────────────────────────────────────────────────────────────────────────

#: Levels per side the bench books start with. The simulator's books are a random walk (a side
#: drifts by ~100 levels over a blast); starting this deep keeps every depth-100 window full.
BOOK_LEVELS = 500


def deepen(srv: Any, parsec_ids: list[str], seed: int) -> None:
    """Extend both sides of each book's ``Yes`` outcome below its last level to BOOK_LEVELS
    levels (seeded, so every fresh server holds the same books), and let the simulator keep
    them that deep."""
    import random

    rng = random.Random(seed)
    sim = srv.simulator
    sim.max_levels = 4 * BOOK_LEVELS
    for pid in parsec_ids:
        book = sim.book(pid, "Yes")
        for side, ticks, step in (("bid", book.bid_ticks, -1), ("ask", book.ask_ticks, 1)):
            t = ticks[0] if side == "bid" else ticks[-1]
            while len(ticks) < BOOK_LEVELS:
                t += step * (1 if rng.random() < 0.8 else rng.randint(2, 4))
                if not 1 <= t <= book.n_ticks:
                    break
                book.apply(side, t, round(max(rng.lognormvariate(5.5, 1.2), 1.0), 2))


def _server(conn: Any, seed: int, cpu: int | None) -> None:
    """Serve fresh LocalServers on command: ("open", markets) -> (url, parsec_ids); ("blast",
    n, parsec_ids) -> frames written; ("close",); None ends the process. Every open starts
    from the same seed and books, so each measurement gets the same stream."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})

    async def main() -> None:
        from parsec_fast.server import LocalServer, MarketSpec, ServerConfig

        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd is None:
                return
            specs = [MarketSpec("polymarket", str(572000 + i), f"Bench market {i}", TICK)
                     for i in range(cmd[1])]
            config = ServerConfig(markets=specs, seed=seed, live=False, tier="scale",
                                  heartbeat_interval=30.0, stale_after_ms=600_000,
                                  fill_account=None, wallet_interval=0)
            async with LocalServer(config) as srv:
                pids = [s.parsec_id for s in specs]
                deepen(srv, pids, seed)
                conn.send((srv.url, pids))
                while True:
                    cmd = await loop.run_in_executor(None, conn.recv)
                    if cmd[0] != "blast":
                        break
                    result = await srv.blast(cmd[1], cmd[2])
                    conn.send(result.frames)

    try:
        import uvloop  # the sender is the same for both clients; uvloop makes it cheaper
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


# ── one measurement ────────────────────────────────────────────────────────────────────────────

async def measure(kind: str, shape: str, pipe: Any, n_markets: int, depth: int,
                  n: int) -> dict[str, float]:
    """Deltas/s of one client (``sdk`` or ``compat``) with one handler shape, on a fresh
    server."""
    pipe.send(("open", n_markets))
    url, pids = pipe.recv()
    try:
        return await _measure(kind, shape, url, pipe, pids, depth, n)
    finally:
        pipe.send(("close",))


async def _measure(kind: str, shape: str, url: str, pipe: Any, pids: list[str], depth: int,
                   n: int) -> dict[str, float]:
    if kind == "sdk":
        from parsec_api.streaming import MarketSubscription, ParsecWebSocket
    else:
        from parsec_fast.compat import MarketSubscription, ParsecWebSocket  # type: ignore[assignment]
    ws = ParsecWebSocket("bench", url)
    sink = Sink()
    handler = make_handler(shape, sink)
    if handler is not None:
        ws.on("orderbook")(handler)
    await ws.connect()
    try:
        ws.subscribe([MarketSubscription(p, "Yes", depth) for p in pids])
        deadline = time.monotonic() + 60
        while any(ws.get_book(p) is None for p in pids):
            if time.monotonic() > deadline:
                raise TimeoutError("snapshots did not arrive")
            await asyncio.sleep(0.01)
        # Cheap progress readers (get_book copies the whole book).
        if kind == "sdk":
            books = [ws._books[f"{p}:yes"] for p in pids]

            def progress() -> int:
                return sum(b.last_seq for b in books)
        else:
            assert ws.client is not None
            engine_books = [ws.client.book(p) for p in pids]

            def progress() -> int:
                return sum(b.seq or 0 for b in engine_books)
        start = progress()
        pipe.send(("blast", n, pids))
        loop = asyncio.get_running_loop()
        reply = loop.run_in_executor(None, pipe.recv)
        limit = time.monotonic() + 300
        while progress() == start and time.monotonic() < limit:
            await asyncio.sleep(0.001)
        t0, c0, first = time.perf_counter(), time.process_time(), progress() - start
        frames = await reply
        while progress() - start < frames and time.monotonic() < limit:
            await asyncio.sleep(0.001)
        t1, c1, got = time.perf_counter(), time.process_time(), progress() - start
        final = ws.get_book(pids[0]) or {"bids": [], "asks": []}
        levels = min(len(final["bids"]), len(final["asks"]))
    finally:
        await ws.close()
    if got != frames:
        raise RuntimeError(f"{kind}/{shape}: {got} of {frames} deltas applied")
    return {"deltas_per_s": (got - first) / (t1 - t0),
            "deltas_per_cpu_s": (got - first) / max(c1 - c0, 1e-9), "frames": frames,
            "levels_per_side_at_end": levels}


# ── orchestration ──────────────────────────────────────────────────────────────────────────────

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deltas", type=int, default=None, help="deltas per blast (default 60000)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per scenario (default 3)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    ap.add_argument("--shapes", default=",".join(SHAPES),
                    help=f"comma-separated subset of {', '.join(SHAPES)}")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny run (seconds)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    n = args.deltas or (3_000 if args.quick else 60_000)
    rounds = args.rounds or (1 if args.quick else 3)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r}")
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape {s!r}")
    pin = not args.no_pin and hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0)) if pin else []
    parent, child = mp.Pipe()
    proc = mp.Process(target=_server, args=(child, args.seed, cpus[0] if pin else None),
                      daemon=True)
    proc.start()
    if pin:
        os.sched_setaffinity(0, {cpus[1]})
    out: dict[str, Any] = {
        "meta": {"python": platform.python_version(), "deltas": n, "rounds": rounds,
                 "seed": args.seed, "pinned": pin, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "command": "python bench/bench_compat.py " + " ".join(argv or sys.argv[1:])},
        "scenarios": {}}
    print(f"compat vs SDK: {n:,} deltas per blast, {rounds} rounds, pinned={pin}", flush=True)
    try:
        for name in scenarios:
            n_markets, depth = SCENARIOS[name]
            runs: dict[str, dict[str, list[dict[str, float]]]] = {
                s: {"sdk": [], "compat": []} for s in shapes}
            for r in range(rounds):
                order = ("sdk", "compat") if r % 2 == 0 else ("compat", "sdk")
                for shape in (shapes if r % 2 == 0 else shapes[::-1]):
                    for kind in order:
                        res = asyncio.run(measure(kind, shape, parent, n_markets, depth, n))
                        runs[shape][kind].append(res)
                        print(f"  {name:7s} round {r + 1} {shape:8s} {kind:6s} "
                              f"{res['deltas_per_s']:>12,.0f} deltas/s  "
                              f"({res['deltas_per_cpu_s']:,.0f} per CPU-s)", flush=True)
            out["scenarios"][name] = _summary(name, runs)
    finally:
        parent.send(None)
        proc.join(10)
    _print_table(out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def _summary(name: str, runs: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    n_markets, depth = SCENARIOS[name]
    shapes = {}
    for shape, by_kind in runs.items():
        sdk, ours = by_kind["sdk"], by_kind["compat"]
        per_round = [c["deltas_per_s"] / s["deltas_per_s"] for s, c in zip(sdk, ours)]
        per_round_cpu = [c["deltas_per_cpu_s"] / s["deltas_per_cpu_s"] for s, c in zip(sdk, ours)]
        shapes[shape] = {
            "sdk_deltas_per_s": statistics.median(r["deltas_per_s"] for r in sdk),
            "compat_deltas_per_s": statistics.median(r["deltas_per_s"] for r in ours),
            "sdk_deltas_per_cpu_s": statistics.median(r["deltas_per_cpu_s"] for r in sdk),
            "compat_deltas_per_cpu_s": statistics.median(r["deltas_per_cpu_s"] for r in ours),
            "ratio": statistics.median(per_round), "ratio_cpu": statistics.median(per_round_cpu),
            "ratios": per_round, "target": TARGETS.get(shape),
            "met": None if shape not in TARGETS else statistics.median(per_round) >= TARGETS[shape]}
    return {"markets": n_markets, "depth": depth, "shapes": shapes}


def _print_table(out: dict[str, Any]) -> None:
    print("\nscenario  shape      SDK deltas/s   compat deltas/s   compat/SDK (per-round median)"
          "   per CPU-s   target")
    for name, sc in out["scenarios"].items():
        for shape, r in sc["shapes"].items():
            target = "" if r["target"] is None else \
                f">= {r['target']:g}x {'met' if r['met'] else 'MISSED'}"
            print(f"{name:9s} {shape:9s} {r['sdk_deltas_per_s']:>13,.0f} "
                  f"{r['compat_deltas_per_s']:>17,.0f} {r['ratio']:>17.1f}x"
                  f"{'':13s}{r['ratio_cpu']:>8.1f}x   {target}")


if __name__ == "__main__":
    sys.exit(main())
