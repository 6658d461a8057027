"""Service actions: read and write any controller value (``get_value`` / ``set_value``).

Every field is checked here, by the handlers, and not by the schemas: Home Assistant reports a
schema error as untranslated text ("expected int for dictionary value …"), while these checks
raise a translated :class:`ServiceValidationError` that says what to do. The schemas only name
the fields and let everything through.

Accepted: whole numbers (``int``, a ``float`` without a fraction, or a decimal integer text such
as ``"650"``) in each field's range; a value ID of ASCII letters, digits and underscores (as in
every value list RESOL publishes); ``None`` counts as not given. Nothing else: not ``True``, not
``1.5``, not NaN. Refused as well: a field the action does not have, no value or more than one
(``value_id``, ``value_id_hash``, ``value_index``), a device or connection that is not a loaded
RESOL VBus one (or a device of another connection than the one given), and a controller address
nothing on the connection has sent from. Nothing is queued on the bus before every field is
valid; a value the catalog knows is checked against the catalog before it is written. A value ID
or hash that is not in the catalog is looked up on the controller (read-only) first, so that a
typo is reported as unknown to the controller's value list rather than as a value that needs
"Allow writing any value".
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr

try:  # Home Assistant 2026.9 replaced voluptuous with probatio, a drop-in with the same API
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - Home Assistant before 2026.9
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

from .const import CONF_ALLOW_ANY_VALUE, DOMAIN, LOGGER
from .values import operation_failed
from .vbus.catalog import RAW_MAX, RAW_MIN
from .vbus.errors import VBusError
from .vbus.parameters import UnknownValueError
from .vbus.valueid import value_id_hash

if TYPE_CHECKING:
    from homeassistant.exceptions import HomeAssistantError
    from homeassistant.helpers.device_registry import DeviceEntry

    from .coordinator import ValuesCoordinator, VBusConfigEntry
    from .vbus.catalog import CatalogValue
    from .vbus.parameters import ValueResult

SERVICE_GET_VALUE: Final = "get_value"
SERVICE_SET_VALUE: Final = "set_value"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_VALUE_ID: Final = "value_id"
ATTR_VALUE_ID_HASH: Final = "value_id_hash"
ATTR_VALUE_INDEX: Final = "value_index"
ATTR_VALUE: Final = "value"
ATTR_CONTROLLER: Final = "controller"

#: The fields that name the value; exactly one is given.
TARGET_FIELDS: Final = (ATTR_VALUE_ID, ATTR_VALUE_ID_HASH, ATTR_VALUE_INDEX)
#: The whole-number fields and their ranges, in the order they are checked.
RANGES: Final = {
    ATTR_VALUE_ID_HASH: (0, 2**31 - 1),
    ATTR_VALUE_INDEX: (1, 0xFFFF),
    ATTR_CONTROLLER: (0, 0xFFFF),
    ATTR_VALUE: (RAW_MIN, RAW_MAX),
}
GET_FIELDS: Final = (ATTR_CONFIG_ENTRY_ID, ATTR_DEVICE_ID, *TARGET_FIELDS, ATTR_CONTROLLER)
SET_FIELDS: Final = (*GET_FIELDS, ATTR_VALUE)
# Every field is optional to the schema and anything goes: the handlers check (module docstring).
GET_SCHEMA: Final = vol.Schema(
    {vol.Optional(field): object for field in GET_FIELDS}, extra=vol.ALLOW_EXTRA
)
SET_SCHEMA: Final = vol.Schema(
    {vol.Optional(field): object for field in SET_FIELDS}, extra=vol.ALLOW_EXTRA
)

#: Every value ID in RESOL's value lists (about 35 000) consists of these characters.
VALUE_ID: Final = re.compile(r"[A-Za-z0-9_]+")
_INTEGER_TEXT: Final = re.compile(r"([+-]?)0*([0-9]+)")
#: A text with more significant digits is outside every range (and ``int()`` refuses texts of
#: thousands of digits).
_MAX_DIGITS: Final = 20
_CONTROLLER_IDENTIFIER: Final = re.compile(r"[0-9A-F]{2}_([0-9A-F]{4})")
#: How many characters of the user's input a message repeats.
_SHOWN: Final = 60


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


class _Brief(reprlib.Repr):
    """Python's notation of an input, shortened (and for ints of any length)."""

    def __init__(self) -> None:
        super().__init__(maxlevel=3, maxstring=_SHOWN, maxlong=_SHOWN, maxother=_SHOWN)

    def repr_int(self, x: int, level: int) -> str:
        """Large ints in scientific notation: ``repr()`` refuses those of thousands of digits."""
        if x.bit_length() > 2 * _SHOWN:
            return f"{Decimal(x):.6E}"
        return super().repr_int(x, level)


_BRIEF: Final = _Brief()


def _shown(value: object) -> str:
    """How a message repeats an input: a text as it is, anything else as Python writes it."""
    text = value if isinstance(value, str) and value else _BRIEF.repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 1]}…"


def _whole_number(value: object) -> int | None:
    """``value`` as an ``int`` if it is a whole number (not a ``bool``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and (match := _INTEGER_TEXT.fullmatch(value.strip())):
        sign, digits = match.groups()
        return int(sign + (digits if len(digits) <= _MAX_DIGITS else "1" + "0" * _MAX_DIGITS))
    return None


def _integer(field: str, value: object) -> int:
    """``value`` as a whole number in the range of ``field``, else a translated error."""
    number = _whole_number(value)
    if number is None and field == ATTR_VALUE:
        raise _invalid(key="value_not_integer", value=_shown(value))
    if number is None:
        raise _invalid(key="field_not_integer", field=field, value=_shown(value))
    low, high = RANGES[field]
    if not low <= number <= high:
        raise _invalid(
            key="field_out_of_range",
            field=field,
            value=_shown(value),
            minimum=str(low),
            maximum=str(high),
        )
    return number


def _checked(call: ServiceCall, fields: tuple[str, ...]) -> dict[str, Any]:
    """The call's fields, checked and converted; ``None`` counts as not given."""
    data = {field: value for field, value in call.data.items() if value is not None}
    if unknown := [field for field in data if field not in fields]:
        raise _invalid(
            key="unknown_field",
            fields=", ".join(_shown(field) for field in unknown),
            allowed=", ".join(fields),
        )
    targets = [field for field in TARGET_FIELDS if field in data]
    if len(targets) > 1:
        raise _invalid(key="value_ambiguous", fields=", ".join(targets))
    if not targets:
        raise _invalid(key="value_required")
    if ATTR_VALUE_ID in data and not (
        isinstance(data[ATTR_VALUE_ID], str) and VALUE_ID.fullmatch(data[ATTR_VALUE_ID])
    ):
        raise _invalid(key="invalid_value_id", value_id=_shown(data[ATTR_VALUE_ID]))
    for field in RANGES:
        if field in data:
            data[field] = _integer(field, data[field])
    if ATTR_VALUE in fields and ATTR_VALUE not in data:
        raise _invalid(key="value_to_write_required")
    return data


def _device(hass: HomeAssistant, device_id: object) -> DeviceEntry:
    """The device ``device_id`` names (a list of one, as a ``target`` gives it, will do)."""
    if isinstance(device_id, list) and len(device_id) == 1:
        device_id = device_id[0]
    device = dr.async_get(hass).async_get(device_id) if isinstance(device_id, str) else None
    # Since Home Assistant 2026.10 this may be a child device, which this integration never makes.
    if not isinstance(device, dr.DeviceEntry):
        raise _invalid(key="device_not_found", device=_shown(device_id))
    return device


def _device_name(device: DeviceEntry) -> str:
    return device.name_by_user or device.name or device.id


def _vbus_entry_ids(hass: HomeAssistant, device: DeviceEntry) -> list[str]:
    """The RESOL VBus config entries ``device`` belongs to."""
    # Home Assistant 2026.10 gave each device one config entry (config_entry_id) and
    # deprecated the set config_entries, which older releases have only.
    entry_id = getattr(device, "config_entry_id", None)
    entry_ids = {entry_id} if isinstance(entry_id, str) else device.config_entries
    return sorted(
        entry_id
        for entry_id in entry_ids
        if (entry := hass.config_entries.async_get_entry(entry_id)) and entry.domain == DOMAIN
    )


def _entry_and_device(
    hass: HomeAssistant, data: dict[str, Any]
) -> tuple[VBusConfigEntry, DeviceEntry | None]:
    """The loaded config entry the call names (directly or by a device), and the device."""
    entry = None
    if ATTR_CONFIG_ENTRY_ID in data:
        entry_id = data[ATTR_CONFIG_ENTRY_ID]
        entry = hass.config_entries.async_get_entry(entry_id) if isinstance(entry_id, str) else None
        if entry is None or entry.domain != DOMAIN:
            raise _invalid(key="entry_not_found", entry=_shown(entry_id))
    device = None
    if ATTR_DEVICE_ID in data:
        device = _device(hass, data[ATTR_DEVICE_ID])
        entry_ids = _vbus_entry_ids(hass, device)
        if not entry_ids:
            raise _invalid(key="device_not_vbus", device=_device_name(device))
        if entry is None:
            entry = hass.config_entries.async_get_entry(entry_ids[0])
        elif entry.entry_id not in entry_ids:
            raise _invalid(key="target_mismatch", device=_device_name(device), entry=entry.title)
    if entry is None:
        raise _invalid(key="target_required")
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid(key="entry_not_loaded", entry=entry.title)
    return entry, device


def _device_controller(entry: VBusConfigEntry, device: DeviceEntry) -> int | None:
    """The VBus address of a controller device (``None`` for the adapter)."""
    prefix = f"{entry.runtime_data.unique_prefix}_"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            match = _CONTROLLER_IDENTIFIER.fullmatch(identifier.removeprefix(prefix))
            if match:
                return int(match.group(1), 16)
    return None


@dataclass(frozen=True, slots=True)
class _Request:
    """What a call addresses: the controller, and the value by hash or index."""

    entry: VBusConfigEntry
    values: ValuesCoordinator | None  # the controller's catalog values, if the catalog knows it
    address: int
    id_hash: int | None
    index: int | None
    label: str  # how messages name the value
    known: CatalogValue | None  # the catalog's entry for the value, if any

    def failed(self, err: VBusError, fallback: str) -> HomeAssistantError:
        """The error for a failed read or write; a typo is the user's error, not a failure."""
        if isinstance(err, UnknownValueError) and self.id_hash is not None and self.known is None:
            return _invalid(key="value_id_unknown", value=self.label)
        return operation_failed(err, self.label, fallback)


def _request(hass: HomeAssistant, data: dict[str, Any]) -> _Request:
    """Resolve the checked fields ``data`` to the controller and the value."""
    entry, device = _entry_and_device(hass, data)
    address: int | None = data.get(ATTR_CONTROLLER)
    if address is None and device is not None:
        address = _device_controller(entry, device)
    controllers = entry.runtime_data.values.controllers
    if address is None:
        values = next(iter(controllers.values()), None)
        if values is None:
            raise _invalid(key="no_controller")
        address = values.controller
    elif not any(key.source == address for key in entry.runtime_data.packets):
        raise _invalid(key="controller_unknown", controller=f"{address} (0x{address:04X})")
    else:
        values = controllers.get(address)
    id_hash: int | None = data.get(ATTR_VALUE_ID_HASH)
    index: int | None = data.get(ATTR_VALUE_INDEX)
    if ATTR_VALUE_ID in data:
        label = data[ATTR_VALUE_ID]
        id_hash = value_id_hash(label)
    else:
        label = f"index {index}" if id_hash is None else f"hash {id_hash}"
    known = values.catalog.by_hash(id_hash) if values is not None and id_hash is not None else None
    return _Request(entry, values, address, id_hash, index, label, known)


def _response(result: ValueResult, value: CatalogValue | None) -> dict[str, Any]:
    shown = value.to_display(result.value) if value is not None else None
    return {
        "index": result.index,
        "value": result.value,
        "scaled": shown
        if isinstance(shown, (int, float, str, bool)) or shown is None
        else str(shown),
        "changeset": result.changeset,
    }


async def _async_get_value(call: ServiceCall) -> dict[str, Any]:
    request = _request(call.hass, _checked(call, GET_FIELDS))
    engine = request.entry.runtime_data.values.engine
    try:
        result = await engine.get(request.address, id_hash=request.id_hash, index=request.index)
    except VBusError as err:
        raise request.failed(err, "read_failed") from err
    return _response(result, request.known)


async def _async_set_value(call: ServiceCall) -> dict[str, Any]:
    data = _checked(call, SET_FIELDS)
    request = _request(call.hass, data)
    raw: int = data[ATTR_VALUE]
    known, values = request.known, request.values
    if known is not None and values is not None:
        result = await values.async_write(known, raw)
        if result is None:  # already set: nothing was written; answer with a fresh read
            try:
                result = await values.engine.get(request.address, id_hash=known.id_hash)
            except VBusError as err:
                raise operation_failed(err, values.label(known), "read_failed") from err
        return _response(result, known)
    if not request.entry.options.get(CONF_ALLOW_ANY_VALUE, False):
        if request.id_hash is not None:  # a typo is not a value outside the catalog
            try:
                await request.entry.runtime_data.values.engine.lookup(
                    request.address, request.id_hash
                )
            except VBusError as err:
                raise request.failed(err, "read_failed") from err
        raise _invalid(key="value_not_in_catalog", value=request.label)
    return _response(await _async_write_any(request, raw), None)


async def _async_write_any(request: _Request, raw: int) -> ValueResult:
    """Write a value outside the catalog ("Allow writing any value"), unless already set."""
    manager = request.entry.runtime_data.values
    address, values = request.address, request.values
    try:
        current = await manager.engine.get(address, id_hash=request.id_hash, index=request.index)
        if values is not None:  # by index, it may be a catalog value: show what it holds
            values.async_confirm_index(current)
        if current.value == raw:  # already set: nothing to write
            return current
        # One limit per value, however the calls name it: its index is known by now.
        rate_key = f"{address:04X}:index {current.index}"
        manager.check_rate(rate_key, request.label)
        result = await manager.engine.set(address, raw, index=current.index)
    except VBusError as err:
        raise request.failed(err, "write_failed") from err
    manager.count_write(rate_key)
    if values is not None:
        values.async_confirm_index(result)
    LOGGER.info(
        "Changed value %s of 0x%04X from %d to %d",
        request.label,
        address,
        current.value,
        result.value,
    )
    return result


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the service actions (once, from ``async_setup``)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_VALUE,
        _async_get_value,
        schema=GET_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_VALUE,
        _async_set_value,
        schema=SET_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
