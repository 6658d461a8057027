"""Binary sensors: single-bit fields such as relay states and error flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined, unused-ignore]
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback

from .entity import VBusEntity
from .vbus.units import flag_class, is_flag

if TYPE_CHECKING:
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import PacketState, VBusConfigEntry, VBusCoordinator

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add binary sensors for every packet kind seen, now and when new ones appear."""
    coordinator = entry.runtime_data

    @callback
    def add_packet(packet: PacketState) -> None:
        async_add_entities(
            VBusBinarySensor(coordinator, packet, index)
            for index, spec_field in enumerate(packet.decoder.fields)
            if is_flag(spec_field)
        )

    entry.async_on_unload(coordinator.async_add_packet_callback(add_packet))


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
