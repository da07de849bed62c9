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


def get_include() -> str:
    """The directory of the compiled core's Cython API: its ``.pxd`` files and C headers.

    For Cython code that uses the core at C level, with no Python call in between (``from
    parsec_fast._book cimport Book``, then ``book.raw_apply_delta(...)``, ``book.n_applied``):
    pass this directory as the extension's ``include_dirs``, so the C compiler finds the headers
    the ``.pxd`` files declare their C from (``_shm.pxd``: ``_shm_c.h``)::

        Extension("strategy", ["strategy.pyx"], include_dirs=[parsec_fast.get_include()])

    (``cythonize`` adds a header's directory by itself when it finds the header beside the
    ``.pxd``; the ``cython`` command line and other build systems do not.)

    Installed (a wheel, or pip from the sdist), it is the package's own directory, where Cython
    finds the ``.pxd`` files on ``sys.path`` by itself. In a source checkout (an editable install
    or ``build_ext --inplace``) the API stays where the core is built from,
    ``src/_core/parsec_fast/``, and that is returned; Cython then needs the parent directory as
    well: ``cythonize(..., include_path=[os.path.dirname(parsec_fast.get_include())])``.

    The ``.pxd`` files describe the compiled modules of this very installation (the C layout of
    their objects, their methods' order): an extension that cimports them is bound to this build
    of parsec_fast, as parsec_fast is to picows's; rebuild it whenever parsec_fast is upgraded.
    """
    import os

    package = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.join(os.path.dirname(package), "_core", "parsec_fast")
    if (not os.path.isfile(os.path.join(package, "_book.pxd"))
            and os.path.isfile(os.path.join(checkout, "_book.pxd"))):
        return checkout
    return package


__all__ = [
    "__version__", "get_include",
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
