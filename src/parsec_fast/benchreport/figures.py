"""The headline figures of each suite's JSON, for the chart and the headline: (name, value)
rows, best first."""
from __future__ import annotations

from typing import Any

__all__ = ["book_rows", "e2e_rows", "parse_rows", "latency_cell", "relay_rows"]


def book_rows(data: dict[str, Any], depth: str = "50") -> list[tuple[str, float]]:
    """(contender, median ns/delta) at one depth, fastest first."""
    table = data.get("apply", {}).get(depth, {})
    rows = [(k, v["median_ns"]) for k, v in table.items() if isinstance(v, dict) and "median_ns" in v]
    return sorted(rows, key=lambda r: r[1])


def e2e_rows(data: dict[str, Any]) -> list[tuple[str, float]]:
    """(contender, deltas/s), fastest first; the byte counter is left out (it is the sender)."""
    rows = [(k, v["deltas_per_s"]) for k, v in data.get("throughput", {}).items()
            if isinstance(v, dict) and "deltas_per_s" in v and k != "count-bytes"]
    return sorted(rows, key=lambda r: -r[1])


def parse_rows(data: dict[str, Any], frame_set: str = "delta, 1 change") -> list[tuple[str, float]]:
    """(contender, median ns/frame) for one frame set of the parse suite, fastest first."""
    sets = data.get("sets", {})
    results = sets.get(frame_set, {}).get("results", {}) if isinstance(sets, dict) else {}
    rows = [(k, v["median_ns"]) for k, v in results.items()
            if isinstance(v, dict) and isinstance(v.get("median_ns"), (int, float))]
    return sorted(rows, key=lambda r: r[1])


def latency_cell(data: dict[str, Any], prefer: str = "20000/s, 1 market") -> tuple[str, dict[str, Any]] | None:
    """The latency suite's cell to chart: ``prefer`` if present, else the first one."""
    cells = data.get("cells", {}) if isinstance(data, dict) else {}
    if not cells:
        return None
    key = prefer if prefer in cells else next(iter(cells))
    return key, cells[key]


def relay_rows(data: dict[str, Any]) -> list[tuple[str, float]]:
    """The relay suite's (contender, deltas/s) rows; ``parsec_fast.relay.report`` reads them."""
    from ..relay import report  # imported when needed: the relay package is an optional part
    return report.relay_rows(data) if isinstance(data, dict) else []
