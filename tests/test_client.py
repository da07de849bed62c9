"""End-to-end tests of parsec_fast.Client against the in-process local server.

After every scenario each book must equal what the server's recorder says a correct client holds
(levels and seq), control messages must stay at <= 3/s, and what happened must be visible
(events, counters) — nothing silently lost.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from picows import WSListener, ws_create_server

from client_helpers import (ThreadedServer, assert_control_rate, check_books, make_client, quiesce,
                            selectors, server_config, settle_and_check, wait_for)
from parsec_fast import AuthenticationError, AuthTimeoutError, Client, SubscriptionLimitError
from parsec_fast.events import (BookInvalid, BookRecovered, Connected, Disconnected,
                                ErrorMessage, EventsDropped, Reconnecting, SubscriptionFailed,
                                Trade)
from parsec_fast.server import LocalServer

pytestmark = pytest.mark.timeout(40)

PARSERS = ["native", "orjson"]


class EventLog:
    """Collects every event of a client through a '*' callback."""

    def __init__(self, client: Client) -> None:
        self.events: list[Any] = []
        client.on("*", self.events.append)

    def kinds(self) -> Counter[str]:
        return Counter(e.kind for e in self.events)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]


# -- faults on the stream ------------------------------------------------------------------------

@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("activity_seq", ["shared", "separate"])
async def test_books_correct_through_stream_faults(parser: str, activity_seq: str) -> None:
    shared = activity_seq == "shared"
    async with LocalServer(server_config(separate_activity_seq=not shared)) as srv:
        async with make_client(srv, parser=parser, activity_seq=activity_seq) as client:
            log = EventLog(client)
            sels = selectors(srv, 6)
            await client.subscribe(sels, depth=20, timeout=5)
            pids = [s["parsec_id"] for s in sels]
            await asyncio.sleep(0.3)
            # One of each: drop (gap), duplicate, reorder, then server-side resync requests.
            for fault in (srv.faults.drop_next_delta, srv.faults.duplicate_next,
                          srv.faults.reorder_next):
                fault(pids[0])
                await wait_for(lambda: not srv.faults.pending, 3)
                await asyncio.sleep(0.2)
            assert srv.faults.send_resync_required(pids[1]) >= 1
            assert srv.faults.mark_needs_refresh(pids[2]) >= 1
            await asyncio.sleep(0.3)
            frames = await settle_and_check(client, srv, shared=shared)
            reasons = Counter(e.reason for e in log.of(BookInvalid))
            assert reasons["gap"] >= 2  # the dropped and the reordered delta
            assert reasons["resync_required"] >= 1 and reasons["needs_refresh"] >= 1
            # Every invalid book came back; each recovery is announced.
            assert len(log.of(BookRecovered)) >= len(sels) + 4
            m = client.metrics
            assert m.duplicates >= 1 and m.gaps >= 2 and m.resyncs_sent >= 3
            assert m.protocol_errors == 0 and m.rate_limited == 0
            assert_control_rate(client)
            # Activity was delivered: every activity frame of the connection became an event.
            sent_activity = sum(1 for f in frames if b'"type":"activity"' in f)
            assert sent_activity > 0
            assert len(log.of(Trade)) + log.kinds()["fill"] == sent_activity


@pytest.mark.parametrize("parser", PARSERS)
async def test_stall_marks_books_stale_then_fresh(parser: str) -> None:
    async with LocalServer(server_config(markets=3, stale_after_ms=300)) as srv:
        async with make_client(srv, parser=parser) as client:
            log = EventLog(client)
            sels = selectors(srv, 3)
            await client.subscribe(sels, timeout=5)
            pid, outcome = sels[0]["parsec_id"], sels[0]["outcome"]
            sub = client.subscription(pid, outcome)
            await wait_for(lambda: sub.trustworthy, 3)
            srv.faults.stall(pid, 1.0)
            await wait_for(lambda: not sub.trustworthy, 3)
            assert "stale" in (sub.why_not() or "")
            await wait_for(lambda: sub.trustworthy, 4)
            states = [(e.what, e.reason) for e in log.events
                      if e.kind == "book_state" and e.parsec_id == pid]
            assert ("state", "book_state=stale") in states or ("stale", "no book frame for 300 ms") in states
            assert ("state", "book_state=fresh") in states or ("fresh", "book frame received") in states
            assert sub.book.is_valid  # staleness never invalidates the book
            await settle_and_check(client, srv)


async def test_feed_state_degraded_is_reported_not_invalidating() -> None:
    async with LocalServer(server_config(markets=3)) as srv:
        async with make_client(srv) as client:
            sels = selectors(srv, 3)
            await client.subscribe(sels, timeout=5)
            sub = client.subscription(sels[0]["parsec_id"], sels[0]["outcome"])
            srv.faults.feed_degraded()
            await wait_for(lambda: sub.feed_state == "degraded", 3)
            assert sub.book.is_valid and not sub.trustworthy and "degraded" in sub.why_not()
            srv.faults.feed_healthy()
            await wait_for(lambda: sub.trustworthy, 3)
            await settle_and_check(client, srv)


async def test_many_resyncs_are_coalesced_into_one_unsubscribe_and_subscribe() -> None:
    async with LocalServer(server_config(markets=8)) as srv:
        async with make_client(srv) as client:
            await client.subscribe(selectors(srv, 8), timeout=5)
            await asyncio.sleep(1.1)  # let the subscribe's token return
            first = len(client.control_log)
            assert srv.faults.send_resync_required() >= 8   # every book at once
            await wait_for(lambda: client.metrics.coalesced_resyncs == 1, 3)
            await client.wait_ready(5)
            kinds = [k for _, k in list(client.control_log)[first:]]
            assert kinds.count("resync") <= 2, kinds          # at most the threshold, not 8
            assert kinds.count("unsubscribe") == 1 and kinds.count("subscribe") == 1, kinds
            assert client.metrics.coalesced_resyncs == 1
            await settle_and_check(client, srv)
            assert_control_rate(client)


async def test_slow_reader_is_reported_and_recovered() -> None:
    # The server runs in its own thread: while the client's loop is blocked (a slow callback),
    # the server keeps writing and its send buffer grows.
    config = server_config(markets=6, rate=20_000.0, so_sndbuf=16 * 1024,
                           soft_buffer_limit=32 * 1024, hard_buffer_limit=4 * 1024 * 1024,
                           disconnect_buffer_limit=None)
    with ThreadedServer(config) as srv:
        async with make_client(srv, dead_after=100.0) as client:
            log = EventLog(client)
            await client.subscribe(selectors(srv, 6), depth=50, timeout=5)
            (conn,) = srv.connections
            block = {"on": True}

            def slow_callback(ev: Any) -> None:
                # Stall (once) until the server saw its send buffer pass the soft limit: a fixed
                # sleep was flaky, as the client's kernel receive buffer (autotuned up to several
                # MB on loopback) can absorb a short stall before the server's buffer grows.
                t0 = time.monotonic()
                while block["on"] and not conn.slow_reader_events and time.monotonic() - t0 < 20:
                    time.sleep(0.02)
                block["on"] = False
            client.on("book_updated", slow_callback)
            # 1. A short stall: past the soft limit -> slow_reader, books stay valid.
            # Generous bounds: on a loaded 2-core machine the server thread and the client
            # compete for CPU; the waits end as soon as the condition holds.
            await wait_for(lambda: client.metrics.slow_reader >= 1, 20)
            assert log.kinds()["slow_reader"] >= 1
            # 2. A long stall: past the hard limit -> resync_required for every book, which
            #    the client answers with ONE unsubscribe + ONE subscribe.
            t0 = time.monotonic()
            while not conn.overload_events and time.monotonic() - t0 < 20:
                time.sleep(0.05)   # blocks this loop: the client reads nothing meanwhile
            assert conn.overload_events >= 1
            await wait_for(lambda: client.metrics.coalesced_resyncs >= 1, 20)
            assert sum(e.reason == "resync_required" for e in log.of(BookInvalid)) >= 6
            await settle_and_check(client, srv, timeout=10)
            assert_control_rate(client)


# -- connection faults ---------------------------------------------------------------------------

@pytest.mark.parametrize("parser", PARSERS)
async def test_abrupt_close_reconnects_and_rebuilds(parser: str) -> None:
    async with LocalServer(server_config(markets=4)) as srv:
        async with make_client(srv, parser=parser) as client:
            log = EventLog(client)
            sels = selectors(srv, 4)
            await client.subscribe(sels, timeout=5)
            await asyncio.sleep(0.2)
            assert srv.faults.close_all_abruptly() == 1
            await wait_for(lambda: client.metrics.reconnects == 1, 5)
            await settle_and_check(client, srv)
            invalid = [e for e in log.of(BookInvalid) if e.reason == "disconnected"]
            assert len(invalid) == len(sels)
            assert [type(e) for e in log.events if isinstance(e, (Connected, Disconnected,
                                                                  Reconnecting))] == \
                [Disconnected, Reconnecting, Connected]
            assert log.of(Disconnected)[0].will_reconnect
            # Re-subscribed everything in one batch.
            assert client.metrics.subscribes_sent == 2


async def test_refused_connections_are_retried_with_backoff() -> None:
    async with LocalServer(server_config(markets=2)) as srv:
        async with make_client(srv) as client:
            log = EventLog(client)
            await client.subscribe(selectors(srv, 2), timeout=5)
            srv.faults.refuse_connections(0.6)
            srv.faults.close_all_abruptly()
            await wait_for(lambda: client.metrics.reconnects == 1, 6)
            delays = [e.delay for e in log.of(Reconnecting)]
            assert len(delays) >= 2                      # refused at least once
            assert all(0 < d <= 0.2 * 1.2 + 1e-9 for d in delays)   # capped by backoff_max
            await settle_and_check(client, srv)


async def test_dead_connection_is_dropped_and_reconnected() -> None:
    # The server sends nothing (no stream, heartbeats far apart) but keeps the socket open.
    async with LocalServer(server_config(markets=2, live=False, heartbeat_interval=30.0)) as srv:
        async with make_client(srv, heartbeat_interval=0.1, dead_after=3.0) as client:
            log = EventLog(client)
            await client.subscribe(selectors(srv, 2), timeout=5)
            await wait_for(lambda: client.metrics.reconnects >= 1, 3)
            reason = log.of(Disconnected)[0].reason
            assert reason.startswith("dead connection"), reason
            await client.wait_ready(3)


async def test_auth_error_is_fatal_and_never_retried() -> None:
    async with LocalServer(server_config(markets=2)) as srv:
        client = make_client(srv, api_key="bad-key")
        with pytest.raises(AuthenticationError) as info:
            async with client:
                pass
        assert info.value.code == 1002
        await asyncio.sleep(0.3)
        assert srv.connections_accepted == 1   # one connection attempt, no reconnect


async def test_auth_error_also_raised_by_wait_ready_after_open() -> None:
    async with LocalServer(server_config(markets=2)) as srv:
        async with make_client(srv) as client:
            srv.config.reject_prefixes = ("demo",)   # the key stops working
            srv.faults.close_all_abruptly()
            await wait_for(lambda: not client.connected, 3)
            with pytest.raises(AuthenticationError):
                await client.wait_ready(5)
            assert not client.connected


class _SilentServer(WSListener):
    """Accepts the WebSocket and never answers anything (no auth_ok)."""


async def test_auth_timeout_reconnects() -> None:
    accepted: list[int] = []

    def factory(request: Any) -> WSListener:
        accepted.append(1)
        return _SilentServer()

    server = await ws_create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # By default the first attempt's failure is raised at once, typed.
        client = Client(f"ws://127.0.0.1:{port}/ws", api_key="demo", auth_timeout=0.2,
                        open_timeout=5.0)
        t0 = time.monotonic()
        with pytest.raises(AuthTimeoutError) as info:
            await client.start()
        assert time.monotonic() - t0 < 1.5 and len(accepted) == 1
        assert isinstance(info.value, asyncio.TimeoutError) and info.value.phase == "auth"
        # With retry_first_connect the first connection is retried with backoff.
        accepted.clear()
        client = Client(f"ws://127.0.0.1:{port}/ws", api_key="demo", auth_timeout=0.2,
                        backoff_initial=0.05, backoff_max=0.1, open_timeout=1.0,
                        retry_first_connect=True)
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await client.start()
        assert time.monotonic() - t0 < 3
        assert len(accepted) >= 3      # timed out, reconnected, again...
    finally:
        server.close()


async def test_reconnect_false_raises_connection_error() -> None:
    client = Client("ws://127.0.0.1:9/ws", api_key="demo", reconnect=False, open_timeout=3)
    with pytest.raises(ConnectionError):
        await client.start()


# -- control-message limits ------------------------------------------------------------------------

async def test_rate_limited_control_messages_are_retried() -> None:
    # The server allows 1 control message per second; the client sends up to 3: some get 3001.
    async with LocalServer(server_config(markets=8, control_rate=1)) as srv:
        # A long request_timeout: only the 3001 handling can bring the refused messages back.
        async with make_client(srv, request_timeout=60.0) as client:
            log = EventLog(client)
            sels = selectors(srv, 8)
            await client.subscribe(sels[:2], timeout=5)
            tasks = [asyncio.ensure_future(client.subscribe(sels[i:i + 1], timeout=15))
                     for i in range(2, 5)]
            srv.faults.send_resync_required(sels[0]["parsec_id"])
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
            await client.wait_ready(10)
            assert client.metrics.rate_limited >= 1
            assert any(isinstance(e, ErrorMessage) and e.code == 3001 for e in log.events)
            await settle_and_check(client, srv, timeout=10)
            assert_control_rate(client)


@pytest.mark.parametrize("policy, accepted", [("truncate", 3), ("truncate-error-first", 3),
                                              ("refuse", 0)])
async def test_subscription_limit_stops_subscribing_and_reports(policy: str,
                                                                accepted: int) -> None:
    # A subscribe naming 5 markets on a tier capped at 3: the server serves the first 3 and
    # refuses the rest ("truncate"), or refuses the whole message ("refuse"); either way one 3002.
    async with LocalServer(server_config(markets=6, tier="free",
                                         over_cap_policy=policy)) as srv:
        async with make_client(srv) as client:
            log = EventLog(client)
            sels = selectors(srv, 6)
            with pytest.raises(SubscriptionLimitError) as info:
                await client.subscribe(sels[:5], timeout=5)
            refused = set(info.value.failures)
            assert len(refused) == 5 - accepted
            assert {(e.parsec_id, e.outcome) for e in log.of(SubscriptionFailed)} == refused
            assert len(client.subscriptions()) == accepted
            await settle_and_check(client, srv)
            # While capped, a new market is refused at once, without a message.
            sent = client.metrics.subscribes_sent
            with pytest.raises(SubscriptionLimitError):
                await client.subscribe(sels[5:6], timeout=2)
            assert client.metrics.subscribes_sent == sent
            # Unsubscribing frees a slot.
            srv.resume_stream()
            await client.unsubscribe(sels[0])
            await client.subscribe(sels[5:6], timeout=5)
            assert len(client.subscriptions()) == max(accepted - 1, 0) + 1
            await settle_and_check(client, srv)


async def test_unknown_market_is_refused_and_others_stay() -> None:
    async with LocalServer(server_config(markets=3)) as srv:
        async with make_client(srv) as client:
            sels = selectors(srv, 2)
            with pytest.raises(Exception) as info:
                await client.subscribe(sels + ["kalshi:NOPE"], timeout=5)
            assert info.type.__name__ == "SubscriptionError"
            assert set(info.value.failures) == {("kalshi:NOPE", "Yes")}
            assert len(client.subscriptions()) == 2
            await settle_and_check(client, srv)


async def test_subscribe_forms_unsubscribe_and_addresses() -> None:
    async with LocalServer(server_config(markets=4)) as srv:
        async with make_client(srv) as client:
            log = EventLog(client)
            spec = srv.simulator.spec(sorted(srv.simulator.markets)[0])
            await client.subscribe([{"exchange": spec.exchange, "market_id": spec.market_id,
                                     "outcome": spec.outcomes[0]}],
                                   addresses=[("polymarket", "0xabc")], depth=5, timeout=5)
            book = client.book(spec.parsec_id, spec.outcomes[0])
            assert book.is_valid and len(book.bids()) <= 5
            await wait_for(lambda: log.kinds()["wallet_activity"] >= 1, 3)
            await client.unsubscribe([{"parsec_id": spec.parsec_id, "outcome": spec.outcomes[0]}],
                                     addresses=[("polymarket", "0xabc")])
            with pytest.raises(KeyError):
                client.book(spec.parsec_id, spec.outcomes[0])
            (conn,) = srv.connections
            await wait_for(lambda: not conn.subs and not conn.addresses, 3)
            assert client.customer_id and client.customer_id.startswith("cust_")


# -- events and slow consumers --------------------------------------------------------------------

async def test_raising_and_slow_callbacks_do_not_corrupt_books() -> None:
    async with LocalServer(server_config(markets=4)) as srv:
        async with make_client(srv) as client:
            def boom(ev: Any) -> None:
                raise RuntimeError("user bug")

            def slow(ev: Any) -> None:
                time.sleep(0.002)
            client.on("book_updated", boom)
            client.on("trade", boom)
            client.on("book_updated", slow)
            await client.subscribe(selectors(srv, 4), timeout=5)
            await asyncio.sleep(0.5)
            srv.faults.drop_next_delta()
            await asyncio.sleep(0.3)
            await settle_and_check(client, srv)
            assert client.metrics.callback_errors > 10


async def test_full_event_stream_drops_updates_with_notice_and_keeps_state_events() -> None:
    async with LocalServer(server_config(markets=4, rate=2000.0)) as srv:
        async with make_client(srv) as client:
            stream = client.events(maxsize=20)
            sels = selectors(srv, 4)
            await client.subscribe(sels, timeout=5)
            await asyncio.sleep(0.5)            # nobody reads: the stream fills
            srv.faults.send_resync_required(sels[0]["parsec_id"])
            await client.wait_ready(5)
            await asyncio.sleep(0.2)
            assert stream.qsize() > 20          # state events past the bound
            drained: list[Any] = []
            while stream.qsize():
                drained.append(await stream.get(1))
            notices = [e for e in drained if isinstance(e, EventsDropped)]
            assert len(notices) == 1 and notices[0].counts["book_updated"] > 0
            assert notices[0].books <= {(s["parsec_id"], s["outcome"]) for s in sels}
            assert stream.dropped_total == notices[0].total == client.metrics.events_dropped
            # No state event was dropped: one recovery per subscribe + one after the resync.
            assert sum(isinstance(e, BookRecovered) for e in drained) == len(sels) + 1
            assert sum(isinstance(e, BookInvalid) for e in drained) == 1
            # Reading again: new events flow, and iteration ends when the client closes.
            assert isinstance(await stream.get(2), object)
        rest = [e async for e in stream]
        assert any(isinstance(e, Disconnected) for e in rest)


async def test_async_callbacks_and_decorator() -> None:
    async with LocalServer(server_config(markets=2)) as srv:
        async with make_client(srv) as client:
            seen: list[Any] = []

            @client.on("book_recovered")
            async def on_recovered(ev: BookRecovered) -> None:
                await asyncio.sleep(0)
                seen.append(ev)
            await client.subscribe(selectors(srv, 2), timeout=5)
            await wait_for(lambda: len(seen) == 2, 2)
            with pytest.raises(ValueError):
                client.on("nope", print)


# -- TLS -----------------------------------------------------------------------------------------

def _self_signed(tmp_path: Any) -> tuple[str, str]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.IPv4Address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def test_tls_with_a_self_signed_certificate(tmp_path: Any) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    async with LocalServer(server_config(markets=3), ssl_context=server_ctx) as srv:
        assert srv.url.startswith("wss://")
        # The system trust store does not know the certificate: refused.
        untrusted = make_client(srv, reconnect=False)
        with pytest.raises(ConnectionError) as info:
            await untrusted.start()
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(info.value)
        # Trusting it explicitly works, hostname (IP SAN) checked.
        client_ctx = ssl.create_default_context(cafile=cert)
        async with make_client(srv, ssl_context=client_ctx) as client:
            await client.subscribe(selectors(srv, 3), timeout=5)
            await settle_and_check(client, srv)


# -- misc --------------------------------------------------------------------------------------------

def test_run_helper_uses_uvloop_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    from parsec_fast.client import run
    assert run(main()).startswith("uvloop")
    assert not run(main(), use_uvloop=False).startswith("uvloop")
    assert uvloop


async def test_latency_metrics_are_sampled() -> None:
    async with LocalServer(server_config(markets=4, rate=3000.0)) as srv:
        async with make_client(srv, latency_sample_every=4) as client:
            await client.subscribe(selectors(srv, 4), timeout=5)
            await asyncio.sleep(0.5)
            m = client.metrics
            assert m.latency_samples > 10
            assert 0 < m.latency_p50_us <= m.latency_p90_us <= m.latency_p99_us  # type: ignore[operator]
            assert m.frames > 100 and m.deltas_applied > 50 and m.bytes > 10_000


async def test_client_validation() -> None:
    with pytest.raises(ValueError):
        Client("ws://x/ws")
    with pytest.raises(ValueError):
        Client("ws://x/ws", api_key="a", terminal_token="b")
    async with LocalServer(server_config(markets=2)) as srv:
        async with Client(srv.url, terminal_token="tok", open_timeout=5) as client:
            with pytest.raises(ValueError):
                await client.subscribe(["no-colon"])
            assert client.connected
            frames = await quiesce(client, srv)
            check_books(client, frames)


async def test_the_book_checker_catches_a_wrong_valid_book() -> None:
    # Guard against a vacuous check: a tampered valid book must be caught.
    async with LocalServer(server_config(markets=2)) as srv:
        async with make_client(srv) as client:
            sels = selectors(srv, 2)
            await client.subscribe(sels, timeout=5)
            frames = await settle_and_check(client, srv)
            book = client.book(sels[0]["parsec_id"], sels[0]["outcome"])
            price, size = book.bids()[0]
            book.set_level("bid", price, size + 1.0)
            with pytest.raises(AssertionError, match="bids differ"):
                check_books(client, frames)


class _FragmentingServer(WSListener):
    """Answers auth with auth_ok and one snapshot, each split into three WebSocket fragments."""

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        import orjson
        from picows import WSMsgType
        if frame.msg_type != WSMsgType.TEXT:
            return
        msg = orjson.loads(frame.get_payload_as_bytes())
        if msg["type"] == "auth":
            replies = [{"type": "auth_ok", "customer_id": "cust_frag"}]
        elif msg["type"] == "subscribe":
            replies = [{"type": "orderbook", "parsec_id": "kalshi:F", "exchange": "kalshi",
                        "outcome": "Yes", "token_id": "", "market_id": "F",
                        "bids": [[0.4, 1.0]], "asks": [[0.6, 2.0]], "server_seq": 5}]
        else:
            return
        for reply in replies:
            data = orjson.dumps(reply)
            third = len(data) // 3
            transport.send(WSMsgType.TEXT, data[:third], fin=False)
            transport.send(WSMsgType.CONTINUATION, data[third:2 * third], fin=False)
            transport.send(WSMsgType.CONTINUATION, data[2 * third:], fin=True)


@pytest.mark.parametrize("recording", [False, True])
async def test_fragmented_messages_are_reassembled(tmp_path: Any, recording: bool) -> None:
    server = await ws_create_server(lambda request: _FragmentingServer(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    record_path = str(tmp_path / "rec.pfr") if recording else None
    try:
        async with Client(f"ws://127.0.0.1:{port}/ws", api_key="demo", open_timeout=3,
                          record_path=record_path) as client:
            assert client.customer_id == "cust_frag"
            await client.subscribe("kalshi:F", timeout=3)
            assert client.book("kalshi:F").bids() == [(0.4, 1.0)]
            assert client.connection_frames == 2
    finally:
        server.close()
