"""``ParsecWebSocket``: the SDK's client class on parsec_fast's engine (``Client``).

Lifecycle (connect, close, run_forever, the SDK's ``_state`` values), subscriptions (the SDK's
keying), and the engine's events and non-book messages turned into the SDK's events. Book
events and ``get_book`` are :mod:`parsec_fast.compat.books`; handlers are
:mod:`parsec_fast.compat.handlers`. The deliberate differences from the SDK are listed in
:mod:`parsec_fast.compat`.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Optional, TypeVar, Union

from ..client import Client
from ..codes import MAX_DEPTH
from ..errors import AuthenticationError, AuthTimeoutError, ParsecConnectionError
from ..events import Connected, Disconnected, Reconnecting
from ..rules import fold_outcome
from ..selectors import MarketSelector
from .books import BookEvents
from .handlers import Handler, Handlers
from .payloads import MarketSubscription, WsError, activity_of

__all__ = ["ParsecWebSocket", "ws_url", "ws"]

logger: logging.Logger = logging.getLogger("parsec_fast.compat")

Markets = Union[MarketSubscription, Sequence[MarketSubscription], None]
H = TypeVar("H", bound=Handler)


def ws_url(base_url: str) -> str:
    """The WebSocket URL for a REST base URL, exactly as the SDK's ``ws()`` factories build it:
    trailing ``/`` dropped, ``http://`` -> ``ws://``, ``https://`` -> ``wss://``, ``/ws`` appended
    (``https://api.parsecapi.com`` -> ``wss://api.parsecapi.com/ws``)."""
    base = str(base_url).rstrip("/")
    return base.replace("http://", "ws://").replace("https://", "wss://") + "/ws"


def ws(api_key: str, base_url: str = "https://api.parsecapi.com",
       terminal_token: Optional[str] = None) -> ParsecWebSocket:
    """The SDK's ``client.ws(terminal_token)`` factory without the REST client."""
    return ParsecWebSocket(api_key=api_key, ws_url=ws_url(base_url), terminal_token=terminal_token)


def _sdk_key(parsec_id: str, outcome: Optional[str]) -> str:
    return f"{parsec_id}:{outcome.lower()}" if outcome else parsec_id


def _run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that does not suspend (the engine's ``subscribe(wait=False)`` and
    ``unsubscribe``) to completion now, so these stay plain methods as in the SDK."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("engine call suspended unexpectedly")  # pragma: no cover


class ParsecWebSocket:
    """The SDK's ``ParsecWebSocket``, on parsec_fast's engine (see :mod:`parsec_fast.compat`).

    ``client_options`` (an extension; keyword-only) is passed to :class:`parsec_fast.Client`
    (e.g. ``{"backoff_initial": 0.2}``); the SDK's own schedule is the default.
    """

    def __init__(self, api_key: str, ws_url: str, terminal_token: Optional[str] = None, *,
                 client_options: Optional[Mapping[str, Any]] = None) -> None:
        self._api_key = api_key
        self._ws_url = ws_url
        self._terminal_token = terminal_token
        self._client_options = dict(client_options or {})
        #: From the last ``auth_ok`` (None before the first; never cleared).
        self.customer_id: Optional[str] = None
        # Same values as the SDK's private _state (the only way SDK users can check it).
        self._state = "disconnected"
        self._subscriptions: dict[str, MarketSubscription] = {}
        self._handlers = Handlers()
        self._books = BookEvents(self._handlers)
        self._client: Optional[Client] = None
        self._closed_event: Optional[asyncio.Event] = None
        self._intentional_close = False
        self._last_engine_event = ""

    # -- events ------------------------------------------------------------------------------------
    def on(self, event: str) -> Callable[[H], H]:
        """Decorator registering ``fn`` for ``event``; returns ``fn`` unchanged. Unknown event
        names are accepted (a warning is logged) and never fire, as in the SDK."""
        def decorator(fn: H) -> H:
            self._handlers.add(event, fn)
            return fn
        return decorator

    def off(self, event: str, fn: Handler) -> None:
        """Remove one registration of ``fn`` for ``event`` (no error if absent)."""
        self._handlers.remove(event, fn)

    def _emit(self, event: str, *args: Any) -> None:
        self._handlers.emit(event, *args)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> ParsecWebSocket:
        await self.connect()
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    def _make_client(self) -> Client:
        options: dict[str, Any] = {
            # The SDK's schedule: 1 s doubling to 30 s, ±25 %; 10 s to open and to authenticate.
            "backoff_initial": 1.0, "backoff_max": 30.0, "jitter": 0.25,
            "connect_timeout": 10.0, "auth_timeout": 10.0, "open_timeout": None,
        }
        options.update(self._client_options)
        # The first connection fails at once (the SDK raises); reconnect afterwards.
        if self._terminal_token is not None:
            client = Client(self._ws_url, terminal_token=self._terminal_token, **options)
        else:
            client = Client(self._ws_url, self._api_key, **options)
        # Every book frame, from the compiled feed handler (deltas stay on the native path),
        # and every other message after the engine handled it (its state is current for us).
        client.set_frame_hook(self._books.emitter.on_book_frame)
        client.set_message_hook(self._on_message)
        client.on("connected", self._on_engine_connected)
        client.on("disconnected", self._on_engine_disconnected)
        client.on("reconnecting", self._on_engine_reconnecting)
        return client

    async def connect(self) -> None:
        """Connect and authenticate, then subscribe everything registered. Raises
        ``ConnectionError`` (auth refused, auth timeout, closed during auth, connect failure);
        can be called again after a failure or after :meth:`close`."""
        if self._state in ("connected", "connecting", "authenticating"):
            return
        self._intentional_close = False
        self._closed_event = asyncio.Event()
        self._state = "connecting"
        try:
            client = self._make_client()
            for sub in self._subscriptions.values():
                self._engine_subscribe(client, sub)
        except ValueError as exc:
            self._state = "disconnected"
            self._emit("error", WsError(message=str(exc)))
            raise
        self._client = client
        self._books.clear()
        self._last_engine_event = ""
        self._state = "authenticating"
        try:
            await client.start()
        except AuthenticationError as exc:
            # The error event was emitted from the auth_error frame.
            self._state = "closed"
            self._intentional_close = True
            self._closed_event.set()
            self._client = None
            raise ConnectionError(exc.message or "Authentication failed") from None
        except BaseException as exc:
            self._client = None
            self._state = "disconnected"  # retryable, unlike the SDK
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, AuthTimeoutError):
                self._emit("disconnected", "Auth timeout")
                raise ConnectionError(f"Auth timeout: no response from server within "
                                      f"{client.config.auth_timeout:g}s") from None
            if isinstance(exc, ParsecConnectionError) and exc.phase == "auth":
                self._emit("disconnected", "Connection closed during authentication")
                raise ConnectionError("Connection closed during authentication") from exc
            message = str(exc)
            self._emit("error", WsError(message=message))
            raise ConnectionError(message) from exc

    async def close(self) -> None:
        """Close the connection, forget every subscription and book, then emit
        ``disconnected("Client closed")`` (every call, as in the SDK). Never raises."""
        self._intentional_close = True
        self._state = "closed"
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # pragma: no cover - close must not raise
                logger.debug("engine close failed", exc_info=True)
        self._handlers.cancel_all()
        self._subscriptions.clear()
        self._books.clear()
        if self._closed_event is not None:
            self._closed_event.set()
        self._emit("disconnected", "Client closed")

    async def run_forever(self) -> None:
        """Return once the client is closed (``close()`` or a refused credential)."""
        while True:
            if self._state == "closed" or self._intentional_close:
                return
            event = self._closed_event
            if event is None:  # before connect(): wait for it, as the SDK's polling does
                await asyncio.sleep(0.1)
                continue
            await event.wait()

    @property
    def client(self) -> Optional[Client]:
        """The engine client of the current connection (None when not connected)."""
        return self._client

    # -- engine events -----------------------------------------------------------------------------
    def _on_engine_connected(self, event: Connected) -> None:
        self._last_engine_event = "connected"
        self.customer_id = event.customer_id
        self._state = "connected"
        self._emit("connected")

    def _on_engine_disconnected(self, event: Disconnected) -> None:
        self._last_engine_event = "disconnected"
        if self._intentional_close:
            return  # close() reports "Client closed" itself
        self._state = "disconnected"
        self._emit("disconnected", "Connection closed")

    def _on_engine_reconnecting(self, event: Reconnecting) -> None:
        if self._intentional_close:
            return
        if self._last_engine_event != "disconnected":
            # The previous attempt failed before auth_ok (the SDK reports its exception).
            self._emit("error", WsError(message="Reconnect attempt failed"))
        self._last_engine_event = "reconnecting"
        self._state = "reconnecting"
        self._emit("reconnecting", event.attempt, int(event.delay * 1000))

    def _on_message(self, msg: dict[str, Any]) -> None:
        """Non-book frames, parsed by the engine (``Client.set_message_hook``)."""
        kind = msg.get("type")
        if kind == "activity":
            if self._handlers.listening("activity"):
                self._emit("activity", activity_of(msg))
        elif kind == "heartbeat":
            if self._handlers.listening("heartbeat"):
                self._emit("heartbeat", msg.get("ts_ms", 0))
        elif kind == "error":
            self._emit("error", WsError(message=msg.get("message", "Server error"),
                                        code=msg.get("code"), parsec_id=msg.get("parsec_id")))
        elif kind == "slow_reader":
            self._emit("slow_reader", msg.get("parsec_id", ""), msg.get("outcome", ""))
        elif kind == "auth_error":
            self._emit("error", WsError(message=msg.get("message", "Authentication failed"),
                                        code=msg.get("code")))
            if self._state != "authenticating":
                # Refused on a reconnect: stop for good (run_forever returns).
                self._state = "closed"
                self._intentional_close = True
                if self._closed_event is not None:
                    self._closed_event.set()
                client, self._client = self._client, None
                if client is not None:
                    asyncio.get_running_loop().create_task(client.close())

    # -- subscriptions -----------------------------------------------------------------------------
    @staticmethod
    def _markets(markets: Markets, parsec_id: Optional[str], outcome: Optional[str],
                 depth: Optional[int]) -> list[MarketSubscription]:
        if markets is None:
            return [] if parsec_id is None else [MarketSubscription(parsec_id, outcome, depth)]
        if isinstance(markets, MarketSubscription) or hasattr(markets, "parsec_id"):
            return [markets]  # type: ignore[list-item]  # also the SDK's own objects
        return list(markets)

    @staticmethod
    def _engine_subscribe(client: Client, sub: MarketSubscription) -> None:
        depth = sub.depth
        if depth is not None:
            depth = max(1, min(MAX_DEPTH, int(depth)))
        selector = MarketSelector(parsec_id=sub.parsec_id, outcome=sub.outcome or "Yes",
                                  depth=depth)
        _run_sync(client.subscribe(selector, wait=False))

    def subscribe(self, markets: Markets = None, *, parsec_id: Optional[str] = None,
                  outcome: Optional[str] = None, depth: Optional[int] = None) -> None:
        """Subscribe (one object, a sequence, or keywords used only when ``markets`` is None).
        Already-registered markets are skipped; sent at once when connected, else with the
        next connection."""
        for sub in self._markets(markets, parsec_id, outcome, depth):
            key = _sdk_key(sub.parsec_id, sub.outcome)
            if key in self._subscriptions:
                continue
            try:
                MarketSelector(parsec_id=sub.parsec_id, outcome=sub.outcome or None)
            except (ValueError, TypeError) as exc:
                self._emit("error", WsError(message=str(exc), code=2001,
                                            parsec_id=sub.parsec_id))
                continue
            self._subscriptions[key] = sub
            if self._client is not None:
                self._engine_subscribe(self._client, sub)

    def unsubscribe(self, markets: Markets = None, *, parsec_id: Optional[str] = None,
                    outcome: Optional[str] = None) -> None:
        """Unsubscribe markets registered with the same key (``parsec_id`` alone, or with the
        outcome) and drop their books."""
        for sub in self._markets(markets, parsec_id, outcome, None):
            if self._subscriptions.pop(_sdk_key(sub.parsec_id, sub.outcome), None) is None:
                continue
            engine_outcome = sub.outcome or "Yes"
            engine_key = (sub.parsec_id, fold_outcome(engine_outcome))
            # Another registration (e.g. X and X:yes) may still want the same engine book.
            if any((s.parsec_id, fold_outcome(s.outcome or "Yes")) == engine_key
                   for s in self._subscriptions.values()):
                continue
            self._books.forget(sub.parsec_id, engine_outcome)
            if self._client is not None:
                _run_sync(self._client.unsubscribe(
                    MarketSelector(parsec_id=sub.parsec_id, outcome=engine_outcome)))

    # -- books -------------------------------------------------------------------------------------
    def get_book(self, parsec_id: str, outcome: str = "yes") -> Optional[dict[str, Any]]:
        """The book as the SDK's dict (a new object each call), or None when there is none."""
        if self._client is None:
            return None
        return self._books.get_book(parsec_id, outcome)
