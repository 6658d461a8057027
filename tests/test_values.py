"""Changing controller values from Home Assistant, against the emulator's DeltaSol MX."""

from __future__ import annotations

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er

from custom_components.resol_vbus.const import CONF_WRITE_LIMIT, DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator

from .common import UNIQUE_ID, setup_values


def entity(hass: HomeAssistant, platform: str, key: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{UNIQUE_ID}_00_7E11_{key}")
    assert found is not None, key
    return found


async def test_values_are_read_and_written(hass: HomeAssistant, mx: Emulator) -> None:
    values = await setup_values(hass, mx)
    assert values.catalog.name == "DeltaSol MX 2.x"
    store = mx.controller(1).store
    relay = entity(hass, SELECT_DOMAIN, "relay_1_manual_mode")
    state = hass.states.get(relay)
    assert state.state == "auto"  # as the emulator's MX starts
    assert state.attributes["options"] == ["off", "min", "auto", "max", "on"]
    assert state.attributes["friendly_name"] == "DeltaSol MX [Controller] Relay 1 manual mode"

    await hass.services.async_call(
        SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
    )
    assert store["Relais_Regler_R1_Handbetrieb"].value == 4
    assert hass.states.get(relay).state == "on"

    # Choosing what is already set writes nothing.
    writes = len(store.writes)
    await hass.services.async_call(
        SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
    )
    assert len(store.writes) == writes


async def test_number_limits_and_clamping(hass: HomeAssistant, mx: Emulator) -> None:
    values = await setup_values(hass, mx)
    value = values.catalog.value("Solar_Sp1_Tmax")
    assert value is not None
    number = entity(hass, NUMBER_DOMAIN, value.key)
    state = hass.states.get(number)
    assert state.attributes["min"] == value.minimum
    assert state.attributes["max"] == value.maximum
    assert state.attributes["unit_of_measurement"] == "°C"
    await hass.services.async_call(
        NUMBER_DOMAIN, "set_value", {ATTR_ENTITY_ID: number, "value": 65}, blocking=True
    )
    assert mx.controller(1).store["Solar_Sp1_Tmax"].value == 650
    assert hass.states.get(number).state == "65.0"
    with pytest.raises(ServiceValidationError) as excinfo:
        await hass.services.async_call(
            NUMBER_DOMAIN, "set_value", {ATTR_ENTITY_ID: number, "value": 65.05}, blocking=True
        )
    assert excinfo.value.translation_key == "invalid_value"


async def test_write_rate_limit(hass: HomeAssistant, mx: Emulator) -> None:
    await setup_values(hass, mx, **{CONF_WRITE_LIMIT: 1})
    relay = entity(hass, SELECT_DOMAIN, "relay_2_manual_mode")
    await hass.services.async_call(
        SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
    )
    with pytest.raises(ServiceValidationError) as excinfo:
        await hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "off"}, blocking=True
        )
    assert excinfo.value.translation_key == "write_rate_limited"
    assert excinfo.value.translation_placeholders == {
        "value": "Relais_Regler_R2_Handbetrieb",
        "limit": "1",
    }
    assert mx.controller(1).store["Relais_Regler_R2_Handbetrieb"].value == 4


async def test_switch_and_clock_button(hass: HomeAssistant, mx: Emulator) -> None:
    values = await setup_values(hass, mx)
    switches = [v for v in values.catalog.values if v.kind.value == "switch"]
    assert switches
    switch = entity(hass, SWITCH_DOMAIN, switches[0].key)
    await hass.services.async_call(
        SWITCH_DOMAIN, "turn_on", {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert hass.states.get(switch).state == "on"
    assert mx.controller(1).store[switches[0].value_id].value == switches[0].options[1].raw
    button = entity(hass, BUTTON_DOMAIN, "clock")
    writes = len(mx.controller(1).store.writes)
    await hass.services.async_call(BUTTON_DOMAIN, "press", {ATTR_ENTITY_ID: button}, blocking=True)
    clock_ids = {v.value_id for v in values.catalog.values if v.kind.value == "clock"}
    written = {
        mx.controller(1).store.entry(i).value_id for i, _ in mx.controller(1).store.writes[writes:]
    }
    assert written <= clock_ids
    assert written


async def test_communication_failure_is_a_home_assistant_error(
    hass: HomeAssistant, mx: Emulator
) -> None:
    await setup_values(hass, mx)
    relay = entity(hass, SELECT_DOMAIN, "relay_3_manual_mode")
    mx.faults.never_offer_bus = True
    with pytest.raises(HomeAssistantError) as excinfo:
        await hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
        )
    assert excinfo.value.translation_key == "write_failed"
    assert "did not offer the bus within 3 s" in str(excinfo.value)
