"""Base entity: one decoded field of one kind of VBus packet."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import CONF_DEVICE, CONF_HOST, EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.device_registry import CONNECTION_NETWORK_MAC, DeviceInfo
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from yarl import URL

from . import names
from .const import (
    ATTR_PENDING,
    CONF_CONNECTION,
    CONF_FIRMWARE,
    CONF_PRODUCT,
    CONF_SERIAL,
    CONNECTION_SERIAL,
    CONNECTION_VBUSNET,
    DOMAIN,
    MANUFACTURER,
)
from .coordinator import VBusCoordinator
from .values import invalid_value
from .vbus.catalog import CatalogError
from .vbus.protocol import LIVE_DESTINATION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import CALLBACK_TYPE
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import PacketKey, PacketState, ValuesCoordinator, VBusConfigEntry
    from .vbus.catalog import CatalogValue, DisplayValue, ValueKind
    from .vbus.specification import FieldSpec, Value

MAC_DIGITS = 12
#: Products that serve a web interface on port 80: RESOL's data loggers and communication
#: modules. A VBus/LAN adapter (or an unknown device) may have none, so it gets no link.
WEB_PRODUCTS: Final = frozenset({"DL2", "DL2Plus", "DL3", "KM1", "KM2"})
#: The adapter of a serial entry whose USB device names no product (a UART, a pseudo-terminal).
SERIAL_PRODUCT: Final = "Serial port"
#: Where a device behind VBus.net is managed.
VBUSNET_URL: Final = "https://www.vbus.net/"
#: Home Assistant 2026.10 added ``via_device_id`` (2027.8 removes ``via_device``).
_VIA_DEVICE_ID: Final = "via_device_id" in DeviceInfo.__optional_keys__


def hub_identifier(coordinator: VBusCoordinator) -> tuple[str, str]:
    """Device-registry identifier of the adapter / data logger."""
    return (DOMAIN, coordinator.unique_prefix)


def hub_configuration_url(data: Mapping[str, Any]) -> str | None:
    """The web page of the adapter of entry ``data``, where it has one."""
    if data.get(CONF_CONNECTION) == CONNECTION_VBUSNET:
        return VBUSNET_URL
    if data.get(CONF_PRODUCT) in WEB_PRODUCTS:
        return str(URL.build(scheme="http", host=data[CONF_HOST], path="/"))
    return None


def _mac_connections(serial: object) -> set[tuple[str, str]]:
    """The MAC of a RESOL device (its serial), as a device-registry connection."""
    if not isinstance(serial, str) or len(serial) != MAC_DIGITS:
        return set()
    mac = ":".join(serial[i : i + 2] for i in range(0, MAC_DIGITS, 2)).lower()
    return {(CONNECTION_NETWORK_MAC, mac)}


def hub_name(data: Mapping[str, Any]) -> str:
    """The adapter's device name: "DL3 192.168.1.5", "VBus/USB ttyACM0" (the port's file name)."""
    if data.get(CONF_CONNECTION) == CONNECTION_SERIAL:
        return f"{data.get(CONF_PRODUCT) or SERIAL_PRODUCT} {PurePosixPath(data[CONF_DEVICE]).name}"
    return f"{data.get(CONF_PRODUCT) or 'VBus'} {data[CONF_HOST]}"


def hub_device_info(coordinator: VBusCoordinator) -> DeviceInfo:
    """The adapter or data logger the entry connects to (the only device with a MAC)."""
    data = coordinator.config_entry.data
    serial = data.get(CONF_SERIAL)
    return DeviceInfo(
        identifiers={hub_identifier(coordinator)},
        connections=_mac_connections(serial),
        configuration_url=hub_configuration_url(data),
        manufacturer=MANUFACTURER,
        name=hub_name(data),
        model=data.get(CONF_PRODUCT),
        serial_number=serial,
        sw_version=data.get(CONF_FIRMWARE),
    )


def device_identifier(coordinator: VBusCoordinator, key: PacketKey) -> tuple[str, str]:
    """Device-registry identifier of the VBus device that sends ``key`` packets."""
    return (DOMAIN, f"{coordinator.unique_prefix}_{key.channel:02X}_{key.source:04X}")


def controller_device_info(coordinator: VBusCoordinator, key: PacketKey) -> DeviceInfo:
    """The VBus device that sends ``key`` packets, linked to the adapter.

    Its name is a translation of the specification's, in Home Assistant's language; with more
    than one entry, an explicit name in that language that ends with the entry's title
    (:attr:`VBusCoordinator.device_label`). Its model is the product ("DeltaSol MX", "DeltaSol
    MX HQM" for a heat quantity meter of it), its model ID the VBus address. The link to the
    adapter is its device id where Home Assistant takes one, else its identifier.
    """
    spec = coordinator.spec
    spec_names = spec.device_names(key.source, key.destination)
    name = names.device_name(spec_names, key.source)
    labelled = None
    if coordinator.device_label is not None:
        language = names.language(coordinator.hass)
        shown = spec.device_name(key.source, key.destination, language)
        labelled = f"{shown} ({coordinator.device_label})"
    translation_key = None if labelled else name.key
    placeholders = None if labelled else name.placeholders
    model = names.model(spec_names) if spec_names else None
    # The hub is registered before the platforms are set up (async_setup_entry): its id is known.
    if _VIA_DEVICE_ID and coordinator.hub_device_id is not None:
        return DeviceInfo(  # type: ignore[typeddict-unknown-key, unused-ignore]
            identifiers={device_identifier(coordinator, key)},
            manufacturer=MANUFACTURER,
            name=labelled,
            translation_key=translation_key,
            translation_placeholders=placeholders,
            model=model,
            model_id=f"0x{key.source:04X}",
            via_device_id=coordinator.hub_device_id,
        )
    return DeviceInfo(  # type: ignore[typeddict-unknown-key, unused-ignore]
        identifiers={device_identifier(coordinator, key)},
        manufacturer=MANUFACTURER,
        name=labelled,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        model=model,
        model_id=f"0x{key.source:04X}",
        via_device=hub_identifier(coordinator),
    )


class VBusEntity(CoordinatorEntity[VBusCoordinator]):
    """A field of a packet; state writes happen only when its value changes."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, coordinator: VBusCoordinator, packet: PacketState, index: int) -> None:
        """Create the entity for field ``index`` of ``packet``."""
        super().__init__(coordinator)
        self._packet = packet
        self._index = index
        self.field: FieldSpec = packet.decoder.fields[index]
        key = packet.key
        peer = None
        if key.destination != LIVE_DESTINATION:
            # e.g. what a DeltaSol MX sends to its extension module EM #1: "Relay 1 (EM #1)"
            language = names.language(coordinator.hass)
            peer = coordinator.spec.device_name(key.destination, key.source, language)
        name = names.field_name(self.field, peer)
        if name is None:  # not a field of the bundled specification
            self._attr_name = self.field.name() if peer is None else f"{self.field.name()} ({peer})"
        else:
            self._attr_translation_key = name.key
            self._attr_translation_placeholders = name.placeholders
        self._attr_unique_id = f"{coordinator.unique_prefix}_{key.packet_id}_{self.field.field_id}"
        self._attr_device_info = controller_device_info(coordinator, key)
        self._last_write = float("-inf")
        self._written: object = None
        self._pending_write: CALLBACK_TYPE | None = None

    @property
    def value(self) -> Value | None:
        """The field's latest decoded value (``None`` when absent from the packet)."""
        return self._packet.values[self._index]

    @property
    def available(self) -> bool:
        """Connected, and the device still sends this packet."""
        return super().available and self._packet.available

    async def async_added_to_hass(self) -> None:
        """Listen to this field's value and this packet's availability."""
        await super().async_added_to_hass()
        packet = self._packet
        listeners = packet.field_listeners.setdefault(self._index, [])
        listeners.append(self._handle_value_change)
        packet.availability_listeners.append(self.async_write_ha_state)
        self.async_on_remove(lambda: listeners.remove(self._handle_value_change))
        self.async_on_remove(
            lambda: packet.availability_listeners.remove(self.async_write_ha_state)
        )
        self.async_on_remove(self._cancel_pending_write)

    def state_value(self) -> object:
        """What the state shows (the platforms' native value); equal values are not written."""
        raise NotImplementedError

    @callback
    def _handle_value_change(self) -> None:
        shown = self.state_value()
        if shown == self._written:
            # A raw change that shows the same (e.g. one "no sensor" code for another).
            self._cancel_pending_write()
            return
        interval = self.coordinator.min_interval
        now = time.monotonic()
        if interval <= 0 or now - self._last_write >= interval:
            self._cancel_pending_write()
            self._write(now, shown)
        elif self._pending_write is None:
            self._pending_write = async_call_later(
                self.hass, interval - (now - self._last_write), self._write_later
            )

    @callback
    def _write_later(self, _now: object) -> None:
        self._pending_write = None
        shown = self.state_value()
        if shown != self._written:
            self._write(time.monotonic(), shown)

    def _write(self, now: float, shown: object) -> None:
        self._last_write = now
        self._write_state(shown)

    @callback
    def _write_state(self, shown: object) -> None:
        """Write the state and remember what it shows (``shown``: :meth:`state_value`)."""
        self._written = shown
        self.async_write_ha_state()

    @callback
    def _handle_coordinator_update(self) -> None:
        """The connection went down or came back."""
        self._write_state(self.state_value())

    def _cancel_pending_write(self) -> None:
        if self._pending_write is not None:
            self._pending_write()
            self._pending_write = None


def async_setup_fields(
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[VBusCoordinator, PacketState, int], VBusEntity],
    wanted: Callable[[FieldSpec], bool],
) -> None:
    """Add ``entity_class`` entities for the ``wanted`` fields of every packet, now and later."""
    coordinator = entry.runtime_data

    @callback
    def add_packet(packet: PacketState) -> None:
        async_add_entities(
            entity_class(coordinator, packet, index)
            for index, spec_field in enumerate(packet.decoder.fields)
            if wanted(spec_field)
        )

    entry.async_on_unload(coordinator.async_add_packet_callback(add_packet))


class VBusValueEntity(CoordinatorEntity["ValuesCoordinator"]):
    """A catalog value of a controller that can be changed."""

    _attr_has_entity_name = True
    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, values: ValuesCoordinator, value: CatalogValue) -> None:
        """Create the entity for ``value`` of the controller ``values`` manages."""
        super().__init__(values)
        coordinator: VBusCoordinator = values.config_entry.runtime_data
        self.catalog_value = value
        self._attr_translation_key = value.translation_key
        self._attr_translation_placeholders = dict(value.placeholders)
        self._attr_unique_id = (
            f"{coordinator.unique_prefix}_{values.key.channel:02X}_"
            f"{values.controller:04X}_{value.key}"
        )
        self._attr_device_info = controller_device_info(coordinator, values.key)
        # A setting without effect in the controller's configuration (a heating circuit that is
        # not set up) starts disabled; the user can enable it.
        self._attr_entity_registry_enabled_default = values.applies(value)

    # The requested value of a write that waits for the bus: a moment's information, not history.
    _unrecorded_attributes = frozenset({ATTR_PENDING})

    @property
    def raw(self) -> int | None:
        """The last value read from (or acknowledged by) the controller."""
        return self.coordinator.raw(self.catalog_value)

    @property
    def available(self) -> bool:
        """Connected, and the value shown is what the controller confirmed since then."""
        return super().available and self.coordinator.known(self.catalog_value)

    @property
    def extra_state_attributes(self) -> dict[str, object] | None:
        """While a write waits: the requested value (the state stays the confirmed one)."""
        pending = self.coordinator.pending.get(self.catalog_value.value_id)
        if pending is None:
            return None
        return {ATTR_PENDING: self.pending_value(pending)}

    def pending_value(self, raw: int) -> object:
        """How the ``pending`` attribute shows a requested raw value (as the state would)."""
        return self.catalog_value.to_display(raw)

    def _to_raw(self, shown: DisplayValue) -> int:
        """The raw value for ``shown``; invalid input is the user's error, translated."""
        try:
            return self.catalog_value.to_raw(shown)
        except CatalogError as err:
            raise invalid_value(self.coordinator.label(self.catalog_value), err) from err

    async def _async_write(self, raw: int) -> None:
        await self.coordinator.async_write(self.catalog_value, raw)


def async_setup_values(
    entry: VBusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: Callable[[ValuesCoordinator, CatalogValue], VBusValueEntity],
    kind: ValueKind,
) -> None:
    """Add ``entity_class`` entities for the catalog values of ``kind`` of every controller."""

    @callback
    def add_controller(values: ValuesCoordinator) -> None:
        async_add_entities(
            entity_class(values, value) for value in values.catalog.values if value.kind is kind
        )

    manager = entry.runtime_data.values
    entry.async_on_unload(manager.async_add_controller_callback(add_controller))
