"""Raw frame recording and replay.

A recording is an append-only binary file: an 8-byte file header ``b"PFREC01\\n"`` and then
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

A crash mid-write leaves a truncated last record; a reader stops before it and reports
``truncated`` (and the byte offset) instead of misreading it. A CRC mismatch stops the read
with ``corrupt`` set.
"""
from __future__ import annotations

import mmap
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

__all__ = ["FILE_HEADER", "KIND_FRAME", "KIND_META", "FLAG_LAST_IN_BUFFER", "Record",
           "FrameRecorder", "RecordingReader", "Replayer", "ReplayStats"]

FILE_HEADER = b"PFREC01\n"
KIND_FRAME = 1
KIND_META = 2
FLAG_LAST_IN_BUFFER = 1

_HEAD = struct.Struct("<BBHI")       # kind, flags, reserved, crc32
_TAIL = struct.Struct("<qqI")        # mono_ns, wall_ns, length (covered by the CRC)
_HEADER_SIZE = _HEAD.size + _TAIL.size  # 28
_MAX_PAYLOAD = 1 << 31


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a recording."""

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


class FrameRecorder:
    """Appends records to a recording file (opened in append mode, buffered).

    The client calls :meth:`frame` for every received text frame and :meth:`meta` for session
    events; it calls :meth:`flush` periodically (about once a second), so a crash loses at most
    that much. Not thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], *, buffer_size: int = 256 * 1024) -> None:
        self.path = os.fspath(path)
        self._file: BinaryIO | None = open(self.path, "ab", buffering=buffer_size)
        if self._file.tell() == 0:
            self._file.write(FILE_HEADER)
        else:  # appending to an existing recording: it must be one
            with open(self.path, "rb") as f:
                if f.read(len(FILE_HEADER)) != FILE_HEADER:
                    self._file.close()
                    self._file = None
                    raise ValueError(f"{self.path}: not a parsec_fast recording")
        self.records = 0
        self.bytes = 0

    def _write(self, kind: int, flags: int, mono_ns: int, wall_ns: int, payload: bytes) -> None:
        f = self._file
        if f is None:
            raise ValueError("recording is closed")
        tail = _TAIL.pack(mono_ns, wall_ns, len(payload))
        crc = zlib.crc32(payload, zlib.crc32(tail))
        f.write(_HEAD.pack(kind, flags, 0, crc))
        f.write(tail)
        f.write(payload)
        self.records += 1
        self.bytes += _HEADER_SIZE + len(payload)

    def frame(self, payload: bytes, mono_ns: int, wall_ns: int, last_in_buffer: bool) -> None:
        """Record one received text frame."""
        self._write(KIND_FRAME, FLAG_LAST_IN_BUFFER if last_in_buffer else 0, mono_ns, wall_ns,
                    payload)

    def tap(self, payload: bytes, mono_ns: int, last_in_buffer: bool) -> None:
        """The compiled listener's recording tap: record one received text frame now."""
        self._write(KIND_FRAME, FLAG_LAST_IN_BUFFER if last_in_buffer else 0, mono_ns,
                    time.time_ns(), payload)

    def meta(self, event: dict[str, Any]) -> None:
        """Record a client session event (see the module docstring)."""
        self._write(KIND_META, 0, time.monotonic_ns(), time.time_ns(), orjson.dumps(event))

    def flush(self) -> None:
        """Push buffered records to the OS."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._file is None


class RecordingReader:
    """Iterates the records of a recording; after iteration, ``truncated`` / ``corrupt`` /
    ``error`` say whether (and ``stopped_at`` where) it ended early."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.truncated = False
        self.corrupt = False
        self.error: str | None = None
        self.stopped_at: int | None = None
        self.records = 0

    def __iter__(self) -> Iterator[Record]:
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(FILE_HEADER):
                self._stop(0, "truncated", f"file of {size} bytes has no complete header")
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data[:len(FILE_HEADER)] != FILE_HEADER:
                    self._stop(0, "corrupt", "not a parsec_fast recording (bad file header)")
                    return
                pos = len(FILE_HEADER)
                while pos < size:
                    if size - pos < _HEADER_SIZE:
                        self._stop(pos, "truncated", f"record header cut after {size - pos} "
                                   f"of {_HEADER_SIZE} bytes")
                        return
                    kind, flags, _, crc = _HEAD.unpack_from(data, pos)
                    tail = data[pos + _HEAD.size:pos + _HEADER_SIZE]
                    mono_ns, wall_ns, length = _TAIL.unpack(tail)
                    end = pos + _HEADER_SIZE + length
                    if end > size:
                        # A length field torn by a crash could also land here; either way the
                        # record is incomplete and is not read.
                        self._stop(pos, "truncated", f"record payload cut: {size - pos - _HEADER_SIZE}"
                                   f" of {length} bytes")
                        return
                    payload = data[pos + _HEADER_SIZE:end]
                    if zlib.crc32(payload, zlib.crc32(tail)) != crc or kind not in (KIND_FRAME,
                                                                                    KIND_META):
                        self._stop(pos, "corrupt", "record checksum or kind mismatch")
                        return
                    self.records += 1
                    yield Record(kind, flags, mono_ns, wall_ns, payload, pos)
                    pos = end

    def _stop(self, offset: int, what: str, message: str) -> None:
        self.stopped_at = offset
        if what == "truncated":
            self.truncated = True
        else:
            self.corrupt = True
        self.error = f"{self.path}: {message} at byte {offset}"


@dataclass
class ReplayStats:
    """What a replay did."""

    frames: int = 0
    bytes: int = 0
    meta_records: int = 0
    elapsed_s: float = 0.0
    #: Recorded time between the first and the last record (monotonic clock of the session).
    recorded_span_s: float = 0.0
    truncated: bool = False
    corrupt: bool = False
    #: Byte offset where reading stopped early (truncated or corrupt tail), else None.
    stopped_at: int | None = None
    error: str | None = None
    #: The feed handler's counters at the end.
    handler_stats: dict[str, int] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        """Replay throughput."""
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Replayer:
    """Feeds a recording through a :class:`parsec_fast._feed.FeedHandler` — the same compiled
    handler the client uses — as fast as possible (``speed=None``) or paced (``speed=1.0`` =
    recorded pace, ``2.0`` = twice as fast).

    Without ``handler``, one is made from the recording's ``config`` meta record (or the
    ``parser`` / ``activity_seq`` / ``max_levels`` given here, which take precedence). Set its
    callbacks before :meth:`run` to observe the replay; ``handler.get(pid, outcome).book``
    holds the books afterwards.
    """

    def __init__(self, path: str | os.PathLike[str], *, handler: Any = None,
                 parser: str | None = None, activity_seq: str | None = None,
                 max_levels: int | None = None) -> None:
        self.path = os.fspath(path)
        self._overrides = {k: v for k, v in (("parser", parser), ("activity_seq", activity_seq),
                                             ("max_levels", max_levels)) if v is not None}
        self.handler = handler if handler is not None else self._make_handler()

    def _make_handler(self) -> Any:
        from ._feed import FeedHandler  # compiled; imported lazily so recording works without it

        config: dict[str, Any] = {}
        first = next(iter(RecordingReader(self.path)), None)  # the client writes config first
        if first is not None and first.kind == KIND_META:
            meta = orjson.loads(first.payload)
            if meta.get("event") == "config":
                config = {k: meta[k] for k in ("parser", "activity_seq", "max_levels") if k in meta}
        config.update(self._overrides)
        return FeedHandler(**config)

    def run(self, speed: float | None = None,
            on_frame: Callable[[Record], None] | None = None) -> ReplayStats:
        """Replay the whole recording; return its stats (``truncated`` etc. set when the file
        ends early — the complete records before that point are replayed)."""
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 or None, got {speed!r}")
        handler = self.handler
        feed, flush = handler.feed, handler.flush
        reader = RecordingReader(self.path)
        stats = ReplayStats()
        first_ns: int | None = None
        last_ns = 0
        start = time.perf_counter()
        for record in reader:
            if first_ns is None:
                first_ns = record.mono_ns
            last_ns = record.mono_ns
            if speed is not None:
                due = start + (record.mono_ns - first_ns) / 1e9 / speed
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            if record.kind == KIND_FRAME:
                stats.frames += 1
                stats.bytes += len(record.payload)
                feed(record.payload)
                if record.flags & FLAG_LAST_IN_BUFFER:
                    flush()
            else:
                stats.meta_records += 1
                self._apply_meta(orjson.loads(record.payload))
            if on_frame is not None:
                on_frame(record)
        flush()
        stats.elapsed_s = time.perf_counter() - start
        stats.recorded_span_s = (last_ns - first_ns) / 1e9 if first_ns is not None else 0.0
        stats.truncated, stats.corrupt = reader.truncated, reader.corrupt
        stats.stopped_at, stats.error = reader.stopped_at, reader.error
        stats.handler_stats = dict(handler.stats)
        return stats

    def _apply_meta(self, meta: dict[str, Any]) -> None:
        event = meta.get("event")
        if event == "add":
            self.handler.add(meta["parsec_id"], meta["outcome"])
        elif event == "remove":
            self.handler.remove(meta["parsec_id"], meta["outcome"])
        elif event == "disconnected":
            self.handler.flush()
            self.handler.invalidate_all("disconnected")
