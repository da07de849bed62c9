"""Exceptions raised by parsec_fast.

Every error names the field at fault and the offending value, so a log line is enough to
find the frame or call that caused it.
"""
from __future__ import annotations

__all__ = ["ParsecError", "BookDataError", "ProtocolError"]


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
