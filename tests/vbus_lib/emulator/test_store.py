"""The parameter store: value lists loaded, the default DeltaSol MX store."""

from __future__ import annotations

import json
import zlib

import pytest

from aiovbus.emulator import MX_CHANGESET, ParameterStore, StoredValue
from aiovbus.errors import EmulatorError
from tests.vbus_lib.conftest import reference_file

from .common import MX, VALUE_LIST

pytestmark = pytest.mark.usefixtures("socket_enabled")


def test_parameter_store_from_a_value_list() -> None:
    store = ParameterStore.from_controller_values(json.dumps(VALUE_LIST))
    assert store.changeset == zlib.crc32(b"test-controller") & 0x7FFFFFFF
    assert store.address == 0x4212
    expected = {
        "Handbetrieb1": StoredValue(38, 1, "Handbetrieb1", 1887930473, 0, 2),
        "TSp1Max": StoredValue(432, 600, "TSp1Max", None, 40, 950),
        "Proxy": StoredValue(10, 400, "Proxy", None, 40, 950),
        "Proxy_C": StoredValue(11, 400, "Proxy_C", None, 40, 950),
        "Start": StoredValue(20, 1200, "Start", None, 0, 1410),
        "Timer": StoredValue(21, 9960, "Timer", None, 0, 10079),
        "Enum": StoredValue(22, 2, "Enum", None, 0, 2),
        "Blob": StoredValue(23, 0, "Blob", None, None, None),
        "Odd": StoredValue(24, 0, "Odd", None, None, None),
    }
    for value_id, value in expected.items():
        assert store[value_id] == value
    assert len(store) == 10
    assert store.read(0) == store.changeset
    assert store.read(99) is None
    assert store.write(99, 1) is None
    assert store.index_of(1887930473) == 38
    assert store.hash_of(432) == 0
    assert store.hash_of(99) is None
    assert store.entry(38) is store["Handbetrieb1"]
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        store.add(StoredValue(0, 1))
    assert ParameterStore.from_controller_values(b'{"values": []}', changeset=7).changeset == 7
    for bad in (
        b"[]",
        b"{",
        b'{"values": [{"index": 1}]}',
        b'{"values": [{"id": "a", "index": "x"}]}',
    ):
        with pytest.raises(EmulatorError, match="invalid controller value list"):
            ParameterStore.from_controller_values(bad)


def test_default_mx_store_matches_the_mx_2xx_value_list() -> None:
    path = reference_file("controller-values", "resol-deltasol-mx-2xx.json")
    loaded = ParameterStore.from_controller_values(path.read_bytes())
    assert loaded.changeset == MX_CHANGESET
    assert loaded.address == MX
    assert len(loaded) == 8888
    default = ParameterStore.deltasol_mx()
    assert len(default) == 13
    for value_id in (
        "AutoSommerWinterzeit",
        "Systemzeit",
        "Relais_Regler_R1_Handbetrieb",
        "Relais_Regler_R2_Handbetrieb",
        "Solar_Sp1_Tmax",
        "Solar_Urlaubsfunktion_Kuehlung",
        "Solar_Urlaubsfunktion_TSp1Max",
        "Heizung_Wf1_ThBwErwaermung_TEin",
        "Heizung_Wf1_ThBwErwaermung_TAus",
        "Heizung_Heizkreis1_dTNachtkorrektur",
        "Heizung_Heizkreis1_Betriebsart",
        "Heizung_Heizkreis1_OUrlaub",
        "Urlaubsfunktion_Tage",
    ):
        mine, theirs = default[value_id], loaded[value_id]
        assert (mine.index, mine.id_hash, mine.minimum, mine.maximum) == (
            theirs.index,
            theirs.id_hash,
            theirs.minimum,
            theirs.maximum,
        ), value_id
    assert loaded["Relais_Regler_R1_Handbetrieb"].value == 2
    assert loaded["Solar_Sp1_dTaus"].minimum == 5  # HysteresisProxy: limits of the _K child
