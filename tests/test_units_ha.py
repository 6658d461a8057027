"""The library's unit table agrees with Home Assistant's sensor rules (both lanes)."""

from __future__ import annotations

from homeassistant.components.sensor import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    SensorDeviceClass,
    SensorStateClass,
)

from custom_components.resol_vbus.vbus.specification import Specification
from custom_components.resol_vbus.vbus.units import UNIT_MAPPINGS, field_semantics


def test_every_device_class_accepts_its_unit() -> None:
    for code, mapping in UNIT_MAPPINGS.items():
        if mapping.device_class is None:
            continue
        device_class = SensorDeviceClass(mapping.device_class)
        assert mapping.unit in DEVICE_CLASS_UNITS[device_class], (code, mapping)


def test_every_field_has_a_valid_state_class() -> None:
    spec = Specification.bundled()
    checked = 0
    for index in range(spec.packet_template_count):
        for field in spec.packet_template_at(index).fields:
            semantics = field_semantics(field)
            if semantics.state_class is not None:
                state_class = SensorStateClass(semantics.state_class)
                if semantics.device_class is not None:
                    allowed = DEVICE_CLASS_STATE_CLASSES[SensorDeviceClass(semantics.device_class)]
                    assert state_class in allowed, (field.field_id, field.name(), semantics)
            checked += 1
    assert checked == 6157
