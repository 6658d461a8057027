"""A serial port in a real Home Assistant process: the emulator's pseudo-terminal as an adapter.

The emulator (a DL3 whose channel 1 repeats a DeltaSol MX system every second) also serves
channel 1 on a pseudo-terminal behind a link, as udev links a VBus/USB adapter under
``/dev/serial/by-id/``. The port is added over Home Assistant's HTTP API with the config flow's
"USB or serial adapter" step, the path typed in; serialx is what Home Assistant installed for the
manifest under its own package constraints (``scripts/demo.py requirements``). The states equal
the decoded values, relay 1's manual mode is written over the port, and when the port is
unplugged the entities become unavailable and come back by themselves once it is plugged in
again, with one log line each. Run with ``scripts/e2e``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .test_homeassistant import (
    TEMPERATURE_1,
    assert_sensor_states_equal_the_decoded_values,
    assert_the_only_entry_is_loaded,
    by_name,
    choose_relay_1_mode,
    temperature_known,
    wait_for_states,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from custom_components.resol_vbus.vbus.emulator import Emulator
    from custom_components.resol_vbus.vbus.protocol import Packet

    from .conftest import Background, RunningHass

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def link(
    background: Background, emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The emulator's channel 1 on a pseudo-terminal: the path of its link."""
    try:
        path = background.run(emulator.open_serial(tmp_path_factory.mktemp("dev") / "ttyVBUS"))
    except OSError as err:  # e.g. no devpts in a chroot (scripts/e2e gives itself one as root)
        pytest.skip(f"no pseudo-terminal: {err}")
    yield path
    background.run(emulator.close_serial())


@pytest.fixture(scope="module")
def entry(background: Background, hass: RunningHass, link: str) -> dict[str, Any]:
    """The config flow's result for the serial port (through Home Assistant's API)."""
    result = background.run(hass.api.add_serial_device(link))
    assert result is not None, "a fresh Home Assistant has the port already"
    return result


def test_the_serial_step_adds_the_port(
    background: Background, hass: RunningHass, entry: dict[str, Any]
) -> None:
    assert entry["type"] == "create_entry"
    assert entry["title"] == "DeltaSol MX via Serial port ttyVBUS"
    assert_the_only_entry_is_loaded(background, hass, entry)


def test_sensor_states_over_the_port_equal_the_decoded_values(
    background: Background,
    hass: RunningHass,
    entry: dict[str, Any],
    snapshot: tuple[Packet, ...],
) -> None:
    assert_sensor_states_equal_the_decoded_values(background, hass, snapshot)


def test_relay_manual_mode_is_written_over_the_port(
    background: Background, hass: RunningHass, entry: dict[str, Any], emulator: Emulator
) -> None:
    choose_relay_1_mode(background, hass, emulator, "min", 1)


def test_the_entry_recovers_when_the_port_is_unplugged_and_plugged_in(
    background: Background,
    hass: RunningHass,
    entry: dict[str, Any],
    emulator: Emulator,
    link: str,
) -> None:
    wait_for_states(background, hass, temperature_known)
    background.run(emulator.close_serial())
    states = wait_for_states(
        background,
        hass,
        lambda states: by_name(states)[TEMPERATURE_1]["state"] == "unavailable",
    )
    assert by_name(states)[TEMPERATURE_1]["state"] == "unavailable"
    background.run(emulator.open_serial(link))
    wait_for_states(background, hass, temperature_known)
    log = hass.log
    assert log.count(f"Lost connection to {link}") == 1
    assert log.count(f"Connection to {link} restored") == 1
