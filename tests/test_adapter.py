"""The adapter's device: its connection sensor, its web page, its link to the controllers."""

from __future__ import annotations

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.const import CONF_PRODUCT, CONF_SERIAL, DOMAIN
from custom_components.resol_vbus.vbus.emulator import Emulator, Personality, StaticSource
from custom_components.resol_vbus.vbus.session import SessionState

from .common import UNIQUE_ID, device, entry_data, mx_controller, wait_for_packets, wait_for_state
from .vbus_lib.faultproxy import Failure, FaultProxy, Step

CONNECTION = f"{UNIQUE_ID}_connection"
TEMPERATURE = f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0"


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


async def setup(hass: HomeAssistant, port: int, **data: object) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="DeltaSol MX via DL2",
        unique_id=UNIQUE_ID,
        data=entry_data(port, **data),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for_packets(entry.runtime_data, 2)
    await hass.async_block_till_done()
    return entry


async def test_the_connection_sensor_is_the_adapters_diagnostic(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    hub = device(hass, init_integration.entry_id, (DOMAIN, UNIQUE_ID))
    sensor = er.async_get(hass).async_get(entity_id(hass, "binary_sensor", CONNECTION))

    assert sensor.device_id == hub.id
    assert sensor.original_device_class == "connectivity"
    assert sensor.entity_category is er.EntityCategory.DIAGNOSTIC
    assert sensor.translation_key == "connection"
    assert sensor.disabled_by is None
    state = hass.states.get(sensor.entity_id)
    assert state.state == STATE_ON
    assert state.attributes["friendly_name"] == f"{hub.name} Connection"


async def test_the_connection_sensor_turns_off_when_the_connection_drops_and_on_when_back(
    hass: HomeAssistant, emulator: Emulator, fast_reconnect: None
) -> None:
    """A lost connection shows at the adapter: off, never unavailable, and on again after."""
    async with FaultProxy(emulator.port) as proxy:
        entry = await setup(hass, proxy.port)
        connection = entity_id(hass, "binary_sensor", CONNECTION)
        temperature = entity_id(hass, "sensor", TEMPERATURE)
        session = entry.runtime_data.session
        assert hass.states.get(connection).state == STATE_ON

        proxy.arm(Step.GREETING, Failure.RESET, times=10**6)  # the logger stays unreachable
        proxy.reset_all()
        await wait_for_state(session, SessionState.DISCONNECTED)
        await hass.async_block_till_done()
        assert hass.states.get(connection).state == STATE_OFF
        assert hass.states.get(temperature).state == STATE_UNAVAILABLE

        proxy.arm(Step.GREETING, Failure.RESET, times=0)
        await wait_for_state(session, SessionState.CONNECTED)
        await hass.async_block_till_done()
        assert hass.states.get(connection).state == STATE_ON
        assert hass.states.get(temperature).state == "1.9"
        assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("data", "url"),
    [
        ({}, "http://127.0.0.1/"),  # a DL2 (its device information said so)
        ({CONF_PRODUCT: "DL3", CONF_SERIAL: "001E66E7A003"}, "http://127.0.0.1/"),
        ({CONF_PRODUCT: "KM2", CONF_SERIAL: "A840411679E7"}, "http://127.0.0.1/"),
        # A VBus/LAN adapter (or whatever did not tell what it is) may serve no web page.
        ({CONF_PRODUCT: None, CONF_SERIAL: None}, None),
        ({CONF_PRODUCT: "VBus/LAN"}, None),
    ],
)
async def test_the_adapter_links_its_web_page_where_it_has_one(
    hass: HomeAssistant, emulator: Emulator, data: dict[str, object], url: str | None
) -> None:
    entry = await setup(hass, emulator.port, **data)

    hub = device(hass, entry.entry_id, (DOMAIN, UNIQUE_ID))
    assert hub.configuration_url == url
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_device_behind_vbusnet_links_vbusnet(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    async with Emulator(
        personality=Personality.VBUSNET,
        via_tags=("d01234567890",),
        channels={1: StaticSource(mx_controller())},
    ) as emulator:
        data = entry_data(
            emulator.port,
            connection="vbusnet",
            via_tag="d01234567890",
            channel=1,
            serial=None,
            product=None,
            firmware=None,
        )
        entry = MockConfigEntry(domain=DOMAIN, unique_id="vbusnet-24bdc0d6c7c37448-1", data=data)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

        hub = device(hass, entry.entry_id, (DOMAIN, "vbusnet-24bdc0d6c7c37448-1"))
        assert hub.configuration_url == "https://www.vbus.net/"
        assert hub.connections == set()
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_adapter_device_and_the_controllers_link_to_it(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Built as one DeviceInfo each (Home Assistant 2026.11 made it a dataclass)."""
    hub = device(hass, init_integration.entry_id, (DOMAIN, UNIQUE_ID))
    assert (hub.manufacturer, hub.model, hub.serial_number, hub.sw_version) == (
        "RESOL",
        "DL2",
        "001E66E7A002",
        "2.2.0",
    )
    assert hub.connections == {(dr.CONNECTION_NETWORK_MAC, "00:1e:66:e7:a0:02")}
    assert hub.configuration_url == "http://127.0.0.1/"
    assert hub.via_device_id is None
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), init_integration.entry_id)
    assert sorted((d.model_id, d.via_device_id) for d in devices if d.id != hub.id) == [
        ("0x7E11", hub.id),
        ("0x7E31", hub.id),
    ]


async def test_a_device_info_dataclass_goes_to_the_registry_whole(
    hass: HomeAssistant, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home Assistant 2026.11 takes a DeviceInfo as one (its dict layer is to be deprecated)."""
    received: list[dr.DeviceInfo] = []

    def get_or_create_from_info(
        registry: dr.DeviceRegistry, *, config_entry_id: str, device_info: dr.DeviceInfo
    ) -> dr.DeviceEntry:
        received.append(device_info)
        return registry.async_get_or_create(config_entry_id=config_entry_id, **device_info)

    monkeypatch.setattr(
        dr.DeviceRegistry, "async_get_or_create_from_info", get_or_create_from_info, raising=False
    )
    entry = await setup(hass, emulator.port)

    assert [info["identifiers"] for info in received] == [{(DOMAIN, UNIQUE_ID)}]
    hub = device(hass, entry.entry_id, (DOMAIN, UNIQUE_ID))
    assert (hub.model, hub.configuration_url) == ("DL2", "http://127.0.0.1/")
    assert await hass.config_entries.async_unload(entry.entry_id)
