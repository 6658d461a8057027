"""Buttons: set the controller clock from Home Assistant's time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from homeassistant.util import dt as dt_util

from .entity import controller_device_info
from .vbus.catalog import ValueKind

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import ValuesCoordinator, VBusConfigEntry

# Not limited here: the parameterization engine queues every write for the controller's next bus
# offer and merges those to one value, so that a slider's steps become one write; a limit of 1
# would make them wait for each other and become a write each.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a clock button for every controller whose clock can be set over VBus."""

    @callback
    def add_controller(values: ValuesCoordinator) -> None:
        if any(value.kind is ValueKind.CLOCK for value in values.catalog.values):
            async_add_entities([VBusClockButton(values)])

    manager = entry.runtime_data.values
    entry.async_on_unload(manager.async_add_controller_callback(add_controller))


class VBusClockButton(CoordinatorEntity["ValuesCoordinator"], ButtonEntity):
    """Sets the controller's clock to Home Assistant's local time."""

    _attr_has_entity_name = True
    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "set_clock"

    def __init__(self, values: ValuesCoordinator) -> None:
        """Create the button for the controller ``values`` manages."""
        super().__init__(values)
        coordinator = values.config_entry.runtime_data
        self._attr_unique_id = (
            f"{coordinator.unique_prefix}_{values.key.channel:02X}_{values.controller:04X}_clock"
        )
        self._attr_device_info = controller_device_info(coordinator, values.key)

    @property
    def available(self) -> bool:
        """Connected, and the controller's values were read in this connection."""
        return super().available and self.coordinator.current

    async def async_press(self) -> None:
        """Write date and time, then the time of day (the controller's local wall time)."""
        now = dt_util.now().replace(tzinfo=None)
        for value, raw in self.coordinator.catalog.clock_writes(now):
            await self.coordinator.async_write(value, raw)
