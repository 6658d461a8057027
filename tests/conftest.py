"""Shared fixtures for the RESOL VBus tests.

The tests that need Home Assistant get their fixtures and hooks from
:mod:`tests.homeassistant_fixtures`, loaded only where Home Assistant's test harness is
installed: the library lane (scripts/test-lib) runs tests/vbus_lib and tests/reliability
against the aiovbus wheel in an environment without Home Assistant.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("pytest_homeassistant_custom_component") is not None:
    from tests.homeassistant_fixtures import *  # noqa: F403
