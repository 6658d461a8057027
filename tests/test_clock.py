"""The controller's clock: its deviation from Home Assistant's, not a state every second."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from homeassistant.const import EntityCategory
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.resol_vbus import sensor
from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator
from custom_components.resol_vbus.vbus.specification import DATETIME_EPOCH

from .common import UNIQUE_ID, entry_data, mx_controller, take_over_live_data, wait_for_packets

CLOCK = f"{UNIQUE_ID}_00_0010_7E11_10_0100_092_4_0"
DEVIATION = f"{CLOCK}_deviation"


def controller_value(moment: datetime) -> int:
    """The System date field's value for the controller's local wall time ``moment``."""
    return int((moment.replace(tzinfo=None) - DATETIME_EPOCH.replace(tzinfo=None)).total_seconds())


async def test_the_clock_shows_its_deviation_in_whole_minutes(
    hass: HomeAssistant, init_integration: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = er.async_get(hass)
    assert registry.async_get_entity_id("sensor", DOMAIN, CLOCK) is None  # no timestamp
    entity_id = registry.async_get_entity_id("sensor", DOMAIN, DEVIATION)
    assert entity_id is not None
    item = registry.async_get(entity_id)
    assert item is not None
    assert item.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert item.entity_category is EntityCategory.DIAGNOSTIC
    registry.async_update_entity(entity_id, disabled_by=None)
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await wait_for_packets(init_integration.runtime_data, 2)
    await take_over_live_data(init_integration.runtime_data)
    ha_time = datetime(2026, 12, 4, 21, 0, tzinfo=sensor.dt_util.get_default_time_zone())
    monkeypatch.setattr(sensor, "now", lambda: ha_time)
    events: list[Event] = async_capture_events(hass, "state_changed")
    # Ahead by (seconds): each is a new packet value; the state moves a full minute only.
    for ahead in (10, 59, 61, 70, 5, -120, -100):
        value = controller_value(ha_time + timedelta(seconds=ahead))
        init_integration.runtime_data._handle_frame(mx_controller({"092_4_0": value}))
    await hass.async_block_till_done()
    shown = [e.data["new_state"].state for e in events if e.data["entity_id"] == entity_id]
    assert shown == ["0", "1", "-2"]
    state = hass.states.get(entity_id)
    assert state.attributes["unit_of_measurement"] == "min"
    assert state.attributes["device_class"] == "duration"
    assert state.attributes["friendly_name"] == "DeltaSol MX [Controller] System date deviation"


async def test_the_old_clock_timestamp_goes_when_an_entry_is_migrated(
    hass: HomeAssistant, emulator: Emulator, fast_reconnect: None
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UNIQUE_ID,
        data=entry_data(emulator.port),
        version=1,
        minor_version=1,
    )
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    old = registry.async_get_or_create("sensor", DOMAIN, CLOCK, config_entry=entry)
    kept = registry.async_get_or_create(
        "sensor", DOMAIN, f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0", config_entry=entry
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for_packets(entry.runtime_data, 2)
    await hass.async_block_till_done()
    assert registry.async_get(old.entity_id) is None
    assert registry.async_get(kept.entity_id) is not None
    assert registry.async_get_entity_id("sensor", DOMAIN, DEVIATION) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
