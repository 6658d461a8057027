"""Sensors: every decoded VBus field that is not a single-bit flag."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.util import dt as dt_util

from .entity import VBusEntity, async_setup_fields
from .vbus.specification import DATETIME_EPOCH, FieldType
from .vbus.units import enabled_by_default, field_semantics, is_diagnostic, is_flag, is_sentinel

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import PacketState, VBusConfigEntry, VBusCoordinator

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add sensors for every packet kind seen, now and when new ones appear."""
    async_setup_fields(
        entry, async_add_entities, VBusSensor, lambda spec_field: not is_flag(spec_field)
    )


class VBusSensor(VBusEntity, SensorEntity):
    """A measurement, counter, clock or text field."""

    def __init__(self, coordinator: VBusCoordinator, packet: PacketState, index: int) -> None:
        """Describe the sensor from the field's specification."""
        super().__init__(coordinator, packet, index)
        spec_field = self.field
        if spec_field.type == FieldType.DATETIME:
            self._attr_device_class = SensorDeviceClass.TIMESTAMP
        elif spec_field.type == FieldType.NUMBER:
            semantics = field_semantics(spec_field)
            self._attr_native_unit_of_measurement = semantics.unit
            if semantics.device_class:
                self._attr_device_class = SensorDeviceClass(semantics.device_class)
            if semantics.state_class:
                self._attr_state_class = SensorStateClass(semantics.state_class)
            self._attr_suggested_display_precision = max(spec_field.precision, 0)
        if is_diagnostic(spec_field):
            self._attr_entity_category = EntityCategory.DIAGNOSTIC
        self._attr_entity_registry_enabled_default = enabled_by_default(spec_field, self.value)

    def state_value(self) -> object:
        """The native value decides whether a state write is needed."""
        return self.native_value

    @property
    def native_value(self) -> float | int | str | datetime | None:
        """The value in Home Assistant's terms; "no sensor" readings are unknown."""
        value = self.value
        spec_field = self.field
        if value is None or is_sentinel(spec_field, value):
            return None
        if spec_field.type == FieldType.DATETIME:
            # The controller's clock runs in local time; the 2001 epoch is its own.
            local = DATETIME_EPOCH.replace(tzinfo=None) + timedelta(seconds=int(value))
            return local.replace(tzinfo=dt_util.get_default_time_zone())
        if spec_field.type in (FieldType.TIME, FieldType.WEEKTIME):
            return spec_field.format(value)
        if spec_field.precision > 0:
            return round(value, spec_field.precision)
        return value
