"""The subscription ledger: what the user wants, what was asked of the server, what it answered.

No I/O: the ledger is a state machine driven by the client (``now`` is passed in, a ``schedule``
callback stands in for timers), so every decision of PROTOCOL.md §6 can be tested with a fake
clock. It owns:

* the *wants*: every market outcome and wallet the user subscribed to, each with where its
  request stands on the current connection (unsent, subscribe or resync in flight, answered);
* control-message planning: :meth:`SubscriptionLedger.next_message` builds the next
  ``unsubscribe`` / ``subscribe`` / ``resync`` from the state, at most ``control_rate`` per window
  (the :class:`~parsec_fast.ratelimit.RateLimiter` it owns);
* resync coalescing: more than ``coalesce_threshold`` books awaiting a resync at once are
  re-subscribed with ONE ``unsubscribe`` + ONE ``subscribe`` instead of a ``resync`` each;
* the server's refusals: 3001 (rate limited: retry what went unanswered after a full window),
  3002 (cap reached: the markets left unanswered are refused, no new market is subscribed until
  one is unsubscribed or a new connection), market-scoped errors (that market is refused);
* waiters of ``subscribe(wait=True)``, answered by each market's first snapshot or refusal;
* the safety net (:meth:`sweep`): requests unanswered after ``request_timeout`` are sent again,
  and an invalid book nothing is fixing is resynced.

A request is *answered* when its book received a snapshot (or a rejected one) after it was sent,
or an error naming its market arrived after it was sent.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .. import protocol
from .._feed import Subscription
from ..codes import ErrorCode
from ..errors import SubscriptionError, SubscriptionLimitError
from ..events import SubscriptionFailed
from ..messages import ErrorMessage
from ..ratelimit import RateLimiter
from ..rules import BookKey, book_key
from ..selectors import AddressSelector, MarketSelector

__all__ = ["SubscriptionLedger", "BookRegistry", "ControlMessage", "Waiter", "ControlKind"]

log: logging.Logger = logging.getLogger("parsec_fast.client")

ControlKind = Literal["subscribe", "unsubscribe", "resync"]


class BookRegistry(Protocol):
    """Where the ledger creates and drops books (the compiled FeedHandler)."""

    def add(self, parsec_id: str, outcome: str) -> Subscription:
        """The subscription (and book) of (parsec_id, outcome), created if new."""
        ...

    def remove(self, parsec_id: str, outcome: str) -> bool:
        """Drop the subscription and book of (parsec_id, outcome); True if there was one."""
        ...


class _Want:
    """One market outcome the user subscribed to, and where its request stands."""

    __slots__ = ("key", "selector", "sub", "requested_at", "request_kind", "mark", "on_server",
                 "error_at")

    def __init__(self, selector: MarketSelector, sub: Subscription) -> None:
        self.key = selector.key
        self.selector = selector          # with outcome and depth filled in, as sent
        self.sub = sub
        self.requested_at: float | None = None  # None: a subscribe must be sent
        self.request_kind: ControlKind = "subscribe"
        self.mark = 0                     # snapshots + rejected of the book when requested
        self.on_server = False            # a subscribe was sent on this connection
        self.error_at = -1.0

    @property
    def parsec_id(self) -> str:
        return self.sub.parsec_id

    @property
    def outcome(self) -> str:
        return self.sub.outcome


def _answers(sub: Subscription) -> int:
    stats = sub.book.stats
    return stats["snapshots"] + stats["rejected"]


@dataclass(slots=True)
class _SentOp:
    """One control message as planned: its kind, the books (``keys``) and addresses a refusal
    of it concerns (none for a coalesced unsubscribe: those books are subscribed again anyway),
    and ``sent_at``, the planning time (the ``requested_at`` of the books it subscribes or
    resyncs). The ledger keeps the last 512 sent, to tell what a 3001 or 3002 refused."""

    kind: ControlKind
    keys: list[BookKey]
    addresses: list[AddressSelector]
    sent_at: float
    #: unsubscribe only: the selectors sent, to send them again after a 3001
    selectors: dict[BookKey, MarketSelector] | None = None


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A control message the ledger wants sent now (``frame`` is the encoded JSON)."""

    kind: ControlKind
    frame: bytes
    op: _SentOp


class Waiter:
    """A ``subscribe(wait=True)`` waiting for each market's first snapshot or refusal;
    ``settle(None)`` or ``settle(error)`` is called once."""

    __slots__ = ("keys", "settle", "failures", "done")

    def __init__(self, keys: set[BookKey], settle: Callable[[BaseException | None], None]) -> None:
        self.keys: set[BookKey] = keys
        self.settle: Callable[[BaseException | None], None] = settle
        self.failures: dict[tuple[str, str], tuple[int, str]] = {}
        self.done: bool = False


class SubscriptionLedger:
    """See the module docstring. ``schedule(delay, fn)`` runs ``fn`` after ``delay`` seconds;
    ``wake()`` tells the sender there may be a message to send; ``on_failed(event)`` reports a
    refused market; ``on_book_added/removed(sub)`` follow the wants (the recorder uses them)."""

    def __init__(self, books: BookRegistry, limiter: RateLimiter, *,
                 schedule: Callable[[float, Callable[[], None]], object],
                 wake: Callable[[], None], on_failed: Callable[[SubscriptionFailed], None],
                 control_period: float, coalesce_threshold: int, request_timeout: float,
                 on_book_added: Callable[[Subscription], None] | None = None,
                 on_book_removed: Callable[[Subscription], None] | None = None) -> None:
        self._books = books
        self.limiter: RateLimiter = limiter
        self._schedule = schedule
        self._wake = wake
        self._on_failed = on_failed
        self._on_added = on_book_added
        self._on_removed = on_book_removed
        self.control_period: float = control_period
        self.coalesce_threshold: int = coalesce_threshold
        self.request_timeout: float = request_timeout
        self.connected: bool = False
        self._wants: dict[BookKey, _Want] = {}
        self._addresses: dict[AddressSelector, float | None] = {}  # -> requested_at
        self._address_answered: dict[AddressSelector, float] = {}
        self._to_unsub: dict[BookKey, MarketSelector] = {}
        self._unsub_addresses: set[AddressSelector] = set()
        self._resync_pending: dict[BookKey, None] = {}  # ordered set
        self._capped: ErrorMessage | None = None
        self._sent_ops: deque[_SentOp] = deque(maxlen=512)
        self._waiters: list[Waiter] = []
        #: (time, kind) of every control message sent (the last 10,000).
        self.control_log: deque[tuple[float, ControlKind]] = deque(maxlen=10_000)
        #: Control messages sent, by kind.
        self.sent_counts: dict[ControlKind, int] = {"subscribe": 0, "unsubscribe": 0, "resync": 0}
        self.coalesced: int = 0
        self.rate_limited: int = 0
        self.limit_reached: int = 0

    # -- what is wanted ---------------------------------------------------------------------------
    def subscriptions(self) -> list[Subscription]:
        """Every wanted market outcome's Subscription, in subscription order."""
        return [w.sub for w in self._wants.values()]

    def subscription(self, key: BookKey) -> Subscription | None:
        """The Subscription of a wanted book (None if not wanted)."""
        want = self._wants.get(key)
        return None if want is None else want.sub

    @property
    def addresses(self) -> list[AddressSelector]:
        """Wanted wallet addresses."""
        return list(self._addresses)

    def all_valid(self) -> bool:
        """Every wanted book is valid."""
        return all(w.sub.book.is_valid for w in self._wants.values())

    def add(self, selectors: Sequence[MarketSelector],
            addresses: Sequence[AddressSelector]) -> list[Subscription]:
        """Want these markets (selectors with their defaults filled in) and addresses; returns
        their Subscriptions in order. Raises SubscriptionLimitError at once, adding nothing,
        while the account's cap is known to be reached and something new is asked for."""
        new_keys = {s.key for s in selectors if s.key not in self._wants}
        if self._capped is not None and (new_keys or any(a not in self._addresses
                                                         for a in addresses)):
            failures = {(s.canonical_id, s.outcome_or_default):
                        (int(self._capped.code), self._capped.message)
                        for s in selectors if s.key in new_keys}
            raise SubscriptionLimitError(failures)
        subs = []
        for sel in selectors:
            want = self._wants.get(sel.key)
            if want is None:
                want = _Want(sel, self._books.add(sel.canonical_id, sel.outcome_or_default))
                self._wants[sel.key] = want
                if self._on_added is not None:
                    self._on_added(want.sub)
            elif want.selector != sel:  # new depth (or form): subscribe again
                want.selector = sel
                want.requested_at = None
            self._resync_pending.pop(sel.key, None)
            subs.append(want.sub)
        for address in addresses:
            if address not in self._addresses:
                self._addresses[address] = None
            self._unsub_addresses.discard(address)
        self._wake()
        return subs

    def remove(self, selectors: Iterable[MarketSelector],
               addresses: Iterable[AddressSelector]) -> None:
        """Stop wanting these markets (their books are dropped at once) and addresses."""
        for sel in selectors:
            want = self._wants.pop(sel.key, None)
            if want is None:
                continue
            self._forget(want)
            if want.on_server:
                self._to_unsub[sel.key] = want.selector.without_depth()
        for address in addresses:
            if self._addresses.pop(address, "absent") != "absent":
                self._unsub_addresses.add(address)
        self._capped = None  # a slot may be free again
        self._wake()
        self.check_waiters()

    def _forget(self, want: _Want) -> None:
        self._books.remove(want.parsec_id, want.outcome)
        self._resync_pending.pop(want.key, None)
        if self._on_removed is not None:
            self._on_removed(want.sub)

    def _fail(self, want: _Want, code: int, message: str) -> None:
        """The server refused this market: drop it, report it, fail its waiters."""
        if self._wants.get(want.key) is not want:
            return
        del self._wants[want.key]
        self._forget(want)
        log.warning("subscription %s/%s refused: %s %s", want.parsec_id, want.outcome, code,
                    message)
        for waiter in self._waiters:
            if want.key in waiter.keys:
                waiter.failures[(want.parsec_id, want.outcome)] = (code, message)
        self._on_failed(SubscriptionFailed(want.parsec_id, want.outcome, code, message))
        self.check_waiters()

    # -- waiters ----------------------------------------------------------------------------------
    def add_waiter(self, keys: set[BookKey],
                   settle: Callable[[BaseException | None], None]) -> Waiter:
        """Wait until each of ``keys`` has a valid book or was refused."""
        waiter = Waiter(keys, settle)
        self._waiters.append(waiter)
        self.check_waiters()
        return waiter

    def discard_waiter(self, waiter: Waiter) -> None:
        """Forget a waiter (its caller stopped waiting)."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def check_waiters(self) -> None:
        """Settle every waiter whose markets are all valid or refused."""
        for waiter in list(self._waiters):
            if waiter.done:
                continue
            pending = any((want := self._wants.get(key)) is not None and not want.sub.book.is_valid
                          for key in waiter.keys)
            if pending:
                continue
            waiter.done = True
            self._waiters.remove(waiter)
            if waiter.failures:
                limit = any(code == ErrorCode.MAX_SUBSCRIPTIONS
                            for code, _ in waiter.failures.values())
                cls = SubscriptionLimitError if limit else SubscriptionError
                waiter.settle(cls(dict(waiter.failures)))
            else:
                waiter.settle(None)

    def fail_waiters(self, error: BaseException) -> None:
        """Settle every waiter with ``error`` (the client closed)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done:
                waiter.done = True
                waiter.settle(error)

    # -- connection -------------------------------------------------------------------------------
    def on_connected(self) -> None:
        """A new connection authenticated: everything wanted goes out in one batched subscribe."""
        self.connected = True
        self._capped = None
        for want in self._wants.values():
            want.requested_at = None
            want.on_server = False
        for address in self._addresses:
            self._addresses[address] = None
        self._to_unsub.clear()
        self._unsub_addresses.clear()
        self._resync_pending.clear()
        self._wake()

    def on_disconnected(self) -> None:
        """The connection ended: nothing in flight any more."""
        self.connected = False
        self._resync_pending.clear()

    # -- book events ------------------------------------------------------------------------------
    def on_book_invalid(self, sub: Subscription, reason: str) -> None:
        """A book turned invalid: resync it, unless a subscribe is due anyway or its request is
        still in flight (but ``resync_required`` means the server waits for a resync)."""
        if reason == "disconnected" or not self.connected:
            return
        want = self._wants.get(book_key(sub.parsec_id, sub.outcome))
        if want is not None and want.requested_at is not None and (
                reason == "resync_required" or self._answered(want)):
            self._resync_pending[want.key] = None
            self._wake()

    def on_wallet_activity(self, address: AddressSelector, now: float) -> None:
        """A wallet snapshot arrived: its subscribe was answered."""
        self._address_answered[address] = now

    def _answered(self, want: _Want) -> bool:
        if want.requested_at is None:
            return False
        return _answers(want.sub) > want.mark or want.error_at >= want.requested_at

    def _request(self, want: _Want, kind: ControlKind, now: float) -> None:
        want.requested_at = now
        want.request_kind = kind
        want.mark = _answers(want.sub)
        if kind == "subscribe":
            want.on_server = True

    # -- errors -----------------------------------------------------------------------------------
    def on_error(self, event: ErrorMessage, now: float) -> None:
        """A server ``error`` frame (PROTOCOL.md §6.7)."""
        code = int(event.code)
        if code == ErrorCode.RATE_LIMITED:
            self.rate_limited += 1
            log.warning("control message rate limited (3001): retrying after %.2f s",
                        self.control_period)
            self.limiter.penalize(self.control_period)
            self._schedule(self.control_period, lambda: self._retry_unanswered(now))
        elif code == ErrorCode.MAX_SUBSCRIPTIONS:
            self.limit_reached += 1
            if self._capped is None:
                log.warning("subscription limit reached (3002): %s", event.message)
                self._capped = event
            self._schedule(self.control_period, lambda: self._settle_cap(now, event))
        elif event.parsec_id is not None:
            for want in [w for w in self._wants.values() if w.parsec_id == event.parsec_id]:
                if want.requested_at is None or self._answered(want):
                    continue
                want.error_at = now
                if want.request_kind == "resync" and code == ErrorCode.INVALID_MESSAGE:
                    want.requested_at = None  # the server forgot it ("not subscribed")
                    self._wake()
                else:
                    self._fail(want, code, event.message)

    @property
    def capped(self) -> ErrorMessage | None:
        """The 3002 error while the account's cap is known to be reached, else None."""
        return self._capped

    def _retry_unanswered(self, arrival: float) -> None:
        """After a 3001: send again whatever the server may have refused around ``arrival``
        (subscribes/resyncs still unanswered, unsubscribes of markets still unwanted)."""
        horizon = arrival - 2 * self.control_period - 1.0
        for op in self._sent_ops:
            if not horizon <= op.sent_at <= arrival:
                continue
            if op.kind == "unsubscribe":
                for key, selector in (op.selectors or {}).items():
                    if key not in self._wants:
                        self._to_unsub[key] = selector
                for address in op.addresses:
                    if address not in self._addresses:
                        self._unsub_addresses.add(address)
                continue
            for key in op.keys:
                want = self._wants.get(key)
                if want is None or want.requested_at != op.sent_at or self._answered(want):
                    continue
                if op.kind == "resync":
                    self._resync_pending[key] = None
                else:
                    want.requested_at = None
            for address in op.addresses:
                if self._addresses.get(address) == op.sent_at and \
                        self._address_answered.get(address, -1.0) < op.sent_at:
                    self._addresses[address] = None
        self._wake()

    def _settle_cap(self, arrival: float, error: ErrorMessage) -> None:
        """After a 3002: markets subscribed before it and still unanswered were refused, and so
        are markets waiting to be (re-)subscribed (e.g. reset by the sweep after
        ``request_timeout``): nothing is sent while the cap is reached."""
        if self._capped is not None:
            for want in [w for w in self._wants.values() if w.requested_at is None]:
                self._fail(want, int(error.code), error.message)
        for op in list(self._sent_ops):
            if op.kind != "subscribe" or op.sent_at > arrival:
                continue
            for key in op.keys:
                want = self._wants.get(key)
                if want is not None and want.requested_at == op.sent_at and \
                        not self._answered(want):
                    self._fail(want, int(error.code), error.message)
            for address in op.addresses:
                if self._addresses.get(address) == op.sent_at and \
                        self._address_answered.get(address, -1.0) < op.sent_at:
                    del self._addresses[address]
                    self._on_failed(SubscriptionFailed(f"{address.exchange}:{address.address}",
                                                       "", int(error.code), error.message))

    # -- control messages -------------------------------------------------------------------------
    def has_work(self) -> bool:
        """Whether a control message is due (connected or not)."""
        if self._to_unsub or self._unsub_addresses or self._resync_pending:
            return True
        return self._capped is None and (any(w.requested_at is None for w in self._wants.values())
                                         or any(t is None for t in self._addresses.values()))

    def next_message(self, now: float) -> ControlMessage | None:
        """Plan the next control message from the state (None if nothing to do); the request
        state is updated as if it were sent now: call :meth:`mark_sent` once it is."""
        if self._to_unsub or self._unsub_addresses:
            addresses = list(self._unsub_addresses)
            frame = protocol.unsubscribe(list(self._to_unsub.values()), addresses)
            op = _SentOp("unsubscribe", list(self._to_unsub), addresses, now, dict(self._to_unsub))
            self._to_unsub.clear()
            self._unsub_addresses.clear()
            return ControlMessage("unsubscribe", frame, op)
        if self._capped is None:
            wants = [w for w in self._wants.values() if w.requested_at is None]
            addresses = [a for a, t in self._addresses.items() if t is None]
            if wants or addresses:
                for want in wants:
                    self._request(want, "subscribe", now)
                    self._resync_pending.pop(want.key, None)
                for address in addresses:
                    self._addresses[address] = now
                frame = protocol.subscribe([w.selector for w in wants], addresses)
                return ControlMessage("subscribe", frame,
                                      _SentOp("subscribe", [w.key for w in wants], addresses, now))
        pending = [self._wants[k] for k in self._resync_pending
                   if k in self._wants and self._wants[k].requested_at is not None]
        self._resync_pending.clear()
        if not pending:
            return None
        if len(pending) > self.coalesce_threshold and self._capped is None:
            # Many books at once: ONE unsubscribe now, ONE subscribe next (they are marked
            # unrequested), rather than one resync each behind the rate limit.
            self.coalesced += 1
            for want in pending:
                want.requested_at = None
            frame = protocol.unsubscribe([w.selector.without_depth() for w in pending])
            return ControlMessage("unsubscribe", frame, _SentOp("unsubscribe", [], [], now))
        want, rest = pending[0], pending[1:]
        for other in rest:
            self._resync_pending[other.key] = None
        self._request(want, "resync", now)
        frame = protocol.resync(want.selector.without_depth())
        return ControlMessage("resync", frame, _SentOp("resync", [want.key], [], now))

    def mark_sent(self, message: ControlMessage, now: float) -> None:
        """``message`` went out at ``now``."""
        self.sent_counts[message.kind] += 1
        self._sent_ops.append(message.op)
        self.control_log.append((now, message.kind))

    # -- safety net -------------------------------------------------------------------------------
    def sweep(self, now: float) -> None:
        """Re-request what went unanswered too long; resync invalid books that nothing is fixing
        (e.g. an invalid report the ledger could not act on)."""
        woke = False
        for want in self._wants.values():
            if want.requested_at is None or want.key in self._resync_pending:
                continue
            if not self._answered(want):
                if now - want.requested_at > self.request_timeout:
                    if want.request_kind == "resync":
                        self._resync_pending[want.key] = None
                    else:
                        want.requested_at = None
                    woke = True
            elif not want.sub.book.is_valid:
                self._resync_pending[want.key] = None
                woke = True
        if woke:
            self._wake()

