"""Units: the library's table agrees with Home Assistant's rules; what users see (both lanes)."""

from __future__ import annotations

import pytest
from homeassistant.components.sensor import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.vbus.specification import Specification
from custom_components.resol_vbus.vbus.units import UNIT_MAPPINGS, field_semantics

from .common import UNIQUE_ID

#: The heat quantity of the MX's HQM #1 (5 020 902 Wh in the test packet).
HEAT = f"{UNIQUE_ID}_00_0010_7E31_10_0100_000_4_0"


def test_every_device_class_accepts_its_unit() -> None:
    for code, mapping in UNIT_MAPPINGS.items():
        if mapping.device_class is None:
            continue
        device_class = SensorDeviceClass(mapping.device_class)
        assert mapping.unit in DEVICE_CLASS_UNITS[device_class], (code, mapping)


def test_every_field_has_a_valid_state_class() -> None:
    spec = Specification.bundled()
    checked = 0
    for index in range(spec.packet_template_count):
        for field in spec.packet_template_at(index).fields:
            semantics = field_semantics(field)
            if semantics.state_class is not None:
                state_class = SensorStateClass(semantics.state_class)
                if semantics.device_class is not None:
                    allowed = DEVICE_CLASS_STATE_CLASSES[SensorDeviceClass(semantics.device_class)]
                    assert state_class in allowed, (field.field_id, field.name(), semantics)
            checked += 1
    assert checked == 6157


def heat_state(hass: HomeAssistant) -> State:
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, HEAT)
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state


async def test_heat_quantities_show_in_kwh(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """7,531,439 Wh was hard to read: a new sensor shows kWh, to the Wh the meter counts."""
    heat = heat_state(hass)

    assert heat.state == "5020.902"
    assert heat.attributes["unit_of_measurement"] == "kWh"
    assert heat.attributes["device_class"] == "energy"
    assert heat.attributes["state_class"] == "total_increasing"
    assert er.async_get(hass).async_get(heat.entity_id).options["sensor.private"] == {
        "suggested_unit_of_measurement": "kWh"
    }


@pytest.fixture
def registered_before(hass: HomeAssistant) -> None:
    """The heat quantity sensor as an earlier version of the integration registered it."""
    er.async_get(hass).async_get_or_create("sensor", DOMAIN, HEAT)


async def test_heat_quantities_registered_before_keep_wh(
    hass: HomeAssistant, registered_before: None, init_integration: MockConfigEntry
) -> None:
    """A suggested unit applies only to new sensors: existing ones, and their statistics, stay."""
    heat = heat_state(hass)

    assert heat.state == "5020902"
    assert heat.attributes["unit_of_measurement"] == "Wh"
