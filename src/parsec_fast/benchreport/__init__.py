"""Reporting for ``parsec-fast bench``: machine description, chart, headline and RESULTS.md.

Input is the combined results (``bench/out/results.json``): ``{"meta", "suites": {name: the
suite's own JSON}, ...}``. The book, parse, e2e, memory, latency, relay and shm suites have known
layouts (each also gets a chart panel; latency's shows p50/p99/p99.9 per contender); for any
other suite the report falls back to generic tables (every ``{contender: {metric: value}}``
mapping it finds), so a suite can change its JSON without breaking the report.

One module per concern: ``machine`` (what the figures were measured on), ``figures`` (each
suite's headline rows), ``chart`` (the PNG), ``format`` (Markdown pieces), ``suites`` /
``latency`` / ``shm`` (each suite's RESULTS.md section) and ``results`` (the whole page and the
headline).
"""
from __future__ import annotations

from .chart import render_chart
from .machine import machine
from .results import headline, results_markdown

__all__ = ["machine", "render_chart", "headline", "results_markdown"]
