"""Instructions per delta of the compiled receive path (FeedHandler.feed_ptr and its parts),
counted by callgrind on a realistic multi-book stream.

Wall clock on this shared VM swings by +-25 %; callgrind's instruction counts do not. The stream is
``bench/stream.py``'s (1-3 changes per delta, 5 % of sizes with 17 significant digits) for
``--books`` books at depth 50, interleaved at random, fed one frame at a time through a native
``FeedHandler``. The figures are callgrind's *inclusive* counts of our functions divided by the
number of deltas (picows framing, ~400 instructions per frame, comes on top in a live client).

    python bench/callgrind_feed.py [--n 50000] [--books 12] [--pythonpath DIR]

``--pythonpath`` runs another build (e.g. a git worktree of the previous commit, built in place)
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

CHILD = r"""
import random, sys
sys.path.insert(0, {bench!r})
from stream import make_stream, stream_frames
from parsec_fast._feed import FeedHandler
n, books = int(sys.argv[1]), int(sys.argv[2])
fh = FeedHandler(parser="native")
per_book = []
for b in range(books):
    pid = f"polymarket:{{572473 + b}}"
    snap, frames = stream_frames(make_stream(50, 2 * n // books + 100, seed=b), parsec_id=pid)
    fh.add(pid, "Yes")
    fh.feed(snap)
    per_book.append(iter(frames))
rng = random.Random(7)
order = [next(per_book[rng.randrange(books)]) for _ in range(n)]
feed = fh.feed
for f in order:
    feed(f)
fh.flush()
st = fh.stats
assert st["orjson_frames"] == 0 and st["deltas_applied"] == n, st
"""

# callgrind_annotate's inclusive lines: "  1,234,567 ( 1.23%)  file:function [object]"
LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(\S+):(\S+)")

PARTS = [
    ("FeedHandler.feed_ptr (all of it)", "FeedHandler_feed_ptr"),
    ("  FrameScanner.scan", "FrameScanner_scan"),
    ("    changes array", "_scan__changes_array"),
    ("  FeedHandler._native_frame", "FeedHandler__native_frame"),
    ("    FeedHandler._route", "FeedHandler__route"),
    ("    Book.raw_apply_delta", "Book_raw_apply_delta"),
]


def run(python: str, n: int, books: int, pythonpath: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ, PYTHONHASHSEED="0")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            python, "-c", CHILD.format(bench=HERE), str(n), str(books)],
                           env=env, capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr[-3000:])
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                             capture_output=True, text=True).stdout
    found: dict[str, float] = {}
    for line in ann.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        for label, needle in PARTS:
            # one function may appear once per source file it inlines; keep the largest line
            if m.group(3).endswith(needle) and m.group(3).startswith("__pyx_f_"):
                found[label] = max(found.get(label, 0.0), ir / n)
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000, help="deltas fed")
    ap.add_argument("--books", type=int, default=12)
    ap.add_argument("--pythonpath", default="", help="PYTHONPATH of the build to measure")
    args = ap.parse_args()
    found = run(sys.executable, args.n, args.books, args.pythonpath)
    print(f"instructions per delta ({args.n:,} deltas, {args.books} books, callgrind inclusive):")
    for label, _ in PARTS:
        v = found.get(label)
        print(f"  {label:36s} {v:8.0f}" if v is not None else f"  {label:36s}      n/a")


if __name__ == "__main__":
    main()
