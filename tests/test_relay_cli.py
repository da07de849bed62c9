"""``parsec-fast relay`` as a process: it serves consumers, stops on Ctrl-C with 130, and says
why it cannot start (exit 3 without a NATS server)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import parsec_fast
from relay_helpers import NatsServer, consumer_for, free_port, needs_nats, wait_until

pytestmark = needs_nats

PACKAGE_ROOT = str(Path(parsec_fast.__file__).resolve().parents[1])


def _relay(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "parsec_fast.cli", "relay", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})


def test_relay_without_a_nats_server_exits_3() -> None:
    proc = _relay("local", "--nats", f"nats://127.0.0.1:{free_port()}")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, (out, err)
    assert "cannot connect to the NATS server" in err


async def test_relay_process_serves_consumers_and_stops_on_ctrl_c() -> None:
    with NatsServer() as nats:
        proc = _relay("local", "--nats", nats.url, "--heartbeat", "0.2", "--stats", "0.5")
        try:
            assert proc.stdout is not None
            line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
            assert "parsec-fast relay:" in line and nats.url in line, line
            client = consumer_for(nats.url, retry_first_connect=True)
            await client.start()
            try:
                await client.subscribe(["kalshi:KXSIM-0000"], timeout=8)
                book = client.book("kalshi:KXSIM-0000")
                seq = book.seq
                await wait_until(lambda: book.seq != seq, 5, "live updates through the relay")
                assert client.subscription("kalshi:KXSIM-0000").trustworthy
                await asyncio.sleep(0.7)   # one --stats line while it serves
            finally:
                await client.close()
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.get_running_loop().run_in_executor(
                None, lambda: proc.communicate(timeout=20))
            assert proc.returncode == 130, (out, err)
            assert "relay: 1 consumers, 1 books" in out, out
            assert "stopped" in out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_relay_exit_codes_for_a_refused_key_and_a_bad_prefix() -> None:
    with NatsServer() as nats:
        proc = _relay("local", "--api-key", "bad-key", "--nats", nats.url)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 4 and "authentication failed" in err, (out, err)
        proc = _relay("local", "--prefix", "bad prefix", "--nats", nats.url)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 2 and "subject prefix" in err, (out, err)
