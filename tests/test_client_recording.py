"""Raw frame recording: file format, truncated/corrupt tails, and replay through the feed handler."""
from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
import pytest

from client_helpers import make_client, selectors, server_config
from parsec_fast._feed import FeedHandler
from parsec_fast.recording import (FILE_HEADER, KIND_FRAME, KIND_META, FrameRecorder,
                                   RecordingReader, Replayer)
from parsec_fast.server import LocalServer

pytestmark = pytest.mark.timeout(40)


def _snapshot(seq: int, bid: float = 0.4) -> bytes:
    return orjson.dumps({"type": "orderbook", "parsec_id": "kalshi:X", "exchange": "kalshi",
                         "outcome": "Yes", "token_id": "", "market_id": "X",
                         "bids": [[bid, 10.0]], "asks": [[0.6, 5.0]], "server_seq": seq})


def _delta(seq: int, price: float, size: float) -> bytes:
    return orjson.dumps({"type": "orderbook_delta", "parsec_id": "kalshi:X", "exchange": "kalshi",
                         "outcome": "Yes", "token_id": "", "market_id": "X",
                         "changes": [{"side": "bid", "price": price, "size": size}],
                         "server_seq": seq})


def _write_sample(path: Path) -> list[bytes]:
    rec = FrameRecorder(path)
    rec.meta({"event": "config", "parser": "native", "activity_seq": "shared"})
    rec.meta({"event": "add", "parsec_id": "kalshi:X", "outcome": "Yes"})
    frames = [_snapshot(10), _delta(11, 0.41, 3.0), _delta(12, 0.4, 0.0), _delta(13, 0.39, 7.0)]
    t = time.monotonic_ns()
    for i, f in enumerate(frames):
        rec.frame(f, t + i * 1_000_000, time.time_ns(), last_in_buffer=i % 2 == 1)
    rec.close()
    return frames


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfr"
    frames = _write_sample(path)
    assert path.read_bytes().startswith(FILE_HEADER)
    reader = RecordingReader(path)
    records = list(reader)
    assert [r.kind for r in records] == [KIND_META, KIND_META] + [KIND_FRAME] * 4
    assert [r.payload for r in records[2:]] == frames
    assert [r.last_in_buffer for r in records[2:]] == [False, True, False, True]
    assert not reader.truncated and not reader.corrupt and reader.error is None
    # Appending to an existing recording keeps it one valid file.
    rec = FrameRecorder(path)
    rec.frame(_delta(14, 0.38, 1.0), 1, 2, True)
    rec.close()
    assert len(list(RecordingReader(path))) == 7


def test_replay_builds_the_book(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfr"
    _write_sample(path)
    stats = Replayer(path).run()
    assert stats.frames == 4 and stats.meta_records == 2 and not stats.truncated
    book = Replayer(path).handler  # fresh handler: nothing replayed yet
    assert book.get("kalshi:X", "Yes") is None
    replayer = Replayer(path)
    replayer.run()
    b = replayer.handler.get("kalshi:X", "yes").book
    assert b.is_valid and b.seq == 13
    assert b.bids() == [(0.41, 3.0), (0.39, 7.0)] and b.asks() == [(0.6, 5.0)]
    assert stats.handler_stats["deltas_applied"] == 3


@pytest.mark.parametrize("cut", [1, 5, 27, 28, 40])
def test_truncated_tail_is_reported_not_misread(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "rec.pfr"
    frames = _write_sample(path)
    size = path.stat().st_size
    last_record = 28 + len(frames[-1])
    # Cut `cut` bytes off the end, or leave `cut` bytes of the last record.
    keep = size - cut if cut < last_record else size - last_record + (cut - last_record) % 28
    os.truncate(path, keep)
    reader = RecordingReader(path)
    records = list(reader)
    assert reader.truncated and not reader.corrupt
    assert reader.stopped_at == size - last_record
    assert [r.payload for r in records if r.kind == KIND_FRAME] == frames[:-1]
    replayer = Replayer(path)
    stats = replayer.run()
    assert stats.truncated and stats.frames == 3
    assert "cut" in (stats.error or "")
    assert replayer.handler.get("kalshi:X", "Yes").book.seq == 12


def test_corrupt_record_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfr"
    _write_sample(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF   # flip a byte inside the last payload
    path.write_bytes(bytes(data))
    reader = RecordingReader(path)
    assert len([r for r in reader if r.kind == KIND_FRAME]) == 3
    assert reader.corrupt and not reader.truncated
    (tmp_path / "other").write_bytes(b"not a recording at all")
    reader = RecordingReader(tmp_path / "other")
    assert list(reader) == [] and reader.corrupt
    with pytest.raises(ValueError):
        FrameRecorder(tmp_path / "other")


def test_paced_replay_takes_the_recorded_time(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfr"
    rec = FrameRecorder(path)
    rec.meta({"event": "add", "parsec_id": "kalshi:X", "outcome": "Yes"})
    t = time.monotonic_ns()
    rec.frame(_snapshot(1), t, 0, True)
    rec.frame(_delta(2, 0.41, 1.0), t + 200_000_000, 0, True)
    rec.close()
    stats = Replayer(path).run(speed=1.0)
    assert 0.18 <= stats.elapsed_s < 1.0
    stats = Replayer(path).run(speed=4.0)
    assert 0.04 <= stats.elapsed_s < 0.5
    assert Replayer(path).run().elapsed_s < 0.1


@pytest.mark.parametrize("parser", ["native", "orjson"])
async def test_recorded_session_replays_to_the_same_books(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "session.pfr"
    async with LocalServer(server_config(markets=4, rate=1000.0)) as srv:
        async with make_client(srv, parser=parser, record_path=str(path)) as client:
            await client.subscribe(selectors(srv, 4), timeout=5)
            await asyncio.sleep(0.4)
            srv.faults.drop_next_delta()
            srv.faults.close_all_abruptly()         # a reconnect inside the recording
            await client.wait_ready(5)
            await asyncio.sleep(0.3)
            srv.pause_stream()
            await asyncio.sleep(0.2)
            live = {(s.parsec_id, s.outcome): (s.book.seq, s.book.bids(), s.book.asks())
                    for s in client.subscriptions()}
            live_stats = client.feed_handler.stats
    replayer = Replayer(path)
    assert replayer.handler.parser == parser
    stats = replayer.run()
    assert not stats.truncated and not stats.corrupt
    assert stats.frames == live_stats["frames"]
    for (pid, outcome), (seq, bids, asks) in live.items():
        book = replayer.handler.get(pid, outcome).book
        assert (book.seq, book.bids(), book.asks()) == (seq, bids, asks)
        assert not book.is_valid   # the client closed: "disconnected" is replayed too
    for key in ("snapshots", "deltas_applied", "duplicates", "gaps", "activity"):
        assert stats.handler_stats[key] == live_stats[key], key


def test_replayer_accepts_a_given_handler(tmp_path: Path) -> None:
    path = tmp_path / "rec.pfr"
    _write_sample(path)
    handler = FeedHandler(parser="orjson")
    updated: list[str] = []
    handler.on_book_updated = lambda sub: updated.append(sub.parsec_id)
    stats = Replayer(path, handler=handler).run()
    assert stats.handler_stats["orjson_frames"] == 4
    assert updated == ["kalshi:X", "kalshi:X"]  # coalesced per recorded read batch (2 batches)
