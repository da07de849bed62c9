"""The RESULTS.md section of suite 5: server send to visible in user code."""
from __future__ import annotations

import os
from typing import Any

from .format import fmt, load_avg, table, targets_table

__all__ = ["latency_md"]


def _ratio_text(c: dict[str, Any], floor: str) -> str:
    vals = [c.get(f"{m}_x_{floor}") for m in ("p50", "p99", "p999")]
    return " / ".join("-" if v is None else f"{v:.2f}" for v in vals)


def latency_md(data: dict[str, Any]) -> str:
    """Suite 5's section: the method, a table per cell (rate, markets), the targets."""
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
        f"Load average (1 min) at start {load_avg(meta, 'loadavg_start')}, at end "
        f"{load_avg(meta, 'loadavg_end')} ({meta.get('cores', os.cpu_count())} shared cores)."]
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
                return f"{fmt(c[m])} [{fmt(lo)}–{fmt(hi)}]" if lo is not None else fmt(c[m])

            clean = "yes" if c.get("lost") == 0 and c.get("reordered") == 0 else \
                f"**lost {c.get('lost')}, reordered {c.get('reordered')}**"
            books = {True: "exact", False: "**WRONG**", None: "-"}[c.get("books_ok")]
            basis = f"{c.get('clean_rounds', '?')}/{c.get('rounds')}" + (
                "" if c.get("basis", "uncontended") == "uncontended" else " (all used)")
            rows.append([f"`{name}`", fig("p50_us"), fig("p99_us"), fig("p999_us"),
                         fmt(c.get("cpu_cores")), _ratio_text(c, "blocking"),
                         _ratio_text(c, "busypoll"), clean, books, basis])
        first: dict[str, Any] = next(iter(cell.get("contenders", {}).values()), {})
        parts.append(f"**{key}** ({fmt(first.get('deltas_per_round'))} deltas per round after "
                     f"warm-up):")
        parts.append(table(["contender", "p50 µs", "p99 µs", "p99.9 µs", "client CPU",
                            "× raw-blocking", "× busy-poll floor", "all events, in order",
                            "final books", "quiet runs"], rows))
    labels = meta.get("labels", {})
    if labels:
        parts.append("Contenders: " + "; ".join(f"`{k}`: {v}" for k, v in labels.items()) + ".")
    if data.get("skipped"):
        parts.append("Skipped: " + "; ".join(f"`{k}`: {v}" for k, v in data["skipped"].items()))
    targets = data.get("targets", [])
    if targets:
        parts.append(targets_table(targets, with_config=True))
    return "\n\n".join(parts)
