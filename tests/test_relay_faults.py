"""The relay's failure behaviour, each against a real nats-server and the local Parsec server:
a consumer restart, a relay restart (graceful and crashed), a NATS server restart, a slow
consumer the NATS server disconnects, a Parsec disconnect behind the relay. In every one, the
oracle checks each consumer event: a book reported valid is exactly the relay's book at that
seq (never a wrong book reported valid); at the end every consumer holds the relay's books."""
from __future__ import annotations

import asyncio
import time

from client_helpers import selectors, server_config
from parsec_fast.server import LocalServer
from relay_helpers import (NatsServer, Oracle, ThreadedRelay, assert_same_books, consumer_for,
                           needs_nats, relay_for, settle, wait_until)

pytestmark = needs_nats


async def test_consumer_restart_costs_no_parsec_control_message() -> None:
    oracle = Oracle()
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=4)) as srv:
            async with relay_for(srv.url, nats.url, unsubscribe_linger=5.0) as relay:
                oracle.watch_relay(relay)
                sels = selectors(srv)
                first = consumer_for(nats.url)
                oracle.watch_consumer(first, "first")
                await first.start()
                await first.subscribe(sels, timeout=5)
                await first.close()                   # bye: its wants stop counting
                sent = dict(relay.upstream.metrics.__dict__) if hasattr(
                    relay.upstream.metrics, "__dict__") else None
                control = len(relay.upstream.control_log)
                again = consumer_for(nats.url)
                oracle.watch_consumer(again, "again")
                try:
                    await again.start()
                    await again.subscribe(sels, timeout=5)
                    await settle(relay, srv, [again])
                    assert assert_same_books(relay, again) == len(sels)
                    # the books lingered upstream: no unsubscribe, no new subscribe
                    assert len(relay.upstream.control_log) == control, sent
                    assert not oracle.finish(), oracle.violations[:3]
                finally:
                    await again.close()


async def _relay_restart(crash: bool) -> None:
    oracle = Oracle()
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=4, rate=600.0)) as srv:
            relay = relay_for(srv.url, nats.url)
            oracle.watch_relay(relay)
            await relay.start()
            consumers = [consumer_for(nats.url) for _ in range(2)]
            lost_at: list[float] = []
            try:
                for i, c in enumerate(consumers):
                    oracle.watch_consumer(c, f"consumer{i}")
                    c.on("disconnected", lambda ev: lost_at.append(time.monotonic()))
                    await c.start()
                    await c.subscribe(selectors(srv), timeout=5)
                await asyncio.sleep(0.3)
                stopped = time.monotonic()
                if crash:
                    await relay.abort()
                else:
                    await relay.close()
                await wait_until(lambda: len(lost_at) == 2, 3, "consumers noticed")
                noticed = max(lost_at) - stopped
                # a crash: dead_after x heartbeat_interval (3 x 0.5 s) + the check's period
                assert noticed < (2.5 if crash else 1.0), noticed
                assert all(not s.book.is_valid for c in consumers for s in c.subscriptions())
                relay = relay_for(srv.url, nats.url)
                oracle.watch_relay(relay)
                await relay.start()
                await wait_until(lambda: all(c.connected for c in consumers), 8, "reconnected")
                await asyncio.sleep(0.3)
                await settle(relay, srv, consumers)
                for c in consumers:
                    assert assert_same_books(relay, c) == 4
                    assert c.metrics.connects == 2
                assert not oracle.finish(), oracle.violations[:3]
            finally:
                for c in consumers:
                    await c.close()
                await relay.close()


async def test_relay_restart() -> None:
    await _relay_restart(crash=False)


async def test_relay_crash_is_detected_by_heartbeats() -> None:
    await _relay_restart(crash=True)


async def test_nats_server_restart() -> None:
    oracle = Oracle()
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=4, rate=600.0)) as srv:
            async with relay_for(srv.url, nats.url) as relay:
                oracle.watch_relay(relay)
                c = consumer_for(nats.url)
                oracle.watch_consumer(c)
                try:
                    await c.start()
                    await c.subscribe(selectors(srv), timeout=5)
                    await asyncio.sleep(0.3)
                    await asyncio.get_running_loop().run_in_executor(None, nats.restart)
                    await wait_until(lambda: not c.connected, 3, "consumer lost NATS")
                    await wait_until(lambda: c.connected and c.metrics.connects == 2, 8,
                                     "consumer back")
                    await asyncio.sleep(0.3)
                    await settle(relay, srv, [c])
                    assert assert_same_books(relay, c) == 4
                    assert relay.upstream.metrics.connects == 1   # Parsec was never touched
                    assert not oracle.finish(), oracle.violations[:3]
                finally:
                    await c.close()


async def test_parsec_disconnect_behind_the_relay() -> None:
    oracle = Oracle()
    with NatsServer() as nats:
        async with LocalServer(server_config(markets=4, rate=600.0)) as srv:
            async with relay_for(srv.url, nats.url) as relay:
                oracle.watch_relay(relay)
                c = consumer_for(nats.url)
                oracle.watch_consumer(c)
                invalid: list[str] = []
                c.on("book_invalid", lambda ev: invalid.append(ev.reason))
                try:
                    await c.start()
                    await c.subscribe(selectors(srv), timeout=5)
                    await asyncio.sleep(0.3)
                    srv.faults.close_all_abruptly()
                    await wait_until(lambda: len(invalid) >= 4, 3, "consumer told")
                    assert set(invalid) == {"resync_required"}
                    await wait_until(lambda: relay.upstream.metrics.connects == 2, 5)
                    await c.wait_ready(8)
                    await asyncio.sleep(0.3)
                    await settle(relay, srv, [c])
                    assert assert_same_books(relay, c) == 4
                    assert c.metrics.connects == 1   # the consumer's own connection stayed up
                    assert c.metrics.resyncs_sent + c.metrics.coalesced_resyncs >= 1
                    assert not oracle.finish(), oracle.violations[:3]
                finally:
                    await c.close()


async def test_slow_consumer_is_disconnected_and_recovers() -> None:
    oracle = Oracle()
    # a small outbound allowance: the NATS server drops a consumer that stops reading
    with NatsServer(extra="max_pending: 262144\nmax_payload: 262144\nwrite_deadline: \"1s\"\n") as nats:
        with ThreadedRelay(server_config(markets=3, rate=20_000.0), nats.url) as threaded:
            assert threaded.relay is not None and threaded.srv is not None and threaded.loop
            relay, srv = threaded.relay, threaded.srv
            oracle.watch_relay(relay)
            # heartbeat_interval=5: the consumer's own dead-connection check stays out of it
            c = consumer_for(nats.url, heartbeat_interval=5.0)
            oracle.watch_consumer(c)
            try:
                await c.start()
                await c.subscribe(selectors(srv), timeout=5)
                time.sleep(2.5)         # this consumer stops reading; the relay goes on
                await wait_until(lambda: c.metrics.connects >= 2 and c.connected, 8,
                                 "consumer reconnected")
                assert "Slow Consumer" in nats.log()
                await c.wait_ready(8)
                await settle(relay, srv, [c])
                assert assert_same_books(relay, c) == 3
                assert not oracle.finish(), oracle.violations[:3]
            finally:
                await c.close()
