"""Smoke test of the shared-memory books benchmark (``bench/bench_shm.py --quick``) and of its
report: every segment gives figures, every equality check passes, the targets are evaluated, and
RESULTS.md / the chart render the suite. No speed is asserted here (that is the benchmark's job)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import parsec_fast
from parsec_fast import benchreport

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "bench_shm.py"

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not BENCH.is_file() or not os.path.isdir("/dev/shm"),
                                 reason="needs the bench/ scripts of a source checkout")]


def test_quick_shm_bench_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "shm.json"
    env_path = str(Path(parsec_fast.__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-callgrind", "--json",
                           str(out)], capture_output=True, text=True, timeout=110, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": env_path})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    for kind in ("latency:spin", "latency:wait", "latency:async", "wake"):
        c = data["latency"][kind]
        assert 0 < c["p50_us"] <= c["p99_us"] <= c["p999_us"] <= c["max_us"], (kind, c)
    assert data["latency"]["wake"]["writer_wakes_per_round"] > 0     # the futex path ran
    assert data["apply"]["publisher, 0 readers"]["wakes"] == 0        # ... and only there
    assert {"SharedBook.best_bid / best_ask", "Book.best_bid / best_ask (local, same process)"} \
        <= set(data["read"])
    assert data["equality"]["checks"] > 0 and data["equality"]["mismatches"] == 0
    assert data["apply"]["publisher, 8 readers"]["pair_ratio"] is not None
    assert len(data["targets"]) == 5 and all("met" in t for t in data["targets"])
    assert not [n for n in os.listdir("/dev/shm") if n.startswith("pf-bench-")]
    combined = {"meta": benchreport.machine(), "suites": {"shm": data}}
    md = benchreport.results_markdown(combined, has_chart=False)
    assert "Shared-memory books" in md and "Publish → visible" in md and "Books equal" in md
    assert any("[shm]" in line for line in benchreport.headline(combined))
    pytest.importorskip("matplotlib")
    assert benchreport.render_chart(combined, tmp_path / "chart.png") is None
    assert (tmp_path / "chart.png").stat().st_size > 1000
