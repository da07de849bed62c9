"""``parsec-fast`` as a process, stopped the ways users stop it: Ctrl-C (SIGINT) exits 130 and
SIGTERM 143, cleanly (summary printed, recording closed, no traceback), also while still
connecting; ``kill -9`` of ``record`` mid-write leaves a file whose complete records all read
back, and ``--append`` continues it."""
from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import parsec_fast
from parsec_fast.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, main
from parsec_fast.recording import RecordingReader

pytestmark = pytest.mark.timeout(60)

#: The directory parsec_fast is imported from (src/ of a checkout, or site-packages).
PACKAGE_ROOT = str(Path(parsec_fast.__file__).resolve().parents[1])


class Cli:
    """``python -m parsec_fast.cli ARGS`` with its output collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "parsec_fast.cli", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> str:
        """The first output line (either stream) matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        self.proc.kill()
        pytest.fail(f"no {pattern!r} within {timeout} s; out={''.join(self.out)!r} "
                    f"err={''.join(self.err)!r}")

    def stop(self, sig: int, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose TCP connections complete (the kernel's backlog) but never hear a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/ws"


@pytest.fixture
def served() -> Iterator[str]:
    """``parsec-fast serve`` as a process; yields its URL."""
    server = Cli("serve", "--port", "0", "--rate", "500", "--markets", "6")
    try:
        url = re.search(r"ws://\S+", server.wait_for(r"listening on ws://"))
        assert url is not None
        yield url.group(0)
        assert server.stop(signal.SIGINT) == EXIT_INTERRUPTED
        assert "kalshi:KXSIM-0000" in server.stdout  # it said which markets it serves
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def test_ctrl_c_stops_demo_with_130_and_its_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    demo = Cli("demo", "--markets", "6", "--json-summary", str(summary))
    demo.wait_for(r"^t=")  # the view runs (plain lines: stdout is not a terminal)
    assert demo.stop(signal.SIGINT) == EXIT_INTERRUPTED
    assert "summary:" in demo.stdout and summary.exists()
    assert "Traceback" not in demo.stderr


def test_ctrl_c_stops_record_with_130_and_a_closed_recording(tmp_path: Path) -> None:
    out = tmp_path / "session.pfrec"
    record = Cli("record", "local", "--out", str(out), "--seconds", "60")
    record.wait_for(r"recording .* Ctrl-C stops")
    time.sleep(0.3)
    assert record.stop(signal.SIGINT) == EXIT_INTERRUPTED
    assert re.search(r"recorded \d+ frames", record.stdout), record.stderr
    reader = RecordingReader(out)
    assert sum(1 for _ in reader) > 5 and reader.damage == []   # closed, not torn
    assert "Traceback" not in record.stderr


def test_sigterm_stops_watch_with_143_and_ctrl_c_stops_serve(served: str) -> None:
    watch = Cli("watch", "kalshi:KXSIM-0000", "--url", served, "--api-key", "good")
    watch.wait_for(r"^t=")
    assert watch.stop(signal.SIGTERM) == EXIT_TERMINATED
    assert "summary:" in watch.stdout and "Traceback" not in watch.stderr


def test_ctrl_c_stops_a_paced_replay_with_130_and_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "session.pfrec"
    assert main(["record", "local", "--out", str(out), "--seconds", "0.5"]) == EXIT_OK
    replay = Cli("replay", str(out), "--speed", "0.01")  # would take ~50 s
    replay.wait_for(r"replaying .* Ctrl-C stops")
    assert replay.stop(signal.SIGINT) == EXIT_INTERRUPTED
    assert re.search(r"replayed \d+ frames", replay.stdout) and "stopped" in replay.stderr
    assert "Traceback" not in replay.stderr


def test_ctrl_c_while_connecting_exits_130_and_leaves_no_file(silent_server: str,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "never.pfrec"
    record = Cli("record", silent_server, "kalshi:X", "--api-key", "k", "--out", str(out))
    record.wait_for(r"connecting to ws://")
    time.sleep(0.3)
    assert record.stop(signal.SIGINT) == EXIT_INTERRUPTED
    assert "interrupted by SIGINT while connecting" in record.stderr
    assert "Traceback" not in record.stderr and not out.exists()


def test_kill_9_of_record_leaves_every_complete_record_readable(tmp_path: Path) -> None:
    out = tmp_path / "crashed.pfrec"
    record = Cli("record", "local", "--out", str(out), "--seconds", "60", "--rate", "20000")
    record.wait_for(r"recording .* Ctrl-C stops")
    deadline = time.monotonic() + 20
    while (not out.exists() or out.stat().st_size < 300_000) and time.monotonic() < deadline:
        time.sleep(0.05)   # until the buffer has been written out a few times
    assert record.stop(signal.SIGKILL) == -signal.SIGKILL
    reader = RecordingReader(out)
    first = [r.payload for r in reader]
    assert len(first) > 500
    assert not reader.corrupt and all(d.kind == "torn" for d in reader.damage)
    # --append continues after the last complete record: both sessions read back whole.
    assert main(["record", "local", "--out", str(out), "--append", "--seconds", "0.3"]) == \
        EXIT_OK
    reader = RecordingReader(out)
    both = [r.payload for r in reader]
    assert both[:len(first)] == first and len(both) > len(first) + 10
    assert reader.damage == []
    assert main(["replay", str(out)]) == EXIT_OK
