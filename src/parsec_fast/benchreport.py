"""Reporting for ``parsec-fast bench``: machine description, chart, headline and RESULTS.md.

Input is the combined results (``bench/out/results.json``): ``{"meta", "suites": {name: the
suite's own JSON}, ...}``. The book, parse, e2e, memory and latency suites have known layouts
(the latency suite also gets a chart panel: p50/p99/p99.9 per contender); for any other suite the
report falls back to generic tables (every ``{contender: {metric: value}}`` mapping it finds),
so a suite can change its JSON without breaking the report.
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["machine", "render_chart", "headline", "results_markdown"]

PACKAGES = ("parsec_fast", "picows", "orjson", "uvloop", "Cython", "numpy", "parsec-api",
            "websockets", "order-book", "sortedcontainers", "msgspec", "rich", "matplotlib")


def machine() -> dict[str, Any]:
    """CPU model, cores, Python, package versions, commit, time and load."""
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10,
                                cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = []
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "packages": versions, "commit": commit, "loadavg_at_start": load,
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}


# ── extraction ───────────────────────────────────────────────────────────────────────────────────


def _book_rows(data: dict[str, Any], depth: str = "50") -> list[tuple[str, float]]:
    """(contender, median ns/delta) at one depth, fastest first."""
    table = data.get("apply", {}).get(depth, {})
    rows = [(k, v["median_ns"]) for k, v in table.items() if isinstance(v, dict) and "median_ns" in v]
    return sorted(rows, key=lambda r: r[1])


def _e2e_rows(data: dict[str, Any]) -> list[tuple[str, float]]:
    """(contender, deltas/s), fastest first; the byte counter is left out (it is the sender)."""
    rows = [(k, v["deltas_per_s"]) for k, v in data.get("throughput", {}).items()
            if isinstance(v, dict) and "deltas_per_s" in v and k != "count-bytes"]
    return sorted(rows, key=lambda r: -r[1])


def _parse_rows(data: dict[str, Any], frame_set: str = "delta, 1 change") -> list[tuple[str, float]]:
    """(contender, median ns/frame) for one frame set of the parse suite, fastest first."""
    sets = data.get("sets", {})
    results = sets.get(frame_set, {}).get("results", {}) if isinstance(sets, dict) else {}
    rows = [(k, v["median_ns"]) for k, v in results.items()
            if isinstance(v, dict) and isinstance(v.get("median_ns"), (int, float))]
    return sorted(rows, key=lambda r: r[1])


def _latency_cell(data: dict[str, Any], prefer: str = "20000/s, 1 market") -> tuple[str, dict[str, Any]] | None:
    """The latency suite's cell to chart: ``prefer`` if present, else the first one."""
    cells = data.get("cells", {}) if isinstance(data, dict) else {}
    if not cells:
        return None
    key = prefer if prefer in cells else next(iter(cells))
    return key, cells[key]


def _tables(data: Any, path: str = "") -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """Every ``{name: {metric: scalar, ...}}`` mapping in a suite's JSON, with its path."""
    found: list[tuple[str, dict[str, dict[str, Any]]]] = []
    if not isinstance(data, dict) or path.endswith("meta"):
        return found
    rows = {k: v for k, v in data.items() if isinstance(v, dict)
            and any(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values())}
    if rows and len(rows) >= max(1, len(data) // 2):
        found.append((path or "(top)", rows))
    for key, value in data.items():
        if isinstance(value, dict) and key not in rows:
            found.extend(_tables(value, f"{path}.{key}" if path else key))
    return found


def _generic_rows(data: dict[str, Any]) -> tuple[str, list[tuple[str, float]]] | None:
    """The first table with a time-like (``*_ns``) or size-like (``*bytes*``) metric."""
    for path, rows in _tables(data):
        metrics = [m for r in rows.values() for m, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for wanted in ("median_ns", "ns", "bytes_per_book", "bytes", "rss"):
            metric = next((m for m in metrics if wanted in m), None)
            if metric is not None:
                pairs = [(k, float(r[metric])) for k, r in rows.items()
                         if isinstance(r.get(metric), (int, float))]
                return f"{path}: {metric}", sorted(pairs, key=lambda p: p[1])
    return None


# ── chart ────────────────────────────────────────────────────────────────────────────────────────


def render_chart(combined: dict[str, Any], path: Path) -> str | None:
    """Draw one small PNG with a panel per suite; returns None, or a note when it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install -e .[bench])"
    suites = combined.get("suites", {})
    panels: list[tuple[str, list[tuple[str, float]], str]] = []
    book = suites.get("book", {})
    if _book_rows(book):
        panels.append(("book apply, depth 50 (ns/delta, lower is better)", _book_rows(book), "ns"))
    parse = suites.get("parse", {})
    if isinstance(parse, dict) and _parse_rows(parse):
        panels.append(("bytes -> applied, 1-change delta (ns/frame, lower is better)",
                       _parse_rows(parse), "ns"))
    e2e = suites.get("e2e", {})
    if _e2e_rows(e2e):
        panels.append(("end to end over loopback (deltas/s, higher is better)", _e2e_rows(e2e), "/s"))
    relay_rows = _relay_rows(suites.get("relay", {}))
    if relay_rows:
        panels.append(("NATS relay vs direct WebSocket (deltas/s, higher is better)",
                       relay_rows, "/s"))
    panels += _shm_panels(suites.get("shm", {}))
    latency = _latency_cell(suites.get("latency", {}))
    if not panels and latency is None:
        return "chart skipped: no suite produced figures"
    n_axes = len(panels) + (1 if latency is not None else 0)
    heights = [1.45] * len(panels) + ([2.4] if latency is not None else [])
    fig, axes = plt.subplots(n_axes, 1, figsize=(7.5, 1.0 + sum(heights)), dpi=80,
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    if latency is not None:
        _latency_panel(axes[len(panels), 0], *latency)
    for ax, (title, rows, unit) in zip(axes[:, 0], panels):
        names = [r[0] for r in rows][::-1]
        values = [r[1] for r in rows][::-1]
        colors = ["#d62728" if ("sdk" in n.lower() and "compat" not in n.lower()) else
                  "#1f77b4" if ("native" in n or "parsec_fast.Book" in n) else "#7f7f7f"
                  for n in names]
        ax.barh(names, values, color=colors)
        if values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        for y, v in enumerate(values):
            ax.text(v, y, " " + _short(v) + unit, va="center", fontsize=7)
        ax.margins(x=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return None


def _latency_panel(ax: Any, key: str, cell: dict[str, Any]) -> None:
    """Grouped bars: p50 / p99 / p99.9 send-to-visible latency per contender (log scale)."""
    rows = [(n, c) for n, c in cell.get("contenders", {}).items() if "p50_us" in c]
    rows.sort(key=lambda r: r[1]["p50_us"], reverse=True)
    names = [n for n, _ in rows]
    height = 0.27
    for k, (metric, label, color) in enumerate((("p50_us", "p50", "#1f77b4"),
                                                 ("p99_us", "p99", "#ff7f0e"),
                                                 ("p999_us", "p99.9", "#d62728"))):
        ys = [i + (k - 1) * height for i in range(len(rows))]
        vals = [c.get(metric) or 0.0 for _, c in rows]
        ax.barh(ys, vals, height=height, color=color, label=label)
        for y, v in zip(ys, vals):
            ax.text(v, y, " " + _short(v), va="center", fontsize=6)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names)
    ax.set_xscale("log")
    ax.set_title(f"send -> visible to user code, {key} (µs, lower is better; medians of rounds)",
                 fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    ax.margins(x=0.15)


def _short(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


# ── text ─────────────────────────────────────────────────────────────────────────────────────────


def headline(combined: dict[str, Any]) -> list[str]:
    """A few lines with the key figures (printed after a run)."""
    lines = []
    suites = combined.get("suites", {})
    rows = _book_rows(suites.get("book", {}))
    if rows:
        lines.append("book apply @50: " + ", ".join(f"{k} {v:.0f} ns" for k, v in rows[:3]))
    e2e = suites.get("e2e", {})
    for key, t in e2e.get("targets", {}).items():
        mark = "met" if t["met"] else "MISSED" if t["met"] is False else "n/a"
        lines.append(f"target {t['what']}: {t['value']} -> {mark}")
    for t in suites.get("latency", {}).get("targets", []):
        mark = "met" if t["met"] else "MISSED" if t["met"] is False else "n/a"
        lines.append(f"target [{t['config']}] {t['what']}: {t['value']} -> {mark}")
    for t in suites.get("shm", {}).get("targets", []):
        mark = "met" if t["met"] else "MISSED" if t["met"] is False else "n/a"
        lines.append(f"target [shm] {t['what']}: {t['value']} -> {mark}")
    return lines


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "**NO**"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    if v is None:
        return "-"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) if not isinstance(c, str) else c for c in r) + " |"
            for r in rows]
    return "\n".join(out)


def _book_md(data: dict[str, Any]) -> str:
    parts = ["Median ns per delta (p99 in brackets) on the same seeded stream; ratio to the "
             "fastest at that depth."]
    depths = sorted(data.get("apply", {}), key=int)
    names: list[str] = []
    for d in depths:
        names += [n for n in data["apply"][d] if n not in names]
    rows = []
    for n in names:
        row = [f"`{n}`"]
        for d in depths:
            r = data["apply"][d].get(n)
            row.append("-" if r is None else
                       f"{r['median_ns']:,.0f} ({r.get('p99_ns', float('nan')):,.0f}) "
                       f"×{r.get('ratio_to_fastest', float('nan')):.1f}"
                       + ("" if r.get("correct", True) else " WRONG"))
        rows.append(row)
    parts.append(_table(["contender"] + [f"depth {d}" for d in depths], rows))
    single = data.get("single_change", {})
    if single:
        parts.append("Single-change deltas, depth 50:")
        parts.append(_table(["contender", "median ns", "p99 ns", "× fastest"],
                            [[f"`{k}`", v.get("median_ns"), v.get("p99_ns"),
                              v.get("ratio_to_fastest")] for k, v in single.items()]))
    top = data.get("top_of_book", {})
    if top:
        parts.append("Top-of-book read (best bid + best ask):")
        parts.append(_table(["contender", "ns per read"],
                            [[f"`{k}`", v.get("read_ns")] for k, v in top.items()]))
    if data.get("skipped"):
        parts.append("Skipped: " + "; ".join(f"{k}: {v}" for k, v in data["skipped"].items()))
    return "\n\n".join(parts)


def _parse_md(data: dict[str, Any]) -> str:
    sets = data.get("sets", {})
    names: list[str] = []
    for fs in sets.values():
        names += [n for n in fs.get("results", {}) if n not in names]
    rows = []
    for n in names:
        row = [f"`{n}`"]
        for fs in sets.values():
            r = fs.get("results", {}).get(n)
            row.append("-" if r is None else
                       f"{r['median_ns']:,.0f} ({_fmt(r.get('p99_ns'))}) ×{r['x_orjson_loads']:.2f}"
                       + ("" if r.get("book_ok", True) else " WRONG"))
        rows.append(row)
    header = ["contender"] + [f"{k} ({v.get('mean_bytes', 0):,.0f} B)" for k, v in sets.items()]
    summary = data.get("summary", {})
    parts = ["Raw frame bytes to an applied book, the same seeded frames for every contender: "
             "median ns per frame (p99), and the ratio to `orjson.loads` alone (the parse floor).",
             _table(header, rows)]
    if summary:
        parts.append(
            f"Native feed path, single-change deltas: "
            f"{summary.get('native_feed_single_change_deltas_per_s', 0):,.0f} deltas/s on one core, "
            f"{summary.get('native_feed_vs_orjson_loads_single_change', 0):.2f}× the cost of "
            f"`orjson.loads` alone (apply included); the scanner alone "
            f"{summary.get('scanner_c_loop_vs_orjson_loads_single_change', 0):.2f}×.")
    return "\n\n".join(parts)


def _memory_md(data: dict[str, Any]) -> str:
    books = data.get("books", {})
    replay = data.get("replay", {})
    parts = []
    if books:
        parts.append(
            f"{books.get('books', 0):,} books at depth {books.get('depth')} "
            f"({books.get('levels_per_book')} levels each), one FeedHandler: "
            f"**{books.get('bytes_per_book', 0) / 1024:.1f} KiB RSS per book** "
            f"({books.get('bytes_per_level', 0):.0f} B per level; subscription objects alone "
            f"{books.get('subscriptions_only_bytes_per_book', 0):,.0f} B, C level arrays "
            f"{books.get('c_level_arrays_bytes_per_book', 0):,} B).")
    if replay:
        parts.append(
            f"{replay.get('deltas', 0):,} deltas replayed through the native feed path at "
            f"{replay.get('deltas_per_s', 0):,.0f} deltas/s: RSS {replay.get('rss_start_mib', 0):.2f}"
            f" → {replay.get('rss_end_mib', 0):.2f} MiB, **max drift "
            f"{replay.get('max_drift_pct', 0):.3f} %** over {len(replay.get('samples', []))} samples.")
    return "\n\n".join(parts) if parts else _generic_md(data)


def _e2e_md(data: dict[str, Any]) -> str:
    meta = data.get("meta", {})
    parts = [f"{meta.get('books')} books at depth {meta.get('depth')}, blasts of "
             f"{_fmt(meta.get('deltas_fast'))} deltas ({_fmt(meta.get('deltas_slow'))} for the "
             f"SDK and compat: a prefix of the same stream) × {meta.get('repeats')}, median; "
             f"client pinned to CPU {meta.get('client_cpu')}, server process to CPU "
             f"{meta.get('server_cpu')}."]
    rows = []
    sdk_cpu = data.get("throughput", {}).get("sdk", {}).get("deltas_per_cpu_s")
    for name, r in data.get("throughput", {}).items():
        if "error" in r:
            rows.append([f"`{name}`", "error", "-", "-", "-", "-", r["error"][:60]])
            continue
        books = "-" if "books_checked" not in r else \
            f"{r['books_checked'] - r['books_mismatched']}/{r['books_checked']} exact"
        per_cpu = r.get("deltas_per_cpu_s")
        rows.append([f"`{name}`", r["deltas_per_s"], r.get("ratio_to_sdk"), per_cpu,
                     r.get("ratio_to_sdk_cpu", per_cpu / sdk_cpu if per_cpu and sdk_cpu else None),
                     books,
                     r.get("label", "")])
    parts.append(_table(["contender", "deltas/s (wall)", "× SDK (wall)",
                         "deltas per client CPU-s", "× SDK (CPU)", "final books", "what"], rows))
    parts.append("`deltas/s (wall)`: frames written ÷ (last book at its final seq − server's "
                 "first write). `deltas per client CPU-s`: frames ÷ the client process's "
                 "user+system CPU time over the same run — what one dedicated core would "
                 "sustain; it is the fairer figure when other processes share the cores.")
    if data.get("skipped"):
        parts.append("Skipped: " + "; ".join(f"`{k}`: {v}" for k, v in data["skipped"].items()))
    paced = data.get("paced", {})
    if paced:
        parts.append("Paced run, **in-process read-to-apply latency** in µs: from the moment the "
                     "listener has a read batch's bytes to the end of the frame's apply (sampled). "
                     "It leaves out everything before the read (the kernel, the wake-up): the "
                     "latency a strategy sees, from the server's send, is suite 5's.")
        parts.append(_table(["contender", "deltas/s applied", "p50 µs", "p90 µs", "p99 µs"],
                            [[f"`{k}`", v.get("deltas_per_s"), v.get("latency_p50_us"),
                              v.get("latency_p90_us"), v.get("latency_p99_us")]
                             for k, v in paced.items() if "error" not in v]))
    targets = data.get("targets", {})
    if targets:
        parts.append(_table(["target", "measured", "met"],
                            [[t["what"], t["value"], "n/a" if t["met"] is None else
                              ("yes" if t["met"] else "**no**")] for t in targets.values()]))
    return "\n\n".join(parts)


def _ratio_text(c: dict[str, Any], floor: str) -> str:
    vals = [c.get(f"{m}_x_{floor}") for m in ("p50", "p99", "p999")]
    return " / ".join("-" if v is None else f"{v:.2f}" for v in vals)


def _load(meta: dict[str, Any], key: str) -> str:
    values = meta.get(key) or []
    return f"{values[0]:.2f}" if values else "?"


def _latency_md(data: dict[str, Any]) -> str:
    meta = data.get("meta", {})
    parts = [
        f"Send → book updated and visible to user code, per delta: the sender (pinned to CPU "
        f"{meta.get('sender_cpu')}) reads `time.monotonic_ns()` just before each paced "
        f"`send()`, the client (pinned to CPU {meta.get('client_cpu')}) as the first statement "
        f"of the user's callback / iterator step; the two records are joined by (market, seq) "
        f"afterwards, nothing is added to the frames (`bench/bench_latency.py` docstring). "
        f"{meta.get('rounds')} interleaved rounds of {meta.get('seconds')} s per contender and "
        f"configuration (the first {meta.get('warmup_s')} s of each dropped); each figure is the "
        f"median over rounds, [min–max] the spread; ratios are the median of per-round ratios "
        f"to the floor measured in the same round (p50 / p99 / p99.9; the busy-poll floor is the "
        f"lower of `raw-busypoll` and `raw-epollspin` in that round). Client CPU: user+system "
        f"CPU-seconds of the client process per second of the paced phase (1.00 = one core). "
        f"The machine is shared: each run measures the CPU other processes took meanwhile "
        f"(`/proc/stat` less the sender's and the client's own) and is re-run (up to "
        f"{meta.get('retries')} times, after waiting for a quiet machine) when it exceeds "
        f"{meta.get('max_foreign_cores')} cores; *quiet runs* counts the rounds that stayed "
        f"under it, and when at least two did, the medians and ratios use those alone "
        f"(\"all used\" otherwise). Correctness counts cover every run. "
        f"Load average (1 min) at start {_load(meta, 'loadavg_start')}, at end "
        f"{_load(meta, 'loadavg_end')} ({meta.get('cores', os.cpu_count())} shared cores)."]
    for key, cell in data.get("cells", {}).items():
        rows = []
        for name, c in cell.get("contenders", {}).items():
            if "p50_us" not in c:
                rows.append([f"`{name}`", "no result: " + "; ".join(c.get("errors", []))[:80],
                             "", "", "", "", "", "", "", ""])
                continue
            sp = {m: c.get(m + "_spread", [None, None]) for m in ("p50_us", "p99_us", "p999_us")}

            def fig(m: str) -> str:
                lo, hi = sp[m]
                return f"{_fmt(c[m])} [{_fmt(lo)}–{_fmt(hi)}]" if lo is not None else _fmt(c[m])

            clean = "yes" if c.get("lost") == 0 and c.get("reordered") == 0 else \
                f"**lost {c.get('lost')}, reordered {c.get('reordered')}**"
            books = {True: "exact", False: "**WRONG**", None: "-"}[c.get("books_ok")]
            basis = f"{c.get('clean_rounds', '?')}/{c.get('rounds')}" + (
                "" if c.get("basis", "uncontended") == "uncontended" else " (all used)")
            rows.append([f"`{name}`", fig("p50_us"), fig("p99_us"), fig("p999_us"),
                         _fmt(c.get("cpu_cores")), _ratio_text(c, "blocking"),
                         _ratio_text(c, "busypoll"), clean, books, basis])
        parts.append(f"**{key}** ({_fmt(next(iter(cell.get('contenders', {}).values()), {}).get('deltas_per_round'))} "
                     f"deltas per round after warm-up):")
        parts.append(_table(["contender", "p50 µs", "p99 µs", "p99.9 µs", "client CPU",
                             "× raw-blocking", "× busy-poll floor", "all events, in order",
                             "final books", "quiet runs"], rows))
    labels = meta.get("labels", {})
    if labels:
        parts.append("Contenders: " + "; ".join(f"`{k}`: {v}" for k, v in labels.items()) + ".")
    if data.get("skipped"):
        parts.append("Skipped: " + "; ".join(f"`{k}`: {v}" for k, v in data["skipped"].items()))
    targets = data.get("targets", [])
    if targets:
        parts.append(_table(["configuration", "target", "measured", "met"],
                            [[t["config"], t["what"], t["value"], "n/a" if t["met"] is None else
                              ("yes" if t["met"] else "**no**")] for t in targets]))
    return "\n\n".join(parts)



def _relay_md(data: dict[str, Any]) -> str:
    from .relay.report import relay_markdown  # the relay suite renders itself
    return relay_markdown(data)


def _relay_rows(data: dict[str, Any]) -> list[tuple[str, float]]:
    from .relay.report import relay_rows
    return relay_rows(data) if isinstance(data, dict) else []

# ── the shm suite (bench/bench_shm.py) ──────────────────────────────────────────────────────────


def _shm_panels(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, float]], str]]:
    """Chart panels of the shm suite: publish -> visible (µs) and the apply path (ns/delta)."""
    if not isinstance(data, dict) or "latency" not in data:
        return []
    names = {"latency:spin": "spinning reader", "latency:wait": "wait() (sleeps)",
             "latency:async": "await changed()", "wake": "futex wake (200/s)"}
    lat = [(f"{names.get(k, k)} {m}", c[f"{m}_us"]) for k, c in data["latency"].items()
           for m in ("p50", "p99") if isinstance(c.get(f"{m}_us"), (int, float))]
    panels = []
    if lat:
        panels.append(("shared memory: publish -> visible in a reader process (µs, 20 k/s)",
                       sorted(lat, key=lambda r: r[1]), "µs"))
    app = data.get("apply", {})
    rows = [(k, c["median_ns"]) for k, c in app.items()
            if isinstance(c, dict) and isinstance(c.get("median_ns"), (int, float))]
    eight = app.get("publisher, 8 readers", {})
    for key, label in (("stopped_median_ns", "8 readers stopped (paired)"),
                       ("running_median_ns", "8 readers running (paired)")):
        if isinstance(eight.get(key), (int, float)):
            rows.append((label, eight[key]))
    if rows:
        panels.append(("shared memory: publisher's apply path, feed + flush (ns/delta)", rows, "ns"))
    return panels


def _shm_md(data: dict[str, Any]) -> str:
    meta = data.get("meta", {})
    parts = [
        f"One publisher process (a `FeedHandler` + `parsec_fast.shared.publish`, pinned to CPU "
        f"{meta.get('writer_cpu')}) fed pre-encoded deltas paced at {_fmt(meta.get('rate'))}/s, "
        f"one `feed()` + `flush()` each; reader processes pinned to CPU {meta.get('reader_cpu')} "
        f"(`bench/bench_shm.py` docstring). {meta.get('rounds')} interleaved rounds of "
        f"{meta.get('seconds')} s per segment, the first {meta.get('warmup_s')} s dropped; "
        f"medians over rounds [min–max]. Segments during which other processes took more than "
        f"{meta.get('max_foreign_cores')} cores were re-run ({meta.get('reruns', 0)} re-runs). "
        f"Load average (1 min) at start {_load(meta, 'loadavg_start')}, at end "
        f"{_load(meta, 'loadavg_end')}."]
    lat = data.get("latency", {})
    if lat:
        rows = []
        for c in lat.values():
            def fig(m: str, c: dict[str, Any] = c) -> str:
                lo, hi = c.get(m + "_spread", [None, None])
                return f"{_fmt(c.get(m))} [{_fmt(lo)}–{_fmt(hi)}]" if lo is not None else _fmt(c.get(m))
            rows.append([c.get("label", ""), fig("p50_us"), fig("p99_us"), fig("p999_us"),
                         _fmt(c.get("max_us")), _fmt(c.get("reader_cpu_cores")),
                         _fmt(c.get("lost")), c.get("basis") or "-"])
        parts.append("**Publish → visible in a reader process** (µs; the writer's clock just before "
                     "`flush()`, the reader's after `wait` returned and it read the book's seq; "
                     "joined by seq; *runs*: the medians use the segments other processes left "
                     "alone when at least two were):")
        parts.append(_table(["reader", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "reader CPU",
                             "never seen", "runs"], rows))
        wake = lat.get("wake", {})
        if wake.get("writer_ns_per_delta_with_wake"):
            parts.append(f"With every reader wait a long sleep (200 deltas/s, `linger=0`) the "
                         f"writer issues a FUTEX_WAKE per delta: its apply path is then "
                         f"{_fmt(wake['writer_ns_per_delta_with_wake'])} ns per delta (median).")
    read = data.get("read", {})
    if read:
        parts.append("**Reads in a reader process** while the writer publishes at the paced rate "
                     "(ns per read, net of the empty loop, as suite 1 measures `Book`):")
        parts.append(_table(["read", "ns", "spread"],
                            [[k, v.get("read_ns"), f"{_fmt(v['spread'][0])}–{_fmt(v['spread'][1])}"]
                             for k, v in read.items() if isinstance(v, dict)]))
    app = data.get("apply", {})
    if app:
        rows = []
        for k, c in app.items():
            rows.append([k, f"{_fmt(c.get('median_ns'))} [{_fmt((c.get('median_ns_spread') or [None])[0])}–"
                            f"{_fmt((c.get('median_ns_spread') or [None, None])[1])}]",
                         _fmt(c.get("mean_ns")), _fmt(c.get("p99_ns")), _fmt(c.get("wakes")),
                         c.get("basis") or "-"])
        parts.append("**The publisher's apply path** (`feed()` + `flush()`, ns per delta, "
                     f"{meta.get('apply_books')} books at depth {meta.get('depth')}):")
        parts.append(_table(["configuration", "median ns", "mean ns", "p99 ns", "FUTEX_WAKEs",
                             "runs"], rows))
        eight = app.get("publisher, 8 readers", {})
        if eight.get("pair_ratio") is not None:
            lo, hi = eight.get("pair_ratio_spread", [None, None])
            parts.append(
                f"Inside each `apply:8` segment the 8 readers are alternately stopped (SIGSTOP: "
                f"they keep their mappings and do nothing) and running, in "
                f"{_fmt(meta.get('block_s', 0.25))} s blocks: running / stopped = "
                f"**{_fmt(eight['pair_ratio'])}** [{_fmt(lo)}–{_fmt(hi)}] (median of paired "
                f"blocks; {_fmt(eight.get('stopped_median_ns'))} vs "
                f"{_fmt(eight.get('running_median_ns'))} ns). Each reader woke "
                f"{_fmt(eight.get('reader_wakes_per_s'))} times/s and used "
                f"{_fmt(eight.get('reader_cpu_cores_each'))} of a core.")
        for label, r in data.get("apply_ratios", {}).items():
            parts.append(f"Across segments, {label}: {_fmt(r.get('median_ns'))} "
                         f"[{_fmt(r['median_ns_spread'][0])}–{_fmt(r['median_ns_spread'][1])}] "
                         f"(median of per-round ratios).")
    cg = data.get("callgrind", {})
    if "publisher" in cg:
        parts.append(f"Instructions per delta (callgrind, {_fmt(cg.get('deltas'))} deltas, 12 books, "
                     f"a flush per frame): feed_ptr + flush {_fmt(cg['no publisher']['total'])} "
                     f"without a publisher, {_fmt(cg['publisher']['total'])} with one "
                     f"(`sink_publish` {_fmt(cg['publisher']['sink_publish'])}, `sink_commit` "
                     f"{_fmt(cg['publisher']['sink_commit'])}): ×{_fmt(cg.get('ratio'))}.")
    eq = data.get("equality", {})
    if eq:
        parts.append(f"**Books equal**: {eq.get('checks', 0) - eq.get('mismatches', 0)}/"
                     f"{eq.get('checks', 0)} reader checks found their view of the "
                     f"{eq.get('books')} books (levels, seq, validity, states, trust, reason) "
                     f"identical to the publisher's.")
    targets = data.get("targets", [])
    if targets:
        parts.append(_table(["target", "measured", "met"],
                            [[t["what"], t["value"], "n/a" if t["met"] is None else
                              ("yes" if t["met"] else "**no**")] for t in targets]))
    return "\n\n".join(parts)


def _generic_md(data: dict[str, Any]) -> str:
    parts = []
    for path, rows in _tables(data)[:6]:
        metrics: list[str] = []
        for r in rows.values():
            metrics += [m for m, v in r.items() if m not in metrics and m != "label"
                        and isinstance(v, (int, float, bool, str)) and len(str(v)) < 40]
        metrics = metrics[:7]
        parts.append(f"`{path}`:")
        parts.append(_table(["name"] + metrics,
                            [[f"`{k}`"] + [r.get(m) for m in metrics] for k, r in rows.items()]))
    return "\n\n".join(parts) or "(no tabular figures in this suite's JSON)"


def results_markdown(combined: dict[str, Any], *, has_chart: bool, notes: str = "") -> str:
    """The text of ``bench/RESULTS.md``; ``notes`` (hand-written analysis kept in
    ``bench/results_notes.md``) is appended as is."""
    meta = combined.get("meta", {})
    pk = meta.get("packages", {})
    lines = ["# Benchmark results", "",
             "Generated by `parsec-fast bench` (do not edit by hand; rerun to update).", "",
             "## Reproduce", "", "```sh", "pip install -e .[bench]",
             combined.get("argv", "parsec-fast bench --update-results"), "```", ""]
    if combined.get("commands"):
        lines += ["Each suite as it was run:", "", "```sh"]
        lines += [c for c in combined["commands"].values()] + ["```", ""]
    lines += ["## Machine", "",
              f"- CPU: {meta.get('cpu')}, {meta.get('cores')} cores "
              f"(load average at start: {', '.join(map(str, meta.get('loadavg_at_start', [])))})",
              f"- Python {meta.get('python')} ({meta.get('implementation')}), "
              f"{meta.get('platform')}",
              "- Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items()),
              f"- Commit {meta.get('commit')}, {meta.get('time')}", ""]
    if combined.get("quick"):
        lines += ["**Quick mode: tiny runs, figures are not meaningful.**", ""]
    if has_chart:
        lines += ["![benchmark chart](results.png)", ""]
    titles = {"book": "Suite 1: book apply", "parse": "Suite 2: parse + apply",
              "e2e": "Suite 3: end to end over loopback", "memory": "Suite 4: memory and scale",
              "relay": "NATS relay: consumers vs the direct WebSocket",
              "shm": "Shared-memory books: one publisher, reader processes on the host",
              "latency": "Suite 5: latency, server send to visible in user code"}
    for name, data in combined.get("suites", {}).items():
        lines += [f"## {titles.get(name, name)}", ""]
        if "error" in data or "not_run" in data:
            lines += [f"Failed: {data['error']}" if "error" in data else
                      f"Not run: {data['not_run']}", ""]
            continue
        render = {"book": _book_md, "parse": _parse_md, "e2e": _e2e_md, "memory": _memory_md,
                  "relay": _relay_md, "shm": _shm_md,
                  "latency": _latency_md}
        body = render.get(name, _generic_md)(data)
        lines += [body, ""]
    if notes.strip():
        lines += [notes.strip(), ""]
    return "\n".join(lines)
