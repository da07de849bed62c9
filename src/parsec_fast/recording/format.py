"""The recording file format: one file header, then self-checking records.

A recording is an append-only binary file: the 8-byte file header ``b"PFREC01\\n"``, then
records, each a 28-byte little-endian header followed by its payload::

    u8  kind        1 = received text frame, 2 = client meta event (a JSON object)
    u8  flags       bit 0: last frame of its read batch (the client flushed after it)
    u16 reserved    0
    u32 crc32       of the 20 header bytes that follow it, then of the payload
    i64 mono_ns     time.monotonic_ns() at receipt
    i64 wall_ns     time.time_ns() at receipt
    u32 length      payload bytes

Meta events tell the replayer what the client did, so that a replay drives the feed handler
exactly like the live session: ``{"event": "config", "parser", "activity_seq", "max_levels"}``,
``{"event": "add" | "remove", "parsec_id", "outcome"}``, ``{"event": "connected"}`` and
``{"event": "disconnected"}``.

Why a damaged file can be read past the damage: a record start is recognisable. Its first four
bytes are one of three patterns (kind 1 or 2, flags 0 or 1, reserved 0; JSON payloads never hold
a NUL byte) and its CRC covers everything after them, so a reader that meets a bad record scans
forward for the next offset whose header and CRC check (:func:`read_record`); a random match
also needs a 32-bit CRC to agree.
"""
from __future__ import annotations

import mmap
import struct
import zlib
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["FILE_HEADER", "KIND_FRAME", "KIND_META", "FLAG_LAST_IN_BUFFER", "HEADER_SIZE",
           "MAX_PAYLOAD", "RECORD_STARTS", "Record", "RecordProblem", "encode_header",
           "read_record", "declared_end"]

FILE_HEADER: Final = b"PFREC01\n"
KIND_FRAME: Final = 1
KIND_META: Final = 2
FLAG_LAST_IN_BUFFER: Final = 1

_HEAD = struct.Struct("<BBHI")       # kind, flags, reserved, crc32
_TAIL = struct.Struct("<qqI")        # mono_ns, wall_ns, length (covered by the CRC)
#: Bytes of a record header.
HEADER_SIZE: Final = _HEAD.size + _TAIL.size  # 28
#: Largest payload a record may declare (a larger length field is damage).
MAX_PAYLOAD: Final = 1 << 31
#: The first four bytes every valid record starts with (kind, flags, reserved).
RECORD_STARTS: Final = (b"\x01\x00\x00\x00", b"\x01\x01\x00\x00", b"\x02\x00\x00\x00")

#: Why the bytes at an offset are not a record: ``"short"`` (the file ends inside the header),
#: ``"cut"`` (the file ends inside the payload), ``"header"`` (kind, flags, reserved or length
#: out of range), ``"checksum"`` (CRC mismatch).
RecordProblem = Literal["short", "cut", "header", "checksum"]


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a recording, read at byte ``offset``."""

    kind: int
    flags: int
    mono_ns: int
    wall_ns: int
    payload: bytes
    offset: int

    @property
    def last_in_buffer(self) -> bool:
        """The client flushed coalesced book updates after this frame."""
        return bool(self.flags & FLAG_LAST_IN_BUFFER)

    @property
    def end(self) -> int:
        """Byte offset just after this record."""
        return self.offset + HEADER_SIZE + len(self.payload)


def encode_header(kind: int, flags: int, mono_ns: int, wall_ns: int, payload: bytes) -> bytes:
    """The 28-byte header of a record carrying ``payload``."""
    tail = _TAIL.pack(mono_ns, wall_ns, len(payload))
    return _HEAD.pack(kind, flags, 0, zlib.crc32(payload, zlib.crc32(tail))) + tail


def read_record(data: bytes | mmap.mmap, pos: int, size: int) -> Record | RecordProblem:
    """The record at ``pos`` of ``data`` (``size`` bytes long), or why there is none."""
    if size - pos < HEADER_SIZE:
        return "short"
    kind, flags, reserved, crc = _HEAD.unpack_from(data, pos)
    tail = data[pos + _HEAD.size:pos + HEADER_SIZE]
    mono_ns, wall_ns, length = _TAIL.unpack(tail)
    if kind not in (KIND_FRAME, KIND_META) or flags > FLAG_LAST_IN_BUFFER or reserved != 0 \
            or length > MAX_PAYLOAD:
        return "header"
    end = pos + HEADER_SIZE + length
    if end > size:
        return "cut"
    payload = data[pos + HEADER_SIZE:end]
    if zlib.crc32(payload, zlib.crc32(tail)) != crc:
        return "checksum"
    return Record(kind, flags, mono_ns, wall_ns, payload, pos)


def declared_end(data: bytes | mmap.mmap, pos: int, size: int) -> int | None:
    """Where the record at ``pos`` ends by its own length field (None: no complete header)."""
    if size - pos < HEADER_SIZE:
        return None
    length: int = struct.unpack_from("<I", data, pos + HEADER_SIZE - 4)[0]
    return pos + HEADER_SIZE + length
