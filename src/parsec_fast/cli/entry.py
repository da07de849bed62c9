"""``main``: parse the arguments, run the command, turn every outcome into an exit code."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from ..errors import AuthenticationError, ParsecConnectionError
from .arguments import build_parser
from .connect import connect_error
from .exits import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, CliError
from .signals import Interrupted, raise_interrupted

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``parsec-fast`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    args.argv = argv
    library_log = logging.getLogger("parsec_fast")
    saved_level = library_log.level
    if not os.environ.get("PARSEC_FAST_DEBUG"):
        # The view and the summary report what the library logs as warnings. Restored on the
        # way out: main() is also called in-process (tests, embedding).
        library_log.setLevel(logging.ERROR)
    # SIGTERM interrupts like Ctrl-C wherever a command does not handle it itself.
    try:
        saved_term = signal.signal(signal.SIGTERM, raise_interrupted)
    except ValueError:  # not the main thread
        saved_term = None
    try:
        return _dispatch(args)
    finally:
        library_log.setLevel(saved_level)
        if saved_term is not None:
            signal.signal(signal.SIGTERM, saved_term)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the chosen command; expected failures become one line and an exit code."""
    def fail(message: str, code: int) -> int:
        print(f"parsec-fast {args.command}: error: {message}", file=sys.stderr)
        return code

    try:
        if args.is_async:
            from ..client import run

            return int(run(args.func(args)))
        return int(args.func(args))
    except CliError as exc:
        return fail(str(exc), exc.code)
    except (AuthenticationError, ParsecConnectionError) as exc:  # after the first connection
        error = connect_error(exc)
        return fail(str(error), error.code)
    except Interrupted as exc:
        print(f"parsec-fast {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"parsec-fast {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # unexpected: one line, and the type for a bug report
        if os.environ.get("PARSEC_FAST_DEBUG"):
            raise
        return fail(f"{type(exc).__name__}: {exc}", EXIT_ERROR)
