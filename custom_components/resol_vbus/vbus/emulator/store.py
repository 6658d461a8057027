"""The parameter store: the values a controller exposes over VBus, by index and by hash."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Final

from ..catalog import catalog_for
from ..errors import EmulatorError
from ..valueid import value_id_hash

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MX_CHANGESET: Final = 0x2734DABC


@dataclass(slots=True)
class StoredValue:
    """One controller value: its index, current raw value, id, hash and raw limits."""

    index: int
    value: int
    value_id: str | None = None
    id_hash: int | None = None
    minimum: int | None = None
    maximum: int | None = None

    def clamp(self, value: int) -> int:
        """``value`` limited to the value's minimum and maximum."""
        if self.minimum is not None:
            value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)
        return value


# id, index, default, minimum, maximum (raw) — as in resol-deltasol-mx-2xx.json (MX 2.xx).
_MX_VALUES: Final = (
    ("AutoSommerWinterzeit", 56, 1, 0, 1),
    ("Systemzeit", 58, 720, 0, 1439),
    ("Relais_Regler_R1_Handbetrieb", 1977, 2, 0, 4),
    ("Relais_Regler_R2_Handbetrieb", 1991, 2, 0, 4),
    ("Solar_Sp1_Tmax", 3591, 600, 40, 950),
    ("Solar_Urlaubsfunktion_Kuehlung", 6329, 0, 0, 2),
    ("Solar_Urlaubsfunktion_TSp1Max", 6345, 400, 40, 950),
    ("Heizung_Wf1_ThBwErwaermung_TEin", 11379, 400, 0, 940),
    ("Heizung_Wf1_ThBwErwaermung_TAus", 11382, 450, 10, 950),
    ("Heizung_Heizkreis1_dTNachtkorrektur", 13730, -50, -200, 300),
    ("Heizung_Heizkreis1_Betriebsart", 14014, 0, 0, 5),
    ("Heizung_Heizkreis1_OUrlaub", 14176, 0, 0, 1),
    ("Urlaubsfunktion_Tage", 19063, 0, 0, 200),
)
_KNOWN_CHANGESETS: Final = {"resol-deltasol-mx-2xx": MX_CHANGESET}
_METRIC_SUFFIXES: Final = ("_C", "_K", "_Bar", "_LpMin")
_WEEKDAYS_DE: Final = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")
_INT32: Final = (-0x80000000, 0x7FFFFFFF)


def _display_number(text: object) -> Decimal | None:
    """A number of a value list: ``"0,5"``, ``"HH:MM"`` (minutes), ``"So,22:00"`` (week minutes)."""
    if isinstance(text, bool) or not isinstance(text, int | float | str):
        return None
    text = str(text).strip()
    day = 0
    if text[:2] in _WEEKDAYS_DE and text[2:3] == ",":
        day, text = _WEEKDAYS_DE.index(text[:2]), text[3:]
    try:
        if ":" in text:
            hours, _, minutes = text.partition(":")
            return Decimal(day * 1440 + int(hours) * 60 + int(minutes))
        return Decimal(text.replace(",", "."))
    except (ValueError, InvalidOperation):
        return None


def _raw(text: object, factor: Decimal) -> int | None:
    number = _display_number(text)
    if number is None or not number.is_finite():
        return None
    raw = int((number / factor).to_integral_value(ROUND_HALF_UP))
    return min(max(raw, _INT32[0]), _INT32[1])


def _limits(value_type: Mapping[str, object]) -> tuple[int, int | None, int | None]:
    """(default, minimum, maximum) in raw units from a value list ``type`` entry."""
    factor = _display_number(value_type.get("storeFactors")) or Decimal(1)
    minimum = _raw(value_type.get("minimums"), factor)
    maximum = _raw(value_type.get("maximums"), factor)
    texts = value_type.get("valueTexts")
    if minimum is None and maximum is None and isinstance(texts, list) and texts:
        options = [
            _raw(item.get("value", position), factor) if isinstance(item, dict) else None
            for position, item in enumerate(texts)
        ]
        numbers = [option for option in options if option is not None]
        if numbers:
            minimum, maximum = min(numbers), max(numbers)
    default = _raw(value_type.get("defaults"), factor)
    if default is None:
        default = 0
    entry = StoredValue(0, 0, minimum=minimum, maximum=maximum)
    return entry.clamp(default), minimum, maximum


class ParameterStore:
    """The values a controller exposes over VBus: index → value, hash → index, changeset.

    Index 0 is the changeset ID (read-only). ``writes`` records every accepted write as
    (index, requested value), so tests can check what a client wrote and how often.
    """

    def __init__(
        self, changeset: int, values: Iterable[StoredValue] = (), *, address: int | None = None
    ) -> None:
        """Create a store with ``changeset`` and ``values`` for the controller at ``address``."""
        self.changeset = changeset
        self.address = address
        self.writes: list[tuple[int, int]] = []
        self._by_index: dict[int, StoredValue] = {}
        self._by_hash: dict[int, int] = {}
        self._by_id: dict[str, StoredValue] = {}
        for value in values:
            self.add(value)

    def add(self, value: StoredValue) -> None:
        """Add (or replace) ``value``; index 0 is reserved for the changeset."""
        if not 0 < value.index <= 0xFFFF:
            msg = f"value index must be 1..65535, got {value.index}"
            raise ValueError(msg)
        self._by_index[value.index] = value
        if value.id_hash is not None:
            self._by_hash[value.id_hash] = value.index
        if value.value_id is not None:
            self._by_id[value.value_id] = value

    def remove(self, value_id: str) -> StoredValue:
        """Take ``value_id`` out, as a firmware without it would (:meth:`add` puts it back)."""
        value = self._by_id.pop(value_id)
        del self._by_index[value.index]
        if value.id_hash is not None:
            self._by_hash.pop(value.id_hash, None)
        return value

    def __len__(self) -> int:
        """Number of values (without the changeset)."""
        return len(self._by_index)

    def values(self) -> list[StoredValue]:
        """All values, by index."""
        return [self._by_index[index] for index in sorted(self._by_index)]

    def __getitem__(self, value_id: str) -> StoredValue:
        """The value with id ``value_id`` (``KeyError`` if unknown)."""
        return self._by_id[value_id]

    def entry(self, index: int) -> StoredValue | None:
        """The value at ``index``, if any."""
        return self._by_index.get(index)

    def read(self, index: int) -> int | None:
        """The raw value at ``index`` (0: the changeset), ``None`` if unknown."""
        if index == 0:
            return self.changeset
        entry = self._by_index.get(index)
        return None if entry is None else entry.value

    def write(self, index: int, value: int) -> int | None:
        """Write ``value`` clamped to the limits; return the value now in effect (or ``None``)."""
        if index == 0:
            return self.changeset
        entry = self._by_index.get(index)
        if entry is None:
            return None
        self.writes.append((index, value))
        entry.value = entry.clamp(value)
        return entry.value

    def index_of(self, id_hash: int) -> int | None:
        """The index of the value with this value-ID hash, if any."""
        return self._by_hash.get(id_hash)

    def hash_of(self, index: int) -> int | None:
        """The value-ID hash at ``index``: ``None`` for an unknown index, 0 without a hash."""
        if index == 0:
            return 0
        entry = self._by_index.get(index)
        if entry is None:
            return None
        return entry.id_hash or 0

    def firmware_update(self, changeset: int, *, index_shift: int = 0) -> None:
        """Pretend a firmware update: new changeset, every index moved by ``index_shift``."""
        values = list(self._by_index.values())
        self._by_index.clear()
        self._by_hash.clear()
        self._by_id.clear()
        self.changeset = changeset
        for value in values:
            value.index += index_shift
            self.add(value)

    @classmethod
    def deltasol_mx(cls) -> ParameterStore:
        """A DeltaSol MX 2.xx-like store (changeset ``2734DABC`` as in RESOL's MX 2.08 example)."""
        values = (
            StoredValue(index, default, value_id, value_id_hash(value_id), minimum, maximum)
            for value_id, index, default, minimum, maximum in _MX_VALUES
        )
        return cls(MX_CHANGESET, values, address=0x7E11)

    @classmethod
    def default_for(cls, address: int) -> ParameterStore:
        """A store with every catalog value of the controller at ``address``.

        ``0x7E11`` starts from the DeltaSol MX 2.xx values above (with the real indices and
        changeset of RESOL's MX 2.08 example); other controllers get a changeset derived from
        their address. Catalog values the store lacks are added after index 20000, with their
        minimum (or first option) as the current value, then the values the catalog's conditions
        read, each set so that the first condition naming it holds.
        """
        if address == 0x7E11:
            store = cls.deltasol_mx()
        else:
            store = cls(zlib.crc32(f"{address:04X}".encode()) & 0x7FFFFFFF, address=address)
        catalog = catalog_for(address, 2 if address == 0x7E11 else None)
        index = 20000
        for value in catalog.values if catalog else ():
            if store.index_of(value.id_hash) is not None:
                continue
            index += 1
            raws = [option.raw for option in value.options]
            minimum = min(raws) if raws else value.raw_minimum
            maximum = max(raws) if raws else value.raw_maximum
            current = raws[0] if raws else (minimum if minimum is not None else 0)
            store.add(StoredValue(index, current, value.value_id, value.id_hash, minimum, maximum))
        # The values the catalog's conditions read, set so that their first condition holds.
        for condition in catalog.condition_values if catalog else ():
            if store.index_of(condition.id_hash) is not None:
                continue
            index += 1
            raw = condition.satisfying_raw()
            store.add(StoredValue(index, raw, condition.value_id, condition.id_hash, 0, 255))
        return store

    @classmethod
    def from_controller_values(
        cls, data: bytes | str, *, changeset: int | None = None
    ) -> ParameterStore:
        """Load a controller value list (``reference/data/controller-values/*.json`` format).

        Values get their default (raw), limits from ``minimums``/``maximums`` (or the range of
        ``valueTexts``); a unit proxy (e.g. ``TemperatureProxy``) takes default and limits from its
        metric child (``_C``, ``_K``, ``_Bar``, ``_LpMin``). Without ``changeset`` the MX 2.xx list
        gets ``2734DABC`` and others a number derived from the controller name.
        """
        try:
            document = json.loads(data)
            items = [item for item in document["values"] if isinstance(item, dict)]
            controller = str(document.get("controller", ""))
            address_text = document.get("deviceAddress")
            address = int(str(address_text), 16) if address_text is not None else None
            children: dict[str, list[dict[str, object]]] = {}
            for item in items:
                parent = item.get("compoundValueRef")
                if isinstance(parent, str):
                    children.setdefault(parent, []).append(item)
            values = [cls._stored_value(item, children) for item in items]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            msg = f"invalid controller value list: {err!r}"
            raise EmulatorError(msg) from err
        if changeset is None:
            derived = zlib.crc32(controller.encode()) & 0x7FFFFFFF
            changeset = _KNOWN_CHANGESETS.get(controller, derived)
        return cls(changeset, (v for v in values if 0 < v.index <= 0xFFFF), address=address)

    @staticmethod
    def _stored_value(
        item: Mapping[str, object], children: Mapping[str, list[dict[str, object]]]
    ) -> StoredValue:
        value_id = str(item["id"])
        value_type = item.get("type")
        kids = children.get(value_id, []) if item.get("storage") is not None else []
        for suffix in _METRIC_SUFFIXES:
            child = next((c for c in kids if str(c.get("id")).endswith(suffix)), None)
            if child is not None:
                value_type = child.get("type")
                break
        default, minimum, maximum = _limits(value_type if isinstance(value_type, dict) else {})
        id_hash = item.get("idHash")
        return StoredValue(
            int(str(item["index"])),
            default,
            value_id,
            int(str(id_hash)) if id_hash is not None else None,
            minimum,
            maximum,
        )
