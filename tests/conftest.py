"""Shared pytest configuration.

Hypothesis profiles: ``ci`` (the default) and ``heavy`` (long local runs), selected with the
environment variable ``HYPOTHESIS_PROFILE``, e.g. ``HYPOTHESIS_PROFILE=heavy pytest
tests/test_book_equivalence.py``. Tests that pin their own ``@settings`` keep them.

``PARSEC_FAST_EXPECT_INSTALLED=1`` (set by ``.ci/run`` and cibuildwheel for the run against an
installed sdist or wheel) stops the session at its start unless ``parsec_fast`` is imported from
the interpreter's site-packages, i.e. not from a source checkout's ``src/`` (nor an editable
install pointing there).

``--soak MINUTES`` runs ``tests/test_soak.py`` (server and client under random faults and floods,
RSS and book correctness reported); without it that test is skipped.
"""
from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=300,
    stateful_step_count=50,
    deadline=None,  # shared CI machines have noisy timings
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "heavy",
    max_examples=5000,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", type=float, default=0.0, metavar="MINUTES",
                     help="run the soak test for MINUTES (off by default)")


def _installed_location_problem() -> str | None:
    """Why the imported parsec_fast is not an installed package, or None if it is."""
    import parsec_fast
    import parsec_fast._book

    package = Path(parsec_fast.__file__).resolve().parent
    site_dirs = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    if not any(package.is_relative_to(d) for d in site_dirs):
        return (f"parsec_fast was imported from {package}, not from site-packages "
                f"({', '.join(sorted(map(str, site_dirs)))}): these tests would not test the "
                f"installed package (run them from a directory outside the source tree, in an "
                f"environment where parsec_fast is installed without -e)")
    compiled = Path(parsec_fast._book.__file__).resolve()
    if compiled.parent != package:
        return f"parsec_fast._book was imported from {compiled}, outside the package {package}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("PARSEC_FAST_EXPECT_INSTALLED", "") in ("", "0"):
        return
    problem = _installed_location_problem()
    if problem is not None:
        pytest.exit(f"PARSEC_FAST_EXPECT_INSTALLED is set, but {problem}",
                    returncode=pytest.ExitCode.USAGE_ERROR)
