"""Binary sensors: single-bit fields such as relay states and error flags; the connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined, unused-ignore]
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import VBusCoordinator
from .entity import VBusEntity, async_setup_fields, hub_device_info
from .vbus.units import flag_class, is_flag

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import PacketState, VBusConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connection sensor, and binary sensors for every packet kind seen, now and later."""
    async_add_entities([VBusConnectionSensor(entry.runtime_data)])
    async_setup_fields(entry, async_add_entities, VBusBinarySensor, is_flag)


class VBusConnectionSensor(CoordinatorEntity[VBusCoordinator], BinarySensorEntity):
    """Whether the connection to the adapter is up: on the adapter's device.

    It reports the connection, so it stays available when the connection goes (then it is off)
    while every entity that depends on the connection becomes unavailable.
    """

    _attr_has_entity_name = True
    _attr_translation_key = "connection"
    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: VBusCoordinator) -> None:
        """Create the sensor for the entry of ``coordinator``."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.unique_prefix}_connection"
        self._attr_device_info = hub_device_info(coordinator)

    @property
    def available(self) -> bool:
        """Always: a lost connection is this sensor's "off", not its absence."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether the connection is up."""
        return self.coordinator.connected


class VBusBinarySensor(VBusEntity, BinarySensorEntity):
    """A flag: on when its bit is set."""

    def __init__(self, coordinator: VBusCoordinator, packet: PacketState, index: int) -> None:
        """Describe the flag from the field's name."""
        super().__init__(coordinator, packet, index)
        device_class = flag_class(self.field)
        if device_class:
            self._attr_device_class = BinarySensorDeviceClass(device_class)
        if device_class == BinarySensorDeviceClass.PROBLEM:
            self._attr_entity_category = EntityCategory.DIAGNOSTIC

    def state_value(self) -> object:
        """Whether the flag is on decides whether a state write is needed."""
        return self.is_on

    @property
    def is_on(self) -> bool | None:
        """Whether the bit is set (unknown when the field is absent)."""
        value = self.value
        return None if value is None else value != 0
