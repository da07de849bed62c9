"""parsec_fast: live Parsec order books at native speed.

``from parsec_fast import Book`` gives the compiled book; ``parsec_fast.reference.Book`` is its
pure-Python twin with the same API and the same rules (:mod:`parsec_fast.rules`).
:class:`Client` holds live books from a Parsec WebSocket; every event it delivers is a member of
:data:`Event`, discriminated by ``kind``. :mod:`parsec_fast.shared` shares one engine process's
books with any number of reader processes on the host (shared memory).
"""
from __future__ import annotations

from ._book import Book
from ._feed import FeedHandler, Subscription
from .client import Client, ClientConfig, ClientMetrics, EventStream, run
from .errors import (AuthenticationError, AuthTimeoutError, BookDataError, ConnectionClosedError,
                     ConnectRefusedError, ConnectTimeoutError, DeadConnectionError, DNSError,
                     HandshakeRejectedError, HandshakeTimeoutError, MessageTooLargeError,
                     ParsecConnectionError, ParsecError, ProtocolError, SubscriptionError,
                     SubscriptionLimitError, TLSError)
from .events import (AuthError, BookInvalid, BookRecovered, BookStateChanged, BookUpdated,
                     Connected, Disconnected, ErrorMessage, Event, EventKind, EventsDropped, Fill,
                     Heartbeat, ProtocolErrorEvent, Reconnecting, SlowReader, SubscriptionFailed,
                     Trade, UnknownMessage, WalletActivity)
from .recording import Replayer
from .rules import DeltaResult
from .selectors import AddressSelector, MarketSelector
from .shared import PublisherGoneError, SharedBook, SharedBooks
from . import shared

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # books
    "Book", "DeltaResult", "Subscription", "FeedHandler",
    # client
    "Client", "ClientConfig", "ClientMetrics", "EventStream", "run", "MarketSelector",
    "AddressSelector", "Replayer",
    # shared-memory books (parsec_fast.shared.publish / attach)
    "shared", "SharedBooks", "SharedBook", "PublisherGoneError",
    # events
    "Event", "EventKind", "BookUpdated", "BookInvalid", "BookRecovered", "BookStateChanged",
    "Trade", "Fill", "WalletActivity", "Heartbeat", "SlowReader", "ErrorMessage", "AuthError",
    "SubscriptionFailed", "UnknownMessage", "ProtocolErrorEvent", "Connected", "Disconnected",
    "Reconnecting", "EventsDropped",
    # errors
    "ParsecError", "BookDataError", "ProtocolError", "AuthenticationError", "SubscriptionError",
    "SubscriptionLimitError", "ParsecConnectionError", "DNSError", "ConnectRefusedError",
    "ConnectTimeoutError", "TLSError", "HandshakeTimeoutError", "HandshakeRejectedError",
    "AuthTimeoutError", "ConnectionClosedError", "DeadConnectionError", "MessageTooLargeError",
]
