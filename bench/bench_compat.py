"""End-to-end deltas/s: the official SDK's ParsecWebSocket vs parsec_fast.compat.ParsecWebSocket.

The LocalServer runs in a child process (pinned to core 0 when possible) and blasts ``N`` deltas
on one subscribed 50-level market as fast as the client reads; the client (core 1) counts
``orderbook`` events ("handler") or, with no handler, waits until its book reaches the last
seq ("no handler"). Usage: ``python bench/bench_compat.py [N]``.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import sys
import time
from typing import Any


def _server(conn: Any, n: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    async def main() -> None:
        from parsec_fast.server import LocalServer, ServerConfig
        async with LocalServer(ServerConfig(markets=4, seed=5, live=False,
                                            heartbeat_interval=30.0)) as srv:
            conn.send(srv.url)
            while True:
                cmd = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
                if cmd == "stop":
                    return
                result = await srv.blast(n, [cmd])
                conn.send(result.frames)
    asyncio.run(main())


async def _run(kind: str, url: str, pipe: Any, pid: str, n: int, handler: bool) -> float:
    if kind == "sdk":
        from parsec_api.streaming import ParsecWebSocket
    else:
        from parsec_fast.compat import ParsecWebSocket  # type: ignore[assignment]
    ws = ParsecWebSocket("demo", url)
    count = [0]
    if handler:
        @ws.on("orderbook")
        async def on_book(ob: Any) -> None:
            count[0] += 1
            _ = ob.mid_price  # a typical handler touches the payload
    await ws.connect()
    ws.subscribe(parsec_id=pid)
    for _ in range(500):
        if ws.get_book(pid) is not None:
            break
        await asyncio.sleep(0.01)
    start_seq = ws.get_book(pid)["last_seq"]
    base = count[0]

    def seq() -> int:  # cheap, not get_book(): polling must not slow the client down
        if kind == "sdk":
            return ws._books[f"{pid}:yes"].last_seq
        return ws.client.book(pid).seq

    def received() -> int:
        return count[0] - base if handler else seq() - start_seq

    pipe.send(pid)
    # The server generates the whole stream before writing it: time from the first delta
    # received (1 ms polling) to the last, so generation is not counted.
    deadline = time.perf_counter() + 120
    while received() == 0 and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
    t0 = time.perf_counter()
    first = received()
    frames = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    while received() < frames and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - t0
    got = received()
    await ws.close()
    return (got - first) / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    parent, child = mp.Pipe()
    proc = mp.Process(target=_server, args=(child, n), daemon=True)
    proc.start()
    url = parent.recv()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    from parsec_fast.server import make_markets
    pids = [m.parsec_id for m in make_markets(4, 5) if not m.categorical]
    results = {}
    i = 0
    for handler in (True, False):
        for kind in ("sdk", "compat"):
            rate = asyncio.run(_run(kind, url, parent, pids[0], n, handler))
            i += 1
            label = f"{kind:6s} {'handler' if handler else 'no handler':10s}"
            results[label] = rate
            print(f"{label} {rate:12,.0f} deltas/s", flush=True)
    parent.send("stop")
    proc.join(5)
    for handler in ("handler", "no handler"):
        sdk = results[f"{'sdk':6s} {handler:10s}"]
        ours = results[f"{'compat':6s} {handler:10s}"]
        print(f"{handler}: compat / sdk = {ours / sdk:.1f}x")


if __name__ == "__main__":
    main()
