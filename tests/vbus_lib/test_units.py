"""Tests for unit mappings and field semantics (protocol reference §13)."""

from __future__ import annotations

import pytest

from aiovbus.specification import (
    FieldSpec,
    FieldType,
    Specification,
    Unit,
    UnitFamily,
)
from aiovbus.units import (
    STATE_MEASUREMENT,
    STATE_TOTAL_INCREASING,
    UNIT_MAPPINGS,
    FieldSemantics,
    UnitMapping,
    field_semantics,
    unit_mapping,
)

from .conftest import reference_file

T, E, VF, P, V, TI, PW, NO = (
    UnitFamily.TEMPERATURE,
    UnitFamily.ENERGY,
    UnitFamily.VOLUME_FLOW,
    UnitFamily.PRESSURE,
    UnitFamily.VOLUME,
    UnitFamily.TIME,
    UnitFamily.POWER,
    UnitFamily.NONE,
)

# §13.1: the 51 units of vbus_specification.vsf (= the bundled data): id -> (code, text, family).
UNITS_13_1 = {
    -1: ("None", "", NO),
    0: ("SquareMeters", " m²", NO),
    2: ("Milliamperes", " mA", NO),
    3: ("Amperes", " A", NO),
    4: ("Ohms", " \u2126", NO),  # the VSF has U+2126 OHM SIGN (the doc shows U+03A9)
    5: ("Volts", " V", NO),
    18: ("WattHours", " Wh", E),
    19: ("KilowattHours", " kWh", E),
    20: ("Btus", " BTU", E),
    27: ("Hertz", " Hz", NO),
    29: ("PercentRelativeHumidity", "%RH", NO),
    35: ("WattsPerSquareMeter", " W/m²", NO),
    44: ("KilogramsPerHour", " kg/h", NO),
    47: ("Watts", " W", PW),
    48: ("Kilowatts", " kW", PW),
    55: ("Bars", " bar", P),
    56: ("PoundsForcePerSquareInch", " psi", P),
    62: ("DegreesCelsius", " °C", T),
    63: ("DegreesKelvin", " K", NO),
    64: ("DegreesFahrenheit", " °F", T),
    70: ("Days", " d", TI),
    71: ("Hours", " h", TI),
    72: ("Minutes", " min", TI),
    73: ("Seconds", " s", TI),
    74: ("MetersPerSecond", " m/s", NO),
    80: ("CubicMeters", " m³", V),
    82: ("Liters", " l", V),
    88: ("LitersPerMinute", " l/min", VF),
    90: ("DegreesAngular", " °", NO),
    98: ("Percent", "%", NO),
    131: ("PerHour", " Imp/h", NO),
    133: ("Hectopascals", " hPa", NO),
    135: ("CubicMetersPerHour", " m³/h", VF),
    136: ("LitersPerHour", " l/h", VF),
    146: ("MegawattHours", " MWh", E),
    159: ("Milliseconds", " ms", NO),
    186: ("KilogramsPerCubicMeter", " kg/m³", NO),
    1024: ("KiloWattHoursPerSquareMeterPerDay", " kWh/(m²*d)", NO),
    1025: ("LitersPerSquareMeterPerDay", " l/(m²*d)", NO),
    1030: ("KiloBtus", " MBTU", E),
    1031: ("MegaBtus", " MMBTU", E),
    1032: ("GramsCO2Oil", " g CO₂ (Oil)", E),
    1033: ("KilogramsCO2Oil", " kg CO₂ (Oil)", E),
    1034: ("TonsCO2Oil", " t CO₂ (Oil)", E),
    1035: ("GramsCO2Gas", " g CO₂ (Gas)", E),
    1036: ("KilogramsCO2Gas", " kg CO₂ (Gas)", E),
    1037: ("TonsCO2Gas", " t CO₂ (Gas)", E),
    1040: ("GallonsPerMinute", " gal/min", VF),
    1041: ("GallonsPerHour", " gal/h", VF),
    1042: ("Gallons", " gal", V),
    1044: ("BecquerelPerCubicMeter", " Bq/m³", NO),
}

MEASUREMENT = STATE_MEASUREMENT
TOTAL = STATE_TOTAL_INCREASING


@pytest.fixture(scope="module")
def spec() -> Specification:
    return Specification.bundled()


def _field(spec: Specification, key: tuple[int, int, int], field_id: str) -> FieldSpec:
    decoder = spec.decoder(*key)
    assert decoder is not None
    matches = [field for field in decoder.fields if field.field_id == field_id]
    assert len(matches) == 1
    return matches[0]


def _synthetic(
    code: str,
    family: UnitFamily,
    name: str,
    field_type: FieldType = FieldType.NUMBER,
) -> FieldSpec:
    return FieldSpec("000_4_0", (name, "", ""), Unit(1, family, code, ""), 0, field_type, ())


def test_state_class_constants() -> None:
    assert (STATE_MEASUREMENT, STATE_TOTAL_INCREASING) == ("measurement", "total_increasing")


def test_bundled_units_are_the_13_1_table(spec: Specification) -> None:
    assert len(spec.units) == 51
    assert {
        unit_id: (unit.code, unit.text, unit.family) for unit_id, unit in spec.units.items()
    } == UNITS_13_1


def test_every_bundled_unit_code_is_mapped(spec: Specification) -> None:
    assert sorted({unit.code for unit in spec.units.values()} - UNIT_MAPPINGS.keys()) == []


def test_every_unit_used_by_a_bundled_field_is_mapped(spec: Specification) -> None:
    used = {
        field.unit.code
        for index in range(spec.packet_template_count)
        for field in spec.packet_template_at(index).fields
    }
    assert len(used) == 39
    assert sorted(used - UNIT_MAPPINGS.keys()) == []


def test_every_test_vsf_unit_code_is_mapped() -> None:
    units = Specification.from_vsf(reference_file("test.vsf")).units
    assert len(units) == 48
    assert sorted({unit.code for unit in units.values()} - UNIT_MAPPINGS.keys()) == []
    assert unit_mapping("Microvolts") == UnitMapping("µV")


@pytest.mark.parametrize(
    ("code", "mapping"),
    [
        ("None", UnitMapping(None)),
        ("DegreesCelsius", UnitMapping("°C", "temperature")),
        ("DegreesFahrenheit", UnitMapping("°F", "temperature")),
        ("DegreesKelvin", UnitMapping("K")),
        ("WattHours", UnitMapping("Wh", "energy")),
        ("KilowattHours", UnitMapping("kWh", "energy")),
        ("MegawattHours", UnitMapping("MWh", "energy")),
        ("Watts", UnitMapping("W", "power")),
        ("Liters", UnitMapping("L", "volume")),
        ("CubicMeters", UnitMapping("m³", "volume")),
        ("LitersPerHour", UnitMapping("L/h", "volume_flow_rate")),
        ("Bars", UnitMapping("bar", "pressure")),
        ("Hours", UnitMapping("h", "duration")),
        ("Seconds", UnitMapping("s", "duration")),
        ("Percent", UnitMapping("%")),
        ("PercentRelativeHumidity", UnitMapping("%", "humidity")),
        ("WattsPerSquareMeter", UnitMapping("W/m²", "irradiance")),
    ],
)
def test_unit_mapping(code: str, mapping: UnitMapping) -> None:
    assert unit_mapping(code) == mapping
    assert UNIT_MAPPINGS[code] == mapping


@pytest.mark.parametrize("code", ["Furlongs", "", "degreescelsius"])
def test_unknown_code_maps_to_no_unit(code: str) -> None:
    assert unit_mapping(code) == UnitMapping(None, None)


@pytest.mark.parametrize(
    ("key", "field_id", "name", "expected"),
    [
        # DeltaSol MX [Controller]
        (
            (0x0010, 0x7E11, 0x0100),
            "000_2_0",
            "Temperature sensor 1",
            ("°C", "temperature", MEASUREMENT),
        ),
        ((0x0010, 0x7E11, 0x0100), "076_1_0", "Pump speed relay 1", ("%", None, MEASUREMENT)),
        (
            (0x0010, 0x7E11, 0x0100),
            "030_2_0",
            "Irradiation sensor 16",
            ("W/m²", "irradiance", MEASUREMENT),
        ),
        (
            (0x0010, 0x7E11, 0x0100),
            "040_4_0",
            "Flow rate sensor 13",
            ("L/h", "volume_flow_rate", MEASUREMENT),
        ),
        (
            (0x0010, 0x7E11, 0x0100),
            "068_2_0",
            "Pressure sensor 17",
            ("bar", "pressure", MEASUREMENT),
        ),
        ((0x0010, 0x7E11, 0x0100), "092_4_0", "System date", (None, None, None)),
        ((0x0010, 0x7E11, 0x0100), "096_4_0", "Error mask", (None, None, None)),
        # DeltaSol MX [HQM #1]
        ((0x0010, 0x7E31, 0x0100), "000_4_0", "Heat quantity", ("Wh", "energy", TOTAL)),
        ((0x0010, 0x7E31, 0x0100), "016_4_0", "Volume in total", ("L", "volume", TOTAL)),
        ((0x0010, 0x7E31, 0x0100), "004_4_0", "Power", ("W", "power", MEASUREMENT)),
        # DeltaSol BS 2009: operating hours in Hours (Time family)
        ((0x0010, 0x427B, 0x0100), "010_2_0", "Operating hours relay 1", ("h", "duration", TOTAL)),
        ((0x0010, 0x427B, 0x0100), "022_2_0", "System time", (None, None, None)),
        # a duration that is not a counter
        (
            (0x0010, 0x1040, 0x0100),
            "026_1_0",
            "Parameter Rise time",
            ("h", "duration", MEASUREMENT),
        ),
        # a maximum volume is not a counter
        (
            (0x0010, 0x4241, 0x0100),
            "038_2_0",
            "Maximum draw-off quantity",
            ("m³", "volume_storage", MEASUREMENT),
        ),
        # temperature difference: Kelvin has no device class
        ((0x0010, 0x105E, 0x0100), "041_2_0", "Mixer dT", ("K", None, MEASUREMENT)),
        # DL3: unit-less impulse counter
        ((0x0010, 0x0053, 0x0100), "016_4_0", "Impulse Counter Sensor 1", (None, None, TOTAL)),
        # Weektime
        ((0x0010, 0x7210, 0x0100), "042_2_0", "System time", (None, None, None)),
    ],
)
def test_field_semantics_of_real_fields(
    spec: Specification,
    key: tuple[int, int, int],
    field_id: str,
    name: str,
    expected: tuple[str | None, str | None, str | None],
) -> None:
    field = _field(spec, key, field_id)
    assert field.name() == name
    semantics = field_semantics(field)
    assert semantics == FieldSemantics(*expected)
    assert semantics.is_counter is (expected[2] == TOTAL)


@pytest.mark.parametrize(
    ("key", "field_id", "name"),
    [
        # DeltaSol BS Plus: operating hours without a unit
        ((0x0010, 0x4221, 0x0100), "016_2_0", "Operating hours relay 1"),
        ((0x0010, 0x4231, 0x0100), "020_4_0", "Operating cycles"),
        ((0x0010, 0x0053, 0x0100), "020_4_0", "Impulse Counter Sensor 2"),
    ],
)
def test_unitless_counters(
    spec: Specification, key: tuple[int, int, int], field_id: str, name: str
) -> None:
    field = _field(spec, key, field_id)
    assert (field.name(), field.unit.code) == (name, "None")
    assert field_semantics(field) == FieldSemantics(None, None, TOTAL)


@pytest.mark.parametrize(
    ("key", "field_id", "name"),
    [
        ((0x0010, 0x1054, 0x0100), "002_1_0", "Operating state"),
        ((0x0010, 0x1170, 0x0100), "014_1_0", "Op. mode"),
        ((0x0010, 0x1140, 0x0100), "003_1_0", "Heating_Heating circuit1_Operating mode"),
        ((0x0010, 0x1100, 0x0100), "025_1_32", "Operating message"),
        ((0x0010, 0x7761, 0x0100), "036_1_8388608", "Operating relay active"),
        ((0x0010, 0x6610, 0x0100), "035_1_0", "Operating hours flag "),
    ],
)
def test_unitless_operating_states_are_not_counters(
    spec: Specification, key: tuple[int, int, int], field_id: str, name: str
) -> None:
    # LIBRARY BUG (reported): "operating|betriebs" in the unit-less counter pattern turns
    # status, mode and flag fields ("Betriebsstatus", "Betriebsart", ...) into counters.
    field = _field(spec, key, field_id)
    assert (field.name(), field.unit.code) == (name, "None")
    assert field_semantics(field) == FieldSemantics(None, None, None)


def test_field_types_other_than_number_have_no_semantics(spec: Specification) -> None:
    by_type: dict[FieldType, FieldSemantics] = {}
    for index in range(spec.packet_template_count):
        for field in spec.packet_template_at(index).fields:
            if field.type != FieldType.NUMBER:
                assert field_semantics(field) == FieldSemantics(None, None, None)
                by_type[field.type] = field_semantics(field)
    assert set(by_type) == {FieldType.TIME, FieldType.WEEKTIME, FieldType.DATETIME}


@pytest.mark.parametrize(
    ("code", "family", "name", "expected"),
    [
        # test.vsf gives Hours/Seconds/Days family -1: the code still makes them durations
        ("Hours", NO, "Operating hours relay 1", ("h", "duration", TOTAL)),
        ("Seconds", NO, "Betriebssekunden Relais 1", ("s", "duration", TOTAL)),
        ("Days", NO, "Laufzeit", ("d", "duration", TOTAL)),
        ("Seconds", NO, "Seconds no.", ("s", "duration", MEASUREMENT)),
        ("Minutes", TI, "Filterlaufzeit", ("min", "duration", TOTAL)),
        ("Minutes", TI, "Delay", ("min", "duration", MEASUREMENT)),
        # any Energy-family unit is a counter, whatever its name
        ("KilowattHours", E, "Heat quantity today", ("kWh", "energy", TOTAL)),
        ("GramsCO2Oil", E, "CO2 savings", ("g", None, TOTAL)),
        # volumes are counters unless they are a maximum
        ("Liters", V, "Volume", ("L", "volume", TOTAL)),
        ("Liters", V, "Volume max.", ("L", "volume_storage", MEASUREMENT)),
        ("Gallons", V, "Maximum volume", ("gal", "volume_storage", MEASUREMENT)),
        # unit-less: counters only by name
        ("None", NO, "Zählerstand", (None, None, TOTAL)),
        ("None", NO, "Counter reading", (None, None, TOTAL)),
        ("None", NO, "Scheme", (None, None, None)),
        # unknown unit code: no unit, treated like a unit-less field
        ("Furlongs", NO, "Distance", (None, None, None)),
        ("Furlongs", NO, "Distance counter", (None, None, TOTAL)),
        # other units are measurements
        ("Watts", NO, "Power", ("W", "power", MEASUREMENT)),
        ("DegreesCelsius", T, "Operating temperature", ("°C", "temperature", MEASUREMENT)),
    ],
)
def test_field_semantics_rules(
    code: str,
    family: UnitFamily,
    name: str,
    expected: tuple[str | None, str | None, str | None],
) -> None:
    assert field_semantics(_synthetic(code, family, name)) == FieldSemantics(*expected)


def test_names_in_any_language_count() -> None:
    field = FieldSpec(
        "000_2_0",
        ("Relay 1", "Betriebsstunden Relais 1", ""),
        Unit(71, TI, "Hours", " h"),
        0,
        FieldType.NUMBER,
        (),
    )
    assert field_semantics(field).state_class == TOTAL


@pytest.mark.parametrize(
    "field_type", [FieldType.FLOAT, FieldType.TIME, FieldType.WEEKTIME, FieldType.DATETIME]
)
def test_non_number_types_have_no_semantics(field_type: FieldType) -> None:
    field = _synthetic("DegreesCelsius", T, "Temperature", field_type)
    assert field_semantics(field) == FieldSemantics(None, None, None)
    assert not field_semantics(field).is_counter
