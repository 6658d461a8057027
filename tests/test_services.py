"""The get_value / set_value service actions against the emulator's DeltaSol MX."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import selector

from custom_components.resol_vbus.const import CONF_ALLOW_ANY_VALUE, CONF_WRITE_LIMIT, DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator, StoredValue
from custom_components.resol_vbus.vbus.valueid import value_id_hash

from .common import UNIQUE_ID, device, setup_values, withhold_offers

SERVICES_YAML = Path(__file__).parents[1] / "custom_components" / DOMAIN / "services.yaml"


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


def _offered_devices(hass: HomeAssistant, entry_id: str, selector: dict) -> set[str]:
    """The devices of ``entry_id`` a device ``selector`` lists, as the frontend filters them."""
    devices = {d.id for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry_id)}
    rules = selector.get("entity")
    if rules is None:
        return devices
    return {
        entity.device_id
        for entity in er.async_get(hass).entities.values()
        if entity.device_id in devices
        and any(
            entity.platform == rule["integration"] and entity.domain in rule["domain"]
            for rule in rules
        )
    }


async def test_the_action_offers_controllers_only(hass: HomeAssistant, mx_system: Emulator) -> None:
    values = await setup_values(hass, mx_system)
    entry_id = values.config_entry.entry_id
    controller = device(hass, entry_id, (DOMAIN, f"{UNIQUE_ID}_00_7E11"))
    # A device of the entry like the controller, but without settings.
    heat_meter = device(hass, entry_id, (DOMAIN, f"{UNIQUE_ID}_00_7E31"))
    assert heat_meter.id in _offered_devices(hass, entry_id, {})  # without the entity filter
    described = yaml.safe_load(SERVICES_YAML.read_text())
    for service in ("get_value", "set_value"):
        field = described[service]["fields"]["device_id"]
        selector.validate_selector(field["selector"])  # as Home Assistant loads services.yaml
        device_selector = field["selector"]["device"]
        assert device_selector["integration"] == DOMAIN
        offered = _offered_devices(hass, entry_id, device_selector)
        assert offered == {controller.id}, service


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
            "value_id_unknown",
            (
                "The controller's value list has no value Kein_solcher_Wert. Check the spelling: "
                "value IDs are case-sensitive, e.g. Relais_Regler_R1_Handbetrieb (a value-ID "
                "hash must be the hash of such a value ID)"
            ),
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


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        (
            {"value_id": "Solar_Sp1_Tmax", "value": 650.5},
            "value_not_integer",
            (
                "The value to write must be a whole number, the raw value as the controller "
                "stores it (e.g. 650 for 65.0 °C), not 650.5"
            ),
        ),
        (
            {"value_id": "AutoSommerWinterzeit", "value": True},
            "value_not_integer",
            (
                "The value to write must be a whole number, the raw value as the controller "
                "stores it (e.g. 650 for 65.0 °C), not True"
            ),
        ),
        (
            {"value_id": "Solar_Sp1_Tmax", "value": 10**5000},
            "field_out_of_range",
            "value must be between -2147483648 and 2147483647, not 1.000000E+5000",
        ),
        (
            {"value_id": "Solar_Sp1_Tmax", "value": "9" * 5000},
            "field_out_of_range",
            f"value must be between -2147483648 and 2147483647, not {'9' * 59}…",
        ),
        (
            {"value_id": "Solar_Sp1_Tmax", "value": float("nan")},
            "value_not_integer",
            (
                "The value to write must be a whole number, the raw value as the controller "
                "stores it (e.g. 650 for 65.0 °C), not nan"
            ),
        ),
        (
            {"value_id": "", "value": 1},
            "invalid_value_id",
            (
                "'' is not a value ID. Value IDs consist of the letters A–Z and a–z, digits and "
                "underscores, e.g. Relais_Regler_R1_Handbetrieb: copy it from the controller's "
                "value list"
            ),
        ),
        (
            {"value_id": "Relais_Regler_R1_Handbetrieb", "value_index": 1977, "value": 1},
            "value_ambiguous",
            "Give only one of value_id, value_index: each of them names the value on its own",
        ),
        (
            {"value_index": 0, "value": 1},
            "field_out_of_range",
            "value_index must be between 1 and 65535, not 0",
        ),
        (
            {"value_index": 1977, "controller": "0x7E11", "value": 1},
            "field_not_integer",
            "controller must be a whole number, not 0x7E11",
        ),
        (
            {"value_index": 1977, "controller": 0x7E99, "value": 1},
            "controller_unknown",
            (
                "No device with the VBus address 32409 (0x7E99) has sent data on this connection "
                "yet. Check the controller address (e.g. 32273 for 0x7E11), or leave it out to use "
                "the controller found on the bus"
            ),
        ),
        (
            {"value_index": 1977, "value": 1, "entity_id": "number.store_1"},
            "unknown_field",
            (
                "This action does not know entity_id. Its fields are config_entry_id, device_id, "
                "value_id, value_id_hash, value_index, controller, value; remove or correct the "
                "others"
            ),
        ),
        ({"value_index": 1977}, "value_to_write_required", None),
    ],
)
async def test_invalid_input_is_refused_before_the_bus_and_says_what_to_do(
    hass: HomeAssistant, mx: Emulator, data: dict, key: str, message: str | None
) -> None:
    values = await setup_values(hass, mx, **{CONF_ALLOW_ANY_VALUE: True})
    controller = mx.controller(1)
    received = controller.received_total
    with pytest.raises(ServiceValidationError) as excinfo:
        await call(hass, "set_value", config_entry_id=values.config_entry.entry_id, **data)
    assert excinfo.value.translation_key == key
    if message is not None:
        assert str(excinfo.value) == message
    assert controller.received_total == received
    assert controller.store.writes == []


async def test_a_typo_is_unknown_to_the_controller_not_outside_the_catalog(
    hass: HomeAssistant, mx: Emulator
) -> None:
    values = await setup_values(hass, mx)
    entry = values.config_entry
    store = mx.controller(1).store
    store.add(StoredValue(20000, 7, "Zusatz_Testwert", value_id_hash("Zusatz_Testwert")))
    with pytest.raises(ServiceValidationError) as excinfo:
        await call(
            hass, "set_value", config_entry_id=entry.entry_id, value_id="Zusatz_Testwrt", value=1
        )
    assert excinfo.value.translation_key == "value_id_unknown"
    # Known to the controller, not to the catalog: that needs the option.
    with pytest.raises(ServiceValidationError) as excinfo:
        await call(
            hass, "set_value", config_entry_id=entry.entry_id, value_id="Zusatz_Testwert", value=1
        )
    assert excinfo.value.translation_key == "value_not_in_catalog"
    assert str(excinfo.value) == (
        "Zusatz_Testwert is not in the integration's catalog. To write it anyway, enable "
        '"Allow writing any value" in the integration\'s options'
    )
    hass.config_entries.async_update_entry(entry, options={CONF_ALLOW_ANY_VALUE: True})
    result = await call(
        hass, "set_value", config_entry_id=entry.entry_id, value_id="Zusatz_Testwert", value=1
    )
    assert result["value"] == 1
    assert store.writes == [(20000, 1)]


async def test_a_write_by_index_shows_in_the_entity_and_is_not_skipped_later(
    hass: HomeAssistant, mx: Emulator
) -> None:
    values = await setup_values(hass, mx, **{CONF_ALLOW_ANY_VALUE: True})
    entry_id = values.config_entry.entry_id
    store = mx.controller(1).store
    number = er.async_get(hass).async_get_entity_id(
        "number", DOMAIN, f"{UNIQUE_ID}_00_7E11_store_1_max_temperature"
    )
    assert number is not None
    assert hass.states.get(number).state == "60.0"
    await call(hass, "set_value", config_entry_id=entry_id, value_index=3591, value=700)
    assert hass.states.get(number).state == "70.0"
    # The value it had before: a write, not skipped as "already set".
    await call(hass, "set_value", config_entry_id=entry_id, value_id="Solar_Sp1_Tmax", value=600)
    assert store.writes == [(3591, 700), (3591, 600)]
    assert hass.states.get(number).state == "60.0"
