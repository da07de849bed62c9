"""The shared-memory suite (``bench/bench_shm.py``): its chart panels and its RESULTS.md section."""
from __future__ import annotations

from typing import Any

from .format import fmt, load_avg, table, targets_table

__all__ = ["shm_panels", "shm_md"]


def shm_panels(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, float]], str]]:
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


def shm_md(data: dict[str, Any]) -> str:
    """The shm suite's section: publish -> visible, reads, the apply path, equality, targets."""
    meta = data.get("meta", {})
    parts = [
        f"One publisher process (a `FeedHandler` + `parsec_fast.shared.publish`, pinned to CPU "
        f"{meta.get('writer_cpu')}) fed pre-encoded deltas paced at {fmt(meta.get('rate'))}/s, "
        f"one `feed()` + `flush()` each; reader processes pinned to CPU {meta.get('reader_cpu')} "
        f"(`bench/bench_shm.py` docstring). {meta.get('rounds')} interleaved rounds of "
        f"{meta.get('seconds')} s per segment, the first {meta.get('warmup_s')} s dropped; "
        f"medians over rounds [min–max]. Segments during which other processes took more than "
        f"{meta.get('max_foreign_cores')} cores were re-run ({meta.get('reruns', 0)} re-runs). "
        f"Load average (1 min) at start {load_avg(meta, 'loadavg_start')}, at end "
        f"{load_avg(meta, 'loadavg_end')}."]
    lat = data.get("latency", {})
    if lat:
        rows = []
        for c in lat.values():
            def fig(m: str, c: dict[str, Any] = c) -> str:
                lo, hi = c.get(m + "_spread", [None, None])
                return f"{fmt(c.get(m))} [{fmt(lo)}–{fmt(hi)}]" if lo is not None else fmt(c.get(m))
            rows.append([c.get("label", ""), fig("p50_us"), fig("p99_us"), fig("p999_us"),
                         fmt(c.get("max_us")), fmt(c.get("reader_cpu_cores")),
                         fmt(c.get("lost")), c.get("basis") or "-"])
        parts.append("**Publish → visible in a reader process** (µs; the writer's clock just before "
                     "`flush()`, the reader's after `wait` returned and it read the book's seq; "
                     "joined by seq; *runs*: the medians use the segments other processes left "
                     "alone when at least two were):")
        parts.append(table(["reader", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "reader CPU",
                            "never seen", "runs"], rows))
        wake = lat.get("wake", {})
        if wake.get("writer_ns_per_delta_with_wake"):
            parts.append(f"With every reader wait a long sleep (200 deltas/s, `linger=0`) the "
                         f"writer issues a FUTEX_WAKE per delta: its apply path is then "
                         f"{fmt(wake['writer_ns_per_delta_with_wake'])} ns per delta (median).")
    read = data.get("read", {})
    if read:
        parts.append("**Reads in a reader process** while the writer publishes at the paced rate "
                     "(ns per read, net of the empty loop, as suite 1 measures `Book`):")
        parts.append(table(["read", "ns", "spread"],
                           [[k, v.get("read_ns"), f"{fmt(v['spread'][0])}–{fmt(v['spread'][1])}"]
                            for k, v in read.items() if isinstance(v, dict)]))
    app = data.get("apply", {})
    if app:
        rows = []
        for k, c in app.items():
            rows.append([k, f"{fmt(c.get('median_ns'))} [{fmt((c.get('median_ns_spread') or [None])[0])}–"
                            f"{fmt((c.get('median_ns_spread') or [None, None])[1])}]",
                         fmt(c.get("mean_ns")), fmt(c.get("p99_ns")), fmt(c.get("wakes")),
                         c.get("basis") or "-"])
        parts.append("**The publisher's apply path** (`feed()` + `flush()`, ns per delta, "
                     f"{meta.get('apply_books')} books at depth {meta.get('depth')}):")
        parts.append(table(["configuration", "median ns", "mean ns", "p99 ns", "FUTEX_WAKEs",
                            "runs"], rows))
        eight = app.get("publisher, 8 readers", {})
        if eight.get("pair_ratio") is not None:
            lo, hi = eight.get("pair_ratio_spread", [None, None])
            parts.append(
                f"Inside each `apply:8` segment the 8 readers are alternately stopped (SIGSTOP: "
                f"they keep their mappings and do nothing) and running, in "
                f"{fmt(meta.get('block_s', 0.25))} s blocks: running / stopped = "
                f"**{fmt(eight['pair_ratio'])}** [{fmt(lo)}–{fmt(hi)}] (median of paired "
                f"blocks; {fmt(eight.get('stopped_median_ns'))} vs "
                f"{fmt(eight.get('running_median_ns'))} ns). Each reader woke "
                f"{fmt(eight.get('reader_wakes_per_s'))} times/s and used "
                f"{fmt(eight.get('reader_cpu_cores_each'))} of a core.")
        for label, r in data.get("apply_ratios", {}).items():
            parts.append(f"Across segments, {label}: {fmt(r.get('median_ns'))} "
                         f"[{fmt(r['median_ns_spread'][0])}–{fmt(r['median_ns_spread'][1])}] "
                         f"(median of per-round ratios).")
    cg = data.get("callgrind", {})
    if "publisher" in cg:
        parts.append(f"Instructions per delta (callgrind, {fmt(cg.get('deltas'))} deltas, 12 books, "
                     f"a flush per frame): feed_ptr + flush {fmt(cg['no publisher']['total'])} "
                     f"without a publisher, {fmt(cg['publisher']['total'])} with one "
                     f"(`sink_publish` {fmt(cg['publisher']['sink_publish'])}, `sink_commit` "
                     f"{fmt(cg['publisher']['sink_commit'])}): ×{fmt(cg.get('ratio'))}.")
    eq = data.get("equality", {})
    if eq:
        parts.append(f"**Books equal**: {eq.get('checks', 0) - eq.get('mismatches', 0)}/"
                     f"{eq.get('checks', 0)} reader checks found their view of the "
                     f"{eq.get('books')} books (levels, seq, validity, states, trust, reason) "
                     f"identical to the publisher's.")
    targets = data.get("targets", [])
    if targets:
        parts.append(targets_table(targets))
    return "\n\n".join(parts)
