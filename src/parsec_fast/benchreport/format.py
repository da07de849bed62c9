"""Markdown pieces every suite's section uses: number formatting, tables, the targets table,
and generic tables for a suite without a layout of its own."""
from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt", "table", "targets_table", "target_mark", "load_avg", "find_tables", "generic_md"]


def fmt(v: Any) -> str:
    """A cell: thousands separators, 3 significant digits below 10, ``-`` for None / NaN."""
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


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; non-string cells go through :func:`fmt`."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |"
            for r in rows]
    return "\n".join(out)


def target_mark(target: dict[str, Any]) -> str:
    """A target's verdict: ``met``, ``MISSED`` or ``n/a`` (not measured in this run)."""
    met = target.get("met")
    return "met" if met else "MISSED" if met is False else "n/a"


def targets_table(targets: list[dict[str, Any]], *, with_config: bool = False) -> str:
    """A suite's targets (``what``, ``value``, ``met``; ``config`` too with ``with_config``)."""
    header = (["configuration"] if with_config else []) + ["target", "measured", "met"]
    rows = [([t["config"]] if with_config else []) + [t["what"], t["value"],
            {"met": "yes", "MISSED": "**no**", "n/a": "n/a"}[target_mark(t)]] for t in targets]
    return table(header, rows)


def load_avg(meta: dict[str, Any], key: str) -> str:
    """The first (1-minute) load average stored under ``meta[key]``, or ``?``."""
    values = meta.get(key) or []
    return f"{values[0]:.2f}" if values else "?"


def find_tables(data: Any, path: str = "") -> list[tuple[str, dict[str, dict[str, Any]]]]:
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
            found.extend(find_tables(value, f"{path}.{key}" if path else key))
    return found


def generic_md(data: dict[str, Any]) -> str:
    """Up to six generic tables of a suite without a layout of its own."""
    parts = []
    for path, rows in find_tables(data)[:6]:
        metrics: list[str] = []
        for r in rows.values():
            metrics += [m for m, v in r.items() if m not in metrics and m != "label"
                        and isinstance(v, (int, float, bool, str)) and len(str(v)) < 40]
        metrics = metrics[:7]
        parts.append(f"`{path}`:")
        parts.append(table(["name"] + metrics,
                           [[f"`{k}`"] + [r.get(m) for m in metrics] for k, r in rows.items()]))
    return "\n\n".join(parts) or "(no tabular figures in this suite's JSON)"
