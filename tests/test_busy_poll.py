"""Busy-poll receive mode (``Client(..., busy_poll=True)``, ``run(..., busy_poll=True)``).

The same faults as the default mode give the same kinds of events and exactly the right books;
timers, other tasks and thread wake-ups still run while the loop spins; the main thread never
sleeps in the kernel while connected (no voluntary context switch) and uses at most one core;
close and Ctrl-C stop it; it stops spinning while disconnected. Both mechanisms are covered: the
spinning callback (the test's own asyncio loop, uvloop) and the spinning selector (the loop
``run`` / ``Client.run`` make).
"""
from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from client_helpers import (make_client, selectors, server_config, settle_and_check, wait_for)
from parsec_fast.client import Client, ClientConfig, run
from parsec_fast.client.busypoll import BusyPoll, SpinSelector, busy_loop_factory
from parsec_fast.client.runner import run_in_loop
from parsec_fast.events import BookUpdated
from parsec_fast.server import LocalServer

pytestmark = pytest.mark.timeout(60)

SRC = str(Path(__import__("parsec_fast").__file__).resolve().parents[1])


def _thread_switches() -> tuple[int, float]:
    """(voluntary context switches, CPU seconds) of the calling thread."""
    ru = resource.getrusage(resource.RUSAGE_THREAD)
    return ru.ru_nvcsw, ru.ru_utime + ru.ru_stime


async def _fault_scenario(busy: bool) -> dict[str, Any]:
    """Stream faults and an abrupt close; books checked against the server's record."""
    async with LocalServer(server_config(markets=4)) as srv:
        async with make_client(srv, busy_poll=busy) as client:
            events: list[Any] = []
            client.on("*", events.append)
            sels = selectors(srv, 4)
            await client.subscribe(sels, depth=20, timeout=5)
            poller = BusyPoll.of()
            assert poller.spinning is busy
            pids = [s["parsec_id"] for s in sels]
            for fault in (srv.faults.drop_next_delta, srv.faults.duplicate_next,
                          srv.faults.reorder_next):
                fault(pids[0])
                await wait_for(lambda: not srv.faults.pending, 3)
                await asyncio.sleep(0.1)
            assert srv.faults.send_resync_required(pids[1]) >= 1
            assert srv.faults.mark_needs_refresh(pids[2]) >= 1
            await asyncio.sleep(0.2)
            assert srv.faults.close_all_abruptly() == 1
            await wait_for(lambda: client.metrics.reconnects == 1, 5)
            await settle_and_check(client, srv)
            assert poller.spinning is busy
            # per book, book_updated seqs only go forward within a connection
            last: dict[str, int] = {}
            for ev in events:
                if ev.kind == "connected":
                    last.clear()
                elif isinstance(ev, BookUpdated):
                    assert ev.seq > last.get(ev.parsec_id, -1)
                    last[ev.parsec_id] = ev.seq
            m = client.metrics
            out = {"kinds": set(Counter(e.kind for e in events)), "gaps": m.gaps >= 2,
                   "duplicates": m.duplicates >= 1, "reconnects": m.reconnects,
                   "mechanism": poller.mechanism}
        assert not poller.spinning  # closed: released
    return out


async def test_same_events_and_books_as_default_mode() -> None:
    default = await _fault_scenario(False)
    busy = await _fault_scenario(True)
    assert busy["mechanism"] == "callback"  # the test's loop is not one busypoll made
    for key in ("kinds", "gaps", "duplicates", "reconnects"):
        assert busy[key] == default[key], key
    assert {"book_updated", "book_invalid", "book_recovered", "disconnected", "reconnecting",
            "connected"} <= busy["kinds"]


def test_same_books_with_the_spinning_selector() -> None:
    result = run_in_loop(_fault_scenario(True), busy_loop_factory(use_uvloop=False))
    assert result["mechanism"] == "selector"
    assert {"book_invalid", "book_recovered", "reconnecting"} <= result["kinds"]


async def _never_sleeps_and_runs_everything(seconds: float = 0.6) -> dict[str, Any]:
    """While a busy client is connected: timers fire, a concurrent task and an executor job
    complete; the thread never blocks in the kernel and uses at most one core."""
    loop = asyncio.get_running_loop()
    async with LocalServer(server_config(markets=2, rate=500.0)) as srv:
        async with make_client(srv, busy_poll=True) as client:
            await client.subscribe(selectors(srv, 2), timeout=5)
            ticks = 0
            fired: list[float] = []

            async def other_task() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)

            task = asyncio.ensure_future(other_task())
            loop.call_later(0.05, lambda: fired.append(loop.time()))
            t_sleep = loop.time()
            await asyncio.sleep(0.1)
            slept = loop.time() - t_sleep
            job = await loop.run_in_executor(None, lambda: 41 + 1)   # a wake-up from a thread
            # (handing the GIL to and from that thread costs a switch or two: measure after it)
            switches0, cpu0 = _thread_switches()
            wall0 = time.monotonic()
            await asyncio.sleep(seconds)
            switches1, cpu1 = _thread_switches()
            wall = time.monotonic() - wall0
            task.cancel()
            frames = client.metrics.frames
            mechanism = BusyPoll.of().mechanism
    return {"slept": slept, "fired": len(fired), "ticks": ticks, "job": job,
            "switches": switches1 - switches0, "cores": (cpu1 - cpu0) / wall, "frames": frames,
            "mechanism": mechanism}


def _check_spinning(r: dict[str, Any]) -> None:
    assert 0.095 <= r["slept"] < 1.0  # (uvloop's clock has millisecond steps)
    assert r["fired"] == 1 and r["job"] == 42 and r["ticks"] >= 10 and r["frames"] > 50
    # Never blocked in the kernel: a sleeping loop switches out at every wait (hundreds here,
    # see test_default_mode_sleeps); a spinning one is only ever preempted (involuntary).
    assert r["switches"] <= 2, r
    assert r["cores"] <= 1.1, r  # one thread: at most one core


async def test_timers_tasks_and_no_sleep_callback_mechanism() -> None:
    r = await _never_sleeps_and_runs_everything()
    assert r["mechanism"] == "callback"
    _check_spinning(r)


def test_timers_tasks_and_no_sleep_selector_mechanism() -> None:
    r = run_in_loop(_never_sleeps_and_runs_everything(), busy_loop_factory(use_uvloop=False))
    assert r["mechanism"] == "selector"
    _check_spinning(r)


def test_timers_tasks_and_no_sleep_uvloop() -> None:
    pytest.importorskip("uvloop")
    r = run_in_loop(_never_sleeps_and_runs_everything(), busy_loop_factory(use_uvloop=True))
    assert r["mechanism"] == "callback"
    _check_spinning(r)


async def test_default_mode_sleeps() -> None:
    """The control for the test above: without busy_poll the thread sleeps between frames."""
    async with LocalServer(server_config(markets=2, rate=500.0)) as srv:
        async with make_client(srv) as client:
            await client.subscribe(selectors(srv, 2), timeout=5)
            switches0, _ = _thread_switches()
            await asyncio.sleep(0.5)
            switches1, _ = _thread_switches()
            assert not BusyPoll.of().spinning
    assert switches1 - switches0 > 20


async def test_stops_spinning_while_disconnected() -> None:
    async with LocalServer(server_config(markets=2)) as srv:
        async with make_client(srv, busy_poll=True, backoff_initial=0.3, backoff_max=0.3,
                               jitter=0.0) as client:
            await client.subscribe(selectors(srv, 2), timeout=5)
            poller = BusyPoll.of()
            assert poller.spinning
            srv.faults.refuse_connections(0.6)
            srv.faults.close_all_abruptly()
            await wait_for(lambda: not client.connected, 3)
            assert not poller.spinning          # backing off: the loop may sleep
            await wait_for(lambda: client.metrics.reconnects == 1, 6)
            await wait_for(lambda: poller.spinning, 2)
        assert not poller.spinning


def test_run_busy_poll_spins_for_the_whole_of_main() -> None:
    async def main() -> tuple[bool, str]:
        await asyncio.sleep(0.01)
        poller = BusyPoll.of()
        return poller.spinning, poller.mechanism

    assert run(main(), busy_poll=True, use_uvloop=False) == (True, "selector")
    assert run(main()) == (False, "callback")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert run(main(), busy_poll=True) == (True, "selector")
        return
    # with uvloop installed, busy polling uses it (as the default mode does)
    assert run(main(), busy_poll=True) == (True, "callback")
    assert run(main(), busy_poll=True, use_uvloop=True) == (True, "callback")


def test_poller_is_shared_and_counted() -> None:
    async def main() -> list[bool]:
        poller = BusyPoll.of()
        seen = [poller.spinning]
        poller.acquire()
        poller.acquire()
        poller.release()
        seen.append(poller.spinning)
        poller.release()
        poller.release()          # one too many: ignored
        seen.append(poller.spinning)
        await asyncio.sleep(0.01)  # the spinning callback, if any, stopped
        return seen

    assert run_in_loop(main(), None) == [False, True, False]
    assert run_in_loop(main(), busy_loop_factory(use_uvloop=False)) == [False, True, False]


def test_spin_selector_honours_timeouts() -> None:
    sel = SpinSelector()
    try:
        sel.spinning = True
        t0 = time.monotonic()
        assert sel.select(0.02) == []
        assert 0.02 <= time.monotonic() - t0 < 1.0
        r, w = os.pipe()
        try:
            sel.register(r, 1)
            os.write(w, b"x")
            [(key, mask)] = sel.select(None)   # ready at once, even with no timeout
            assert key.fd == r and mask == 1
        finally:
            sel.unregister(r)
            os.close(r)
            os.close(w)
    finally:
        sel.close()


def test_config_validates_busy_poll() -> None:
    assert ClientConfig().busy_poll is False
    assert Client("ws://x/ws", api_key="k", busy_poll=True).config.busy_poll is True
    with pytest.raises(ValueError, match="busy_poll"):
        ClientConfig(busy_poll="yes")  # type: ignore[arg-type]


# -- Ctrl-C ----------------------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {src!r})
    from parsec_fast.client import Client, run
    from parsec_fast.server import LocalServer, ServerConfig

    async def main() -> None:
        cfg = ServerConfig(markets=2, rate=300.0, heartbeat_interval=0.2, seed=1, wallet_interval=0)
        async with LocalServer(cfg) as srv:
            client = Client(srv.url, api_key="k", busy_poll=True, use_uvloop={uvloop})
            async with client:
                specs = [srv.simulator.spec(p) for p in sorted(srv.simulator.markets)[:2]]
                await client.subscribe([{{"parsec_id": s.parsec_id, "outcome": s.outcomes[0]}}
                                        for s in specs], timeout=5)
                print("READY", flush=True)
                await asyncio.Event().wait()

    try:
        {runner}
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
""")


@pytest.mark.parametrize("how", ["asyncio", "uvloop"])
def test_ctrl_c_stops_a_busy_polling_process(how: str) -> None:
    if how == "uvloop":
        pytest.importorskip("uvloop")
    uvloop = "True" if how == "uvloop" else "False"
    runner = f"run(main(), use_uvloop={uvloop}, busy_poll=True)"
    code = CHILD.format(src=SRC, runner=runner, uvloop=uvloop)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read() if proc.stderr else "")
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "INTERRUPTED" in out, err[-2000:]
    assert proc.returncode == 0

