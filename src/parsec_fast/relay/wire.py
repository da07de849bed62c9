"""What the relay puts on NATS: subjects, the batch layout, the control envelope.

Subjects (``prefix`` defaults to ``parsec``; one relay = one Parsec account = one prefix):

=======================================  ===========================================================
``{prefix}.{exchange}.{market}.{outcome}``  one book's stream: its Parsec frames, as received
``{prefix}._relay.control``              requests to the relay (auth, subscribe, unsubscribe,
                                         resync, lease, bye): NATS request/reply
``{prefix}._relay.heartbeat``            the relay's heartbeat (and its goodbye)
=======================================  ===========================================================

Book subjects have exactly four tokens, so ``parsec.kalshi.>`` or ``parsec.*.*.*`` select books
and never the relay's own subjects (``_relay`` is no exchange). Tokens are escaped with
:func:`subject_token`: ``[A-Za-z0-9_-]`` stay as they are, any other byte (``.``, ``*``, ``>``,
spaces, non-ASCII...) becomes ``~XX`` (hex), so every market id maps to one valid token and back.
The outcome token is folded as the client compares outcomes (ASCII letters lowercased), so
``Yes`` and ``yes`` are one subject.

Batch (every message the relay publishes; little-endian; 26-byte header)::

    0   2  magic  b"PF"   (a JSON text never starts with "P": the framing cannot be read as JSON)
    2   1  version  1     (a consumer refuses another version)
    3   1  kind     1 STREAM, 2 REPLY, 3 HEARTBEAT, 4 BYE
    4   8  epoch    the relay instance (random at start; a new one means a restarted relay)
    12  8  rseq     STREAM: the message's number on its subject (1, 2, ...; a consumer that sees
                    a number missing lost a message). REPLY: the number of the last message
                    published on the book's subject when the reply was served (the consumer
                    replays the stream messages it held with a higher number). Else 0.
    20  4  count    frames that follow
    24  2  klen     REPLY: length of the book's subject that follows (its book); else 0
    26  klen        the book's subject (REPLY)
        count x (u32 length, that many bytes: one Parsec frame, untouched JSON)

The frames keep their Parsec ``server_seq``: a consumer's feed handler detects gaps and
duplicates exactly as on the WebSocket.

Control request (consumer -> ``{prefix}._relay.control``; JSON)::

    {"v": 1, "consumer": ID, "inbox": SUBJECT, "frame": <a Parsec control frame>}
    {"v": 1, "consumer": ID, "inbox": SUBJECT, "op": "lease", "wants": [[parsec_id, outcome, depth], ...]}
    {"v": 1, "consumer": ID, "op": "bye"}

``frame`` is the client's own ``auth`` / ``auth_terminal`` / ``subscribe`` / ``unsubscribe`` /
``resync`` frame. Replies are REPLY batches of Parsec frames (``auth_ok`` / ``auth_error``,
``orderbook`` snapshots, ``error``): to the request's NATS reply subject for ``auth``, to
``inbox`` for everything else (the consumer's data connection, so they arrive in order with the
streams).
"""
from __future__ import annotations

import enum
import struct
import sys
from dataclasses import dataclass

import orjson

__all__ = ["VERSION", "MAGIC", "HEADER_SIZE", "Kind", "Batch", "WireError", "encode", "decode",
           "subject_token", "token_text", "book_subject", "book_of_subject", "control_subject",
           "heartbeat_subject", "DEFAULT_PREFIX", "envelope", "validate_prefix"]

if sys.byteorder != "little":  # pragma: no cover - the compiled encoders write host order
    raise ImportError("parsec_fast.relay needs a little-endian host")

VERSION = 1
MAGIC = b"PF"
HEADER_SIZE = 26
DEFAULT_PREFIX = "parsec"
_HEADER = struct.Struct("<2sBBQQIH")
_LEN = struct.Struct("<I")
assert _HEADER.size == HEADER_SIZE


class Kind(enum.IntEnum):
    """What a relay message carries."""

    STREAM = 1     #: a book's frames, in upstream order
    REPLY = 2      #: an answer to a control request (auth_ok, snapshot, error)
    HEARTBEAT = 3  #: the relay is alive (one heartbeat frame)
    BYE = 4        #: the relay is shutting down: consumers drop the connection now


class WireError(ValueError):
    """A NATS message that is not a relay batch of this version."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One decoded relay message."""

    kind: Kind
    epoch: int
    rseq: int
    key: bytes
    frames: list[bytes]


def encode(kind: Kind, epoch: int, rseq: int, frames: list[bytes], key: bytes = b"") -> bytes:
    """One relay message (the compiled ``BookOut.encode`` writes STREAM messages the same way)."""
    parts = [_HEADER.pack(MAGIC, VERSION, int(kind), epoch, rseq, len(frames), len(key)), key]
    for frame in frames:
        parts.append(_LEN.pack(len(frame)))
        parts.append(frame)
    return b"".join(parts)


def decode(body: bytes) -> Batch:
    """Decode a relay message; WireError if it is not one (or not this version)."""
    if len(body) < HEADER_SIZE or body[:2] != MAGIC:
        raise WireError(f"not a relay batch: {body[:16]!r}")
    magic, version, kind, epoch, rseq, count, klen = _HEADER.unpack_from(body)
    if version != VERSION:
        raise WireError(f"relay batch version {version}, this consumer reads {VERSION}")
    try:
        kind = Kind(kind)
    except ValueError:
        raise WireError(f"unknown relay batch kind {kind}") from None
    pos = HEADER_SIZE + klen
    key = body[HEADER_SIZE:pos]
    frames = []
    for _ in range(count):
        if pos + 4 > len(body):
            raise WireError("relay batch truncated")
        (n,) = _LEN.unpack_from(body, pos)
        if pos + 4 + n > len(body):
            raise WireError("relay batch truncated")
        frames.append(body[pos + 4:pos + 4 + n])
        pos += 4 + n
    if pos != len(body):
        raise WireError("relay batch has trailing bytes")
    return Batch(kind, epoch, rseq, key, frames)


# -- subjects -----------------------------------------------------------------------------------
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def subject_token(text: str) -> str:
    """``text`` as one NATS subject token: safe characters kept, every other UTF-8 byte as ``~XX``."""
    raw = text.encode("utf-8")
    if raw and all(b in _SAFE for b in raw):
        return text
    if not raw:
        return "~"
    return "".join(chr(b) if b in _SAFE else f"~{b:02X}" for b in raw)


def token_text(token: str) -> str:
    """The inverse of :func:`subject_token`."""
    if token == "~":
        return ""
    if "~" not in token:
        return token
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "~":
            out.append(int(token[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(ord(token[i]))
            i += 1
    return out.decode("utf-8")


def validate_prefix(prefix: str) -> str:
    """A subject prefix: one or more dot-separated safe tokens; ValueError otherwise."""
    tokens = prefix.split(".")
    if not prefix or not all(t and all(ord(c) < 128 and ord(c) in _SAFE for c in t)
                             for t in tokens):
        raise ValueError(f"subject prefix {prefix!r}: expected tokens of [A-Za-z0-9_-] "
                         "separated by dots")
    return prefix


def book_subject(prefix: str, parsec_id: str, outcome: str) -> str:
    """The subject of one book's stream: ``{prefix}.{exchange}.{market_id}.{outcome}``."""
    exchange, sep, market_id = parsec_id.partition(":")
    if not sep:
        raise ValueError(f"parsec_id {parsec_id!r}: expected EXCHANGE:MARKET_ID")
    folded = outcome.encode("utf-8").lower().decode("utf-8")  # rules.fold_outcome
    return ".".join((prefix, subject_token(exchange), subject_token(market_id),
                     subject_token(folded)))


def book_of_subject(prefix: str, subject: str) -> tuple[str, str]:
    """``(parsec_id, folded outcome)`` of a book subject; ValueError for another subject."""
    head = prefix + "."
    rest = subject[len(head):].split(".") if subject.startswith(head) else []
    if len(rest) != 3 or rest[0] == "_relay":
        raise ValueError(f"not a book subject under {prefix!r}: {subject!r}")
    return f"{token_text(rest[0])}:{token_text(rest[1])}", token_text(rest[2])


def control_subject(prefix: str) -> str:
    """Where consumers send their requests."""
    return f"{prefix}._relay.control"


def heartbeat_subject(prefix: str) -> str:
    """Where the relay publishes its heartbeats and its goodbye."""
    return f"{prefix}._relay.heartbeat"


def envelope(consumer: str, inbox: str | None, *, frame: bytes | None = None,
             op: str | None = None, wants: list[list[object]] | None = None) -> bytes:
    """A control request (see the module docstring); ``frame`` is embedded as it is."""
    head: dict[str, object] = {"v": VERSION, "consumer": consumer}
    if inbox is not None:
        head["inbox"] = inbox
    if op is not None:
        head["op"] = op
    if wants is not None:
        head["wants"] = wants
    body = orjson.dumps(head)
    if frame is None:
        return body
    return body[:-1] + b',"frame":' + frame + b"}"
