"""Smoke test of the relay benchmark (``bench/bench_relay.py --quick``, shortened further) and of
its report: every phase gets figures, every book ends valid, the targets are evaluated, and
RESULTS.md / the chart render the suite. No speed is asserted here (that is the benchmark's)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import parsec_fast
from parsec_fast import benchreport
from relay_helpers import needs_nats

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "bench_relay.py"

pytestmark = [pytest.mark.timeout(120), needs_nats,
              pytest.mark.skipif(not BENCH.is_file(),
                                 reason="needs the bench/ scripts of a source checkout")]


def test_quick_relay_bench_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "relay.json"
    env_path = str(Path(parsec_fast.__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--deltas", "5000", "--latency-seconds", "0.5",
         "--fanout-seconds", "0.5", "--fanout-consumers", "4", "--json", str(out)],
        capture_output=True, text=True, timeout=110, cwd=REPO,
        env={**os.environ, "PYTHONPATH": env_path})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    for name in ("direct", "nats-live", "nats-drain"):
        run = data["throughput"][name]
        assert run["deltas_per_s"] > 0 and run["books_valid"], (name, run)
    assert data["throughput"]["nats-drain"]["frames_per_message"] >= 1
    assert data["latency"]["deltas_joined"] > 0
    assert {"1", "4"} <= set(data["fanout"])   # a ratio needs CPU ticks: not in 0.5 s
    assert set(data["targets"]) == {"consumer_deltas_per_s", "added_latency_p50_us",
                                    "fanout_cpu_ratio"}
    combined = {"meta": data["meta"], "suites": {"relay": data}}
    md = benchreport.results_markdown(combined, has_chart=False)
    assert "NATS relay" in md and "nats-drain" in md and "added latency" in md
    assert benchreport.render_chart(combined, tmp_path / "chart.png") in (
        None, "chart skipped: matplotlib is not installed (pip install -e .[bench])")
