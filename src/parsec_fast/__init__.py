"""parsec_fast: live Parsec order books at native speed.

``from parsec_fast import Book`` gives the compiled book; ``parsec_fast.reference.Book`` is its
pure-Python twin with the same API.
"""
from __future__ import annotations

from .book_api import DeltaResult
from .errors import (AuthenticationError, BookDataError, ParsecError, ProtocolError,
                     SubscriptionError, SubscriptionLimitError)
from ._book import Book
from .client import Client, ClientMetrics, EventStream, run
from .client_events import (BookInvalid, BookRecovered, BookStateChanged, BookUpdated, Connected,
                            Disconnected, EventsDropped, ProtocolErrorEvent, Reconnecting,
                            SubscriptionFailed)
from .recording import Replayer

__version__ = "0.1.0"

__all__ = ["Book", "DeltaResult", "BookDataError", "ProtocolError", "ParsecError", "__version__",
           "Client", "ClientMetrics", "EventStream", "run", "AuthenticationError",
           "SubscriptionError", "SubscriptionLimitError", "BookUpdated", "BookInvalid",
           "BookRecovered", "BookStateChanged", "Connected", "Disconnected", "Reconnecting",
           "SubscriptionFailed", "ProtocolErrorEvent", "EventsDropped", "Replayer"]
