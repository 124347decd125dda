"""Fixtures shared by the tests (the exercise tests' helpers live in helpers.py)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

# The helpers of the exercise tests assert too: let pytest explain their failures.
pytest.register_assert_rewrite("helpers")


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's own name.

    The seed is fixed for a given test (a failure reproduces on every run) and
    differs from test to test (the suite does not reuse one stream of numbers).
    """
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))
