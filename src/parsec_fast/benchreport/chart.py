"""The results chart (``bench/results.png``): one panel per suite, drawn with matplotlib."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .figures import book_rows, e2e_rows, latency_cell, parse_rows, relay_rows
from .shm import shm_panels

__all__ = ["render_chart"]


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
    if book_rows(book):
        panels.append(("book apply, depth 50 (ns/delta, lower is better)", book_rows(book), "ns"))
    parse = suites.get("parse", {})
    if isinstance(parse, dict) and parse_rows(parse):
        panels.append(("bytes -> applied, 1-change delta (ns/frame, lower is better)",
                       parse_rows(parse), "ns"))
    e2e = suites.get("e2e", {})
    if e2e_rows(e2e):
        panels.append(("end to end over loopback (deltas/s, higher is better)", e2e_rows(e2e), "/s"))
    relay = relay_rows(suites.get("relay", {}))
    if relay:
        panels.append(("NATS relay vs direct WebSocket (deltas/s, higher is better)",
                       relay, "/s"))
    panels += shm_panels(suites.get("shm", {}))
    latency = latency_cell(suites.get("latency", {}))
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
