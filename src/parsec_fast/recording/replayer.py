"""Replaying a recording through the compiled feed handler the client uses."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from .format import FLAG_LAST_IN_BUFFER, KIND_FRAME, KIND_META, Record
from .reader import Damage, RecordingReader

if TYPE_CHECKING:
    from .._feed import ActivitySeq, FeedHandler, ParserName

__all__ = ["Replayer", "ReplayStats"]


@dataclass
class ReplayStats:
    """What a replay did, and what of the file it could not read."""

    frames: int = 0
    bytes: int = 0
    meta_records: int = 0
    elapsed_s: float = 0.0
    #: Recorded time between the first and the last record (monotonic clock of the session).
    recorded_span_s: float = 0.0
    #: False when the file is not a recording (nothing was replayed).
    is_recording: bool = True
    #: The file ends inside a record (a torn last write); every complete record was replayed.
    truncated: bool = False
    #: Records were lost (bytes that are not records were skipped), or not a recording.
    corrupt: bool = False
    #: Where reading ended before the end of the file (a torn tail), else None.
    stopped_at: int | None = None
    #: Every damaged stretch skipped, in file order.
    damage: list[Damage] = field(default_factory=list)
    #: The damage in one line (None for a clean file).
    error: str | None = None
    #: :meth:`Replayer.stop` ended the replay before the end of the file.
    stopped: bool = False
    #: The feed handler's counters at the end.
    handler_stats: dict[str, int] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        """Replay throughput."""
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Replayer:
    """Feeds a recording through a :class:`parsec_fast._feed.FeedHandler` — the same compiled
    handler the client uses — as fast as possible (``speed=None``) or paced (``speed=1.0`` =
    recorded pace, ``2.0`` = twice as fast). Damaged stretches are skipped (see
    :class:`~parsec_fast.recording.reader.RecordingReader`) and reported in the stats.

    Without ``handler``, one is made from the recording's ``config`` meta record (or the
    ``parser`` / ``activity_seq`` / ``max_levels`` given here, which take precedence). Set its
    callbacks before :meth:`run` to observe the replay; ``handler.get(pid, outcome).book``
    holds the books afterwards.
    """

    def __init__(self, path: str | os.PathLike[str], *, handler: FeedHandler | None = None,
                 parser: ParserName | None = None, activity_seq: ActivitySeq | None = None,
                 max_levels: int | None = None) -> None:
        #: The recording file.
        self.path: str = os.fspath(path)
        self._overrides: dict[str, str | int] = {
            k: v for k, v in (("parser", parser), ("activity_seq", activity_seq),
                              ("max_levels", max_levels)) if v is not None}
        #: The feed handler the recording is fed to.
        self.handler: FeedHandler = handler if handler is not None else self._make_handler()
        self._stopping = False

    def _make_handler(self) -> FeedHandler:
        from .._feed import FeedHandler  # compiled; imported lazily so recording works without it

        config: dict[str, str | int] = {}
        first = next(iter(RecordingReader(self.path)), None)  # the client writes config first
        if first is not None and first.kind == KIND_META:
            meta = orjson.loads(first.payload)
            if meta.get("event") == "config":
                config = {k: meta[k] for k in ("parser", "activity_seq", "max_levels") if k in meta}
        config.update(self._overrides)
        return FeedHandler(**config)  # type: ignore[arg-type]

    def run(self, speed: float | None = None,
            on_frame: Callable[[Record], None] | None = None) -> ReplayStats:
        """Replay the whole recording; return its stats (``damage`` lists what could not be
        read — every valid record around it is replayed)."""
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
                while not self._stopping and (wait := due - time.perf_counter()) > 0:
                    time.sleep(min(wait, 0.1))  # short naps: stop() is seen within 0.1 s
            if self._stopping:
                stats.stopped = True
                break
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
        self._stopping = False  # a stop() ends one run: the current one, or the next
        flush()
        stats.elapsed_s = time.perf_counter() - start
        stats.recorded_span_s = (last_ns - first_ns) / 1e9 if first_ns is not None else 0.0
        stats.is_recording = reader.is_recording
        stats.truncated, stats.corrupt = reader.truncated, reader.corrupt
        stats.stopped_at, stats.error = reader.stopped_at, reader.error
        stats.damage = list(reader.damage)
        stats.handler_stats = dict(handler.stats)
        return stats

    def stop(self) -> None:
        """End the running :meth:`run` after the current record, or the next one before its
        first record (safe from a signal handler)."""
        self._stopping = True

    def _apply_meta(self, meta: dict[str, str]) -> None:
        event = meta.get("event")
        if event == "add":
            self.handler.add(meta["parsec_id"], meta["outcome"])
        elif event == "remove":
            self.handler.remove(meta["parsec_id"], meta["outcome"])
        elif event == "disconnected":
            self.handler.flush()
            self.handler.invalidate_all("disconnected")
