"""Sensors: every decoded VBus field that is not a single-bit flag.

A field with the controller's running clock is not shown as a timestamp (its state would change
every second, a recorder row each, telling nothing) but as the clock's deviation from Home
Assistant's, in minutes: it changes only when the clock drifts by another minute or is set.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory, UnitOfEnergy, UnitOfTime
from homeassistant.util import dt as dt_util

from . import names
from .entity import VBusEntity, async_setup_fields
from .vbus.specification import DATETIME_EPOCH, FieldType
from .vbus.units import (
    enabled_by_default,
    field_semantics,
    is_clock,
    is_diagnostic,
    is_flag,
    is_sentinel,
)

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import PacketState, VBusConfigEntry, VBusCoordinator

PARALLEL_UPDATES = 0
#: Home Assistant's clock, as the clock deviation reads it (tests replace it).
now = dt_util.now


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add sensors for every packet kind seen, now and when new ones appear."""
    async_setup_fields(entry, async_add_entities, _sensor, lambda field: not is_flag(field))


def _sensor(coordinator: VBusCoordinator, packet: PacketState, index: int) -> VBusEntity:
    if is_clock(packet.decoder.fields[index]):
        return VBusClockDeviation(coordinator, packet, index)
    return VBusSensor(coordinator, packet, index)


def controller_time(value: float) -> datetime:
    """A date-time field's value: the controller's local wall time (seconds since 2001)."""
    local = DATETIME_EPOCH.replace(tzinfo=None) + timedelta(seconds=int(value))
    return local.replace(tzinfo=dt_util.get_default_time_zone())


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
            if (
                semantics.device_class == SensorDeviceClass.ENERGY
                and semantics.unit == UnitOfEnergy.WATT_HOUR
            ):
                # Heat quantities run into millions of Wh: shown in kWh. Home Assistant applies a
                # suggested unit when it first registers a sensor; sensors registered before keep
                # Wh (and their statistics), unless the user changes the unit.
                self._attr_suggested_unit_of_measurement = UnitOfEnergy.KILO_WATT_HOUR
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
            return controller_time(value)  # in local time; the 2001 epoch is its own
        if spec_field.type in (FieldType.TIME, FieldType.WEEKTIME):
            return spec_field.format(value)
        if spec_field.precision > 0:
            return round(value, spec_field.precision)
        return value


class VBusClockDeviation(VBusEntity, SensorEntity):
    """How far the controller's clock is from Home Assistant's, in whole minutes.

    It changes only when the deviation moves a full minute away from the one shown, so the
    packets' delay and the seconds ticking by do not make it flicker between two minutes.
    Disabled by default, diagnostic.
    """

    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MINUTES
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_entity_registry_enabled_default = False
    _attr_suggested_display_precision = 0

    def __init__(self, coordinator: VBusCoordinator, packet: PacketState, index: int) -> None:
        """The deviation of the clock in field ``index`` of ``packet``."""
        super().__init__(coordinator, packet, index)
        self._attr_unique_id = f"{self._attr_unique_id}{names.DEVIATION_SUFFIX}"
        if self._attr_translation_key is not None:
            self._attr_translation_key += names.DEVIATION_SUFFIX
        elif self._attr_name:
            self._attr_name = f"{self._attr_name} deviation"
        self._minutes: int | None = None

    def state_value(self) -> object:
        """The deviation shown: it moves only by a full minute."""
        value = self.value
        if value is None or is_sentinel(self.field, value):
            self._minutes = None
            return None
        seconds = (controller_time(value) - now()).total_seconds()
        if self._minutes is None or abs(seconds - 60 * self._minutes) >= 60:  # noqa: PLR2004
            self._minutes = round(seconds / 60)
        return self._minutes

    @property
    def native_value(self) -> int | None:
        """The deviation in minutes (positive: the controller is ahead)."""
        if self._minutes is None:
            self.state_value()
        return self._minutes
