"""Exceptions raised by parsec_fast.

Every error names the field at fault and the offending value (data errors), or the phase that
failed and the underlying cause (connection errors), so a log line is enough to act on it.

::

    ParsecError
    ├── BookDataError (ValueError)        data that would corrupt a book
    ├── ProtocolError (ValueError)        a frame that is not a valid protocol message
    ├── AuthenticationError               the server refused the credential (fatal)
    ├── SubscriptionError                 the server refused some markets
    │   └── SubscriptionLimitError        ... because the account's cap was reached (3002)
    └── ParsecConnectionError (ConnectionError)   could not open or keep a connection
        ├── DNSError                      the host name did not resolve
        ├── ConnectRefusedError           TCP connect refused or unreachable
        ├── ConnectTimeoutError (TimeoutError)    TCP connect did not complete in time
        ├── TLSError                      TLS handshake failed (certificate, protocol)
        ├── HandshakeTimeoutError (TimeoutError)  the server accepted the connection but
        │                                         never answered the WebSocket handshake
        ├── HandshakeRejectedError        the server answered the handshake with an HTTP error
        ├── AuthTimeoutError (TimeoutError)       no auth_ok within auth_timeout
        ├── ConnectionClosedError         the server closed the connection
        ├── DeadConnectionError           no frame for too long (silent connection)
        └── MessageTooLargeError          the server sent one message over the size cap
"""
from __future__ import annotations

import reprlib

import orjson

__all__ = ["ParsecError", "BookDataError", "ProtocolError", "AuthenticationError",
           "SubscriptionError", "SubscriptionLimitError", "ParsecConnectionError", "DNSError",
           "ConnectRefusedError", "ConnectTimeoutError", "TLSError", "HandshakeTimeoutError",
           "HandshakeRejectedError", "AuthTimeoutError", "ConnectionClosedError",
           "DeadConnectionError", "MessageTooLargeError", "SNIPPET_BYTES", "frame_snippet"]

#: How much of a bad frame a ProtocolError quotes.
SNIPPET_BYTES = 80


class ParsecError(Exception):
    """Base class of the errors parsec_fast raises on purpose."""


class BookDataError(ParsecError, ValueError):
    """Data that would corrupt a book (bad price, size, side, type, order, or too many levels).

    Raised by ``Book.apply_snapshot``, ``Book.apply_delta`` and ``Book.set_level`` (and the
    feed handler on their behalf). The operation that raised it changed no level; a rejected
    snapshot or delta also marks the book invalid, because its stream has lost an update.
    """


def frame_snippet(frame: object) -> str:
    """The first :data:`SNIPPET_BYTES` of a frame (raw bytes/str, or a parsed object
    re-serialised), as quoted by :class:`ProtocolError`."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        head = bytes(frame[:SNIPPET_BYTES])
        more = len(frame) > SNIPPET_BYTES
    elif isinstance(frame, str):
        head = frame[:SNIPPET_BYTES]  # type: ignore[assignment]
        more = len(frame) > SNIPPET_BYTES
    else:
        try:
            dumped = orjson.dumps(frame)
        except (TypeError, orjson.JSONEncodeError):  # not JSON-able, or nested too deep
            return reprlib.repr(frame)
        head = dumped[:SNIPPET_BYTES]
        more = len(dumped) > SNIPPET_BYTES
    return f"{head!r}{'...' if more else ''}"


class ProtocolError(ParsecError, ValueError):
    """A frame that is not a valid Parsec protocol message (not JSON, not an object, no ``type``,
    a field of the wrong type). The message carries the reason and the first bytes of the frame."""

    @classmethod
    def for_frame(cls, reason: str, frame: object) -> ProtocolError:
        """``ProtocolError("<reason>; frame: <first bytes>")``."""
        return cls(f"{reason}; frame: {frame_snippet(frame)}")


class AuthenticationError(ParsecError):
    """The server refused the API key or terminal token (``auth_error``).

    Fatal: the client never reconnects with a refused credential. ``code`` is the error code
    of the ``auth_error`` frame (1002 for a bad key or token).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"authentication failed ({code}): {message}")
        self.code: int = code
        self.message: str = message


class SubscriptionError(ParsecError):
    """Some markets of a ``subscribe`` call were refused by the server.

    ``failures`` maps each refused ``(parsec_id, outcome)`` to the server's ``(code, message)``;
    the markets that were accepted stay subscribed.
    """

    def __init__(self, failures: dict[tuple[str, str], tuple[int, str]]) -> None:
        listed = ", ".join(f"{pid}/{out}: {code} {msg}" for (pid, out), (code, msg) in failures.items())
        super().__init__(f"subscription refused: {listed}")
        self.failures: dict[tuple[str, str], tuple[int, str]] = failures


class SubscriptionLimitError(SubscriptionError):
    """The account's subscription cap was reached (error 3002): the client stops subscribing
    new markets until one is unsubscribed or the connection is re-established."""


class ParsecConnectionError(ParsecError, ConnectionError):
    """The client could not open a connection, or lost it.

    ``url`` is the server's URL; ``cause`` is the underlying exception (also ``__cause__``),
    or None when there is none (e.g. a silent server). The subclass says what failed and
    ``phase`` when: ``"dns"``, ``"tcp"``, ``"tls"``, ``"websocket"`` (the HTTP upgrade),
    ``"auth"`` (open, waiting for ``auth_ok``) or ``"session"`` (after ``auth_ok``).
    """

    #: The phase this kind of failure happens in (an instance may say otherwise).
    default_phase: str = "session"

    def __init__(self, message: str, *, url: str | None = None,
                 cause: BaseException | None = None, phase: str | None = None) -> None:
        where = f" ({url})" if url else ""
        because = f": {type(cause).__name__}: {cause}" if cause is not None and str(cause) else (
            f": {type(cause).__name__}" if cause is not None else "")
        super().__init__(f"{message}{where}{because}")
        self.url: str | None = url
        self.cause: BaseException | None = cause
        self.phase: str = phase or self.default_phase
        self.__cause__ = cause


class DNSError(ParsecConnectionError):
    """The server's host name did not resolve (no network, a typo, a DNS outage)."""

    default_phase = "dns"


class ConnectRefusedError(ParsecConnectionError):
    """The TCP connection was refused or the host is unreachable (nothing listens there)."""

    default_phase = "tcp"


class ConnectTimeoutError(ParsecConnectionError, TimeoutError):
    """The TCP connection did not complete within ``connect_timeout`` (a firewall dropping
    packets, a host that is down)."""

    default_phase = "tcp"


class TLSError(ParsecConnectionError):
    """The TLS handshake failed: certificate verification, protocol mismatch, or timeout."""

    default_phase = "tls"


class HandshakeTimeoutError(ParsecConnectionError, TimeoutError):
    """The server accepted the connection but never answered the WebSocket handshake."""

    default_phase = "websocket"


class HandshakeRejectedError(ParsecConnectionError):
    """The server answered the WebSocket handshake with an HTTP error (``status``, e.g. 404 for
    a wrong path)."""

    default_phase = "websocket"

    def __init__(self, message: str, *, url: str | None = None,
                 cause: BaseException | None = None, phase: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, url=url, cause=cause, phase=phase)
        self.status: int | None = status


class AuthTimeoutError(ParsecConnectionError, TimeoutError):
    """The WebSocket opened but no ``auth_ok`` (nor ``auth_error``) came within
    ``auth_timeout``."""

    default_phase = "auth"


class ConnectionClosedError(ParsecConnectionError):
    """The server closed the connection (``reason`` as far as it is known)."""


class DeadConnectionError(ParsecConnectionError):
    """No frame arrived for ``dead_after × heartbeat_interval`` seconds: the connection is
    silent (a dead peer or network); the client drops it and reconnects."""


class MessageTooLargeError(ParsecConnectionError):
    """The server sent one message larger than the client's cap (``max_message_size``): the
    client drops the connection rather than buffer it, and reconnects."""
