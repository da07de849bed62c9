"""Parse + apply benchmark (issue 5 suite 2, issue 7 "bytes -> applied"): raw frame bytes to an
applied book, every contender on the same seeded frames, side by side in one run.

Run from the repo root, pinned to one core::

    taskset -c 1 python bench/bench_parse.py            # full run (~1-2 min)
    taskset -c 1 python bench/bench_parse.py --quick    # a few seconds, for smoke tests
    python bench/bench_parse.py --deltas 50000 --repeats 7 --json /tmp/parse.json

Frame sets (``bench/stream.py``: a seeded 50-level book, PROTOCOL.md frames encoded by orjson):
deltas with exactly 1, 3 and 10 changes (the 10-change frames group ten consecutive 1-change
deltas of a stream, renumbered, so the book is still checked against the generator), and the
stream's 50 x 50 snapshot (re-applied over and over: a snapshot replaces the book whatever its seq).

Contenders, per frame:

* ``orjson.loads``           parse only, no apply: the parse floor every ratio refers to;
* ``feed native``            ``FeedHandler(parser="native").feed(frame)``: scanner + C book;
* ``feed orjson``            ``FeedHandler(parser="orjson").feed(frame)``: orjson + C book;
* ``orjson + Book``          ``obj = orjson.loads(frame); book.apply_delta(obj["changes"], obj["server_seq"])``;
* ``json + reference``       ``json.loads`` + ``parsec_fast.reference.Book`` (pure Python);
* ``scanner (py call)``      ``FrameScanner.scan_bytes(frame)``: scan only, one Python call each;
* ``scanner (C loop)``       ``FrameScanner.bench_loop``: scan only, in a C loop (what a Cython
                             listener pays); measured on a sample of the frames, no p99.

Figures: **median ns/frame** = median over batches (``--batch`` frames timed together with
``perf_counter_ns``, the Python ``for`` loop included for every contender alike) over all repeats;
**p99 ns/frame** from one extra pass timing every frame on its own, net of the median cost of an
empty timer pair; **x orjson.loads** = median / the orjson.loads median on the same frames. Each
repeat restarts every contender from the snapshot (untimed), the contender order rotates between
repeats, GC is off while timing, and every book is compared with the generator's final book after
each replay (a wrong book is flagged in the table and the JSON). The handlers have no callbacks
(``on_book_updated`` is delivered by ``flush()``, not called here): this is the cost of bytes ->
applied book.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
from typing import Any, Callable

import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from bench_book import _machine, _percentile, _timer_overhead_ns  # noqa: E402
from stream import BookStream, make_stream, stream_frames  # noqa: E402

from parsec_fast import reference  # noqa: E402
from parsec_fast._book import Book  # noqa: E402
from parsec_fast._feed import FeedHandler  # noqa: E402
from parsec_fast._scan import SCAN_CODES, FrameScanner  # noqa: E402

DEFAULT_JSON = os.path.join(HERE, "out", "parse.json")
PID, OUTCOME = "polymarket:572473", "Yes"
_pc = time.perf_counter_ns


# ── frame sets ─────────────────────────────────────────────────────────────────────────────────


def _grouped(stream: BookStream, k: int) -> BookStream:
    """The same evolution with k consecutive changes per delta, seqs renumbered."""
    changes = [c for ch, _ in stream.deltas for c in ch]
    deltas = [(changes[i:i + k], stream.snapshot_seq + 1 + i // k)
              for i in range(0, len(changes) - len(changes) % k, k)]
    out = BookStream(depth=stream.depth, seed=stream.seed, snapshot_seq=stream.snapshot_seq,
                     bids=stream.bids, asks=stream.asks, deltas=deltas)
    # the final book of a truncated evolution: replay with the reference book
    ref = reference.Book(PID, OUTCOME)
    ref.apply_snapshot(stream.bids, stream.asks, stream.snapshot_seq)
    for ch, seq in deltas:
        ref.apply_delta(ch, seq)
    out.final_bids, out.final_asks = ref.bids(), ref.asks()
    return out


def frame_sets(n: int, seed: int) -> list[dict[str, Any]]:
    one = make_stream(50, n, seed, changes_weights=(1, 0, 0))
    three = make_stream(50, n, seed + 1, changes_weights=(0, 0, 1))
    ten = _grouped(make_stream(50, 10 * n, seed + 2, changes_weights=(1, 0, 0)), 10)
    sets = []
    for name, s in (("delta, 1 change", one), ("delta, 3 changes", three),
                    ("delta, 10 changes", ten)):
        snap, frames = stream_frames(s, PID, OUTCOME)
        sets.append({"name": name, "stream": s, "snapshot": snap, "frames": frames,
                     "kind": "delta"})
    snap, _ = stream_frames(one, PID, OUTCOME)
    sets.append({"name": "snapshot, 50 x 50", "stream": one, "snapshot": snap,
                 "frames": [snap] * max(200, n // 10), "kind": "snapshot"})
    return sets


# ── contenders: prepare(fs) -> (per-frame function, check() -> bool) ─────────────────────────


def _levels_ok(book, fs) -> bool:
    s = fs["stream"]
    if fs["kind"] == "snapshot":
        want_b, want_a = [tuple(x) for x in s.bids], [tuple(x) for x in s.asks]
    else:
        want_b, want_a = s.final_bids, s.final_asks
    return list(book.bids()) == want_b and list(book.asks()) == want_a


def c_orjson(fs):
    loads = orjson.loads
    return loads, lambda: True


def _feed(parser: str):
    def prepare(fs):
        fh = FeedHandler(parser=parser)
        sub = fh.add(PID, OUTCOME)
        fh.feed(fs["snapshot"])
        expected_native = fs["kind"] == "delta" and parser == "native"
        start = fh.stats["native_frames"]

        def check() -> bool:
            st = fh.stats
            if st["protocol_errors"] or st["rejected"] or not sub.book.is_valid:
                return False
            if expected_native and st["orjson_frames"]:
                return False   # a frame fell back: not the path we mean to measure
            return _levels_ok(sub.book, fs) and (parser == "orjson" or st["native_frames"] > start)
        return fh.feed, check
    return prepare


def _decode_then_apply(fs, loads, book_cls):
    """A contender that decodes each frame with ``loads`` and applies it to a ``book_cls``."""
    book = book_cls(PID, OUTCOME)
    snap = loads(fs["snapshot"])
    book.apply_snapshot(snap["bids"], snap["asks"], snap["server_seq"])
    if fs["kind"] == "snapshot":
        def fn(frame, loads=loads, apply=book.apply_snapshot):
            obj = loads(frame)
            apply(obj["bids"], obj["asks"], obj["server_seq"])
    else:
        def fn(frame, loads=loads, apply=book.apply_delta):
            obj = loads(frame)
            apply(obj["changes"], obj["server_seq"])
    return fn, lambda: book.is_valid and _levels_ok(book, fs)


def c_orjson_book(fs):
    return _decode_then_apply(fs, orjson.loads, Book)


def c_json_reference(fs):
    return _decode_then_apply(fs, json.loads, reference.Book)


def c_scanner(fs):
    sc = FrameScanner()
    want = SCAN_CODES["snapshot" if fs["kind"] == "snapshot" else "delta"]
    frames = fs["frames"]
    return sc.scan_bytes, lambda: all(sc.scan_bytes(f) == want for f in frames[:1000])


CONTENDERS: dict[str, Callable] = {
    "orjson.loads": c_orjson,
    "feed native": _feed("native"),
    "feed orjson": _feed("orjson"),
    "orjson + Book": c_orjson_book,
    "json + reference": c_json_reference,
    "scanner (py call)": c_scanner,
}


# ── timing ─────────────────────────────────────────────────────────────────────────────────────


def time_batches(fn, frames: list[bytes], batch: int) -> list[float]:
    out = []
    pc = _pc
    for i in range(0, len(frames) - batch + 1, batch):
        chunk = frames[i:i + batch]
        t0 = pc()
        for f in chunk:
            fn(f)
        out.append((pc() - t0) / len(chunk))
    return out


def time_each(fn, frames: list[bytes], overhead: float) -> list[float]:
    pc = _pc
    out = [0.0] * len(frames)
    for i, f in enumerate(frames):
        t0 = pc()
        fn(f)
        out[i] = pc() - t0 - overhead
    return out


def scanner_c_loop(frames: list[bytes], iters: int, sample: int = 100) -> float:
    """ns per scan in FrameScanner.bench_loop's C loop, median over a sample of the frames."""
    sc = FrameScanner()
    step = max(1, len(frames) // sample)
    return statistics.median(sc.bench_loop(f, iters) / iters for f in frames[::step][:sample])


def run_set(fs: dict[str, Any], repeats: int, batch: int, overhead: float,
            c_iters: int) -> dict[str, Any]:
    frames = fs["frames"]
    names = list(CONTENDERS)
    samples: dict[str, list[float]] = {n: [] for n in names}
    ok: dict[str, bool] = {n: True for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn, check = CONTENDERS[name](fs)
            gc.collect()
            gc.disable()
            try:
                samples[name] += time_batches(fn, frames, batch)
            finally:
                gc.enable()
            ok[name] = ok[name] and check()
    res: dict[str, Any] = {}
    for name in names:
        fn, check = CONTENDERS[name](fs)
        gc.collect()
        gc.disable()
        try:
            single = sorted(time_each(fn, frames, overhead))
        finally:
            gc.enable()
        ok[name] = ok[name] and check()
        res[name] = {"median_ns": statistics.median(samples[name]),
                     "p99_ns": _percentile(single, 99),
                     "p50_single_ns": _percentile(single, 50),
                     "book_ok": ok[name]}
    res["scanner (C loop)"] = {"median_ns": scanner_c_loop(frames, c_iters), "p99_ns": None,
                               "p50_single_ns": None, "book_ok": True}
    floor = res["orjson.loads"]["median_ns"]
    for v in res.values():
        v["x_orjson_loads"] = v["median_ns"] / floor
    return res


# ── report ─────────────────────────────────────────────────────────────────────────────────────


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def print_table(title: str, nbytes: float, res: dict[str, Any]) -> None:
    print(f"\n{title}  ({nbytes:,.0f} B/frame on average)")
    print(f"  {'contender':<20} {'median ns':>11} {'p99 ns':>10} {'x orjson.loads':>15}  book")
    for name, v in sorted(res.items(), key=lambda kv: kv[1]["median_ns"]):
        print(f"  {name:<20} {_fmt(v['median_ns']):>11} {_fmt(v['p99_ns']):>10} "
              f"{v['x_orjson_loads']:>15.2f}  {'ok' if v['book_ok'] else 'WRONG'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small run for smoke tests")
    ap.add_argument("--deltas", type=int, default=None, help="frames per delta set (20000)")
    ap.add_argument("--repeats", type=int, default=None, help="replays per contender (5)")
    ap.add_argument("--batch", type=int, default=None, help="frames per timed batch (500)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"output path (default {DEFAULT_JSON})")
    args = ap.parse_args(argv)
    n = args.deltas or (2_000 if args.quick else 20_000)
    repeats = args.repeats or (2 if args.quick else 5)
    batch = args.batch or (200 if args.quick else 500)
    c_iters = 2_000 if args.quick else 20_000

    t_start = time.time()
    sets = frame_sets(n, args.seed)
    overhead = _timer_overhead_ns()
    out: dict[str, Any] = {"suite": "parse", "machine": _machine(),
                           "params": {"deltas": n, "repeats": repeats, "batch": batch,
                                      "seed": args.seed, "quick": args.quick,
                                      "timer_overhead_ns": overhead,
                                      "affinity": sorted(os.sched_getaffinity(0))
                                      if hasattr(os, "sched_getaffinity") else None},
                           "sets": {}}
    for fs in sets:
        res = run_set(fs, repeats, batch, overhead, c_iters)
        nbytes = statistics.mean(len(f) for f in fs["frames"])
        out["sets"][fs["name"]] = {"frames": len(fs["frames"]), "mean_bytes": nbytes,
                                   "results": res}
        print_table(fs["name"], nbytes, res)

    one = out["sets"]["delta, 1 change"]["results"]
    native = one["feed native"]["median_ns"]
    summary = {
        "native_feed_single_change_deltas_per_s": 1e9 / native,
        "native_feed_vs_orjson_loads_single_change": one["feed native"]["x_orjson_loads"],
        "scanner_c_loop_vs_orjson_loads_single_change": one["scanner (C loop)"]["x_orjson_loads"],
        "all_books_ok": all(v["book_ok"] for s in out["sets"].values()
                            for v in s["results"].values()),
        "seconds": time.time() - t_start,
    }
    out["summary"] = summary
    print(f"\nnative feed path, single-change deltas: {summary['native_feed_single_change_deltas_per_s']:,.0f}"
          f" deltas/s ({native:,.0f} ns/frame, {summary['native_feed_vs_orjson_loads_single_change']:.2f}x"
          f" orjson.loads alone; scan alone in C: "
          f"{summary['scanner_c_loop_vs_orjson_loads_single_change']:.2f}x)")
    if not summary["all_books_ok"]:
        print("WARNING: a contender ended with a wrong book (see 'book' column)")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json} ({summary['seconds']:.0f} s)")
    return 0 if summary["all_books_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
