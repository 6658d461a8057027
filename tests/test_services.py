"""The get_value / set_value service actions against the emulator's DeltaSol MX."""

from __future__ import annotations

import logging

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from custom_components.resol_vbus.const import CONF_ALLOW_ANY_VALUE, CONF_WRITE_LIMIT, DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator

from .common import UNIQUE_ID, device, setup_values, withhold_offers


async def call(hass: HomeAssistant, service: str, **data: object) -> dict:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def test_get_and_set_by_value_id(hass: HomeAssistant, mx: Emulator) -> None:
    values = await setup_values(hass, mx)
    entry_id = values.config_entry.entry_id
    assert await call(
        hass, "get_value", config_entry_id=entry_id, value_id="Relais_Regler_R1_Handbetrieb"
    ) == {"index": 1977, "value": 2, "scaled": "auto", "changeset": 0x2734DABC}
    assert await call(
        hass, "set_value", config_entry_id=entry_id, value_id="Solar_Sp1_Tmax", value=700
    ) == {"index": 3591, "value": 700, "scaled": 70.0, "changeset": 0x2734DABC}
    assert mx.controller(1).store["Solar_Sp1_Tmax"].value == 700


async def test_device_target_and_index(hass: HomeAssistant, mx: Emulator) -> None:
    values = await setup_values(hass, mx)
    controller = device(hass, values.config_entry.entry_id, (DOMAIN, f"{UNIQUE_ID}_00_7E11"))
    result = await call(hass, "get_value", device_id=controller.id, value_index=3591)
    assert result["value"] == mx.controller(1).store["Solar_Sp1_Tmax"].value
    assert result["scaled"] is None  # by index the catalog entry is not known


async def test_writes_outside_the_catalog_need_the_option(
    hass: HomeAssistant, mx: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    values = await setup_values(hass, mx)
    entry = values.config_entry
    with pytest.raises(ServiceValidationError) as excinfo:
        await call(hass, "set_value", config_entry_id=entry.entry_id, value_index=56, value=0)
    assert excinfo.value.translation_key == "value_not_in_catalog"
    hass.config_entries.async_update_entry(
        entry, options={CONF_ALLOW_ANY_VALUE: True, CONF_WRITE_LIMIT: 1}
    )
    caplog.set_level(logging.INFO, logger="custom_components.resol_vbus")
    result = await call(hass, "set_value", config_entry_id=entry.entry_id, value_index=56, value=0)
    assert result["value"] == 0
    assert mx.controller(1).store.read(56) == 0
    assert "Changed value index 56 of 0x7E11 from 1 to 0" in caplog.text
    # The same value again writes nothing; another one within the minute is refused.
    await call(hass, "set_value", config_entry_id=entry.entry_id, value_index=56, value=0)
    with pytest.raises(ServiceValidationError) as excinfo:
        await call(hass, "set_value", config_entry_id=entry.entry_id, value_index=56, value=1)
    assert excinfo.value.translation_key == "write_rate_limited"
    assert mx.controller(1).store.writes.count((56, 0)) == 1


async def test_validation_errors(hass: HomeAssistant, mx: Emulator) -> None:
    values = await setup_values(hass, mx)
    entry_id = values.config_entry.entry_id
    cases = [
        (
            {"value_id": "Solar_Sp1_Tmax", "value": 5000, "config_entry_id": entry_id},
            "invalid_value",
        ),
        ({"value_id": "Solar_Sp1_Tmax", "value": 1}, "target_required"),
        ({"value_id": "Solar_Sp1_Tmax", "value": 1, "config_entry_id": "nope"}, "entry_not_found"),
        ({"value_id": "Solar_Sp1_Tmax", "value": 1, "device_id": "nope"}, "device_not_found"),
        ({"value": 1, "config_entry_id": entry_id}, "value_required"),
    ]
    for data, key in cases:
        with pytest.raises(ServiceValidationError) as excinfo:
            await call(hass, "set_value", **data)
        assert excinfo.value.translation_key == key, data
    await hass.config_entries.async_unload(entry_id)
    with pytest.raises(ServiceValidationError) as excinfo:
        await call(hass, "get_value", config_entry_id=entry_id, value_index=1)
    assert excinfo.value.translation_key == "entry_not_loaded"


@pytest.mark.parametrize(
    ("target", "key", "message"),
    [
        (
            {"value_index": 4000},
            "value_rejected",
            (
                "The controller refused index 4000: its firmware or configuration does not allow "
                "reading or changing it"
            ),
        ),
        (
            {"value_id": "Kein_solcher_Wert"},
            "value_unknown",
            "The controller does not know Kein_solcher_Wert: its firmware has no such setting",
        ),
    ],
)
async def test_failed_reads_say_what_happened(
    hass: HomeAssistant, mx: Emulator, target: dict, key: str, message: str
) -> None:
    values = await setup_values(hass, mx)
    with pytest.raises(HomeAssistantError) as excinfo:
        await call(hass, "get_value", config_entry_id=values.config_entry.entry_id, **target)
    assert excinfo.value.translation_key == key
    assert str(excinfo.value) == message


async def test_setting_the_current_value_reads_it_back_or_says_why_not(
    hass: HomeAssistant, mx: Emulator
) -> None:
    values = await setup_values(hass, mx)
    entry_id = values.config_entry.entry_id
    store = mx.controller(1).store
    current = store["Solar_Sp1_Tmax"].value
    await withhold_offers(mx)  # the read-back cannot take the bus
    with pytest.raises(HomeAssistantError) as excinfo:
        await call(
            hass, "set_value", config_entry_id=entry_id, value_id="Solar_Sp1_Tmax", value=current
        )
    assert excinfo.value.translation_key == "bus_not_offered"
    assert excinfo.value.translation_placeholders["value"] == "Store 1 maximum temperature"
    assert store.writes == []
