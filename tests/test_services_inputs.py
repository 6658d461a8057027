"""Generated input for actions and settings entities: the exact write, or a translated error.

Hypothesis draws the data of ``resol_vbus.get_value`` / ``resol_vbus.set_value`` calls: for every
field a valid choice, a wrong but plausible one (a value the catalog does not allow, a device of
another integration, an entry that is not loaded) or junk (ints, floats with NaN, infinities,
-0.0 and 1e308, booleans, None, texts with numbers and non-ASCII characters, lists, dicts, huge
ints), and calls the real actions against the emulated DeltaSol MX. A model of the actions,
written from their rules (README "Actions", the docstring of ``services.py``) and not from their
code, says what must happen:

* valid input: the controller holds exactly the value asked for (or, for a write outside the
  catalog, the value its own limits make of it), and the answer says so;
* invalid input: a :class:`ServiceValidationError` with one of the translation keys the input
  deserves and the English text of that key; nothing written, and no datagram at all unless the
  value had to be looked up on the controller (whether a value ID is a typo only it knows);
* nothing else, in particular no ``TypeError``, ``ValueError`` or ``vol.Invalid``.

The same for the entities: numbers (Home Assistant checks min/max itself; off-step values and NaN
are ours) and selects (Home Assistant checks the options itself).

Every example uses the same Home Assistant instance; the store's values carry over, which the
model reads before each call. Examples are bounded (a look-up of an unknown value ID waits for
the controller's silence, about a second); ``VBUS_INPUT_EXAMPLES`` raises the count.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.resol_vbus.const import CONF_ALLOW_ANY_VALUE, CONF_WRITE_LIMIT, DOMAIN
from custom_components.resol_vbus.vbus.catalog import CatalogError, catalog_for
from custom_components.resol_vbus.vbus.emulator import MX_CHANGESET, StoredValue
from custom_components.resol_vbus.vbus.valueid import value_id_hash

from .common import UNIQUE_ID, device, setup_values

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from custom_components.resol_vbus.coordinator import ValuesCoordinator
    from custom_components.resol_vbus.vbus.catalog import CatalogValue
    from custom_components.resol_vbus.vbus.emulator import (
        ControllerSimulator,
        Emulator,
        ParameterStore,
    )

EXAMPLES: Final = int(os.environ.get("VBUS_INPUT_EXAMPLES", "60"))
TRANSLATIONS: Final = Path(__file__).parents[1] / "custom_components" / DOMAIN / "translations"
MX: Final = 0x7E11
GHOST: Final = 0x7E99  # a controller address nothing on the bus sends from

# -- the rules of the actions (README "Actions"; services.yaml) --------------------------------

TARGETS: Final = ("value_id", "value_id_hash", "value_index")
GET_FIELDS: Final = frozenset({"config_entry_id", "device_id", *TARGETS, "controller"})
SET_FIELDS: Final = GET_FIELDS | {"value"}
RANGES: Final = {
    "value_id_hash": (0, 0x7FFFFFFF),
    "value_index": (1, 0xFFFF),
    "controller": (0, 0xFFFF),
    "value": (-0x80000000, 0x7FFFFFFF),
}
ID_TEXT: Final = re.compile(r"[A-Za-z0-9_]+")
NUMBER_TEXT: Final = re.compile(r"\s*[+-]?[0-9]+\s*")

# The catalog's rules for some DeltaSol MX 2.x values (RESOL's value list): allowed raw values.
CATALOG: Final[dict[str, range]] = {
    "Relais_Regler_R1_Handbetrieb": range(5),  # off, min, auto, max, on
    "AutoSommerWinterzeit": range(2),
    "Solar_Sp1_Tmax": range(40, 951, 10),  # 4.0 … 95.0 °C in steps of 1 K
    "Heizung_Heizkreis1_dTNachtkorrektur": range(-200, 301, 10),  # -20 … 30 K
    "Urlaubsfunktion_Tage": range(201),
}
#: Known to the controller but not in the catalog (the tests add it to the emulated store).
EXTRA: Final = StoredValue(
    index=20000, value=7, value_id="Zusatz_Testwert", minimum=-100, maximum=3000
)
TYPO: Final = "Solar_Sp1_Tmaks"
UNKNOWN_INDEX: Final = 4000  # in range, but the controller has no such value


def whole(value: object) -> int | None:
    """The model's reading of a whole-number field (``None``: not a whole number)."""
    match value:
        case bool():
            return None
        case int():
            return value
        case float() if math.isfinite(value) and value % 1 == 0:
            return int(value)
        case str() if NUMBER_TEXT.fullmatch(value):
            return int(Decimal(value.strip()))
    return None


def is_value_id(value: object) -> bool:
    return isinstance(value, str) and ID_TEXT.fullmatch(value) is not None


def message(domain_key: str, placeholders: dict[str, str] | None) -> str:
    """The English text Home Assistant shows for one of our exception keys."""
    texts = json.loads((TRANSLATIONS / "en.json").read_text(encoding="utf-8"))
    return texts["exceptions"][domain_key]["message"].rstrip(".").format(**(placeholders or {}))


# -- generated calls -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """Something the test creates, resolved to its id when the call is made."""

    name: str


LOADED, NOT_LOADED, OTHER_ENTRY = Ref("loaded"), Ref("not loaded"), Ref("other integration")
CONTROLLER, HUB, GHOST_DEVICE = Ref("controller"), Ref("hub"), Ref("ghost controller")
OTHER_DEVICE, NOT_LOADED_DEVICE = Ref("other device"), Ref("device of the entry not loaded")

JUNK: Final = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(
        [
            "",
            "650",
            " 7 ",
            "+0",
            "1.5",
            "650.0",
            "1e3",
            "0x10",
            "٣",
            "Ä",
            "nan",
            -0.0,
            0.5,
            1e308,
            float("nan"),
            float("inf"),
            -math.inf,
            2**31,
            -(2**31) - 1,
            2**63,
            10**400,
        ]
    ),
    st.sampled_from([30, 5000]).map("9".__mul__),  # a number too long for int()
)


def quick(field: str, value: object) -> object:
    """Junk for ``field``, but no value ID or hash the controller must be asked about.

    The controller stays silent about a value it does not know: each such look-up waits about
    a second, so they come from the curated choices only.
    """
    if field == "value_id" and is_value_id(value):
        return f"{value}-"
    if field == "value_id_hash" and (number := whole(value)) is not None and number >= 0:
        return -1
    return value


MX_IDS: Final = sorted(CATALOG)
#: Per field: choices that are valid on their own (a typo is, to the fields' rules) …
GOOD: Final[dict[str, st.SearchStrategy[Any]]] = {
    "config_entry_id": st.just(LOADED),
    "device_id": st.sampled_from([CONTROLLER, CONTROLLER, HUB, [CONTROLLER]]),
    "value_id": st.sampled_from([*MX_IDS * 2, EXTRA.value_id, EXTRA.value_id, TYPO]),
    "value_id_hash": st.sampled_from([*map(value_id_hash, [*MX_IDS, EXTRA.value_id])]),
    "value_index": st.sampled_from([1977, 3591, 13730, EXTRA.index, EXTRA.index, UNKNOWN_INDEX]),
    "controller": st.sampled_from([MX, MX, str(MX), float(MX)]),
    "value": st.one_of(
        st.integers(-300, 1100),
        st.sampled_from([0, 1, 2, 3, 4, 40, 200, 300, 650, 950, -200, 2**31 - 1, -(2**31)]),
        st.sampled_from(["650", " -200 ", "+2", 650.0, -0.0]),
    ),
}
#: … and choices that are wrong, plausibly or not at all.
WRONG: Final[dict[str, list[object]]] = {
    "config_entry_id": [NOT_LOADED, OTHER_ENTRY, "no", ""],
    "device_id": [GHOST_DEVICE, OTHER_DEVICE, NOT_LOADED_DEVICE, [CONTROLLER, HUB], [], "no"],
    "value_id": ["", "Solar_Sp1_Tmax ", "Solar-Sp1", "Ä_1", "Relais_Regler_R1_Handbetrieb\n"],
    "value_id_hash": [-1, 2**31, 763685401.5],
    "value_index": [0, 0x10000, -1977, 1977.5],
    "controller": [GHOST, -1, 0x10000, "0x7E11"],
    "value": [2**31, -(2**31) - 1, 650.5, "6,5", True],
}


def wrong(field: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(WRONG[field]), JUNK.map(lambda value: quick(field, value)))


@st.composite
def service_calls(draw: st.DrawFn) -> tuple[str, bool, dict[object, object]]:
    """(action, "Allow writing any value", data with :class:`Ref` placeholders).

    Mostly every field valid on its own; else one or two fields wrong.
    """
    service = draw(st.sampled_from(["get_value", "set_value", "set_value"]))
    fields = list(
        draw(
            st.sampled_from(
                [("config_entry_id",), ("device_id",), ("config_entry_id", "device_id")]
            )
        )
    )
    fields += draw(
        st.sampled_from([*[(field,) for field in TARGETS] * 4, (), ("value_id", "value_index")])
    )
    if draw(st.integers(0, 3)) == 0:
        fields.append("controller")
    if service == "set_value" and draw(st.integers(0, 15)):
        fields.append("value")
    faulty = draw(st.one_of(st.just(()), st.lists(st.sampled_from(fields), max_size=2)))
    data: dict[object, object] = {
        field: draw(wrong(field) if field in faulty else GOOD[field]) for field in fields
    }
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.sampled_from(["entity_id", "value ", "Value", "0"]))] = draw(JUNK)
    return service, draw(st.booleans()), data


# -- the world the calls act on ------------------------------------------------------------------


@dataclass
class World:
    hass: HomeAssistant
    values: ValuesCoordinator
    controller: ControllerSimulator
    ids: dict[Ref, str]

    @property
    def store(self) -> ParameterStore:
        return self.controller.store

    def resolve(self, value: object) -> object:
        if isinstance(value, Ref):
            return self.ids[value]
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value


@pytest.fixture
async def world(hass: HomeAssistant, mx: Emulator) -> World:
    """The integration with the emulated MX, a not-loaded entry and devices of every kind."""
    values = await setup_values(hass, mx, **{CONF_WRITE_LIMIT: 10**6})
    entry = values.config_entry
    assert values.catalog.value(EXTRA.value_id) is None
    store = mx.controller(1).store
    store.add(replace(EXTRA, id_hash=value_id_hash(EXTRA.value_id)))
    registry = dr.async_get(hass)
    not_loaded = MockConfigEntry(domain=DOMAIN, title="Not loaded", unique_id="001E66000000-0")
    other = MockConfigEntry(domain="other_integration", title="Other")
    not_loaded.add_to_hass(hass)
    other.add_to_hass(hass)
    assert not_loaded.state is ConfigEntryState.NOT_LOADED

    def created(config_entry: MockConfigEntry, identifier: tuple[str, str]) -> str:
        return registry.async_get_or_create(
            config_entry_id=config_entry.entry_id, identifiers={identifier}, name=identifier[1]
        ).id

    ids = {
        LOADED: entry.entry_id,
        NOT_LOADED: not_loaded.entry_id,
        OTHER_ENTRY: other.entry_id,
        CONTROLLER: device(hass, entry.entry_id, (DOMAIN, f"{UNIQUE_ID}_00_7E11")).id,
        HUB: device(hass, entry.entry_id, (DOMAIN, UNIQUE_ID)).id,
        GHOST_DEVICE: created(entry, (DOMAIN, f"{UNIQUE_ID}_00_{GHOST:04X}")),
        OTHER_DEVICE: created(other, ("other_integration", "thing")),
        NOT_LOADED_DEVICE: created(not_loaded, (DOMAIN, "001E66000000-0_00_7E11")),
    }
    return World(hass, values, mx.controller(1), ids)


# -- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a call must do: raise one of ``errors``, or leave ``stored`` at ``index``."""

    errors: frozenset[str] = frozenset()
    #: The error may come after a look-up on the controller (read-only datagrams).
    asks_controller: bool = False
    failure: str | None = None  # a HomeAssistantError that is not the user's error
    index: int | None = None
    stored: int | None = None
    written: int | None = None  # what the write asks for, None: no write

    @classmethod
    def error(cls, key: str, *, asks_controller: bool = False) -> Outcome:
        return cls(frozenset({key}), asks_controller=asks_controller)

    @classmethod
    def success(cls, stored: StoredValue, now: int, asked: int | None = None) -> Outcome:
        """``stored`` holds ``now`` afterwards; a write of ``asked`` unless it held that."""
        written = None if asked is None or asked == stored.value else asked
        return cls(index=stored.index, stored=now, written=written)


def given_fields(data: dict[object, object]) -> dict[object, object]:
    return {field: value for field, value in data.items() if value is not None}


def input_errors(service: str, data: dict[object, object]) -> set[str]:
    """Every rule the fields break on their own (the action may report any one of them)."""
    given = given_fields(data)
    fields = SET_FIELDS if service == "set_value" else GET_FIELDS
    errors = set()
    if set(given) - fields:
        errors.add("unknown_field")
    targets = [field for field in TARGETS if field in given]
    if len(targets) != 1:
        errors.add("value_ambiguous" if targets else "value_required")
    if "value_id" in given and not is_value_id(given["value_id"]):
        errors.add("invalid_value_id")
    for field, (low, high) in RANGES.items():
        if field in given and field in fields:
            number = whole(given[field])
            if number is None:
                errors.add("value_not_integer" if field == "value" else "field_not_integer")
            elif not low <= number <= high:
                errors.add("field_out_of_range")
    if service == "set_value" and "value" not in given:
        errors.add("value_to_write_required")
    return errors | target_errors(given)


#: The entries (loaded or not) the test creates, and the devices: their entry and address.
ENTRIES: Final = ((LOADED, True), (NOT_LOADED, False))
DEVICES: Final = (
    (CONTROLLER, True, MX),
    (HUB, True, None),
    (GHOST_DEVICE, True, GHOST),
    (NOT_LOADED_DEVICE, False, MX),
)
type Device = tuple[Ref, bool, int | None]


def named_device(given: dict[object, object]) -> tuple[Device | None, set[str]]:
    """The device the call names (a list of one will do), and what is wrong with it."""
    named = given["device_id"]
    if isinstance(named, list) and len(named) == 1:
        named = named[0]
    device = next((item for item in DEVICES if item[0] == named), None)
    if named == OTHER_DEVICE:
        return None, {"device_not_vbus"}
    return device, set() if device else {"device_not_found"}


def target_errors(given: dict[object, object]) -> set[str]:
    """The rules the connection, device and controller address break."""
    errors = set()
    loaded: bool | None = None  # whether the entry the call names is loaded
    device = None
    if "config_entry_id" in given:
        named = given["config_entry_id"]
        loaded = next((state for ref, state in ENTRIES if ref == named), None)
        if loaded is None:
            errors.add("entry_not_found")
    if "device_id" in given:
        device, device_errors = named_device(given)
        errors |= device_errors
        if device and loaded is not None and loaded != device[1]:
            errors.add("target_mismatch")
        elif device and loaded is None:
            loaded = device[1]
    if "config_entry_id" not in given and "device_id" not in given:
        errors.add("target_required")
    if loaded is False:
        errors.add("entry_not_loaded")
    address = whole(given.get("controller"))
    if "controller" not in given and device is not None:
        address = device[2]
    if address is not None and address != MX and 0 <= address <= 0xFFFF:
        errors.add("controller_unknown")
    return errors


def model(world: World, service: str, data: dict[object, object], *, any_value: bool) -> Outcome:
    """What the call must do, given the store's values now."""
    if errors := input_errors(service, data):
        return Outcome(frozenset(errors))
    given = given_fields(data)
    store = world.store
    by_index = "value_index" in given
    if by_index:
        stored = store.entry(whole(given["value_index"]) or 0)
    else:
        named = given.get("value_id")
        id_hash = value_id_hash(named) if isinstance(named, str) else whole(named)
        if id_hash is None:
            id_hash = whole(given["value_id_hash"])
        stored = next((item for item in store.values() if item.id_hash == id_hash), None)
        if stored is None:
            return Outcome.error("value_id_unknown", asks_controller=True)
    if service == "get_value":
        return (
            Outcome(failure="value_rejected")
            if stored is None
            else Outcome.success(stored, stored.value)
        )
    return write_outcome(stored, whole(given["value"]) or 0, by_index=by_index, any_value=any_value)


def write_outcome(
    stored: StoredValue | None, raw: int, *, by_index: bool, any_value: bool
) -> Outcome:
    """What a write of ``raw`` to ``stored`` (``None``: the controller has no such index) does."""
    if stored is not None and not by_index and stored.value_id != EXTRA.value_id:
        # A catalog value (the catalog has every value of the store but EXTRA).
        if raw not in CATALOG[str(stored.value_id)]:
            return Outcome.error("invalid_value")
        return Outcome.success(stored, raw, raw)
    if not any_value:
        return Outcome.error("value_not_in_catalog", asks_controller=not by_index)
    if stored is None:
        return Outcome(failure="value_rejected")
    return Outcome.success(stored, stored.clamp(raw), raw)


# -- the tests -----------------------------------------------------------------------------------


GENERATED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def attempt(
    hass: HomeAssistant, domain: str, service: str, data: dict[str, Any], *, response: bool
) -> tuple[dict[str, Any] | None, HomeAssistantError | None]:
    """The action's response, or the Home Assistant error it raised (anything else escapes)."""
    try:
        result = await hass.services.async_call(
            domain, service, data, blocking=True, return_response=response
        )
    except HomeAssistantError as err:
        return None, err
    return result, None


def assert_translated(err: HomeAssistantError) -> None:
    assert err.translation_domain == DOMAIN
    assert err.translation_key is not None
    assert str(err) == message(err.translation_key, err.translation_placeholders)


def named(service: str, *, any_value: bool = False, **data: object) -> dict[str, object]:
    """An explicit example: the cases the issue names, checked by the same model."""
    return {"call": (service, any_value, data)}


@GENERATED
@given(call=service_calls())
@example(**named("set_value", config_entry_id=LOADED, value_id="Solar_Sp1_Tmax", value=655.5))
@example(**named("set_value", config_entry_id=LOADED, value_id="Urlaubsfunktion_Tage", value=1.5))
@example(**named("set_value", config_entry_id=LOADED, value_index=EXTRA.index, value=True))
@example(**named("set_value", config_entry_id=LOADED, value_index=3591, value=math.nan))
@example(
    **named("set_value", any_value=True, config_entry_id=LOADED, value_index=3591, value=-math.inf)
)
@example(**named("set_value", config_entry_id=LOADED, value_id="Solar_Sp1_Tmax", value="650"))
@example(
    **named(
        "set_value", any_value=True, config_entry_id=LOADED, value_index=EXTRA.index, value=2**40
    )
)
@example(**named("get_value", config_entry_id=LOADED, value_id=""))
@example(**named("get_value", config_entry_id=LOADED, value_id="Ä"))
@example(**named("get_value", config_entry_id=LOADED, value_id="Solar_Sp1_Tmax", value_index=3591))
@example(**named("get_value", config_entry_id=LOADED))
@example(**named("get_value", config_entry_id=LOADED, value_index=0))
@example(**named("get_value", config_entry_id=LOADED, value_index=0x10000))
@example(**named("get_value", config_entry_id=LOADED, value_index=3591, controller=0x10000))
@example(**named("get_value", device_id="no", value_index=3591))
@example(**named("get_value", device_id=OTHER_DEVICE, value_index=3591))
@example(**named("get_value", config_entry_id=OTHER_ENTRY, value_index=3591))
@example(**named("get_value", config_entry_id=NOT_LOADED, value_index=3591))
@example(**named("set_value", config_entry_id=LOADED, value_id=TYPO, value=600))
@example(**named("set_value", config_entry_id=LOADED, value_id=EXTRA.value_id, value=600))
@example(
    **named(
        "set_value", any_value=True, config_entry_id=LOADED, value_id=EXTRA.value_id, value=-101
    )
)
async def test_generated_service_calls(world: World, call: tuple[str, bool, dict]) -> None:
    service, any_value, symbolic = call
    hass, store = world.hass, world.store
    entry = world.values.config_entry
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_ALLOW_ANY_VALUE: any_value}
    )
    expected = model(world, service, symbolic, any_value=any_value)
    writes, received = list(store.writes), world.controller.received_total
    data = {str(field): world.resolve(value) for field, value in symbolic.items()}

    response, err = await attempt(hass, DOMAIN, service, data, response=True)
    event(f"{service}: {'success' if err is None else err.translation_key}")

    if err is not None:
        assert_translated(err)
        assert store.writes == writes
        if isinstance(err, ServiceValidationError):
            assert err.translation_key in expected.errors, (err.translation_key, expected)
            assert expected.asks_controller or world.controller.received_total == received
        else:  # the controller's answer, not the user's input
            assert (err.translation_key, expected.errors) == (expected.failure, frozenset())
        return
    assert (expected.errors, expected.failure) == (frozenset(), None), (response, expected)
    assert response is not None
    assert expected.index is not None
    assert (response["index"], response["value"]) == (expected.index, expected.stored)
    assert response["changeset"] == MX_CHANGESET
    assert store.read(expected.index) == expected.stored
    write = [] if expected.written is None else [(expected.index, expected.written)]
    assert store.writes == writes + write


@dataclass(frozen=True)
class EntityWrite:
    """A settings entity's action, and what the store held before."""

    entity_id: str
    index: int
    writes: list[tuple[int, int]]
    current: int | None
    err: HomeAssistantError | None

    def assert_written(self, world: World, raw: int, state: str) -> None:
        """The controller holds ``raw`` (written unless it held it) and the entity shows it."""
        assert self.err is None, self.err
        assert world.store.read(self.index) == raw
        assert world.store.writes == self.writes + (
            [] if raw == self.current else [(self.index, raw)]
        )
        assert world.hass.states.get(self.entity_id).state == state


async def entity_action(
    world: World, platform: str, key: str, value_id: str, service: str, **data: object
) -> EntityWrite:
    """Call ``platform.service`` on the entity of the catalog value ``key`` (id ``value_id``)."""
    unique_id = f"{UNIQUE_ID}_00_{MX:04X}_{key}"
    entity = er.async_get(world.hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity is not None, key
    index = world.store[value_id].index
    writes, current = list(world.store.writes), world.store.read(index)
    data = {ATTR_ENTITY_ID: entity, **data}
    _, err = await attempt(world.hass, platform, service, data, response=False)
    event("success" if err is None else f"{err.translation_domain}.{err.translation_key}")
    return EntityWrite(entity, index, writes, current, err)


def tenths(value: float) -> int | None:
    """``value`` °C as the raw tenths, if it is a whole number of them (float noise aside)."""
    if not math.isfinite(value):
        return None
    exact = Decimal(repr(value)) * 10
    raw = int(exact.to_integral_value(ROUND_HALF_UP))
    return raw if abs(exact - raw) <= Decimal("0.001") else None


@GENERATED
@given(
    value=st.one_of(
        st.floats(),
        st.integers(0, 1000).map(lambda tenths: tenths / 10),
        st.integers(4, 95).map(float),
        st.sampled_from([4.0, 95.0, 65.05, 64.999999999, 65.5, -0.0, 1e308, 5e-324, math.nan]),
    )
)
async def test_generated_number_values(world: World, value: float) -> None:
    """Store 1 maximum temperature: 4.0 … 95.0 °C in steps of 1 K (raw: tenths)."""
    write = await entity_action(
        world, NUMBER_DOMAIN, "store_1_max_temperature", "Solar_Sp1_Tmax", "set_value", value=value
    )
    err, raw = write.err, tenths(value)
    if not math.isnan(value) and not 4.0 <= value <= 95.0:
        # Home Assistant's own check, translated by the number integration.
        assert isinstance(err, ServiceValidationError)
        assert (err.translation_domain, err.translation_key) == ("number", "out_of_range")
    elif raw is None or raw not in CATALOG["Solar_Sp1_Tmax"]:
        assert isinstance(err, ServiceValidationError), value
        assert err.translation_key == "invalid_value"
        assert_translated(err)
    else:
        write.assert_written(world, raw, str(raw / 10))
        return
    assert world.store.writes == write.writes


OPTIONS: Final = {"off": 0, "min": 1, "auto": 2, "max": 3, "on": 4}


@GENERATED
@given(
    option=st.booleans().flatmap(
        lambda known: st.sampled_from(list(OPTIONS)) if known else st.text(max_size=6)
    )
)
async def test_generated_select_options(world: World, option: str) -> None:
    """Relay 1 manual mode: Home Assistant refuses unknown options, ours write the option's raw."""
    write = await entity_action(
        world,
        SELECT_DOMAIN,
        "relay_1_manual_mode",
        "Relais_Regler_R1_Handbetrieb",
        "select_option",
        option=option,
    )
    if option in OPTIONS:
        write.assert_written(world, OPTIONS[option], option)
        return
    assert isinstance(write.err, ServiceValidationError)
    assert (write.err.translation_domain, write.err.translation_key) == (
        "select",
        "not_valid_option",
    )
    assert world.store.writes == write.writes


def store_max() -> CatalogValue:
    """The DeltaSol MX 2.x catalog's store 1 maximum temperature."""
    catalog = catalog_for(MX, 2)
    assert catalog is not None
    value = catalog.value("Solar_Sp1_Tmax")
    assert value is not None
    return value


@pytest.mark.parametrize("raw", [True, 650.0, "650", None])
def test_the_catalog_takes_only_whole_raw_numbers(raw: object) -> None:
    """``validate_raw`` guards every write: ``True`` or ``650.0`` never reach the engine."""
    with pytest.raises(CatalogError, match="expected a whole raw number"):
        store_max().validate_raw(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("display", [math.nan, math.inf, -math.inf])
def test_the_catalog_refuses_nan_and_infinities(display: float) -> None:
    """A number entity passes NaN on (Home Assistant's min/max check lets it through)."""
    with pytest.raises(CatalogError, match="not a number the controller can store"):
        store_max().to_raw(display)
