"""RESULTS.md sections of suites 1-4: book apply, parse + apply, memory, end to end; and the
relay suite's, which ``parsec_fast.relay.report`` renders."""
from __future__ import annotations

from typing import Any

from .format import fmt, generic_md, table, targets_table

__all__ = ["book_md", "parse_md", "memory_md", "e2e_md", "relay_md"]


def book_md(data: dict[str, Any]) -> str:
    """Suite 1's section: ns per delta by depth, single changes, top-of-book reads."""
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
    parts.append(table(["contender"] + [f"depth {d}" for d in depths], rows))
    single = data.get("single_change", {})
    if single:
        parts.append("Single-change deltas, depth 50:")
        parts.append(table(["contender", "median ns", "p99 ns", "× fastest"],
                           [[f"`{k}`", v.get("median_ns"), v.get("p99_ns"),
                             v.get("ratio_to_fastest")] for k, v in single.items()]))
    top = data.get("top_of_book", {})
    if top:
        parts.append("Top-of-book read (best bid + best ask):")
        parts.append(table(["contender", "ns per read"],
                           [[f"`{k}`", v.get("read_ns")] for k, v in top.items()]))
    if data.get("skipped"):
        parts.append("Skipped: " + "; ".join(f"{k}: {v}" for k, v in data["skipped"].items()))
    return "\n\n".join(parts)


def parse_md(data: dict[str, Any]) -> str:
    """Suite 2's section: frame bytes to an applied book, per frame set, vs ``orjson.loads``."""
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
                       f"{r['median_ns']:,.0f} ({fmt(r.get('p99_ns'))}) ×{r['x_orjson_loads']:.2f}"
                       + ("" if r.get("book_ok", True) else " WRONG"))
        rows.append(row)
    header = ["contender"] + [f"{k} ({v.get('mean_bytes', 0):,.0f} B)" for k, v in sets.items()]
    summary = data.get("summary", {})
    parts = ["Raw frame bytes to an applied book, the same seeded frames for every contender: "
             "median ns per frame (p99), and the ratio to `orjson.loads` alone (the parse floor).",
             table(header, rows)]
    if summary:
        parts.append(
            f"Native feed path, single-change deltas: "
            f"{summary.get('native_feed_single_change_deltas_per_s', 0):,.0f} deltas/s on one core, "
            f"{summary.get('native_feed_vs_orjson_loads_single_change', 0):.2f}× the cost of "
            f"`orjson.loads` alone (apply included); the scanner alone "
            f"{summary.get('scanner_c_loop_vs_orjson_loads_single_change', 0):.2f}×.")
    return "\n\n".join(parts)


def memory_md(data: dict[str, Any]) -> str:
    """Suite 4's section: RSS per book and RSS drift over a long replay."""
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
    return "\n\n".join(parts) if parts else generic_md(data)


def e2e_md(data: dict[str, Any]) -> str:
    """Suite 3's section: deltas/s per contender (wall and per CPU-s), paced latency, targets."""
    meta = data.get("meta", {})
    parts = [f"{meta.get('books')} books at depth {meta.get('depth')}, blasts of "
             f"{fmt(meta.get('deltas_fast'))} deltas ({fmt(meta.get('deltas_slow'))} for the "
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
    parts.append(table(["contender", "deltas/s (wall)", "× SDK (wall)",
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
        parts.append(table(["contender", "deltas/s applied", "p50 µs", "p90 µs", "p99 µs"],
                           [[f"`{k}`", v.get("deltas_per_s"), v.get("latency_p50_us"),
                             v.get("latency_p90_us"), v.get("latency_p99_us")]
                            for k, v in paced.items() if "error" not in v]))
    targets = data.get("targets", {})
    if targets:
        parts.append(targets_table(list(targets.values())))
    return "\n\n".join(parts)


def relay_md(data: dict[str, Any]) -> str:
    """The relay suite's section, rendered by ``parsec_fast.relay.report``."""
    from ..relay.report import relay_markdown  # the relay suite renders itself
    return relay_markdown(data)
