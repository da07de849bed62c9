"""The Parsec wire protocol: encoders for client messages and a typed decoder for server frames.

The contract is ../shared/PROTOCOL.md. In short:

* Encoders (:func:`auth`, :func:`auth_terminal`, :func:`subscribe`, :func:`unsubscribe`,
  :func:`resync`) validate their input and return the frame as ``bytes``; bad input raises a
  ``ValueError`` naming the field, so nothing malformed is ever sent.
* :func:`decode` turns a frame (``bytes`` or ``str``) into an :mod:`parsec_fast.messages` message;
  :func:`decode_message` does the same for an object the caller already parsed with orjson
  (the client's hot path parses each frame once and only hands the non-book ones up).
  Unknown extra fields are ignored and an unknown ``type`` becomes
  :class:`~parsec_fast.messages.UnknownMessage`; a malformed frame raises
  :class:`~parsec_fast.errors.ProtocolError` (reason, field, first bytes of the frame) and
  nothing else.
"""
from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from .codes import ErrorCode
from .errors import ProtocolError
from .messages import (
    AuthError,
    AuthOk,
    BookDelta,
    BookSnapshot,
    ErrorMessage,
    Fill,
    Heartbeat,
    Message,
    ResyncRequired,
    SlowReader,
    Trade,
    UnknownMessage,
    WalletActivity,
)
from .rules import require_text
from .selectors import AddressLike, AddressSelector, MarketLike, MarketSelector

__all__ = [
    "auth", "auth_terminal", "subscribe", "unsubscribe", "resync", "ws_url",
    "decode", "decode_message",
]


def auth(api_key: str) -> bytes:
    """``auth`` frame. Raises ValueError if ``api_key`` is not a non-empty string."""
    require_text("auth", "api_key", api_key)
    return orjson.dumps({"type": "auth", "api_key": api_key})


def auth_terminal(token: str) -> bytes:
    """``auth_terminal`` frame. Raises ValueError if ``token`` is not a non-empty string."""
    require_text("auth_terminal", "token", token)
    return orjson.dumps({"type": "auth_terminal", "token": token})


def _as_list(what: str, items: object) -> list[object]:
    # A lone selector is a list of one; a str or a dict must not be iterated item by item.
    if items is None:
        return []
    if isinstance(items, (str, Mapping, MarketSelector, AddressSelector)):
        return [items]
    if not isinstance(items, Iterable):
        raise ValueError(f"{what} must be a list of selectors, got {type(items).__name__}")
    return list(items)


def _market_objects(msg_type: str, markets: object, include_depth: bool) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_as_list(f"{msg_type}: markets", markets)):
        try:
            sel = MarketSelector.coerce(item)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{msg_type}: markets[{i}]: {exc}") from None
        out.append(sel.to_wire(include_depth))
    return out


def _address_objects(msg_type: str, addresses: object) -> list[dict[str, str]]:
    out = []
    for i, item in enumerate(_as_list(f"{msg_type}: addresses", addresses)):
        try:
            sel = AddressSelector.coerce(item)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{msg_type}: addresses[{i}]: {exc}") from None
        out.append(sel.to_wire())
    return out


def _control(msg_type: str, markets: object, addresses: object, include_depth: bool) -> bytes:
    market_objs = _market_objects(msg_type, markets, include_depth)
    address_objs = _address_objects(msg_type, addresses)
    if not market_objs and not address_objs:
        raise ValueError(f"{msg_type}: at least one of 'markets' or 'addresses' must be non-empty")
    msg: dict[str, Any] = {"type": msg_type}
    if market_objs:
        msg["markets"] = market_objs
    if address_objs:
        msg["addresses"] = address_objs
    return orjson.dumps(msg)


def subscribe(markets: Iterable[MarketLike] | MarketLike | None = None,
              addresses: Iterable[AddressLike] | AddressLike | None = None) -> bytes:
    """``subscribe`` frame for some markets and/or wallet addresses.

    Each item is coerced with :meth:`MarketSelector.coerce` / :meth:`AddressSelector.coerce`;
    a single selector may be passed instead of a list. Empty lists are left out of the frame,
    and at least one list must be non-empty. Raises ValueError naming the item and field.
    """
    return _control("subscribe", markets, addresses, include_depth=True)


def unsubscribe(markets: Iterable[MarketLike] | MarketLike | None = None,
                addresses: Iterable[AddressLike] | AddressLike | None = None) -> bytes:
    """``unsubscribe`` frame; like :func:`subscribe`, but ``depth`` is left out (the server
    ignores it)."""
    return _control("unsubscribe", markets, addresses, include_depth=False)


def resync(selector: MarketLike) -> bytes:
    """``resync`` frame: the selector flattened into the message, without ``depth``."""
    try:
        sel = MarketSelector.coerce(selector)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"resync: {exc}") from None
    msg: dict[str, Any] = {"type": "resync"}
    msg.update(sel.to_wire(include_depth=False))
    return orjson.dumps(msg)


def ws_url(base: str) -> str:
    """The WebSocket URL for a REST base URL, as the vendor SDKs derive it.

    ``https://X`` -> ``wss://X/ws``, ``http://X`` -> ``ws://X/ws`` (a trailing ``/`` on the
    base is dropped); ``ws://`` and ``wss://`` URLs are returned unchanged. Raises ValueError
    for anything else.
    """
    if not isinstance(base, str):
        raise ValueError(f"base URL must be a string, got {type(base).__name__}")
    scheme, sep, rest = base.strip().partition("://")
    scheme = scheme.lower()
    if sep and rest.strip("/"):
        if scheme in ("ws", "wss"):
            return base
        if scheme in ("http", "https"):
            return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/ws"
    raise ValueError(f"base URL must be an http(s):// or ws(s):// URL with a host, got {base!r}")


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

class _Bad(Exception):
    """A field-level decoding failure; turned into ProtocolError with the frame's start."""


_MISSING: Any = object()


def _describe(value: object) -> str:
    # Containers are summarised, never repr'd: a frame may nest up to orjson's depth limit.
    if isinstance(value, (list, dict)):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, str):
        return f"str {reprlib.repr(value)}"
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _missing_or_wrong(key: str, value: object, expected: str) -> _Bad:
    if value is _MISSING:
        return _Bad(f"missing field {key!r}")
    return _Bad(f"field {key!r} must be {expected}, got {_describe(value)}")


def _str(obj: dict, key: str) -> str:
    value = obj.get(key, _MISSING)
    if isinstance(value, str):
        return value
    raise _missing_or_wrong(key, value, "a string")


def _opt_str(obj: dict, key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _missing_or_wrong(key, value, "a string or null")


def _int(obj: dict, key: str) -> int:
    value = obj.get(key, _MISSING)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _missing_or_wrong(key, value, "an int")


def _opt_int(obj: dict, key: str) -> int | None:
    value = obj.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _missing_or_wrong(key, value, "an int or null")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(obj: dict, key: str) -> float:
    value = obj.get(key, _MISSING)
    if _is_number(value):
        return float(value)
    raise _missing_or_wrong(key, value, "a number")


def _opt_num(obj: dict, key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if _is_number(value):
        return float(value)
    raise _missing_or_wrong(key, value, "a number or null")


def _code(obj: dict) -> ErrorCode | int:
    code = _int(obj, "code")
    try:
        return ErrorCode(code)
    except ValueError:  # a code this version does not know: keep the int
        return code


def _market_fields(obj: dict) -> tuple[str, str, str, str, str]:
    """parsec_id, exchange, outcome, token_id (null/absent -> ""), market_id."""
    return (_str(obj, "parsec_id"), _str(obj, "exchange"), _str(obj, "outcome"),
            _opt_str(obj, "token_id") or "", _str(obj, "market_id"))


def _levels(obj: dict, key: str) -> tuple[tuple[float, float], ...]:
    levels = obj.get(key, _MISSING)
    if not isinstance(levels, list):
        raise _missing_or_wrong(key, levels, "a list of [price, size] pairs")
    out = []
    for i, level in enumerate(levels):
        if (not isinstance(level, list) or len(level) != 2
                or not _is_number(level[0]) or not _is_number(level[1])):
            raise _Bad(f"field {key!r}[{i}] must be a [price, size] pair of numbers, "
                       f"got {_describe(level)}")
        out.append((float(level[0]), float(level[1])))
    return tuple(out)


def _changes(obj: dict) -> tuple[tuple[str, float, float], ...]:
    changes = obj.get("changes", _MISSING)
    if not isinstance(changes, list):
        raise _missing_or_wrong("changes", changes, "a list of {side, price, size} objects")
    out = []
    for i, change in enumerate(changes):
        if not isinstance(change, dict):
            raise _Bad(f"field 'changes'[{i}] must be an object, got {_describe(change)}")
        try:
            side = _str(change, "side")
            if side != "bid" and side != "ask":
                raise _Bad(f"field 'side' must be 'bid' or 'ask', got {_describe(side)}")
            out.append((side, _num(change, "price"), _num(change, "size")))
        except _Bad as exc:
            raise _Bad(f"changes[{i}]: {exc}") from None
    return tuple(out)


def _decode_orderbook(obj: dict) -> BookSnapshot:
    parsec_id, exchange, outcome, token_id, market_id = _market_fields(obj)
    return BookSnapshot(
        parsec_id, exchange, outcome, token_id, market_id,
        _levels(obj, "bids"), _levels(obj, "asks"), _int(obj, "server_seq"),
        _opt_str(obj, "book_state"), _opt_str(obj, "feed_state"), _opt_int(obj, "stale_after_ms"),
        _opt_num(obj, "tick_size"), _opt_num(obj, "min_order_size"), _opt_str(obj, "title"),
        _opt_int(obj, "exchange_ts_ms"), _opt_int(obj, "ingest_ts_ms"),
    )


def _decode_delta(obj: dict) -> BookDelta:
    parsec_id, exchange, outcome, token_id, market_id = _market_fields(obj)
    return BookDelta(
        parsec_id, exchange, outcome, token_id, market_id,
        _changes(obj), _int(obj, "server_seq"),
        _opt_str(obj, "book_state"), _opt_str(obj, "feed_state"), _opt_int(obj, "stale_after_ms"),
        _opt_int(obj, "exchange_ts_ms"), _opt_int(obj, "ingest_ts_ms"),
    )


def _decode_activity(obj: dict) -> Message:
    kind = _str(obj, "kind")
    if kind == "trade":
        parsec_id, exchange, outcome, token_id, market_id = _market_fields(obj)
        return Trade(
            parsec_id, exchange, outcome, token_id, market_id,
            _num(obj, "price"), _num(obj, "size"), _int(obj, "server_seq"),
            _opt_str(obj, "trade_id"), _opt_str(obj, "side"), _opt_str(obj, "aggressor_side"),
            _opt_str(obj, "feed_state"), _opt_int(obj, "exchange_ts_ms"),
            _opt_int(obj, "ingest_ts_ms"), _opt_str(obj, "source_channel"),
        )
    if kind == "fill":
        parsec_id, exchange, outcome, token_id, market_id = _market_fields(obj)
        return Fill(
            parsec_id, exchange, outcome, token_id, market_id,
            _num(obj, "price"), _num(obj, "size"), _int(obj, "server_seq"),
            _opt_str(obj, "fill_id"), _opt_str(obj, "order_id"), _opt_str(obj, "side"),
            _opt_str(obj, "liquidity_role"), _opt_str(obj, "feed_state"),
            _opt_int(obj, "exchange_ts_ms"), _opt_int(obj, "ingest_ts_ms"),
            _opt_str(obj, "source_channel"),
        )
    # A newer activity kind: surface it raw rather than fail.
    return UnknownMessage("activity", obj)


def _decode_wallet(obj: dict) -> WalletActivity:
    data = obj.get("data", _MISSING)
    if not isinstance(data, dict):
        raise _missing_or_wrong("data", data, "an object")
    return WalletActivity(_str(obj, "exchange"), _str(obj, "address"), data)


_DECODERS: dict[str, Callable[[dict], Message]] = {
    "orderbook": _decode_orderbook,
    "orderbook_delta": _decode_delta,
    "activity": _decode_activity,
    "wallet_activity": _decode_wallet,
    "auth_ok": lambda o: AuthOk(_str(o, "customer_id")),
    "auth_error": lambda o: AuthError(_code(o), _str(o, "message")),
    "heartbeat": lambda o: Heartbeat(_int(o, "ts_ms")),
    "resync_required": lambda o: ResyncRequired(_str(o, "parsec_id"), _opt_str(o, "outcome")),
    "slow_reader": lambda o: SlowReader(_opt_str(o, "parsec_id"), _opt_str(o, "outcome")),
    "error": lambda o: ErrorMessage(_code(o), _str(o, "message"), _opt_str(o, "parsec_id")),
}


def _decode(obj: dict, frame: object) -> Message:
    msg_type = obj.get("type", _MISSING)
    if not isinstance(msg_type, str):
        reason = ("missing field 'type'" if msg_type is _MISSING
                  else f"field 'type' must be a string, got {_describe(msg_type)}")
        raise ProtocolError.for_frame(reason, frame)
    decoder = _DECODERS.get(msg_type)
    if decoder is None:
        return UnknownMessage(msg_type, obj)
    try:
        return decoder(obj)
    except _Bad as exc:
        raise ProtocolError.for_frame(f"bad {msg_type!r} frame: {exc}", frame) from None


def decode(frame: bytes | bytearray | memoryview | str) -> Message:
    """Parse one server frame into its typed event (book frames included).

    Raises :class:`ProtocolError` for a frame that is not JSON, not an object, has no string
    ``type`` or has a documented field of the wrong type; ``TypeError`` only if ``frame`` is
    not bytes-like or str.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"frame must be bytes or str, got {type(frame).__name__}")
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError.for_frame(f"frame is not valid JSON ({exc})", frame) from None
    if not isinstance(obj, dict):
        raise ProtocolError.for_frame(f"frame is not a JSON object but {_describe(obj)}", frame)
    return _decode(obj, frame)


def decode_message(obj: dict[str, Any]) -> Message:
    """Typed event for a frame already parsed with orjson (same rules as :func:`decode`).

    Raises :class:`ProtocolError` if ``obj`` is not a dict or is malformed.
    """
    if not isinstance(obj, dict):
        raise ProtocolError.for_frame(f"frame is not a JSON object but {_describe(obj)}", obj)
    return _decode(obj, obj)
