"""The native frame scanner (parsec_fast._scan) against orjson, the reference decoder.

Contract under test, for any bytes:
- scanner says DELTA / SNAPSHOT / OTHER  ->  orjson.loads succeeds and yields exactly the same
  fields, every double bit for bit;
- orjson.loads fails                     ->  scanner says FALLBACK;
- and, so that "always FALLBACK" cannot pass: a frame built clean (no escapes in the fields the
  scanner reads, numbers it can convert) is always scanned natively.

HYPOTHESIS_PROFILE=heavy multiplies the number of examples (a long run, not for CI).
"""
from __future__ import annotations

import json
import os
import re
import struct

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from parsec_fast._scan import FrameScanner, parse_number, scan_to_python

HEAVY = os.environ.get("HYPOTHESIS_PROFILE", "") == "heavy"
N = 20_000 if HEAVY else 200
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NEEDED_KEYS = {"type", "parsec_id", "outcome", "server_seq", "changes", "bids", "asks",
               "book_state", "feed_state", "stale_after_ms", "exchange_ts_ms", "ingest_ts_ms"}
NUMBER_RE = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
BOOK_STATES = {"fresh", "stale", "needs_refresh"}
FEED_STATES = {"healthy", "degraded", "disconnected"}


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def as_double(v) -> float:
    """What the book makes of an orjson number: float(int) for ints (correctly rounded)."""
    return float(v)


# ---------------------------------------------------------------------------------------------
# The oracle


def check_against_orjson(data: bytes) -> dict:
    """Assert the scanner/orjson contract on ``data``; return what the scanner read."""
    got = scan_to_python(data)
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        assert got["kind"] == "fallback", (data, got)
        return got
    kind = got["kind"]
    if kind == "fallback":
        return got
    assert isinstance(obj, dict), (data, got)
    assert obj.get("type") == got["type"], (data, got)
    if kind == "other":
        assert got["type"] not in ("orderbook", "orderbook_delta")
        return got
    assert got["type"] == ("orderbook_delta" if kind == "delta" else "orderbook")
    assert obj["parsec_id"] == got["parsec_id"], (data, got)
    if got["outcome"] is None:
        assert "outcome" not in obj, (data, got)
    else:
        assert obj["outcome"] == got["outcome"], (data, got)
    seq = obj["server_seq"]
    assert type(seq) is int and seq == got["server_seq"], (data, got)
    for key, known in (("book_state", BOOK_STATES), ("feed_state", FEED_STATES)):
        v = obj.get(key)
        if v is None:
            assert got[key] is None, (data, got)
        else:
            assert isinstance(v, str), (data, got)
            assert got[key] == (v if v in known else "other"), (data, got)
    for key in ("stale_after_ms", "exchange_ts_ms", "ingest_ts_ms"):
        v = obj.get(key)   # absent or null: not present; else an int64 integer, same value
        if v is None:
            assert got[key] is None, (data, got)
        else:
            assert type(v) is int and v == got[key], (data, got)
    if kind == "delta":
        ch = obj["changes"]
        assert isinstance(ch, list) and len(ch) == len(got["changes"]), (data, got)
        for c, (side, price, size) in zip(ch, got["changes"]):
            assert isinstance(c, dict) and c["side"] == side, (data, got)
            assert is_num(c["price"]) and is_num(c["size"]), (data, got)
            assert bits(as_double(c["price"])) == bits(price), (data, c, price)
            assert bits(as_double(c["size"])) == bits(size), (data, c, size)
    else:
        for key in ("bids", "asks"):
            lv = obj[key]
            assert isinstance(lv, list) and len(lv) == len(got[key]), (data, got)
            for pair, (price, size) in zip(lv, got[key]):
                assert isinstance(pair, list) and len(pair) == 2, (data, got)
                assert is_num(pair[0]) and is_num(pair[1]), (data, got)
                assert bits(as_double(pair[0])) == bits(price), (data, pair, price)
                assert bits(as_double(pair[1])) == bits(size), (data, pair, size)
    return got


# ---------------------------------------------------------------------------------------------
# Numbers


def orjson_double(tok: bytes):
    """orjson's double for a number token, or None when orjson rejects it."""
    try:
        v = orjson.loads(tok)
    except orjson.JSONDecodeError:
        return None
    # not a number token at all (random bytes can spell b'""' or b'[]'): the scanner's number
    # reader must refuse it, like an invalid token
    return v if is_num(v) else None


def scanner_should_convert(tok: bytes, v) -> bool:
    """The documented limits: integer tokens only within int64, at most 95 characters."""
    if v is None or not NUMBER_RE.fullmatch(tok):   # e.g. surrounding whitespace
        return False
    if not any(c in tok for c in b".eE"):      # integer token (orjson: int, or float beyond u64)
        return INT64_MIN <= int(tok) <= INT64_MAX
    return len(tok) <= 95


def check_number(tok: bytes) -> None:
    v = orjson_double(tok)
    d = parse_number(tok)
    if d is not None:
        assert v is not None, tok
        assert bits(d) == bits(as_double(v)), (tok, d, v)
    else:
        assert not scanner_should_convert(tok, v), (tok, v)
    if NUMBER_RE.fullmatch(tok):
        check_number_in_frame(tok, d)


def check_number_in_frame(tok: bytes, d) -> None:
    """The same token inside a frame, where more bytes follow it (parse_number's buffer ends
    with the token, so it takes the byte-by-byte tails; here the word-at-a-time paths run):
    same double as a level price, and as an integer field the int64 value or a fallback."""
    pad = b',"pad":"0123456789abcdef0123456789"}'
    got = scan_to_python(b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[['
                         + tok + b',1]],"asks":[]' + pad)
    if d is None:
        assert got["kind"] == "fallback", (tok, got)
    else:
        assert got["kind"] == "snapshot" and bits(got["bids"][0][0]) == bits(d), (tok, got, d)
    got = scan_to_python(b'{"type":"orderbook","parsec_id":"a","server_seq":' + tok
                         + b',"bids":[],"asks":[]' + pad)
    is_int = not any(c in tok for c in b".eE")
    if is_int and INT64_MIN <= int(tok) <= INT64_MAX:
        assert got["kind"] == "snapshot" and got["server_seq"] == int(tok), (tok, got)
    else:
        assert got["kind"] == "fallback", (tok, got)


def spellings(x: float) -> list[str]:
    out = [repr(x), json.dumps(x), orjson.dumps(x).decode(), "%.17g" % x, "%.15g" % x,
           "%.16e" % x, "%.3e" % x, ("%.17g" % x).upper()]
    for nd in (0, 1, 2, 3, 4, 6, 8, 10, 15, 17, 20, 25):
        s = "%.*f" % (nd, x)
        if len(s) < 400:
            out.append(s)
    if x == int(x) and abs(x) < 2**63:
        out.append(str(int(x)))
    return [s for s in out if "inf" not in s and "nan" not in s]


decimal_tokens = st.from_regex(
    r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?0{0,3}[0-9]{1,3})?\Z")


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(0.0)
@example(-0.0)
@example(5e-324)
@example(2.2250738585072014e-308)
@example(2.225073858507201e-308)
@example(1.7976931348623157e308)
@example(0.1 + 0.2)
@example(9007199254740993.0)
def test_number_float_spellings(x):
    for s in spellings(x):
        check_number(s.encode())
        v = orjson_double(s.encode())
        if isinstance(v, float) and s in (repr(x), orjson.dumps(x).decode()):
            assert bits(parse_number(s.encode())) == bits(x)   # round trip


@SETTINGS
@given(decimal_tokens)
@example("-0")
@example("-0.0")
@example("1E+2")
@example("1e400")
@example("-1e400")
@example("1e-400")
@example("0e999999")
@example("9223372036854775807")
@example("9223372036854775808")
@example("-9223372036854775808")
@example("-9223372036854775809")
@example("18446744073709551616")
@example("123456789012345")
@example("1234567890123456")
@example("0.000000000000000000000000000001e30")
@example("2.4703282292062328e-324")
@example("2.4703282292062327e-324")
@example("1.7976931348623158e308")
@example("1.7976931348623159e308")
def test_number_decimal_strings(tok):
    check_number(tok.encode())


@SETTINGS
@given(st.binary(max_size=30) | st.text(alphabet="0123456789-+.eE ", max_size=30).map(str.encode))
@example(b"01")
@example(b"1.")
@example(b".5")
@example(b"+1")
@example(b"-")
@example(b"1e")
@example(b"1e+")
@example(b"NaN")
@example(b"Infinity")
@example(b"-Infinity")
@example(b"0x10")
@example(b"1_000")
def test_number_garbage(tok):
    check_number(tok)


def test_number_locale_independent():
    """strtod_l with a private "C" locale: a process LC_NUMERIC with ',' must not matter.

    Skipped where no such locale is installed; to run it anyway:
    localedef -i de_DE -f UTF-8 /tmp/loc/de_DE.UTF-8 and LOCPATH=/tmp/loc pytest ...
    (checked so: plain strtod reads "0.12345678901234567" as 0.0 there, the scanner does not).
    """
    import locale

    old = locale.setlocale(locale.LC_NUMERIC)
    try:
        for name in ("de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "ru_RU.UTF-8"):
            try:
                locale.setlocale(locale.LC_NUMERIC, name)
            except locale.Error:
                continue
            if locale.localeconv()["decimal_point"] == ",":
                break
        else:
            pytest.skip("no locale with a decimal comma installed")
        # 17 significant digits and a subnormal: both take the strtod path
        assert parse_number(b"0.12345678901234567") == 0.12345678901234567
        assert parse_number(b"1.5e-310") == 1.5e-310
    finally:
        locale.setlocale(locale.LC_NUMERIC, old)


# ---------------------------------------------------------------------------------------------
# A randomising JSON writer: whitespace, escapes, number spellings


WS = st.sampled_from(["", "", "", "", " ", "\n", "\t", "\r\n  ", "  "])


class Writer:
    def __init__(self, draw):
        self.draw = draw

    def ws(self) -> str:
        return self.draw(WS)

    def string(self, s: str, may_escape: bool = True) -> tuple[str, bool]:
        """JSON string literal of s; returns (text, escaped?)."""
        out = ['"']
        esc = False
        for ch in s:
            o = ord(ch)
            must = ch in '"\\' or o < 0x20
            if must or (may_escape and self.draw(st.integers(0, 15)) == 0):
                esc = True
                short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r",
                         "\b": "\\b", "\f": "\\f", "/": "\\/"}
                if ch in short and self.draw(st.booleans()):
                    out.append(short[ch])
                elif o > 0xFFFF:
                    o -= 0x10000
                    out.append("\\u%04x\\u%04X" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
                else:
                    out.append(("\\u%04x" if self.draw(st.booleans()) else "\\u%04X") % o)
            else:
                out.append(ch)
        out.append('"')
        return "".join(out), esc

    def number(self, x) -> str:
        if isinstance(x, int):
            return str(x)
        return self.draw(st.sampled_from(spellings(x)))

    def value(self, v) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, (int, float)):
            return self.number(v)
        if isinstance(v, str):
            return self.string(v)[0]
        if isinstance(v, list):
            if not v:
                return "[" + self.ws() + "]"
            return "[" + ",".join(self.ws() + self.value(e) + self.ws() for e in v) + "]"
        assert isinstance(v, dict)
        if not v:
            return "{" + self.ws() + "}"
        return "{" + ",".join(self.ws() + self.string(k)[0] + self.ws() + ":" + self.ws()
                              + self.value(e) + self.ws() for k, e in v.items()) + "}"


text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**100), 2**100)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
unknown_keys = text.filter(lambda k: k not in NEEDED_KEYS)
# text that needs no escape in JSON
plain_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc"),
                                            exclude_characters='"\\'), max_size=12)
plain_unknown_keys = plain_text.filter(lambda k: k not in NEEDED_KEYS)

prices = (st.integers(1, 10_000).map(lambda k: k / 10_000)
          | st.sampled_from([0.65, 0.66, 0.001, 1.0, 0.5, 0.1, 0.3])
          | st.floats(allow_nan=False, allow_infinity=False)
          | st.integers(0, 3) | st.integers(INT64_MAX - 3, 2**64 + 3))
sizes = (st.floats(0, 1e7, allow_nan=False) | st.integers(0, 10**6)
         | st.floats(allow_nan=False, allow_infinity=False)
         | st.sampled_from([0.0, -0.0, 900.0, 1e-320, 123456.78901234567]))

tame_prices = (st.integers(1, 10_000).map(lambda k: k / 10_000)
               | st.floats(1e-4, 1.0) | st.integers(0, 1))
tame_sizes = st.floats(0, 1e7) | st.integers(0, 10**6) | st.sampled_from([0.0, -0.0, 1e-320])


@st.composite
def number_token(draw, x, wild: bool) -> tuple[str, bool]:
    """(token, scanner must convert it). Besides the float's spellings, sometimes (wild) an
    arbitrary decimal string."""
    w = Writer(draw)
    if wild and draw(st.integers(0, 4)) == 0:
        tok = draw(decimal_tokens)
    elif wild or isinstance(x, int):
        tok = w.number(x)
    else:
        tok = draw(st.sampled_from([t for t in spellings(x) if len(t) <= 40] or [repr(x)]))
    v = orjson_double(tok.encode())
    return tok, scanner_should_convert(tok.encode(), v)


@st.composite
def frames(draw) -> tuple[bytes, bool]:
    """A valid JSON object frame of type orderbook_delta or orderbook, randomised in every way
    JSON allows, and whether the scanner must read it natively."""
    w = Writer(draw)
    fast = True
    wild = draw(st.booleans())   # tame frames: mostly natively readable; wild: anything goes
    delta = draw(st.booleans())
    members: list[tuple[str, str]] = []   # (raw key json, raw value json)

    def put(key: str, raw: str, key_escapes: bool = False):
        nonlocal fast
        k, esc = w.string(key, may_escape=key_escapes)
        fast &= not esc
        members.append((k, raw))

    def plain_string(s: str) -> str:
        nonlocal fast
        raw, esc = w.string(s, may_escape=wild and draw(st.integers(0, 3)) == 0)
        fast &= not esc
        return raw

    def num(x) -> str:
        nonlocal fast
        tok, ok = draw(number_token(x, wild))
        fast &= ok
        return tok

    put("type", plain_string("orderbook_delta" if delta else "orderbook"))
    put("parsec_id", plain_string(draw(st.sampled_from(["polymarket:572473", "kalshi:KXBTC-26MAR10"])
                                       | (text if wild else plain_text))))
    if draw(st.integers(0, 9)):
        put("outcome", plain_string(draw(st.sampled_from(["Yes", "No"])
                                         | (text if wild else plain_text))))
    seq = draw(st.integers(0, 10**9) | st.integers(INT64_MIN - 2, INT64_MAX + 2) if wild
               else st.integers(0, 10**12))
    fast &= INT64_MIN <= seq <= INT64_MAX
    put("server_seq", str(seq))
    if delta:
        items = []
        for _ in range(draw(st.integers(0, 6))):
            fields = [("side", plain_string(draw(st.sampled_from(["bid", "ask"])))),
                      ("price", num(draw(prices if wild else tame_prices))),
                      ("size", num(draw(sizes if wild else tame_sizes)))]
            for k in draw(st.lists((unknown_keys if wild else plain_unknown_keys).filter(lambda k: k not in ("side", "price", "size")),
                                   max_size=2, unique=True)):
                fields.append((k, w.value(draw(json_values))))
            fields = draw(st.permutations(fields))
            keys = [w.string(k, may_escape=False) for k, _ in fields]
            fast &= not any(esc for _, esc in keys)   # an escaped key -> FALLBACK, by design
            items.append("{" + ",".join(w.ws() + k + w.ws() + ":" + w.ws() + v + w.ws()
                                        for (k, _), (_, v) in zip(keys, fields)) + "}")
        put("changes", "[" + w.ws() + ",".join(w.ws() + i + w.ws() for i in items) + w.ws() + "]")
    else:
        for side in ("bids", "asks"):
            lv = ["[" + w.ws() + num(draw(prices if wild else tame_prices)) + w.ws() + ","
                  + w.ws() + num(draw(sizes if wild else tame_sizes))
                  + w.ws() + "]" for _ in range(draw(st.integers(0, 6)))]
            put(side, "[" + w.ws() + ",".join(w.ws() + x + w.ws() for x in lv) + w.ws() + "]")
    for key, choices in (("book_state", ["fresh", "stale", "needs_refresh", "FRESH", "", "x"]),
                         ("feed_state", ["healthy", "degraded", "disconnected", "up"])):
        c = draw(st.integers(0, 3))
        if c == 1:
            put(key, "null")
        elif c >= 2:
            put(key, plain_string(draw(st.sampled_from(choices))))
    c = draw(st.integers(0, 3))
    if c == 1:
        put("stale_after_ms", "null")
    elif c >= 2:
        put("stale_after_ms", str(draw(st.integers(0, 10**6))))
    for key in ("exchange_ts_ms", "ingest_ts_ms"):
        c = draw(st.integers(0, 4))
        if c == 1:
            put(key, "null")
        elif c >= 2:
            ts = draw(st.integers(1_600_000_000_000, 1_900_000_000_000)
                      | st.integers(INT64_MIN, INT64_MAX))
            if wild and draw(st.integers(0, 2)) == 0:
                # anything else falls back (the orjson path decides): floats, strings, ints
                # beyond int64, other JSON values
                raw = draw(st.sampled_from([str(ts) + ".0", "%de3" % (ts // 1000), '"%d"' % ts,
                                            str(INT64_MAX + 1), str(INT64_MIN - 1), "true", "[]"]))
                fast = False
            else:
                raw = str(ts)
            put(key, raw)
    for k in draw(st.lists(unknown_keys if wild else plain_unknown_keys, max_size=5, unique=True)):
        put(k, w.value(draw(json_values)), key_escapes=wild and draw(st.integers(0, 3)) == 0)
    members = draw(st.permutations(members))
    body = "{" + ",".join(w.ws() + k + w.ws() + ":" + w.ws() + v + w.ws() for k, v in members) + "}"
    return (w.ws() + body + w.ws()).encode("utf-8"), fast


@SETTINGS
@given(frames())
def test_valid_frames_match_orjson(frame):
    data, fast = frame
    got = check_against_orjson(data)
    if fast:
        assert got["kind"] in ("delta", "snapshot"), data


@st.composite
def corrupted(draw) -> bytes:
    data = bytearray(draw(frames())[0])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 5))
        i = draw(st.integers(0, len(data)))
        if op == 0 and i < len(data):                                   # flip a byte
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:                                                   # insert a byte
            data.insert(i, draw(st.sampled_from(b'{}[]",:\\ 0-.eE+nul\x00\x80\xc3\xed\xff')
                                | st.integers(0, 255)))
        elif op == 2 and i < len(data):                                 # delete a byte
            del data[i]
        elif op == 3:                                                   # truncate
            del data[i:]
        elif op == 4 and i < len(data):                                 # duplicate a slice
            j = draw(st.integers(i, len(data)))
            data[j:j] = data[i:j]
        elif op == 5:                                                   # append junk
            data += draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


@SETTINGS
@given(corrupted())
def test_corrupted_frames(data):
    check_against_orjson(data)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data):
    check_against_orjson(data)


@SETTINGS
@given(st.dictionaries(text, json_values, max_size=6), st.data())
def test_arbitrary_objects(obj, data):
    # Any JSON object (typically without a "type": OTHER or FALLBACK, never a crash).
    raw = Writer(data.draw).value(obj).encode()
    check_against_orjson(raw)


# ---------------------------------------------------------------------------------------------
# Hand-picked cases

DELTA = (b'{"type":"orderbook_delta","parsec_id":"polymarket:572473","exchange":"polymarket",'
         b'"outcome":"Yes","token_id":"50310842821","market_id":"572473",'
         b'"changes":[{"side":"bid","price":0.65,"size":900.0},{"side":"ask","price":0.66,"size":0}],'
         b'"server_seq":1235,"feed_state":"healthy","book_state":"fresh","stale_after_ms":5000,'
         b'"exchange_ts_ms":1708123456100,"ingest_ts_ms":1708123456105}')
SNAP = (b'{"type":"orderbook","parsec_id":"polymarket:572473","exchange":"polymarket","outcome":"Yes",'
        b'"token_id":"50310842821","market_id":"572473","tick_size":0.001,"min_order_size":1.0,'
        b'"kind":"snapshot","title":"Will ETH reach $5000?",'
        b'"bids":[[0.65,1000.0],[0.64,2500.0]],"asks":[[0.66,800.0],[0.67,1500.0]],'
        b'"book_state":"fresh","server_seq":1234,"feed_state":"healthy","stale_after_ms":5000,'
        b'"exchange_ts_ms":1708123456000,"ingest_ts_ms":1708123456050}')


def test_protocol_examples():
    d = check_against_orjson(DELTA)
    assert d == {"kind": "delta", "type": "orderbook_delta", "parsec_id": "polymarket:572473",
                 "outcome": "Yes", "server_seq": 1235, "book_state": "fresh",
                 "feed_state": "healthy", "stale_after_ms": 5000,
                 "exchange_ts_ms": 1708123456100, "ingest_ts_ms": 1708123456105,
                 "changes": [("bid", 0.65, 900.0), ("ask", 0.66, 0.0)]}
    s = check_against_orjson(SNAP)
    assert s["kind"] == "snapshot" and s["server_seq"] == 1234
    assert s["exchange_ts_ms"] == 1708123456000 and s["ingest_ts_ms"] == 1708123456050
    assert s["bids"] == [(0.65, 1000.0), (0.64, 2500.0)]
    assert s["asks"] == [(0.66, 800.0), (0.67, 1500.0)]


@pytest.mark.parametrize("data, kind", [
    (b'{"type":"heartbeat","ts_ms":1}', "other"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[]}', "delta"),
    (b'{"changes":[],"server_seq":1,"parsec_id":"a","type":"orderbook_delta"}', "delta"),
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[],"asks":[]}', "snapshot"),
    # the scanner's own refusals (orjson accepts these; the orjson path decides)
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","changes":[]}', "fallback"),
    (b'{"type":"orderbook_delta","server_seq":1,"changes":[]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1.0,"changes":[]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":{}}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"bid","price":"0.5","size":1}]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"buy","price":0.5,"size":1}]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"bid","price":0.5}]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"bid","price":0.5,"size":1,"price":0.6}]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"bid","price":true,"size":1}]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"bid","price":null,"size":1}]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"server_seq":2}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a\\u0062","server_seq":1,"changes":[]}', "fallback"),
    (b'{"type":"orderbook_\\u0064elta","parsec_id":"a","server_seq":1,"changes":[]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"\\u0063hanges":[]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"outcome":null}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":9223372036854775808,"changes":[]}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[{"side":"bid","price":9223372036854775808,"size":1}]}', "fallback"),
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[[0.5,1,2]],"asks":[]}', "fallback"),
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[[0.5]],"asks":[]}', "fallback"),
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[{"price":0.5,"size":1}],"asks":[]}', "fallback"),
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[],"asks":[],"book_state":5}', "fallback"),
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[],"asks":[],"stale_after_ms":5.0}', "fallback"),
    # timestamps: null / absent = not present, an int64 integer = present, anything else falls back
    (b'{"type":"orderbook","parsec_id":"a","server_seq":1,"bids":[],"asks":[],"exchange_ts_ms":null,"ingest_ts_ms":-9223372036854775808}', "snapshot"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"exchange_ts_ms":9223372036854775807}', "delta"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"exchange_ts_ms":9223372036854775808}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"ingest_ts_ms":-9223372036854775809}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"exchange_ts_ms":1708123456100.0}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"exchange_ts_ms":1.7e12}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"ingest_ts_ms":"1708123456105"}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"ingest_ts_ms":true}', "fallback"),
    (b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":[],"ingest_ts_ms":1,"ingest_ts_ms":2}', "fallback"),
    (b'{"type":"heartbeat","exchange_ts_ms":1.5}', "other"),
    (b'{"type":1}', "fallback"),
    (b'{}', "fallback"),
    (b'[]', "fallback"),
    # invalid JSON (orjson rejects)
    (b'\xef\xbb\xbf{"type":"heartbeat"}', "fallback"),
    (b'{"type":"heartbeat"} x', "fallback"),
    (b'{"type":"heartbeat"}\x00', "fallback"),
    (b'{"type":"heartbeat",}', "fallback"),
    (b'{"type":"heartbeat","x":01}', "fallback"),
    (b'{"type":"heartbeat","x":1.}', "fallback"),
    (b'{"type":"heartbeat","x":.5}', "fallback"),
    (b'{"type":"heartbeat","x":+1}', "fallback"),
    (b'{"type":"heartbeat","x":NaN}', "fallback"),
    (b'{"type":"heartbeat","x":1e400}', "fallback"),
    (b'{"type":"heartbeat","x":"\\ud800"}', "fallback"),
    (b'{"type":"heartbeat","x":"\\udc00"}', "fallback"),
    (b'{"type":"heartbeat","x":"\\ud800\\u0041"}', "fallback"),
    (b'{"type":"heartbeat","x":"\\x"}', "fallback"),
    (b'{"type":"heartbeat","x":"\x01"}', "fallback"),
    (b'{"type":"heartbeat","x":"\xc0\x80"}', "fallback"),
    (b'{"type":"heartbeat","x":"\xed\xa0\x80"}', "fallback"),
    (b'{"type":"heartbeat","x":"\xf4\x90\x80\x80"}', "fallback"),
    (b'{"type":"heartbeat","x":"\xe2\x82"}', "fallback"),
    (b'{"type":"heartbeat","x":tru}', "fallback"),
    (b'{"type":"heartbeat"', "fallback"),
    (b'{"type":"heartbeat","x":[1,2}', "fallback"),
    (b'{"type":"heartbeat","x":{"a" 1}}', "fallback"),
    # valid, tricky
    (b' \t\r\n{ "type" : "heartbeat" , "x" : [ ] , "y" : { } } \n', "other"),
    (b'{"type":"heartbeat","x":"\\ud83d\\ude00\\"\\\\\\/\\b\\f\\n\\r\\t\xf0\x9f\x98\x80\x7f"}', "other"),
    (b'{"type":"heartbeat","x":1.5e308,"y":-0,"z":[true,false,null,{"a":[{}]}]}', "other"),
    (b'{"type":"orderbook_delta","parsec_id":"\xc3\xa9\xe2\x82\xac","server_seq":-0,"changes":[]}', "delta"),
])
def test_cases(data, kind):
    assert check_against_orjson(data)["kind"] == kind


KNOWN_KEYS = sorted(NEEDED_KEYS | {"side", "price", "size", "exchange", "token_id", "market_id",
                                   "tick_size", "min_order_size", "kind", "title"})


@pytest.mark.parametrize("key", KNOWN_KEYS)
def test_key_near_misses(key):
    """Keys the scanner recognises by pattern: a key that differs by one byte, is one byte
    longer or shorter, or is spelled with whitespace around the colon, is another key (or the
    same one, for the whitespace), never a match by accident; at the top level and inside a
    change, with plenty of bytes after it and at the very end of the buffer."""
    variants = {key + "x", key[:-1], key[:-1] + chr(ord(key[-1]) ^ 1), "x" + key,
                chr(ord(key[0]) ^ 0x20) + key[1:], key + "_"}
    for k in sorted(variants - {""}):
        for value in (b'"v"', b"1", b"null"):
            extra = b'"' + k.encode() + b'":' + value
            head = b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,'
            for frame in (head + extra + b',"changes":[{"side":"bid","price":1,"size":2}]}',
                          head + b'"changes":[{"side":"bid","price":1,"size":2}],' + extra + b"}",
                          head + b'"changes":[{' + extra + b',"side":"bid","price":1,"size":2}]}'):
                got = check_against_orjson(frame)
                if k not in KNOWN_KEYS:
                    assert got["kind"] == "delta", frame
    # the key itself, spaced: same meaning
    for sep in (b' :', b': ', b' : ', b'\n:\t'):
        frame = (b'{"type"' + sep + b'"orderbook_delta","parsec_id"' + sep + b'"a","server_seq"'
                 + sep + b'1,"changes"' + sep + b'[{"side"' + sep + b'"bid","price"' + sep
                 + b'1,"size"' + sep + b'2}]}')
        assert check_against_orjson(frame)["kind"] == "delta", frame


COMPACT_ITEMS = [
    b'{"side":"bid","price":0.65,"size":900.0}',
    b'{"side":"ask","price":1,"size":0}',
    b'{"side":"ask","price":-0.0,"size":1e-5}',
    b'{"side":"bid","price":0.1234567890123456789,"size":12345678901234567890}',
    b'{"side":"bid","price":1E400,"size":1}',
    b'{"side":"bid","price":0.5,"size":1,"x":2}',
    b'{"side":"bid","price":0.5,"size":1,"size":2}',
    b'{"side":"bid","price":0.5,"size":"1"}',
    b'{"side":"bid","price":0.5,"size":null}',
    b'{"side":"bidx","price":0.5,"size":1}',
    b'{"side":"Bid","price":0.5,"size":1}',
    b'{"side":"bid","price" :0.5,"size":1}',
    b'{"side":"bid","price":0.5 ,"size":1}',
    b'{"side":"bid","price":0.5,"size":1 }',
    b'{"side":"bid","pric\\u0065":0.5,"size":1}',
    b'{"side":"bid","price":0.5,"siz":1}',
    b'{"side":"bid","price":.5,"size":1}',
    b'{"side":"bid","price":05,"size":1}',
    b'{"side":"bid","price":0.5,"size":1',
]


@pytest.mark.parametrize("item", COMPACT_ITEMS)
def test_compact_change_items(item):
    """Items written in the protocol's own spelling take a fixed-pattern fast path; items that
    only nearly match it must read exactly as the general member loop and orjson read them."""
    head = b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":['
    for body in (item, item + b"," + item, b'{"size":2,"side":"ask","price":0.5},' + item):
        check_against_orjson(head + body + b"]}")
        for cut in range(len(body)):
            assert scan_to_python(head + body[:cut])["kind"] == "fallback"


def test_compact_change_item_mutations():
    """Every one-byte change of a compact item (each position, a set of replacement bytes):
    scanner and orjson agree."""
    head = b'{"type":"orderbook_delta","parsec_id":"a","server_seq":1,"changes":['
    item = b'{"side":"ask","price":0.65,"size":900.0}'
    n_delta = 0
    for i in range(len(item)):
        for c in b' "\\,:.{}[]0159eEabdkpirsz-+\x00\xff':
            body = item[:i] + bytes([c]) + item[i + 1:]
            got = check_against_orjson(head + body + b"]}")
            n_delta += got["kind"] == "delta"
    assert n_delta > 50   # the mutations include many valid items (digits, spaces)


def test_nesting_depth():
    ok = b'{"type":"heartbeat","x":' + b"[" * 64 + b"]" * 64 + b"}"
    assert check_against_orjson(ok)["kind"] == "other"
    deep = b'{"type":"heartbeat","x":' + b"[" * 65 + b"]" * 65 + b"}"
    assert check_against_orjson(deep)["kind"] == "fallback"   # orjson allows 1024; we stop at 64
    mixed = b'{"type":"heartbeat","x":' + b'[{"a":' * 31 + b"1" + b"}]" * 31 + b"}"
    assert check_against_orjson(mixed)["kind"] == "other"
    assert check_against_orjson(mixed.replace(b'"a":1', b'"a":[1', 1))["kind"] == "fallback"


def test_every_truncation_of_protocol_examples():
    for frame in (DELTA, SNAP):
        for i in range(len(frame)):
            assert scan_to_python(frame[:i])["kind"] == "fallback"
        assert scan_to_python(frame + b" ")["kind"] != "fallback"


def test_growth_and_reuse():
    sc = FrameScanner()
    big = [{"side": "bid" if i % 2 else "ask", "price": i / 1000, "size": float(i)} for i in range(1000)]
    frame = orjson.dumps({"type": "orderbook_delta", "parsec_id": "p", "server_seq": 7, "changes": big})
    got = sc.to_python(frame)
    assert got["kind"] == "delta" and len(got["changes"]) == 1000
    assert got["changes"][999] == ("bid", 0.999, 999.0)
    small = orjson.dumps({"type": "orderbook_delta", "parsec_id": "p", "server_seq": 8,
                          "changes": [{"side": "ask", "price": 0.5, "size": 2}]})
    assert sc.to_python(small)["changes"] == [("ask", 0.5, 2.0)]
    levels = [[i / 1000, 1.0] for i in range(500)]
    snap = orjson.dumps({"type": "orderbook", "parsec_id": "p", "server_seq": 9,
                         "bids": levels, "asks": levels[:3]})
    got = sc.to_python(snap)
    assert len(got["bids"]) == 500 and len(got["asks"]) == 3
    assert sc.scan_bytes(b"") == 0 and sc.scan_bytes(b"{") == 0
