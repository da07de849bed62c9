"""``parsec-fast``: the command-line tool.

Commands (``parsec-fast COMMAND --help`` for each), one module each:

* ``demo``   (:mod:`.demo`) local server in-process + the engine + a live view, faults injected;
* ``watch``  (:mod:`.watch`) the same view against any server (the real service by default);
* ``serve``  (:mod:`.serve`) the local Parsec-compatible server as a process;
* ``record`` (:mod:`.record`) the raw frames of a session to a file; ``replay`` (:mod:`.replay`)
  replays one;
* ``bench``  (:mod:`.bench`) the benchmark suites, their JSON, the chart, RESULTS.md.
* ``relay``  (:mod:`.relay`) one Parsec connection republished on NATS for consumers on any
  host (``Client("nats://HOST:4222")``).

Shared pieces: :mod:`.connect` (the connect step: progress lines, one-line failures),
:mod:`.monitor` and :mod:`.view` (the live view), :mod:`.signals` (Ctrl-C / SIGTERM),
:mod:`.exits` (exit codes), :mod:`.arguments` (the parser), :mod:`.entry` (``main``).

Exit codes: 0 ok, 1 other error, 2 bad arguments, 3 cannot connect, 4 authentication failed,
5 not a recording (or unreadable), 6 damaged recording (records lost; the valid ones replayed),
7 recording ends with a torn record (every complete one replayed), 130 Ctrl-C (SIGINT),
143 SIGTERM. A stop signal always ends cleanly: the client and the recording are closed and the
summary, where there is one, is printed.
"""
from __future__ import annotations

from .entry import main
from .exits import (EXIT_AUTH, EXIT_CONNECT, EXIT_DAMAGED_RECORDING, EXIT_ERROR,
                    EXIT_INTERRUPTED, EXIT_NOT_A_RECORDING, EXIT_OK, EXIT_TERMINATED,
                    EXIT_TORN_RECORDING, EXIT_USAGE, CliError)

__all__ = ["main", "CliError", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_CONNECT",
           "EXIT_AUTH", "EXIT_NOT_A_RECORDING", "EXIT_DAMAGED_RECORDING", "EXIT_TORN_RECORDING",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED"]
