"""Numbers: controller set points and differences."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.number import NumberDeviceClass, NumberEntity, NumberMode

from .entity import VBusValueEntity, async_setup_values
from .vbus.catalog import ValueKind

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import ValuesCoordinator, VBusConfigEntry
    from .vbus.catalog import CatalogValue

# Not limited here: the parameterization engine queues every write for the controller's next bus
# offer and merges those to one value, so that a slider's steps become one write; a limit of 1
# would make them wait for each other and become a write each.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a number for every numeric catalog value."""
    async_setup_values(entry, async_add_entities, VBusValueNumber, ValueKind.NUMBER)


class VBusValueNumber(VBusValueEntity, NumberEntity):
    """A numeric controller value with its limits and step."""

    def __init__(self, values: ValuesCoordinator, value: CatalogValue) -> None:
        """Take limits, step and unit from the catalog."""
        super().__init__(values, value)
        if value.minimum is not None:
            self._attr_native_min_value = value.minimum
        if value.maximum is not None:
            self._attr_native_max_value = value.maximum
        self._attr_native_step = value.step or 1
        self._attr_native_unit_of_measurement = value.unit
        if value.device_class:
            self._attr_device_class = NumberDeviceClass(value.device_class)
        # A box, not a slider: the controller keeps its settings in flash memory, and a slider
        # writes at every step it is dragged or nudged through.
        self._attr_mode = NumberMode.BOX

    @property
    def native_value(self) -> float | None:
        """The value in display units."""
        raw = self.raw
        shown = None if raw is None else self.catalog_value.to_display(raw)
        return shown if isinstance(shown, (int, float)) else None

    async def async_set_native_value(self, value: float) -> None:
        """Write the value (validated against the catalog's limits and step)."""
        await self._async_write(self._to_raw(value))
