"""``python -m parsec_fast.recording.fsync_cost``: what each fsync policy costs on this disk.

Records the same frames (a realistic 1-change delta, ~300 bytes) through
:meth:`FrameRecorder.tap <parsec_fast.recording.writer.FrameRecorder.tap>` with
``fsync_interval`` None (never), 1.0 (the default) and 0 (every frame), into a temporary
file in ``--dir`` (default: the system's temporary directory; give the disk you record to),
and prints frames/s for each and the longest single ``tap()`` call (the stall an fsync puts
on the receive path). The "every 1 s" run lasts at least ``--min-seconds`` so that
it includes its fsyncs.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import orjson

from .writer import FrameRecorder

__all__ = ["measure", "main"]

_FRAME = orjson.dumps({
    "type": "orderbook_delta", "parsec_id": "polymarket:572473", "exchange": "polymarket",
    "outcome": "Yes", "token_id": "21742633143463906290569050155826241533067272736897614950488",
    "market_id": "572473", "changes": [{"side": "bid", "price": 0.6512, "size": 1250.0}],
    "server_seq": 123456789, "ts": 1767225600123})


def measure(directory: str, fsync_interval: float | None, frames: int,
            min_seconds: float = 0.0, rate: float | None = None) -> tuple[float, int, float]:
    """(frames/s, fsyncs, longest single ``tap()`` in seconds) recording ``frames`` frames
    (more if needed to last ``min_seconds``) with ``fsync_interval`` into a temporary file in
    ``directory``, as fast as possible or at ``rate`` frames/s (batches of 8). The longest
    call is the stall an fsync puts on the receive path."""
    fd, path = tempfile.mkstemp(suffix=".pfrec", dir=directory)
    os.close(fd)
    os.unlink(path)
    try:
        rec = FrameRecorder(path, fsync_interval=fsync_interval)
        tap, clock = rec.tap, time.perf_counter
        start = before = clock()
        longest = 0.0
        n = 0
        while n < frames or before - start < min_seconds:
            if rate is not None and n % 8 == 0:
                pause = start + n / rate - clock()
                if pause > 0:
                    time.sleep(pause)
                before = clock()
            tap(_FRAME, time.monotonic_ns(), n % 8 == 7)  # a read batch of 8 frames
            after = clock()
            longest = max(longest, after - before)
            before = after
            n += 1
        rec.close()
        elapsed = clock() - start
        return n / elapsed, rec.syncs, longest
    finally:
        if os.path.exists(path):
            os.unlink(path)


def main(argv: list[str] | None = None) -> None:
    """Print frames/s recorded under each fsync policy."""
    p = argparse.ArgumentParser(prog="python -m parsec_fast.recording.fsync_cost",
                                description="What each fsync policy costs on this disk.")
    p.add_argument("--dir", default=tempfile.gettempdir(), help="where to write (the disk)")
    p.add_argument("--frames", type=int, default=20_000, help="frames per policy")
    p.add_argument("--min-seconds", type=float, default=3.0,
                   help="the 1 s policy runs at least this long (default 3)")
    p.add_argument("--rate", type=float, default=None,
                   help="frames/s to pace at (default: as fast as possible)")
    a = p.parse_args(argv)
    pace = f" at {a.rate:,.0f} frames/s" if a.rate else ", as fast as possible"
    print(f"{len(_FRAME)}-byte frames into {a.dir}{pace}")
    for label, interval, frames, min_s in (("never (None)", None, a.frames, 0.0),
                                           ("every 1 s (1.0)", 1.0, a.frames, a.min_seconds),
                                           ("every frame (0)", 0.0, min(a.frames, 2_000), 0.0)):
        if a.rate:
            frames = min(frames, int(a.rate * max(min_s, 1.0)))
        rate, syncs, longest = measure(a.dir, interval, frames, min_s, a.rate)
        print(f"{label:18} {rate:>12,.0f} frames/s  {syncs:>6} fsyncs  longest tap() "
              f"{longest * 1e3:8.2f} ms", flush=True)


if __name__ == "__main__":
    main()
