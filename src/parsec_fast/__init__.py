"""parsec_fast: live Parsec order books at native speed.

``from parsec_fast import Book`` gives the compiled book; ``parsec_fast.reference.Book`` is its
pure-Python twin with the same API.
"""
from __future__ import annotations

from .book_api import DeltaResult
from .errors import BookDataError, ParsecError, ProtocolError
from ._book import Book

__version__ = "0.1.0"

__all__ = ["Book", "DeltaResult", "BookDataError", "ProtocolError", "ParsecError", "__version__"]
