"""The Python side of the receive path: where each report of the feed handler goes.

The compiled :class:`~parsec_fast._feed.FeedHandler` applies book frames itself and calls back
only for what Python must see. :class:`Router` owns those callbacks and sends each report to the
piece that acts on it: ``auth_ok``/``auth_error`` to the session, ``error`` and wallet snapshots
to the ledger (refusals, answered requests), book invalid/recovered to the ledger (resyncs,
waiters), and everything a user may listen to to the event bus — building an event only when
someone listens to its kind.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Optional

from .. import protocol
from .._feed import FeedHandler, Subscription
from .._histogram import LatencyHistogram
from ..codes import ErrorCode
from ..errors import AuthenticationError, ProtocolError
from ..events import (BookInvalid, BookRecovered, BookStateChanged, ProtocolErrorEvent,
                      new_book_updated)
from ..selectors import AddressSelector
from .bus import EventBus
from .ledger import SubscriptionLedger
from .transport import Transport

__all__ = ["Router", "MessageHook"]

log: logging.Logger = logging.getLogger("parsec_fast.client")

#: ``hook(message)`` for every parsed non-book message; see ``Client.set_message_hook``.
MessageHook = Callable[[dict[str, Any]], None]


class Router:
    """Installs itself as ``feed``'s callbacks; ``changed()`` is called when readiness may have
    changed (a book turned valid or invalid)."""

    def __init__(self, feed: FeedHandler, bus: EventBus, ledger: SubscriptionLedger,
                 session: Transport, changed: Callable[[], None]) -> None:
        self._bus = bus
        self._ledger = ledger
        self._session = session
        self._changed = changed
        #: Called with every parsed non-book message after it was routed (compat uses it).
        self.message_hook: Optional[MessageHook] = None
        #: Read-to-callback latencies (ns): from a book's read batch to the moment its
        #: ``book_updated`` event is handed to the bus (callbacks run at once), one per event.
        self.callback_latency: LatencyHistogram = LatencyHistogram()
        feed.on_message = self.message
        feed.on_book_updated = self.book_updated
        feed.on_book_state = self.book_state
        feed.on_protocol_error = self.protocol_error

    def book_updated(self, sub: Subscription) -> None:
        """A book changed in this read batch (coalesced: once per book per batch)."""
        if "book_updated" in self._bus.listening:
            # the batch's read time, kept by the feed handler per book (no work per delta)
            read_ns = sub.last_frame_ns
            seq: int = sub.book.seq  # type: ignore[assignment]  # valid: it was just applied
            event = new_book_updated(sub.parsec_id, sub.outcome, seq, read_ns)
            self.callback_latency.record_since(read_ns)
            self._bus.emit("book_updated", event)

    def book_state(self, sub: Subscription, what: str, reason: str) -> None:
        """A book turned invalid, recovered, or changed state (never coalesced)."""
        if what == "invalid":
            self._ledger.on_book_invalid(sub, reason)
            self._bus.emit("book_invalid", BookInvalid(sub.parsec_id, sub.outcome, reason))
            self._changed()
        elif what == "recovered":
            self._bus.emit("book_recovered", BookRecovered(sub.parsec_id, sub.outcome,
                                                           sub.book.seq))  # type: ignore[arg-type]
            self._ledger.check_waiters()
            self._changed()
        else:
            self._bus.emit("book_state", BookStateChanged(sub.parsec_id, sub.outcome, what, reason))

    def protocol_error(self, err: ProtocolError) -> None:
        """A frame that is not a valid protocol message."""
        log.warning("protocol error: %s", err)
        self._bus.emit("protocol_error", ProtocolErrorEvent(err))

    def _decode(self, obj: dict[str, Any]) -> Any:  # the Message its type says, or None
        try:
            return protocol.decode_message(obj)
        except ProtocolError as exc:
            self.protocol_error(exc)
            return None

    def message(self, obj: dict[str, Any]) -> None:
        """A parsed non-book message (the feed handler already did its book accounting)."""
        msg_type = obj.get("type")
        bus = self._bus
        if msg_type == "activity":
            kind = obj.get("kind")
            wanted = "trade" if kind == "trade" else "fill" if kind == "fill" else "unknown"
            if wanted in bus.listening and (event := self._decode(obj)) is not None:
                bus.emit(event.kind, event)
        elif msg_type == "heartbeat":
            if "heartbeat" in bus.listening and (event := self._decode(obj)) is not None:
                bus.emit("heartbeat", event)
        elif msg_type == "auth_ok":
            customer_id = obj.get("customer_id")
            self._session.auth_ok(customer_id if isinstance(customer_id, str) else "")
        elif msg_type == "auth_error":
            event = self._decode(obj)
            code = int(event.code) if event is not None else int(ErrorCode.INVALID_CREDENTIALS)
            message = event.message if event is not None else "auth_error"
            if event is not None:
                bus.emit("auth_error", event)
            self._session.auth_refused(AuthenticationError(code, message))
        elif msg_type == "error":
            if (event := self._decode(obj)) is not None:
                self._ledger.on_error(event, time.monotonic())
                bus.emit("error", event)
        elif msg_type == "wallet_activity":
            if (event := self._decode(obj)) is not None:
                try:
                    address = AddressSelector(event.exchange, event.address)
                except ValueError:  # an exchange this version does not list: just pass it on
                    pass
                else:
                    self._ledger.on_wallet_activity(address, time.monotonic())
                bus.emit("wallet_activity", event)
        elif msg_type == "slow_reader":
            if (event := self._decode(obj)) is not None:
                bus.emit("slow_reader", event)
        elif msg_type != "resync_required":  # resync_required: the book's invalid report acts
            if (event := self._decode(obj)) is not None:
                bus.emit(event.kind, event)
        hook = self.message_hook
        if hook is not None:
            hook(obj)
