"""Fixtures and knobs of the reliability tests.

The default run is short. Longer runs are switched on by environment variables:

* ``VBUS_FUZZ_SCALE`` multiplies the number of examples of every property test (default 1);
* ``VBUS_SOAK_HOURS`` sets the simulated duration of the soak test (default 1; ``scripts/soak``
  runs 24).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

FUZZ_SCALE = max(1, int(os.environ.get("VBUS_FUZZ_SCALE", "1")))


def examples(count: int) -> int:
    """``count`` property-test examples, scaled by ``VBUS_FUZZ_SCALE``."""
    return count * FUZZ_SCALE


def fuzz(count: int) -> settings:
    """Hypothesis settings for ``count`` (scaled) examples, without per-example deadline.

    Function-scoped fixtures are fine here: the tests use them only to allow sockets.
    """
    return settings(
        max_examples=examples(count),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """These tests need no Home Assistant instance (overrides the suite-wide fixture)."""
