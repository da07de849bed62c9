"""Shared-memory books (suite shm): the four targets of ``parsec_fast.shared``, side by side in one run.

Run from the repo root::

    python bench/bench_shm.py                 # full run: 5 interleaved rounds of every segment
    python bench/bench_shm.py --quick         # seconds, for the smoke test
    python bench/bench_shm.py --rounds 3 --seconds 2 --no-callgrind

What is measured. This process is the **publisher** (pinned to ``--writer-cpu``, 0): a
``FeedHandler`` with a ``parsec_fast.shared`` publisher attached, fed pre-encoded
``orderbook_delta`` frames (``bench/stream.py``, depth 50) paced at ``--rate`` (20 k deltas/s),
one ``feed()`` + ``flush()`` per delta (a read batch per frame, what a paced stream gives), the
pacing a spin on ``time.monotonic_ns()``. **Reader processes** are started with ``taskset`` on
``--reader-cpu`` (1). A segment runs ``--seconds`` of paced deltas with one configuration; every
round runs every segment once, in an order rotated from round to round, so drifts of the shared
machine hit all of them; the first ``--warmup`` s of each segment are dropped. Figures are
medians over rounds with their spread (min-max over rounds); a ratio is the median of per-round
ratios (both sides measured in the same round).

Segments:

* ``latency:spin`` / ``latency:wait`` / ``latency:async`` (one book): publish -> visible in a
  reader process. The writer reads ``time.monotonic_ns()`` just before each ``flush()`` (the
  publish: conservative, the slot write comes after); the reader, after ``wait()`` (spinning:
  ``spin=1.0``; the default sleeping wait; ``await changed()``) returned and it read the book's
  ``seq``, reads the same clock (CLOCK_MONOTONIC, one clock for the host). Records are joined by
  seq afterwards: a delta is visible at the first reader record with a seq >= its own (a sleeping
  reader coalesces). p50 / p99 / p99.9 / max.
* ``wake`` (one book, 200 deltas/s, ``linger=0``): every wait is the announced long sleep, so the
  writer issues a FUTEX_WAKE per delta: the wake-up latency, and its cost to the writer.
* ``readcost`` (one book, the writer at the paced rate): in a reader process, ns per read of
  ``SharedBook.best_bid`` / ``best_ask`` (the mean of the two, net of the empty loop, as suite 1
  measures ``Book``), ``SharedBook.top()``, a local ``Book``'s ``best_bid`` / ``best_ask`` in the
  same process, and the C read of the slot's top line without the Python call.
* ``apply:none`` / ``apply:0`` / ``apply:8`` (12 books interleaved at random): ns per delta of
  ``feed()`` + ``flush()`` (clock to clock, in the writer) without a publisher, with one and 0
  readers, with one and 8 reader processes. Each reader waits with the default ``wait()``, reads
  ``top()`` of every book at each wake and every book's ``bids()`` at every 16th. During
  ``apply:8`` the writer stops every ``--check-every`` deltas, takes a digest of its books (levels,
  seq, validity, states, trust, reason) and every reader compares its own view's digest: the
  books-equal target.

``--callgrind`` (default on when valgrind is there) adds ``bench/callgrind_feed.py``'s instruction
counts per delta of ``feed_ptr`` + ``flush`` with and without a publisher, which machine load does
not move. CPU of other processes during each segment (``/proc/stat`` minus ours) is recorded
(``foreign_cores``); a segment during which it exceeded ``--max-foreign`` is re-run (``--retries``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
THIS = os.path.abspath(__file__)
DEFAULT_JSON = os.path.join(HERE, "out", "shm.json")
sys.path.insert(0, HERE)

PID1 = "polymarket:572473"
DEPTH = 50
APPLY_BOOKS = 12
#: What each apply:8 reader reads per wake: "full" (top() of every book, every book's bids() at
#: every 16th wake), "top", or "none" (only waits): --load-reads.
LOAD_READS = "full"
#: apply:8 alternates blocks of this many seconds with its readers stopped and running.
BLOCK_S = 0.25

SEGMENTS = ("latency:spin", "latency:wait", "latency:async", "wake", "readcost",
            "apply:none", "apply:0", "apply:8")


# ── the common book digest (publisher's Subscription and reader's SharedBook) ───────────────────


def _digest(rows: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(sorted(rows), separators=(",", ":")).encode()).hexdigest()


def _pub_digest(fh: Any) -> str:
    rows = []
    for s in fh.subscriptions():
        b = s.book
        rows.append([s.parsec_id, s.outcome, b.seq, b.is_valid, [list(x) for x in b.bids()],
                     [list(x) for x in b.asks()], s.book_state, s.feed_state, s.locally_stale,
                     s.invalid_reason, s.trustworthy, s.why_not()])
    return _digest(rows)


def _reader_digest(books: Any) -> str:
    rows = []
    for sb in books.books():
        d, st = sb.to_dict(), sb.state()
        rows.append([sb.parsec_id, sb.outcome, d["seq"], d["is_valid"], d["bids"], d["asks"],
                     st["book_state"], st["feed_state"], st["locally_stale"],
                     st["invalid_reason"], sb.trustworthy, sb.why_not()])
    return _digest(rows)


# ── reader processes ─────────────────────────────────────────────────────────────────────────────


def reader_main(argv: list[str]) -> int:
    """``--role reader MODE NAME OUT [SECONDS]``: one reader process (see the module docstring)."""
    from parsec_fast.shared import BookBusyError, PublisherGoneError, attach

    mode, name, out = argv[0], argv[1], argv[2]
    books = attach(name)
    print("ready", flush=True)
    if mode in ("spin", "wait", "async", "wake"):
        sb = books.book(PID1)
        seqs, times = array("q"), array("q")
        mono = time.monotonic_ns
        c = books.changes
        kwargs: dict[str, Any] = {"spin": 1.0} if mode == "spin" else \
            {"linger": 0.0} if mode == "wake" else {}
        cpu0, wall0 = _cpu(resource.RUSAGE_SELF), time.monotonic()
        busy = 0
        try:
            if mode == "async":
                import asyncio

                async def run() -> None:
                    nonlocal c, busy
                    while True:
                        c = await books.changed(c, 1.0)
                        try:
                            s = sb.seq
                        except BookBusyError:
                            busy += 1
                            continue
                        times.append(mono())
                        seqs.append(s if s is not None else -1)
                asyncio.run(run())
            else:
                wait = books.wait
                while True:
                    c = wait(c, 1.0, **kwargs)
                    try:
                        s = sb.seq
                    except BookBusyError:
                        busy += 1
                        continue
                    times.append(mono())
                    seqs.append(s if s is not None else -1)
        except PublisherGoneError:
            pass
        with open(out, "wb") as f:
            seqs.tofile(f)
            times.tofile(f)
        with open(out + ".cpu", "w") as f:
            json.dump({"cpu_cores": (_cpu(resource.RUSAGE_SELF) - cpu0)
                       / max(1e-9, time.monotonic() - wall0), "busy": busy}, f)
        return 0
    if mode == "readcost":
        return _readcost(books, out, float(argv[3]))
    if mode == "load":
        return _load_reader(books, out, argv[3] if len(argv) > 3 else "full")
    raise SystemExit(f"unknown reader mode {mode}")


def _readcost(books: Any, out: str, seconds: float) -> int:
    from parsec_fast import Book

    sb = books.book(PID1)
    local = Book(PID1, "Yes")
    d = sb.to_dict()
    local.apply_snapshot(d["bids"], d["asks"], d["seq"] or 1)
    n = 20_000
    pc = time.perf_counter_ns
    res: dict[str, list[float]] = {k: [] for k in ("empty", "shared", "top", "local", "c")}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = pc()
        for _ in range(n):
            pass
        res["empty"].append(pc() - t0)
        t0 = pc()
        for _ in range(n):
            sb.best_bid
            sb.best_ask
        res["shared"].append(pc() - t0)
        t0 = pc()
        for _ in range(n):
            sb.top()
        res["top"].append(pc() - t0)
        t0 = pc()
        for _ in range(n):
            local.best_bid
            local.best_ask
        res["local"].append(pc() - t0)
        ns, _ = sb._bench_top(n)
        res["c"].append(ns)
    empty = statistics.median(res["empty"])
    with open(out, "w") as f:
        json.dump({
            "blocks": len(res["empty"]),
            "shared_ns": max(0.0, statistics.median(res["shared"]) - empty) / (2 * n),
            "top_ns": max(0.0, statistics.median(res["top"]) - empty) / n,
            "local_ns": max(0.0, statistics.median(res["local"]) - empty) / (2 * n),
            "c_ns": statistics.median(res["c"]) / n,
            # the same, with the loop itself in (what a Python loop of reads costs)
            "shared_gross_ns": statistics.median(res["shared"]) / (2 * n),
        }, f)
    return 0


def _load_reader(books: Any, out: str, reads: str) -> int:
    """One of the apply:8 readers: default wait, top() of every book per wake, bids() of every
    book each 16th wake; answers "check K DIGEST" lines on stdin with "ok K" / "bad K"."""
    from parsec_fast.shared import PublisherGoneError

    lock = threading.Lock()
    checks = {"ok": 0, "bad": 0}

    def checker() -> None:
        for line in sys.stdin:
            parts = line.split()
            if len(parts) != 3 or parts[0] != "check":
                return
            with lock:
                good = _reader_digest(books) == parts[2]
            checks["ok" if good else "bad"] += 1
            print(f"{'ok' if good else 'bad'} {parts[1]}", flush=True)

    threading.Thread(target=checker, daemon=True).start()
    wakes = 0
    lst = books.books()
    version = books.books_version
    c = books.changes
    cpu0, wall0 = _cpu(resource.RUSAGE_SELF), time.monotonic()
    try:
        while True:
            c = books.wait(c, 1.0)
            with lock:
                if books.books_version != version:
                    lst, version = books.books(), books.books_version
                if reads != "none":
                    for sb in lst:
                        sb.top()
                if reads == "full" and wakes % 16 == 0:
                    for sb in lst:
                        sb.bids()
            wakes += 1
    except PublisherGoneError:
        pass
    with open(out, "w") as f:
        json.dump({"wakes": wakes, "cpu_cores": (_cpu(resource.RUSAGE_SELF) - cpu0)
                   / max(1e-9, time.monotonic() - wall0), **checks}, f)
    return 0


class Reader:
    """A reader child on the reader CPU; killed at the end whatever happens."""

    def __init__(self, mode: str, name: str, out: str, cpu: int | None, *extra: str) -> None:
        cmd = [sys.executable, THIS, "--role", "reader", mode, name, out, *extra]
        if cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(cpu)] + cmd
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.out = out

    def ready(self, beat: Any = None, timeout: float = 30.0) -> None:
        """Wait for the child's "ready", calling ``beat()`` meanwhile (the publisher's heartbeat:
        readers starting on a busy core can take seconds, longer than the bound)."""
        assert self.p.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = _readline(self.p.stdout, 0.1)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError("a reader did not start in time") from None
                if beat is not None:
                    beat()
        if line.strip() != "ready":
            raise RuntimeError(f"reader did not start: {line!r}")

    def check(self, k: int, digest: str) -> bool:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(f"check {k} {digest}\n")
        self.p.stdin.flush()
        return _readline(self.p.stdout, 10.0).strip() == f"ok {k}"

    def finish(self, timeout: float = 10.0) -> None:
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            if f is not None:
                f.close()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.finish()


def _readline(stream: Any, timeout: float) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise TimeoutError(f"no answer from a reader within {timeout} s")
    finally:
        sel.close()
    return stream.readline()


# ── the writer ──────────────────────────────────────────────────────────────────────────────────


def _streams(n: int, books: int, seed: int) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    """(parsec_id, snapshot) per book and ``n`` delta frames interleaved at random."""
    from stream import make_stream, stream_frames

    snaps, per_book = [], []
    for b in range(books):
        pid = PID1 if b == 0 else f"polymarket:{572473 + b}"
        snap, frames = stream_frames(make_stream(DEPTH, n // books + n // 4 + 100, seed=seed + b),
                                     parsec_id=pid)
        snaps.append((pid, snap))
        per_book.append(iter(frames))
    rng = random.Random(seed)
    return snaps, [next(per_book[rng.randrange(books)]) for _ in range(n)]


def _cpu_busy() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    return sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle, iowait


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


_STREAMS: dict[tuple[int, int, int], tuple[list[tuple[str, bytes]], list[bytes]]] = {}


def _streams_cached(n: int, books: int, seed: int) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    key = (n, books, seed)
    if key not in _STREAMS:
        _STREAMS[key] = _streams(n, books, seed)
    return _STREAMS[key]


def wait_quiet(limit: float, seconds: float, threshold: float) -> float:
    """Wait (at most ``seconds``) until other processes use less than ``threshold`` cores over
    half a second (nothing of ours runs meanwhile); returns the last measured load."""
    deadline = time.monotonic() + seconds
    ticks = os.sysconf("SC_CLK_TCK")
    while True:
        b0 = _cpu_busy()
        time.sleep(0.5)
        load = (_cpu_busy() - b0) / ticks / 0.5
        if load <= threshold or time.monotonic() >= deadline:
            return load


def run_segment(kind: str, rate: float, seconds: float, warmup: float, reader_cpu: int | None,
                n_readers: int, check_every: int, tmp: str, seed: int) -> dict[str, Any]:
    """One paced segment; returns its raw figures."""
    from parsec_fast import FeedHandler
    from parsec_fast.shared import publish

    books = APPLY_BOOKS if kind.startswith("apply") else 1
    if kind == "wake":
        rate = 200.0
    n = max(200, int(rate * seconds))
    snaps, frames = _streams_cached(n, books, seed)
    name = f"pf-bench-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    fh = FeedHandler(parser="native")
    for pid, _ in snaps:
        fh.add(pid, "Yes")
    pub = None if kind == "apply:none" else publish(fh, name, max_books=max(16, books),
                                                    max_levels=100)
    for _, snap in snaps:
        fh.feed(snap)
    fh.flush()
    readers: list[Reader] = []
    mode = {"latency:spin": "spin", "latency:wait": "wait", "latency:async": "async",
            "wake": "wake", "readcost": "readcost"}.get(kind)
    tag = name  # unique per run: a retried segment never reads an earlier attempt's output
    if mode is not None:
        extra = [str(seconds)] if mode == "readcost" else []
        readers.append(Reader(mode, name, os.path.join(tmp, f"{tag}-{mode}.out"), reader_cpu,
                              *extra))
    elif kind == "apply:8":
        readers = [Reader("load", name, os.path.join(tmp, f"{tag}-load{i}.out"), reader_cpu,
                          LOAD_READS) for i in range(n_readers)]
    out: dict[str, Any] = {"kind": kind, "deltas": n}
    try:
        for r in readers:
            r.ready(pub.heartbeat if pub is not None else None)
        time.sleep(0.05)
        apply = array("q", bytes(8 * n))
        t0s = array("q", bytes(8 * n))
        feed, flush, mono = fh.feed, fh.flush, time.monotonic_ns
        period = 1e9 / rate
        checks = mismatches = 0
        paused = 0
        busy0, self0, kids0 = _cpu_busy(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        wall0 = time.monotonic()
        wakes0 = pub.n_wakes if pub is not None else 0
        start = mono() + 1_000_000
        # apply:8 alternates blocks with the readers stopped (SIGSTOP: they hold their
        # mappings and do nothing, i.e. 0 readers) and running: a paired A/B inside one segment
        block = max(100, int(min(BLOCK_S, seconds / 8) * rate)) if kind == "apply:8" else 0
        running = True
        states = bytearray(n)
        for i, frame in enumerate(frames):
            if block and i % block == 0:
                p0 = mono()
                if running and check_every:      # the books equal the publisher's, now
                    digest = _pub_digest(fh)
                    for r in readers:
                        checks += 1
                        mismatches += not r.check(i, digest)
                running = not running if i else False
                for r in readers:
                    r.p.send_signal(signal.SIGCONT if running else signal.SIGSTOP)
                paused += mono() - p0
            states[i] = running
            due = start + paused + int(i * period)
            while mono() < due:
                pass
            t0 = mono()
            feed(frame)
            flush()
            t1 = mono()
            apply[i] = t1 - t0
            t0s[i] = t0
        if not running:
            for r in readers:
                r.p.send_signal(signal.SIGCONT)
        paced_s = time.monotonic() - wall0
        out["wakes"] = (pub.n_wakes - wakes0) if pub is not None else 0
        if kind == "apply:8":
            out.update(_blocks(apply, states, block))
            out["checks"], out["mismatches"] = checks, mismatches
            out["check_digest_final_ok"] = all(r.check(n, _pub_digest(fh)) for r in readers)
            out["checks"] += len(readers)
            out["mismatches"] += 0 if out["check_digest_final_ok"] else 1
    finally:
        if pub is not None:
            pub.close("bench segment over")
        for r in readers:
            r.finish()
    elapsed = time.monotonic() - wall0
    busy = (_cpu_busy() - busy0) / os.sysconf("SC_CLK_TCK")
    kids = _cpu(resource.RUSAGE_CHILDREN) - kids0  # the readers, start-up included
    own = _cpu(resource.RUSAGE_SELF) - self0 + kids
    out["foreign_cores"] = max(0.0, (busy - own) / elapsed) if elapsed > 0 else 0.0
    skip = int(warmup * rate)
    if kind.startswith("apply") or kind == "wake":
        a = sorted(apply[skip:])
        out["apply_median_ns"] = a[len(a) // 2]
        out["apply_mean_ns"] = sum(a) / len(a)
        out["apply_p99_ns"] = a[int(len(a) * 0.99)]
    if mode in ("spin", "wait", "async", "wake"):
        if not os.path.exists(readers[0].out):
            out["error"] = f"the {mode} reader wrote no records (exit {readers[0].p.returncode})"
            return out
        out.update(_join(readers[0].out, frames, t0s, snaps[0][1], skip))
        try:
            with open(readers[0].out + ".cpu") as f:
                extra_stats = json.load(f)
            out["reader_cpu_cores"] = extra_stats["cpu_cores"]
            out["reads_busy"] = extra_stats.get("busy", 0)
        except (OSError, ValueError):
            pass
    if mode == "readcost":
        try:
            with open(readers[0].out) as f:
                out.update(json.load(f))
        except (OSError, ValueError):
            out["error"] = f"the readcost reader wrote nothing (exit {readers[0].p.returncode})"
    if kind == "apply:8":
        stats = []
        for r in readers:
            try:
                with open(r.out) as f:
                    stats.append(json.load(f))
            except (OSError, ValueError):
                pass
        out["reader_wakes_per_s"] = statistics.mean(s["wakes"] for s in stats) / paced_s if stats else None
        out["reader_cpu_cores"] = statistics.mean(s["cpu_cores"] for s in stats) if stats else None
    return out


def _blocks(apply: array, states: bytearray, block: int) -> dict[str, Any]:
    """Per block the median ns per delta (its first 10 % dropped: the switch); per adjacent
    (stopped, running) pair the ratio; their medians."""
    meds: list[tuple[int, float]] = []
    for b0 in range(0, len(apply) - block + 1, block):
        vals = sorted(apply[b0 + block // 10:b0 + block])
        meds.append((states[b0], vals[len(vals) // 2]))
    pairs = [meds[k + 1][1] / meds[k][1] for k in range(2, len(meds) - 1, 2)
             if meds[k][0] == 0 and meds[k + 1][0] == 1 and meds[k][1] > 0]
    stopped = [m for st, m in meds[1:] if st == 0]
    running = [m for st, m in meds[1:] if st == 1]
    return {"blocks": len(meds), "stopped_median_ns": statistics.median(stopped) if stopped else None,
            "running_median_ns": statistics.median(running) if running else None,
            "pair_ratio": statistics.median(pairs) if pairs else None,
            "pair_ratio_spread": [min(pairs), max(pairs)] if pairs else None}


def _join(path: str, frames: list[bytes], t0s: array, snap: bytes, skip: int) -> dict[str, Any]:
    """Latency per delta: first reader record with a seq >= the delta's, minus its publish time."""
    import orjson

    raw = array("q")
    with open(path, "rb") as f:
        raw.frombytes(f.read())
    half = len(raw) // 2
    seqs, times = raw[:half], raw[half:]
    base = orjson.loads(snap)["server_seq"]
    lat = []
    lost = 0
    j = 0
    for i in range(skip, len(frames)):
        seq = base + 1 + i
        while j < half and seqs[j] < seq:
            j += 1
        if j == half:
            lost += 1
            continue
        lat.append(times[j] - t0s[i])
    lat.sort()
    if not lat:
        return {"samples": 0, "lost": lost}

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000.0

    return {"samples": len(lat), "lost": lost, "records": half, "p50_us": q(0.5),
            "p99_us": q(0.99), "p999_us": q(0.999), "max_us": lat[-1] / 1000.0}


# ── aggregation ─────────────────────────────────────────────────────────────────────────────────


def _agg(runs: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "spread": [min(vals), max(vals)], "n": len(vals)}


def _quiet(runs: list[dict[str, Any]], limit: float) -> tuple[list[dict[str, Any]], str]:
    """The runs other processes left alone (foreign_cores <= limit) when there are at least two,
    else all of them; and which basis was used."""
    quiet = [r for r in runs if r.get("foreign_cores", 0.0) <= limit]
    if len(quiet) >= 2:
        return quiet, f"{len(quiet)}/{len(runs)} quiet"
    return runs, f"all {len(runs)} (only {len(quiet)} quiet)"


def aggregate(rounds: list[dict[str, dict[str, Any]]], limit: float) -> dict[str, Any]:
    """Medians over rounds; figures from the quiet runs of a segment when at least two were
    quiet (the basis says so), correctness counts from every run."""
    every: dict[str, list[dict[str, Any]]] = {k: [r[k] for r in rounds if k in r] for k in SEGMENTS}
    basis = {}
    by: dict[str, list[dict[str, Any]]] = {}
    for k, runs in every.items():
        by[k], basis[k] = _quiet(runs, limit)
    latency = {}
    for kind, label in (("latency:spin", "spinning reader (wait(spin=1.0))"),
                        ("latency:wait", "sleeping reader (wait(), default)"),
                        ("latency:async", "await changed()"),
                        ("wake", "futex wake (200/s, every wait a long sleep)")):
        runs = by.get(kind, [])
        cell: dict[str, Any] = {"label": label, "basis": basis.get(kind)}
        for m in ("p50_us", "p99_us", "p999_us", "max_us"):
            a = _agg(runs, m)
            if a is not None:
                cell[m], cell[m + "_spread"] = a["median"], a["spread"]
        cell["lost"] = sum(r.get("lost", 0) for r in every.get(kind, []))
        cell["samples_per_round"] = _agg(runs, "samples")["median"] if _agg(runs, "samples") else 0
        a = _agg(runs, "reader_cpu_cores")
        cell["reader_cpu_cores"] = a["median"] if a else None
        if kind == "wake":
            a = _agg(runs, "apply_median_ns")
            cell["writer_ns_per_delta_with_wake"] = a["median"] if a else None
            cell["writer_wakes_per_round"] = _agg(runs, "wakes")["median"] if _agg(runs, "wakes") else None
        latency[kind] = cell
    read: dict[str, Any] = {"basis": basis.get("readcost")}
    for m, label in (("shared_ns", "SharedBook.best_bid / best_ask"),
                     ("top_ns", "SharedBook.top() (both sides, one version)"),
                     ("local_ns", "Book.best_bid / best_ask (local, same process)"),
                     ("c_ns", "C read of the slot's top line (no Python call)"),
                     ("shared_gross_ns", "SharedBook.best_bid / best_ask, loop included")):
        a = _agg(by.get("readcost", []), m)
        if a is not None:
            read[label] = {"read_ns": a["median"], "spread": a["spread"]}
    apply: dict[str, Any] = {}
    for kind, label in (("apply:none", "no publisher"), ("apply:0", "publisher, 0 readers"),
                        ("apply:8", "publisher, 8 readers")):
        runs = by.get(kind, [])
        cell = {"basis": basis.get(kind)}
        for m in ("apply_median_ns", "apply_mean_ns", "apply_p99_ns", "foreign_cores"):
            a = _agg(runs, m)
            if a is not None:
                cell[m.replace("apply_", "")], cell[m.replace("apply_", "") + "_spread"] = a["median"], a["spread"]
        cell["wakes"] = sum(r.get("wakes", 0) for r in every.get(kind, []))
        if kind == "apply:8":
            a = _agg(runs, "reader_wakes_per_s")
            cell["reader_wakes_per_s"] = a["median"] if a else None
            a = _agg(runs, "reader_cpu_cores")
            cell["reader_cpu_cores_each"] = a["median"] if a else None
            for m in ("stopped_median_ns", "running_median_ns", "pair_ratio"):
                a = _agg(runs, m)
                if a is not None:
                    cell[m], cell[m + "_spread"] = a["median"], a["spread"]
        apply[label] = cell
    ratios: dict[str, Any] = {}
    for num, den, label in (("apply:8", "apply:0", "8 readers / 0 readers"),
                            ("apply:0", "apply:none", "publisher / no publisher")):
        for m in ("apply_median_ns", "apply_mean_ns"):
            rs = [r[num][m] / r[den][m] for r in rounds if num in r and den in r and r[den][m]]
            if rs:
                ratios.setdefault(label, {})[m.replace("apply_", "")] = statistics.median(rs)
                ratios[label][m.replace("apply_", "") + "_spread"] = [min(rs), max(rs)]
    eq_runs = every.get("apply:8", [])
    equality = {"checks": sum(r.get("checks", 0) for r in eq_runs),
                "mismatches": sum(r.get("mismatches", 0) for r in eq_runs),
                "books": APPLY_BOOKS}
    return {"latency": latency, "read": read, "apply": apply, "apply_ratios": ratios,
            "equality": equality}


def targets(agg: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    spin = agg["latency"].get("latency:spin", {})
    for m, goal in (("p50_us", 2.0), ("p99_us", 20.0)):
        v = spin.get(m)
        rows.append({"what": f"publish -> visible in a reader process, {m[:-3]} <= {goal:g} us "
                             f"(spinning reader, 20 k deltas/s)",
                     "value": None if v is None else round(v, 3), "goal": goal,
                     "met": None if v is None else v <= goal})
    r = agg["read"].get("SharedBook.best_bid / best_ask", {}).get("read_ns")
    rows.append({"what": "best bid/ask read from a shared book <= 100 ns",
                 "value": None if r is None else round(r, 1), "goal": 100,
                 "met": None if r is None else r <= 100})
    ratio = agg["apply"].get("publisher, 8 readers", {}).get("pair_ratio")
    rows.append({"what": "8 reader processes slow the apply path by < 10 % (median ns per delta, "
                         "readers running / stopped, paired blocks)",
                 "value": None if ratio is None else round(ratio, 3), "goal": 1.10,
                 "met": None if ratio is None else ratio < 1.10})
    eq = agg["equality"]
    rows.append({"what": "readers' books equal the publisher's at every checked point",
                 "value": f"{eq['checks'] - eq['mismatches']}/{eq['checks']} equal",
                 "goal": "all", "met": eq["checks"] > 0 and eq["mismatches"] == 0})
    return rows


def _machine() -> dict[str, Any]:
    try:
        from parsec_fast import benchreport
        return benchreport.machine()
    except Exception:  # noqa: BLE001
        return {"python": sys.version.split()[0]}


def _callgrind(n: int) -> dict[str, Any]:
    if not shutil.which("valgrind"):
        return {"skipped": "valgrind not on PATH"}
    import callgrind_feed

    out = {}
    for label, publish in (("no publisher", False), ("publisher", True)):
        found = callgrind_feed.run(sys.executable, n, APPLY_BOOKS, "", flush_every=1,
                                   publish=publish)
        feed = found.get("FeedHandler.feed_ptr (all of it)", 0.0)
        flush = found.get("FeedHandler.flush (all of it)", 0.0)
        out[label] = {"feed_ptr": round(feed), "flush": round(flush),
                      "total": round(feed + flush),
                      "sink_publish": round(found.get("    Publisher.sink_publish", 0.0)),
                      "sink_commit": round(found.get("    Publisher.sink_commit", 0.0))}
    if out["no publisher"]["total"]:
        out["ratio"] = out["publisher"]["total"] / out["no publisher"]["total"]
    out["deltas"] = n
    return out


def reaggregate(src: str, dst: str) -> int:
    """``--reaggregate SAVED.json [OUT.json]``: recompute medians and targets from a saved run's
    raw rounds (e.g. after changing how they are aggregated)."""
    with open(src) as f:
        out = json.load(f)
    out.update(aggregate(out["rounds_raw"], out["meta"].get("max_foreign_cores", 0.3)))
    out["targets"] = targets(out)
    with open(dst, "w") as f:
        json.dump(out, f, indent=2)
    for t in out["targets"]:
        mark = "met" if t["met"] else "MISSED" if t["met"] is False else "n/a"
        print(f"target {t['what']}: {t['value']} -> {mark}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--role", "reader"]:
        return reader_main(argv[2:])
    if argv[:1] == ["--reaggregate"]:
        return reaggregate(argv[1], argv[2] if len(argv) > 2 else argv[1])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for smoke tests (seconds)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 1)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="paced seconds per segment (default 3; quick 0.4)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds dropped at the start of a segment (default 0.5; quick 0.1)")
    ap.add_argument("--rate", type=float, default=20_000.0, help="deltas/s (default 20000)")
    ap.add_argument("--readers", type=int, default=8, help="readers of apply:8 (default 8)")
    ap.add_argument("--load-reads", choices=("full", "top", "none"), default="full",
                    help="what each apply:8 reader reads per wake (default full)")
    ap.add_argument("--check-every", type=int, default=None,
                    help="deltas between equality checks in apply:8 (default 10000; quick 2000)")
    ap.add_argument("--segments", default=",".join(SEGMENTS), help="comma-separated subset")
    ap.add_argument("--writer-cpu", type=int, default=0)
    ap.add_argument("--reader-cpu", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes")
    ap.add_argument("--max-foreign", type=float, default=0.3,
                    help="re-run a segment during which other processes took more cores (0.3)")
    ap.add_argument("--retries", type=int, default=None, help="re-runs of a contended segment (2)")
    ap.add_argument("--wait-quiet", type=float, default=None,
                    help="before each segment wait up to this many s for the machine to be quiet "
                         "(default 20; quick 0)")
    ap.add_argument("--callgrind", dest="callgrind", action="store_true", default=None)
    ap.add_argument("--no-callgrind", dest="callgrind", action="store_false")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    args = ap.parse_args(argv)
    global LOAD_READS
    LOAD_READS = args.load_reads
    rounds = args.rounds or (1 if args.quick else 5)
    seconds = args.seconds or (0.4 if args.quick else 3.0)
    warmup = args.warmup if args.warmup is not None else (0.1 if args.quick else 0.5)
    check_every = args.check_every or (2000 if args.quick else 10_000)
    retries = args.retries if args.retries is not None else (0 if args.quick else 2)
    quiet_s = args.wait_quiet if args.wait_quiet is not None else (0.0 if args.quick else 20.0)
    use_callgrind = (not args.quick) if args.callgrind is None else args.callgrind
    segments = [s for s in args.segments.split(",") if s]
    unknown = set(segments) - set(SEGMENTS)
    if unknown:
        ap.error(f"unknown segments {sorted(unknown)}; choose from {', '.join(SEGMENTS)}")
    reader_cpu = None if args.no_pin else args.reader_cpu
    if not args.no_pin:
        os.sched_setaffinity(0, {args.writer_cpu})
    meta = {**_machine(), "quick": args.quick, "rounds": rounds, "seconds": seconds,
            "warmup_s": warmup, "rate": args.rate, "readers": args.readers, "depth": DEPTH,
            "apply_books": APPLY_BOOKS, "check_every": check_every, "load_reads": LOAD_READS,
            "block_s": min(BLOCK_S, seconds / 8),
            "writer_cpu": None if args.no_pin else args.writer_cpu, "reader_cpu": reader_cpu,
            "max_foreign_cores": args.max_foreign, "retries": retries, "wait_quiet_s": quiet_s,
            "loadavg_start": list(os.getloadavg()), "segments": segments}
    print(f"shm: {rounds} rounds x {len(segments)} segments of {seconds:g} s at "
          f"{args.rate:,.0f} deltas/s; writer cpu {meta['writer_cpu']}, readers cpu {reader_cpu}; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    t_start = time.perf_counter()
    all_rounds: list[dict[str, dict[str, Any]]] = []
    rerun = 0
    with tempfile.TemporaryDirectory(prefix="pf-shm-") as tmp:
        for rnd in range(rounds):
            order = segments[rnd % len(segments):] + segments[:rnd % len(segments)]
            results: dict[str, dict[str, Any]] = {}
            for kind in order:
                for attempt in range(retries + 1):
                    if quiet_s > 0:
                        wait_quiet(args.max_foreign, quiet_s, args.max_foreign)
                    res = run_segment(kind, args.rate, seconds, warmup, reader_cpu, args.readers,
                                      check_every, tmp, args.seed + rnd)
                    if res["foreign_cores"] <= args.max_foreign or attempt == retries:
                        break
                    rerun += 1
                results[kind] = res
                print(f"  round {rnd + 1} {kind:14s} " + ", ".join(
                    f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in res.items() if k not in ("kind",)), flush=True)
            all_rounds.append(results)
    out: dict[str, Any] = {"meta": meta, **aggregate(all_rounds, args.max_foreign)}
    out["meta"]["reruns"] = rerun
    if use_callgrind:
        print("callgrind (feed_ptr + flush per delta, flush every frame) ...", flush=True)
        out["callgrind"] = _callgrind(2_000 if args.quick else 20_000)
    out["targets"] = targets(out)
    out["rounds_raw"] = all_rounds
    out["meta"]["loadavg_end"] = list(os.getloadavg())
    out["elapsed_s"] = time.perf_counter() - t_start
    for t in out["targets"]:
        mark = "met" if t["met"] else "MISSED" if t["met"] is False else "n/a"
        print(f"target {t['what']}: {t['value']} -> {mark}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json} ({out['elapsed_s']:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
