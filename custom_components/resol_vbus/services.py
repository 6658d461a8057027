"""Service actions: read and write any controller value (``get_value`` / ``set_value``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr

try:  # Home Assistant 2026.9 replaced voluptuous with probatio, a drop-in with the same API
    import probatio as vol  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - Home Assistant before 2026.9
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

from .const import CONF_ALLOW_ANY_VALUE, DOMAIN, LOGGER
from .values import operation_failed
from .vbus.errors import VBusError
from .vbus.valueid import value_id_hash

if TYPE_CHECKING:
    from .coordinator import VBusConfigEntry
    from .values import ValuesCoordinator
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

_TARGET = "target"
_BASE: Final = {
    vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    vol.Optional(ATTR_DEVICE_ID): cv.string,
    vol.Exclusive(ATTR_VALUE_ID, _TARGET): cv.string,
    vol.Exclusive(ATTR_VALUE_ID_HASH, _TARGET): vol.All(vol.Coerce(int), vol.Range(0, 2**31 - 1)),
    vol.Exclusive(ATTR_VALUE_INDEX, _TARGET): vol.All(vol.Coerce(int), vol.Range(1, 0xFFFF)),
    vol.Optional(ATTR_CONTROLLER): vol.All(vol.Coerce(int), vol.Range(0, 0xFFFF)),
}
GET_SCHEMA: Final = vol.Schema(_BASE)
SET_SCHEMA: Final = vol.Schema(
    {**_BASE, vol.Required(ATTR_VALUE): vol.All(vol.Coerce(int), vol.Range(-(2**31), 2**31 - 1))}
)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _entry_and_controller(
    hass: HomeAssistant, call: ServiceCall
) -> tuple[VBusConfigEntry, int | None]:
    """The loaded config entry and, when a device was given, its controller address."""
    controller: int | None = call.data.get(ATTR_CONTROLLER)
    entry_id = call.data.get(ATTR_CONFIG_ENTRY_ID)
    if device_id := call.data.get(ATTR_DEVICE_ID):
        device = dr.async_get(hass).async_get(device_id)
        if device is None:
            raise _invalid(key="device_not_found", device=device_id)
        for domain, identifier in device.identifiers:
            if domain == DOMAIN and "_" in identifier and controller is None:
                *_, address = identifier.rsplit("_", 1)
                controller = int(address, 16)
        # Home Assistant 2026.10 gave each device one config entry (config_entry_id) and
        # deprecated the set config_entries, which older releases have only.
        entry_id = (
            entry_id
            or getattr(device, "config_entry_id", None)
            or next(iter(device.config_entries), None)
        )
    if entry_id is None:
        raise _invalid(key="target_required")
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise _invalid(key="entry_not_found", entry=entry_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid(key="entry_not_loaded", entry=entry.title)
    return entry, controller


def _resolve(call: ServiceCall) -> tuple[VBusConfigEntry, ValuesCoordinator | None, int]:
    """The entry, the controller's values (if the catalog knows it) and its address."""
    entry, controller = _entry_and_controller(call.hass, call)
    controllers = entry.runtime_data.values.controllers
    if controller is None:
        values = next(iter(controllers.values()), None)
        if values is None:
            raise _invalid(key="no_controller")
        return entry, values, values.controller
    return entry, controllers.get(controller), controller


def _target(call: ServiceCall) -> tuple[dict[str, int | None], str]:
    """What the engine addresses (a hash or an index), and how messages name the value."""
    if ATTR_VALUE_ID in call.data:
        value_id = str(call.data[ATTR_VALUE_ID])
        return {"id_hash": value_id_hash(value_id), "index": None}, value_id
    if ATTR_VALUE_ID_HASH in call.data:
        id_hash = call.data[ATTR_VALUE_ID_HASH]
        return {"id_hash": id_hash, "index": None}, f"hash {id_hash}"
    if ATTR_VALUE_INDEX in call.data:
        index = call.data[ATTR_VALUE_INDEX]
        return {"id_hash": None, "index": index}, f"index {index}"
    raise _invalid(key="value_required")


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
    entry, values, address = _resolve(call)
    target, label = _target(call)
    engine = entry.runtime_data.values.engine
    try:
        result = await engine.get(address, **target)
    except VBusError as err:
        raise operation_failed(err, label, "read_failed") from err
    known = values.catalog.by_hash(target["id_hash"]) if values and target["id_hash"] else None
    return _response(result, known)


async def _async_set_value(call: ServiceCall) -> dict[str, Any]:
    entry, values, address = _resolve(call)
    target, label = _target(call)
    raw: int = call.data[ATTR_VALUE]
    known = values.catalog.by_hash(target["id_hash"]) if values and target["id_hash"] else None
    if known is not None and values is not None:
        result = await values.async_write(known, raw)
        if result is None:  # already set: nothing was written; answer with a fresh read
            try:
                result = await values.engine.get(address, id_hash=known.id_hash)
            except VBusError as err:
                raise operation_failed(err, values.label(known), "read_failed") from err
        return _response(result, known)
    if not entry.options.get(CONF_ALLOW_ANY_VALUE, False):
        raise _invalid(key="value_not_in_catalog")
    manager = entry.runtime_data.values
    try:
        current = await manager.engine.get(address, **target)
        if current.value == raw:  # already set: nothing to write
            return _response(current, None)
        # One limit per value, however the calls name it: its index is known by now.
        rate_key = f"{address:04X}:index {current.index}"
        manager.check_rate(rate_key, label)
        result = await manager.engine.set(address, raw, index=current.index)
    except VBusError as err:
        raise operation_failed(err, label, "write_failed") from err
    manager.count_write(rate_key)
    LOGGER.info(
        "Changed value %s of 0x%04X from %d to %d", label, address, current.value, result.value
    )
    return _response(result, None)


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
