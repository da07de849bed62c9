"""Every Python example in the README and in public module docstrings runs, as written, against
the local server (the real service's URL is swapped for the local one; the local server accepts
any key): it prints what it promises, without a traceback. Examples that stream forever are
stopped after a few seconds, once they have shown their output."""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from client_helpers import ThreadedServer
from parsec_fast.server import ServerConfig
from parsec_fast.server.simulator import MarketSpec

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REAL_URL = "wss://api.parsecapi.com/ws"
#: Modules whose docstring carries runnable examples (``::`` blocks that are Python), and how many.
DOCSTRING_EXAMPLES = {"parsec_fast.client.client": 1}
#: The markets the examples name.
MARKETS = [MarketSpec("polymarket", "572473", "Will ETH reach $5000?", 0.001),
           MarketSpec("kalshi", "KXBTC-26MAR10", "BTC above 100k on Mar 10?", 0.01)]


def readme_examples() -> list[str]:
    if not README.is_file():
        return []
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def docstring_examples(module: str) -> list[str]:
    doc = importlib.import_module(module).__doc__ or ""
    blocks = []
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body = []
        for following in lines[i + 1:]:
            if following.strip() and not following.startswith("    "):
                break
            body.append(following)
        code = textwrap.dedent("\n".join(body)).strip("\n")
        if "import " in code:  # a Python example, not a diagram or a format
            blocks.append(code + "\n")
    return blocks


@pytest.fixture(scope="module")
def server_url() -> str:
    config = ServerConfig(markets=MARKETS, rate=300.0, wallet_interval=0)
    with ThreadedServer(config) as srv:
        yield srv.url


def run_example(code: str, url: str, seconds: float = 4.0) -> tuple[int | None, str, str]:
    """Run ``code`` in a fresh interpreter; None as the return code when it was still running
    after ``seconds`` (a stream that never ends) and was stopped."""
    env = {**os.environ, "PARSEC_API_KEY": "demo"}
    proc = subprocess.Popen([sys.executable, "-c", code.replace(REAL_URL, url)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd="/")
    try:
        out, err = proc.communicate(timeout=seconds)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        return None, out, err


def check(code: str, url: str) -> None:
    t0 = time.monotonic()
    rc, out, err = run_example(code, url)
    assert "Traceback" not in err and "Error" not in out, f"{out}\n{err}"
    assert "cannot connect" not in out, out
    assert rc in (0, None), f"exit {rc}: {err}"
    if rc is None or "print(" in code:
        assert out.strip(), f"printed nothing in {time.monotonic() - t0:.1f} s\n{err}"


def test_the_readme_has_examples() -> None:
    if not README.is_file():
        pytest.skip("README.md is not here (installed-package run)")
    assert len(readme_examples()) >= 2


@pytest.mark.parametrize("code", readme_examples(),
                         ids=lambda code: code.strip().splitlines()[0][:40])
def test_readme_example_runs(code: str, server_url: str) -> None:
    check(code, server_url)


@pytest.mark.parametrize("module", sorted(DOCSTRING_EXAMPLES))
def test_docstring_examples_run(module: str, server_url: str) -> None:
    examples = docstring_examples(module)
    assert len(examples) == DOCSTRING_EXAMPLES[module], examples
    for code in examples:
        check(code, server_url)
