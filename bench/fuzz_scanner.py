"""Long fuzz run of the native frame scanner (parsec_fast._scan), outside CI.

Feeds random bytes and mutated valid frames to the scanner and checks, for every input, the
contract of tests/test_scanner.py: no crash; if the scanner reads a frame natively, orjson.loads
accepts it and gives the same fields, doubles bit for bit; if orjson rejects it, the scanner
said FALLBACK. Plain `random` (millions of cases per minute); deterministic per --seed.

    PYTHONPATH=src python bench/fuzz_scanner.py --seconds 600 [--seed N]

AddressSanitizer (proves no read outside the buffer; each input is copied into a buffer of
exactly its size, so ASan sees any overrun of the payload):

    # build every module with ASan into a separate directory (the shared in-place build,
    # src/parsec_fast/*.so, is left alone: other processes use it)
    PARSEC_FAST_SANITIZE=address python setup.py build_ext --force \\
        --build-lib /tmp/asan-build --build-temp /tmp/asan-tmp
    # run with the ASan runtime preloaded, loading the instrumented scanner from there
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \\
        PYTHONPATH=src python bench/fuzz_scanner.py --seconds 300 \\
        --so /tmp/asan-build/parsec_fast/_scan.cpython-311-x86_64-linux-gnu.so

    (In-place alternative, as the README describes: PARSEC_FAST_SANITIZE=address python setup.py
    build_ext --inplace --force, then rebuild normally afterwards.)

Tried once here (gcc 12, ASan build as above, --seconds 300 --seed 7): 1,306,000 inputs
(1,104,592 rejected by orjson, 71,097 deltas, 45,963 snapshots, 53,981 other, 30,367 scanner
fallbacks), no ASan report, no contract violation. ASan was checked to be live in that setup
(a deliberate 1-byte heap over-read through ctypes is reported).
After the fast-path rewrite (16-byte key patterns, SWAR digits): ASan build of _scan only
(PARSEC_FAST_ONLY=_scan), --seconds 180 --seed 12: 4,649,000 inputs, no ASan report, no
contract violation; plain build, --seconds 240 --seed 11: 22,529,000 inputs, clean.
After the compact change-item fast path: plain build, --seconds 150 --seed 21: 14,990,000 inputs
(880,012 deltas), clean; ASan build of _scan, --seconds 180 --seed 22: 4,843,000 inputs, no ASan
report, no contract violation.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def load_scanner(so_path: str | None):
    if not so_path:
        import parsec_fast._scan as mod
        return mod
    import parsec_fast  # noqa: F401  (parent package)
    spec = importlib.util.spec_from_file_location("parsec_fast._scan", so_path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["parsec_fast._scan"] = mod
    spec.loader.exec_module(mod)
    return mod


SEEDS = [
    b'{"type":"orderbook_delta","parsec_id":"polymarket:572473","exchange":"polymarket",'
    b'"outcome":"Yes","token_id":"50310842821","market_id":"572473",'
    b'"changes":[{"side":"bid","price":0.65,"size":900.0},{"side":"ask","price":0.66,"size":0}],'
    b'"server_seq":1235,"feed_state":"healthy","book_state":"fresh","stale_after_ms":5000,'
    b'"exchange_ts_ms":1708123456100,"ingest_ts_ms":1708123456105}',
    b'{"type":"orderbook","parsec_id":"polymarket:572473","outcome":"Yes","tick_size":0.001,'
    b'"bids":[[0.65,1000.0],[0.64,2500]],"asks":[[0.66,8e2],[0.67,1.5E+3]],"title":null,'
    b'"book_state":"stale","server_seq":1234,"feed_state":"degraded","stale_after_ms":null}',
    b' {"changes" : [ {"size":1e-320, "x":[{"a":"\\u00e9\\ud83d\\ude00"},true,false,null],'
    b'"price":0.30000000000000004,"side":"ask"} ] ,"type":"orderbook_delta","server_seq":-0,'
    b'"parsec_id":"k\xc3\xa9:\xf0\x9f\x98\x80","w":{"\\"":[-0.0,1.7976931348623157e308]}}\n',
    b'{"type":"heartbeat","ts_ms":1708123456400}',
    b'{"type":"error","code":2002,"message":"market not found","parsec_id":"kalshi:NOPE"}',
]
TOKENS = [b'{', b'}', b'[', b']', b'"', b',', b':', b'\\', b'\\u', b'\\ud800', b'\\udc00', b' ',
          b'\n', b'0', b'-', b'.', b'e', b'E+', b'1e400', b'-0', b'null', b'true', b'"type"',
          b'"orderbook"', b'"orderbook_delta"', b'"changes"', b'"bids"', b'"server_seq"',
          b'9223372036854775808', b'\x00', b'\x80', b'\xc3', b'\xed\xa0\x80', b'\xef\xbb\xbf',
          b'\xf4\x90\x80\x80', b'123456789012345678901234567890', b'0.1234567890123456789']


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        i = rng.randint(0, len(b))
        if op == 0 and i < len(b):
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = bytes([rng.randrange(256)])
        elif op == 2 and i < len(b):
            del b[i:i + rng.randint(1, 4)]
        elif op == 3:
            del b[i:]
        elif op == 4:
            b[i:i] = rng.choice(TOKENS)
        elif op == 5 and len(b) > 1:
            j = rng.randint(0, len(b))
            k = rng.randint(0, len(b))
            b[k:k] = b[min(i, j):max(i, j)]
        elif op == 6:
            b = bytearray(rng.choice(SEEDS)) if rng.random() < 0.5 else b
    return bytes(b)


def check(mod, data: bytes) -> str:
    from test_scanner import check_against_orjson  # the same oracle as the tests

    got = mod.scan_to_python(data)
    try:
        orjson.loads(data)  # only whether orjson accepts it; check_against_orjson compares fields
    except orjson.JSONDecodeError:
        if got["kind"] != "fallback":
            raise AssertionError(("scanner accepted what orjson rejects", data, got))
        return "orjson-error"
    if got["kind"] in ("delta", "snapshot", "other"):
        check_against_orjson(data)
    return got["kind"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--so", default=None, help="load the scanner from this .so (e.g. an ASan build)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    mod = load_scanner(args.so)
    import test_scanner
    test_scanner.scan_to_python = mod.scan_to_python   # the oracle checks this module
    print(f"fuzzing {mod.__file__} for {args.seconds:.0f} s, seed {seed}", flush=True)
    sc = mod.FrameScanner()
    corpus = list(SEEDS)
    counts: dict[str, int] = {}
    n = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        for _ in range(1000):
            r = rng.random()
            if r < 0.1:
                data = rng.randbytes(rng.randint(0, 64))
            else:
                data = mutate(rng, rng.choice(corpus))
            # the C entry point on a malloc'd copy of exactly len(data) bytes (ASan sees overruns)
            sc.scan_exact(data)
            kind = check(mod, data)
            counts[kind] = counts.get(kind, 0) + 1
            if kind in ("delta", "snapshot") and len(corpus) < 500 and rng.random() < 0.01:
                corpus.append(data)   # keep interesting accepted inputs as new seeds
            n += 1
    print(f"{n} inputs, no crash, no contract violation: {counts}")


if __name__ == "__main__":
    main()
