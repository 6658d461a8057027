"""What VSF units and fields mean for a home-automation front end.

For each VSF unit code: the Home Assistant unit string and sensor device class (plain strings,
so this module stays free of Home Assistant imports; the integration's tests check every pair
against Home Assistant's own tables). :func:`field_semantics` adds the state class: counters
(heat quantities, volumes, operating hours, impulse counters) are ``total_increasing`` so that
they work in the Energy dashboard and in long-term statistics; other numbers are measurements.
The rest tells single-bit flags from numbers, "no sensor" sentinel readings from measurements,
and diagnostics from what users put on dashboards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .specification import FieldType, UnitFamily

if TYPE_CHECKING:
    from .specification import FieldSpec, Value


@dataclass(frozen=True, slots=True)
class UnitMapping:
    """Home Assistant unit of measurement and device class of a VSF unit."""

    unit: str | None
    device_class: str | None = None


UNIT_MAPPINGS: Final[dict[str, UnitMapping]] = {
    "None": UnitMapping(None),
    "SquareMeters": UnitMapping("m²"),
    "Milliamperes": UnitMapping("mA", "current"),
    "Amperes": UnitMapping("A", "current"),
    "Ohms": UnitMapping("Ω"),
    "Volts": UnitMapping("V", "voltage"),
    "Microvolts": UnitMapping("µV"),
    "WattHours": UnitMapping("Wh", "energy"),
    "KilowattHours": UnitMapping("kWh", "energy"),
    "MegawattHours": UnitMapping("MWh", "energy"),
    "Btus": UnitMapping("BTU"),
    "KiloBtus": UnitMapping("MBTU"),
    "MegaBtus": UnitMapping("MMBTU"),
    "GramsCO2Oil": UnitMapping("g"),
    "KilogramsCO2Oil": UnitMapping("kg"),
    "TonsCO2Oil": UnitMapping("t"),
    "GramsCO2Gas": UnitMapping("g"),
    "KilogramsCO2Gas": UnitMapping("kg"),
    "TonsCO2Gas": UnitMapping("t"),
    "Hertz": UnitMapping("Hz", "frequency"),
    "PercentRelativeHumidity": UnitMapping("%", "humidity"),
    "WattsPerSquareMeter": UnitMapping("W/m²", "irradiance"),
    "KilogramsPerHour": UnitMapping("kg/h"),
    "Watts": UnitMapping("W", "power"),
    "Kilowatts": UnitMapping("kW", "power"),
    "Bars": UnitMapping("bar", "pressure"),
    "PoundsForcePerSquareInch": UnitMapping("psi", "pressure"),
    "Hectopascals": UnitMapping("hPa", "pressure"),
    "DegreesCelsius": UnitMapping("°C", "temperature"),
    "DegreesFahrenheit": UnitMapping("°F", "temperature"),
    # Kelvin is used for temperature *differences*, not absolute temperatures.
    "DegreesKelvin": UnitMapping("K"),
    "Days": UnitMapping("d", "duration"),
    "Hours": UnitMapping("h", "duration"),
    "Minutes": UnitMapping("min", "duration"),
    "Seconds": UnitMapping("s", "duration"),
    "Milliseconds": UnitMapping("ms", "duration"),
    "MetersPerSecond": UnitMapping("m/s", "speed"),
    "CubicMeters": UnitMapping("m³", "volume"),
    "Liters": UnitMapping("L", "volume"),
    "Gallons": UnitMapping("gal", "volume"),
    "LitersPerMinute": UnitMapping("L/min", "volume_flow_rate"),
    "LitersPerHour": UnitMapping("L/h", "volume_flow_rate"),
    "CubicMetersPerHour": UnitMapping("m³/h", "volume_flow_rate"),
    "GallonsPerMinute": UnitMapping("gal/min", "volume_flow_rate"),
    "GallonsPerHour": UnitMapping("gal/h"),
    "DegreesAngular": UnitMapping("°"),
    "Percent": UnitMapping("%"),
    "PerHour": UnitMapping("Imp/h"),
    "KilogramsPerCubicMeter": UnitMapping("kg/m³"),
    "KiloWattHoursPerSquareMeterPerDay": UnitMapping("kWh/(m²·d)"),
    "LitersPerSquareMeterPerDay": UnitMapping("L/(m²·d)"),
    "BecquerelPerCubicMeter": UnitMapping("Bq/m³"),
}

STATE_MEASUREMENT: Final = "measurement"
STATE_TOTAL_INCREASING: Final = "total_increasing"

_COUNTER_TIME: Final = re.compile(r"operating|betriebs|laufzeit", re.IGNORECASE)
_COUNTER_PLAIN: Final = re.compile(
    r"counter|zähler|schaltspiele|operating (?:hours|seconds|days|cycles)(?! ?flag)"
    r"|betriebs(?:stunden|sekunden|tage)(?!-flag)",
    re.IGNORECASE,
)
_NOT_COUNTER_VOLUME: Final = re.compile(r"maximum|max\.", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FieldSemantics:
    """How a front end should present a field."""

    unit: str | None
    device_class: str | None
    state_class: str | None

    @property
    def is_counter(self) -> bool:
        """Whether the value only grows (until the controller resets it)."""
        return self.state_class == STATE_TOTAL_INCREASING


def unit_mapping(code: str) -> UnitMapping:
    """The mapping of VSF unit ``code``; unknown codes map to no unit."""
    return UNIT_MAPPINGS.get(code, UnitMapping(None))


def field_semantics(field: FieldSpec) -> FieldSemantics:
    """Unit, device class and state class for ``field`` (Number fields; others have none)."""
    mapping = unit_mapping(field.unit.code)
    if field.type != FieldType.NUMBER:
        return FieldSemantics(None, None, None)
    names = " ".join(field.names)
    family = field.unit.family
    state: str | None
    if family == UnitFamily.ENERGY:
        state = STATE_TOTAL_INCREASING
    elif family == UnitFamily.VOLUME:
        if _NOT_COUNTER_VOLUME.search(names):
            # A stored volume, not a metered one: Home Assistant's class for that.
            return FieldSemantics(mapping.unit, "volume_storage", STATE_MEASUREMENT)
        state = STATE_TOTAL_INCREASING
    elif family == UnitFamily.TIME or field.unit.code in ("Hours", "Seconds", "Days"):
        state = STATE_TOTAL_INCREASING if _COUNTER_TIME.search(names) else STATE_MEASUREMENT
    elif mapping.unit is None:
        state = STATE_TOTAL_INCREASING if _COUNTER_PLAIN.search(names) else None
    else:
        state = STATE_MEASUREMENT
    return FieldSemantics(mapping.unit, mapping.device_class, state)


#: Readings controllers send for "no sensor connected" / "short circuit" / unused slots.
SENTINELS: Final[dict[str, frozenset[float]]] = {
    "DegreesCelsius": frozenset({888.8, -888.8, 999.9, -999.9}),
    "DegreesFahrenheit": frozenset({888.8, -888.8, 999.9, -999.9}),
    "Bars": frozenset({99.99}),
    "Ohms": frozenset({9999.9}),
}

_PROBLEM: Final = re.compile(
    r"error|fehler|defect|defekt|broken|unterbrochen|short|kurzschluss|fault|störung|warn"
    r"|erreur|alarm",
    re.IGNORECASE,
)
_RUNNING: Final = re.compile(r"relay|relais|pump|pumpe|output|ausgang", re.IGNORECASE)
_VERSION: Final = re.compile(r"version", re.IGNORECASE)


def is_flag(spec_field: FieldSpec) -> bool:
    """Single-bit fields (``OOO_S_M`` with a mask M): relay states, error and warning flags."""
    parts = spec_field.field_id.split("_")
    return len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) != 0


def flag_class(spec_field: FieldSpec) -> str | None:
    """``problem`` for error flags, ``running`` for relays and pumps, else none."""
    names = " ".join(spec_field.names)
    if _PROBLEM.search(names):
        return "problem"
    if _RUNNING.search(names):
        return "running"
    return None


def is_sentinel(spec_field: FieldSpec, value: Value | None) -> bool:
    """Whether ``value`` means "no sensor" rather than a measurement."""
    sentinels = SENTINELS.get(spec_field.unit.code)
    return (
        sentinels is not None
        and value is not None
        and round(value, max(spec_field.precision, 0)) in sentinels
    )


def is_diagnostic(spec_field: FieldSpec) -> bool:
    """Clocks, versions and unit-less numbers are not what users put on dashboards."""
    if spec_field.type != FieldType.NUMBER:
        return True
    if _VERSION.search(" ".join(spec_field.names)):
        return True
    return field_semantics(spec_field).unit is None and not field_semantics(spec_field).is_counter


#: The English names of the date-time fields that carry the controller's running clock (the
#: others are moments something happened: the last thermal disinfection, say).
_CLOCK: Final = re.compile(r"^(?:Station \d+: )?System (?:date|time)$|^Date(?:/Time)?$")


def is_clock(spec_field: FieldSpec) -> bool:
    """A date-time field that carries the controller's clock (it advances every second)."""
    return spec_field.type == FieldType.DATETIME and bool(_CLOCK.match(spec_field.names[0]))


def enabled_by_default(spec_field: FieldSpec, first_value: Value | None) -> bool:
    """Entities start disabled when they only report "no sensor" or are noisy diagnostics."""
    if first_value is None or is_sentinel(spec_field, first_value):
        return False
    if spec_field.type == FieldType.DATETIME:
        return not is_clock(spec_field)  # a clock is seen through its deviation, if wanted
    return not is_diagnostic(spec_field)
