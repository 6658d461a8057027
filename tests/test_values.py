"""Changing controller values from Home Assistant, against the emulator's DeltaSol MX."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from custom_components.resol_vbus import async_remove_config_entry_device
from custom_components.resol_vbus.const import CONF_WRITE_LIMIT, DOMAIN
from custom_components.resol_vbus.coordinator import ValuesCoordinator
from custom_components.resol_vbus.values import operation_failed
from custom_components.resol_vbus.vbus.emulator import Emulator
from custom_components.resol_vbus.vbus.errors import VBusError
from custom_components.resol_vbus.vbus.parameters import (
    BusNotOfferedError,
    SessionAbortedError,
    ValueOutOfRangeError,
)

from .common import (
    UNIQUE_ID,
    device,
    let_packets_go_stale,
    mx_controller,
    setup_values,
    withhold_offers,
)


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
        "value": "Relay 2 manual mode",
        "limit": "1",
    }
    assert mx.controller(1).store["Relais_Regler_R2_Handbetrieb"].value == 4


async def test_switch_and_clock_button(
    hass: HomeAssistant, mx: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = await setup_values(hass, mx)
    store = mx.controller(1).store
    switches = [v for v in values.catalog.values if v.kind.value == "switch"]
    assert switches
    switch = entity(hass, SWITCH_DOMAIN, switches[0].key)
    await hass.services.async_call(
        SWITCH_DOMAIN, "turn_on", {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert hass.states.get(switch).state == "on"
    assert store[switches[0].value_id].value == switches[0].options[1].raw
    button = entity(hass, BUTTON_DOMAIN, "clock")
    writes = len(store.writes)
    # Home Assistant's local wall time at the press; the controller gets it without a zone.
    local = datetime(2026, 11, 21, 14, 30, 5, tzinfo=dt_util.get_default_time_zone())
    monkeypatch.setattr(dt_util, "now", lambda: local)
    await hass.services.async_call(BUTTON_DOMAIN, "press", {ATTR_ENTITY_ID: button}, blocking=True)
    monkeypatch.undo()
    date_time, time_of_day = values.catalog.clock_writes(local.replace(tzinfo=None))
    assert store.writes[writes:] == [
        (store[date_time[0].value_id].index, date_time[1]),
        (store[time_of_day[0].value_id].index, 14 * 60 + 30),  # minutes after midnight
    ]


async def test_communication_failure_is_a_home_assistant_error(
    hass: HomeAssistant, mx: Emulator
) -> None:
    await setup_values(hass, mx)
    relay = entity(hass, SELECT_DOMAIN, "relay_3_manual_mode")
    await withhold_offers(mx)
    with pytest.raises(HomeAssistantError) as excinfo:
        await hass.services.async_call(
            SELECT_DOMAIN, "select_option", {ATTR_ENTITY_ID: relay, "option": "on"}, blocking=True
        )
    assert excinfo.value.translation_key == "bus_not_offered"
    assert str(excinfo.value) == (
        "The controller did not hand over the VBus, so Relay 3 manual mode was neither read nor "
        "changed. A controller offers the bus about once a second unless another device (a "
        "second data logger, a service tool) is talking to it: check that, then try again"
    )


DHW = {"dhw_on_temperature", "dhw_off_temperature", "dhw_one_off_heating"}
DISINFECTION = {"thermal_disinfection_temperature", "thermal_disinfection_period"}


@pytest.mark.parametrize(
    ("function_type", "enabled", "disabled"),
    [
        # Optional function 1 is thermal disinfection (type 1): its DHW settings do nothing.
        (1, DISINFECTION, DHW),
        # ... or DHW heating (type 2): the other way round.
        (2, DHW, DISINFECTION),
    ],
)
async def test_settings_without_effect_start_disabled(
    hass: HomeAssistant, mx: Emulator, function_type: int, enabled: set[str], disabled: set[str]
) -> None:
    store = mx.controller(1).store
    store["Heizung_Wf1_Type"].value = function_type
    assert store["Heizung_Heizkreis1_Type"].value == 1  # heating circuit 1 is set up
    values = await setup_values(hass, mx)
    prefix = f"{UNIQUE_ID}_00_7E11_"
    value_entities = {
        item.unique_id.removeprefix(prefix): item.disabled_by
        for item in er.async_entries_for_config_entry(
            er.async_get(hass), values.config_entry.entry_id
        )
        if item.unique_id.startswith(prefix)
    }
    assert len(value_entities) == 37  # 38 values: the clock's date and time share one button
    assert enabled | {"heating_circuit_1_mode"} <= value_entities.keys()
    # Exactly the settings without effect are disabled, all by the integration.
    assert {key: by for key, by in value_entities.items() if by is not None} == dict.fromkeys(
        disabled, er.RegistryEntryDisabler.INTEGRATION
    )


async def test_a_removed_controller_that_sends_again_is_set_up_once_with_its_values(
    hass: HomeAssistant, mx: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = await setup_values(hass, mx)
    entry = values.config_entry
    coordinator = entry.runtime_data
    manager = coordinator.values
    # The controller stops sending for a minute, and the user removes it.
    let_packets_go_stale(coordinator)
    controller = device(hass, entry.entry_id, (DOMAIN, f"{UNIQUE_ID}_00_7E11"))
    assert await async_remove_config_entry_device(hass, entry, controller)
    assert manager.controllers == {}

    # It sends again. A platform that registers while its values are read (as at start-up, when
    # the first packet can come before the platforms are set up) sees it once, with its values.
    seen: list[dict[str, int] | None] = []
    added = asyncio.Event()

    def platform(new: ValuesCoordinator) -> None:
        seen.append(new.data)
        added.set()

    read = ValuesCoordinator.async_refresh

    async def read_while_a_platform_registers(self: ValuesCoordinator) -> None:
        remove = manager.async_add_controller_callback(platform)
        self.config_entry.async_on_unload(remove)
        await read(self)

    monkeypatch.setattr(ValuesCoordinator, "async_refresh", read_while_a_platform_registers)
    coordinator._handle_frame(mx_controller())
    async with asyncio.timeout(10):
        await added.wait()
    await hass.async_block_till_done()
    assert seen == [values.data]
    assert list(manager.controllers) == [0x7E11]
    assert manager.controllers[0x7E11] is not values


# -- settings that disappear -------------------------------------------------------------------


def missing_issue(hass: HomeAssistant, values: ValuesCoordinator) -> ir.IssueEntry | None:
    issue_id = f"values_missing_{values.config_entry.entry_id}_7E11"
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def test_a_setting_that_disappears_is_a_repair_issue_until_it_is_back(
    hass: HomeAssistant, mx: Emulator
) -> None:
    values = await setup_values(hass, mx)
    store = mx.controller(1).store
    value = values.catalog.value("Solar_Sp1_Tmax")
    assert value is not None
    number = entity(hass, NUMBER_DOMAIN, value.key)
    assert missing_issue(hass, values) is None

    gone = store.remove("Solar_Sp1_Tmax")  # a firmware update without it
    await values.async_refresh()
    await hass.async_block_till_done()
    issue = missing_issue(hass, values)
    assert issue is not None
    assert (issue.translation_key, issue.severity, issue.is_fixable) == (
        "values_missing",
        ir.IssueSeverity.WARNING,
        False,
    )
    assert issue.translation_placeholders == {
        "controller": "DeltaSol MX 2.x",
        "values": "Solar_Sp1_Tmax",
        "entry": values.config_entry.title,
    }
    assert hass.states.get(number).state == STATE_UNAVAILABLE

    store.add(gone)  # the controller knows it again (firmware back, configuration restored)
    await values.async_refresh()
    await hass.async_block_till_done()
    assert missing_issue(hass, values) is None
    assert hass.states.get(number).state == str(float(gone.value) / 10)


async def test_the_missing_settings_issue_goes_with_the_entry(
    hass: HomeAssistant, mx: Emulator
) -> None:
    values = await setup_values(hass, mx)
    mx.controller(1).store.remove("Solar_Sp1_Tmax")
    await values.async_refresh()
    assert missing_issue(hass, values) is not None

    assert await hass.config_entries.async_unload(values.config_entry.entry_id)
    await hass.async_block_till_done()

    assert missing_issue(hass, values) is None


async def test_the_missing_settings_issue_names_its_entry_where_home_assistant_takes_it(
    hass: HomeAssistant, mx: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home Assistant 2026.11 ties an issue to its config entry; older releases have no field."""
    values = await setup_values(hass, mx)
    entry_ids: list[str | None] = []
    create_issue = ir.async_create_issue

    def create_issue_with_entry(
        *args: Any, config_entry_id: str | None = None, **kwargs: Any
    ) -> None:
        entry_ids.append(config_entry_id)
        create_issue(*args, **kwargs)

    monkeypatch.setattr(ir, "async_create_issue", create_issue_with_entry)
    mx.controller(1).store.remove("Solar_Sp1_Tmax")
    await values.async_refresh()

    assert entry_ids == [values.config_entry.entry_id]
    assert missing_issue(hass, values) is not None


@pytest.mark.parametrize(
    ("error", "kind", "key"),
    [
        (ValueOutOfRangeError("2000 is above 1600"), ServiceValidationError, "invalid_value"),
        (BusNotOfferedError("no offer within 30 s"), HomeAssistantError, "bus_not_offered"),
        (SessionAbortedError("the connection was lost"), HomeAssistantError, "connection_lost"),
        (VBusError("something else"), HomeAssistantError, "write_failed"),
    ],
)
def test_a_failure_gets_the_message_that_says_what_to_do(
    error: VBusError, kind: type[HomeAssistantError], key: str
) -> None:
    """A value out of range is the user's error; others are the bus's, the unknown the fallback."""
    result = operation_failed(error, "Store maximum", "write_failed")

    assert type(result) is kind
    assert (result.translation_domain, result.translation_key) == (DOMAIN, key)
    assert result.translation_placeholders == {"value": "Store maximum", "error": str(error)}
