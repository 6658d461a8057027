"""Selects: controller values with a list of options (relay manual mode, operating modes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.select import SelectEntity

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
    """Add a select for every catalog value with options."""
    async_setup_values(entry, async_add_entities, VBusValueSelect, ValueKind.SELECT)


class VBusValueSelect(VBusValueEntity, SelectEntity):
    """A controller value chosen from options."""

    def __init__(self, values: ValuesCoordinator, value: CatalogValue) -> None:
        """Offer the value's options (translated through their keys)."""
        super().__init__(values, value)
        self._attr_options = [option.key for option in value.options]

    @property
    def current_option(self) -> str | None:
        """The option the controller reports."""
        raw = self.raw
        option = None if raw is None else self.catalog_value.option_for_raw(raw)
        return None if option is None else option.key

    async def async_select_option(self, option: str) -> None:
        """Write the option's raw value."""
        await self._async_write(self._to_raw(option))
