"""Wall clock, same run: a baseline build of the scanner vs the current one vs orjson.loads.

    PYTHONPATH=src taskset -c 1 python bench/scanner_ab.py --old /path/to/old/_scan.so

Build the baseline from an older commit into a separate directory (never over the in-place
build others use), e.g. `git worktree add /tmp/old <commit>` then build_ext there with
PARSEC_FAST_ONLY=_scan. Figures are per frame, median of 7 interleaved repeats, GC off; the
scans run in FrameScanner.bench_loop (a C loop). On a shared VM report ratios, not ns.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import time

import orjson

import parsec_fast._scan as new
from bench_scanner import delta, snapshot


def load(path: str):
    spec = importlib.util.spec_from_file_location("parsec_fast._scan", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def orjson_ns(frame: bytes, n: int) -> float:
    loads = orjson.loads
    t = time.perf_counter_ns()
    for _ in range(n):
        loads(frame)
    return (time.perf_counter_ns() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="baseline _scan .so")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    old = load(args.old)
    gc.disable()
    print(f"{'frame':<18}{'orjson ns':>10}{'old ns':>9}{'new ns':>9}{'new/old':>9}{'new/orjson':>11}")
    for name, frame in [("delta, 1 change", delta(1)), ("delta, 3 changes", delta(3)),
                        ("delta, 10 changes", delta(10)), ("snapshot 50x50", snapshot(50))]:
        so, sn = old.FrameScanner(), new.FrameScanner()
        assert sn.scan_bytes(frame) == so.scan_bytes(frame)
        n = 200_000 if len(frame) < 1000 else 40_000
        o, a, b = [], [], []
        for _ in range(args.repeat):
            o.append(orjson_ns(frame, n // 4))
            a.append(so.bench_loop(frame, n) / n)
            b.append(sn.bench_loop(frame, n) / n)
        o, a, b = statistics.median(o), statistics.median(a), statistics.median(b)
        print(f"{name:<18}{o:>10.0f}{a:>9.1f}{b:>9.1f}{b / a:>9.2f}{b / o:>11.3f}")


if __name__ == "__main__":
    main()
