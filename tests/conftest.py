"""Shared fixtures for the RESOL VBus tests.

The tests that need Home Assistant get their fixtures and hooks from
:mod:`tests.homeassistant_fixtures`, loaded only where Home Assistant's test harness is
installed: the library lane (scripts/test-lib) runs tests/vbus_lib and tests/reliability
against the aiovbus wheel in an environment without Home Assistant.

Property tests (hypothesis) run the same examples on every run by default: the suite passes or
fails the same way on a fresh clone, whatever the machine. Runs that look for new failures
explore new examples each time: ``VBUS_FUZZ_SCALE`` above 1 (tests/reliability/conftest.py), or
``VBUS_HYPOTHESIS=explore`` at the default scale. A failure found that way is kept as a
regression test (tests/reliability/test_model_parameters.py keeps the engine's).
"""

from __future__ import annotations

import importlib.util
import os

from hypothesis import settings

settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore")
_EXPLORE = os.environ.get("VBUS_HYPOTHESIS") == "explore" or os.environ.get(
    "VBUS_FUZZ_SCALE", "1"
) not in ("", "1")
settings.load_profile("explore" if _EXPLORE else "fixed")

if importlib.util.find_spec("pytest_homeassistant_custom_component") is not None:
    from tests.homeassistant_fixtures import *  # noqa: F403
