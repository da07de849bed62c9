"""Issue 7's proof at the feed level: the native scanner path and the orjson path are the same
function of the bytes.

Hypothesis generates sequences of operations for a few subscriptions: frames (hand-built JSON
text, so every spelling varies: key order, whitespace, unknown fields of every JSON kind, numbers
in every JSON spelling, escaped and non-ASCII strings, every book_state / feed_state /
stale_after_ms variant, activity and control frames, bad values, duplicate keys, truncated and
corrupted bytes), plus flush(), check_stale() and add/remove. The SAME operations go to a
``FeedHandler(parser="native")`` and a ``FeedHandler(parser="orjson")``; after every operation:

- every book is identical bit for bit (``struct.pack('<d')`` of every price and size), with the
  same seq, validity, invalid reason, states, last_error and per-subscription stats;
- the callback event sequences are identical (messages, coalesced updates with their seq, state
  events with their reasons, protocol errors by type and text);
- the handler stats are identical except ``native_frames`` / ``orjson_frames``.

The generator also knows which frames are "clean" (well-formed book frames the scanner must
understand: no escape in a field it reads, known states, convertible numbers, valid data); each
of those must go through the native path, so "always fall back" cannot pass.

CI runs the ``ci`` profile of tests/conftest.py (a few hundred examples); ``HYPOTHESIS_PROFILE=heavy``
runs thousands.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import struct
import time

import orjson
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from parsec_fast._feed import FeedHandler

HEAVY = os.environ.get("HYPOTHESIS_PROFILE", "") == "heavy"
# Each example is a whole stream (tens of frames), so fewer examples than the per-frame tests.
# No shrinking unless asked (PARSEC_SHRINK=1): replaying streams of up to 80 frames makes the
# shrinker run for its full 5-minute budget, and a failure message already names the step and
# the exact frame bytes at which the two paths diverged.
_PHASES = tuple(Phase) if os.environ.get("PARSEC_SHRINK") else (
    Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
SETTINGS = settings(max_examples=4000 if HEAVY else 200, deadline=None, phases=_PHASES,
                    suppress_health_check=list(HealthCheck))

# Subscriptions: (parsec_id, outcome as subscribed). The frames also name an unknown market.
SUBS = [("polymarket:572473", "Yes"), ("polymarket:572473", "No"),
        ("kalshi:KXBTC-26MAR10", "Yes"), ("opinion:ünï/cødé", "Élection")]
UNKNOWN = ("polymarket:999", "Yes")
INT64_MAX = 2**63 - 1

# ---------------------------------------------------------------------------------------------
# JSON text pieces. Generation uses a random.Random seeded from Hypothesis-drawn integers (one per
# operation): Hypothesis explores and shrinks the operation list and seeds, while building the
# text stays cheap (drawing every character through Hypothesis made each example ~0.5 s).

WS = ["", "", "", "", " ", "  ", "\n", "\t", "\r\n ", " \t\n"]
_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
          "\r": "\\r", "\t": "\\t"}


def esc_char(c: str, how: int) -> str:
    """One character as a JSON escape (how: 0 \\uxxxx, 1 \\uXXXX, 2 the short form if any);
    astral characters become a surrogate pair."""
    if how == 2 and c in _SHORT:
        return _SHORT[c]
    cp = ord(c)
    fmt = "\\u{:04x}" if how == 0 else "\\u{:04X}"
    if cp > 0xFFFF:
        cp -= 0x10000
        return fmt.format(0xD800 + (cp >> 10)) + fmt.format(0xDC00 + (cp & 0x3FF))
    return fmt.format(cp)


def jstring(rng: random.Random, s: str, may_escape: bool = True) -> tuple[str, bool]:
    """A JSON string literal for ``s``; returns (text, has_escape). Characters that must be
    escaped always are; others are escaped at random when may_escape."""
    rate = rng.choice([0.0, 0.0, 0.1, 0.5]) if may_escape else 0.0
    out = []
    escaped = False
    for c in s:
        if c in '"\\' or ord(c) < 0x20 or (rate and rng.random() < rate):
            out.append(esc_char(c, rng.randint(0, 2)))
            escaped = True
        else:
            out.append(c)
    return '"' + "".join(out) + '"', escaped


_CHAR_RANGES = [(0x20, 0x7E), (0x20, 0x7E), (0x00, 0x1F), (0x80, 0x7FF), (0x800, 0xD7FF),
                (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]


def rand_text(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(["", "Will ETH reach $5000?", 'a "q" \\ /', "é€𝄞", "\x00\x1f\x7f",
                           "\u2028\u2029", "type", "orderbook_delta", "\ufeff"])
    out = []
    for _ in range(rng.randint(0, 12)):
        lo, hi = rng.choice(_CHAR_RANGES)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def any_string(rng: random.Random) -> str:
    return jstring(rng, rand_text(rng))[0]


def decimal_text(rng: random.Random, m: int, e: int) -> str:
    """A JSON spelling of m * 10**e: plain decimal or mantissa + exponent, the point anywhere,
    extra trailing zeros, e/E, optional '+', zero-padded exponent."""
    sign = "-" if m < 0 else ""
    m = abs(m)
    z = rng.randint(0, 3)
    digits = str(m) + "0" * z
    e -= z
    n = len(digits)
    if e <= 0 and rng.random() < 0.5:
        k = -e                                   # digits after the point
        if k >= n:
            ip, fp = "0", "0" * (k - n) + digits
        else:
            ip, fp = digits[: n - k], digits[n - k:]
        return sign + (ip.lstrip("0") or "0") + ("." + fp if fp else "")
    ip_len = rng.randint(0, n)
    exp = e + (n - ip_len)
    ip = digits[:ip_len].lstrip("0") or "0"
    fp = digits[ip_len:]
    mant = ip + ("." + fp if fp else "")
    esign = "-" if exp < 0 else rng.choice(["", "+"])
    return sign + mant + rng.choice("eE") + esign + "0" * rng.randint(0, 2) + str(abs(exp))


def any_double(rng: random.Random, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A finite double in [lo, hi]: uniform bits, subnormals, huge, 17-digit, round values."""
    for _ in range(100):
        k = rng.randint(0, 6)
        if k == 0:
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        elif k == 1:   # subnormal
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(52)))[0]
        elif k == 2:
            x = rng.uniform(0.0, 1.0)
        elif k == 3:
            x = rng.uniform(1.0, 5000.0)
        elif k == 4:
            x = 10.0 ** rng.uniform(-323.0, 308.2)
        elif k == 5:
            x = rng.choice([0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e22,
                            1e23, 9007199254740993.0, 0.1, 1.0, 1e-9, 1e9])
        else:
            x = round(rng.uniform(0, 1000), rng.randint(0, 4))
        if rng.random() < 0.2:
            x = -x
        if math.isfinite(x) and lo <= x <= hi:
            return x
    return max(lo, min(hi, 1.0))


def float_text(rng: random.Random, x: float) -> str:
    """A spelling of the double x: shortest repr, %.17g, json.dumps, %.16e, long fixed."""
    how = rng.randint(0, 4)
    if how == 0:
        return repr(x)
    if how == 1:
        return format(x, ".17g")
    if how == 2:
        return json.dumps(x)
    if how == 3:
        return format(x, ".16e")
    return format(x, ".30f") if abs(x) < 1e40 else repr(x)


def num_ok_native(t: str) -> bool:
    """Whether the scanner converts this (valid, finite) token itself rather than deferring."""
    if len(t) > 95:
        return False
    if all(c in "-0123456789" for c in t):
        return -(2**63) <= int(t) <= INT64_MAX
    return True


def any_number(rng: random.Random, overflow: bool = False) -> str:
    """Numbers for unknown fields: every spelling, ints beyond int64; with ``overflow``, also
    numbers orjson refuses (they overflow a double)."""
    if overflow and rng.random() < 0.3:
        return rng.choice(["1e400", "-1e400", "1" + "0" * 400, "2e308", "-17976931348623159e292"])
    k = rng.randint(0, 4)
    if k == 0:
        return str(rng.randint(-(2**70), 2**70) >> rng.randint(0, 70))
    if k == 1:
        return float_text(rng, any_double(rng))
    if k == 2:
        return decimal_text(rng, rng.randint(-(10**20), 10**20), rng.randint(-340, 288))
    if k == 3:
        return decimal_text(rng, rng.randint(-999, 999), rng.randint(-5, 5))
    return rng.choice(["-0", "0", "-0.0", "0e0", "0E-5", "5e-324", "1.7976931348623157e308",
                       "1" + "0" * 300, "0." + "0" * 200 + "1", "-0e-0", "1e-400",
                       "18446744073709551616", "-9223372036854775809"])


def any_value(rng: random.Random, depth: int = 0, overflow: bool = False) -> str:
    """Any JSON value as text: scalars, nested arrays and objects, with whitespace."""
    k = rng.randint(0, 9 if depth < 3 else 5)
    if k <= 1:
        return rng.choice(["null", "true", "false"])
    if k <= 3:
        return any_number(rng, overflow)
    if k <= 5:
        return any_string(rng)
    ws = lambda: rng.choice(WS)  # noqa: E731
    items = [any_value(rng, depth + 1, overflow) for _ in range(rng.randint(0, 4))]
    if k <= 7:
        return "[" + ws() + ",".join(ws() + v + ws() for v in items) + ws() + "]"
    return "{" + ws() + ",".join(ws() + any_string(rng) + ws() + ":" + ws() + v + ws()
                                 for v in items) + ws() + "}"


UNKNOWN_KEYS = ["exchange", "token_id", "market_id", "title", "kind", "tick_size",
                "min_order_size", "exchange_ts_ms", "ingest_ts_ms", "x", "", "Type", "server_seq_",
                "sides", "changes2", "é", "𝄞"]
TIMESTAMPS = ("exchange_ts_ms", "ingest_ts_ms")   # read by the scanner, not needed by the book
INT_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")
NEEDED = {"type", "parsec_id", "outcome", "server_seq", "changes", "bids", "asks", "book_state",
          "feed_state", "stale_after_ms", "side", "price", "size"}
BAD_NUMBER_TOKENS = ["NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "1e999", "-1e999",
                     "1.", ".5", "01", "-01.5", "+1", "0x1F", "1_000", "1e", "1e+", "--1", "１",
                     "1.5e3.2", "Nan"]


# ---------------------------------------------------------------------------------------------
# the stream generator

# Values a duplicated needed key gets (orjson keeps the last occurrence of a key).
PLAUSIBLE = {
    "type": ['"orderbook_delta"', '"orderbook"', '"heartbeat"', '"activity"', "null"],
    "parsec_id": ['"polymarket:572473"', '"kalshi:KXBTC-26MAR10"', '"polymarket:999"', "null"],
    "outcome": ['"Yes"', '"No"', '"yes"', "null"],
    "server_seq": ["1", "12345", "-1", "null", "1.5"],
    "changes": ["[]", '[{"side":"bid","price":0.5,"size":1}]', "null"],
    "bids": ["[]", "[[0.5,1]]", "null"],
    "asks": ["[]", "[[0.6,2e0]]", "null"],
    "book_state": ['"fresh"', '"stale"', '"needs_refresh"', "null"],
    "feed_state": ['"healthy"', '"degraded"', "null"],
    "stale_after_ms": ["5000", "0", "null"],
    "side": ['"bid"', '"ask"', "null"],
    "price": ["0.5", "0.25e1", "null"],
    "size": ["1.0", "0", "-0", "null"],
}
BAD_KINDS = ["dup", "overflow", "pid_type", "pid_missing", "outcome_type", "price", "size", "seq",
             "state_type", "stale", "levels", "order", "level_price", "changes", "change",
             "activity_seq"]


class G:
    """Frame builder with per-subscription sequence counters. ``clean`` turns False as soon as a
    frame gets something that must make the scanner defer to orjson."""

    def __init__(self, mode: str, big_book: bool, seed: int):
        r = random.Random(seed)
        self.mode = mode
        self.big_book = big_book
        self.seq = {i: r.randint(0, 10**6) for i in range(len(SUBS) + 1)}
        self.act_seq = {i: r.randint(0, 10**6) for i in range(len(SUBS) + 1)}
        self.clean = True
        self.is_bad = False
        self.bad_what = ""
        self.snapped: set[int] = set()
        self.r = r

    def p(self, prob: float) -> bool:
        return self.r.random() < prob

    def bad(self, what: str, prob: float = 0.6) -> bool:
        """True with ``prob`` when this frame was chosen to carry defect ``what``, else False.
        A bad frame carries one kind of defect, so that the scanner meets it in an otherwise
        clean frame and has to decide on exactly that."""
        return self.is_bad and self.bad_what == what and self.r.random() < prob

    def ws(self) -> str:
        return self.r.choice(WS)

    def key(self, name: str) -> str:
        text, escaped = jstring(self.r, name, may_escape=self.p(0.01))
        if escaped:
            self.clean = False   # the scanner never unescapes a key it must recognise
        return text

    def obj(self, members: list[tuple[str, str]]) -> str:
        self.r.shuffle(members)
        if not members:
            return "{" + self.ws() + "}"
        return "{" + ",".join(self.ws() + k + self.ws() + ":" + self.ws() + v + self.ws()
                              for k, v in members) + "}"

    def extras(self, members: list) -> None:
        for _ in range(self.r.choice([0, 0, 1, 1, 2, 3])):
            name = self.r.choice(UNKNOWN_KEYS) if self.p(0.95) else rand_text(self.r)
            value = None
            if self.bad("dup", 0.5):
                # a duplicate of a needed key; a state field followed by null is the case where
                # "first wins" and "last wins" differ without any other error
                name = self.r.choice(["book_state", "feed_state", "stale_after_ms"] * 3
                                     + sorted(NEEDED))
                if self.p(0.8):
                    value = self.r.choice(PLAUSIBLE[name])
            if value is None and name in TIMESTAMPS and self.p(0.7):
                value = self.r.choice([str(self.r.randint(1_600_000_000_000, 1_900_000_000_000)),
                                       "null", str(self.r.randint(-(2**63), 2**63 - 1))])
            text, escaped = jstring(self.r, name, may_escape=self.p(0.04))
            if name in NEEDED or escaped:
                self.clean = False
            if value is None:
                value = any_value(self.r, overflow=self.bad("overflow", 0.5))
            if name in TIMESTAMPS:
                # the scanner reads these: null or an int64 integer, and once; else it defers
                if not (value == "null" or (INT_TEXT.fullmatch(value)
                                            and -(2**63) <= int(value) < 2**63)):
                    self.clean = False
                if any(orjson.loads(k) == name for k, _ in members):
                    self.clean = False
            members.append((text, value))

    # -- identity fields ------------------------------------------------------------------------
    def ident(self, members: list, who: int) -> None:
        pid, outcome = UNKNOWN if who == len(SUBS) else SUBS[who]
        if self.bad("pid_type", 0.9):
            members.append((self.key("parsec_id"), self.r.choice(["7", "null", "[]"])))
            self.clean = False
        elif not self.bad("pid_missing", 0.9):
            text, escaped = jstring(self.r, pid, may_escape=self.p(0.1))
            self.clean &= not escaped
            members.append((self.key("parsec_id"), text))
        else:
            self.clean = False   # no parsec_id at all
        k = self.r.randint(0, 29)
        if outcome == "Yes" and k == 0:
            self.clean = False   # missing: "Yes" by default (orjson path)
            return
        if outcome == "Yes" and k == 1:
            members.append((self.key("outcome"), "null"))
            self.clean = False
            return
        if self.bad("outcome_type", 0.9):
            members.append((self.key("outcome"), self.r.choice(["5", "true", "{}"])))
            self.clean = False
            return
        spelled = self.r.choice([outcome, outcome, outcome.upper(), outcome.lower(),
                                 outcome.swapcase(), outcome + " "])
        text, escaped = jstring(self.r, spelled, may_escape=self.p(0.1))
        self.clean &= not escaped
        members.append((self.key("outcome"), text))

    def type_field(self, members: list, name: str) -> None:
        text, escaped = jstring(self.r, name, may_escape=self.p(0.05))
        self.clean &= not escaped
        members.append((self.key("type"), text))

    # -- numbers --------------------------------------------------------------------------------
    def price(self) -> str:
        if self.bad("price", 0.4):
            self.clean = False
            return self.r.choice(["0", "-0", "-0.0", "-0.5", "1e-10", "4e-10", "2e9", "1e9999",
                                  "1000000000.0000002", '"0.5"', "true", "null", "[]", "{}",
                                  "5e-324", float_text(self.r, any_double(self.r))]
                                 + BAD_NUMBER_TOKENS)
        k = self.r.randint(0, 29)
        if k == 0:   # <= 15 significant digits, any exponent that keeps it a valid price
            m = self.r.randint(1, 10 ** self.r.randint(1, 15))
            d = len(str(m))
            t = decimal_text(self.r, m, self.r.randint(-d - 9, 9 - d))
            v = float(t)
            if not (0 < v <= 1e9 and round(v * 1e9) != 0):
                self.clean = False
            return t
        if k < 20:   # on a tick grid, spelled every way
            grid = self.r.choice([10, 100, 1000, 10000])
            return decimal_text(self.r, self.r.randint(1, grid) * (10000 // grid), -4)
        if k < 24:   # any valid double price
            t = float_text(self.r, any_double(self.r, 1e-9, 1e9))
            self.clean &= num_ok_native(t)
            return t
        return self.r.choice(["1", "1.0", "1e0", "10E-1", "1000000000", "0.0001", "1E+9"])

    def size(self) -> str:
        if self.bad("size", 0.4):
            self.clean = False
            return self.r.choice(["-1", "-1.5", "-5e-324", "-1e-300", "-0.01", '"1.0"', "true",
                                  "false", "null", "[1]", "{}", "-9223372036854775808",
                                  "-" + float_text(self.r, any_double(self.r, 1e-300))]
                                 + BAD_NUMBER_TOKENS)
        k = self.r.randint(0, 99)
        if k < 10:   # <= 15 significant digits around the exact fast path's limits (1e22, 2^53)
            d = self.r.choice([1, 2, 8, 14, 15, 15, 15, self.r.randint(1, 17)])
            m = self.r.randint(10 ** (d - 1), 10**d - 1)
            e = self.r.choice([-23, -22, -21, 21, 22, 23, 24, 22 + 15 - d, 23 + 15 - d,
                               self.r.randint(-45, 40)])
            return decimal_text(self.r, m, e)
        if k < 35:
            return decimal_text(self.r, self.r.randint(0, 10**8), -2)
        if k < 45:
            return str(self.r.randint(0, INT64_MAX) >> self.r.randint(0, 62))
        if k < 65:
            t = float_text(self.r, any_double(self.r, 0.0))
            self.clean &= num_ok_native(t)
            return t
        if k < 80:
            return self.r.choice(["0", "-0", "0.0", "-0.0", "0e10", "-0E-3", "5e-324",
                                  "4.9406564584124654e-324", "2.2250738585072014e-308",
                                  "2.2250738585072011e-308", "1e308", "1.7976931348623157e308",
                                  "9007199254740993", "9223372036854775807",
                                  "123456789.12345678901234", "0.30000000000000004"])
        if k < 81:   # valid, but the scanner defers
            self.clean = False
            return self.r.choice(["9223372036854775808", "18446744073709551616", "1" + "0" * 30,
                                  "0." + "0" * 100 + "1"])
        return decimal_text(self.r, self.r.randint(0, 10**6), self.r.randint(-4, 2))

    def seq_text(self, who: int, snapshot: bool) -> str:
        r = self.r
        if self.bad("seq", 0.9):
            self.clean = False
            return r.choice(['"5"', "1.0", "1e2", "null", "true", "[]", str(2**63),
                             str(-(2**63) - 1), "-0.0"] + BAD_NUMBER_TOKENS)
        if snapshot:
            k = r.randint(0, 19)
            if k < 17:
                s = self.seq[who] + r.randint(0, 50)
            elif k < 19:
                s = r.randint(-(2**63), INT64_MAX)
            else:
                s = r.choice([0, -1, INT64_MAX, INT64_MAX - 1, -(2**63)])
            s = max(-(2**63), min(INT64_MAX, s))
            self.seq[who] = s
            return "-0" if s == 0 and self.p(0.5) else str(s)
        k = r.randint(0, 19)
        if k < 15:
            s = self.seq[who] + 1
        elif k < 17:
            s = self.seq[who] - r.randint(0, 3)
        elif k < 19:
            s = self.seq[who] + r.randint(2, 5)
        else:
            s = r.randint(-(2**63), INT64_MAX)
        if not -(2**63) <= s <= INT64_MAX:
            self.clean = False   # beyond int64: the orjson path rejects it
        self.seq[who] = max(self.seq[who], min(s, INT64_MAX))
        return str(s)

    # -- optional state fields ------------------------------------------------------------------
    def states(self, members: list) -> None:
        for name, known in (("book_state", ["fresh"] * 10 + ["stale", "needs_refresh"]),
                            ("feed_state", ["healthy"] * 6 + ["degraded", "disconnected"])):
            k = self.r.randint(0, 39)
            if k < 8:
                continue
            if k < 10:
                members.append((self.key(name), "null"))
            elif k < 38:
                text, escaped = jstring(self.r, self.r.choice(known), may_escape=self.p(0.05))
                self.clean &= not escaped
                members.append((self.key(name), text))
            elif k < 39:
                self.clean = False   # another string: kept verbatim by the orjson path
                v = self.r.choice(["paused", "FRESH", "", "é", "healthy ", "stale\n"])
                members.append((self.key(name), jstring(self.r, v)[0]))
            elif self.bad("state_type"):
                self.clean = False
                members.append((self.key(name), self.r.choice(["1", "true", "[]", "{}", "0.5"])))
        k = self.r.randint(0, 19)
        if k < 4:
            return
        if k < 5:
            members.append((self.key("stale_after_ms"), "null"))
        elif not self.bad("stale", 0.9):
            v = self.r.choice(["0", "-0", "1", "250", "5000", "60000", str(10**12), str(2**62 - 1)])
            members.append((self.key("stale_after_ms"), v))
        else:
            self.clean = False
            members.append((self.key("stale_after_ms"), self.r.choice(
                ["-1", "-5000", str(2**62), str(INT64_MAX), str(2**63), "5000.0", "5e3",
                 '"5000"', "true", "[]"])))

    # -- frames ---------------------------------------------------------------------------------
    def who(self) -> int:
        return self.r.choice([0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4])

    def snapshot(self, who: int) -> str:
        self.snapped.add(who)
        m: list = []
        self.type_field(m, "orderbook")
        self.ident(m, who)
        m.append((self.key("server_seq"), self.seq_text(who, True)))
        m.append((self.key("bids"), self.levels(True)))
        m.append((self.key("asks"), self.levels(False)))
        self.states(m)
        self.extras(m)
        return self.obj(m)

    def levels(self, bid: bool) -> str:
        r = self.r
        if self.bad("levels", 0.5):
            self.clean = False
            return r.choice(["null", "{}", '"x"', "[[0.5]]", "[[0.5,1,2]]", "[0.5, 1]",
                             "[[0.5,1],]", "[{}]", "[[0.5,1]"])
        n = r.choice([0, 1, 2, 2, 3, 3, 3, 3, 4, 5, 6] if self.big_book else [0, 1, 2, 3, 3, 4])
        if not self.big_book and n > 3:
            self.clean = False   # over max_levels=3: rejected by the orjson path
        grid = r.choice([100, 1000, 10000])
        ticks = sorted(r.sample(range(1, grid + 1), n), reverse=bid)
        if n > 1 and self.bad("order", 0.9):
            self.clean = False   # out of order, or a repeated price
            if self.p(0.5):
                ticks = ticks[::-1]
            else:
                ticks[-1] = ticks[0]
        out = []
        for t in ticks:
            if self.bad("level_price", 0.3):
                self.clean = False   # any price (maybe invalid, maybe out of order)
                out.append("[" + self.price() + "," + self.ws() + self.size() + "]")
                continue
            price = decimal_text(r, t * (10000 // grid), -4)
            out.append("[" + self.ws() + price + self.ws() + "," + self.ws() + self.size()
                       + self.ws() + "]")
        return "[" + self.ws() + ("," + self.ws()).join(out) + self.ws() + "]"

    def delta(self, who: int) -> str:
        m: list = []
        self.type_field(m, "orderbook_delta")
        self.ident(m, who)
        m.append((self.key("server_seq"), self.seq_text(who, False)))
        if self.bad("changes", 0.9):
            self.clean = False
            changes = self.r.choice(["null", "{}", '"x"', "[1]", "[[]]", "[{}]", "[", "[{]"])
        else:
            n = self.r.choice([0, 1, 1, 1, 1, 2, 2, 3, 5])
            if not self.big_book:
                self.clean = False   # may push a side over max_levels=3 (then rejected)
            changes = "[" + self.ws() + ",".join(self.change() for _ in range(n)) + self.ws() + "]"
        m.append((self.key("changes"), changes))
        self.states(m)
        self.extras(m)
        return self.obj(m)

    def change(self) -> str:
        m: list = []
        k = self.r.randint(0, 3) if self.bad("change", 0.5) else 9
        if k == 0:
            self.clean = False   # side missing
        elif k == 1:
            self.clean = False
            m.append((self.key("side"), self.r.choice(['"BID"', '"buy"', "1", "null",
                                                       '"b\\u0069d"', '""', '"ask "'])))
        else:
            text, escaped = jstring(self.r, self.r.choice(["bid", "ask"]), may_escape=self.p(0.03))
            self.clean &= not escaped
            m.append((self.key("side"), text))
        if k != 2:
            m.append((self.key("price"), self.price()))
        else:
            self.clean = False
        if k != 3:
            m.append((self.key("size"), self.size()))
        else:
            self.clean = False
        self.extras(m)
        return self.ws() + self.obj(m) + self.ws()

    def activity(self, who: int) -> str:
        m: list = []
        self.type_field(m, "activity")
        self.ident(m, who)
        counter = self.seq if self.mode == "shared" else self.act_seq
        s = counter[who] + (1 if self.p(0.85) else self.r.randint(-2, 4))
        counter[who] = max(counter[who], s)
        seq = str(s) if not self.bad("activity_seq", 0.9) else self.r.choice(['"1"', "1.5", "null", str(2**63)])
        m.append((self.key("server_seq"), seq))
        m.append((self.key("kind"), self.r.choice(['"trade"', '"fill"'])))
        m.append((self.key("price"), self.price()))
        m.append((self.key("size"), self.size()))
        self.extras(m)
        return self.obj(m)

    def control(self, who: int) -> str:
        kind = self.r.choice(["heartbeat", "resync_required", "resync_required", "slow_reader",
                              "error", "auth_ok", "wallet_activity", "something_new"])
        m: list = []
        self.type_field(m, kind)
        if kind in ("resync_required", "slow_reader", "error"):
            self.ident(m, who)
        if kind == "heartbeat":
            m.append((self.key("ts_ms"), any_number(self.r)))
        if kind == "error":
            m.append((self.key("code"), self.r.choice(["2002", "3001", "2001"])))
            m.append((self.key("message"), any_string(self.r)))
        self.extras(m)
        return self.obj(m)

    def frame(self, seed: int, bad: bool | None = None, kind: str | None = None,
              ) -> tuple[bytes, bool]:
        """One frame from a fresh seed; returns (bytes, clean). ``bad`` forces a defect (or its
        absence), ``kind`` the frame kind."""
        self.r = random.Random(seed)
        self.clean = True
        self.is_bad = self.p(0.3) if bad is None else bad
        self.bad_what = self.r.choice(BAD_KINDS)
        if kind is None:
            kind = self.r.choice(["delta"] * 10 + ["snapshot"] * 3 + ["activity"] * 2
                                 + ["control"] * 2 + ["corrupt"] + ["raw"])
        if kind == "raw":
            if self.p(0.5):
                return bytes(self.r.getrandbits(8) for _ in range(self.r.randint(0, 40))), False
            return self.r.choice([b"", b"null", b"[]", b"{}", b"1", b'"x"', b"{}{}",
                                  b'{"type":"orderbook_delta"}', b'{"type":"orderbook"}',
                                  b"\xef\xbb\xbf{}", b'{"a":"\\ud800"}', b'{"a":"\\udc00x"}',
                                  b'{"a":"\xed\xa0\x80"}', b'{"a":"\xc0\xaf"}',
                                  b'{"a":"\xf4\x90\x80\x80"}', b'{"a":1}{"a":1}',
                                  b'{"type":"heartbeat"}\x00', b"[" * 200 + b"]" * 200,
                                  b'{"x":' + b"[" * 70 + b"]" * 70 + b',"type":"heartbeat"}']), False
        build = {"delta": self.delta, "snapshot": self.snapshot, "activity": self.activity,
                 "control": self.control, "corrupt": self.delta}[kind]
        who = self.who()
        if who not in self.snapped and kind in ("delta", "activity") and bad is None and self.p(0.7):
            build = self.snapshot   # most books get their snapshot early
        data = (self.ws() + build(who) + self.ws()).encode("utf-8")
        clean = self.clean and kind in ("delta", "snapshot")
        if clean:
            try:   # an unknown field may hold a number that overflows: invalid JSON
                orjson.loads(data)
            except orjson.JSONDecodeError:
                clean = False
        if kind == "corrupt":
            return self.corrupt(data), False
        return data, clean

    def corrupt(self, data: bytes) -> bytes:
        r = self.r
        how = r.randint(0, 6)
        i = r.randint(0, max(0, len(data) - 1))
        if how == 0:
            return data[:i]
        if how == 1:
            return data[:i] + bytes([r.getrandbits(8)]) + data[i + 1:]
        if how == 2:
            return data[:i] + bytes(r.getrandbits(8) for _ in range(r.randint(1, 3))) + data[i:]
        if how == 3:
            return data[:i] + data[i + 1:]
        if how == 4:
            return data + r.choice([b"x", b"}", b",", b"\x00", b" {}", b"\xff"])
        if how == 5:
            return b"\xef\xbb\xbf" + data
        j = data.find(r.choice([b":", b",", b"[", b"]", b'"']), i)   # swap a structural byte
        if j < 0:
            return data[:i]
        return data[:j] + r.choice([b":", b",", b"[", b"]", b'"', b"{", b"}"]) + data[j + 1:]


SEEDS = st.integers(0, 2**32 - 1)
OPS = st.lists(st.tuples(st.integers(0, 99), SEEDS), min_size=20, max_size=80)


@st.composite
def streams(draw, clean_only: bool = False, defects: bool = False):
    """(mode, big_book, ops): ops are ("feed", bytes, clean) / ("flush",) / ("check_stale",) /
    ("remove", i) / ("add", i). With clean_only, only the clean frames of the stream are kept.
    With defects, clean snapshots (that make books valid) alternate with frames that each carry
    one defect, so that every defect meets a valid book in an otherwise well-formed frame."""
    mode = draw(st.sampled_from(["shared", "separate"]))
    big_book = True if clean_only else draw(st.booleans())
    g = G(mode, big_book, draw(SEEDS))
    ops = []
    for k, seed in draw(OPS):
        if defects:
            if k < 35:
                ops.append(("feed", *g.frame(seed, bad=False, kind="snapshot")))
            elif k < 95:
                kind = ("delta", "delta", "delta", "snapshot", "activity", "corrupt")[k % 6]
                ops.append(("feed", *g.frame(seed, bad=True, kind=kind)))
            else:
                ops.append(("flush",))
        elif k < 80 or clean_only:
            data, clean = g.frame(seed)
            if clean or not clean_only:
                ops.append(("feed", data, clean))
        elif k < 92:
            ops.append(("flush",))
        elif k < 95:
            ops.append(("check_stale",))
        elif k < 97:
            ops.append(("remove", seed % len(SUBS)))
        else:
            ops.append(("add", seed % len(SUBS)))
    return mode, big_book, ops


# ---------------------------------------------------------------------------------------------
# the two handlers, side by side


def bits(levels) -> list[tuple[bytes, bytes]]:
    return [(struct.pack("<d", p), struct.pack("<d", s)) for p, s in levels]


class Side:
    def __init__(self, parser: str, mode: str, max_levels: int):
        self.fh = FeedHandler(parser=parser, activity_seq=mode, max_levels=max_levels)
        self.events: list = []
        self.fh.on_message = lambda obj: self.events.append(("message", repr(obj)))
        self.fh.on_book_updated = lambda sub: self.events.append(
            ("updated", sub.parsec_id, sub.outcome, sub.book.seq))
        self.fh.on_book_state = lambda sub, what, reason: self.events.append(
            ("state", sub.parsec_id, sub.outcome, what, reason))
        self.fh.on_protocol_error = lambda err: self.events.append(
            ("protocol_error", type(err).__name__, str(err)))
        for pid, outcome in SUBS:
            self.fh.add(pid, outcome)

    def snapshot(self) -> dict:
        out = {}
        for sub in self.fh.subscriptions():
            b = sub.book
            out[(sub.parsec_id, sub.outcome)] = dict(
                seq=b.seq, valid=b.is_valid, bids=bits(b.bids()), asks=bits(b.asks()),
                reason=sub.invalid_reason, book_state=sub.book_state, feed_state=sub.feed_state,
                stale_after_ms=sub.stale_after_ms, locally_stale=sub.locally_stale,
                last_error=sub.last_error, stats=sub.stats, trustworthy=sub.trustworthy,
                why_not=sub.why_not())
        return out

    def stats(self) -> dict:
        st_ = dict(self.fh.stats)
        assert st_["native_frames"] + st_["orjson_frames"] == st_["frames"]
        del st_["native_frames"], st_["orjson_frames"]
        return st_


def run_ops(mode: str, big_book: bool, ops: list) -> tuple[Side, Side, int]:
    max_levels = 10_000 if big_book else 3
    nat, ref = Side("native", mode, max_levels), Side("orjson", mode, max_levels)
    clean_frames = 0
    for step, op in enumerate(ops):
        if op[0] == "feed":
            before = nat.fh.stats["native_frames"]
            nat.fh.feed(op[1])
            ref.fh.feed(op[1])
            if op[2]:
                clean_frames += 1
                assert nat.fh.stats["native_frames"] == before + 1, \
                    f"clean frame not handled natively: {op[1]!r}"
        elif op[0] == "flush":
            nat.fh.flush()
            ref.fh.flush()
        elif op[0] == "check_stale":
            # far enough in the future that both handlers see the same stale subscriptions
            now = time.monotonic_ns() + 10**15
            nat.fh.check_stale(now)
            ref.fh.check_stale(now)
        elif op[0] == "remove":
            assert nat.fh.remove(*SUBS[op[1]]) == ref.fh.remove(*SUBS[op[1]])
        elif op[0] == "add":
            nat.fh.add(*SUBS[op[1]])
            ref.fh.add(*SUBS[op[1]])
        assert nat.events == ref.events, f"events differ after step {step}: {op!r}"
        assert nat.snapshot() == ref.snapshot(), f"books differ after step {step}: {op!r}"
        assert nat.stats() == ref.stats(), f"stats differ after step {step}: {op!r}"
    assert ref.fh.stats["native_frames"] == 0
    return nat, ref, clean_frames


@SETTINGS
@given(streams())
def test_native_and_orjson_paths_are_equivalent(stream):
    run_ops(*stream)


@SETTINGS
@given(streams(defects=True))
def test_single_defects_on_valid_books_are_equivalent(stream):
    run_ops(*stream)


@SETTINGS
@given(streams(clean_only=True))
def test_clean_frames_take_the_native_path(stream):
    assume(stream[2])
    nat, ref, clean = run_ops(*stream)
    assert clean == len(stream[2])
    assert nat.fh.stats["native_frames"] == clean and nat.fh.stats["orjson_frames"] == 0


def test_seeded_stream_is_mostly_native():
    """A fixed realistic stream (bench/stream.py style frames) goes native, and both handlers end
    with the same books: a smoke check independent of Hypothesis's choices."""
    rng = random.Random(7)
    nat, ref = Side("native", "shared", 10_000), Side("orjson", "shared", 10_000)
    frames = [orjson.dumps({"type": "orderbook", "parsec_id": SUBS[0][0], "outcome": "Yes",
                            "bids": [[0.5, 10.0], [0.4, 3]], "asks": [[0.6, 1e-300]],
                            "server_seq": 10})]
    for s in range(11, 1011):
        changes = [{"side": rng.choice(["bid", "ask"]), "price": rng.randint(1, 999) / 1000,
                    "size": rng.choice([0.0, rng.uniform(0, 5000), float(rng.randint(0, 99))])}
                   for _ in range(rng.randint(1, 3))]
        frames.append(orjson.dumps({"type": "orderbook_delta", "parsec_id": SUBS[0][0],
                                    "outcome": "Yes", "changes": changes, "server_seq": s}))
    for f in frames:
        nat.fh.feed(f)
        ref.fh.feed(f)
    assert nat.fh.stats["native_frames"] == len(frames)
    assert nat.snapshot() == ref.snapshot() and nat.events == ref.events
    assert nat.fh.get(*SUBS[0]).book.seq == 1010
    assert not any(math.isnan(p) for p, _ in nat.fh.get(*SUBS[0]).book.bids())
