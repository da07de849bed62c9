"""``record`` and ``replay`` as a user meets them: a failed session leaves nothing behind,
``--append`` after a crash keeps every complete record, and replay's exit code says whether the
whole file was read (5 not a recording, 6 records lost inside, 7 torn tail)."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from parsec_fast.cli import (EXIT_CONNECT, EXIT_DAMAGED_RECORDING, EXIT_NOT_A_RECORDING,
                             EXIT_OK, EXIT_TORN_RECORDING, EXIT_USAGE, main)
from parsec_fast.recording import HEADER_SIZE, KIND_FRAME, RecordingReader

pytestmark = pytest.mark.timeout(60)


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}/ws"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short session of ``record local`` (shared: tests copy it)."""
    path = tmp_path_factory.mktemp("rec") / "session.pfrec"
    assert main(["record", "local", "--out", str(path), "--seconds", "0.6"]) == EXIT_OK
    return path


def _frame_offsets(path: Path) -> list[int]:
    return [r.offset for r in RecordingReader(path) if r.kind == KIND_FRAME]


def _replay(path: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "replay.json"
    code = main(["replay", str(path), "--json-summary", str(out)])
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_failed_record_leaves_no_file_and_the_command_can_run_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new.pfrec"
    argv = ["record", _refused_url(), "kalshi:X", "--api-key", "k", "--out", str(out)]
    assert main(argv) == EXIT_CONNECT
    assert not out.exists()
    err = capsys.readouterr().err
    assert "connecting to" in err and "cannot connect (phase tcp)" in err
    assert main(["record", "local", "--out", str(out), "--seconds", "0.3"]) == EXIT_OK
    reader = RecordingReader(out)
    assert sum(1 for _ in reader) > 10 and reader.damage == []


def test_failed_append_leaves_the_file_as_it_was(tmp_path: Path, recording: Path) -> None:
    out = tmp_path / "old.pfrec"
    out.write_bytes(recording.read_bytes())
    argv = ["record", _refused_url(), "kalshi:X", "--api-key", "k", "--out", str(out),
            "--append"]
    assert main(argv) == EXIT_CONNECT
    assert out.read_bytes() == recording.read_bytes()


def test_append_after_a_torn_tail_keeps_both_sessions(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "crashed.pfrec"
    out.write_bytes(recording.read_bytes())
    offsets = _frame_offsets(out)
    cut = offsets[-1] + HEADER_SIZE + 3                 # a crash inside the last frame
    os.truncate(out, cut)
    before = [r.payload for r in RecordingReader(out)]
    assert main(["record", "local", "--out", str(out), "--append", "--seconds", "0.3"]) == 0
    assert f"dropped {cut - offsets[-1]} bytes" in capsys.readouterr().err
    reader = RecordingReader(out)
    after = [r.payload for r in reader]
    assert after[:len(before)] == before and len(after) > len(before) + 10
    assert reader.damage == []
    assert _replay(out, tmp_path)[0] == EXIT_OK


def test_record_append_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    assert main(["record", "local", "--out", str(out), "--append", "--seconds", "0.3"]) == \
        EXIT_NOT_A_RECORDING
    assert out.read_text() == "my notes\n"
    assert main(["record", "local", "--out", str(out), "--seconds", "0.3"]) == EXIT_USAGE


def test_replay_of_a_file_that_is_not_a_recording(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert main(["replay", str(path)]) == EXIT_NOT_A_RECORDING
    assert "not a parsec_fast recording (bad file header at byte 0)" in capsys.readouterr().err
    assert main(["replay", str(tmp_path)]) == EXIT_NOT_A_RECORDING   # a directory


def test_replay_of_a_recording_corrupt_in_the_middle(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean_code, clean = _replay(recording, tmp_path)
    assert clean_code == EXIT_OK
    path = tmp_path / "bitrot.pfrec"
    data = bytearray(recording.read_bytes())
    offsets = _frame_offsets(recording)
    middle = offsets[len(offsets) // 2]
    data[middle + HEADER_SIZE + 10] ^= 0x20             # one flipped bit in one frame
    path.write_bytes(bytes(data))
    code, summary = _replay(path, tmp_path)
    assert code == EXIT_DAMAGED_RECORDING
    assert summary["frames"] == clean["frames"] - 1       # every other frame replayed
    assert summary["damage"] == [{"start": middle, "end": offsets[len(offsets) // 2 + 1],
                                  "kind": "corrupt", "records_lost": 1}]
    err = capsys.readouterr().err
    assert f"bytes {middle}-" in err and "1 record lost" in err


def test_replay_of_a_recording_with_a_torn_tail(
        tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "torn.pfrec"
    offsets = _frame_offsets(recording)
    path.write_bytes(recording.read_bytes()[:offsets[-1] + 5])
    code, summary = _replay(path, tmp_path)
    assert code == EXIT_TORN_RECORDING
    assert summary["truncated"] and not summary["corrupt"]
    assert summary["frames"] == len(offsets) - 1
    assert f"bytes {offsets[-1]}-" in capsys.readouterr().err
