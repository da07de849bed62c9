"""Shared pytest configuration.

Hypothesis profiles: ``ci`` (the default) and ``heavy`` (long local runs), selected with the
environment variable ``HYPOTHESIS_PROFILE``, e.g. ``HYPOTHESIS_PROFILE=heavy pytest
tests/test_book_equivalence.py``. Tests that pin their own ``@settings`` keep them.
"""
from __future__ import annotations

import os

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
