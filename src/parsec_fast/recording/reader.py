"""Reading a recording, past any damage, saying exactly what was lost.

:class:`RecordingReader` yields every record whose header and CRC check. When the bytes at an
offset are not a record it does not stop: it scans forward for the next offset that is one
(see :mod:`parsec_fast.recording.format`) and notes the skipped bytes as a :class:`Damage`:

* ``torn``: the file ends inside a record and nothing valid follows: the last write was cut
  short (a crash, ``kill -9``, a full disk). Every complete record before it is read.
* ``corrupt``: bytes that are not a record (a checksum mismatch, a garbled header), with or
  without valid records after them.

The scan is bounded by ``resync_limit`` bytes after each damage (default
:data:`DEFAULT_RESYNC_LIMIT`; None: unbounded); past it the reader stops and the damage says
which bytes were not examined. A file that does not start with the file header is not a
recording (``is_recording`` False): nothing is read from it.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from .format import (FILE_HEADER, HEADER_SIZE, RECORD_STARTS, Record, RecordProblem,
                     declared_end, read_record)

__all__ = ["RecordingReader", "Damage", "DamageKind", "NotARecordingError",
           "DEFAULT_RESYNC_LIMIT"]

#: Bytes scanned for the next valid record after a damaged one before the reader gives up
#: (larger than the client's default 8 MiB message cap, so one garbled record is always
#: skipped).
DEFAULT_RESYNC_LIMIT: Final = 64 * 1024 * 1024

DamageKind = Literal["torn", "corrupt"]

_REASONS: dict[RecordProblem, str] = {
    "short": "record header cut short",
    "cut": "record cut short",
    "header": "not a record header (kind, flags or length out of range)",
    "checksum": "record checksum mismatch",
}


class NotARecordingError(ValueError):
    """The file does not start with a recording's file header."""


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes ``start`` to ``end`` (exclusive) of a recording that hold no readable record."""

    start: int
    end: int
    kind: DamageKind
    #: Records lost in these bytes when that is known (the damaged record's own length led to
    #: the next valid record or to the end of the file), else None: at least one.
    records_lost: int | None
    reason: str

    @property
    def size(self) -> int:
        """Bytes skipped."""
        return self.end - self.start

    def describe(self) -> str:
        """One line: where, how many bytes, why, what was lost."""
        if self.kind == "torn":
            lost = "an incomplete last record"
        elif self.records_lost is None:
            lost = "at least 1 record lost (its length is unreadable)"
        else:
            lost = f"{self.records_lost} record{'s' if self.records_lost != 1 else ''} lost"
        return (f"bytes {self.start}-{self.end - 1} ({self.size:,} bytes) {self.kind}: "
                f"{self.reason}; {lost}")


class RecordingReader:
    """Iterates the records of a recording (every pass reads the file again).

    After a pass: ``records`` read, ``damage`` skipped (in file order), ``valid_end`` (the byte
    after the last valid record: where an append should continue), ``is_recording``; and the
    summaries ``truncated`` (ends torn), ``corrupt`` (other damage, or not a recording),
    ``stopped_at`` and ``error``.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 resync_limit: int | None = DEFAULT_RESYNC_LIMIT) -> None:
        #: The recording file.
        self.path: str = os.fspath(path)
        #: Bytes scanned after a damaged record for the next valid one (None: to the end).
        self.resync_limit: int | None = resync_limit
        #: Valid records read by the last pass.
        self.records: int = 0
        #: Damaged stretches skipped by the last pass.
        self.damage: list[Damage] = []
        #: False when the file does not start with the file header (nothing is read).
        self.is_recording: bool = True
        #: Byte offset just after the last valid record (the file header when there is none).
        self.valid_end: int = 0
        #: Bytes in the file.
        self.size: int = 0

    @property
    def truncated(self) -> bool:
        """The file ends inside a record (a cut-short last write)."""
        return bool(self.damage) and self.damage[-1].kind == "torn"

    @property
    def corrupt(self) -> bool:
        """Not a recording, or bytes that are not records somewhere (records were lost)."""
        return not self.is_recording or any(d.kind == "corrupt" for d in self.damage)

    @property
    def stopped_at(self) -> int | None:
        """Where reading ended before the end of the file: the start of a torn last record,
        of bytes past the resync limit, or 0 for a file that is not a recording."""
        if not self.is_recording:
            return 0
        last = self.damage[-1] if self.damage else None
        return last.start if last is not None and last.end == self.size else None

    @property
    def error(self) -> str | None:
        """Every damage in one line (None for a clean file)."""
        if not self.is_recording:
            return f"{self.path}: not a parsec_fast recording (bad file header at byte 0)"
        if not self.damage:
            return None
        return f"{self.path}: " + "; ".join(d.describe() for d in self.damage)

    def __iter__(self) -> Iterator[Record]:
        """Every valid record, in file order (damage is noted, see the class docstring)."""
        self.records, self.damage, self.is_recording, self.valid_end = 0, [], True, 0
        with open(self.path, "rb") as f:
            self.size = size = os.fstat(f.fileno()).st_size
            if size < len(FILE_HEADER):
                if FILE_HEADER.startswith(f.read()):  # created, then cut before its header
                    if size:
                        self.damage.append(Damage(0, size, "torn", 0,
                                                  "the file ends inside its header"))
                else:
                    self.is_recording = False
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data[:len(FILE_HEADER)] != FILE_HEADER:
                    self.is_recording = False
                    return
                pos = self.valid_end = len(FILE_HEADER)
                while pos < size:
                    found = read_record(data, pos, size)
                    record = found if isinstance(found, Record) else \
                        self._skip_damage(data, pos, size, found)
                    if record is None:
                        return
                    self.records += 1
                    self.valid_end = pos = record.end
                    yield record

    def _skip_damage(self, data: mmap.mmap, pos: int, size: int,
                     problem: RecordProblem) -> Record | None:
        """Note the damage at ``pos``; return the next valid record after it (None: none)."""
        limit = size if self.resync_limit is None else min(size, pos + 1 + self.resync_limit)
        record = _next_record(data, pos + 1, limit, size)
        reason = _REASONS[problem]
        if record is not None:
            expected_end = declared_end(data, pos, size)
            self.damage.append(Damage(pos, record.offset, "corrupt",
                                      1 if expected_end == record.offset else None, reason))
            return record
        if limit < size:
            self.damage.append(Damage(pos, size, "corrupt", None,
                                      f"{reason}; no valid record in the next "
                                      f"{self.resync_limit:,} bytes: bytes {limit}-{size - 1} "
                                      "were not examined"))
        elif problem in ("short", "cut"):
            expected = declared_end(data, pos, size)
            of = f"{HEADER_SIZE}-byte header" if expected is None else f"{expected - pos:,} bytes"
            self.damage.append(Damage(pos, size, "torn", 1,
                                      f"last record cut short: {size - pos:,} of its {of} "
                                      "written"))
        else:
            self.damage.append(Damage(pos, size, "corrupt",
                                      1 if declared_end(data, pos, size) == size else None,
                                      reason))
        return None


def _next_record(data: mmap.mmap, start: int, limit: int, size: int) -> Record | None:
    """The first valid record starting in ``[start, limit)``: only offsets holding one of the
    record-start patterns are checked (found at C speed)."""
    pos = start
    while pos < limit:
        candidates = [i for i in (data.find(p, pos, limit + len(p) - 1) for p in RECORD_STARTS)
                      if i != -1]
        if not candidates:
            return None
        pos = min(candidates)
        found = read_record(data, pos, size)
        if not isinstance(found, str):
            return found
        pos += 1
    return None

