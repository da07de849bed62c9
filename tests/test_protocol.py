"""Tests of parsec_fast.protocol: encoders, selector validation, typed decoding, malformed frames."""
from __future__ import annotations

import dataclasses

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsec_fast.codes import ADDRESS_EXCHANGES, ErrorCode
from parsec_fast.errors import ProtocolError
from parsec_fast.messages import (
    AuthError,
    AuthOk,
    BookDelta,
    BookSnapshot,
    ErrorMessage,
    Message,
    Fill,
    Heartbeat,
    ResyncRequired,
    SlowReader,
    Trade,
    UnknownMessage,
    WalletActivity,
)
from parsec_fast.protocol import (
    AddressSelector,
    MarketSelector,
    auth,
    auth_terminal,
    decode,
    decode_message,
    resync,
    subscribe,
    unsubscribe,
    ws_url,
)

# ------------------------------------------------------------------------------------------
# Encoders
# ------------------------------------------------------------------------------------------


def test_auth_frames():
    assert orjson.loads(auth("sk_live_1")) == {"type": "auth", "api_key": "sk_live_1"}
    assert orjson.loads(auth_terminal("tok")) == {"type": "auth_terminal", "token": "tok"}
    assert isinstance(auth("k"), bytes)


def test_subscribe_all_selector_forms():
    frame = subscribe(
        markets=[
            "kalshi:KXBTC-26MAR10",
            MarketSelector(parsec_id="polymarket:572473", outcome="No", depth=10),
            {"exchange": "kalshi", "market_id": "KXETH", "outcome": "Yes", "depth": 100},
            {"parsec_id": "opinion:9", "outcome": None, "depth": None},
        ],
        addresses=[
            AddressSelector("polymarket", "0xabc"),
            {"exchange": "limitless", "address": "0xdef"},
            ("predictfun", "0x123"),
        ],
    )
    assert isinstance(frame, bytes)
    assert orjson.loads(frame) == {
        "type": "subscribe",
        "markets": [
            {"parsec_id": "kalshi:KXBTC-26MAR10"},
            {"parsec_id": "polymarket:572473", "outcome": "No", "depth": 10},
            {"exchange": "kalshi", "market_id": "KXETH", "outcome": "Yes", "depth": 100},
            {"parsec_id": "opinion:9"},
        ],
        "addresses": [
            {"exchange": "polymarket", "address": "0xabc"},
            {"exchange": "limitless", "address": "0xdef"},
            {"exchange": "predictfun", "address": "0x123"},
        ],
    }


def test_subscribe_leaves_out_empty_lists_and_accepts_single_selectors():
    assert orjson.loads(subscribe(markets="kalshi:X")) == {
        "type": "subscribe", "markets": [{"parsec_id": "kalshi:X"}]}
    assert orjson.loads(subscribe(markets=[], addresses=[("opinion", "0x1")])) == {
        "type": "subscribe", "addresses": [{"exchange": "opinion", "address": "0x1"}]}
    assert orjson.loads(subscribe(markets=(m for m in ["a:1", "b:2"]))) == {
        "type": "subscribe", "markets": [{"parsec_id": "a:1"}, {"parsec_id": "b:2"}]}
    assert orjson.loads(subscribe(addresses={"exchange": "polymarket", "address": "0x9"})) == {
        "type": "subscribe", "addresses": [{"exchange": "polymarket", "address": "0x9"}]}


def test_unsubscribe_drops_depth():
    frame = unsubscribe(markets=[MarketSelector(parsec_id="kalshi:X", outcome="Yes", depth=20),
                                 {"exchange": "kalshi", "market_id": "Y", "depth": 5}],
                        addresses=[("polymarket", "0xa")])
    assert orjson.loads(frame) == {
        "type": "unsubscribe",
        "markets": [{"parsec_id": "kalshi:X", "outcome": "Yes"},
                    {"exchange": "kalshi", "market_id": "Y"}],
        "addresses": [{"exchange": "polymarket", "address": "0xa"}],
    }


def test_resync_flattens_selector_without_depth():
    assert orjson.loads(resync("polymarket:572473")) == {
        "type": "resync", "parsec_id": "polymarket:572473"}
    assert orjson.loads(resync(MarketSelector(parsec_id="kalshi:X", outcome="Trump", depth=7))) == {
        "type": "resync", "parsec_id": "kalshi:X", "outcome": "Trump"}
    assert orjson.loads(resync({"exchange": "kalshi", "market_id": "X", "outcome": "No"})) == {
        "type": "resync", "exchange": "kalshi", "market_id": "X", "outcome": "No"}


def test_selector_coerce_and_canonical_id():
    sel = MarketSelector(parsec_id="kalshi:X")
    assert MarketSelector.coerce(sel) is sel
    assert MarketSelector.coerce("kalshi:X") == sel
    assert MarketSelector.coerce({"exchange": "kalshi", "market_id": "X"}).canonical_id == "kalshi:X"
    assert MarketSelector.coerce("polymarket:a:b").canonical_id == "polymarket:a:b"
    addr = AddressSelector("polymarket", "0x1")
    assert AddressSelector.coerce(addr) is addr
    assert AddressSelector.coerce(["polymarket", "0x1"]) == addr
    with pytest.raises(dataclasses.FrozenInstanceError):
        sel.depth = 5  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# Validation: ValueError naming the field, before anything is encoded
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    ({"parsec_id": "kalshi:X", "exchange": "kalshi"}, "parsec_id or exchange+market_id"),
    ({"parsec_id": "kalshi:X", "market_id": "X"}, "parsec_id or exchange+market_id"),
    ({}, "parsec_id or exchange+market_id"),
    ({"parsec_id": "kalshiX"}, "parsec_id"),
    ({"parsec_id": ":X"}, "parsec_id"),
    ({"parsec_id": "kalshi:"}, "parsec_id"),
    ({"parsec_id": " :X"}, "parsec_id"),
    ({"parsec_id": ""}, "parsec_id"),
    ({"parsec_id": 5}, "parsec_id"),
    ({"exchange": "kalshi"}, "market_id"),
    ({"market_id": "X"}, "exchange"),
    ({"exchange": "", "market_id": "X"}, "exchange"),
    ({"exchange": "kalshi", "market_id": "  "}, "market_id"),
    ({"exchange": "kalshi", "market_id": 7}, "market_id"),
    ({"parsec_id": "kalshi:X", "outcome": ""}, "outcome"),
    ({"parsec_id": "kalshi:X", "outcome": 1}, "outcome"),
    ({"parsec_id": "kalshi:X", "depth": 0}, "depth"),
    ({"parsec_id": "kalshi:X", "depth": 101}, "depth"),
    ({"parsec_id": "kalshi:X", "depth": -1}, "depth"),
    ({"parsec_id": "kalshi:X", "depth": True}, "depth"),
    ({"parsec_id": "kalshi:X", "depth": 10.0}, "depth"),
    ({"parsec_id": "kalshi:X", "depth": "10"}, "depth"),
])
def test_market_selector_validation(kwargs, field):
    with pytest.raises(ValueError) as info:
        MarketSelector(**kwargs)
    assert field in str(info.value)
    # The same error surfaces from every encoder that takes a selector, prefixed by the item.
    with pytest.raises(ValueError) as info:
        subscribe(markets=["kalshi:OK", kwargs])
    assert "markets[1]" in str(info.value) and field in str(info.value)
    with pytest.raises(ValueError) as info:
        resync(kwargs)
    assert field in str(info.value)


def test_depth_bounds_are_inclusive():
    assert MarketSelector(parsec_id="a:b", depth=1).depth == 1
    assert MarketSelector(parsec_id="a:b", depth=100).depth == 100


@pytest.mark.parametrize("value, field", [
    ({"parsec_id": "kalshi:X", "markt_id": "X"}, "markt_id"),
    (42, "int"),
    (None, "NoneType"),
])
def test_market_coerce_rejects_bad_input(value, field):
    with pytest.raises(ValueError) as info:
        MarketSelector.coerce(value)
    assert field in str(info.value)


@pytest.mark.parametrize("value, field", [
    (("kalshi", "0x1"), "exchange"),     # not an address exchange
    (("Polymarket", "0x1"), "exchange"),
    (("polymarket", ""), "address"),
    (("polymarket", None), "address"),
    ({"exchange": "polymarket"}, "address"),
    ({"exchange": "polymarket", "address": "0x1", "extra": 1}, "extra"),
    (("polymarket", "0x1", "x"), "pair"),
    (17, "int"),
])
def test_address_validation(value, field):
    with pytest.raises(ValueError) as info:
        AddressSelector.coerce(value)
    assert field in str(info.value)
    with pytest.raises(ValueError) as info:
        subscribe(addresses=[value])
    assert "addresses[0]" in str(info.value) and field in str(info.value)


def test_every_address_exchange_accepted():
    for exchange in ADDRESS_EXCHANGES:
        assert AddressSelector(exchange, "0x1").to_wire() == {"exchange": exchange, "address": "0x1"}


@pytest.mark.parametrize("encoder", [subscribe, unsubscribe])
@pytest.mark.parametrize("kwargs", [{}, {"markets": []}, {"markets": [], "addresses": ()},
                                    {"markets": None, "addresses": None}])
def test_control_needs_a_non_empty_list(encoder, kwargs):
    with pytest.raises(ValueError) as info:
        encoder(**kwargs)
    assert "markets" in str(info.value) and "addresses" in str(info.value)


def test_markets_must_be_iterable():
    with pytest.raises(ValueError) as info:
        subscribe(markets=5)
    assert "markets" in str(info.value)


@pytest.mark.parametrize("encoder, field", [(auth, "api_key"), (auth_terminal, "token")])
@pytest.mark.parametrize("value", ["", "   ", None, 123, b"key"])
def test_auth_validation(encoder, field, value):
    with pytest.raises(ValueError) as info:
        encoder(value)
    assert field in str(info.value)


@pytest.mark.parametrize("base, expected", [
    ("https://api.parsecapi.com", "wss://api.parsecapi.com/ws"),
    ("https://api.parsecapi.com/", "wss://api.parsecapi.com/ws"),
    ("http://127.0.0.1:8765", "ws://127.0.0.1:8765/ws"),
    ("HTTP://host/api", "ws://host/api/ws"),
    ("wss://api.parsecapi.com/ws", "wss://api.parsecapi.com/ws"),
    ("ws://127.0.0.1:1/ws", "ws://127.0.0.1:1/ws"),
])
def test_ws_url(base, expected):
    assert ws_url(base) == expected


@pytest.mark.parametrize("base", ["ftp://x", "api.parsecapi.com", "https://", "", 5])
def test_ws_url_rejects(base):
    with pytest.raises(ValueError):
        ws_url(base)


# ------------------------------------------------------------------------------------------
# Decoding the documented frames
# ------------------------------------------------------------------------------------------

SNAPSHOT = (b'{"type":"orderbook","parsec_id":"polymarket:572473","exchange":"polymarket",'
            b'"outcome":"Yes","token_id":"50310842821","market_id":"572473","tick_size":0.001,'
            b'"min_order_size":1.0,"kind":"snapshot","title":"Will ETH reach $5000?",'
            b'"bids":[[0.65,1000.0],[0.64,2500.0]],"asks":[[0.66,800.0],[0.67,1500.0]],'
            b'"book_state":"fresh","server_seq":1234,"feed_state":"healthy","stale_after_ms":5000,'
            b'"exchange_ts_ms":1708123456000,"ingest_ts_ms":1708123456050}')

DELTA = (b'{"type":"orderbook_delta","parsec_id":"polymarket:572473","exchange":"polymarket",'
         b'"outcome":"Yes","token_id":"50310842821","market_id":"572473",'
         b'"changes":[{"side":"bid","price":0.65,"size":900.0},{"side":"ask","price":0.66,"size":0.0}],'
         b'"server_seq":1235,"feed_state":"healthy","book_state":"fresh","stale_after_ms":5000,'
         b'"exchange_ts_ms":1708123456100,"ingest_ts_ms":1708123456105}')

TRADE = (b'{"type":"activity","parsec_id":"polymarket:572473","exchange":"polymarket",'
         b'"outcome":"Yes","token_id":"50310842821","market_id":"572473","kind":"trade",'
         b'"price":0.65,"size":100.0,"trade_id":"trade_123","side":"buy","aggressor_side":"buy",'
         b'"server_seq":1236,"feed_state":"healthy","exchange_ts_ms":1708123456200,'
         b'"ingest_ts_ms":1708123456250,"source_channel":"polymarket_last_trade_price"}')

FILL = {"type": "activity", "parsec_id": "kalshi:KXBTC", "exchange": "kalshi", "outcome": "No",
        "token_id": "", "market_id": "KXBTC", "kind": "fill", "price": 1, "size": 5,
        "fill_id": "f1", "order_id": "o9", "side": "sell", "liquidity_role": "maker",
        "server_seq": 77, "feed_state": "degraded", "exchange_ts_ms": 10, "ingest_ts_ms": 11,
        "source_channel": "kalshi_fills"}


def test_decode_snapshot():
    ev = decode(SNAPSHOT)
    assert ev == BookSnapshot(
        parsec_id="polymarket:572473", exchange="polymarket", outcome="Yes",
        token_id="50310842821", market_id="572473",
        bids=((0.65, 1000.0), (0.64, 2500.0)), asks=((0.66, 800.0), (0.67, 1500.0)),
        server_seq=1234, book_state="fresh", feed_state="healthy", stale_after_ms=5000,
        tick_size=0.001, min_order_size=1.0, title="Will ETH reach $5000?",
        exchange_ts_ms=1708123456000, ingest_ts_ms=1708123456050)
    assert hash(ev) == hash(decode(SNAPSHOT.decode()))  # str frames too; immutable and hashable


def test_decode_snapshot_optional_metadata_and_empty_side():
    obj = orjson.loads(SNAPSHOT)
    for key in ("min_order_size", "title", "exchange_ts_ms"):
        obj[key] = None
    for key in ("ingest_ts_ms", "tick_size", "book_state", "feed_state", "stale_after_ms",
                "token_id"):
        del obj[key]
    obj["asks"] = []
    obj["bids"] = [[1, 3]]           # ints where floats are expected are fine
    obj["future_field"] = {"x": 1}   # unknown extra fields are ignored
    ev = decode_message(obj)
    assert isinstance(ev, BookSnapshot)
    assert ev.asks == () and ev.bids == ((1.0, 3.0),) and type(ev.bids[0][0]) is float
    assert (ev.min_order_size, ev.title, ev.exchange_ts_ms, ev.ingest_ts_ms, ev.tick_size,
            ev.book_state, ev.feed_state, ev.stale_after_ms) == (None,) * 8
    assert ev.token_id == ""


def test_decode_delta():
    ev = decode(DELTA)
    assert ev == BookDelta(
        parsec_id="polymarket:572473", exchange="polymarket", outcome="Yes",
        token_id="50310842821", market_id="572473",
        changes=(("bid", 0.65, 900.0), ("ask", 0.66, 0.0)), server_seq=1235,
        book_state="fresh", feed_state="healthy", stale_after_ms=5000,
        exchange_ts_ms=1708123456100, ingest_ts_ms=1708123456105)
    obj = orjson.loads(DELTA)
    obj["changes"] = []  # a state-only delta
    obj["book_state"] = "needs_refresh"
    ev = decode_message(obj)
    assert ev.changes == () and ev.book_state == "needs_refresh"


def test_decode_trade():
    assert decode(TRADE) == Trade(
        parsec_id="polymarket:572473", exchange="polymarket", outcome="Yes",
        token_id="50310842821", market_id="572473", price=0.65, size=100.0, server_seq=1236,
        trade_id="trade_123", side="buy", aggressor_side="buy", feed_state="healthy",
        exchange_ts_ms=1708123456200, ingest_ts_ms=1708123456250,
        source_channel="polymarket_last_trade_price")
    obj = orjson.loads(TRADE)
    obj["side"] = None
    del obj["aggressor_side"], obj["trade_id"], obj["source_channel"], obj["feed_state"]
    ev = decode_message(obj)
    assert isinstance(ev, Trade)
    assert (ev.side, ev.aggressor_side, ev.trade_id, ev.source_channel, ev.feed_state) == (None,) * 5


def test_decode_fill():
    ev = decode(orjson.dumps(FILL))
    assert ev == Fill(
        parsec_id="kalshi:KXBTC", exchange="kalshi", outcome="No", token_id="",
        market_id="KXBTC", price=1.0, size=5.0, server_seq=77, fill_id="f1", order_id="o9",
        side="sell", liquidity_role="maker", feed_state="degraded", exchange_ts_ms=10,
        ingest_ts_ms=11, source_channel="kalshi_fills")
    assert type(ev.price) is float
    ev = decode_message({**FILL, "liquidity_role": None, "side": None})
    assert ev.liquidity_role is None and ev.side is None


def test_decode_unknown_activity_kind_is_passed_through():
    obj = {**FILL, "kind": "settlement"}
    assert decode_message(obj) == UnknownMessage(type="activity", raw=obj)


def test_decode_control_frames():
    assert decode(b'{"type":"auth_ok","customer_id":"cust_abc123"}') == AuthOk("cust_abc123")
    ev = decode(b'{"type":"auth_error","code":1002,"message":"invalid api key"}')
    assert ev == AuthError(code=1002, message="invalid api key")
    assert ev.code is ErrorCode.INVALID_CREDENTIALS
    assert decode(b'{"type":"heartbeat","ts_ms":1708123456400}') == Heartbeat(1708123456400)
    assert decode(b'{"type":"resync_required","parsec_id":"kalshi:X","outcome":"Yes"}') == \
        ResyncRequired(parsec_id="kalshi:X", outcome="Yes")
    assert decode(b'{"type":"resync_required","parsec_id":"kalshi:X"}') == \
        ResyncRequired(parsec_id="kalshi:X", outcome=None)
    assert decode(b'{"type":"slow_reader","parsec_id":"kalshi:X","outcome":"No"}') == \
        SlowReader(parsec_id="kalshi:X", outcome="No")
    assert decode(b'{"type":"slow_reader"}') == SlowReader(parsec_id=None, outcome=None)
    ev = decode(b'{"type":"error","code":2002,"message":"market not found","parsec_id":"kalshi:NOPE"}')
    assert ev == ErrorMessage(code=ErrorCode.MARKET_NOT_FOUND, message="market not found",
                            parsec_id="kalshi:NOPE")
    ev = decode(b'{"type":"error","code":3002,'
                b'"message":"max subscriptions reached (limit: 3, tier: free)"}')
    assert ev.code is ErrorCode.MAX_SUBSCRIPTIONS and ev.parsec_id is None
    ev = decode(b'{"type":"error","code":9999,"message":"new"}')
    assert ev.code == 9999 and type(ev.code) is int


def test_decode_wallet_activity():
    data = {"positions": [{"market": "m", "size": 1}], "orders": [], "trades": [], "ts_ms": 5}
    frame = orjson.dumps({"type": "wallet_activity", "exchange": "polymarket",
                          "address": "0xabc", "data": data})
    ev = decode(frame)
    assert ev == WalletActivity(exchange="polymarket", address="0xabc", data=data)
    hash(ev)  # data is excluded from the hash, so the event stays hashable


def test_decode_unknown_type():
    obj = {"type": "brand_new", "x": [1, 2]}
    assert decode(orjson.dumps(obj)) == UnknownMessage(type="brand_new", raw=obj)
    assert decode_message(obj).raw is obj


def test_events_are_frozen():
    ev = decode(b'{"type":"heartbeat","ts_ms":1}')
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.ts_ms = 2  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# Malformed frames -> ProtocolError naming the field and quoting the frame
# ------------------------------------------------------------------------------------------

def _mutated(frame: bytes, **changes) -> bytes:
    obj = orjson.loads(frame)
    for key, value in changes.items():
        if value is _DELETE:
            del obj[key]
        else:
            obj[key] = value
    return orjson.dumps(obj)


_DELETE = object()


@pytest.mark.parametrize("frame, needle", [
    (b"", "JSON"),
    (b"not json", "JSON"),
    (b'{"type":"heartbeat"', "JSON"),
    (b"\xff\xfe", "JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'"heartbeat"', "not a JSON object"),
    (b"null", "not a JSON object"),
    (b"{}", "'type'"),
    (b'{"type":7}', "'type'"),
    (b'{"type":null}', "'type'"),
    (b'{"type":"auth_ok"}', "'customer_id'"),
    (b'{"type":"auth_ok","customer_id":5}', "'customer_id'"),
    (b'{"type":"auth_error","code":"1002","message":"x"}', "'code'"),
    (b'{"type":"auth_error","code":true,"message":"x"}', "'code'"),
    (b'{"type":"auth_error","code":1002.0,"message":"x"}', "'code'"),
    (b'{"type":"auth_error","code":1002}', "'message'"),
    (b'{"type":"heartbeat"}', "'ts_ms'"),
    (b'{"type":"heartbeat","ts_ms":"1"}', "'ts_ms'"),
    (b'{"type":"heartbeat","ts_ms":1e30}', "'ts_ms'"),
    (b'{"type":"heartbeat","ts_ms":123456789012345678901234567890}', "'ts_ms'"),  # > 64 bits
    (b'{"type":"heartbeat","ts_ms":1e999}', "JSON"),
    (b'{"type":"resync_required","outcome":"Yes"}', "'parsec_id'"),
    (b'{"type":"resync_required","parsec_id":"a:b","outcome":1}', "'outcome'"),
    (b'{"type":"slow_reader","parsec_id":[]}', "'parsec_id'"),
    (b'{"type":"error","code":null,"message":"x"}', "'code'"),
    (b'{"type":"error","code":2002,"message":"x","parsec_id":3}', "'parsec_id'"),
    (b'{"type":"wallet_activity","exchange":"polymarket","address":"0x1","data":[]}', "'data'"),
    (b'{"type":"wallet_activity","exchange":"polymarket","data":{}}', "'address'"),
    (_mutated(SNAPSHOT, server_seq="1234"), "'server_seq'"),
    (_mutated(SNAPSHOT, server_seq=1234.0), "'server_seq'"),
    (_mutated(SNAPSHOT, server_seq=_DELETE), "'server_seq'"),
    (_mutated(SNAPSHOT, bids={"0.5": 1}), "'bids'"),
    (_mutated(SNAPSHOT, bids=_DELETE), "'bids'"),
    (_mutated(SNAPSHOT, asks=[[0.5]]), "'asks'[0]"),
    (_mutated(SNAPSHOT, asks=[[0.5, 1, 2]]), "'asks'[0]"),
    (_mutated(SNAPSHOT, asks=[[0.5, 1], [0.6, "1"]]), "'asks'[1]"),
    (_mutated(SNAPSHOT, bids=[[True, 1]]), "'bids'[0]"),
    (_mutated(SNAPSHOT, bids=[0.5, 1]), "'bids'[0]"),
    (_mutated(SNAPSHOT, tick_size="0.01"), "'tick_size'"),
    (_mutated(SNAPSHOT, title=5), "'title'"),
    (_mutated(SNAPSHOT, stale_after_ms=5000.5), "'stale_after_ms'"),
    (_mutated(SNAPSHOT, exchange_ts_ms=False), "'exchange_ts_ms'"),
    (_mutated(SNAPSHOT, parsec_id=None), "'parsec_id'"),
    (_mutated(SNAPSHOT, outcome=_DELETE), "'outcome'"),
    (_mutated(SNAPSHOT, token_id=5), "'token_id'"),
    (_mutated(DELTA, changes=None), "'changes'"),
    (_mutated(DELTA, changes=[["bid", 0.5, 1]]), "'changes'[0]"),
    (_mutated(DELTA, changes=[{"side": "buy", "price": 0.5, "size": 1}]), "'side'"),
    (_mutated(DELTA, changes=[{"side": "bid", "price": "0.5", "size": 1}]), "'price'"),
    (_mutated(DELTA, changes=[{"side": "bid", "price": 0.5}]), "'size'"),
    (_mutated(DELTA, server_seq=None), "'server_seq'"),
    (_mutated(DELTA, feed_state=1), "'feed_state'"),
    (_mutated(TRADE, kind=1), "'kind'"),
    (_mutated(TRADE, kind=_DELETE), "'kind'"),
    (_mutated(TRADE, price="0.65"), "'price'"),
    (_mutated(TRADE, size=None), "'size'"),
    (_mutated(TRADE, trade_id=123), "'trade_id'"),
    (_mutated(TRADE, server_seq=True), "'server_seq'"),
    (_mutated(orjson.dumps(FILL), order_id=5), "'order_id'"),
    (_mutated(orjson.dumps(FILL), liquidity_role=[]), "'liquidity_role'"),
])
def test_malformed_frames(frame, needle):
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    message = str(info.value)
    assert needle in message
    assert repr(frame[:20])[2:-1] in message  # the start of the frame is quoted
    obj = None
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError:
        pass
    if obj is not None or frame == b"null":
        with pytest.raises(ProtocolError) as info:
            decode_message(obj)
        assert needle in str(info.value)


def test_protocol_error_quotes_at_most_80_bytes():
    frame = b'{"type":"heartbeat","ts_ms":"x","pad":"' + b"z" * 500 + b'"}'
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    message = str(info.value)
    assert repr(frame[:80]) in message and "z" * 81 not in message


def test_decode_rejects_non_frames_with_type_error():
    with pytest.raises(TypeError):
        decode(123)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Properties: decode only ever returns a Message or raises ProtocolError
# ------------------------------------------------------------------------------------------

def _outcome(frame):
    try:
        result = decode(frame)
    except ProtocolError:
        return None
    assert isinstance(result, Message)
    return result


json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) \
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)

# Frames shaped like real ones: a known type and documented keys with arbitrary values, so the
# field checks (not just the type dispatch) are exercised.
KNOWN_TYPES = ["orderbook", "orderbook_delta", "activity", "wallet_activity", "auth_ok",
               "auth_error", "heartbeat", "resync_required", "slow_reader", "error", "other"]
KNOWN_KEYS = ["parsec_id", "exchange", "outcome", "token_id", "market_id", "bids", "asks",
              "changes", "server_seq", "book_state", "feed_state", "stale_after_ms", "tick_size",
              "min_order_size", "title", "exchange_ts_ms", "ingest_ts_ms", "kind", "price", "size",
              "side", "trade_id", "fill_id", "order_id", "liquidity_role", "aggressor_side",
              "source_channel", "address", "data", "customer_id", "code", "message", "ts_ms"]
level = st.lists(json_scalars, min_size=0, max_size=3)
change = st.fixed_dictionaries({}, optional={"side": st.sampled_from(["bid", "ask", "x"]) | json_scalars,
                                             "price": json_scalars, "size": json_scalars})
field_value = json_values | st.lists(level, max_size=3) | st.lists(change, max_size=3) \
    | st.sampled_from(["trade", "fill", "bid", "ask"])
shaped = st.builds(
    lambda t, fields: {"type": t, **fields},
    st.sampled_from(KNOWN_TYPES),
    st.dictionaries(st.sampled_from(KNOWN_KEYS), field_value, max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes(frame):
    _outcome(frame)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_decode_arbitrary_json(value):
    frame = orjson.dumps(value)
    _outcome(frame)
    _outcome(frame.decode())


@settings(max_examples=500, deadline=None)
@given(shaped)
def test_decode_shaped_frames(obj):
    result = _outcome(orjson.dumps(obj))
    try:
        same = decode_message(obj)
    except ProtocolError:
        assert result is None
    else:
        assert same == result


@settings(max_examples=200, deadline=None)
@given(st.builds(lambda base, fields: {**base, **fields},
                 st.sampled_from([orjson.loads(SNAPSHOT), orjson.loads(DELTA),
                                  orjson.loads(TRADE), FILL]),
                 st.dictionaries(st.sampled_from(KNOWN_KEYS), field_value, max_size=2)))
def test_decode_mutated_valid_frames(obj):
    _outcome(orjson.dumps(obj))
