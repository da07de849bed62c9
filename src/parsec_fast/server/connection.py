"""One client connection of the local server: auth, control messages, subscriptions, sequence
counters, frame faults and market-data back-pressure.

Everything runs on the event loop thread. :class:`Connection` derives from
:class:`~parsec_fast.server.link.Link`, which owns the transport and the limits every frame and
every message is held to (send budget, message size, refused messages, closing on time); this
module is the Parsec protocol on top. It reaches the rest of the server only through its
:class:`~parsec_fast.server.context.ServerContext`.

Bounded work per message (PROTOCOL.md §5 caps subscriptions per account):

- Duplicate names in one subscribe / unsubscribe (the same (parsec_id, canonical outcome), the
  same address, or the same error) are answered once.
- At most the tier's cap of distinct names is looked at; when a message names more, the excess
  is answered by ONE 3002 ``"max subscriptions reached (limit: N, tier: T)"`` — with
  ``over_cap_policy="refuse"`` the whole message is refused by it. Within the cap each market is
  answered as before: a snapshot, or its own error (3002 once the account is full).
- Selectors are resolved and snapshots built in slices (:data:`SNAPSHOTS_PER_SLICE`), the loop
  serving other connections between slices, and each snapshot slice waiting for this
  connection's send buffer to drain below the soft limit.

Market data keeps its documented thresholds (PROTOCOL.md §3): ``slow_reader`` past
``soft_buffer_limit``; past ``hard_buffer_limit`` deltas are withheld and ``resync_required`` is
sent; the send budget (``disconnect_buffer_limit``) still ends a reader that never drains.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Any

import orjson
from picows import WSCloseCode

from ..codes import ErrorCode
from .context import ServerContext
from .control import BadRequest, ControlRateLimiter, Plan, message_lists, plan_selectors, \
    resolve_selector
from .frames import activity_frame, delta_frame, snapshot_frame
from .link import DRAIN, Job, Link
from .recorder import ConnectionRecord
from .simulator import WireChange, customer_id_for
from .subscription import BookKey, Subscription

__all__ = ["Connection", "Subscription", "BookKey", "SNAPSHOTS_PER_SLICE"]

_CONTROL = ("subscribe", "unsubscribe", "resync")
#: Snapshots built and sent between two yields of a subscribe (about 1 ms at depth 100).
SNAPSHOTS_PER_SLICE = 32


class Connection(Link):
    """Server side of one WebSocket connection (a picows listener)."""

    def __init__(self, context: ServerContext, conn_id: int) -> None:
        super().__init__(context.config, conn_id, context.aborted)
        self.context: ServerContext = context
        self.account: str | None = None
        self.customer_id: str | None = None
        self.auth_failed: bool = False
        self.subs: dict[BookKey, Subscription] = {}
        self.addresses: set[tuple[str, str]] = set()
        #: Past the hard limit: subscriptions were told resync_required; cleared when drained.
        self.overloaded: bool = False
        #: Counters for tests and the demo.
        self.slow_reader_events: int = 0
        self.overload_events: int = 0
        self._limiter = ControlRateLimiter(self.config.control_rate, self.config.control_window)
        self._seq: dict[BookKey, int] = {}
        self._activity_seq: dict[BookKey, int] = {}
        self._auth_timer: asyncio.TimerHandle | None = None

    @property
    def authenticated(self) -> bool:
        """True after ``auth_ok``."""
        return self.account is not None

    @property
    def closed_slow(self) -> bool:
        """True when aborted for passing the send budget (``disconnect_buffer_limit``)."""
        return self.abort_reason == "send_buffer"

    # -- Link hooks ----------------------------------------------------------------------------
    def link_opened(self) -> None:
        """Start the connection's recording (when the server records) and its auth timer
        (``auth_timeout``), and register it with the server's registry."""
        if self.context.recorder is not None:
            self.record: ConnectionRecord | None = self.context.recorder.open(self.conn_id)
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(self.config.auth_timeout, self._on_auth_timeout)
        self.context.registry.register(self)

    def link_closed(self) -> None:
        """Cancel the auth timer and unregister the connection with every subscription it
        held."""
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        self.context.registry.unregister(self)

    def send_buffer_high(self) -> None:
        """Past ``soft_buffer_limit``: count a slow-reader event and send ``slow_reader`` for
        each subscription not already waiting for a resync (PROTOCOL.md §3)."""
        self.slow_reader_events += 1
        for sub in list(self.subs.values()):
            if not sub.awaiting_resync:
                self.send_obj({"type": "slow_reader", "parsec_id": sub.market.parsec_id,
                               "outcome": sub.outcome})

    def send_buffer_low(self) -> None:
        """The buffer drained: clear ``overloaded``, so passing ``hard_buffer_limit`` again
        counts as a new overload. Withheld subscriptions stay so until the client resyncs."""
        self.overloaded = False

    # -- market-data back-pressure ---------------------------------------------------------------
    def _send_market_payload(self, payload: bytes) -> None:
        # Checked on every market frame, so a subscription resynced while the buffer is still
        # over the limit is stopped again.
        if self.send_payload(payload) > self.config.hard_buffer_limit and not self.blasting:
            self._overload()

    def _overload(self) -> None:
        """Hard limit passed: withhold deltas and ask for a resync of every subscription."""
        if not self.overloaded:
            self.overloaded = True
            self.overload_events += 1
        for sub in list(self.subs.values()):
            self.require_resync(sub)

    def require_resync(self, sub: Subscription) -> bool:
        """Send ``resync_required`` for ``sub`` and withhold its deltas until the client resyncs.
        Returns False if it was already waiting."""
        if sub.awaiting_resync:
            return False
        sub.awaiting_resync = True
        sub.held = None
        self.send_obj({"type": "resync_required", "parsec_id": sub.market.parsec_id,
                       "outcome": sub.outcome})
        return True

    def needs_refresh(self, sub: Subscription) -> bool:
        """Announce ``book_state: "needs_refresh"`` on ``sub`` and withhold its deltas until the
        client resyncs. Returns False if it was already waiting."""
        if sub.awaiting_resync:
            return False
        self.emit_delta(sub, [], book_state="needs_refresh", faults=False)
        sub.awaiting_resync = True
        sub.held = None
        return True

    # -- sequence numbers and market frames -------------------------------------------------
    def next_seq(self, key: BookKey) -> int:
        """Next ``server_seq`` of a subscription's counter (never reset)."""
        seq = self._seq.get(key, self.config.initial_seq - 1) + 1
        self._seq[key] = seq
        return seq

    def last_seq(self, key: BookKey) -> int | None:
        """The last ``server_seq`` of a subscription's book counter (None before any)."""
        return self._seq.get(key)

    def next_activity_seq(self, key: BookKey) -> int:
        """Next ``server_seq`` of an activity frame (the book counter unless separate mode)."""
        if not self.config.separate_activity_seq:
            return self.next_seq(key)
        seq = self._activity_seq.get(key, self.config.initial_seq - 1) + 1
        self._activity_seq[key] = seq
        return seq

    def send_snapshot(self, sub: Subscription) -> None:
        """Send an ``orderbook`` snapshot of ``sub`` at its depth and clear its resync wait."""
        sub.awaiting_resync = False
        sub.held = None
        m = sub.market
        book = self.context.simulator.book(m.parsec_id, sub.outcome)
        status = self.context.status
        self.send_payload(snapshot_frame(
            sub, book.top("bid", sub.depth), book.top("ask", sub.depth),
            book_state=status.book_state(sub.key), seq=self.next_seq(sub.key),
            feed_state=status.feed_state(m.exchange), stale_after_ms=self.config.stale_after_ms,
            now_ms=int(time.time() * 1000)))

    def delta_payload(self, sub: Subscription, changes: list[WireChange], book_state: str,
                      ts_ms: int) -> bytes:
        """Encode the next ``orderbook_delta`` of ``sub`` (consumes a sequence number)."""
        return delta_frame(sub, changes, seq=self.next_seq(sub.key),
                           feed_state=self.context.status.feed_state(sub.market.exchange),
                           book_state=book_state, stale_after_ms=self.config.stale_after_ms,
                           ts_ms=ts_ms)

    def emit_delta(self, sub: Subscription, changes: list[WireChange], *,
                   book_state: str | None = None, ts_ms: int | None = None,
                   faults: bool = True) -> None:
        """Send a delta on ``sub`` unless it awaits a resync, applying queued frame faults."""
        if sub.awaiting_resync or not self.open:
            return
        if ts_ms is None:
            ts_ms = int(time.time() * 1000)
        state = book_state or self.context.status.book_state(sub.key)
        payload = self.delta_payload(sub, changes, state, ts_ms)
        fault = None
        if faults and self.context.faults.pending:
            fault = self.context.faults.take_frame_fault(sub.market.parsec_id)
        if fault == "drop":
            return  # the sequence number is spent: the client sees a gap
        if fault == "reorder" and sub.held is None:
            sub.held = payload
            return
        self._send_market_payload(payload)
        if fault == "duplicate":
            self._send_market_payload(payload)
        if sub.held is not None and sub.held is not payload:
            held, sub.held = sub.held, None
            self._send_market_payload(held)

    def emit_activity(self, key: BookKey, fields: dict[str, Any]) -> None:
        """Send an ``activity`` frame on a subscription (dropped while it awaits a resync)."""
        sub = self.subs.get(key)
        if sub is None or sub.awaiting_resync or not self.open:
            return
        self._send_market_payload(activity_frame(
            sub, fields, seq=self.next_activity_seq(key),
            feed_state=self.context.status.feed_state(sub.market.exchange)))

    # -- incoming messages -------------------------------------------------------------------
    def handle_message(self, data: bytes) -> Job | None:
        """Answer one client message; a subscribe / unsubscribe comes back as a job (run in
        slices by :class:`Link`). A message refused as a whole goes through :meth:`refuse`."""
        try:
            try:
                msg = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise BadRequest(ErrorCode.INVALID_MESSAGE, "invalid JSON") from None
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise BadRequest(ErrorCode.INVALID_MESSAGE,
                                 "message must be an object with a string type")
            if self.auth_failed:
                return None
            kind = msg["type"]
            if kind in ("auth", "auth_terminal"):
                self._on_auth(kind, msg)
                return None
            if kind not in _CONTROL:
                raise BadRequest(ErrorCode.INVALID_MESSAGE, f"unknown message type {kind!r}")
            if not self.authenticated:
                raise BadRequest(ErrorCode.AUTH_REQUIRED, "auth required")
            if not self._limiter.allow(asyncio.get_running_loop().time()):
                raise BadRequest(ErrorCode.RATE_LIMITED,
                                 f"rate limited: max {self.config.control_rate} "
                                 f"{'/'.join(_CONTROL)} messages per second")
            if kind == "resync":
                self._on_resync(msg)
                return None
            return self._guarded(self._on_subscribe(msg) if kind == "subscribe"
                                 else self._on_unsubscribe(msg))
        except BadRequest as exc:
            self.refuse(exc)
            return None

    def _guarded(self, job: Job) -> Job:
        try:
            yield from job
        except BadRequest as exc:
            self.refuse(exc)

    def _on_auth(self, kind: str, msg: dict[str, Any]) -> None:
        if self.authenticated:
            raise BadRequest(ErrorCode.AUTH_REQUIRED, "already authenticated")
        credential = msg.get("api_key" if kind == "auth" else "token")
        if not self.config.accepts(kind, credential):
            self.auth_failed = True
            what = "api key" if kind == "auth" else "terminal token"
            self.send_obj({"type": "auth_error", "code": int(ErrorCode.INVALID_CREDENTIALS),
                           "message": f"invalid {what}"})
            self.close(WSCloseCode.POLICY_VIOLATION, f"invalid {what}")
            return
        assert isinstance(credential, str)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        self.account = credential
        self.customer_id = customer_id_for(credential)
        if self.record is not None:
            self.record.api_key = credential
        self.send_obj({"type": "auth_ok", "customer_id": self.customer_id})

    def _on_auth_timeout(self) -> None:
        # On time, always: a close frame that cannot be flushed at once is not waited for.
        if not self.authenticated and self.open:
            self.close(WSCloseCode.POLICY_VIOLATION, "auth timeout", grace=0, why="auth_timeout")

    # -- control messages --------------------------------------------------------------------
    def _cap_error(self) -> BadRequest:
        return BadRequest(ErrorCode.MAX_SUBSCRIPTIONS, "max subscriptions reached "
                          f"(limit: {self.config.max_subscriptions}, tier: {self.config.tier})")

    def _cap_check(self) -> None:
        if self.context.registry.account_subscriptions(self.account) >= self.config.max_subscriptions:
            raise self._cap_error()

    def _plan(self, msg: dict[str, Any], *, with_depth: bool) -> Generator[object, None, Plan | None]:
        markets, addresses = message_lists(msg)
        plan = yield from plan_selectors(markets, addresses, self.context.simulator,
                                         max_depth=self.config.max_depth,
                                         cap=self.config.max_subscriptions, with_depth=with_depth)
        if plan.over_cap and self.config.over_cap_policy == "refuse":
            self.refuse(self._cap_error())
            return None
        return plan

    def _send_bad(self, exc: BadRequest) -> None:
        self.send_error(exc.code, exc.message, exc.parsec_id)

    def _on_subscribe(self, msg: dict[str, Any]) -> Job:
        plan = yield from self._plan(msg, with_depth=True)
        if plan is None:
            return
        registry, sent = self.context.registry, 0
        cap_error_first = plan.over_cap and self.config.over_cap_policy == "truncate-error-first"
        if cap_error_first:  # the order a real server might use: refusal, then the first `cap`
            self._send_bad(self._cap_error())
        for item in plan.markets:
            try:
                if isinstance(item, BadRequest):
                    raise item
                market, outcome, depth = item
                if market.exchange in self.context.status.unavailable_exchanges:
                    raise BadRequest(ErrorCode.EXCHANGE_UNAVAILABLE,
                                     f"exchange {market.exchange} unavailable", market.parsec_id)
                key = (market.parsec_id, outcome)
                old = self.subs.get(key)
                if old is None:
                    self._cap_check()
                else:
                    registry.unindex(self, old)
                sub = Subscription(market, outcome, depth)
                self.subs[key] = sub
                registry.index(self, sub)
                self.send_snapshot(sub)
            except BadRequest as exc:
                self._send_bad(exc)
                continue
            sent += 1
            if sent % SNAPSHOTS_PER_SLICE == 0:
                yield DRAIN
        for addr in plan.addresses:
            try:
                if isinstance(addr, BadRequest):
                    raise addr
                if addr not in self.addresses:
                    self._cap_check()
                    self.addresses.add(addr)
                self.send_obj(self.context.wallets.frame(addr))
            except BadRequest as exc:
                self._send_bad(exc)
        if plan.over_cap and not cap_error_first:  # "truncate": the names past the cap, refused
            self._send_bad(self._cap_error())

    def _on_unsubscribe(self, msg: dict[str, Any]) -> Job:
        plan = yield from self._plan(msg, with_depth=False)
        if plan is None:
            return
        for item in plan.markets:
            if isinstance(item, BadRequest):
                self._send_bad(item)
                continue
            sub = self.subs.pop((item[0].parsec_id, item[1]), None)
            if sub is not None:
                self.context.registry.unindex(self, sub)
        for addr in plan.addresses:
            if isinstance(addr, BadRequest):
                self._send_bad(addr)
            else:
                self.addresses.discard(addr)
        if plan.over_cap:
            self._send_bad(self._cap_error())

    def _on_resync(self, msg: dict[str, Any]) -> None:
        market, outcome, _ = resolve_selector(msg, self.context.simulator, self.config.max_depth,
                                              with_depth=False)
        sub = self.subs.get((market.parsec_id, outcome))
        if sub is None:
            raise BadRequest(ErrorCode.INVALID_MESSAGE, "not subscribed", market.parsec_id)
        self.send_snapshot(sub)
