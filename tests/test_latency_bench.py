"""Smoke test of the send-to-visible latency benchmark (``bench/bench_latency.py --quick``) and of
its report: every contender of the quick run gets figures, no delta is lost or reordered, the
framed contenders end with exact books, the targets are evaluated, and RESULTS.md / the chart
render the suite. No speed is asserted here (that is the benchmark's job)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import parsec_fast
from parsec_fast import benchreport

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "bench_latency.py"

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not BENCH.is_file(),
                                 reason="needs the bench/ scripts of a source checkout")]


def test_quick_latency_bench_runs_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    out = tmp_path / "latency.json"
    env_path = str(Path(parsec_fast.__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=110, cwd=REPO,
                          env={**__import__("os").environ, "PYTHONPATH": env_path})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["cells"]) == {"20000/s, 1 market", "20000/s, 100 markets"}
    for key, cell in data["cells"].items():
        for name, c in cell["contenders"].items():
            assert c["rounds"] == 1 and not c["errors"], (key, name, c["errors"])
            assert 0 < c["p50_us"] <= c["p99_us"] <= c["p999_us"] <= c["max_us"]
            assert c["lost"] == 0 and c["reordered"] == 0, (key, name)
            assert c["cpu_cores"] is not None and 0 <= c["cpu_cores"] <= 1.2
            if not name.startswith("raw-"):
                assert c["books_ok"] is True, (key, name)
        assert "p50_x_busypoll" in cell["contenders"]["pf-busy-iterator"]
    assert {t["what"] for t in data["targets"]} >= {
        "pf-callback p50 <= 1.1x raw-blocking", "pf-busy-iterator p999 <= 3.0x busy-poll floor"}
    combined = {"meta": benchreport.machine(), "suites": {"latency": data}}
    md = benchreport.results_markdown(combined, has_chart=False)
    assert "Suite 5: latency" in md and "`pf-busy-iterator`" in md and "× busy-poll floor" in md
    assert any("pf-callback" in line for line in benchreport.headline(combined))
    pytest.importorskip("matplotlib")
    assert benchreport.render_chart(combined, tmp_path / "chart.png") is None
    assert (tmp_path / "chart.png").stat().st_size > 1000
