"""One client connection of the local server: auth, control messages, subscriptions, sequence
counters, frame faults and send-buffer back-pressure.

Everything runs on the event loop thread; picows calls the ``on_ws_*`` and ``*_writing`` hooks.
The connection reaches the rest of the server only through its
:class:`~parsec_fast.server.context.ServerContext`.
"""
from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from typing import Any

import orjson
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from ..codes import ADDRESS_EXCHANGES, DEFAULT_DEPTH, ErrorCode
from .context import ServerContext
from .frames import activity_frame, delta_frame, snapshot_frame
from .recorder import ConnectionRecord
from .simulator import MarketSpec, WireChange, customer_id_for
from .subscription import BookKey, Subscription

__all__ = ["Connection", "Subscription", "BookKey"]

_CONTROL = ("subscribe", "unsubscribe", "resync")
_SLOW_READER_CLOSE = 4000  # private-use close code, PROTOCOL.md §1


class _BadRequest(Exception):
    """A control message or selector the server answers with an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, parsec_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parsec_id = parsec_id


class Connection(WSListener):
    """Server side of one WebSocket connection (a picows listener)."""

    def __init__(self, context: ServerContext, conn_id: int) -> None:
        super().__init__()
        self.context = context
        self.config = context.config
        self.conn_id = conn_id
        self.transport: WSTransport | None = None
        self.account: str | None = None
        self.customer_id: str | None = None
        self.auth_failed = False
        self.subs: dict[BookKey, Subscription] = {}
        self.addresses: set[tuple[str, str]] = set()
        self._seq: dict[BookKey, int] = {}
        self._activity_seq: dict[BookKey, int] = {}
        self._control_times: deque[float] = deque()
        self._auth_timer: asyncio.TimerHandle | None = None
        self.record: ConnectionRecord | None = None
        #: Transport write buffer above the soft limit (between pause_writing and resume_writing).
        self.paused = False
        #: Past the hard limit: subscriptions were told resync_required; cleared when drained.
        self.overloaded = False
        #: True while a blast writes to this connection (flow control only).
        self.blasting = False
        self.writable = asyncio.Event()
        self.writable.set()
        #: Counters for tests and the demo.
        self.slow_reader_events = 0
        self.overload_events = 0
        #: Closed with 4000 for passing ``disconnect_buffer_limit``.
        self.closed_slow = False

    # -- picows hooks -----------------------------------------------------------------------
    @property
    def authenticated(self) -> bool:
        """True after ``auth_ok``."""
        return self.account is not None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        underlying = transport.underlying_transport
        # pause_writing fires at the soft limit: that is where slow_reader is sent.
        underlying.set_write_buffer_limits(high=self.config.soft_buffer_limit,
                                           low=self.config.soft_buffer_limit // 4)
        if self.config.so_sndbuf:
            sock = underlying.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.so_sndbuf)
        if self.context.recorder is not None:
            self.record = self.context.recorder.open(self.conn_id)
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(self.config.auth_timeout, self._on_auth_timeout)
        self.context.registry.register(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        self.writable.set()
        self.context.registry.unregister(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
            self._on_message(frame.get_payload_as_bytes())
        elif msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def pause_writing(self) -> None:
        self.paused = True
        self.writable.clear()
        if not self.blasting:
            # Called from inside a transport write: send from a fresh loop iteration.
            asyncio.get_running_loop().call_soon(self._send_slow_reader)

    def resume_writing(self) -> None:
        self.paused = False
        self.overloaded = False
        self.writable.set()

    # -- sending ----------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        """True while frames can still be sent."""
        t = self.transport
        return t is not None and not t.is_disconnected and not t.is_close_frame_sent

    def buffer_size(self) -> int:
        """Bytes waiting in the transport write buffer."""
        assert self.transport is not None
        return self.transport.underlying_transport.get_write_buffer_size()

    def send_payload(self, payload: bytes) -> None:
        """Send one encoded JSON frame (and record it)."""
        if not self.open:
            return
        if self.record is not None:
            self.record.frames.append(payload)
        self.transport.send(WSMsgType.TEXT, payload)  # type: ignore[union-attr]
        limit = self.config.disconnect_buffer_limit
        if self.overloaded and limit is not None and self.buffer_size() > limit:
            self._disconnect_slow_reader()

    def _disconnect_slow_reader(self) -> None:
        """Close with 4000 (PROTOCOL.md §1); the close frame waits behind the backlog, so the
        socket is aborted if the client has not drained it within a few seconds."""
        assert self.transport is not None
        self.closed_slow = True
        self.transport.send_close(_SLOW_READER_CLOSE, b"slow reader")  # type: ignore[arg-type]
        self.transport.disconnect()
        asyncio.get_running_loop().call_later(5.0, self.transport.disconnect, False)

    def write_chunk(self, chunk: bytes, payloads: list[bytes]) -> bool:
        """Write pre-framed frames in one transport write (blast mode; ``payloads`` are their
        JSON payloads, for the record). False when the connection is closed."""
        if not self.open:
            return False
        if self.record is not None:
            self.record.frames.extend(payloads)
        assert self.transport is not None
        self.transport.underlying_transport.write(chunk)
        return True

    def send_obj(self, obj: dict[str, Any]) -> None:
        """Encode and send one frame."""
        self.send_payload(orjson.dumps(obj))

    def send_error(self, code: ErrorCode, message: str, parsec_id: str | None = None) -> None:
        """Send an ``error`` frame (``parsec_id`` only for market-scoped errors)."""
        frame: dict[str, Any] = {"type": "error", "code": int(code), "message": message}
        if parsec_id is not None:
            frame["parsec_id"] = parsec_id
        self.send_obj(frame)

    def _send_market_payload(self, payload: bytes) -> None:
        self.send_payload(payload)
        # Checked on every market frame, so a subscription resynced while the buffer is still
        # over the limit is stopped again.
        if not self.blasting and self.open and self.buffer_size() > self.config.hard_buffer_limit:
            self._overload()

    def _send_slow_reader(self) -> None:
        if not self.paused or not self.open:
            return
        self.slow_reader_events += 1
        for sub in self.subs.values():
            if not sub.awaiting_resync:
                self.send_obj({"type": "slow_reader", "parsec_id": sub.market.parsec_id,
                               "outcome": sub.outcome})

    def _overload(self) -> None:
        """Hard limit passed: withhold deltas and ask for a resync of every subscription."""
        if not self.overloaded:
            self.overloaded = True
            self.overload_events += 1
        for sub in self.subs.values():
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

    def next_activity_seq(self, key: BookKey) -> int:
        """Next ``server_seq`` of an activity frame (the book counter unless separate mode)."""
        if not self.config.separate_activity_seq:
            return self.next_seq(key)
        seq = self._activity_seq.get(key, self.config.initial_seq - 1) + 1
        self._activity_seq[key] = seq
        return seq

    def last_seq(self, key: BookKey) -> int | None:
        """The last ``server_seq`` of a subscription's book counter (None before any)."""
        return self._seq.get(key)

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
    def _on_message(self, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.send_error(ErrorCode.INVALID_MESSAGE, "invalid JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.send_error(ErrorCode.INVALID_MESSAGE, "message must be an object with a string type")
            return
        kind = msg["type"]
        if self.auth_failed:
            return
        try:
            if kind in ("auth", "auth_terminal"):
                self._on_auth(kind, msg)
            elif kind in _CONTROL:
                if not self.authenticated:
                    raise _BadRequest(ErrorCode.AUTH_REQUIRED, "auth required")
                if not self._control_allowed():
                    raise _BadRequest(ErrorCode.RATE_LIMITED,
                                      f"rate limited: max {self.config.control_rate} "
                                      f"{'/'.join(_CONTROL)} messages per second")
                getattr(self, "_on_" + kind)(msg)
            else:
                raise _BadRequest(ErrorCode.INVALID_MESSAGE, f"unknown message type {kind!r}")
        except _BadRequest as exc:
            self.send_error(exc.code, exc.message, exc.parsec_id)

    def _control_allowed(self) -> bool:
        now = asyncio.get_running_loop().time()
        times = self._control_times
        while times and now - times[0] >= self.config.control_window:
            times.popleft()
        if len(times) >= self.config.control_rate:
            return False
        times.append(now)
        return True

    def _on_auth(self, kind: str, msg: dict[str, Any]) -> None:
        if self.authenticated:
            raise _BadRequest(ErrorCode.AUTH_REQUIRED, "already authenticated")
        field_name = "api_key" if kind == "auth" else "token"
        credential = msg.get(field_name)
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
        if not self.authenticated and self.open:
            self.close(WSCloseCode.POLICY_VIOLATION, "auth timeout")

    def disconnect_now(self) -> None:
        """Drop the connection without a close frame (server shutdown, the ``close`` fault)."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def close(self, code: WSCloseCode, reason: str) -> None:
        """Send a close frame and disconnect once the buffer is flushed."""
        if self.transport is None or self.transport.is_disconnected:
            return
        self.transport.send_close(code, reason.encode())
        self.transport.disconnect()

    # -- selectors ---------------------------------------------------------------------------
    def _resolve(self, sel: Any, *, with_depth: bool) -> tuple[MarketSpec, str, int]:
        """Validate a market selector; return (market, canonical outcome, clamped depth)."""
        if not isinstance(sel, dict):
            raise _BadRequest(ErrorCode.INVALID_MESSAGE, "market selector must be an object")
        pid = sel.get("parsec_id")
        exchange, market_id = sel.get("exchange"), sel.get("market_id")
        if pid is not None:
            if not isinstance(pid, str) or ":" not in pid:
                raise _BadRequest(ErrorCode.INVALID_MESSAGE,
                                  "parsec_id must be a string 'exchange:market_id'")
            if (exchange is not None or market_id is not None) and pid != f"{exchange}:{market_id}":
                raise _BadRequest(ErrorCode.INVALID_MESSAGE,
                                  "parsec_id and exchange/market_id disagree", pid)
        elif isinstance(exchange, str) and isinstance(market_id, str) and exchange and market_id:
            pid = f"{exchange}:{market_id}"
        else:
            raise _BadRequest(ErrorCode.INVALID_MESSAGE,
                              "selector needs parsec_id or exchange and market_id strings")
        outcome = sel.get("outcome")
        if outcome is not None and not isinstance(outcome, str):
            raise _BadRequest(ErrorCode.INVALID_MESSAGE, "outcome must be a string", pid)
        depth = DEFAULT_DEPTH
        if with_depth and sel.get("depth") is not None:
            depth = sel["depth"]
            if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
                raise _BadRequest(ErrorCode.INVALID_MESSAGE, "depth must be a positive integer", pid)
        depth = min(depth, self.config.max_depth)
        market = self.context.simulator.spec(pid)
        if market is None:
            raise _BadRequest(ErrorCode.MARKET_NOT_FOUND, "market not found", pid)
        canonical = market.resolve_outcome(outcome)
        if canonical is None:
            if outcome is None:
                raise _BadRequest(ErrorCode.INVALID_OUTCOME,
                                  "outcome required for categorical market "
                                  f"(one of {', '.join(market.outcomes)})", pid)
            raise _BadRequest(ErrorCode.INVALID_OUTCOME, f"invalid outcome {outcome!r} "
                              f"(one of {', '.join(market.outcomes)})", pid)
        return market, canonical, depth

    def _lists(self, msg: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        markets, addresses = msg.get("markets"), msg.get("addresses")
        markets = [] if markets is None else markets
        addresses = [] if addresses is None else addresses
        if not isinstance(markets, list) or not isinstance(addresses, list):
            raise _BadRequest(ErrorCode.INVALID_MESSAGE, "markets and addresses must be lists")
        if not markets and not addresses:
            raise _BadRequest(ErrorCode.INVALID_MESSAGE, "markets or addresses must be non-empty")
        return markets, addresses

    @staticmethod
    def _address(item: Any) -> tuple[str, str]:
        if not isinstance(item, dict) or not isinstance(item.get("exchange"), str) \
                or not isinstance(item.get("address"), str) or not item["address"]:
            raise _BadRequest(ErrorCode.INVALID_MESSAGE,
                              "address selector needs exchange and address strings")
        if item["exchange"] not in ADDRESS_EXCHANGES:
            raise _BadRequest(ErrorCode.INVALID_MESSAGE, f"address subscriptions are not available "
                              f"on {item['exchange']!r} (one of {', '.join(ADDRESS_EXCHANGES)})")
        return (item["exchange"], item["address"])

    # -- control messages --------------------------------------------------------------------
    def _cap_check(self) -> None:
        cap = self.config.max_subscriptions
        if self.context.registry.account_subscriptions(self.account) >= cap:
            raise _BadRequest(ErrorCode.MAX_SUBSCRIPTIONS,
                              f"max subscriptions reached (limit: {cap}, tier: {self.config.tier})")

    def _on_subscribe(self, msg: dict[str, Any]) -> None:
        markets, addresses = self._lists(msg)
        for sel in markets:
            try:
                market, outcome, depth = self._resolve(sel, with_depth=True)
                if market.exchange in self.context.status.unavailable_exchanges:
                    raise _BadRequest(ErrorCode.EXCHANGE_UNAVAILABLE,
                                      f"exchange {market.exchange} unavailable", market.parsec_id)
                key = (market.parsec_id, outcome)
                old = self.subs.get(key)
                if old is None:
                    self._cap_check()
                else:
                    self.context.registry.unindex(self, old)
                sub = Subscription(market, outcome, depth)
                self.subs[key] = sub
                self.context.registry.index(self, sub)
                self.send_snapshot(sub)
            except _BadRequest as exc:
                self.send_error(exc.code, exc.message, exc.parsec_id)
        for item in addresses:
            try:
                addr = self._address(item)
                if addr not in self.addresses:
                    self._cap_check()
                    self.addresses.add(addr)
                self.send_obj(self.context.wallets.frame(addr))
            except _BadRequest as exc:
                self.send_error(exc.code, exc.message, exc.parsec_id)

    def _on_unsubscribe(self, msg: dict[str, Any]) -> None:
        markets, addresses = self._lists(msg)
        for sel in markets:
            try:
                market, outcome, _ = self._resolve(sel, with_depth=False)
                sub = self.subs.pop((market.parsec_id, outcome), None)
                if sub is not None:
                    self.context.registry.unindex(self, sub)
            except _BadRequest as exc:
                self.send_error(exc.code, exc.message, exc.parsec_id)
        for item in addresses:
            try:
                self.addresses.discard(self._address(item))
            except _BadRequest as exc:
                self.send_error(exc.code, exc.message, exc.parsec_id)

    def _on_resync(self, msg: dict[str, Any]) -> None:
        market, outcome, _ = self._resolve(msg, with_depth=False)
        sub = self.subs.get((market.parsec_id, outcome))
        if sub is None:
            raise _BadRequest(ErrorCode.INVALID_MESSAGE, "not subscribed", market.parsec_id)
        self.send_snapshot(sub)
