"""Entity behaviour: write throttling, stale packets, options, device removal, diagnostics."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from homeassistant.components.config import device_registry as config_device_registry
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.resol_vbus.const import CONF_MIN_INTERVAL, DOMAIN
from custom_components.resol_vbus.diagnostics import async_get_config_entry_diagnostics

from .common import (
    UNIQUE_ID,
    device,
    let_packets_go_stale,
    mx_controller,
    take_over_live_data,
)

if TYPE_CHECKING:
    from pytest_homeassistant_custom_component.typing import WebSocketGenerator

TEMPERATURE = f"{UNIQUE_ID}_00_0010_7E11_10_0100_000_2_0"


def temperature_entity(hass: HomeAssistant) -> str:
    found = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, TEMPERATURE)
    assert found is not None
    return found


async def test_minimum_interval_between_writes(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    hass.config_entries.async_update_entry(init_integration, options={CONF_MIN_INTERVAL: 10})
    coordinator = init_integration.runtime_data
    entity_id = temperature_entity(hass)
    seen: list[str] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: seen.append(event.data["new_state"].state),
    )
    coordinator._handle_frame(mx_controller({"000_2_0": 2.0}))
    coordinator._handle_frame(mx_controller({"000_2_0": 2.1}))  # within 10 s: deferred
    coordinator._handle_frame(mx_controller({"000_2_0": 2.2}))  # replaces the deferred value
    await hass.async_block_till_done()
    assert hass.states.get(entity_id).state == "2.0"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=11))
    await hass.async_block_till_done()
    assert hass.states.get(entity_id).state == "2.2"
    # Back and forth within the interval: nothing to write when the timer fires.
    coordinator._handle_frame(mx_controller({"000_2_0": 2.3}))
    coordinator._handle_frame(mx_controller({"000_2_0": 2.2}))
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=22))
    await hass.async_block_till_done()
    assert [s for s in seen if s in ("2.0", "2.1", "2.2", "2.3")] == ["2.0", "2.2"]


async def test_stale_packets_make_their_entities_unavailable(
    hass: HomeAssistant, init_integration: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.resol_vbus")
    coordinator = init_integration.runtime_data
    clock = await take_over_live_data(coordinator)
    coordinator._handle_frame(mx_controller())
    entity_id = temperature_entity(hass)
    clock.now += 59
    coordinator._check_stale()
    assert hass.states.get(entity_id).state == "1.9"
    clock.now += 2  # 61 s without this packet
    coordinator._check_stale()
    coordinator._check_stale()
    await hass.async_block_till_done()
    assert hass.states.get(entity_id).state == STATE_UNAVAILABLE
    coordinator._handle_frame(mx_controller())
    await hass.async_block_till_done()
    assert hass.states.get(entity_id).state == "1.9"
    messages = [r.getMessage() for r in caplog.records if "DeltaSol MX" in r.getMessage()]
    assert messages == [
        "DeltaSol MX [Controller] (channel 0, 00_0010_7E11_10_0100) stopped sending data",
        "DeltaSol MX [HQM #1] (channel 0, 00_0010_7E31_10_0100) stopped sending data",
        "DeltaSol MX [Controller] (channel 0, 00_0010_7E11_10_0100) sends data again",
    ]


async def test_only_devices_that_are_gone_can_be_removed(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """The adapter never; a VBus device once it stopped sending; it comes back when it sends."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client(hass)
    entry_id = init_integration.entry_id

    # What the frontend sends: Home Assistant 2026.10 (one config entry per device) replaced
    # remove_config_entry with remove.
    command: dict[str, str] = (
        {"type": "config/device_registry/remove"}
        if hasattr(config_device_registry, "websocket_remove_device")
        else {"type": "config/device_registry/remove_config_entry", "config_entry_id": entry_id}
    )

    async def remove(identifier: str) -> bool:
        found = device(hass, entry_id, (DOMAIN, identifier))
        await client.send_json_auto_id({**command, "device_id": found.id})
        return (await client.receive_json())["success"]

    controller = f"{UNIQUE_ID}_00_7E11"
    assert not await remove(UNIQUE_ID)
    assert not await remove(controller)  # still sending: it would only come back
    coordinator = init_integration.runtime_data
    await take_over_live_data(coordinator)
    let_packets_go_stale(coordinator)
    assert await remove(controller)
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry_id)
    assert (DOMAIN, controller) not in {i for d in devices for i in d.identifiers}
    assert er.async_get(hass).async_get_entity_id("sensor", DOMAIN, TEMPERATURE) is None
    # It sends again: a new device with new entities.
    coordinator._handle_frame(mx_controller())
    await hass.async_block_till_done()
    assert device(hass, entry_id, (DOMAIN, controller)).name == "DeltaSol MX [Controller]"
    assert hass.states.get(temperature_entity(hass)).state == "1.9"


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    assert diagnostics["entry"]["data"]["password"] == "**REDACTED**"
    assert diagnostics["session"]["state"] == "connected"
    assert diagnostics["session"]["frames"] == 2  # the emulator sends one burst of two
    assert diagnostics["session"]["checksum_errors"] == 0
    assert diagnostics["specification_datecode"] == 20240922
    assert [p["id"] for p in diagnostics["packets"]] == [
        "00_0010_7E11_10_0100",
        "00_0010_7E31_10_0100",
    ]
    assert diagnostics["packets"][0]["device"] == "DeltaSol MX [Controller]"
    assert diagnostics["packets"][0]["frame_data"] == mx_controller().frame_data.hex()
    assert "vbus" not in str(diagnostics).replace("resol_vbus", "")
