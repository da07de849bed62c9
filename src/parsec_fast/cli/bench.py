"""``parsec-fast bench``: run the benchmark suites of a source checkout's ``bench/`` one after
the other (a progress bar on a terminal), collect their JSON, draw the chart and (with
``--update-results``) rewrite ``bench/RESULTS.md``."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .exits import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError

__all__ = ["cmd_bench", "find_bench_dir", "SUITES"]

#: Suite name → (script in bench/, one-line description).
SUITES: dict[str, tuple[str, str]] = {
    "book": ("bench_book.py", "book apply (ns/delta)"),
    "parse": ("bench_parse.py", "parse + apply (ns/frame)"),
    "e2e": ("bench_e2e.py", "end to end over loopback (deltas/s)"),
    "memory": ("bench_memory.py", "memory and scale (RSS)"),
    "relay": ("bench_relay.py", "NATS relay vs the direct WebSocket (deltas/s, us, CPU)"),
    "latency": ("bench_latency.py", "server send to visible in user code (us, paced)"),
    "shm": ("bench_shm.py", "shared-memory books: publish -> visible, reads, apply path"),
}


def find_bench_dir() -> Path | None:
    """The source checkout's ``bench/`` (next to ``src/``), or ``./bench``."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "bench", Path.cwd() / "bench"):
        if (candidate / "bench_book.py").is_file():
            return candidate
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    """``parsec-fast bench``."""
    from .. import benchreport

    bench_dir = find_bench_dir()
    if bench_dir is None:
        raise CliError("bench/ scripts not found: run from a source checkout of parsec_fast")
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise CliError(f"unknown suite(s) {unknown}; choose from {', '.join(SUITES)}", EXIT_USAGE)
    out_dir = Path(args.out) if args.out else bench_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        try:
            combined = json.loads((out_dir / "results.json").read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"--report-only needs {out_dir / 'results.json'}: {exc}") from None
        _report(combined, bench_dir, out_dir, update=True)
        return EXIT_OK
    pin = [] if args.pin is None else ["taskset", "-c", str(args.pin)]
    results: dict[str, Any] = {}
    commands: dict[str, str] = {}

    def run_suite(name: str) -> None:
        script, _ = SUITES[name]
        path = bench_dir / script
        json_path = out_dir / f"{name}.json"
        if not path.is_file():
            results[name] = {"not_run": f"bench/{script} not found"}
            return
        cmd = [sys.executable, str(path), "--json", str(json_path)]
        if args.quick:
            cmd.append("--quick")
        if name != "e2e":  # e2e pins its own client and server processes
            cmd = pin + cmd
        commands[name] = " ".join(cmd)
        with open(out_dir / f"{name}.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=bench_dir.parent)
        if proc.returncode != 0:
            tail = (out_dir / f"{name}.log").read_text().strip().splitlines()[-3:]
            results[name] = {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
            return
        try:
            results[name] = json.loads(json_path.read_text())
        except (OSError, ValueError) as exc:
            results[name] = {"error": f"bad JSON from {script}: {exc}"}

    if sys.stdout.isatty():
        from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} suites"),
                      TimeElapsedColumn()) as progress:
            task = progress.add_task("benchmarks", total=len(suites))
            for name in suites:
                progress.update(task, description=f"{name}: {SUITES[name][1]}")
                run_suite(name)
                progress.advance(task)
    else:
        for i, name in enumerate(suites, 1):
            print(f"[{i}/{len(suites)}] {name}: {SUITES[name][1]} ...", flush=True)
            t0 = time.monotonic()
            run_suite(name)
            r = results[name]
            status = "error: " + r["error"] if "error" in r else \
                "not run: " + r["not_run"] if "not_run" in r else "ok"
            print(f"[{i}/{len(suites)}] {name}: {status} ({time.monotonic() - t0:.1f} s)",
                  flush=True)
    combined = {"meta": benchreport.machine(), "quick": args.quick, "commands": commands,
                "argv": "parsec-fast " + " ".join(args.argv), "suites": results}
    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(combined, indent=2) + "\n")
    print(f"wrote {results_path}")
    _report(combined, bench_dir, out_dir, update=args.update_results)
    failed = [n for n, r in results.items() if "error" in r]
    if failed:
        print(f"error: suite(s) failed: {', '.join(failed)} (see {out_dir}/<suite>.log)",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _report(combined: dict[str, Any], bench_dir: Path, out_dir: Path, *, update: bool) -> None:
    """Chart, headline and (``update``) bench/RESULTS.md + bench/results.png."""
    from .. import benchreport

    chart = out_dir / "results.png"
    note = benchreport.render_chart(combined, chart)
    print(note or f"wrote {chart}")
    for line in benchreport.headline(combined):
        print(line)
    if update:
        md = bench_dir / "RESULTS.md"
        png = bench_dir / "results.png"
        if note is None:
            png.write_bytes(chart.read_bytes())
        notes_path = bench_dir / "results_notes.md"
        notes = notes_path.read_text() if notes_path.is_file() else ""
        md.write_text(benchreport.results_markdown(combined, has_chart=note is None, notes=notes))
        print(f"wrote {md}" + ("" if note else f" and {png}"))
