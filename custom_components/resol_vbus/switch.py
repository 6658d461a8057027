"""Switches: controller functions that are on or off (holiday functions and the like)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import STATE_OFF, STATE_ON

from .entity import VBusValueEntity, async_setup_values
from .vbus.catalog import ValueKind

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import VBusConfigEntry

# Not limited here: the parameterization engine queues every write for the controller's next bus
# offer and merges those to one value, so that a slider's steps become one write; a limit of 1
# would make them wait for each other and become a write each.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a switch for every on/off catalog value."""
    async_setup_values(entry, async_add_entities, VBusValueSwitch, ValueKind.SWITCH)


class VBusValueSwitch(VBusValueEntity, SwitchEntity):
    """An on/off controller function."""

    @property
    def is_on(self) -> bool | None:
        """Whether the function is on."""
        raw = self.raw
        return None if raw is None else bool(self.catalog_value.to_display(raw))

    def pending_value(self, raw: int) -> object:
        """``on`` or ``off``, as the state shows it."""
        return STATE_ON if self.catalog_value.to_display(raw) else STATE_OFF

    async def async_turn_on(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Switch the function on."""
        await self._async_write(self._to_raw(True))  # noqa: FBT003

    async def async_turn_off(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Switch the function off."""
        await self._async_write(self._to_raw(False))  # noqa: FBT003
