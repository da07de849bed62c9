"""Opening one WebSocket, phase by phase, so that a failure says which phase and why.

``open_websocket`` resolves the host, connects TCP (each bounded by ``connect_timeout``), lets
picows do TLS (``wss://``) and the WebSocket handshake (each bounded by ``connect_timeout`` too),
and turns every failure into the :class:`~parsec_fast.errors.ParsecConnectionError` subclass of
its phase, with the underlying exception as ``cause``: :class:`DNSError`,
:class:`ConnectRefusedError`, :class:`ConnectTimeoutError`, :class:`TLSError`,
:class:`HandshakeTimeoutError` (the server accepted the connection but never answered),
:class:`HandshakeRejectedError` (an HTTP error instead of the upgrade),
:class:`ConnectionClosedError` (closed during the handshake).
"""
from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from picows import WSHandshakeError, WSListener, WSTransport, ws_connect

from ..errors import (ConnectionClosedError, ConnectRefusedError, ConnectTimeoutError, DNSError,
                      HandshakeRejectedError, HandshakeTimeoutError, ParsecConnectionError,
                      TLSError)

__all__ = ["open_websocket"]


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    host = parts.hostname or ""
    return host, parts.port or (443 if secure else 80)


async def open_websocket(url: str, listener_factory: Callable[[], WSListener], *,
                         connect_timeout: float, ssl_context: ssl.SSLContext | None,
                         max_frame_size: int, ping_interval: float) -> WSTransport:
    """Open ``url`` with picows; raise the typed error of the phase that failed.

    ``ping_interval``: picows sends a WebSocket ping when the connection has been idle that
    long (and drops it if no pong comes within the same time)."""
    host, port = _host_port(url)
    secure = url.lower().startswith("wss://")
    loop = asyncio.get_running_loop()
    phase = "dns"

    async def connected_socket(_parsed: object) -> socket.socket:
        nonlocal phase
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), connect_timeout)
        except socket.gaierror as exc:
            raise DNSError(f"cannot resolve host {host!r}", url=url, cause=exc) from exc
        except asyncio.TimeoutError as exc:
            raise DNSError(f"resolving host {host!r} took longer than {connect_timeout:g} s",
                           url=url, cause=exc) from exc
        phase = "tcp"
        last: ParsecConnectionError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, address), connect_timeout)
            except asyncio.TimeoutError as exc:
                sock.close()
                last = ConnectTimeoutError(
                    f"TCP connect to {address!r} did not complete within {connect_timeout:g} s",
                    url=url, cause=exc)
            except OSError as exc:
                sock.close()
                last = ConnectRefusedError(f"cannot connect to {address!r}", url=url, cause=exc)
            except BaseException:
                sock.close()
                raise
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                phase = "tls" if secure else "websocket"
                return sock
        assert last is not None  # getaddrinfo returns at least one address or raises
        raise last

    # Passed on to loop.create_connection, which refuses it without TLS.
    extra: dict[str, Any] = {"ssl_handshake_timeout": connect_timeout} if secure else {}
    try:
        # The outer bound is a safety net: each phase has its own timeout.
        transport, _ = await asyncio.wait_for(
            ws_connect(listener_factory, url, ssl_context=ssl_context,
                       socket_factory=connected_socket, websocket_handshake_timeout=connect_timeout,
                       max_frame_size=max_frame_size, enable_auto_ping=True,
                       auto_ping_idle_timeout=ping_interval, auto_ping_reply_timeout=ping_interval,
                       **extra),
            4 * connect_timeout)
    except ParsecConnectionError:
        raise
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise TLSError("TLS handshake failed", url=url, cause=exc) from exc
    except WSHandshakeError as exc:
        status = exc.response.status if exc.response is not None else None
        raise HandshakeRejectedError(
            "the server answered the WebSocket handshake with "
            f"{'HTTP ' + str(int(status)) if status is not None else 'an invalid response'}",
            url=url, cause=exc, status=None if status is None else int(status)) from exc
    except asyncio.TimeoutError as exc:
        # picows's own handshake timer raises TimeoutError("websocket handshake timeout"): the
        # transport (and TLS) was up. An empty one is the outer bound's.
        if phase == "tls" and not exc.args:
            raise TLSError(f"TLS handshake did not complete within {connect_timeout:g} s",
                           url=url, cause=exc) from exc
        if phase in ("tls", "websocket"):
            raise HandshakeTimeoutError(
                "the server accepted the connection but never answered the WebSocket handshake "
                f"within {connect_timeout:g} s", url=url, cause=exc) from exc
        raise ConnectTimeoutError(f"no connection within {4 * connect_timeout:g} s",
                                  url=url, cause=exc, phase=phase) from exc
    except OSError as exc:  # reset, aborted (a TLS handshake timeout is ConnectionAbortedError)
        if phase == "tls":
            raise TLSError("TLS handshake failed", url=url, cause=exc) from exc
        raise ConnectionClosedError("the server closed the connection during the handshake",
                                    url=url, cause=exc, phase=phase) from exc
    return transport
