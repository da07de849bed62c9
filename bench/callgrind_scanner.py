"""Instructions per frame of the native scanner vs orjson.loads, counted by callgrind.

Wall clock on this shared VM is noisy; callgrind's instruction counts are not. Each figure is
(Ir of a run scanning the frame N times) - (Ir of the same run with N = 0), divided by N, so
interpreter start-up and the Python-level set-up cancel out.

    python bench/callgrind_scanner.py [--n 20000] [--so path/to/_scan.so] [--frame delta1|delta3|snap50]

Runs valgrind on the real interpreter binary (sys.executable; a pyenv shim would be measured
instead otherwise). Needs valgrind on PATH.
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
import sys, importlib.util
sys.path.insert(0, {bench!r})
so, what, frame_name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if so:
    import parsec_fast
    spec = importlib.util.spec_from_file_location("parsec_fast._scan", so)
    mod = importlib.util.module_from_spec(spec); sys.modules["parsec_fast._scan"] = mod
    spec.loader.exec_module(mod)
from parsec_fast._scan import FrameScanner
import orjson
from bench_scanner import delta, snapshot
frame = {{"delta1": lambda: delta(1), "delta3": lambda: delta(3),
          "delta10": lambda: delta(10), "snap50": lambda: snapshot(50)}}[frame_name]()
sc = FrameScanner()
if what == "scan":
    sc.bench_loop(frame, n)
else:
    loads = orjson.loads
    for _ in range(n):
        loads(frame)
"""


def total_ir(python: str, script: str, so: str, what: str, frame: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "src"), PYTHONHASHSEED="0")
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            python, "-c", script, so, what, frame, str(n)],
                           env=env, capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", r.stderr)
        if r.returncode or not m:
            sys.exit(r.stderr[-3000:])
        return int(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--so", default="")
    ap.add_argument("--frame", default="delta1")
    ap.add_argument("--what", default="scan,orjson")
    args = ap.parse_args()
    script = CHILD.format(bench=HERE)
    for what in args.what.split(","):
        base = total_ir(sys.executable, script, args.so, what, args.frame, 0)
        full = total_ir(sys.executable, script, args.so, what, args.frame, args.n)
        print(f"{what:7s} {args.frame}: {(full - base) / args.n:8.1f} instructions/frame")


if __name__ == "__main__":
    main()
