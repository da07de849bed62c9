"""Exit codes of ``parsec-fast``, and the one exception a command raises to use one."""
from __future__ import annotations

import signal
from typing import Final

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_CONNECT", "EXIT_AUTH",
           "EXIT_NOT_A_RECORDING", "EXIT_DAMAGED_RECORDING", "EXIT_TORN_RECORDING",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED", "EXIT_CODES_HELP", "CliError",
           "exit_code_for_signal"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONNECT: Final = 3
EXIT_AUTH: Final = 4
#: ``replay``/``record --append``: the file is not a recording, or cannot be read.
EXIT_NOT_A_RECORDING: Final = 5
#: ``replay``: records were lost inside the file (skipped); every valid record was replayed.
EXIT_DAMAGED_RECORDING: Final = 6
#: ``replay``: the file ends with a torn (incomplete) record, as a crash mid-write leaves it;
#: every complete record was replayed.
EXIT_TORN_RECORDING: Final = 7
#: Stopped by Ctrl-C (SIGINT) or SIGTERM: 128 + the signal's number, the shell's convention.
EXIT_INTERRUPTED: Final = 128 + signal.SIGINT    # 130
EXIT_TERMINATED: Final = 128 + signal.SIGTERM    # 143

#: The epilog of every ``--help``.
EXIT_CODES_HELP: Final = (
    "exit codes: 0 ok, 1 other error, 2 bad arguments, 3 cannot connect,\n"
    "  4 authentication failed, 5 not a recording (or unreadable),\n"
    "  6 damaged recording (records lost; the valid ones replayed),\n"
    "  7 recording ends with a torn record (every complete one replayed),\n"
    "  130 Ctrl-C (SIGINT), 143 SIGTERM")


def exit_code_for_signal(signum: int) -> int:
    """128 + ``signum`` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)


class CliError(Exception):
    """An expected failure: printed as one line, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        #: The exit code.
        self.code: int = code
