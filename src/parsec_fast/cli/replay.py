"""``parsec-fast replay``: a recording through the client's compiled feed handler, and an exit
code that says whether the whole file was read.

0 every record replayed; 5 not a recording (or unreadable: nothing replayed); 6 records were
lost inside the file (every valid record around them replayed); 7 the file ends with a torn
record, as a crash mid-write leaves it (every complete record replayed); 130/143 stopped by a
signal (the summary of what was replayed is still printed). Each damaged stretch is printed
with its byte range and the records lost.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from .connect import say
from .exits import (EXIT_DAMAGED_RECORDING, EXIT_NOT_A_RECORDING, EXIT_OK, EXIT_TORN_RECORDING,
                    CliError)
from .signals import StopSignals

if TYPE_CHECKING:
    from .._feed import Subscription
    from ..recording import ReplayStats

__all__ = ["cmd_replay", "replay_exit_code", "ReplaySummary"]


class ReplaySummary(TypedDict):
    """What ``replay --json-summary`` writes."""

    frames: int
    bytes: int
    elapsed_s: float
    frames_per_s: float
    recorded_span_s: float
    snapshots: int
    deltas_applied: int
    gaps: int
    rejected: int
    protocol_errors: int
    books: int
    books_valid: int
    truncated: bool
    corrupt: bool
    #: Each damaged stretch: start, end (exclusive), kind, records_lost (None: at least 1).
    damage: list[dict[str, object]]
    error: str | None
    stopped: bool
    parser: str


def replay_exit_code(stats: ReplayStats) -> int:
    """5 not a recording, 6 records lost inside, 7 torn tail only, else 0."""
    if not stats.is_recording:
        return EXIT_NOT_A_RECORDING
    if stats.corrupt:
        return EXIT_DAMAGED_RECORDING
    if stats.truncated:
        return EXIT_TORN_RECORDING
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """``parsec-fast replay``."""
    from ..recording import Replayer

    path = Path(args.file)
    try:
        with open(path, "rb"):  # unreadable (missing, a directory, no permission): exit 5
            pass
        replayer = Replayer(path, parser=args.parser)
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}", EXIT_NOT_A_RECORDING) from None
    # A recording ends with the client's disconnect, which invalidates every book: count the
    # books that were valid up to that point.
    valid_books: set[tuple[str, str]] = set()

    def on_state(sub: Subscription, what: str, reason: str) -> None:
        key = (sub.parsec_id, sub.outcome)
        if what == "recovered":
            valid_books.add(key)
        elif what == "invalid" and reason != "disconnected":
            valid_books.discard(key)

    replayer.handler.on_book_state = on_state
    speed = None if args.fast else args.speed
    with StopSignals() as stop:
        stop.on_stop(replayer.stop)
        if speed is not None:
            say(f"replaying {path} at {speed:g}x the recorded pace; Ctrl-C stops")
        stats = replayer.run(speed=speed)
    if not stats.is_recording:
        raise CliError(f"{path}: not a parsec_fast recording (bad file header at byte 0); "
                       "nothing replayed", EXIT_NOT_A_RECORDING)
    subs = replayer.handler.subscriptions()
    valid = sum(1 for s in subs if (s.parsec_id, s.outcome) in valid_books)
    h = stats.handler_stats
    result: ReplaySummary = {
        "frames": stats.frames, "bytes": stats.bytes, "elapsed_s": stats.elapsed_s,
        "frames_per_s": stats.frames_per_s, "recorded_span_s": stats.recorded_span_s,
        "snapshots": h.get("snapshots", 0), "deltas_applied": h.get("deltas_applied", 0),
        "gaps": h.get("gaps", 0), "rejected": h.get("rejected", 0),
        "protocol_errors": h.get("protocol_errors", 0), "books": len(subs),
        "books_valid": valid, "truncated": stats.truncated, "corrupt": stats.corrupt,
        "damage": [{"start": d.start, "end": d.end, "kind": d.kind,
                    "records_lost": d.records_lost} for d in stats.damage],
        "error": stats.error, "stopped": stats.stopped, "parser": replayer.handler.parser}
    print(f"replayed {stats.frames:,} frames ({stats.bytes:,} bytes, {stats.recorded_span_s:.1f} s "
          f"recorded) in {stats.elapsed_s:.3f} s = {stats.frames_per_s:,.0f} frames/s "
          f"[{result['parser']}]; snapshots {result['snapshots']}, deltas applied "
          f"{result['deltas_applied']:,}, gaps {result['gaps']}, rejected {result['rejected']}; "
          f"books valid at the end of the session {valid}/{len(subs)}", flush=True)
    for d in stats.damage:
        what = "ends with a torn record" if d.kind == "torn" else "damaged"
        print(f"warning: {path} {what}: {d.describe()}", file=sys.stderr)
    if stats.corrupt:
        print("warning: records were lost (above); every valid record around them was "
              f"replayed (exit {EXIT_DAMAGED_RECORDING})", file=sys.stderr)
    elif stats.truncated:
        print("warning: the last record is incomplete (a crash mid-write?); every complete "
              f"record was replayed (exit {EXIT_TORN_RECORDING})", file=sys.stderr)
    if stats.stopped:
        print(f"stopped at record {stats.frames + stats.meta_records:,} by a signal",
              file=sys.stderr)
    if args.json_summary:
        text = json.dumps(result, indent=2)
        if args.json_summary == "-":
            print(text)
        else:
            Path(args.json_summary).write_text(text + "\n")
    return stop.exit_code or replay_exit_code(stats)
