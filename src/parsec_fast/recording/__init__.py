"""Raw frame recording and replay.

A recording is an append-only file of self-checking records (:mod:`.format`): every frame the
client received, with its timestamps, and the session events a replay needs.

* :class:`FrameRecorder` (:mod:`.writer`) writes one; ``Client(record_path=...)`` uses it
  through the compiled listener's tap. Its ``fsync_interval`` says how much a crash may lose.
* :class:`RecordingReader` (:mod:`.reader`) reads one past any damage and says exactly what it
  skipped (:class:`Damage`: byte ranges, records lost).
* :func:`prepare_append` (:mod:`.append`) cuts a torn tail before new records are appended;
  :class:`FileCheckpoint` undoes a session that recorded nothing.
* :class:`Replayer` (:mod:`.replayer`) feeds one through the client's compiled feed handler.
"""
from __future__ import annotations

from .append import AppendPoint, FileCheckpoint, prepare_append
from .format import FILE_HEADER, FLAG_LAST_IN_BUFFER, HEADER_SIZE, KIND_FRAME, KIND_META, Record
from .reader import DEFAULT_RESYNC_LIMIT, Damage, DamageKind, NotARecordingError, RecordingReader
from .replayer import Replayer, ReplayStats
from .writer import DEFAULT_FSYNC_INTERVAL, FrameRecorder

__all__ = ["FILE_HEADER", "KIND_FRAME", "KIND_META", "FLAG_LAST_IN_BUFFER", "HEADER_SIZE",
           "Record", "FrameRecorder", "DEFAULT_FSYNC_INTERVAL", "RecordingReader", "Damage",
           "DamageKind", "NotARecordingError", "DEFAULT_RESYNC_LIMIT", "AppendPoint",
           "prepare_append", "FileCheckpoint", "Replayer", "ReplayStats"]
