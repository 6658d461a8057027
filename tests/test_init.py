"""Setting up, running and unloading the integration against the emulator over loopback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.const import DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.protocol import Packet
from custom_components.resol_vbus.vbus.session import SessionState
from custom_components.resol_vbus.vbus.specification import Specification

from .common import SERIAL, UNIQUE_ID, device, entry_data, mx_controller, mx_heat_meter


def entity_id(hass: HomeAssistant, platform: str, packet_id: str, field_id: str) -> str:
    registry = er.async_get(hass)
    found = registry.async_get_entity_id(platform, DOMAIN, f"{UNIQUE_ID}_{packet_id}_{field_id}")
    assert found is not None, (packet_id, field_id)
    return found


async def test_integration_is_found(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.domain == "resol_vbus"
    assert integration.name == "RESOL VBus"
    assert integration.config_flow is True


async def test_setup_creates_devices_and_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    assert init_integration.state is ConfigEntryState.LOADED
    hub = device(hass, init_integration.entry_id, (DOMAIN, UNIQUE_ID))
    assert hub.model == "DL2"
    assert hub.serial_number == SERIAL
    assert hub.sw_version == "2.2.0"
    assert hub.connections == {(dr.CONNECTION_NETWORK_MAC, "00:1e:66:e7:a0:02")}
    controller = device(hass, init_integration.entry_id, (DOMAIN, f"{UNIQUE_ID}_00_7E11"))
    assert controller.name == "DeltaSol MX [Controller]"
    assert controller.via_device_id == hub.id
    assert controller.connections == set()

    controller_packet = "00_0010_7E11_10_0100"
    temperature = hass.states.get(entity_id(hass, "sensor", controller_packet, "000_2_0"))
    assert temperature is not None
    assert temperature.state == "1.9"
    assert temperature.attributes["unit_of_measurement"] == "°C"
    assert temperature.attributes["device_class"] == "temperature"
    assert temperature.attributes["state_class"] == "measurement"
    assert (
        temperature.attributes["friendly_name"] == "DeltaSol MX [Controller] Temperature sensor 1"
    )
    pump = hass.states.get(entity_id(hass, "sensor", controller_packet, "076_1_0"))
    assert pump is not None
    assert pump.state == "100"
    # The controller's clock is its deviation (disabled by default: no state), not a timestamp.
    deviation = entity_id(hass, "sensor", controller_packet, "092_4_0_deviation")
    assert hass.states.get(deviation) is None
    heat = hass.states.get(entity_id(hass, "sensor", "00_0010_7E31_10_0100", "000_4_0"))
    assert heat is not None
    assert heat.state == "5020.902"  # 5 020 902 Wh, shown in kWh
    assert heat.attributes["unit_of_measurement"] == "kWh"
    assert heat.attributes["device_class"] == "energy"
    assert heat.attributes["state_class"] == "total_increasing"


async def test_no_sensor_readings_are_unknown_and_disabled(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    sensor_14 = entity_id(hass, "sensor", "00_0010_7E11_10_0100", "026_2_0")
    entry = registry.async_get(sensor_14)
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get(sensor_14) is None  # disabled entities have no state


async def test_flags_are_binary_sensors(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    flag = entity_id(hass, "binary_sensor", "00_0010_7E11_10_0100", "096_1_1")
    registry_entry = er.async_get(hass).async_get(flag)
    assert registry_entry is not None
    assert registry_entry.original_device_class == "problem"
    state = hass.states.get(flag)
    assert state is not None
    assert state.state == "off"


async def test_unreachable_device_is_not_ready(hass: HomeAssistant, socket_enabled: None) -> None:
    async with Emulator(personality=Personality.DL2) as emulator:
        port = emulator.port
    entry = MockConfigEntry(domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(port))
    entry.add_to_hass(hass)
    with pytest.MonkeyPatch.context() as patcher:
        patcher.setattr("custom_components.resol_vbus.coordinator.SETUP_TIMEOUT", 0.5)
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "Cannot connect to 127.0.0.1" in entry.reason


async def test_rejected_password_starts_reauthentication(
    hass: HomeAssistant, emulator: Emulator
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(emulator.port, password="wrong")
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_unload_and_reload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    coordinator = init_integration.runtime_data
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert coordinator.session.state is SessionState.STOPPED
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.LOADED


async def test_connection_lost_and_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.resol_vbus")
    coordinator = init_integration.runtime_data
    temperature = entity_id(hass, "sensor", "00_0010_7E11_10_0100", "000_2_0")
    states: list[str] = []
    changed = asyncio.Event()

    def on_state(state: SessionState, _reason: object) -> None:
        states.append(state)
        changed.set()

    coordinator.session.add_state_listener(on_state)
    emulator.faults.refuse_password = True  # the device comes back, but refuses us for now
    await emulator.reboot()
    while SessionState.DISCONNECTED not in states:
        changed.clear()
        await changed.wait()
    assert hass.states.get(temperature).state == STATE_UNAVAILABLE
    emulator.faults.refuse_password = False
    await coordinator.session.wait_connected()
    await hass.async_block_till_done()
    assert hass.states.get(temperature).state == "1.9"
    lost = [r for r in caplog.records if r.getMessage().startswith("Lost connection")]
    back = [r for r in caplog.records if r.getMessage().startswith("Connection to")]
    assert len(lost) == 1
    assert lost[0].levelno == logging.INFO
    assert [r.getMessage() for r in back] == ["Connection to 127.0.0.1 restored"]


async def test_new_devices_get_entities(hass: HomeAssistant, socket_enabled: None) -> None:
    source = StaticSource(mx_controller())
    async with Emulator(channels={1: source}, offer_interval=None) as emulator:
        entry = MockConfigEntry(domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(emulator.port))
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        registry = er.async_get(hass)
        heat_id = f"{UNIQUE_ID}_00_0010_7E31_10_0100_000_4_0"
        assert registry.async_get_entity_id("sensor", DOMAIN, heat_id) is None
        # An HQM packet appears later on the bus.
        entry.runtime_data._handle_frame(mx_heat_meter())
        await hass.async_block_till_done()
        found = registry.async_get_entity_id("sensor", DOMAIN, heat_id)
        assert found is not None
        assert hass.states.get(found).state == "5020.902"
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_unknown_readings_show_unknown(hass: HomeAssistant, socket_enabled: None) -> None:
    source = StaticSource(mx_controller({"000_2_0": 999.9}))
    async with Emulator(channels={1: source}, offer_interval=None) as emulator:
        entry = MockConfigEntry(domain=DOMAIN, unique_id=UNIQUE_ID, data=entry_data(emulator.port))
        entry.add_to_hass(hass)
        registry = er.async_get(hass)
        # Enabled by the user although its first reading was "no sensor".
        registry.async_get_or_create(
            "sensor", DOMAIN, f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0", disabled_by=None
        )
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        found = registry.async_get_entity_id(
            "sensor", DOMAIN, f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0"
        )
        assert hass.states.get(found).state == STATE_UNKNOWN
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_vbusnet_with_via_tag(hass: HomeAssistant, socket_enabled: None) -> None:
    source = StaticSource(mx_controller())
    async with Emulator(
        personality=Personality.VBUSNET, via_tags=("d01234567890",), channels={1: source}
    ) as emulator:
        data = entry_data(emulator.port, connection="vbusnet", via_tag="d01234567890", channel=1)
        entry = MockConfigEntry(domain=DOMAIN, unique_id="vbusnet-24bdc0d6c7c37448-1", data=data)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        registry = er.async_get(hass)
        found = registry.async_get_entity_id(
            "sensor", DOMAIN, "vbusnet-24bdc0d6c7c37448-1_01_0010_7E11_10_0100_000_2_0"
        )
        assert found is not None
        assert hass.states.get(found).state == "1.9"
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_template_packet_to_0015_is_not_a_block_packet(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The Tuxhorn BHKW sends to 0x0015 like block-type packets, but a template describes it."""
    payload = bytearray(60)
    payload[4:6] = (215).to_bytes(2, "little")  # SD3: Temperature sensor 1
    payload[52:56] = (4321).to_bytes(4, "little")  # BS: Operating hours relay 1
    init_integration.runtime_data._handle_frame(Packet(0x0015, 0x105F, 0x0100, bytes(payload)))
    await hass.async_block_till_done()

    bhkw = device(hass, init_integration.entry_id, (DOMAIN, f"{UNIQUE_ID}_00_105F"))
    assert bhkw.name == "Tuxhorn BHKW"
    registry = er.async_get(hass)
    entities = er.async_entries_for_device(registry, bhkw.id, include_disabled_entities=True)
    template = Specification.bundled().find_template(0x0015, 0x105F, 0x0100)
    assert template is not None
    assert len(template.fields) == 13
    assert sorted(e.unique_id for e in entities) == sorted(
        f"{UNIQUE_ID}_00_0015_105F_10_0100_{f.field_id}" for f in template.fields
    )
    temperature = entity_id(hass, "sensor", "00_0015_105F_10_0100", "004_2_0")
    assert hass.states.get(temperature).state == "21.5"
    hours = entity_id(hass, "sensor", "00_0015_105F_10_0100", "052_4_0")
    assert hass.states.get(hours).state == "4321"
