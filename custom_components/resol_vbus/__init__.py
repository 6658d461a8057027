"""The RESOL VBus integration: solar and heating controllers on the RESOL VBus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import Platform
from homeassistant.core import callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .const import CONF_LANGUAGE_RETIRED, DOMAIN
from .coordinator import ValuesManager, VBusConfigEntry, VBusCoordinator
from .entity import device_identifier, hub_device_info, hub_identifier
from .services import async_setup_services
from .vbus.specification import Specification
from .vbus.units import is_clock

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
    coordinator.hub_device_id = _async_register_hub(hass, coordinator).id
    coordinator.values = ValuesManager(hass, entry)
    await coordinator.values.async_setup()
    entry.async_on_unload(coordinator.values.async_shutdown)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


@callback
def _async_register_hub(hass: HomeAssistant, coordinator: VBusCoordinator) -> DeviceEntry:
    """Create (or update) the adapter's device, which the controllers' devices link to."""
    registry = dr.async_get(hass)
    info = hub_device_info(coordinator)
    entry_id = coordinator.config_entry.entry_id
    if hasattr(registry, "async_get_or_create_from_info"):  # a DeviceInfo dataclass (2026.11)
        hub: DeviceEntry = registry.async_get_or_create_from_info(
            config_entry_id=entry_id, device_info=info
        )
        return hub
    # Before 2026.11 a DeviceInfo is a plain dict of async_get_or_create's keyword arguments.
    return registry.async_get_or_create(config_entry_id=entry_id, **info)


async def async_migrate_entry(hass: HomeAssistant, entry: VBusConfigEntry) -> bool:
    """Bring an entry of an older version up to date (entity and unique IDs do not change).

    1.1 → 1.2: the option "language of entity names" is gone: names are translations now, in
    Home Assistant's language. A controller's clock is no longer a timestamp sensor (a state a
    second) but its deviation from Home Assistant's clock, a new entity: the old one goes.
    """
    if entry.version > 1:  # made by a newer version of the integration
        return False
    if entry.minor_version < 2:  # noqa: PLR2004 - the minor version this step reaches
        options = {k: v for k, v in entry.options.items() if k != CONF_LANGUAGE_RETIRED}
        spec = await hass.async_add_executor_job(Specification.bundled)
        registry = er.async_get(hass)
        for item in er.async_entries_for_config_entry(registry, entry.entry_id):
            if _is_clock_timestamp(spec, entry, item.unique_id):
                registry.async_remove(item.entity_id)
        hass.config_entries.async_update_entry(entry, options=options, minor_version=2)
    return True


def _is_clock_timestamp(spec: Specification, entry: VBusConfigEntry, unique_id: str) -> bool:
    """Whether ``unique_id`` is a clock field entity's (``<prefix>_<packet id>_<field id>``)."""
    prefix = f"{entry.unique_id or entry.entry_id}_"
    parts = unique_id.removeprefix(prefix).split("_")
    if not unique_id.startswith(prefix) or len(parts) < 8:  # noqa: PLR2004 - 5 + 3 parts
        return False
    try:
        destination, source, command = (int(part, 16) for part in (parts[1], parts[2], parts[4]))
    except ValueError:
        return False
    template = spec.find_template(destination, source, command)
    field_id = "_".join(parts[5:])
    return template is not None and any(
        spec_field.field_id == field_id and is_clock(spec_field) for spec_field in template.fields
    )


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
