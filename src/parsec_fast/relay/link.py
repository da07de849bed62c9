"""A minimal NATS connection for the relay's data paths: the relay publishes on one, a consumer
reads on one.

Why not nats-py here (it carries the control requests, see :mod:`parsec_fast.relay.control`):
on the consumer, nats-py costs ~4 µs per small message and ~40 µs per 20 KB message before any
work (a ``Msg`` object, an asyncio queue and a coroutine per message; its parser copies its
buffer), which caps a consumer below 1 M deltas/s; here a socket read goes to the compiled
:class:`~parsec_fast._natsfeed.NatsFeedReader` in one call. On the relay, nats-py's ``publish``
is a coroutine and its writes wait for a flusher task (an event-loop round trip per batch);
here a publish is one ``transport.write`` right after the upstream read batch.

Only what those paths need: ``INFO`` / ``CONNECT`` (user and password, or a token, from the
URL; TLS for ``tls://`` URLs or a server that requires it), ``PING`` / ``PONG`` both ways,
``SUB`` / ``UNSUB``, ``PUB``, ``MSG`` (no headers), ``-ERR``. No reconnect: the owner opens a
new link (and resyncs) when one ends.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from .._natsfeed import OP_ERR, OP_INFO, OP_MSG, OP_OK, OP_PING, OP_PONG, NatsFeedReader
from .._natsfeed import NatsProtocolError

__all__ = ["NatsLink", "LinkError", "parse_nats_url", "MessageHandler"]

log: logging.Logger = logging.getLogger("parsec_fast.relay")

#: ``handler(sid, payload)`` for every message the reader hands back (not fed in C).
MessageHandler = Callable[[int, bytes], None]

_PING = b"PING\r\n"
_PONG = b"PONG\r\n"


class LinkError(ConnectionError):
    """The NATS connection could not be opened, or ended (``-ERR``, closed, protocol error)."""


def parse_nats_url(url: str) -> tuple[str, int, bool, dict[str, str]]:
    """``(host, port, tls, credentials)`` of ``nats://[user:pass@|token@]host[:port]`` (or
    ``tls://``); the credentials are CONNECT fields."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("nats", "tls"):
        raise ValueError(f"not a NATS URL: {url!r} (expected nats:// or tls://)")
    creds: dict[str, str] = {}
    if parts.username and parts.password is not None:
        creds = {"user": unquote(parts.username), "pass": unquote(parts.password)}
    elif parts.username:
        creds = {"auth_token": unquote(parts.username)}
    return parts.hostname or "127.0.0.1", parts.port or 4222, scheme == "tls", creds


class NatsLink(asyncio.Protocol):
    """One NATS connection (see the module docstring). Open with :meth:`open`."""

    def __init__(self, reader: NatsFeedReader, on_message: MessageHandler | None,
                 on_lost: Callable[[BaseException | None], None] | None,
                 after_read: Callable[[], None] | None = None) -> None:
        self.reader: NatsFeedReader = reader
        self._on_message = on_message
        self._on_lost = on_lost
        self._after_read = after_read
        self._transport: asyncio.Transport | None = None
        self._info: asyncio.Future[dict[str, Any]] | None = None
        self._pongs: deque[asyncio.Future[None]] = deque()
        self._next_sid = 0
        self._closed = False
        self._can_write: asyncio.Event = asyncio.Event()
        self._can_write.set()
        #: The server's INFO (max_payload, server_id, ...).
        self.info: dict[str, Any] = {}
        #: Why the link ended (None while open, or when closed by us).
        self.error: BaseException | None = None
        #: Bytes and messages published.
        self.out_bytes: int = 0
        self.out_msgs: int = 0

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    async def open(cls, url: str, *, name: str, reader: NatsFeedReader | None = None,
                   on_message: MessageHandler | None = None,
                   on_lost: Callable[[BaseException | None], None] | None = None,
                   after_read: Callable[[], None] | None = None,
                   timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None) -> NatsLink:
        """Connect, read INFO, send CONNECT and wait for the PONG of a PING (so the server
        accepted us); LinkError (with the cause) otherwise, within ``timeout``.
        ``on_message(sid, payload)`` gets each message the reader hands back,
        ``after_read()`` is called at the end of every socket read (the consumer flushes its
        feed handler there), ``on_lost(error)`` once when the connection ends."""
        host, port, tls, creds = parse_nats_url(url)
        loop = asyncio.get_running_loop()
        link = cls(reader or NatsFeedReader(None), on_message, on_lost, after_read)
        link._info = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(lambda: link, host, port)
                info = await link._info
                link.info = info
                if tls or info.get("tls_required"):
                    context = ssl_context or ssl.create_default_context()
                    link._transport = await loop.start_tls(  # type: ignore[assignment]
                        transport, link, context, server_hostname=host)
                connect = {"verbose": False, "pedantic": False, "lang": "python",
                           "version": "parsec_fast", "protocol": 1, "name": name,
                           "headers": False, "no_responders": False, "echo": True, **creds}
                link._write(b"CONNECT " + orjson.dumps(connect) + b"\r\n")
                await link.ping()
        except (OSError, asyncio.TimeoutError, LinkError) as exc:
            link.close()
            if isinstance(exc, LinkError):
                raise
            what = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            raise LinkError(f"cannot open a NATS connection to {host}:{port}: {what}") from exc
        return link

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio: keep ``transport`` and set its write high-water mark to 8 MiB."""
        self._transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=8 * 1024 * 1024)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        """asyncio: one socket read, parsed by the reader (fast messages go to its feed
        handler in C), the rest handled in order; a protocol error, an ``-ERR`` (but a
        permissions violation) or a raising callback fails the link. Then ``after_read()``,
        unless the link was closed."""
        if self._closed:
            return
        try:
            items = self.reader.receive(data)
            if items is not None:
                self._handle(items)
        except NatsProtocolError as exc:
            self._fail(LinkError(f"NATS protocol error: {exc}"))
        except Exception as exc:  # a feed-handler callback raised: drop, as the WebSocket does
            log.exception("relay link: error while handling a read")
            self._fail(LinkError(f"error while handling a read: {type(exc).__name__}: {exc}"))
        finally:
            if self._after_read is not None and not self._closed:
                self._after_read()

    def _handle(self, items: list[tuple[Any, ...]]) -> None:
        for item in items:
            op = item[0]
            if op == OP_MSG:
                if self._on_message is not None:
                    self._on_message(item[1], item[2])
            elif op == OP_PING:
                self._write(_PONG)
            elif op == OP_PONG:
                if self._pongs:
                    fut = self._pongs.popleft()
                    if not fut.done():
                        fut.set_result(None)
            elif op == OP_INFO:
                try:
                    info = orjson.loads(item[1][5:])
                except orjson.JSONDecodeError:
                    info = {}
                if self._info is not None and not self._info.done():
                    self._info.set_result(info)
                else:
                    self.info.update(info)
            elif op == OP_ERR:
                text = item[1].decode("utf-8", "replace")
                log.warning("NATS server error: %s", text)
                if "Permissions Violation" not in text:  # the others end the connection
                    self._fail(LinkError(f"NATS server: {text}"))
                    return
            elif op == OP_OK:
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio: the connection ended. Record why (unless closed by us), fail pending
        pings and the INFO wait, wake :meth:`drain` and call ``on_lost(error)`` once."""
        if self.error is None and not self._closed:
            self.error = LinkError("the NATS server closed the connection"
                                   + (f": {exc}" if exc else ""))
        self._closed = True
        self._can_write.set()
        for fut in self._pongs:
            if not fut.done():
                fut.set_exception(self.error or LinkError("NATS connection closed"))
                fut.exception()
        self._pongs.clear()
        if self._info is not None and not self._info.done():
            self._info.set_exception(self.error or LinkError("NATS connection closed"))
            self._info.exception()
        if self._on_lost is not None:
            callback, self._on_lost = self._on_lost, None
            callback(self.error)

    def pause_writing(self) -> None:
        """asyncio flow control: the write buffer passed its high-water mark; :meth:`drain`
        waits from now on."""
        self._can_write.clear()

    def resume_writing(self) -> None:
        """asyncio flow control: the write buffer drained; :meth:`drain` returns again."""
        self._can_write.set()

    # -- operations ---------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """True until the connection ends."""
        return not self._closed and self._transport is not None

    @property
    def max_payload(self) -> int:
        """The server's largest message (INFO ``max_payload``; 1 MiB by default)."""
        return int(self.info.get("max_payload", 1024 * 1024))

    @property
    def write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not self._closed:
            transport.write(data)

    def subscribe(self, subject: str) -> int:
        """SUB ``subject``; returns its sid (the reader's subscription number)."""
        self._next_sid += 1
        self._write(f"SUB {subject} {self._next_sid}\r\n".encode())
        return self._next_sid

    def unsubscribe(self, sid: int) -> None:
        """UNSUB one subscription (the reader forgets its state)."""
        self._write(f"UNSUB {sid}\r\n".encode())
        self.reader.set_slow(sid)

    def publish(self, subject: bytes, body: bytes, reply: bytes | None = None) -> bool:
        """PUB one message (one write); False when the link is closed."""
        transport = self._transport
        if transport is None or self._closed:
            return False
        if reply:
            head = b"PUB %s %s %d\r\n" % (subject, reply, len(body))
        else:
            head = b"PUB %s %d\r\n" % (subject, len(body))
        transport.writelines((head, body, b"\r\n"))
        self.out_bytes += len(body)
        self.out_msgs += 1
        return True

    def write_commands(self, data: bytes, messages: int, payload_bytes: int) -> bool:
        """Write pre-formatted PUB commands (``RelayTap.publish_batch``) in one write."""
        transport = self._transport
        if transport is None or self._closed:
            return False
        transport.write(data)
        self.out_bytes += payload_bytes
        self.out_msgs += messages
        return True

    async def ping(self, timeout: float = 5.0) -> None:
        """A PING/PONG round trip: everything written before it was processed by the server."""
        if self._closed:
            raise self.error or LinkError("NATS connection closed")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs.append(fut)
        self._write(_PING)
        await asyncio.wait_for(fut, timeout)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        await self._can_write.wait()

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        transport = self._transport
        if transport is not None:
            transport.abort()

    def close(self) -> None:
        """Close at once (buffered writes are flushed by the transport when it can)."""
        if self._closed:
            return
        self._closed = True
        transport = self._transport
        if transport is not None:
            transport.close()
        if self._on_lost is not None and transport is None:
            self._on_lost = None

    def abort(self) -> None:
        """Drop the connection without flushing."""
        self._closed = True
        transport = self._transport
        if transport is not None:
            transport.abort()
