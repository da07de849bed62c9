"""A local Parsec-compatible WebSocket server for demos, tests and benchmarks.

``async with LocalServer(ServerConfig(...)) as srv: srv.url`` runs it in-process;
:func:`serve_forever` runs it from the CLI. See ``../shared/PROTOCOL.md`` for the protocol.

Module map: ``app`` (LocalServer: assembly, listening socket, tasks) · ``connection`` (one client,
its limits) · ``control`` (selector validation, per-connection allowances) · ``registry``
(connections, subscription index) · ``status`` (book/feed state) · ``stream`` (live fan-out) ·
``fault_target`` / ``faults`` · ``throughput`` (blast) · ``simulator`` · ``recorder`` ·
``frames`` · ``wallet`` · ``context`` (what a connection sees of the server) · ``config``.
"""
from __future__ import annotations

from .app import LocalServer, run_server, serve_forever
from .config import ServerConfig
from .connection import Connection
from .faults import FAULT_NAMES, Faults, FaultSpec, parse_fault_spec
from .recorder import ConnectionRecord, ExpectedBook, Recorder, expected_books
from .simulator import MarketSpec, Simulator, make_markets
from .subscription import Subscription
from .throughput import BlastResult, ws_text_frame

__all__ = ["LocalServer", "ServerConfig", "run_server", "serve_forever", "Connection",
           "Subscription", "Faults", "FaultSpec", "FAULT_NAMES", "parse_fault_spec", "Recorder",
           "ConnectionRecord", "ExpectedBook", "expected_books", "MarketSpec", "Simulator",
           "make_markets", "BlastResult", "ws_text_frame"]
