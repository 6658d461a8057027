"""The RESOL VBus integration: solar and heating controllers on the RESOL VBus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import Platform
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN
from .coordinator import VBusConfigEntry, VBusCoordinator
from .entity import device_identifier, hub_device_info, hub_identifier
from .services import async_setup_services
from .values import ValuesManager
from .vbus.specification import Specification

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.device_registry import DeviceEntry
    from homeassistant.helpers.typing import ConfigType

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:  # noqa: ARG001
    """Register the service actions."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: VBusConfigEntry) -> bool:
    """Connect to the device and set up its entities."""
    spec = await hass.async_add_executor_job(Specification.bundled)
    coordinator = VBusCoordinator(hass, entry, spec)
    await coordinator.async_start()
    entry.runtime_data = coordinator
    hub = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(coordinator)
    )
    coordinator.hub_device_id = hub.id
    coordinator.values = ValuesManager(hass, entry)
    await coordinator.values.async_setup()
    entry.async_on_unload(coordinator.values.async_shutdown)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: VBusConfigEntry) -> bool:
    """Unload the entities; the coordinator's shutdown closes the connection."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    device: DeviceEntry,
) -> bool:
    """Let the user remove VBus devices that are gone; the adapter itself stays.

    A device that still sends is refused (its entities would only come back). The packets of a
    removed device are forgotten, so that if it sends again it is set up like a new one.
    """
    coordinator = entry.runtime_data
    if hub_identifier(coordinator) in device.identifiers:
        return False
    keys = [
        key
        for key in coordinator.packets
        if device_identifier(coordinator, key) in device.identifiers
    ]
    if any(coordinator.packets[key].available for key in keys):
        return False
    for key in keys:
        del coordinator.packets[key]
        await coordinator.values.async_forget(key.source)
    return True
