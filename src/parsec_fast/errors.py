"""Exceptions raised by parsec_fast.

Every error names the field at fault and the offending value, so a log line is enough to
find the frame or call that caused it.
"""
from __future__ import annotations

__all__ = ["ParsecError", "BookDataError", "ProtocolError", "AuthenticationError",
           "SubscriptionError", "SubscriptionLimitError"]


class ParsecError(Exception):
    """Base class of the errors parsec_fast raises on purpose."""


class BookDataError(ParsecError, ValueError):
    """Data that would corrupt a book (bad price, size, side, type, order, or too many levels).

    Raised by ``Book.apply_snapshot``, ``Book.apply_delta`` and ``Book.set_level`` (and the
    feed handler on their behalf). The operation that raised it changed no level; a rejected
    snapshot or delta also marks the book invalid, because its stream has lost an update.
    """


class ProtocolError(ParsecError, ValueError):
    """A frame that is not a valid Parsec protocol message (not JSON, not an object, no ``type``,
    a field of the wrong type). The message carries the reason and the first bytes of the frame."""


class AuthenticationError(ParsecError):
    """The server refused the API key or terminal token (``auth_error``).

    Fatal: the client never reconnects with a refused credential. ``code`` is the error code
    of the ``auth_error`` frame (1002 for a bad key or token).
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"authentication failed ({code}): {message}")
        self.code = code
        self.message = message


class SubscriptionError(ParsecError):
    """Some markets of a ``subscribe`` call were refused by the server.

    ``failures`` maps each refused ``(parsec_id, outcome)`` to the server's ``(code, message)``;
    the markets that were accepted stay subscribed.
    """

    def __init__(self, failures: dict[tuple[str, str], tuple[int, str]]) -> None:
        listed = ", ".join(f"{pid}/{out}: {code} {msg}" for (pid, out), (code, msg) in failures.items())
        super().__init__(f"subscription refused: {listed}")
        self.failures = failures


class SubscriptionLimitError(SubscriptionError):
    """The account's subscription cap was reached (error 3002): the client stops subscribing
    new markets until one is unsubscribed or the connection is re-established."""
