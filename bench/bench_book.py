"""Book-apply benchmark: every contender replays the same seeded delta stream, side by side.

Run from the repo root::

    python bench/bench_book.py                # full run (~20 s on 2 shared cores)
    python bench/bench_book.py --quick        # a few seconds, for smoke tests
    python bench/bench_book.py --deltas 50000 --repeats 7 --json /tmp/book.json

What is measured, per depth (10, 50, 100 levels per side):

* **median ns/delta**: the stream is split into batches (``--batch`` deltas); each batch is timed
  with ``time.perf_counter_ns`` around a plain ``for changes, seq in batch: apply(changes, seq)``
  loop, giving ns/delta for that batch; the figure is the median over all batches of all repeats.
  The Python loop itself (iteration + unpacking, ``loop_overhead_ns`` in the JSON) is included
  for every contender alike and not subtracted.
* **p99 ns/delta**: one extra replay in which each delta is timed on its own; the median cost of
  an empty timer pair is subtracted. ``p50_single_ns`` from that pass cross-checks the batch median.
* **single-change apply_delta**: the same measurement on a stream where each delta has exactly one
  change (depth 50). This is the figure for issue 2's "≤ 150 ns" target on the compiled Book.
* **top-of-book read**: ``best_bid`` + ``best_ask`` in each contender's natural idiom, as ns per
  read, net of the empty ``for`` loop.

Honesty rules: all contenders get the same stream objects; each repeat restarts every contender
from the same snapshot (untimed); the contender order rotates between repeats; GC is disabled
while timing; after every timed replay, each book is checked against the book the generator says
is correct. A contender that ends with a wrong book is flagged in the table and the JSON.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from contenders import Contender, available_contenders  # noqa: E402
from stream import BookStream, make_stream  # noqa: E402

DEFAULT_JSON = os.path.join(HERE, "out", "book.json")
_pc = time.perf_counter_ns


# ── timing primitives ──────────────────────────────────────────────────────────────────────────


def _timer_overhead_ns(n: int = 20_000) -> float:
    """Median cost of an empty ``t0 = pc(); ... pc() - t0`` pair, subtracted from single timings."""
    pc = _pc
    samples = [0] * n
    for i in range(n):
        t0 = pc()
        samples[i] = pc() - t0
    return float(statistics.median(samples))


def _loop_overhead_ns(batch: list[tuple[Any, int]], reps: int = 50) -> float:
    """ns per iteration of the bare replay loop (iteration + tuple unpacking, no call)."""
    best = float("inf")
    for _ in range(reps):
        t0 = _pc()
        for changes, seq in batch:
            pass
        best = min(best, (_pc() - t0) / max(1, len(batch)))
    return best


def _percentile(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, math.ceil(q / 100.0 * len(sorted_vals)) - 1))
    return float(sorted_vals[k])


def _same_levels(
    got: list[tuple[float, float]], want: list[tuple[float, float]]
) -> bool:
    if len(got) != len(want):
        return False
    return all(float(gp) == wp and float(gs) == ws for (gp, gs), (wp, ws) in zip(got, want))


def _check(c: Contender, stream: BookStream) -> bool:
    bids, asks = c.levels()
    return _same_levels(bids, stream.final_bids) and _same_levels(asks, stream.final_asks)


# ── suites ─────────────────────────────────────────────────────────────────────────────────────


def bench_apply(
    factories: list[Callable[[], Contender]], stream: BookStream, repeats: int, batch: int
) -> dict[str, dict[str, Any]]:
    """Replay ``stream`` through every contender; return per-contender figures."""
    deltas = stream.deltas
    batches = [deltas[i : i + batch] for i in range(0, len(deltas), batch)]
    contenders = [f() for f in factories]
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    correct: dict[str, bool] = {c.name: True for c in contenders}

    # Warm-up replay (untimed): imports, caches, allocator, and a first correctness check.
    for c in contenders:
        c.apply_snapshot(stream.bids, stream.asks, stream.snapshot_seq)
        for changes, seq in deltas:
            c.apply_delta(changes, seq)
        correct[c.name] &= _check(c, stream)

    for r in range(repeats):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:  # rotate, so nobody always runs first
            c.apply_snapshot(stream.bids, stream.asks, stream.snapshot_seq)
            apply = c.apply_delta
            out = samples[c.name]
            gc.collect()
            gc.disable()
            try:
                for b in batches:
                    t0 = _pc()
                    for changes, seq in b:
                        apply(changes, seq)
                    out.append((_pc() - t0) / len(b))
            finally:
                gc.enable()
            correct[c.name] &= _check(c, stream)

    # Per-delta pass for the tail: each delta timed on its own.
    timer = _timer_overhead_ns()
    singles: dict[str, list[float]] = {}
    for c in contenders:
        c.apply_snapshot(stream.bids, stream.asks, stream.snapshot_seq)
        apply = c.apply_delta
        pc = _pc
        ts = [0] * len(deltas)
        gc.collect()
        gc.disable()
        try:
            for i, (changes, seq) in enumerate(deltas):
                t0 = pc()
                apply(changes, seq)
                ts[i] = pc() - t0
        finally:
            gc.enable()
        correct[c.name] &= _check(c, stream)
        singles[c.name] = sorted(max(0.0, t - timer) for t in ts)

    res: dict[str, dict[str, Any]] = {}
    for c in contenders:
        s = samples[c.name]
        one = singles[c.name]
        res[c.name] = {
            "label": c.label,
            "median_ns": statistics.median(s),
            "p99_ns": _percentile(one, 99),
            "p50_single_ns": _percentile(one, 50),
            "min_batch_ns": min(s),
            "max_batch_ns": max(s),
            "batches": len(s),
            "correct": correct[c.name],
        }
    fastest = min(v["median_ns"] for v in res.values())
    for v in res.values():
        v["ratio_to_fastest"] = v["median_ns"] / fastest
    return res


def bench_top(
    factories: list[Callable[[], Contender]], stream: BookStream, reads: int, repeats: int
) -> dict[str, dict[str, Any]]:
    """ns per top-of-book read (the mean of ``best_bid`` and ``best_ask``), net of the empty loop."""
    contenders = [f() for f in factories]
    for c in contenders:
        c.apply_snapshot(stream.bids, stream.asks, stream.snapshot_seq)
    res: dict[str, dict[str, Any]] = {}
    gc.collect()
    gc.disable()
    try:
        empty = []
        for _ in range(repeats):
            t0 = _pc()
            for _ in range(reads):
                pass
            empty.append(_pc() - t0)
        base = statistics.median(empty)
        for c in contenders:
            ts = []
            for _ in range(repeats):
                t0 = _pc()
                c.read_top(reads)
                ts.append(_pc() - t0)
            res[c.name] = {"label": c.label, "read_ns": max(0.0, statistics.median(ts) - base) / (2 * reads)}
            get_book = getattr(c, "get_book_like", None)
            if get_book is not None:  # the SDK's public read path, for reference
                n = max(10, reads // 100)
                ts = []
                for _ in range(repeats):
                    t0 = _pc()
                    for _ in range(n):
                        get_book()
                    ts.append(_pc() - t0)
                res[c.name + " get_book()"] = {
                    "label": "SDK-style get_book(): dict per level + deepcopy (reimplemented)",
                    "read_ns": statistics.median(ts) / n,
                }
    finally:
        gc.enable()
    fastest = min(v["read_ns"] for v in res.values()) or 1e-9
    for v in res.values():
        v["ratio_to_fastest"] = v["read_ns"] / fastest
    return res


# ── reporting ──────────────────────────────────────────────────────────────────────────────────


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = None
    try:
        commit = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "commit": commit,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _fmt_ns(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _print_apply(title: str, res: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'contender':<22} {'median ns':>11} {'p99 ns':>11} {'x fastest':>10}  book")
    for name, v in sorted(res.items(), key=lambda kv: kv[1]["median_ns"]):
        ok = "ok" if v["correct"] else "WRONG"
        print(
            f"  {name:<22} {_fmt_ns(v['median_ns']):>11} {_fmt_ns(v['p99_ns']):>11} "
            f"{v['ratio_to_fastest']:>9.2f}x  {ok}"
        )


def _print_top(res: dict[str, dict[str, Any]]) -> None:
    print("\ntop-of-book read (best_bid / best_ask), ns per read, net of loop")
    print(f"  {'contender':<32} {'ns/read':>10} {'x fastest':>10}")
    for name, v in sorted(res.items(), key=lambda kv: kv[1]["read_ns"]):
        print(f"  {name:<32} {_fmt_ns(v['read_ns']):>10} {v['ratio_to_fastest']:>9.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests (seconds)")
    ap.add_argument("--deltas", type=int, default=None, help="deltas per stream (default 20000)")
    ap.add_argument("--repeats", type=int, default=None, help="timed replays per contender (default 5)")
    ap.add_argument("--batch", type=int, default=None, help="deltas per timed batch (default 1000)")
    ap.add_argument("--depths", default="10,50,100", help="comma-separated depths (default 10,50,100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--contenders", default=None, help="comma-separated subset of contender names")
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"output JSON path (default {DEFAULT_JSON})")
    args = ap.parse_args(argv)

    n = args.deltas or (300 if args.quick else 20_000)
    repeats = args.repeats or (2 if args.quick else 5)
    batch = args.batch or (100 if args.quick else 1000)
    reads = 2_000 if args.quick else 200_000
    depths = [int(d) for d in args.depths.split(",") if d.strip()]
    names = [s.strip() for s in args.contenders.split(",")] if args.contenders else None

    factories, skipped = available_contenders(names)
    if not factories:
        print("no contender available:", skipped, file=sys.stderr)
        return 2
    for name, why in skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)

    meta = _machine()
    probe = make_stream(depths[0], min(n, 1000), args.seed)
    loop_ns = _loop_overhead_ns(probe.deltas)
    meta.update(
        deltas=n, repeats=repeats, batch=batch, seed=args.seed, quick=args.quick,
        loop_overhead_ns=loop_ns, timer_overhead_ns=_timer_overhead_ns(),
    )
    print(
        f"book apply: {n} deltas x {repeats} repeats, seed {args.seed}, Python {meta['python']}, "
        f"{meta['cpu']} ({meta['cpus']} cpus); loop overhead {loop_ns:.1f} ns/delta (included)"
    )

    out: dict[str, Any] = {"meta": meta, "skipped": skipped, "apply": {}, "streams": {}}
    t_start = time.perf_counter()
    for depth in depths:
        stream = make_stream(depth, n, args.seed)
        out["streams"][str(depth)] = stream.stats
        res = bench_apply(factories, stream, repeats, batch)
        out["apply"][str(depth)] = res
        _print_apply(
            f"depth {depth}: {stream.stats['changes_per_delta']:.2f} changes/delta, "
            f"{100 * stream.stats['remove_share']:.1f}% removals, {100 * stream.stats['new_level_share']:.1f}% new levels",
            res,
        )

    single = make_stream(50, n, args.seed, changes_weights=(1.0, 0.0, 0.0))
    out["streams"]["single_change_50"] = single.stats
    res = bench_apply(factories, single, repeats, batch)
    out["single_change"] = res
    _print_apply("single-change deltas, depth 50", res)
    if "parsec_fast.Book" in res:
        v = res["parsec_fast.Book"]
        out["single_change_compiled_ns"] = {
            "median_ns": v["median_ns"],
            "median_net_of_loop_ns": v["median_ns"] - loop_ns,
            "target_ns": 150,
        }
        print(
            f"  compiled Book, one change: {v['median_ns']:.0f} ns median "
            f"({v['median_ns'] - loop_ns:.0f} ns net of the loop; target <= 150 ns)"
        )

    top_stream = make_stream(50, 1, args.seed)
    out["top_of_book"] = bench_top(factories, top_stream, reads, repeats)
    _print_top(out["top_of_book"])

    wrong = [f"{d}:{name}" for d, r in out["apply"].items() for name, v in r.items() if not v["correct"]]
    wrong += [f"single:{name}" for name, v in out["single_change"].items() if not v["correct"]]
    out["wrong_books"] = wrong
    out["elapsed_s"] = time.perf_counter() - t_start
    if wrong:
        print(f"\nWARNING: wrong final book for {', '.join(wrong)}", file=sys.stderr)

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2, sort_keys=False)
    print(f"\nwrote {args.json} ({out['elapsed_s']:.1f} s)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
