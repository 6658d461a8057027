"""The project's catalog of controller values a home user may want to change.

For each supported controller (matched by VBus address and, for the DeltaSol MX, the major
firmware version) the catalog lists a small, reviewed set of adjustable values: relay manual
modes, holiday and cooling functions, heating-circuit settings, hot-water and store set points,
ΔT switch-on/off differences, thermal disinfection and the controller clock. Each value carries
its value id and value-id hash (values are addressed by hash, never by index: indices change
with firmware), its kind, the factor between the raw datagram value and the display value, its
limits and step in display units, and labels in English and German.

The data lives in ``data/catalog.json`` and is loaded once, on first use. Its facts come from
RESOL's value lists (see the notes at the top of that file); the tests check them against those
lists whenever the reference data is available.

Conversions happen in one place, :meth:`CatalogValue.to_raw` (which also validates range,
step and options) and :meth:`CatalogValue.to_display`:

======  ===================================  ==============================================
Kind    Display value                        Raw value
======  ===================================  ==============================================
number  ``int`` (factor 1) or ``float``      ``display / factor``
select  option key (``"auto"``)              the option's raw value
switch  ``bool``                             option ``off`` / ``on`` (0 / 1)
clock   ``datetime`` (unit ``s``)            seconds since 2001-01-01 00:00 local time
clock   ``time`` (unit ``min``)              minutes after local midnight
======  ===================================  ==============================================

Limits of values with a :attr:`CatalogValue.unit_selector` (RESOL's temperature proxies) are the
Celsius variant; they apply while that selector value reads 0 (Celsius).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from .errors import VBusError
from .valueid import value_id_hash

if TYPE_CHECKING:
    from collections.abc import Mapping

LANGUAGES: Final = ("en", "de")
# The controller clock counts local wall time from this moment (no time zone).
CLOCK_EPOCH: Final = datetime(2001, 1, 1)  # noqa: DTZ001
# Datagram values are signed 32-bit integers.
RAW_MIN: Final = -(2**31)
RAW_MAX: Final = 2**31 - 1
MINUTES_PER_DAY: Final = 24 * 60
# A display value may be this far (in raw units) from a raw step, to absorb float noise such as
# 44.99999999999999 from a °F → °C conversion; anything further off is rejected.
_RAW_TOLERANCE: Final = Decimal("0.001")
_DEVICE_CLASSES: Final = {"°C": "temperature", "min": "duration", "h": "duration", "d": "duration"}

type DisplayValue = int | float | str | bool | datetime | time


class ValueKind(StrEnum):
    """How a value is presented: the Home Assistant platform that fits it."""

    SELECT = "select"
    NUMBER = "number"
    SWITCH = "switch"
    CLOCK = "clock"


class CatalogError(VBusError, ValueError):
    """A value cannot be converted (out of range, off the step, unknown option, wrong type).

    Also raised when the catalog data itself is inconsistent (a hash that does not match).
    """


@dataclass(frozen=True, slots=True)
class CatalogOption:
    """One allowed raw value of a select or switch value, with a stable lower-case key."""

    raw: int
    key: str
    names: Mapping[str, str] = field(hash=False)

    def name(self, language: str = "en") -> str:
        """The label in ``language``, English if there is none."""
        return self.names.get(language, self.names["en"])


@dataclass(frozen=True, slots=True)
class CatalogCondition:
    """The value only has an effect while ``value_id`` reads one of ``raw_values``.

    With ``negated``, while it reads none of them. Example: a hot-water set point of heating
    optional function 1 matters only while that function's type is "DHW heating" (2), a
    heating-circuit setting only while the circuit's type is not "free" (0). Callers may read
    the condition values once and leave out the values whose conditions do not hold.
    """

    value_id: str
    id_hash: int
    raw_values: frozenset[int]
    negated: bool = False

    def holds(self, raw: int) -> bool:
        """Whether the condition value's current ``raw`` value satisfies the condition."""
        return (raw in self.raw_values) != self.negated

    def satisfying_raw(self) -> int:
        """The smallest raw value (0 or more) under which the condition holds."""
        if not self.negated:
            return min(self.raw_values)
        return next(raw for raw in range(len(self.raw_values) + 1) if raw not in self.raw_values)


@dataclass(frozen=True, slots=True)
class CatalogValue:
    """One adjustable controller value.

    ``key`` is unique per controller (e.g. ``relay_3_manual_mode``) and suits unique ids;
    ``translation_key`` (``relay_manual_mode``) with ``placeholders`` (``{"n": "3"}``) suits
    translations, see :func:`value_names`. ``minimum``, ``maximum`` and ``step`` are in display
    units; display value = raw value × ``factor``.
    """

    value_id: str
    id_hash: int
    kind: ValueKind
    key: str
    translation_key: str
    placeholders: Mapping[str, str] = field(hash=False)
    names: Mapping[str, str] = field(hash=False)
    unit: str | None = None
    device_class: str | None = None
    factor: Decimal = Decimal(1)
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    options: tuple[CatalogOption, ...] = ()
    unit_selector: str | None = None
    conditions: tuple[CatalogCondition, ...] = ()

    def name(self, language: str = "en") -> str:
        """The label in ``language``, English if there is none."""
        return self.names.get(language, self.names["en"])

    def option(self, key: str) -> CatalogOption | None:
        """The option with ``key``, if any."""
        return next((option for option in self.options if option.key == key), None)

    def option_for_raw(self, raw: int) -> CatalogOption | None:
        """The option whose raw value is ``raw``, if any."""
        return next((option for option in self.options if option.raw == raw), None)

    @property
    def raw_minimum(self) -> int | None:
        """The smallest allowed raw value (numbers and clock values with limits)."""
        return None if self.minimum is None else self._scale_down(self.minimum)

    @property
    def raw_maximum(self) -> int | None:
        """The largest allowed raw value (numbers and clock values with limits)."""
        return None if self.maximum is None else self._scale_down(self.maximum)

    @property
    def raw_step(self) -> int:
        """The raw increment between allowed values (1 where there is no step)."""
        return 1 if self.step is None else self._scale_down(self.step)

    def validate_raw(self, raw: int) -> int:
        """Return ``raw`` if the controller may be given it, else raise :class:`CatalogError`."""
        if isinstance(raw, bool) or not isinstance(raw, int):
            msg = f"{self.value_id}: expected a whole raw number, got {raw!r}"
            raise CatalogError(msg)
        if not RAW_MIN <= raw <= RAW_MAX:
            msg = f"{self.value_id}: {raw} does not fit a signed 32-bit datagram value"
            raise CatalogError(msg)
        if self.options:
            if self.option_for_raw(raw) is None:
                allowed = ", ".join(str(option.raw) for option in self.options)
                msg = f"{self.value_id}: {raw} is not one of the allowed values {allowed}"
                raise CatalogError(msg)
            return raw
        low, high = self.raw_minimum, self.raw_maximum
        if low is not None and high is not None and not low <= raw <= high:
            msg = (
                f"{self.value_id}: {self._format(raw)} is outside "
                f"{self._format(low)} … {self._format(high)}"
            )
            raise CatalogError(msg)
        if (raw - (low or 0)) % self.raw_step:
            msg = f"{self.value_id}: {self._format(raw)} is not a multiple of the step {self.step}"
            raise CatalogError(msg)
        return raw

    def to_raw(self, value: DisplayValue) -> int:
        """Convert a display value to the validated raw datagram value.

        Numbers take ``int`` or ``float``; selects an option key or an allowed raw ``int``;
        switches a ``bool``, ``"off"``/``"on"`` or 0/1; the clock date a ``datetime`` and the
        clock time a ``time`` or ``datetime`` (local wall time: naive, or aware in the
        controller's time zone). Raises :class:`CatalogError` for anything else.
        """
        if self.options:
            return self.validate_raw(self._option_raw(value))
        if self.kind is ValueKind.CLOCK:
            return self.validate_raw(self._clock_raw(value))
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"{self.value_id}: expected a number, got {value!r}"
            raise CatalogError(msg)
        if not math.isfinite(value):
            msg = f"{self.value_id}: {value} is not a number the controller can store"
            raise CatalogError(msg)
        exact = Decimal(repr(value)) / self.factor
        raw = int(exact.to_integral_value(ROUND_HALF_UP))
        if abs(exact - raw) > _RAW_TOLERANCE:
            msg = f"{self.value_id}: {value} is not a multiple of the resolution {self.factor}"
            raise CatalogError(msg)
        return self.validate_raw(raw)

    def to_display(self, raw: int) -> DisplayValue | None:
        """Convert a raw datagram value to its display value.

        ``None`` for a select or switch raw value without an option, and for a clock time
        outside a day. Numbers are not checked against the limits: the controller is the truth.
        """
        if self.kind is ValueKind.SWITCH:
            option = self.option_for_raw(raw)
            return None if option is None else option.key == "on"
        if self.kind is ValueKind.SELECT:
            option = self.option_for_raw(raw)
            return None if option is None else option.key
        if self.kind is ValueKind.CLOCK:
            if self.unit == "s":
                return CLOCK_EPOCH + timedelta(seconds=raw)
            if not 0 <= raw < MINUTES_PER_DAY:
                return None
            return time(raw // 60, raw % 60)
        if self.factor == 1:
            return raw
        return float(raw * self.factor)

    def _option_raw(self, value: DisplayValue) -> int:
        """The raw value for an option key, switch state or raw option value."""
        if isinstance(value, bool) and self.kind is ValueKind.SWITCH:
            value = "on" if value else "off"
        if isinstance(value, str):
            option = self.option(value)
            if option is None:
                keys = ", ".join(known.key for known in self.options)
                msg = f"{self.value_id}: unknown option {value!r} (expected one of {keys})"
                raise CatalogError(msg)
            return option.raw
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        msg = f"{self.value_id}: expected an option key, got {value!r}"
        raise CatalogError(msg)

    def _clock_raw(self, value: DisplayValue) -> int:
        """Seconds since :data:`CLOCK_EPOCH` (unit ``s``) or minutes after midnight."""
        if isinstance(value, datetime):
            wall = value.replace(tzinfo=None)
            if self.unit == "s":
                if wall < CLOCK_EPOCH:
                    msg = f"{self.value_id}: {value} is before {CLOCK_EPOCH:%Y-%m-%d}"
                    raise CatalogError(msg)
                return (wall - CLOCK_EPOCH) // timedelta(seconds=1)
            return wall.hour * 60 + wall.minute
        if isinstance(value, time) and self.unit == "min":
            return value.hour * 60 + value.minute
        msg = f"{self.value_id}: expected a datetime or time, got {value!r}"
        raise CatalogError(msg)

    def _scale_down(self, display: float) -> int:
        """The raw value of a display-unit limit or step from the catalog data."""
        return int((Decimal(repr(display)) / self.factor).to_integral_value(ROUND_HALF_UP))

    def _format(self, raw: int) -> str:
        """A raw value in display units with the unit, for messages."""
        text = f"{raw * self.factor:f}"
        return f"{text} {self.unit}" if self.unit else text


@dataclass(frozen=True, slots=True)
class ControllerCatalog:
    """The catalog of one controller model (and, for the DeltaSol MX, firmware major version).

    ``major_version`` is ``None`` for a catalog that applies to every firmware version of its
    address. ``hashes_listed`` tells whether RESOL's value list for the model carries value-id
    hashes; where it does not (BS4 V2, BX Plus, CS2, CS4), the hashes are computed and whether
    the controller answers hash look-ups is unverified.
    """

    key: str
    name: str
    address: int
    major_version: int | None
    hashes_listed: bool
    values: tuple[CatalogValue, ...]

    def value(self, value_id: str) -> CatalogValue | None:
        """The value with ``value_id``, if the catalog has it."""
        return next((value for value in self.values if value.value_id == value_id), None)

    def by_hash(self, id_hash: int) -> CatalogValue | None:
        """The value whose value-id hash is ``id_hash``, if the catalog has it."""
        return next((value for value in self.values if value.id_hash == id_hash), None)

    def by_key(self, key: str) -> CatalogValue | None:
        """The value with ``key``, if the catalog has it."""
        return next((value for value in self.values if value.key == key), None)

    @property
    def condition_values(self) -> tuple[CatalogCondition, ...]:
        """The values the conditions read that the catalog does not list; the first per id."""
        listed = {value.value_id for value in self.values}
        seen: dict[str, CatalogCondition] = {}
        for value in self.values:
            for condition in value.conditions:
                if condition.value_id not in listed:
                    seen.setdefault(condition.value_id, condition)
        return tuple(seen.values())

    def applies(self, value: CatalogValue, read: Mapping[str, int]) -> bool:
        """Whether ``value`` has an effect, given the ``read`` raw values (by value id).

        A condition whose value was not read (the controller does not know it, or nothing
        was read yet) counts as holding: a setting is only called ineffective on evidence.
        """
        return all(
            condition.holds(read[condition.value_id])
            for condition in value.conditions
            if condition.value_id in read
        )

    def clock_writes(self, now: datetime) -> tuple[tuple[CatalogValue, int], ...]:
        """The writes that set the controller clock to the local wall time ``now``, in order.

        Date and time first, then the time of day, as RESOL's own example does. The controller
        resets the seconds to 0 on a write, so write early in a minute (within about 10 s).
        Empty when the controller's clock is not adjustable over VBus.
        """
        return tuple(
            (value, value.to_raw(now)) for value in self.values if value.kind is ValueKind.CLOCK
        )


@dataclass(frozen=True, slots=True)
class _Catalog:
    """Everything ``data/catalog.json`` holds."""

    controllers: tuple[ControllerCatalog, ...]
    value_names: Mapping[str, Mapping[str, str]]
    option_names: Mapping[str, Mapping[str, str]]


def catalogs() -> tuple[ControllerCatalog, ...]:
    """All controller catalogs, including the version-independent DeltaSol MX catalog."""
    return _bundled().controllers


def catalog_for(address: int, major_version: int | None = None) -> ControllerCatalog | None:
    """The catalog for the controller at VBus ``address`` with firmware ``major_version``.

    A catalog made for that major version wins; otherwise the address's catalog that applies
    to every version. For the DeltaSol MX (``0x7E11``, versions 1 and 2 have different value
    lists) that is a catalog of the values both lists share with identical ids, limits and
    options, so that a write means the same on either firmware. ``None`` for an unknown address.
    """
    candidates = [catalog for catalog in catalogs() if catalog.address == address]
    exact = [
        c for c in candidates if c.major_version is not None and c.major_version == major_version
    ]
    fallback = [catalog for catalog in candidates if catalog.major_version is None]
    return next(iter(exact or fallback), None)


def value_names() -> Mapping[str, Mapping[str, str]]:
    """Value labels by translation key and language, with a ``{n}`` placeholder where numbered."""
    return _bundled().value_names


def option_names() -> Mapping[str, Mapping[str, str]]:
    """Option labels by option key and language."""
    return _bundled().option_names


@cache
def _bundled() -> _Catalog:
    """The bundled catalog, read on first use."""
    return _parse(resources.files(__package__).joinpath("data", "catalog.json").read_bytes())


def _parse(data: bytes) -> _Catalog:
    """Build the catalogs from the JSON text of ``data/catalog.json``."""
    document: dict[str, Any] = json.loads(data, parse_float=Decimal)
    labels = {key: _names(names) for key, names in document["option_names"].items()}
    option_sets = {
        name: tuple(CatalogOption(raw, key, labels[key]) for raw, key in options)
        for name, options in document["option_sets"].items()
    }
    names = {key: _names(names) for key, names in document["value_names"].items()}
    built: dict[str, ControllerCatalog] = {}
    for item in document["controllers"]:
        address = int(item["address"], 16)
        if "common_of" in item:
            sources = [built[key] for key in item["common_of"]]
            values = tuple(
                value for value in sources[0].values if all(value in s.values for s in sources)
            )
            hashes_listed = all(source.hashes_listed for source in sources)
        else:
            values = tuple(_value(entry, option_sets, names) for entry in item["values"])
            hashes_listed = item["hashes_listed"]
        built[item["key"]] = ControllerCatalog(
            item["key"], item["name"], address, item["major_version"], hashes_listed, values
        )
    return _Catalog(
        tuple(built.values()),
        MappingProxyType({key.replace("_{n}", ""): value for key, value in names.items()}),
        MappingProxyType(labels),
    )


def _value(
    entry: dict[str, Any],
    option_sets: Mapping[str, tuple[CatalogOption, ...]],
    names: Mapping[str, Mapping[str, str]],
) -> CatalogValue:
    """One value of a controller's ``values`` list."""
    value_id: str = _checked(entry["id"], entry["hash"])
    kind = ValueKind(entry["kind"])
    template: str = entry["key"]
    number: int | None = entry.get("n")
    options: tuple[CatalogOption, ...] = ()
    if kind is ValueKind.SWITCH:
        options = option_sets["off_on"]
    elif kind is ValueKind.SELECT:
        options = option_sets[entry["options"]]
    unit: str | None = entry.get("unit")
    return CatalogValue(
        value_id=value_id,
        id_hash=value_id_hash(value_id),
        kind=kind,
        key=_fill(template, number),
        translation_key=template.replace("_{n}", ""),
        placeholders=MappingProxyType({} if number is None else {"n": str(number)}),
        names=MappingProxyType(
            {lang: _fill(text, number) for lang, text in names[template].items()}
        ),
        unit=unit,
        device_class=_DEVICE_CLASSES.get(unit or "") if kind is ValueKind.NUMBER else None,
        factor=Decimal(entry.get("factor", 1)),
        minimum=_float(entry.get("min")),
        maximum=_float(entry.get("max")),
        step=_float(entry.get("step")),
        options=options,
        unit_selector=entry.get("unit_selector"),
        conditions=tuple(_condition(condition) for condition in entry.get("conditions", ())),
    )


def _condition(entry: dict[str, Any]) -> CatalogCondition:
    """One entry of a value's ``conditions`` list: ``id``, ``hash`` and ``in`` or ``not_in``."""
    negated = "not_in" in entry
    raws = entry["not_in"] if negated else entry["in"]
    return CatalogCondition(
        _checked(entry["id"], entry["hash"]), entry["hash"], frozenset(raws), negated
    )


def _checked(value_id: str, id_hash: int) -> str:
    """``value_id``, after checking that the data's ``id_hash`` is its value-id hash."""
    if id_hash != value_id_hash(value_id):
        msg = f"catalog data: the hash of {value_id} is {value_id_hash(value_id)}, not {id_hash}"
        raise CatalogError(msg)
    return value_id


def _fill(text: str, number: int | None) -> str:
    """``text`` with its ``{n}`` placeholder replaced by ``number`` (unchanged without one)."""
    return text if number is None else text.replace("{n}", str(number))


def _names(names: dict[str, str]) -> Mapping[str, str]:
    """A read-only label mapping."""
    return MappingProxyType(dict(names))


def _float(number: Decimal | int | None) -> float | None:
    """A limit or step from the JSON data as a float."""
    return None if number is None else float(number)
