"""Tests for the controller value catalog (parameterization reference §3, §9, §11).

The first part needs nothing but the bundled catalog; the second checks every catalog value
against RESOL's value lists in ``../shared`` and is skipped when they are absent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from aiovbus import catalog
from aiovbus.catalog import (
    CLOCK_EPOCH,
    LANGUAGES,
    CatalogCondition,
    CatalogError,
    CatalogValue,
    ControllerCatalog,
    ValueKind,
    catalog_for,
    catalogs,
    option_names,
    value_names,
)
from aiovbus.errors import VBusError
from aiovbus.valueid import value_id_hash

from .conftest import reference_file

ALL_VALUES = [(controller, value) for controller in catalogs() for value in controller.values]
VALUE_IDS = [f"{controller.key}-{value.key}" for controller, value in ALL_VALUES]
SLUG = re.compile(r"[a-z][a-z0-9_]*")

# Catalog key → (address, major version, number of values). The MX catalog without a version
# holds the 13 values both MX lists share identically.
EXPECTED_CATALOGS = {
    "deltasol_bs4_v2": (0x427B, None, 18),
    "deltasol_bx_plus": (0x7112, None, 23),
    "deltasol_c": (0x4212, None, 16),
    "deltasol_cs_plus": (0x2211, None, 18),
    "deltasol_cs2": (0x1121, None, 17),
    "deltasol_cs4": (0x1122, None, 18),
    "deltasol_e_v2": (0x1050, None, 25),
    "deltasol_mx_1": (0x7E11, 1, 32),
    "deltasol_mx_2": (0x7E11, 2, 38),
    "deltasol_mx": (0x7E11, None, 13),
    "deltasol_slt": (0x1001, None, 18),
    "deltatherm_hc": (0x5400, None, 15),
}


def _catalog(key: str) -> ControllerCatalog:
    return next(controller for controller in catalogs() if controller.key == key)


def _value(key: str, value_id: str) -> CatalogValue:
    value = _catalog(key).value(value_id)
    assert value is not None
    return value


def _middle(value: CatalogValue) -> float:
    assert value.minimum is not None
    assert value.maximum is not None
    assert value.step is not None
    steps = round((value.maximum - value.minimum) / value.step)
    return float(Decimal(repr(value.minimum)) + Decimal(repr(value.step)) * (steps // 2))


# --- the bundled data ---------------------------------------------------------------------------


def test_catalog_list() -> None:
    assert {
        c.key: (c.address, c.major_version, len(c.values)) for c in catalogs()
    } == EXPECTED_CATALOGS
    assert catalogs() is catalogs()  # loaded once


@pytest.mark.parametrize(("controller", "value"), ALL_VALUES, ids=VALUE_IDS)
def test_hashes(controller: ControllerCatalog, value: CatalogValue) -> None:
    assert value.id_hash == value_id_hash(value.value_id)
    assert controller.by_hash(value.id_hash) is value
    assert controller.value(value.value_id) is value
    assert controller.by_key(value.key) is value
    for condition in value.conditions:
        assert condition.id_hash == value_id_hash(condition.value_id)


@pytest.mark.parametrize("controller", catalogs(), ids=lambda c: c.key)
def test_unique_per_controller(controller: ControllerCatalog) -> None:
    values = controller.values
    assert len({value.key for value in values}) == len(values)
    assert len({value.value_id for value in values}) == len(values)
    assert len({value.id_hash for value in values}) == len(values)


@pytest.mark.parametrize(("controller", "value"), ALL_VALUES, ids=VALUE_IDS)
def test_value_shape(controller: ControllerCatalog, value: CatalogValue) -> None:
    assert SLUG.fullmatch(value.key)
    assert SLUG.fullmatch(value.translation_key)
    assert value.key == value.translation_key or value.placeholders
    if value.kind in {ValueKind.SELECT, ValueKind.SWITCH}:
        raws = [option.raw for option in value.options]
        keys = [option.key for option in value.options]
        assert len(set(raws)) == len(raws) >= 2
        assert len(set(keys)) == len(keys)
        assert all(SLUG.fullmatch(key) for key in keys)
        assert (value.unit, value.device_class, value.minimum, value.step) == (None,) * 4
        assert value.raw_step == 1
        if value.kind is ValueKind.SWITCH:
            assert [(option.raw, option.key) for option in value.options] == [(0, "off"), (1, "on")]
        return
    assert value.options == ()
    assert value.step is not None
    assert value.step > 0
    if value.kind is ValueKind.CLOCK:
        assert controller.key == "deltasol_mx_2"
        assert value.unit in {"s", "min"}
        return
    assert value.minimum is not None
    assert value.maximum is not None
    assert value.minimum <= value.maximum
    assert value.raw_minimum is not None
    assert value.raw_maximum is not None
    # limits and step are whole multiples of the raw resolution
    assert Decimal(repr(value.minimum)) / value.factor == value.raw_minimum
    assert Decimal(repr(value.maximum)) / value.factor == value.raw_maximum
    assert Decimal(repr(value.step)) / value.factor == value.raw_step
    assert (value.raw_maximum - value.raw_minimum) % value.raw_step == 0
    expected_class = {"°C": "temperature", "min": "duration", "h": "duration", "d": "duration"}
    assert value.device_class == expected_class.get(value.unit or "")


def _back(value: CatalogValue, raw: int) -> int:
    """``raw`` converted to its display value and back."""
    shown = value.to_display(raw)
    assert shown is not None
    return value.to_raw(shown)


@pytest.mark.parametrize(("controller", "value"), ALL_VALUES, ids=VALUE_IDS)
def test_round_trip(controller: ControllerCatalog, value: CatalogValue) -> None:
    if value.kind is ValueKind.NUMBER:
        assert value.minimum is not None
        assert value.maximum is not None
        for display in (value.minimum, value.maximum, _middle(value)):
            raw = value.to_raw(display)
            assert value.to_display(raw) == display
            assert _back(value, raw) == raw
        assert isinstance(value.to_display(0), int if value.factor == 1 else float)
    elif value.kind is ValueKind.CLOCK:
        when = datetime(2024, 3, 31, 2, 30, 7)  # noqa: DTZ001
        raw = value.to_raw(when)
        assert value.to_display(raw) == (when if value.unit == "s" else time(2, 30))
        assert _back(value, raw) == raw
    else:
        for option in value.options:
            assert _back(value, option.raw) == option.raw
            assert value.to_raw(option.key) == value.to_raw(option.raw) == option.raw


@pytest.mark.parametrize(("controller", "value"), ALL_VALUES, ids=VALUE_IDS)
def test_labels(controller: ControllerCatalog, value: CatalogValue) -> None:
    for names in (value.names, *(option.names for option in value.options)):
        assert set(names) == set(LANGUAGES)
        assert all(text.strip() and "{" not in text for text in names.values())
    template = value_names()[value.translation_key]
    for language in LANGUAGES:
        expected = template[language].replace("{n}", value.placeholders.get("n", ""))
        assert value.name(language) == expected
    for option in value.options:
        assert option_names()[option.key] == option.names


def test_label_tables() -> None:
    used = {value.translation_key for _, value in ALL_VALUES}
    assert set(value_names()) == used
    assert {option.key for _, value in ALL_VALUES for option in value.options} == set(
        option_names()
    )
    for names in (*value_names().values(), *option_names().values()):
        assert set(names) == set(LANGUAGES)


def test_german_labels() -> None:
    relay = _value("deltasol_cs_plus", "Handbetrieb1")
    assert relay.name("de") == "Handbetrieb Relais 1"
    assert [option.name("de") for option in relay.options] == ["Aus", "Automatik", "Ein"]
    assert relay.name("fr") == relay.name() == "Relay 1 manual mode"
    assert relay.options[0].name("fr") == "Off"
    assert relay.placeholders == {"n": "1"}


# --- selection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "major_version", "key"),
    [
        (0x7E11, 1, "deltasol_mx_1"),
        (0x7E11, 2, "deltasol_mx_2"),
        (0x7E11, None, "deltasol_mx"),
        (0x7E11, 3, "deltasol_mx"),
        (0x427B, None, "deltasol_bs4_v2"),
        (0x7112, None, "deltasol_bx_plus"),
        (0x4212, None, "deltasol_c"),
        (0x2211, None, "deltasol_cs_plus"),
        (0x1121, None, "deltasol_cs2"),
        (0x1122, None, "deltasol_cs4"),
        (0x1050, None, "deltasol_e_v2"),
        (0x1001, None, "deltasol_slt"),
        (0x1001, 1, "deltasol_slt"),
        (0x5400, None, "deltatherm_hc"),
    ],
)
def test_catalog_for(address: int, major_version: int | None, key: str) -> None:
    found = catalog_for(address, major_version)
    assert found is not None
    assert found.key == key
    assert found.address == address


@pytest.mark.parametrize("address", [0x0000, 0x7E21, 0x7E12, 0x7321, 0xFFFF])
def test_catalog_for_unknown_address(address: int) -> None:
    assert catalog_for(address) is None
    assert catalog_for(address, 2) is None


def test_mx_without_version_shares_only_identical_values() -> None:
    mx1, mx2, common = _catalog("deltasol_mx_1"), _catalog("deltasol_mx_2"), _catalog("deltasol_mx")
    assert common.name == "DeltaSol MX"
    assert common.hashes_listed
    assert common.values == tuple(value for value in mx2.values if value in mx1.values)
    assert common.value("Relais_Regler_R1_Handbetrieb") is None  # 4 vs 5 options
    assert common.value("Heizung_Heizkreis1_Betriebsart") is None  # 2.xx only
    assert common.clock_writes(datetime(2024, 1, 1)) == ()  # noqa: DTZ001
    for value in common.values:
        assert mx1.value(value.value_id) == value == mx2.value(value.value_id)


def test_reference_example_relay_manual_mode() -> None:
    # parameterization reference §7: MX 2.08, Relais_Regler_R1_Handbetrieb (2D84EA19) set to 2
    relay = _value("deltasol_mx_2", "Relais_Regler_R1_Handbetrieb")
    assert relay.id_hash == 0x2D84EA19
    assert relay.kind is ValueKind.SELECT
    assert relay.to_raw("auto") == 2
    assert relay.to_display(2) == "auto"
    assert [(option.raw, option.key) for option in relay.options] == [
        (0, "off"),
        (1, "min"),
        (2, "auto"),
        (3, "max"),
        (4, "on"),
    ]


# (catalog, value id) → (kind, unit, factor, minimum, maximum, step, raw minimum, raw maximum)
SPOT_CHECKS = {
    ("deltasol_c", "TKol1Max"): ("number", "°C", "0.1", 100, 190, 1, 1000, 1900),
    ("deltasol_c", "dauerTemperaturDesinfektion"): ("number", "min", "1", 0, 1439, 1, 0, 1439),
    ("deltasol_cs_plus", "THolyCool"): ("number", "°C", "0.1", 20, 80, 1, 200, 800),
    ("deltasol_cs2", "dT1aus"): ("number", "K", "0.1", 0.5, 19.5, 0.5, 5, 195),
    ("deltasol_bs4_v2", "TTh1ein"): ("number", "°C", "0.1", 0, 95, 0.5, 0, 950),
    ("deltasol_e_v2", "Hk1Heizkurve"): ("number", None, "0.1", 0.3, 3, 0.1, 3, 30),
    ("deltasol_e_v2", "TTh1aus"): ("number", "°C", "0.1", -40, 250, 0.5, -400, 2500),
    ("deltasol_mx_2", "Heizung_Heizkreis1_dTNachtkorrektur"): (
        *("number", "K", "0.1", -20, 30, 1, -200, 300),
    ),
    ("deltasol_mx_2", "Urlaubsfunktion_Tage"): ("number", "d", "1", 0, 200, 1, 0, 200),
    ("deltasol_mx_2", "Heizung_Wf1_ThDesinfektion_dtUeberwachung"): (
        *("number", "h", "1", 1, 720, 1, 1, 720),
    ),
    ("deltasol_mx_2", "Systemzeit"): ("clock", "min", "1", 0, 1439, 1, 0, 1439),
    ("deltasol_mx_2", "Systemdatum"): ("clock", "s", "1", None, None, 1, None, None),
    ("deltasol_slt", "Solar_Urlaubsfunktion_Kollektorkuehlung_TKolMax"): (
        *("number", "°C", "0.1", 70, 190, 1, 700, 1900),
    ),
    ("deltatherm_hc", "Heizung_Heizkreis1_TSommerTag"): ("number", "°C", "0.1", 0, 40, 1, 0, 400),
}


@pytest.mark.parametrize(("where", "expected"), SPOT_CHECKS.items(), ids=str)
def test_spot_checks(where: tuple[str, str], expected: tuple[Any, ...]) -> None:
    value = _value(*where)
    kind, unit, factor, minimum, maximum, step, raw_minimum, raw_maximum = expected
    assert (value.kind, value.unit, value.factor) == (kind, unit, Decimal(factor))
    assert (value.minimum, value.maximum, value.step) == (minimum, maximum, step)
    assert (value.raw_minimum, value.raw_maximum) == (raw_minimum, raw_maximum)


@pytest.mark.parametrize(
    ("key", "value_id", "options"),
    [
        ("deltasol_c", "Handbetrieb2", ["off", "auto", "on"]),
        ("deltasol_e_v2", "Relaismodus7", ["off", "auto", "min", "max"]),
        ("deltasol_mx_1", "Relais_Regler_R14_Handbetrieb", ["off", "min", "auto", "max"]),
        ("deltasol_slt", "Relais_Regler_R4_Handbetrieb", ["off", "min", "auto", "max", "on"]),
        (
            "deltatherm_hc",
            "Heizung_Heizkreis1_Betriebsart",
            ["auto", "day", "night", "summer", "holiday", "off"],
        ),
        (
            "deltasol_mx_2",
            "Solar_Urlaubsfunktion_Kuehlung",
            ["disabled", "system_cooling", "collector_cooling"],
        ),
        ("deltasol_bx_plus", "Solar_Wf1_Bereitschaft_Aktivierung", ["timer", "manual"]),
    ],
)
def test_option_numbering(key: str, value_id: str, options: list[str]) -> None:
    value = _value(key, value_id)
    assert [(option.raw, option.key) for option in value.options] == list(enumerate(options))


def test_relays_per_controller() -> None:
    relays = {
        controller.key: sum(
            value.translation_key == "relay_manual_mode" for value in controller.values
        )
        for controller in catalogs()
    }
    assert relays == {
        "deltasol_bs4_v2": 2,
        "deltasol_bx_plus": 5,
        "deltasol_c": 2,
        "deltasol_cs_plus": 2,
        "deltasol_cs2": 1,
        "deltasol_cs4": 2,
        "deltasol_e_v2": 7,
        "deltasol_mx_1": 14,
        "deltasol_mx_2": 14,
        "deltasol_mx": 0,
        "deltasol_slt": 4,
        "deltatherm_hc": 5,
    }


def test_hashes_listed() -> None:
    unlisted = {controller.key for controller in catalogs() if not controller.hashes_listed}
    assert unlisted == {"deltasol_bs4_v2", "deltasol_bx_plus", "deltasol_cs2", "deltasol_cs4"}


def test_lookups_miss() -> None:
    slt = _catalog("deltasol_slt")
    assert slt.value("Systemzeit") is None
    assert slt.by_hash(value_id_hash("Systemzeit")) is None
    assert slt.by_key("controller_time") is None


# --- conversions --------------------------------------------------------------------------------


def test_number_conversion() -> None:
    night = _value("deltasol_mx_2", "Heizung_Heizkreis1_dTNachtkorrektur")
    assert night.to_raw(-5) == -50
    assert night.to_display(-50) == -5.0
    assert night.to_display(999) == 99.9  # the controller's value is shown even out of range
    tmax = _value("deltasol_mx_2", "Solar_Sp1_Tmax")
    assert tmax.to_raw(44.99999999999999) == 450  # float noise from °F → °C
    assert tmax.to_raw(60) == tmax.to_raw(60.0) == 600
    heating_curve = _value("deltatherm_hc", "Heizung_Heizkreis1_Heizkurve")
    assert heating_curve.to_raw(0.3) == 3
    assert heating_curve.to_raw(1.7) == 17
    assert heating_curve.to_display(17) == 1.7
    days = _value("deltasol_mx_2", "Urlaubsfunktion_Tage")
    assert days.to_raw(14) == 14
    assert days.to_display(14) == 14
    assert isinstance(days.to_display(14), int)


@pytest.mark.parametrize(
    ("value_id", "display", "message"),
    [
        ("Solar_Sp1_Tmax", 60.5, r"60\.5 °C is not a multiple of the step 1\.0"),
        ("Solar_Sp1_Tmax", 96, r"96\.0 °C is outside 4\.0 °C … 95\.0 °C"),
        ("Solar_Sp1_Tmax", 3, "is outside"),
        ("Solar_Sp1_Tmax", 60.05, "is not a multiple of the resolution 0.1"),
        ("Solar_Sp1_dTaus", 4.2, r"4\.2 K is not a multiple of the step 0\.5"),
        ("Solar_Sp1_Tmax", "60", "expected a number, got '60'"),
        ("Solar_Sp1_Tmax", True, "expected a number, got True"),
        ("Urlaubsfunktion_Tage", 201, "201 d is outside 0 d … 200 d"),
        ("Relais_Regler_R1_Handbetrieb", "manual", "unknown option 'manual'"),
        ("Relais_Regler_R1_Handbetrieb", 5, "5 is not one of the allowed values 0, 1, 2, 3, 4"),
        ("Relais_Regler_R1_Handbetrieb", True, "expected an option key, got True"),
        ("Relais_Regler_R1_Handbetrieb", 2.0, "expected an option key, got 2.0"),
        ("Heizung_Heizkreis1_OUrlaub", 2, "2 is not one of the allowed values 0, 1"),
        ("Heizung_Heizkreis1_OUrlaub", "yes", "unknown option 'yes'"),
        ("Systemzeit", 754, "expected a datetime or time, got 754"),
        ("Systemdatum", time(12, 0), "expected a datetime or time"),
        ("Systemdatum", datetime(2000, 12, 31, 23, 59), "is before 2001-01-01"),  # noqa: DTZ001
        ("Systemdatum", datetime(2069, 1, 20), "does not fit a signed 32-bit"),  # noqa: DTZ001
    ],
)
def test_rejected_values(value_id: str, display: Any, message: str) -> None:
    value = _value("deltasol_mx_2", value_id)
    with pytest.raises(CatalogError, match=message) as caught:
        value.to_raw(display)
    assert isinstance(caught.value, VBusError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("raw", [-(2**31) - 1, 2**31])
def test_raw_must_fit_a_datagram(raw: int) -> None:
    with pytest.raises(CatalogError, match="signed 32-bit"):
        _value("deltasol_mx_2", "Urlaubsfunktion_Tage").validate_raw(raw)


def test_validate_raw() -> None:
    tmax = _value("deltasol_mx_2", "Solar_Sp1_Tmax")
    assert tmax.validate_raw(40) == 40
    assert tmax.validate_raw(950) == 950
    with pytest.raises(CatalogError, match="outside"):
        tmax.validate_raw(951)
    with pytest.raises(CatalogError, match="step"):
        tmax.validate_raw(455)
    clock_date = _value("deltasol_mx_2", "Systemdatum")
    assert clock_date.validate_raw(12345) == 12345
    relay = _value("deltasol_mx_2", "Relais_Regler_R1_Handbetrieb")
    assert relay.validate_raw(4) == 4


def test_switch_conversion() -> None:
    switch = _value("deltasol_cs_plus", "OHolyCool")
    assert switch.kind is ValueKind.SWITCH
    assert switch.to_raw(True) == switch.to_raw("on") == switch.to_raw(1) == 1  # noqa: FBT003
    assert switch.to_raw(False) == switch.to_raw("off") == switch.to_raw(0) == 0  # noqa: FBT003
    assert switch.to_display(1) is True
    assert switch.to_display(0) is False
    assert switch.to_display(2) is None


def test_select_conversion() -> None:
    mode = _value("deltasol_mx_2", "Heizung_Heizkreis1_Betriebsart")
    assert mode.to_raw("holiday") == 4
    assert mode.to_display(5) == "off"
    assert mode.to_display(6) is None
    option = mode.option("night")
    assert option is not None
    assert option.raw == 2
    assert mode.option("party") is None
    assert mode.option_for_raw(9) is None
    assert mode.raw_minimum is mode.raw_maximum is None


def test_clock() -> None:
    mx2 = _catalog("deltasol_mx_2")
    clock_date = _value("deltasol_mx_2", "Systemdatum")
    clock_time = _value("deltasol_mx_2", "Systemzeit")
    assert clock_date.to_raw(CLOCK_EPOCH) == 0
    assert clock_date.to_raw(datetime(2001, 1, 2, 0, 1, 5)) == 86400 + 65  # noqa: DTZ001
    assert clock_date.to_display(86400 + 65) == datetime(2001, 1, 2, 0, 1, 5)  # noqa: DTZ001
    aware = datetime(2024, 7, 1, 14, 30, 9, tzinfo=timezone(timedelta(hours=2)))
    naive = aware.replace(tzinfo=None)
    assert clock_date.to_raw(aware) == clock_date.to_raw(naive)  # the wall time counts
    assert clock_time.to_raw(aware) == clock_time.to_raw(time(14, 30, 59)) == 14 * 60 + 30
    assert clock_time.to_display(0) == time(0, 0)
    assert clock_time.to_display(1439) == time(23, 59)
    assert clock_time.to_display(1440) is None
    assert clock_time.to_display(-1) is None
    with pytest.raises(CatalogError, match="outside"):
        clock_time.validate_raw(1440)
    writes = mx2.clock_writes(naive)
    assert writes == (
        (clock_date, (naive - CLOCK_EPOCH) // timedelta(seconds=1)),
        (clock_time, 14 * 60 + 30),
    )
    # only the MX 2.xx clock is adjustable over VBus (reference §11.6)
    others = [c.key for c in catalogs() if c.clock_writes(naive)]
    assert others == ["deltasol_mx_2"]


def test_conditions() -> None:
    dhw = _value("deltasol_mx_2", "Heizung_Wf1_ThBwErwaermung_TEin")
    (condition,) = dhw.conditions
    assert condition == CatalogCondition(
        "Heizung_Wf1_Type", value_id_hash("Heizung_Wf1_Type"), frozenset({2})
    )
    assert condition.holds(2)
    assert not condition.holds(1)
    circuit = _value("deltatherm_hc", "Heizung_Heizkreis1_Heizkurve")
    (condition,) = circuit.conditions
    assert condition.negated
    assert condition.raw_values == {0}
    assert not condition.holds(0)
    assert condition.holds(3)
    legionella = _value("deltasol_e_v2", "O_Hk1_TWW_Legioschutz")
    assert [c.value_id for c in legionella.conditions] == ["O_Hk1", "O_Hk1_TWW_Bereitung"]


def test_conditions_decide_whether_a_value_applies() -> None:
    mx2 = _catalog("deltasol_mx_2")
    assert [(c.value_id, c.id_hash) for c in mx2.condition_values] == [
        ("Heizung_Heizkreis1_Type", 2001790969),
        ("Heizung_Wf1_Type", 1904774984),
    ]
    # The raw value the emulator sets: the first condition naming the value holds.
    assert [c.satisfying_raw() for c in mx2.condition_values] == [1, 1]
    # A condition on a value the catalog lists is read with the catalog values already.
    relay = _value("deltasol_mx_2", "Relais_Regler_R1_Handbetrieb")
    on_relay = CatalogCondition(relay.value_id, relay.id_hash, frozenset({4}))
    changed = dataclasses.replace(
        mx2, values=tuple(dataclasses.replace(v, conditions=(on_relay,)) for v in mx2.values)
    )
    assert changed.condition_values == ()
    dhw = _value("deltasol_mx_2", "Heizung_Wf1_ThBwErwaermung_TEin")
    relay = _value("deltasol_mx_2", "Relais_Regler_R1_Handbetrieb")
    assert mx2.applies(dhw, {"Heizung_Wf1_Type": 2})
    assert not mx2.applies(dhw, {"Heizung_Wf1_Type": 1})
    assert mx2.applies(dhw, {})  # not read: no evidence that it has no effect
    assert mx2.applies(relay, {"Heizung_Wf1_Type": 0})  # no conditions
    e_v2 = _catalog("deltasol_e_v2")
    legionella = _value("deltasol_e_v2", "O_Hk1_TWW_Legioschutz")
    conditions = {c.value_id: c for c in legionella.conditions}
    both = {value_id: condition.satisfying_raw() for value_id, condition in conditions.items()}
    assert e_v2.applies(legionella, both)
    for value_id, condition in conditions.items():
        failing = next(raw for raw in range(256) if not condition.holds(raw))
        assert not e_v2.applies(legionella, both | {value_id: failing})  # every one counts


def test_unit_selectors() -> None:
    selectors = {value.unit_selector for _, value in ALL_VALUES}
    assert selectors == {None, "TemperatureSelector", "TemperatureHysteresisSelector"}
    assert _value("deltasol_c", "TSp1Max").unit_selector is None  # plain numbers in the C list
    assert _value("deltasol_cs4", "TSp1Max").unit_selector == "TemperatureSelector"


def test_values_are_hashable() -> None:
    # labels take no part in the hash; equal values in two catalogs are one set member
    mx2 = _catalog("deltasol_mx_2")
    assert len(set(mx2.values)) == len(mx2.values)
    assert len({*_catalog("deltasol_mx").values, *mx2.values}) == len(mx2.values)
    assert hash(_catalog("deltasol_c"))


# --- the data file parser -----------------------------------------------------------------------


def _document(values: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "option_names": {"off": {"en": "Off", "de": "Aus"}, "on": {"en": "On", "de": "Ein"}},
            "option_sets": {"off_on": [[0, "off"], [1, "on"]]},
            "value_names": {"thing_{n}": {"en": "Thing {n}", "de": "Ding {n}"}},
            "controllers": [
                {
                    "key": "test",
                    "name": "Test",
                    "address": "0x0100",
                    "major_version": None,
                    "hashes_listed": True,
                    "values": values,
                }
            ],
        }
    ).encode()


def test_parse_minimal_document() -> None:
    parsed = catalog._parse(
        _document(
            [{"id": "A", "hash": value_id_hash("A"), "key": "thing_{n}", "n": 7, "kind": "switch"}]
        )
    )
    (controller,) = parsed.controllers
    (value,) = controller.values
    assert (controller.address, value.key, value.name("de")) == (0x100, "thing_7", "Ding 7")
    assert parsed.value_names == {"thing": {"en": "Thing {n}", "de": "Ding {n}"}}


def test_parse_rejects_a_wrong_hash() -> None:
    with pytest.raises(CatalogError, match="the hash of A is 65, not 66"):
        catalog._parse(_document([{"id": "A", "hash": 66, "key": "thing_{n}", "kind": "switch"}]))


def test_parse_rejects_a_wrong_condition_hash() -> None:
    entry = {
        "id": "A",
        "hash": 65,
        "key": "thing_{n}",
        "kind": "switch",
        "conditions": [{"id": "B", "hash": 65, "in": [1]}],
    }
    with pytest.raises(CatalogError, match="the hash of B is 66, not 65"):
        catalog._parse(_document([entry]))


# --- agreement with RESOL's value lists (needs ../shared) ---------------------------------------

REFERENCE_FILES = {
    "deltasol_bs4_v2": "resol-deltasol-bs4v2-103.json",
    "deltasol_bx_plus": "resol-deltasol-bx-plus-xxx.json",
    "deltasol_c": "resol-deltasol-c-104.json",
    "deltasol_cs_plus": "resol-deltasol-cs-plus-110.json",
    "deltasol_cs2": "resol-deltasol-cs2-200.json",
    "deltasol_cs4": "resol-deltasol-cs4-200.json",
    "deltasol_e_v2": "resol-deltasol-e-v2-100.json",
    "deltasol_mx_1": "resol-deltasol-mx-112.json",
    "deltasol_mx_2": "resol-deltasol-mx-2xx.json",
    "deltasol_slt": "resol-deltasol-slt-102.json",
    "deltatherm_hc": "resol-deltatherm-hc-xxx.json",
}
# Adjustable values per file by the reference library's rule (reference §11.1 / §11.4).
ADJUSTABLE_COUNTS = {
    "resol-deltasol-bs4v2-103.json": 87,
    "resol-deltasol-bx-plus-xxx.json": 4351,
    "resol-deltasol-c-104.json": 63,
    "resol-deltasol-cs-plus-110.json": 82,
    "resol-deltasol-cs2-200.json": 92,
    "resol-deltasol-cs4-200.json": 92,
    "resol-deltasol-e-v2-100.json": 925,
    "resol-deltasol-mx-112.json": 6291,
    "resol-deltasol-mx-2xx.json": 6144,
    "resol-deltasol-slt-102.json": 2651,
    "resol-deltatherm-hc-xxx.json": 5753,
}
# Option labels in the files (German or English ids) → the catalog's option keys.
OPTION_KEYS = {
    "Aus": "off",
    "Off": "off",
    "Ein": "on",
    "On": "on",
    "Auto": "auto",
    "Automatik": "auto",
    "Min": "min",
    "Max": "max",
    "Tag": "day",
    "Nacht": "night",
    "Sommer": "summer",
    "Urlaub": "holiday",
    "Deaktiviert": "disabled",
    "Systemkuehlung": "system_cooling",
    "Kollektorkuehlung": "collector_cooling",
    "Timer": "timer",
    "Manuell": "manual",
}
SWITCH_TYPES = {"Boolean", "State", "Activity"}
FILE_VALUES = [(c, v) for c, v in ALL_VALUES if c.key in REFERENCE_FILES]
FILE_VALUE_IDS = [f"{c.key}-{v.key}" for c, v in FILE_VALUES]


@cache
def _reference(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    document = json.loads(reference_file("controller-values", name).read_text(encoding="utf-8"))
    return document, {value["id"]: value for value in document["values"]}


@cache
def _adjustable(name: str) -> frozenset[str]:
    """The ids the reference library marks adjustable (§11.4)."""
    _, by_id = _reference(name)
    marked = set()
    for value in by_id.values():
        if "storage" in value and not value.get("allowParameterization"):
            continue
        target = value
        while target.get("compoundValueRef") in by_id:
            target = by_id[target["compoundValueRef"]]
        marked.add(target["id"])
    return frozenset(marked)


def _number(text: str) -> Decimal:
    """A number string of the files in display units: ``,`` decimals, ``HH:MM`` as minutes."""
    if ":" in text:
        hours, minutes = text.split(":")
        return Decimal(int(hours) * 60 + int(minutes))
    return Decimal(text.replace(",", "."))


def _decimal(number: float | None) -> Decimal | None:
    return None if number is None else Decimal(repr(number))


@pytest.mark.parametrize(("name", "count"), ADJUSTABLE_COUNTS.items())
def test_adjustable_rule_reproduces_the_reference_counts(name: str, count: int) -> None:
    assert len(_adjustable(name)) == count


@pytest.mark.parametrize("key", REFERENCE_FILES)
def test_controller_matches_its_value_list(key: str) -> None:
    document, by_id = _reference(REFERENCE_FILES[key])
    controller = _catalog(key)
    assert int(document["deviceAddress"], 16) == controller.address
    assert controller.hashes_listed == any("idHash" in value for value in by_id.values())


@pytest.mark.parametrize(("controller", "value"), FILE_VALUES, ids=FILE_VALUE_IDS)
def test_value_matches_its_value_list(controller: ControllerCatalog, value: CatalogValue) -> None:
    name = REFERENCE_FILES[controller.key]
    _, by_id = _reference(name)
    entry = by_id[value.value_id]
    assert entry.get("idHash", value.id_hash) == value.id_hash
    assert value.value_id in _adjustable(name)
    assert "compoundValueRef" not in entry  # the parent is addressed, never a unit variant
    kind = entry["type"]["rootTypeId"]

    for condition in value.conditions:
        selector = by_id[condition.value_id]
        assert selector.get("idHash", condition.id_hash) == condition.id_hash
        assert condition.raw_values <= {
            int(text["value"]) for text in selector["type"]["valueTexts"]
        }

    if value.kind in {ValueKind.SELECT, ValueKind.SWITCH}:
        texts = entry["type"]["valueTexts"]
        assert [int(text["value"]) for text in texts] == [option.raw for option in value.options]
        for text, option in zip(texts, value.options, strict=True):
            if "id" in text:
                assert OPTION_KEYS[text["id"]] == option.key
        assert (kind in SWITCH_TYPES) == (value.kind is ValueKind.SWITCH)
        assert value.unit_selector is None
        return

    if kind == "DateTime":  # the clock date: no limits, whole seconds since 2001
        assert (value.kind, value.unit, value.minimum, value.maximum, value.step) == (
            ValueKind.CLOCK,
            "s",
            None,
            None,
            1,
        )
        return

    limits = entry["type"]
    assert value.unit_selector == limits.get("selectorValueRef")
    if value.unit_selector is not None:
        suffix = {"TemperatureProxy": ("_C", "°C"), "HysteresisProxy": ("_K", "K")}[kind]
        assert value.unit == suffix[1]
        child = by_id[value.value_id + suffix[0]]
        assert child["compoundValueRef"] == value.value_id
        limits = child["type"]
    elif kind == "Time":
        assert value.unit == "min"
    else:
        assert kind == "Number"
    store_factor = limits.get("storeFactors", "1")
    factor = Decimal(1) if ":" in store_factor else _number(store_factor)
    quants = [_number(quant) for quant in limits.get("quants", [])]
    assert value.factor == factor
    assert _decimal(value.minimum) == _number(limits["minimums"])
    assert _decimal(value.maximum) == _number(limits["maximums"])
    assert _decimal(value.step) == min((q for q in quants if q > 0), default=factor)
