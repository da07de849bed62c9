"""Continuing an existing recording, and undoing a session that recorded nothing.

New records must follow the last *complete* record: written after a torn tail (a crash
mid-write), they would sit behind bytes a reader has to skip. :func:`prepare_append` reads the
whole file (CRC of every record, at about the speed of ``zlib.crc32``), cuts everything after
the last valid record and says what it cut. Damage in the middle is kept (the reader skips it)
and reported.

:class:`FileCheckpoint` remembers a file's state before a session so that a session that never
connected leaves nothing behind: a file it created is removed, an existing one is cut back to
its size (after the repair above, which is not undone: the bytes it cut were no records).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .reader import Damage, NotARecordingError, RecordingReader

__all__ = ["AppendPoint", "prepare_append", "FileCheckpoint"]


@dataclass(frozen=True, slots=True)
class AppendPoint:
    """What :func:`prepare_append` found in an existing recording and did to it."""

    path: str
    #: Where new records go: just after the last complete record (the file's size now).
    offset: int
    #: Complete records already in the file.
    records: int
    #: Bytes cut from the end (a torn or unreadable tail), 0 when the file ended cleanly.
    dropped_bytes: int
    #: The damage that was cut (None when nothing was).
    dropped: Damage | None
    #: Damage before ``offset``, kept: the reader skips it.
    damage: tuple[Damage, ...]

    def describe(self) -> str:
        """One line for the user."""
        text = f"{self.path}: {self.records:,} complete records ({self.offset:,} bytes)"
        if self.dropped is not None:
            d = self.dropped
            text += (f"; dropped {self.dropped_bytes:,} bytes after it (bytes {d.start}-"
                     f"{d.end - 1}: {d.reason})")
        if self.damage:
            text += (f"; {len(self.damage)} damaged stretch(es) inside it are skipped when "
                     f"read: {'; '.join(d.describe() for d in self.damage)}")
        return text


def prepare_append(path: str | os.PathLike[str]) -> AppendPoint:
    """Make an existing recording ready for append: cut whatever follows its last valid record.

    Raises :class:`~parsec_fast.recording.reader.NotARecordingError` (a ``ValueError``) when
    the file is not a recording, ``OSError`` when it cannot be read or cut."""
    reader = RecordingReader(path, resync_limit=None)  # unbounded: never cut valid records
    for _ in reader:
        pass
    if not reader.is_recording:
        raise NotARecordingError(f"{reader.path}: not a parsec_fast recording "
                                 "(bad file header at byte 0)")
    keep = reader.valid_end
    tail = [d for d in reader.damage if d.end > keep]
    dropped = reader.size - keep
    if dropped:
        os.truncate(reader.path, keep)
    return AppendPoint(reader.path, keep, reader.records, dropped, tail[0] if tail else None,
                       tuple(d for d in reader.damage if d.end <= keep))


@dataclass(frozen=True, slots=True)
class FileCheckpoint:
    """A file's state before a recording session: absent (``size`` None) or ``size`` bytes."""

    path: str
    size: int | None

    @classmethod
    def take(cls, path: str | os.PathLike[str]) -> FileCheckpoint:
        """The state of ``path`` now."""
        p = os.fspath(path)
        try:
            return cls(p, os.stat(p).st_size)
        except FileNotFoundError:
            return cls(p, None)

    def restore(self) -> None:
        """Undo the session: remove the file if it did not exist, else cut it back."""
        if self.size is None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        elif os.path.exists(self.path) and os.stat(self.path).st_size > self.size:
            os.truncate(self.path, self.size)
