"""Fixtures and hooks of the tests that run in Home Assistant's test harness.

tests/conftest.py brings them in where the harness is installed; the library lane
(scripts/test-lib) runs the library's tests without Home Assistant, and so without these.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Iterator
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from serialx import SerialPortInfo

from custom_components.resol_vbus import config_flow
from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.protocol import Packet
from custom_components.resol_vbus.vbus.session import Backoff, ConnectionConfig

from .common import UNIQUE_ID, entry_data, mx_controller, mx_heat_meter, wait_for_packets


class _Complaints(logging.Handler):
    """What Home Assistant logs about the integration's use of its API during one test.

    Its frame helper only logs the use of a deprecated API (a year or so before the API goes
    away), and its core only logs misuse such as removing a listener that already ran. Each such
    message fails the test, so the latest lane notices a deprecation in the release that makes it.
    """

    LOGGERS = ("homeassistant.core", "homeassistant.helpers.frame")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in self.LOGGERS and DOMAIN in (message := record.getMessage()):
            self.messages.append(message)


COMPLAINTS = pytest.StashKey[_Complaints]()


# Hooks, not a fixture: Home Assistant logs some of these while the hass fixture is torn down,
# after every fixture of this file has ended.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Collect Home Assistant's complaints from the start of the test's setup."""
    item.stash[COMPLAINTS] = complaints = _Complaints()
    logging.getLogger().addHandler(complaints)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Fail the test if Home Assistant complained at any point until the end of its teardown."""
    complaints = item.stash[COMPLAINTS]
    try:
        result = yield
    finally:
        logging.getLogger().removeHandler(complaints)
    assert complaints.messages == []
    return result


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load integrations from custom_components/ in every test."""


@pytest.fixture
def fast_reconnect() -> Iterator[None]:
    """Reconnect after milliseconds, not seconds (the library tests the backoff itself)."""
    with patch(
        "custom_components.resol_vbus.vbus.session.Backoff",
        return_value=Backoff(initial=0.01, maximum=0.02),
    ):
        yield


#: The deadline of each handshake step in tests where a device falls silent (10 s for real):
#: short, so that they end soon, but long enough for a healthy reply on a loaded machine.
SHORT_REPLY = 1.5


@pytest.fixture
def short_replies() -> Iterator[None]:
    """Every connection of the integration waits :data:`SHORT_REPLY` seconds for each reply."""
    with patch(
        "custom_components.resol_vbus.coordinator.ConnectionConfig",
        functools.partial(ConnectionConfig, reply_timeout=SHORT_REPLY),
    ):
        yield


#: How often the serial tests' controllers resend their packets. A serial port has no moment of
#: attaching at which a client gets the current packets (a TCP client does): they must come
#: again, as a real controller's do every second or so.
SERIAL_RESEND = 0.05


def _dl2(
    *packets: Packet, interval: float | None = None, offer_interval: float | None = None
) -> Emulator:
    """A DL2 whose channel 1 carries ``packets`` (once, or every ``interval`` seconds)."""
    return Emulator(
        personality=Personality.DL2,
        channels={1: StaticSource(*packets, interval=interval)},
        offer_interval=offer_interval,
    )


@pytest.fixture
async def emulator(socket_enabled: None) -> AsyncIterator[Emulator]:
    """A DL2 with a DeltaSol MX behind it that sends one controller and one HQM packet."""
    async with _dl2(mx_controller(), mx_heat_meter()) as device:
        yield device


@pytest.fixture
async def mx(socket_enabled: None) -> AsyncIterator[Emulator]:
    """A DL2 with a DeltaSol MX 2.x that offers the bus every 50 ms."""
    async with _dl2(mx_controller(), offer_interval=0.05) as device:
        yield device


@pytest.fixture
async def mx_system(socket_enabled: None) -> AsyncIterator[Emulator]:
    """The ``mx`` with its heat quantity meter: a controller device and one without settings."""
    async with _dl2(mx_controller(), mx_heat_meter(), offer_interval=0.05) as device:
        yield device


@pytest.fixture
async def serial_emulator(socket_enabled: None) -> AsyncIterator[Emulator]:
    """The ``emulator``'s packets, resent every :data:`SERIAL_RESEND` seconds."""
    async with _dl2(mx_controller(), mx_heat_meter(), interval=SERIAL_RESEND) as device:
        yield device


@pytest.fixture
async def serial_mx(socket_enabled: None) -> AsyncIterator[Emulator]:
    """The ``mx``, its packet resent every :data:`SERIAL_RESEND` seconds."""
    async with _dl2(mx_controller(), interval=SERIAL_RESEND, offer_interval=0.05) as device:
        yield device


@pytest.fixture
def no_serial_ports() -> Iterator[list[SerialPortInfo]]:
    """The ports the system lists: none unless a test adds some (a pty is never listed)."""
    ports: list[SerialPortInfo] = []
    with patch.object(config_flow, "list_serial_ports", lambda: list(ports)):
        yield ports


@pytest.fixture
def config_entry(emulator: Emulator) -> MockConfigEntry:
    """A config entry for the emulator."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via DL2",
        unique_id=UNIQUE_ID,
        data=entry_data(emulator.port),
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, config_entry: MockConfigEntry, fast_reconnect: None
) -> MockConfigEntry:
    """The integration set up against the emulator, its first packets processed."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_for_packets(config_entry.runtime_data, 2)
    await hass.async_block_till_done()
    return config_entry
