"""Writing a recording: :class:`FrameRecorder`, and how much a crash may lose.

Durability is set by ``fsync_interval`` (seconds):

* ``1.0`` (the default): at most once a second (when a record is written and a second has
  passed since the last time, or when the client's periodic :meth:`~FrameRecorder.flush`
  finds it due) the buffered records go to the OS and are fsync'd, the fsync in a background
  thread so the receive path does not wait on the disk. A process crash, an OS crash or a
  power cut loses at most about the last second of frames (plus up to one ``flush()`` period,
  ~1 s, when the stream has just gone quiet, and the duration of an fsync still in flight).
* ``0``: every record is written and fsync'd before the next frame is read: a crash loses
  nothing but the record being written. Costs a disk round trip per frame (below).
* ``None``: never fsync. Records reach the OS when the buffer fills and on every ``flush()``
  (the client calls it about once a second), so a process crash (``kill -9``) still loses at
  most about a second; an OS crash or power cut loses whatever the kernel had not written back
  yet (on Linux up to ~30 s by default, ``vm.dirty_expire_centisecs``).

Whatever the policy, a crash leaves an exact prefix of the records written, possibly with a
torn last record; reading skips it and the next append cuts it
(:func:`~parsec_fast.recording.append.prepare_append`).

Measured on this project's shared 2-core machine (ext4 on a virtual disk), 290-byte frames
through :meth:`FrameRecorder.tap`, three to six runs: ``python -m parsec_fast.recording.fsync_cost``
(as fast as possible) and ``python -m parsec_fast.recording.fsync_cost --rate 5000`` (paced,
for the stall a policy puts on the receive path):

=====================  ===================  ========================  ====================
policy                 frames/s recorded    longest tap(), max rate   longest tap(), 5 k/s
=====================  ===================  ========================  ====================
never (``None``)       520 k - 900 k        0.1 - 0.5 ms              0.15 - 0.2 ms
every 1 s (default)    660 k - 770 k        17 - 46 ms                0.54 - 0.62 ms
every frame (``0``)    2.3 k - 7.6 k        0.5 - 26 ms               0.5 - 8 ms
=====================  ===================  ========================  ====================

So the default costs ~10 % of the ceiling and well under a millisecond at realistic rates
(``parsec-fast record local --rate 20000``, ~3.5 k frames/s, records every frame under all
three); the remaining stall at the ceiling is the write to the page cache waiting behind an
fsync of ~200 MB (it was 60-100 ms with the fsync on the receive path). An fsync per frame
caps a session at a few thousand frames/s (the disk's fsync round trip, ~0.15 ms here, far
more on a busy or rotating disk).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import orjson

from .append import AppendPoint, prepare_append
from .format import FILE_HEADER, FLAG_LAST_IN_BUFFER, HEADER_SIZE, KIND_FRAME, KIND_META, \
    encode_header

__all__ = ["FrameRecorder", "DEFAULT_FSYNC_INTERVAL"]

log: logging.Logger = logging.getLogger("parsec_fast.recording")

#: Seconds between two fsyncs of a recording by default (see the module docstring).
DEFAULT_FSYNC_INTERVAL: float = 1.0


class FrameRecorder:
    """Appends records to a recording file (buffered; durability per ``fsync_interval``, see
    the module docstring).

    A new or empty file gets the file header. An existing file must be a recording
    (``NotARecordingError``, a ``ValueError``, otherwise); whatever follows its last complete
    record (a torn tail) is cut first and ``appended`` says what was found and cut.

    The client calls :meth:`tap` for every received text frame (the compiled listener's
    recording tap), :meth:`meta` for session events and :meth:`flush` about once a second.
    Not thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], *, buffer_size: int = 256 * 1024,
                 fsync_interval: float | None = DEFAULT_FSYNC_INTERVAL) -> None:
        if fsync_interval is not None and not fsync_interval >= 0:
            raise ValueError(f"fsync_interval must be >= 0 or None, got {fsync_interval!r}")
        #: The recording file.
        self.path: str = os.fspath(path)
        #: Seconds between fsyncs (0: every record; None: never).
        self.fsync_interval: float | None = fsync_interval
        #: What opening an existing recording found (None for a new or empty file).
        self.appended: AppendPoint | None = None
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            self.appended = prepare_append(self.path)
            if self.appended.dropped_bytes:
                log.warning("appending to %s", self.appended.describe())
        self._file: BinaryIO | None = open(self.path, "ab", buffering=buffer_size)
        self._interval_ns = None if fsync_interval is None else int(fsync_interval * 1e9)
        self._synced_ns = time.monotonic_ns()
        #: Records written by this recorder.
        self.records: int = 0
        #: Bytes of those records (headers included).
        self.bytes: int = 0
        #: fsync calls so far.
        self.syncs: int = 0
        self._unsynced = False  # written since the last fsync
        self._syncer: ThreadPoolExecutor | None = None  # runs periodic fsyncs off this thread
        self._inflight: Future[None] | None = None
        if self._file.tell() == 0:
            self._file.write(FILE_HEADER)
            self._unsynced = True

    def _write(self, kind: int, flags: int, mono_ns: int, wall_ns: int, payload: bytes,
               now_ns: int) -> None:
        f = self._file
        if f is None:
            raise ValueError(f"recording {self.path} is closed")
        f.write(encode_header(kind, flags, mono_ns, wall_ns, payload))
        f.write(payload)
        self.records += 1
        self.bytes += HEADER_SIZE + len(payload)
        self._unsynced = True
        if self._interval_ns is not None and now_ns - self._synced_ns >= self._interval_ns:
            self.sync()

    def tap(self, payload: bytes, mono_ns: int, last_in_buffer: bool) -> None:
        """The compiled listener's recording tap: record one received text frame now
        (``mono_ns``: its read batch's ``time.monotonic_ns()``)."""
        self._write(KIND_FRAME, FLAG_LAST_IN_BUFFER if last_in_buffer else 0, mono_ns,
                    time.time_ns(), payload, mono_ns)

    def frame(self, payload: bytes, mono_ns: int, wall_ns: int, last_in_buffer: bool) -> None:
        """Record one text frame with the given timestamps."""
        self._write(KIND_FRAME, FLAG_LAST_IN_BUFFER if last_in_buffer else 0, mono_ns, wall_ns,
                    payload, time.monotonic_ns())

    def meta(self, event: Mapping[str, object]) -> None:
        """Record a client session event (see :mod:`parsec_fast.recording.format`)."""
        now = time.monotonic_ns()
        self._write(KIND_META, 0, now, time.time_ns(), orjson.dumps(dict(event)), now)

    def flush(self) -> None:
        """Hand the buffered records to the OS (a process crash no longer loses them); fsync
        too when ``fsync_interval`` says it is due."""
        if self._file is None:
            return
        if self._interval_ns is not None and \
                time.monotonic_ns() - self._synced_ns >= self._interval_ns:
            self.sync()
        else:
            self._file.flush()

    def sync(self) -> None:
        """Hand the buffered records to the OS and fsync the file (durable across an OS
        crash), whatever the policy; nothing to do when nothing was written since the last.

        With a periodic policy (``fsync_interval > 0``) the fsync runs in a background thread
        (at most one at a time; the write to the OS stays here, in order), so the receive path
        never waits on the disk; with ``0`` it runs here, before the next frame is read, which
        is what that policy promises."""
        if self._file is None:
            return
        self._file.flush()
        self._synced_ns = time.monotonic_ns()
        if not self._unsynced:
            return
        if self._interval_ns:
            inflight = self._inflight
            if inflight is not None and not inflight.done():
                return  # the next interval syncs what this one wrote
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(1, thread_name_prefix="parsec-fast-fsync")
            self._inflight = self._syncer.submit(os.fsync, self._file.fileno())
        else:
            os.fsync(self._file.fileno())
        self._unsynced = False
        self.syncs += 1

    def _settle_background_sync(self) -> None:
        """Wait for the background fsync in flight (if any) and stop its thread."""
        if self._inflight is not None:
            try:
                self._inflight.result()
            except OSError as exc:  # try again in close(); it reports a persistent failure
                log.warning("background fsync of %s failed: %s", self.path, exc)
                self._unsynced = True
            self._inflight = None
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None

    def close(self) -> None:
        """Flush (and fsync, unless ``fsync_interval`` is None) and close; idempotent."""
        if self._file is None:
            return
        try:
            self._settle_background_sync()
            if self._interval_ns is not None:
                self._file.flush()
                if self._unsynced:
                    os.fsync(self._file.fileno())
                    self._unsynced = False
                    self.syncs += 1
            else:
                self._file.flush()
        finally:
            self._file.close()
            self._file = None

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._file is None
