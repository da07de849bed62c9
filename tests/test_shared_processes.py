"""Shared-memory books across processes: readers in other processes see exactly the publisher's
books under a fault stream; no torn read passes under a writer hammering one slot; a reader
killed with SIGKILL affects nothing; a publisher that is killed or stopped is detected within
the stated bounds, with the reason.

Every child is a ``shared_helpers.Proc`` (killed and reaped at the end of its test); every loop
is bounded by a deadline.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from typing import Any

import orjson
import pytest

from client_helpers import make_client, selectors, server_config, settle_and_check
from parsec_fast import FeedHandler
from parsec_fast._shm import SHM_DIR
from parsec_fast._shm_writer import _hammer
from parsec_fast.server import LocalServer
from parsec_fast.shared import PublisherGoneError, attach, publish, unlink
from shared_helpers import Proc, dump_sub, unique_name

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not os.path.isdir(SHM_DIR), reason="needs /dev/shm")]

PID = "polymarket:572473"


def _client_dump(client) -> list:
    dumps = sorted((dump_sub(s) for s in client.subscriptions()), key=lambda d: d["key"])
    return json.loads(json.dumps(dumps))  # as a reader's JSON line carries it


def _frozen_compare(client, readers: list[Proc]) -> int:
    """Every reader's view equals the client's books right now. Called without awaiting, so
    the client's loop (and so the publisher) is frozen while the readers read."""
    expected = _client_dump(client)
    for r in readers:
        got = r.ask("dump")
        assert got == expected, _first_difference(got, expected)
    return len(expected)


def _first_difference(got: list, expected: list) -> str:
    if len(got) != len(expected):
        return f"{len(got)} books published, the client holds {len(expected)}"
    for g, e in zip(got, expected):
        for k in e:
            if g.get(k) != e[k]:
                return f"{e['key']}: {k}: reader {g.get(k)!r} != publisher {e[k]!r}"
    return "?"


async def test_readers_see_the_publishers_books_under_faults() -> None:
    name = unique_name("faults")
    rng = random.Random(11)
    async with LocalServer(server_config(markets=8, rate=600.0, stale_after_ms=300)) as srv:
        async with make_client(srv) as client:
            pub = publish(client, name, max_books=16, max_levels=100)
            readers = [Proc.reader(name, "serve") for _ in range(2)]
            try:
                for r in readers:
                    assert "ready" in r.line()
                sels = selectors(srv)
                await client.subscribe(sels, timeout=5)
                pids = [s["parsec_id"] for s in sels]
                faults = [lambda p: srv.faults.drop_next_delta(p),
                          lambda p: srv.faults.duplicate_next(p),
                          lambda p: srv.faults.reorder_next(p),
                          lambda p: srv.faults.send_resync_required(p),
                          lambda p: srv.faults.mark_needs_refresh(p),
                          lambda p: srv.faults.stall(p, 0.5),
                          lambda p: srv.faults.feed_degraded(),
                          lambda p: srv.faults.feed_healthy()]
                checked = invalid_seen = 0
                for step in range(36):
                    if step % 3 == 0:
                        rng.choice(faults)(rng.choice(pids))
                    await asyncio.sleep(rng.uniform(0.02, 0.12))
                    checked += _frozen_compare(client, readers)
                    invalid_seen += sum(not s.trustworthy for s in client.subscriptions())
                srv.faults.feed_healthy()
                await settle_and_check(client, srv)   # books equal the server's, all valid
                checked += _frozen_compare(client, readers)
                assert checked >= 36 * 8 and invalid_seen > 0   # untrusted books compared too
                # unsubscribe / resubscribe: the readers' set of books follows
                await client.unsubscribe(sels[:3])
                _frozen_compare(client, readers)
                await client.subscribe(sels[:3], timeout=5)
                _frozen_compare(client, readers)
            finally:
                for r in readers:
                    r.kill()
            await client.close()
            assert pub.closed and not os.path.exists(SHM_DIR + name)


def test_no_torn_read_under_a_hammering_writer() -> None:
    """The writer rewrites one slot millions of times (every level's size = the write's seq);
    readers in two processes check that invariant on every read of every kind."""
    name = unique_name("stress")
    fh = FeedHandler()
    sub = fh.add(PID, "Yes")
    pub = publish(fh, name, max_books=2, max_levels=64)
    levels = 40
    try:
        readers = [Proc.reader(name, "stress", PID, levels, 2.0) for _ in range(2)]
        try:
            for r in readers:
                assert "ready" in r.line()
            writes = 0
            deadline = time.monotonic() + 2.2
            while time.monotonic() < deadline:
                # alternately back to back (every read collides) and a few pauses apart
                _hammer(pub, sub, 100_000, levels, seq0=writes + 1, gap=(writes // 100_000) % 2 * 8)
                writes += 100_000
            results = [r.line(15) for r in readers]
        finally:
            for r in readers:
                r.kill()
    finally:
        pub.close()
    for res in results:
        assert res["bad"] == 0, res
        assert res["backwards"] == 0, res        # one writer: versions never go back
        assert res["reads"] > 1000 and res["distinct"] > 100, res
    assert writes >= 400_000


HAMMER = r"""
import sys, time
from parsec_fast import FeedHandler
from parsec_fast._shm_writer import _hammer
from parsec_fast.shared import publish
fh = FeedHandler()
sub = fh.add("polymarket:572473", "Yes")
pub = publish(fh, sys.argv[1], max_books=2, max_levels=64, heartbeat_timeout=30.0)
_hammer(pub, sub, 1000, 40)
print('{"ready": 1}', flush=True)
sys.stdin.readline()                          # the reader has looked the book up
seq, deadline = 1001, time.monotonic() + 30
while time.monotonic() < deadline:
    _hammer(pub, sub, 100_000, 40, seq0=seq)   # back to back: inside a write ~all the time
    seq += 100_000
"""


def test_a_publisher_stopped_in_the_middle_of_a_write_blocks_no_reader() -> None:
    """Each slot holds two copies: while the writer is stopped inside a write (SIGSTOP lands
    there nearly every time with back-to-back writes), readers read the other, complete copy:
    consistent, never BookBusyError."""
    from shared_helpers import stress_check

    name = unique_name("stopped")
    try:
        _stopped_publisher_blocks_no_reader(name, stress_check)
    finally:
        unlink(name)   # its owner was killed: the test cleans its region up


def _stopped_publisher_blocks_no_reader(name: str, stress_check: Any) -> None:
    with Proc([sys.executable, "-c", HAMMER, name]) as p:
        assert p.line() == {"ready": 1}
        sb = attach(name).book(PID)
        assert p.p.stdin is not None
        p.p.stdin.write("go\n")
        p.p.stdin.flush()
        time.sleep(0.05)
        stops = reads = 0
        for _ in range(20):
            p.signal(signal.SIGSTOP)
            time.sleep(0.005)
            stops += 1
            first, bad = stress_check(sb, 40)
            for _ in range(200):
                seq, b = stress_check(sb, 40)       # raises BookBusyError if it had to wait
                bad += b
                reads += 1
                assert seq == first                 # stopped: always the same version
            assert bad == 0
            p.signal(signal.SIGCONT)
            time.sleep(0.005)
        assert stops == 20 and reads == 4000


def test_a_killed_reader_affects_nothing() -> None:
    name = unique_name("crash")
    fh = FeedHandler()
    sub = fh.add(PID, "Yes")
    pub = publish(fh, name, max_books=2, max_levels=8)
    snap = orjson.dumps({"type": "orderbook", "parsec_id": PID, "outcome": "Yes",
                         "bids": [[0.5, 1.0]], "asks": [[0.6, 1.0]], "server_seq": 1})
    fh.feed(snap)
    fh.flush()
    try:
        with Proc.reader(name, "sleep") as sleeper, Proc.reader(name, "stress", PID, 1, 30) as busy:
            sleeper.line()
            busy.line()
            time.sleep(0.1)
            sleeper.signal(signal.SIGKILL)    # killed inside FUTEX_WAIT, its flag set
            busy.signal(signal.SIGKILL)       # killed in the middle of reads
            sleeper.p.wait(5)
            busy.p.wait(5)
        wakes = pub.n_wakes
        for seq in range(2, 2002):
            fh.feed(orjson.dumps({"type": "orderbook_delta", "parsec_id": PID, "outcome": "Yes",
                                  "changes": [{"side": "bid", "price": 0.5, "size": seq}],
                                  "server_seq": seq}))
            fh.flush()
        assert pub.n_wakes - wakes <= 1   # the dead reader's flag costs at most one wake
        with Proc.reader(name, "serve") as fresh:
            fresh.line()
            (got,) = fresh.ask("dump")
            assert got == json.loads(json.dumps(dump_sub(sub)))
            assert got["seq"] == 2001 and got["trustworthy"]
        assert os.path.exists(SHM_DIR + name)   # readers never unlink
    finally:
        pub.close()


def test_a_sleeping_reader_is_woken_by_the_next_change() -> None:
    """After ``linger`` without a change a reader announces itself and sleeps in FUTEX_WAIT; the
    publisher's next flush wakes it (well before its 100 ms liveness re-check), with one
    FUTEX_WAKE, and a busy stream costs the writer none."""
    name = unique_name("wake")
    fh = FeedHandler()
    fh.add(PID, "Yes")
    pub = publish(fh, name, max_books=2, max_levels=8)
    try:
        with Proc.reader(name, "serve") as r:
            r.line()
            c = attach(name).changes
            assert r.p.stdin is not None
            r.p.stdin.write(f"wait {c} 5\n")
            r.p.stdin.flush()
            time.sleep(0.3)                   # the reader is long asleep by now
            wakes = pub.n_wakes
            t0 = time.monotonic()
            fh.feed(orjson.dumps({"type": "orderbook", "parsec_id": PID, "outcome": "Yes",
                                  "bids": [[0.5, 1.0]], "asks": [[0.6, 1.0]], "server_seq": 1}))
            fh.flush()
            got = r.line()
            assert got["changes"] == c + 1 and time.monotonic() - t0 < 0.08, got
            assert pub.n_wakes == wakes + 1
            books = attach(name)
            seq = 2
            for _ in range(20):               # a busy stream: the reader lingers, no wakes
                c = books.changes
                r.p.stdin.write(f"wait {c} 5\n")
                r.p.stdin.flush()
                for _ in range(4):
                    time.sleep(0.0005)
                    fh.feed(orjson.dumps({"type": "orderbook_delta", "parsec_id": PID,
                                          "outcome": "Yes", "server_seq": seq,
                                          "changes": [{"side": "bid", "price": 0.5,
                                                       "size": float(seq)}]}))
                    fh.flush()
                    seq += 1
                assert r.line()["changes"] != c
            assert pub.n_wakes <= wakes + 2
    finally:
        pub.close()


PUBLISHER = r"""
import orjson, sys, time
from parsec_fast import FeedHandler
from parsec_fast.shared import publish
fh = FeedHandler()
fh.add("polymarket:572473", "Yes")
pub = publish(fh, sys.argv[1], max_books=2, max_levels=8, heartbeat_timeout=float(sys.argv[2]))
fh.feed(orjson.dumps({"type": "orderbook", "parsec_id": "polymarket:572473", "outcome": "Yes",
                      "bids": [[0.5, 1.0]], "asks": [[0.6, 1.0]], "server_seq": 1}))
fh.flush()
print('{"ready": 1}', flush=True)
seq = 2
deadline = time.monotonic() + 50
while time.monotonic() < deadline:
    time.sleep(0.005)
    fh.feed(orjson.dumps({"type": "orderbook_delta", "parsec_id": "polymarket:572473",
                          "outcome": "Yes", "changes": [{"side": "bid", "price": 0.5,
                          "size": float(seq)}], "server_seq": seq}))
    fh.flush()
    seq += 1
"""


def _gone_after(books, sb, limit: float) -> tuple[float, str]:
    """Seconds until a waiter learns the publisher is gone (AssertionError past ``limit``)."""
    t0 = time.monotonic()
    c = books.changes
    while time.monotonic() - t0 < limit:
        try:
            c = books.wait(c, 0.5)
        except PublisherGoneError as exc:
            assert not sb.trustworthy and sb.why_not().startswith("publisher gone")
            return time.monotonic() - t0, str(exc)
    raise AssertionError(f"publisher not detected gone within {limit} s")


def test_a_stopped_then_killed_publisher_is_detected_within_the_bound() -> None:
    name = unique_name("pubdeath")
    bound = 0.4
    with Proc([sys.executable, "-c", PUBLISHER, name, str(bound)]) as p:
        assert p.line() == {"ready": 1}
        books = attach(name)
        sb = books.book(PID)
        c = books.wait(books.changes, 2)
        assert sb.trustworthy and books.alive and books.publisher_pid == p.pid
        p.signal(signal.SIGSTOP)              # hung: the heartbeat stops
        took, why = _gone_after(books, sb, 3)
        assert bound * 0.9 <= took <= bound + 0.35 and "heartbeat" in why and "stopped or hung" in why
        p.signal(signal.SIGCONT)              # it beats again: trusted again
        deadline = time.monotonic() + 2
        while not books.alive and time.monotonic() < deadline:
            time.sleep(0.005)
        c = books.wait(books.changes, 2)
        assert books.alive and sb.trustworthy
        p.signal(signal.SIGKILL)
        p.p.wait(5)                            # reaped (a zombie still has its pid)
        took, why = _gone_after(books, sb, 3)
        assert took <= 0.25 and f"process {p.pid} is gone" in why
        assert sb.best_bid is not None and sb.seq > 1   # the last data stays readable
    assert os.path.exists(SHM_DIR + name)      # a killed owner leaves its file ...
    pub = publish(FeedHandler(), name)         # ... which the next publisher replaces
    try:
        assert attach(name).alive and not books.alive
    finally:
        pub.close()
    assert not unlink(name)
