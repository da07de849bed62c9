"""Instructions per delta of the SDK drop-in's receive path with one ``orderbook`` handler,
counted by callgrind: the compiled feed handler, compat's frame hook (``OrderbookEmitter``: the
book copy, the payload) and the handler itself, per handler shape of ``bench_compat.py``.

Wall clock on this shared VM swings by +-25 %; callgrind's counts do not. The stream is
``bench/stream.py``'s (1-3 changes per delta) on ``--books`` books at ``--depth``, fed one frame
at a time. ``nohook`` is the engine alone, ``none`` the hook with no handler.

    python bench/callgrind_compat.py [--n 20000] [--books 1] [--depth 50] [--shapes ...]
                                     [--pythonpath DIR]

``--pythonpath`` runs another build (e.g. a git worktree of an earlier commit, built in place)
for an A/B comparison. Needs valgrind on PATH.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = ("nohook", "none", "mid", "keep", "top", "top5", "iterate")

CHILD = r"""
import random, sys
sys.path.insert(0, {bench!r})
from stream import make_stream, stream_frames
from bench_compat import make_handler, Sink
from parsec_fast._feed import FeedHandler
from parsec_fast._orderbook import BookMeta, OrderbookEmitter

n, books, depth, shape = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sink = Sink()
handler = make_handler("none" if shape == "nohook" else shape, sink)
emitter = None


def on_snapshot(sub, frame):
    emitter.set_meta(sub, BookMeta.of_frame(frame))


def unexpected(*args):
    raise SystemExit(f"unexpected call {{args}}")


emitter = OrderbookEmitter([handler] if handler is not None else [], on_snapshot, unexpected,
                           unexpected, unexpected)
feed = FeedHandler(parser="native")
feed.on_book_frame = None if shape == "nohook" else emitter.on_book_frame
streams = []
for b in range(books):
    pid = f"polymarket:{{572473 + b}}"
    snapshot, frames = stream_frames(make_stream(depth, 2 * n // books + 100, seed=b),
                                     parsec_id=pid)
    feed.add(pid, "Yes")
    feed.feed(snapshot)
    streams.append(iter(frames))
rng = random.Random(7)
order = [next(streams[rng.randrange(books)]) for _ in range(n)]
for frame in order:
    feed.feed(frame)
feed.flush()
assert feed.stats["deltas_applied"] == n, feed.stats
"""

# callgrind_annotate's inclusive lines: "  1,234,567 ( 1.23%)  file:function [object]"
LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(\S+):(\S+)")


def per_delta(n: int, books: int, depth: int, shape: str, pythonpath: str | None) -> float:
    """Inclusive instructions of FeedHandler.feed_ptr (the handler runs inside it) per delta."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ, PYTHONHASHSEED="0")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               sys.executable, "-c", CHILD.format(bench=HERE), str(n), str(books),
                               str(depth), shape], env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                                    out], capture_output=True, text=True).stdout
    total = 0
    for line in annotated.splitlines():
        m = LINE.match(line)
        if m and m.group(3).startswith("__pyx_f_") and m.group(3).endswith("FeedHandler_feed_ptr"):
            total = max(total, int(m.group(1).replace(",", "")))
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="deltas (default 20000)")
    parser.add_argument("--books", type=int, default=1)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"comma-separated handler shapes (default: {','.join(SHAPES)})")
    parser.add_argument("--pythonpath", default=None, help="run another build (A/B)")
    args = parser.parse_args()
    print(f"instructions per delta ({args.n:,} deltas, {args.books} book(s) at depth "
          f"{args.depth}, callgrind inclusive of feed_ptr):")
    for shape in args.shapes.split(","):
        count = per_delta(args.n, args.books, args.depth, shape, args.pythonpath)
        print(f"  {shape:9s} {count:9,.0f}", flush=True)


if __name__ == "__main__":
    main()
