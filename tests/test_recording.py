"""Recording files that were damaged: appending after a torn tail, reading past corruption,
what a reader says it lost, the fsync policy, undoing a session that recorded nothing."""
from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from parsec_fast.recording import (FILE_HEADER, HEADER_SIZE, KIND_FRAME, FileCheckpoint,
                                   FrameRecorder, NotARecordingError, RecordingReader, Replayer,
                                   prepare_append)

pytestmark = pytest.mark.timeout(30)


def _delta(seq: int) -> bytes:
    return orjson.dumps({"type": "orderbook_delta", "parsec_id": "kalshi:X", "exchange": "kalshi",
                         "outcome": "Yes", "token_id": "", "market_id": "X",
                         "changes": [{"side": "bid", "price": 0.4, "size": float(seq)}],
                         "server_seq": seq})


def _record(path: Path, seqs: range, **options: float | None) -> list[int]:
    """Write one frame per seq; return each record's start offset."""
    rec = FrameRecorder(path, **options)  # type: ignore[arg-type]
    offsets = []
    pos = path.stat().st_size if path.exists() else 0
    pos = max(pos, len(FILE_HEADER))
    for seq in seqs:
        offsets.append(pos)
        payload = _delta(seq)
        rec.frame(payload, seq, seq, True)
        pos += HEADER_SIZE + len(payload)
    rec.close()
    return offsets


def _seqs(path: Path) -> tuple[list[int], RecordingReader]:
    reader = RecordingReader(path)
    seqs = [orjson.loads(r.payload)["server_seq"] for r in reader if r.kind == KIND_FRAME]
    return seqs, reader


def test_append_after_a_torn_tail_keeps_every_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    offsets = _record(path, range(100))
    os.truncate(path, offsets[99] + 17)              # a crash in the middle of record 99
    rec = FrameRecorder(path)
    assert rec.appended is not None
    assert (rec.appended.records, rec.appended.dropped_bytes) == (99, 17)
    assert rec.appended.offset == offsets[99]
    for seq in range(1000, 1500):
        rec.frame(_delta(seq), seq, seq, True)
    rec.close()
    seqs, reader = _seqs(path)
    assert seqs == list(range(99)) + list(range(1000, 1500))
    assert reader.damage == [] and reader.error is None


def test_append_after_a_torn_header(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    path.write_bytes(FILE_HEADER[:5])               # killed before its header was complete
    _record(path, range(3))
    assert _seqs(path)[0] == [0, 1, 2]


def test_append_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"some notes\n")
    with pytest.raises(NotARecordingError, match="not a parsec_fast recording"):
        FrameRecorder(path)
    assert path.read_bytes() == b"some notes\n"


def test_reader_skips_a_corrupt_record_and_says_exactly_what_was_lost(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    offsets = _record(path, range(50))
    data = bytearray(path.read_bytes())
    data[offsets[20] + HEADER_SIZE + 5] ^= 0xFF      # one bit flip inside record 20's payload
    path.write_bytes(bytes(data))
    seqs, reader = _seqs(path)
    assert seqs == [s for s in range(50) if s != 20]
    [damage] = reader.damage
    assert (damage.start, damage.end, damage.kind, damage.records_lost) == (
        offsets[20], offsets[21], "corrupt", 1)
    assert reader.corrupt and not reader.truncated and reader.stopped_at is None
    assert f"bytes {offsets[20]}-{offsets[21] - 1}" in (reader.error or "")
    assert "checksum" in (reader.error or "") and "1 record lost" in (reader.error or "")


def test_reader_resynchronises_after_a_garbled_length(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    offsets = _record(path, range(30))
    data = bytearray(path.read_bytes())
    data[offsets[10] + HEADER_SIZE - 2] = 0x7F     # record 10's length now runs past the end
    data[offsets[12]:offsets[12] + 40] = b"\xAB" * 40  # record 12's header is garbage
    path.write_bytes(bytes(data))
    seqs, reader = _seqs(path)
    assert seqs == [s for s in range(30) if s not in (10, 12)]
    assert [(d.start, d.end, d.records_lost) for d in reader.damage] == [
        (offsets[10], offsets[11], None), (offsets[12], offsets[13], None)]
    assert "at least 1 record lost" in reader.damage[0].describe()


def test_torn_tail_is_its_own_kind_of_damage(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    offsets = _record(path, range(10))
    os.truncate(path, offsets[9] + 10)              # inside record 9's header
    seqs, reader = _seqs(path)
    assert seqs == list(range(9))
    assert reader.truncated and not reader.corrupt and reader.stopped_at == offsets[9]
    assert "cut short: 10 of its 28-byte header written" in (reader.error or "")


def test_resync_scan_is_bounded(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pfrec", tmp_path / "b.pfrec"
    offsets = _record(first, range(5))
    _record(second, range(100, 103))
    path = tmp_path / "rec.pfrec"                   # 64 KiB of garbage between two sessions
    path.write_bytes(first.read_bytes() + b"\xAB" * 65536
                     + second.read_bytes()[len(FILE_HEADER):])
    assert _seqs(path)[0] == [0, 1, 2, 3, 4, 100, 101, 102]
    reader = RecordingReader(path, resync_limit=4096)
    assert [orjson.loads(r.payload)["server_seq"] for r in reader] == [0, 1, 2, 3, 4]
    [damage] = reader.damage
    start = offsets[4] + HEADER_SIZE + len(_delta(4))
    assert (damage.start, damage.end, damage.kind) == (start, path.stat().st_size, "corrupt")
    assert f"bytes {start + 4097}-{path.stat().st_size - 1} were not examined" in damage.reason


def test_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"GIF89a not a recording at all")
    reader = RecordingReader(path)
    assert list(reader) == [] and not reader.is_recording and reader.corrupt
    assert "not a parsec_fast recording" in (reader.error or "")
    with pytest.raises(NotARecordingError):
        prepare_append(path)


def test_damaged_middle_is_kept_on_append_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    offsets = _record(path, range(10))
    data = bytearray(path.read_bytes())
    data[offsets[3] + HEADER_SIZE] ^= 0x01
    path.write_bytes(bytes(data))
    point = prepare_append(path)
    assert point.records == 9 and point.dropped_bytes == 0 and len(point.damage) == 1
    assert "skipped when read" in point.describe()


def test_replayer_replays_the_records_around_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    rec = FrameRecorder(path)
    rec.meta({"event": "add", "parsec_id": "kalshi:X", "outcome": "Yes"})
    rec.close()
    offsets = _record(path, range(1, 21))
    data = bytearray(path.read_bytes())
    data[offsets[5] + HEADER_SIZE + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    stats = Replayer(path).run()
    assert stats.frames == 19 and stats.corrupt and not stats.truncated
    assert [(d.start, d.records_lost) for d in stats.damage] == [(offsets[5], 1)]


@pytest.mark.parametrize(("interval", "syncs"), [(None, 0), (0.0, 10), (3600.0, 1)])
def test_fsync_policy(tmp_path: Path, interval: float | None, syncs: int) -> None:
    rec = FrameRecorder(tmp_path / "rec.pfrec", fsync_interval=interval)
    for seq in range(10):
        rec.tap(_delta(seq), time.monotonic_ns(), True)
    rec.flush()
    rec.close()   # every policy but None fsyncs on close
    assert rec.syncs == syncs


def test_fsync_interval_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync_interval"):
        FrameRecorder(tmp_path / "rec.pfrec", fsync_interval=-1)


def test_checkpoint_undoes_a_session(tmp_path: Path) -> None:
    new = tmp_path / "new.pfrec"
    point = FileCheckpoint.take(new)
    _record(new, range(3))
    point.restore()
    assert not new.exists()
    old = tmp_path / "old.pfrec"
    _record(old, range(3))
    before = old.read_bytes()
    point = FileCheckpoint.take(old)
    _record(old, range(3, 6))
    point.restore()
    assert old.read_bytes() == before


def test_replayer_stop_ends_the_run_even_before_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfrec"
    _record(path, range(1, 11))
    replayer = Replayer(path)
    replayer.stop()                                 # e.g. a signal just before run()
    stats = replayer.run(speed=0.001)               # would take hours
    assert stats.stopped and stats.frames == 0
    assert Replayer(path).run().frames == 10 and not replayer.run().stopped
