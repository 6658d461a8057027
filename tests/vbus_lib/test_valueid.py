"""Tests for the value-ID hash (protocol reference §18, parameterization reference §9/§11)."""

from __future__ import annotations

import doctest
import json

import pytest

from aiovbus import valueid
from aiovbus.valueid import value_id_hash

from .conftest import reference_file

# protocol reference §18 (the first eight rows) and parameterization reference §9 (the last two).
HASH_TABLE = [
    ("Relais_Regler_R1_Handbetrieb", 763685401, 0x2D84EA19),
    ("Schema", 1222011281, 0x48D66991),
    ("Vorrang", 1733041791, 0x674C1E7F),
    ("t_st", 4276058, 0x00413F5A),
    ("Handbetrieb1", 1887930473, 0x70878869),
    ("Handbetrieb2", 1887930474, 0x7087886A),
    ("Heizung_Heizkreis1_Betriebsart", 1976214414, 0x75CAA38E),
    ("Systemzeit", 1422309377, 0x54C6B801),
    ("OHolyCool", 1242329976, 0x4A0C7378),
    ("THolyCool", 276473981, 0x107AA87D),
]

# parameterization reference §11.1 / §9: values and idHash entries per controller-values file.
CONTROLLER_VALUE_FILES = {
    "resol-deltasol-bs4v2-103.json": (161, 0),
    "resol-deltasol-bx-plus-xxx.json": (5835, 0),
    "resol-deltasol-c-104.json": (63, 63),
    "resol-deltasol-cs-plus-110.json": (148, 148),
    "resol-deltasol-cs2-200.json": (174, 0),
    "resol-deltasol-cs4-200.json": (174, 0),
    "resol-deltasol-e-v2-100.json": (925, 925),
    "resol-deltasol-mx-112.json": (7945, 7945),
    "resol-deltasol-mx-2xx.json": (8888, 8888),
    "resol-deltasol-slt-102.json": (3399, 3399),
    "resol-deltatherm-hc-xxx.json": (7241, 7241),
}


def _values(name: str) -> list[dict[str, object]]:
    document = json.loads(reference_file("controller-values", name).read_text(encoding="utf-8"))
    values: list[dict[str, object]] = document["values"]
    return values


@pytest.mark.parametrize(("value_id", "decimal", "hexadecimal"), HASH_TABLE)
def test_hash_table(value_id: str, decimal: int, hexadecimal: int) -> None:
    assert decimal == hexadecimal
    assert value_id_hash(value_id) == decimal


def test_empty_id_hashes_to_zero() -> None:
    assert value_id_hash("") == 0


def test_single_byte_is_its_code() -> None:
    assert value_id_hash("A") == 0x41


def test_hash_wraps_at_32_bits_and_keeps_31() -> None:
    # 40 x "z" overflows 32 bits many times; the reference masks the 32-bit state each step
    # and drops bit 31 only at the end.
    expected = 0
    for byte in b"z" * 40:
        expected = (expected * 33 + byte) % 2**32
    assert value_id_hash("z" * 40) == expected % 2**31
    assert 0 <= value_id_hash("z" * 40) < 2**31


def test_docstring_example() -> None:
    assert doctest.testmod(valueid, verbose=False) == doctest.TestResults(failed=0, attempted=1)


@pytest.mark.parametrize("value_id", ["Wärme", "Temp°", "\u2603"])
def test_non_ascii_id_raises(value_id: str) -> None:
    with pytest.raises(UnicodeEncodeError):
        value_id_hash(value_id)


@pytest.mark.parametrize(("name", "counts"), sorted(CONTROLLER_VALUE_FILES.items()))
def test_controller_value_file_hashes(name: str, counts: tuple[int, int]) -> None:
    values = _values(name)
    with_hash = [value for value in values if "idHash" in value]
    assert (len(values), len(with_hash)) == counts
    mismatches = [
        (value["id"], value["idHash"])
        for value in with_hash
        if value_id_hash(str(value["id"])) != value["idHash"]
    ]
    assert mismatches == []


def test_all_controller_value_hashes_total() -> None:
    total = 0
    matching = 0
    for name in CONTROLLER_VALUE_FILES:
        for value in _values(name):
            if "idHash" in value:
                total += 1
                matching += value_id_hash(str(value["id"])) == value["idHash"]
    assert total == 28609
    assert matching == 28609
