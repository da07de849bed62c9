"""Instructions per delta of the compiled receive path (FeedHandler.feed_ptr and its parts),
counted by callgrind on a realistic multi-book stream.

Wall clock on this shared VM swings by +-25 %; callgrind's instruction counts do not. The stream is
``bench/stream.py``'s (1-3 changes per delta, 5 % of sizes with 17 significant digits) for
``--books`` books at depth 50, interleaved at random, fed one frame at a time through a native
``FeedHandler``. The figures are callgrind's *inclusive* counts of our functions divided by the
number of deltas (picows framing, ~400 instructions per frame, comes on top in a live client).

    python bench/callgrind_feed.py [--n 50000] [--books 12] [--pythonpath DIR]
                                   [--flush-every K] [--publish]

``--pythonpath`` runs another build (e.g. a git worktree of the previous commit, built in place)
for an A/B comparison. ``--flush-every K`` ends a read batch (``flush()``) every K frames, as the
listener does (1: a batch per frame, what a paced stream gives); ``--publish`` attaches a
shared-memory publisher (``parsec_fast.shared``), so the flush rows include writing each
updated book into its slot. Needs valgrind on PATH.
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
n, books, flush_every, publish = (int(a) for a in sys.argv[1:5])
fh = FeedHandler(parser="native")
pub = None
if publish:
    from parsec_fast._shm_writer import Publisher
    pub = Publisher(f"pf-callgrind-{{__import__('os').getpid()}}", max_books=books, max_levels=50)
    pub.attach(fh)
per_book = []
for b in range(books):
    pid = f"polymarket:{{572473 + b}}"
    snap, frames = stream_frames(make_stream(50, 2 * n // books + 100, seed=b), parsec_id=pid)
    fh.add(pid, "Yes")
    fh.feed(snap)
    per_book.append(iter(frames))
rng = random.Random(7)
order = [next(per_book[rng.randrange(books)]) for _ in range(n)]
feed, flush = fh.feed, fh.flush
if flush_every:
    for i, f in enumerate(order, 1):
        feed(f)
        if i % flush_every == 0:
            flush()
else:
    for f in order:
        feed(f)
fh.flush()
st = fh.stats
assert st["orjson_frames"] == 0 and st["deltas_applied"] == n, st
if pub is not None:
    pub.close()
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
# With --flush-every: flush() as the listener calls it (its Python-level wrapper, so the call's
# own cost is in), and what the shared-memory publisher does inside it.
FLUSH_PARTS = [
    ("FeedHandler.flush (all of it)", "FeedHandler_", "flush", "__pyx_pw_"),
    ("  FeedHandler._sink_flush", "FeedHandler__sink_flush", "", "__pyx_f_"),
    ("    Publisher.sink_publish", "Publisher_sink_publish", "", "__pyx_f_"),
    ("    Publisher.sink_commit", "Publisher_sink_commit", "", "__pyx_f_"),
]


def run(python: str, n: int, books: int, pythonpath: str, flush_every: int = 0,
        publish: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ, PYTHONHASHSEED="0")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            python, "-c", CHILD.format(bench=HERE), str(n), str(books),
                            str(flush_every), str(int(publish))],
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
        for label, middle, end, prefix in FLUSH_PARTS:
            name = m.group(3)
            if flush_every and name.startswith(prefix) and middle in name and name.endswith(end):
                found[label] = max(found.get(label, 0.0), ir / n)
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000, help="deltas fed")
    ap.add_argument("--books", type=int, default=12)
    ap.add_argument("--pythonpath", default="", help="PYTHONPATH of the build to measure")
    ap.add_argument("--flush-every", type=int, default=0,
                    help="flush() every K frames (0: once at the end)")
    ap.add_argument("--publish", action="store_true",
                    help="attach a shared-memory publisher (parsec_fast.shared)")
    args = ap.parse_args()
    found = run(sys.executable, args.n, args.books, args.pythonpath, args.flush_every,
                args.publish)
    print(f"instructions per delta ({args.n:,} deltas, {args.books} books, callgrind inclusive"
          f"{f', flush every {args.flush_every}' if args.flush_every else ''}"
          f"{', publishing' if args.publish else ''}):")
    labels = [label for label, _ in PARTS]
    if args.flush_every:
        labels += [label for label, *_ in FLUSH_PARTS]
    for label in labels:
        v = found.get(label)
        print(f"  {label:36s} {v:8.0f}" if v is not None else f"  {label:36s}      n/a")


if __name__ == "__main__":
    main()
