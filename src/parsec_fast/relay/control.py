"""The relay's control service: consumers' requests on ``{prefix}._relay.control``, over nats-py.

nats-py carries the control plane on both sides (requests are rare, and it gives the consumer
NATS request/reply with "no responders", so a consumer learns at once that no relay listens,
and reconnects the relay's subscription after a NATS server restart by itself); the data paths
are :mod:`parsec_fast.relay.link`'s.

Each request is a JSON envelope (:func:`parsec_fast.relay.wire.envelope`) around the consumer's
own Parsec control frame. This module parses and checks it (version, consumer id, the frame's
selectors: a bad one is answered with Parsec error 2001, as the server would), bounds each
consumer's request rate (past ``consumer_control_rate`` per second: error 3001, which the
consumer's ledger retries) and hands the request to the :class:`RequestHandler` (the relay).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ..codes import ErrorCode
from ..ratelimit import RateLimiter
from ..selectors import MarketSelector
from . import wire

if TYPE_CHECKING:  # pragma: no cover
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg

__all__ = ["ControlService", "RequestHandler", "import_nats"]

log: logging.Logger = logging.getLogger("parsec_fast.relay")


def import_nats() -> Any:
    """The ``nats`` package (nats-py), or ImportError saying how to install it."""
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the NATS relay needs nats-py: pip install 'parsec_fast[relay]'") from exc
    return nats


class RequestHandler(Protocol):
    """What the control service asks of the relay."""

    def on_auth(self, consumer: str, inbox: str, reply: str, frame: dict[str, Any]) -> None:
        """A consumer's ``auth`` / ``auth_terminal`` ``frame``; answer on ``reply`` (the
        request's reply subject, else ``inbox``). Not rate limited."""
        ...

    def on_subscribe(self, consumer: str, inbox: str, selectors: list[MarketSelector],
                     addresses: bool) -> None:
        """A consumer's ``subscribe`` of ``selectors`` (checked, defaults filled in);
        ``addresses`` is True when the frame also named wallet addresses. Answer on
        ``inbox``."""
        ...

    def on_unsubscribe(self, consumer: str, selectors: list[MarketSelector]) -> None:
        """A consumer's ``unsubscribe`` of ``selectors`` (nothing is answered)."""
        ...

    def on_resync(self, consumer: str, inbox: str, selector: MarketSelector) -> None:
        """A consumer's ``resync`` of one market; answer on ``inbox``."""
        ...

    def on_lease(self, consumer: str, inbox: str, selectors: list[MarketSelector]) -> None:
        """A consumer's lease renewal, with its whole want list. Not rate limited."""
        ...

    def on_bye(self, consumer: str) -> None:
        """A consumer said it is leaving (its rate limiter is already dropped)."""
        ...

    def send_error(self, inbox: str, code: int, message: str,
                   selector: MarketSelector | None = None) -> None:
        """Answer a request on ``inbox`` with a Parsec ``error`` frame (``code``, ``message``),
        scoped to ``selector``'s market when given; the service sends 2001 for a bad request
        and 3001 past the consumer's rate."""
        ...


def _selectors(items: object) -> list[MarketSelector]:
    if not isinstance(items, list):
        raise ValueError("markets must be a list")
    return [MarketSelector.coerce(item).with_defaults() for item in items]


class ControlService:
    """Subscribes the control subject on a nats-py connection and dispatches requests."""

    def __init__(self, handler: RequestHandler, prefix: str, rate: int) -> None:
        self._handler = handler
        self.subject: str = wire.control_subject(prefix)
        self._rate = rate
        self._limiters: dict[str, RateLimiter] = {}
        self._nc: NatsClient | None = None
        #: Requests handled, and refused (bad envelope or frame, rate limited).
        self.requests: int = 0
        self.refused: int = 0

    async def start(self, url: str, *, name: str, timeout: float,
                    on_state: Callable[[str], Awaitable[None]] | None = None) -> None:
        """Connect (nats-py reconnects by itself from then on) and subscribe."""
        nats = import_nats()

        async def disconnected() -> None:
            if on_state is not None:
                await on_state("disconnected")

        async def reconnected() -> None:
            if on_state is not None:
                await on_state("reconnected")

        async def error(exc: Exception) -> None:
            log.debug("relay control connection: %s", exc)

        self._nc = await nats.connect(
            url, name=name, connect_timeout=timeout, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=0.25, error_cb=error,
            disconnected_cb=disconnected, reconnected_cb=reconnected)
        await self._nc.subscribe(self.subject, cb=self._on_msg)
        await self._nc.flush(int(max(1, timeout)))

    async def close(self) -> None:
        """Unsubscribe and close the connection."""
        nc, self._nc = self._nc, None
        if nc is not None:
            try:
                await nc.close()
            except Exception:  # pragma: no cover - already gone
                pass

    def forget(self, consumer: str) -> None:
        """Drop a consumer's rate limiter (it left)."""
        self._limiters.pop(consumer, None)

    async def _on_msg(self, msg: Msg) -> None:
        try:
            self._dispatch(msg.data, msg.reply)
        except Exception:  # a bug must not stop the service
            log.exception("relay: control request failed")

    def _dispatch(self, data: bytes, reply: str) -> None:
        self.requests += 1
        try:
            env = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.refused += 1
            return
        if not isinstance(env, dict) or env.get("v") != wire.VERSION or \
                not isinstance(env.get("consumer"), str):
            self.refused += 1
            log.debug("relay: unreadable control envelope %r", data[:80])
            return
        consumer: str = env["consumer"]
        raw_inbox = env.get("inbox")
        inbox: str = raw_inbox if isinstance(raw_inbox, str) else ""
        handler = self._handler
        op = env.get("op")
        if op == "bye":
            self.forget(consumer)
            handler.on_bye(consumer)
            return
        if op == "lease":
            try:
                wants = [MarketSelector(parsec_id=w[0], outcome=w[1], depth=w[2])
                         for w in env.get("wants") or []]
            except (ValueError, TypeError, IndexError):
                self.refused += 1
                return
            handler.on_lease(consumer, inbox, wants)
            return
        frame = env.get("frame")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self.refused += 1
            return
        kind = frame["type"]
        if kind in ("auth", "auth_terminal"):
            handler.on_auth(consumer, inbox, reply or inbox, frame)
            return
        if not inbox:
            self.refused += 1
            return
        limiter = self._limiters.get(consumer)
        if limiter is None:
            limiter = self._limiters[consumer] = RateLimiter(self._rate, 1.0, margin=0.0)
        if not limiter.try_acquire():
            self.refused += 1
            handler.send_error(inbox, ErrorCode.RATE_LIMITED,
                               f"rate limited (relay: {self._rate} control messages per second)")
            return
        try:
            if kind == "subscribe":
                sels = _selectors(frame.get("markets") or [])
                handler.on_subscribe(consumer, inbox, sels, bool(frame.get("addresses")))
            elif kind == "unsubscribe":
                handler.on_unsubscribe(consumer, _selectors(frame.get("markets") or []))
            elif kind == "resync":
                fields = {k: frame[k] for k in ("parsec_id", "exchange", "market_id", "outcome")
                          if frame.get(k) is not None}
                handler.on_resync(consumer, inbox, MarketSelector.coerce(fields).with_defaults())
            else:
                self.refused += 1
                handler.send_error(inbox, ErrorCode.INVALID_MESSAGE,
                                   f"unknown message type {kind!r}")
        except (ValueError, TypeError) as exc:
            self.refused += 1
            handler.send_error(inbox, ErrorCode.INVALID_MESSAGE, f"invalid message: {exc}")
