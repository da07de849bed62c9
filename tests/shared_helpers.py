"""Helpers of the shared-memory book tests: reader and publisher processes, and one dump format
for a book as the publisher holds it (a Subscription) and as a reader sees it (a SharedBook), so
two dumps compare with ``==``.

Every process is started with :class:`Proc` (a context manager that kills it at the end) and
talks JSON lines on stdin/stdout; every loop in them is bounded by a deadline.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

#: A reader process: ``python -c READER name mode``. Modes:
#:   serve   -- answer "dump" / "wait C T" / "exit" commands, one JSON line each;
#:   stress  -- read the named book as fast as it can for ``seconds``, checking the stress
#:              invariant on every read, then print one JSON line of counts;
#:   sleep   -- attach, block in wait() (the waiter flag set), until killed.
READER = r"""
import json, sys, time
sys.path.insert(0, {here!r})
from shared_helpers import reader_main
reader_main(sys.argv[1:])
"""


def dump_sub(sub: Any) -> dict[str, Any]:
    """A publisher-side Subscription in the common dump format."""
    book = sub.book
    return {"key": [sub.parsec_id, sub.outcome], "seq": book.seq, "is_valid": book.is_valid,
            "bids": [list(x) for x in book.bids()], "asks": [list(x) for x in book.asks()],
            "book_state": sub.book_state, "feed_state": sub.feed_state,
            "locally_stale": sub.locally_stale, "stale_after_ms": sub.stale_after_ms,
            "exchange_ts_ms": sub.exchange_ts_ms, "ingest_ts_ms": sub.ingest_ts_ms,
            "last_frame_ns": sub.last_frame_ns, "invalid_reason": sub.invalid_reason,
            "last_error": sub.last_error, "trustworthy": sub.trustworthy,
            "why_not": sub.why_not()}


def dump_shared(sb: Any) -> dict[str, Any]:
    """A reader-side SharedBook in the common dump format (levels and state read at one version
    each; the publisher is frozen while a test compares)."""
    d = sb.to_dict()
    st = sb.state()
    return {"key": [sb.parsec_id, sb.outcome], "seq": d["seq"], "is_valid": d["is_valid"],
            "bids": d["bids"], "asks": d["asks"], "book_state": st["book_state"],
            "feed_state": st["feed_state"], "locally_stale": st["locally_stale"],
            "stale_after_ms": st["stale_after_ms"], "exchange_ts_ms": st["exchange_ts_ms"],
            "ingest_ts_ms": st["ingest_ts_ms"], "last_frame_ns": st["last_frame_ns"],
            "invalid_reason": st["invalid_reason"], "last_error": st["last_error"],
            "trustworthy": sb.trustworthy, "why_not": sb.why_not()}


def dump_region(books: Any) -> list[dict[str, Any]]:
    return sorted((dump_shared(sb) for sb in books.books()), key=lambda d: d["key"])


def stress_check(sb: Any, levels: int) -> tuple[int, int]:
    """One read of each kind; the writer of ``_shm_writer._hammer`` keeps every size equal to the seq.
    Returns (seq seen, violations)."""
    bad = 0
    d = sb.to_dict()
    seq = d["seq"]
    if seq is not None:
        if len(d["bids"]) != levels or len(d["asks"]) != levels:
            bad += 1
        if any(s != seq for _, s in d["bids"]) or any(s != seq for _, s in d["asks"]):
            bad += 1
    bids = sb.bids()
    if bids and any(s != bids[0][1] for _, s in bids):
        bad += 1
    bp, bs, ap, as_ = sb.top()
    if bs == bs and as_ == as_ and bs != as_:   # NaN-safe: both sides carry the same seq
        bad += 1
    return (seq or 0), bad


def reader_main(argv: list[str]) -> None:
    from parsec_fast._shm import BookBusyError
    from parsec_fast.shared import PublisherGoneError, attach

    name, mode = argv[0], argv[1]
    books = attach(name)
    out = sys.stdout
    if mode == "serve":
        print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "exit":
                return
            if cmd[0] == "dump":
                reply: Any = dump_region(books)
            elif cmd[0] == "wait":
                t0 = time.monotonic()
                try:
                    c = books.wait(int(cmd[1]), float(cmd[2]))
                    reply = {"changes": c, "s": time.monotonic() - t0}
                except PublisherGoneError as exc:
                    reply = {"gone": str(exc), "s": time.monotonic() - t0}
            else:
                reply = {"error": f"unknown command {cmd}"}
            print(json.dumps(reply), file=out, flush=True)
    elif mode == "stress":
        pid, levels, seconds = argv[2], int(argv[3]), float(argv[4])
        sb = books.book(pid)
        print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
        reads = bad = busy = 0
        seqs = set()
        last = -1
        backwards = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for _ in range(200):
                try:
                    seq, b = stress_check(sb, levels)
                except BookBusyError:
                    busy += 1
                    continue
                reads += 1
                bad += b
                if seq < last:
                    backwards += 1
                last = seq
                if len(seqs) < 100_000:
                    seqs.add(seq)
        print(json.dumps({"reads": reads, "bad": bad, "busy": busy, "distinct": len(seqs),
                          "backwards": backwards}), file=out, flush=True)
    elif mode == "sleep":
        print(json.dumps({"ready": os.getpid()}), file=out, flush=True)
        c = books.changes
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = books.wait(c, 1.0, linger=0.0)   # at once into the announced long sleep
            except PublisherGoneError:
                return


class Proc:
    """A child process speaking JSON lines; killed (SIGKILL) and reaped at exit."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)

    @classmethod
    def reader(cls, name: str, mode: str, *extra: object) -> Proc:
        return cls([sys.executable, "-c", READER.format(here=HERE), name, mode,
                    *map(str, extra)])

    def line(self, timeout: float = 10.0) -> Any:
        """The next JSON line (AssertionError with the child's stderr if none in time)."""
        import selectors

        assert self.p.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                raise AssertionError(f"child {self.p.pid} said nothing within {timeout} s")
        finally:
            sel.close()
        text = self.p.stdout.readline()
        if not text:
            err = self.p.stderr.read() if self.p.stderr is not None else ""
            raise AssertionError(f"child {self.p.pid} ended (rc {self.p.poll()}): {err[-2000:]}")
        return json.loads(text)

    def ask(self, command: str, timeout: float = 10.0) -> Any:
        assert self.p.stdin is not None
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        return self.line(timeout)

    @property
    def pid(self) -> int:
        return self.p.pid

    def signal(self, sig: int) -> None:
        os.kill(self.p.pid, sig)

    def kill(self) -> None:
        if self.p.poll() is None:
            try:
                self.p.kill()  # SIGKILL ends a stopped child too
            except ProcessLookupError:
                pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f is not None:
                f.close()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def unique_name(tag: str) -> str:
    """A region name no other test (or test run) uses."""
    return f"pf-test-{tag}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
