"""Micro-benchmark: the native frame scanner (parsec_fast._scan) vs orjson.loads, same bytes.

    PYTHONPATH=src taskset -c 1 python bench/bench_scanner.py [--repeat 7] [--seconds 0.2]

Per frame, median of several repeats (GC off), three figures:
- orjson      : orjson.loads(frame), the cost the scanner replaces (no apply);
- scan (py)   : FrameScanner.scan_bytes(frame), one Python -> C call per frame (the call
                itself is ~40-80 ns of it);
- scan (C)    : FrameScanner.bench_loop, the scan alone in a C loop: what a Cython listener pays.
Ratios are scanner / orjson in the same run.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time

import orjson

from parsec_fast._scan import SCAN_CODES, FrameScanner


def delta(n: int) -> bytes:
    changes = [{"side": "bid" if i % 2 == 0 else "ask", "price": round(0.65 - i * 0.001, 3),
                "size": 900.0 + i * 10} for i in range(n)]
    return orjson.dumps({
        "type": "orderbook_delta", "parsec_id": "polymarket:572473", "exchange": "polymarket",
        "outcome": "Yes", "token_id": "50310842821", "market_id": "572473", "changes": changes,
        "server_seq": 1235, "feed_state": "healthy", "book_state": "fresh", "stale_after_ms": 5000,
        "exchange_ts_ms": 1708123456100, "ingest_ts_ms": 1708123456105})


def snapshot(depth: int) -> bytes:
    return orjson.dumps({
        "type": "orderbook", "parsec_id": "polymarket:572473", "exchange": "polymarket",
        "outcome": "Yes", "token_id": "50310842821", "market_id": "572473", "tick_size": 0.001,
        "min_order_size": 1.0, "kind": "snapshot", "title": "Will ETH reach $5000?",
        "bids": [[round(0.5 - i * 0.001, 3), 1000.0 + i] for i in range(depth)],
        "asks": [[round(0.501 + i * 0.001, 3), 800.0 + i] for i in range(depth)],
        "book_state": "fresh", "server_seq": 1234, "feed_state": "healthy", "stale_after_ms": 5000,
        "exchange_ts_ms": 1708123456000, "ingest_ts_ms": 1708123456050})


def per_call_ns(fn, arg, seconds: float, repeat: int) -> float:
    # calibrate the loop count to ~`seconds` per repeat
    n = 1000
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn(arg)
        dt = time.perf_counter_ns() - t0
        if dt > seconds * 1e9 / 4:
            break
        n *= 2
    n = max(1000, int(n * seconds * 1e9 / max(dt, 1)))
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn(arg)
        runs.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(runs)


def c_loop_ns(sc: FrameScanner, frame: bytes, seconds: float, repeat: int) -> float:
    n = 10_000
    while sc.bench_loop(frame, n) < seconds * 1e9 / 4:
        n *= 2
    return statistics.median(sc.bench_loop(frame, n) / n for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.2)
    args = ap.parse_args()

    frames = [("delta, 1 change", delta(1)), ("delta, 3 changes", delta(3)),
              ("delta, 10 changes", delta(10)), ("snapshot, 50 x 50", snapshot(50))]
    sc = FrameScanner()
    gc.disable()
    print(f"{'frame':<20}{'bytes':>7}{'orjson ns':>11}{'scan(py) ns':>13}{'ratio':>7}"
          f"{'scan(C) ns':>12}{'ratio':>7}")
    for name, frame in frames:
        kind = sc.scan_bytes(frame)
        assert kind in (SCAN_CODES["delta"], SCAN_CODES["snapshot"]), (name, kind)
        t_or = per_call_ns(orjson.loads, frame, args.seconds, args.repeat)
        t_py = per_call_ns(sc.scan_bytes, frame, args.seconds, args.repeat)
        t_c = c_loop_ns(sc, frame, args.seconds, args.repeat)
        print(f"{name:<20}{len(frame):>7}{t_or:>11.0f}{t_py:>13.0f}{t_py / t_or:>7.2f}"
              f"{t_c:>12.0f}{t_c / t_or:>7.2f}")
    gc.enable()


if __name__ == "__main__":
    main()
