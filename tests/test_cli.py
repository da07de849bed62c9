"""Smoke tests of the ``parsec-fast`` command line: every subcommand, short durations, exit codes.

No speed assertions. The whole file runs in well under a minute.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parsec_fast import (AuthenticationError, AuthTimeoutError, DNSError, ParsecConnectionError,
                         __version__)
from parsec_fast.cli.connect import connect_error
from parsec_fast.cli import EXIT_AUTH, EXIT_CONNECT, EXIT_NOT_A_RECORDING, EXIT_USAGE, main

REPO = Path(__file__).resolve().parents[1]
#: bench/ of a source checkout; absent when the suite runs against an installed package.
needs_bench = pytest.mark.skipif(not (REPO / "bench" / "bench_book.py").is_file(),
                                 reason="needs the bench/ scripts of a source checkout")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_version_via_console_script() -> None:
    exe = Path(sys.executable).with_name("parsec-fast")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "parsec_fast.cli"]
    out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert out.stdout.strip() == f"parsec-fast {__version__}"


@pytest.mark.parametrize("command", [[], ["demo"], ["watch"], ["serve"], ["record"], ["replay"],
                                     ["bench"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "exit codes" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["demo", "--bogus"], ["demo", "--seconds", "-1"],
                                  ["watch", "not-a-market", "--api-key", "k"],
                                  ["replay", "x", "--speed", "2", "--fast"], ["nope"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE


def test_no_credential_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PARSEC_API_KEY", raising=False)
    assert main(["watch", "kalshi:X", "--url", "ws://127.0.0.1:1/ws"]) == EXIT_USAGE
    assert "PARSEC_API_KEY" in capsys.readouterr().err


def test_unreachable_server_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    code = main(["watch", "kalshi:X", "--url", f"ws://127.0.0.1:{port}/ws", "--api-key", "k",
                 "--seconds", "1"])
    assert code == EXIT_CONNECT
    err = capsys.readouterr().err
    assert "cannot connect" in err and "Traceback" not in err


def test_silent_server_fails_at_once_with_its_cause(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:  # TCP completes in the kernel's backlog; nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}/ws"
        t0 = time.monotonic()
        code = main(["watch", "kalshi:X", "--url", url, "--api-key", "k",
                     "--connect-timeout", "0.5"])
    assert code == EXIT_CONNECT and time.monotonic() - t0 < 5
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0] == f"parsec-fast: connecting to {url} (timeout 0.5 s a step) ..."
    assert lines[-1].startswith("parsec-fast watch: error: cannot connect (phase websocket): "
                                "the server accepted the connection but never answered")
    assert url in lines[-1] and "Traceback" not in err


@pytest.mark.parametrize(("error", "code"), [
    (AuthTimeoutError("no auth_ok within 15 s", url="ws://h/ws"), EXIT_CONNECT),
    (DNSError("cannot resolve host 'h'", url="ws://h/ws", cause=OSError("nope")), EXIT_CONNECT),
    (AuthenticationError(1002, "invalid key"), EXIT_AUTH)])
def test_every_connection_failure_is_one_line_and_an_exit_code(error: Exception,
                                                                code: int) -> None:
    failure = connect_error(error)  # type: ignore[arg-type]
    assert failure.code == code and "\n" not in str(failure)
    if isinstance(error, ParsecConnectionError):
        assert f"(phase {error.phase})" in str(failure) and "ws://h/ws" in str(failure)


def test_demo_applies_books_and_recovers(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    summary_path = tmp_path / "summary.json"
    code = main(["demo", "--seconds", "2", "--markets", "12", "--json-summary",
                 str(summary_path)])
    assert code == 0
    summary = json.loads(summary_path.read_text())
    assert summary["deltas_applied"] > 100
    assert summary["faults_injected"][:1] == ["gap"]
    assert summary["gaps"] >= 1 and summary["resyncs_sent"] >= 1
    assert summary["recoveries"] >= 1
    assert summary["books_valid"] == summary["books"] > 0
    out = capsys.readouterr().out
    assert "summary:" in out and "t=" in out  # plain periodic lines: stdout is not a TTY


@pytest.fixture
def served() -> Iterator[str]:
    """``parsec-fast serve`` as a process; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "parsec_fast.cli", "serve", "--port", "0",
                             "--rate", "500", "--markets", "6"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"ws://\S+", line)
        assert match, f"no URL in {line!r} / {proc.stderr.read() if proc.stderr else ''}"
        listing = [proc.stdout.readline() for _ in range(4)]  # binary, ids, categorical, ids
        assert "binary markets" in listing[0] and "kalshi:KXSIM-0000" in listing[1]
        assert "categorical" in listing[2] and "(Q1/Q2/Q3/Q4/Never)" in listing[3]
        yield match.group(0)
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_answers_and_watch_reads_it(served: str, tmp_path: Path) -> None:
    summary_path = tmp_path / "watch.json"
    code = main(["watch", "kalshi:KXSIM-0000", "polymarket:500001/No", "--url", served,
                 "--api-key", "good", "--seconds", "1", "--json-summary", str(summary_path)])
    assert code == 0
    summary = json.loads(summary_path.read_text())
    assert summary["books"] == 2 and summary["snapshots"] >= 2


def test_bad_key_exits_4(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["watch", "kalshi:KXSIM-0000", "--url", served, "--api-key", "bad-key",
                 "--seconds", "1"])
    assert code == EXIT_AUTH
    assert "authentication failed" in capsys.readouterr().err


def test_record_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "session.rec"
    assert main(["record", "local", "--out", str(rec), "--seconds", "1"]) == 0
    assert rec.stat().st_size > 1000
    assert "recorded" in capsys.readouterr().out
    stats_path = tmp_path / "replay.json"
    assert main(["replay", str(rec), "--json-summary", str(stats_path)]) == 0
    native = json.loads(stats_path.read_text())
    assert native["frames"] > 10 and native["deltas_applied"] > 0
    assert native["books_valid"] == native["books"] > 0
    assert not native["truncated"] and not native["corrupt"]
    assert main(["replay", str(rec), "--parser", "orjson", "--speed", "50", "--json-summary",
                 str(stats_path)]) == 0
    other = json.loads(stats_path.read_text())
    assert other["parser"] == "orjson"
    assert (other["frames"], other["deltas_applied"]) == (native["frames"],
                                                          native["deltas_applied"])
    # Refuses to overwrite a recording; a missing file is a short error.
    assert main(["record", "local", "--out", str(rec), "--seconds", "1"]) == EXIT_USAGE
    assert main(["replay", str(tmp_path / "missing.rec")]) == EXIT_NOT_A_RECORDING
    assert "no such file" in capsys.readouterr().err.lower()


@needs_bench
def test_bench_quick_writes_json_and_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(REPO)  # `parsec-fast bench` finds ./bench (or the one next to src/)
    code = main(["bench", "--quick", "--suite", "book", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True and "cpu" in results["meta"]
    book = results["suites"]["book"]
    assert "error" not in book and book["apply"]
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_bench
def test_bench_unknown_suite_is_a_usage_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert main(["bench", "--suite", "nope", "--out", str(tmp_path)]) == EXIT_USAGE


@needs_bench
def test_e2e_bench_quick_json(tmp_path: Path) -> None:
    import parsec_fast

    # the directory parsec_fast is imported from: src/ of a checkout, or site-packages
    package_root = str(Path(parsec_fast.__file__).resolve().parents[1])
    out = tmp_path / "e2e.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "bench_e2e.py"), "--quick",
                           "--contenders", "count-bytes,native-uvloop,sdk", "--no-paced",
                           "--json", str(out)], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": package_root})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    native = data["throughput"]["native-uvloop"]
    assert native["deltas_per_s"] > 0 and native["books_mismatched"] == 0
    if "sdk" in data["throughput"]:
        assert data["throughput"]["sdk"]["books_mismatched"] == 0
    assert set(data["targets"]) >= {"engine_vs_sdk", "native_deltas_per_s"}
