"""Per-frame latency accounting in the client: ``BookUpdated.read_ns`` /
``Subscription.last_frame_ns`` (when a frame's bytes were read), and ``ClientMetrics``'
read->apply and read->callback percentiles over the whole run (every connection, not a window of
recent samples). The histogram itself: tests/test_latency_histogram.py."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from client_helpers import make_client, selectors, server_config, wait_for
from parsec_fast.events import BookUpdated, new_book_updated
from parsec_fast.server import LocalServer

pytestmark = pytest.mark.timeout(40)


# -- the client ----------------------------------------------------------------------------------

def test_the_receive_paths_book_updated_is_the_dataclass_itself() -> None:
    # new_book_updated writes the slots directly (faster than the frozen __init__): the object
    # must be indistinguishable from BookUpdated(...), frozen included.
    import dataclasses
    import pickle

    fast = new_book_updated("kalshi:KX", "Yes", 7, 123)
    slow = BookUpdated("kalshi:KX", "Yes", 7, 123)
    assert type(fast) is BookUpdated and fast.kind == "book_updated"
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == ("kalshi:KX", "Yes", 7, 123)
    assert pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.seq = 8  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(BookUpdated)] == ["parsec_id", "outcome", "seq",
                                                                 "read_ns"]


async def test_book_updated_carries_the_read_time() -> None:
    async with LocalServer(server_config(markets=4, rate=2000.0)) as srv:
        async with make_client(srv) as client:
            seen: list[tuple[BookUpdated, int, int]] = []

            def on_update(ev: BookUpdated) -> None:
                # the subscription's documented property is the same read time, now
                seen.append((ev, client.subscription(ev.parsec_id, ev.outcome).last_frame_ns,
                             time.monotonic_ns()))

            client.on("book_updated", on_update)
            stream = client.events(kinds=["book_updated"])
            t0 = time.monotonic_ns()
            await client.subscribe(selectors(srv, 4), timeout=5)
            await wait_for(lambda: len(seen) > 200, 5)
            first = await stream.get(2)
            assert isinstance(first, BookUpdated) and first.read_ns > t0
            last_read: dict[str, int] = {}
            for ev, sub_read, now in seen:
                assert t0 < ev.read_ns <= now
                assert ev.read_ns == sub_read
                assert ev.read_ns >= last_read.get(ev.parsec_id, 0)   # per book, never back
                last_read[ev.parsec_id] = ev.read_ns
            m = client.metrics
            # one read->callback sample per dispatched book_updated event
            assert m.callback_latency_samples >= len(seen)
            assert m.callback_latency_p50_us is not None
            assert 0 < m.callback_latency_p50_us <= m.callback_latency_p90_us  # type: ignore[operator]
            assert m.callback_latency_p90_us <= m.callback_latency_p99_us  # type: ignore[operator]
            assert m.callback_latency_p99_us <= m.callback_latency_p999_us  # type: ignore[operator]
            assert m.callback_latency_p999_us <= m.callback_latency_max_us  # type: ignore[operator]
            stream.close()


async def test_callback_samples_count_every_dispatched_event() -> None:
    async with LocalServer(server_config(markets=2, rate=1000.0)) as srv:
        async with make_client(srv) as client:
            n = 0

            def count(ev: Any) -> None:
                nonlocal n
                n += 1

            assert client.metrics.callback_latency_samples == 0  # nobody listened yet
            client.on("book_updated", count)
            await client.subscribe(selectors(srv, 2), timeout=5)
            await asyncio.sleep(0.3)
            assert n > 10 and client.metrics.callback_latency_samples == n
            hist = client.latency_histogram("callback")
            assert hist.count == n
            with pytest.raises(ValueError):
                client.latency_histogram("nope")  # type: ignore[arg-type]


async def test_apply_latency_covers_the_whole_run_across_connections() -> None:
    async with LocalServer(server_config(markets=4, rate=6000.0)) as srv:
        async with make_client(srv, latency_sample_every=1) as client:
            await client.subscribe(selectors(srv, 4), timeout=5)
            await wait_for(lambda: client.metrics.latency_samples > 2500, 10)
            before = client.metrics.latency_samples
            srv.faults.close_all_abruptly()
            await wait_for(lambda: client.metrics.reconnects == 1, 5)
            # the old 4,096-sample ring is gone: samples of both connections add up
            await wait_for(lambda: client.metrics.latency_samples > before + 2500, 10)
            m = client.metrics
            assert m.latency_samples > 4096
            assert m.latency_samples <= m.frames
            assert 0 < m.latency_p50_us <= m.latency_p99_us <= m.latency_p999_us  # type: ignore[operator]
            assert m.latency_p999_us <= m.latency_max_us  # type: ignore[operator]
            hist = client.latency_histogram()
            assert hist.count >= m.latency_samples
            hist.reset()                              # a copy: the client's keeps counting
            assert client.metrics.latency_samples >= m.latency_samples
