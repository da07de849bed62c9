"""Connection failures surface at once, typed by phase, with their cause; a peer that sends one
endless message gets the connection dropped (bounded memory), reported, and reconnected."""
from __future__ import annotations

import asyncio
import resource
import socket
import time
from typing import Any

import orjson
import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_create_server

from client_helpers import make_client, selectors, server_config, wait_for
from parsec_fast import (AuthTimeoutError, Client, ConnectionClosedError, ConnectRefusedError,
                         Disconnected, DNSError, HandshakeRejectedError, HandshakeTimeoutError,
                         MessageTooLargeError, ParsecConnectionError, TLSError)
from parsec_fast.server import LocalServer

pytestmark = pytest.mark.timeout(40)


async def _silent_tcp_server() -> tuple[asyncio.AbstractServer, int, list[asyncio.StreamWriter]]:
    """Accepts TCP and never says anything."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await reader.read()  # until the client goes away
        except (ConnectionError, asyncio.CancelledError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], writers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _fails(url: str, **options: Any) -> tuple[ParsecConnectionError, float]:
    t0 = time.monotonic()
    client = Client(url, api_key="demo", **options)
    with pytest.raises(ParsecConnectionError) as info:
        await client.start()
    assert client.closed and isinstance(client.fatal_error, ParsecConnectionError)
    return info.value, time.monotonic() - t0


async def test_dns_failure_is_immediate_and_named() -> None:
    err, took = await _fails("ws://parsec-fast-test.invalid/ws", connect_timeout=2)
    assert isinstance(err, DNSError) and err.phase == "dns"
    assert isinstance(err.cause, socket.gaierror) and err.__cause__ is err.cause
    assert "parsec-fast-test.invalid" in str(err) and took < 2.5


async def test_refused_connection_is_immediate_and_named() -> None:
    port = _free_port()
    err, took = await _fails(f"ws://127.0.0.1:{port}/ws")
    assert isinstance(err, ConnectRefusedError) and isinstance(err, ConnectionError)
    assert err.phase == "tcp" and isinstance(err.cause, ConnectionRefusedError)
    assert err.url == f"ws://127.0.0.1:{port}/ws" and took < 2


async def test_server_that_accepts_tcp_but_never_answers() -> None:
    server, port, writers = await _silent_tcp_server()
    try:
        err, took = await _fails(f"ws://127.0.0.1:{port}/ws", connect_timeout=0.5)
        assert isinstance(err, HandshakeTimeoutError) and isinstance(err, TimeoutError)
        assert err.phase == "websocket" and "never answered" in str(err)
        assert 0.4 < took < 2
        # Over TLS the same silence stops the TLS handshake.
        err, took = await _fails(f"wss://127.0.0.1:{port}/ws", connect_timeout=0.5)
        assert isinstance(err, TLSError) and err.phase == "tls" and took < 2.5
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def test_http_error_instead_of_upgrade() -> None:
    async with LocalServer(server_config(markets=1)) as srv:
        err, _ = await _fails(srv.url.replace("/ws", "/not-ws"))
        assert isinstance(err, HandshakeRejectedError) and err.status == 404
        assert "HTTP 404" in str(err)


class _CloseAfterUpgrade(WSListener):
    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send_close()
        transport.disconnect()


async def test_closed_during_authentication() -> None:
    server = await ws_create_server(lambda request: _CloseAfterUpgrade(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        err, _ = await _fails(f"ws://127.0.0.1:{port}/ws", auth_timeout=2)
        assert isinstance(err, ConnectionClosedError) and err.phase == "auth"
        assert not isinstance(err, AuthTimeoutError)
    finally:
        server.close()


async def test_wait_ready_timeout_says_what_is_missing() -> None:
    async with LocalServer(server_config(markets=2)) as srv:
        async with make_client(srv) as client:
            await client.subscribe(selectors(srv, 2), timeout=5)
            await client.wait_ready(5)
            srv.faults.refuse_connections(3.0)
            srv.faults.close_all_abruptly()
            await wait_for(lambda: not client.connected, 3)
            with pytest.raises(TimeoutError, match=r"not connected .* 0/2 books valid"):
                await client.wait_ready(0.3)


class _EndlessMessage(WSListener):
    """auth_ok, then one text message that never ends: 1 MB continuation frames forever."""

    def __init__(self) -> None:
        self.sent = 0
        self.stop = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if frame.msg_type == WSMsgType.TEXT and b'"auth"' in frame.get_payload_as_bytes():
            transport.send(WSMsgType.TEXT, orjson.dumps({"type": "auth_ok", "customer_id": "c"}))
            asyncio.get_running_loop().create_task(self._flood(transport))

    async def _flood(self, transport: WSTransport) -> None:
        chunk = b"x" * (1 << 20)
        transport.send(WSMsgType.TEXT, b'{"type":"heartbeat","ts_ms":1,"pad":"', fin=False)
        for _ in range(2000):  # bounded: at most 2 GB offered, the client must stop it long before
            if transport.is_disconnected or self.stop:
                return
            transport.send(WSMsgType.CONTINUATION, chunk, fin=False)
            self.sent += 1
            await asyncio.sleep(0.001)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_endless_fragmented_message_is_cut_and_reconnected() -> None:
    peers: list[_EndlessMessage] = []

    def factory(request: Any) -> WSListener:
        peers.append(_EndlessMessage())
        return peers[-1]

    server = await ws_create_server(factory, "127.0.0.1", 0, max_frame_size=4 << 20)
    port = server.sockets[0].getsockname()[1]
    disconnects: list[Disconnected] = []
    rss_before = _rss_mb()
    try:
        client = Client(f"ws://127.0.0.1:{port}/ws", api_key="demo",
                        max_message_size=4 << 20, backoff_initial=0.05, backoff_max=0.1,
                        heartbeat_interval=5.0)
        client.on("disconnected", disconnects.append)
        async with client:
            await wait_for(lambda: client.metrics.reconnects >= 2, 20)
            assert client.metrics.oversized_messages >= 2
        for peer in peers:
            peer.stop = True
        first = disconnects[0]
        assert isinstance(first.error, MessageTooLargeError) and first.will_reconnect
        assert "max_message_size=4,194,304" in str(first.error)
        # Each connection was cut after ~4 MB, not after everything the peer offered.
        assert all(peer.sent <= 64 for peer in peers), [p.sent for p in peers]
        assert _rss_mb() - rss_before < 64
    finally:
        for peer in peers:
            peer.stop = True
        server.close()
