"""The relay suite's part of the benchmark report (``bench/bench_relay.py``'s JSON): its table
for ``bench/RESULTS.md`` and its rows for the chart. Used by :mod:`parsec_fast.benchreport`."""
from __future__ import annotations

from typing import Any

__all__ = ["relay_markdown", "relay_rows"]

_LABELS = {
    "direct": "parsec_fast.Client on the WebSocket",
    "nats-live": "server -> relay -> nats-server -> consumer, all running at once",
    "nats-drain": "consumer alone, the relay's stream waiting in nats-server (consumer capacity)",
}


def _n(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**NO**"
    if isinstance(v, float) and abs(v) >= 1e6:
        return f"{v / 1e6:.2f} M"
    return f"{v:,.{digits}f}" if isinstance(v, (int, float)) else str(v)


def _us(v: Any) -> str:
    return "-" if v is None else f"{v:.2f} µs"


def relay_rows(data: dict[str, Any]) -> list[tuple[str, float]]:
    """(contender, deltas/s) of the throughput runs, fastest first."""
    rows = [(f"relay {k}", float(v["deltas_per_s"])) for k, v in data.get("throughput", {}).items()
            if isinstance(v, dict) and "deltas_per_s" in v]
    return sorted(rows, key=lambda r: -r[1])


def relay_markdown(data: dict[str, Any]) -> str:
    """The relay suite's section body."""
    meta = data.get("meta", {})
    parts = [f"{meta.get('books')} books at depth {meta.get('depth')}, blasts of "
             f"{_n(meta.get('deltas'))} deltas × {meta.get('repeats')} (median); clients pinned "
             f"to CPU {meta.get('client_cpu')}, the local server, the relay and nats-server to "
             f"CPU {meta.get('back_cpu')}."]
    rows = ["| contender | deltas/s (wall) | deltas per client CPU-s | frames per NATS message "
            "| relay CPU per frame | books valid | what |", "|---|---|---|---|---|---|---|"]
    for name, r in data.get("throughput", {}).items():
        if "error" in r:
            rows.append(f"| `{name}` | error | - | - | - | - | {r['error'][:60]} |")
            continue
        rows.append(f"| `{name}` | {_n(r.get('deltas_per_s'))} | {_n(r.get('deltas_per_cpu_s'))} "
                    f"| {_n(r.get('frames_per_message'), 1)} "
                    f"| {_us(r.get('relay_us_per_frame'))} | {_n(r.get('books_valid'))} "
                    f"| {_LABELS.get(name, '')} |")
    parts.append("\n".join(rows))
    lat = data.get("latency", {})
    if lat and "error" not in lat:
        parts.append(
            f"Latency, {lat.get('books')} books at {_n(lat.get('deltas_per_s'))} deltas/s "
            f"({_n(lat.get('deltas_joined'))} deltas seen by both): the consumer applied each delta "
            f"**{_n(lat.get('added_p50_us'))} µs** after the direct WebSocket client at the median "
            f"(p90 {_n(lat.get('added_p90_us'))}, p99 {_n(lat.get('added_p99_us'))} µs). Of that, "
            f"the relay's own book applied it {_n(lat.get('relay_minus_direct_p50_us'))} µs after "
            f"the direct client (p50) and the consumer {_n(lat.get('consumer_minus_relay_p50_us'))}"
            f" µs after the relay (publish, nats-server, the consumer's read and apply).")
    fan = data.get("fanout", {})
    if fan:
        cells = [v for k, v in fan.items() if isinstance(v, dict)]
        parts.append("\n".join(
            ["| consumers of the same 100 books | relay CPU (share of a core) | relay frames in/s "
             "| relay CPU per frame |", "|---|---|---|---|"]
            + [f"| {c['consumers']} | {c['relay_cpu_share']:.3f} | {_n(c['frames_in_per_s'])} "
               f"| {c['relay_us_per_frame']:.1f} µs |" for c in cells]))
        if fan.get("ratio") is not None:
            parts.append(f"Relay CPU with {cells[-1]['consumers']} consumers / with 1: "
                         f"**{fan['ratio']:.2f}×**.")
    targets = data.get("targets", {})
    if targets:
        parts.append("\n".join(
            ["| target | measured | met |", "|---|---|---|"]
            + [f"| {t['what']} | {_n(t['value'], 2)} | "
               f"{'n/a' if t['met'] is None else ('yes' if t['met'] else '**no**')} |"
               for t in targets.values()]))
    return "\n\n".join(parts)
