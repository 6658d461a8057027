"""The coordinators: the live data of a config entry, and the controller values.

:class:`VBusCoordinator` (push) owns the VBus session of a config entry and fans decoded values
out. VBus controllers resend their packets about every second, mostly unchanged. The coordinator
keeps the latest decoded values per packet and notifies only the entities whose field value
changed; Home Assistant's own listener mechanism (which notifies every entity) is used only for
connection-wide availability changes.

What the bus can make an entry create is bounded (:class:`Bound`): a faulty or foreign device,
or interference, that sends ever new addresses would otherwise mint devices and entities without
end (wildcard templates match whole address ranges). Beyond a bound new kinds are ignored and
counted; the first time, one warning is logged and a repair issue raised until the entry is
unloaded. Kinds already admitted keep updating.

:class:`ValuesCoordinator` (one per controller the catalog knows, kept by :class:`ValuesManager`)
reads and writes the catalog values through the parameterization engine: in one bus session
after setup and then every ``refresh_interval`` minutes (not every second: every read takes the
bus from the controller).

What Home Assistant shows is what the controller confirmed (a read, or the acknowledgement of a
write) since the connection last came up. When the values may have changed behind its back (the
connection was lost, the controller stopped sending for a while, its value list changed) they
are unknown, and the entities unavailable, until they are read again, which happens at once. A
write whose outcome is unknown (the connection broke after it was sent) makes that value unknown
until it is read again. While a write waits for the bus, the entity shows the confirmed value and
the requested one as its ``pending`` attribute.

Writes are validated, skipped when the confirmed value is already the requested one (and no
other write to it waits), limited per value to the writes the controller acknowledged in the last
minute (requests merged into one write, or skipped, do not count), and logged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from homeassistant.config_entries import SOURCE_IGNORE, ConfigEntry
from homeassistant.const import (
    CONF_DEVICE,
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    EVENT_HOMEASSISTANT_STOP,
)
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
    ServiceValidationError,
)
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util.ssl import client_context

from .const import (
    CONF_CHANNEL,
    CONF_CONNECTION,
    CONF_MIN_INTERVAL,
    CONF_REFRESH_INTERVAL,
    CONF_TLS,
    CONF_VIA_TAG,
    CONF_WRITE_LIMIT,
    CONNECTION_SERIAL,
    DEFAULT_MIN_INTERVAL,
    DEFAULT_REFRESH_INTERVAL,
    DEFAULT_WRITE_LIMIT,
    DOMAIN,
    LOGGER,
)
from .values import StoredIndexCache, invalid_value, operation_failed
from .vbus.blocktype import is_block_packet
from .vbus.catalog import CatalogError, ControllerCatalog, catalog_for, catalogs
from .vbus.errors import AuthenticationError, VBusError
from .vbus.parameters import (
    BusNotOfferedError,
    ChangesetChangedError,
    EngineLimit,
    NotSentError,
    ParameterEngine,
    Timing,
    UnknownValueError,
    ValueOutOfRangeError,
    ValueRejectedError,
    ValueResult,
)
from .vbus.protocol import Frame, Packet
from .vbus.session import (
    ConnectionConfig,
    SessionState,
    VBusSession,
    is_configuration_error,
)

if TYPE_CHECKING:
    from .vbus.catalog import CatalogValue
    from .vbus.specification import PacketDecoder, Specification, Values

type VBusConfigEntry = ConfigEntry[VBusCoordinator]

SETUP_TIMEOUT: Final = 30.0
#: When a read of a controller's values failed while they are unknown (after a reconnect, a
#: restart), the next read comes this soon instead of after the refresh interval.
REREAD_RETRY: Final = timedelta(minutes=1)
#: Engine timeouts (the reference's defaults; tests shorten them).
ENGINE_TIMING: Final = Timing()
#: Errors after which a write's outcome is known: it was not sent, or the controller refused it.
#: After any other (no acknowledgement, a lost connection, a bug) it may have been made.
_OUTCOME_KNOWN: Final = (
    BusNotOfferedError,
    NotSentError,
    ChangesetChangedError,
    UnknownValueError,
    ValueOutOfRangeError,
    ValueRejectedError,
)
STALE_CHECK_INTERVAL: Final = timedelta(seconds=10)
#: A packet is stale when it did not come for this many of its usual intervals ...
STALE_FACTOR: Final = 10.0
#: ... but never sooner than this (seconds).
STALE_MINIMUM: Final = 60.0

# Bounds per entry. The largest system the catalog knows, a DeltaSol MX fully equipped as its
# value list allows (7 heating circuits, 7 heat quantity meters, 5 extension modules) behind a
# DL3, sends 27 kinds of packets from 22 devices with 347 fields; the recorded real system (5 heat
# quantity meters, 5 modules) 15 kinds from 10 devices with 293 fields. Each bound is at least 4×
# the former.
#: Kinds of packets (channel, destination, source, command) decoded.
MAX_PACKET_KINDS: Final = 128
#: VBus devices (channel, source address) that send them.
MAX_DEVICES: Final = 96
#: Their fields, one sensor or binary sensor each. The kind bound alone would allow 4 853 (the
#: 128 largest kinds the templates can match).
MAX_ENTITIES: Final = 1500
#: Kinds of packets without a template kept for diagnostics (the recordings have 1: a glitch).
MAX_UNKNOWN_PACKETS: Final = 32


class Bound(StrEnum):
    """A bounded table; ``too_many_<value>`` is the translation key of its repair issue."""

    PACKET_KINDS = "packet_kinds"
    DEVICES = "devices"
    ENTITIES = "entities"
    UNKNOWN_PACKETS = "unknown_packets"

    @property
    def limit(self) -> int:
        """The bound."""
        return _LIMITS[self]

    @property
    def issue_key(self) -> str:
        """The translation key of the repair issue."""
        return f"too_many_{self.value}"


_LIMITS: Final = {
    Bound.PACKET_KINDS: MAX_PACKET_KINDS,
    Bound.DEVICES: MAX_DEVICES,
    Bound.ENTITIES: MAX_ENTITIES,
    Bound.UNKNOWN_PACKETS: MAX_UNKNOWN_PACKETS,
}
_IGNORED_WHAT: Final = {
    Bound.PACKET_KINDS: "kinds of packets",
    Bound.DEVICES: "VBus devices",
    Bound.ENTITIES: "entities from VBus packets",
    Bound.UNKNOWN_PACKETS: "unknown kinds of packets kept for diagnostics",
}


def connection_config(data: Mapping[str, Any]) -> ConnectionConfig:
    """The library's connection settings for entry data (or the data entered so far)."""
    if data.get(CONF_CONNECTION) == CONNECTION_SERIAL:
        return ConnectionConfig(serial_port=data[CONF_DEVICE])
    return ConnectionConfig(
        host=data[CONF_HOST],
        port=data[CONF_PORT],
        password=data[CONF_PASSWORD],
        via_tag=data.get(CONF_VIA_TAG) or None,
        channel=data.get(CONF_CHANNEL) or None,
        # Home Assistant's shared client context: creating one loads certificates (blocking I/O).
        tls=client_context() if data.get(CONF_TLS) else False,
    )


def _issue_takes_entry() -> bool:
    """Whether this Home Assistant ties a repair issue to a config entry (2026.11 and later)."""
    return "config_entry_id" in inspect.signature(ir.async_create_issue).parameters


@callback
def _async_create_entry_issue(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],
    issue_id: str,
    *,
    translation_key: str,
    placeholders: dict[str, str],
) -> None:
    """Raise (or update) a warning about ``entry`` that the user can act on.

    Where Home Assistant takes it, the issue names its config entry, so that it shows with the
    entry and goes when the entry is removed.
    """
    entry_link: dict[str, Any] = {"config_entry_id": entry.entry_id} if _issue_takes_entry() else {}
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        **entry_link,
    )


class PacketKey(NamedTuple):
    """Identifies a kind of packet on the bus.

    A named tuple rather than a frozen dataclass: one is built and hashed for every packet, and
    a tuple is about four times cheaper at that (1.1 µs saved per packet).
    """

    channel: int
    destination: int
    source: int
    command: int

    @property
    def packet_id(self) -> str:
        """Reference-style packet id, e.g. ``01_0010_7E11_10_0100`` (stable across versions)."""
        return f"{self.channel:02X}_{self.destination:04X}_{self.source:04X}_10_{self.command:04X}"


@dataclass(slots=True, eq=False)
class PacketState:
    """The latest decoded values of one kind of packet."""

    key: PacketKey
    decoder: PacketDecoder
    frame_data: bytes
    values: Values
    last_seen: float
    interval: float | None = None
    available: bool = True
    field_listeners: dict[int, list[CALLBACK_TYPE]] = field(default_factory=dict)
    availability_listeners: list[CALLBACK_TYPE] = field(default_factory=list)


type PacketCallback = Callable[[PacketState], None]


class VBusCoordinator(DataUpdateCoordinator[None]):
    """Owns the library session of one config entry."""

    config_entry: VBusConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: VBusConfigEntry,
        spec: Specification,
        *,
        session: VBusSession | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the coordinator; :meth:`async_start` connects."""
        self.session = session or VBusSession(connection_config(entry.data))
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"RESOL VBus {self.where}",
            update_interval=None,
        )
        self.spec = spec
        self._clock = clock
        self.packets: dict[PacketKey, PacketState] = {}
        self.unknown_packets: dict[PacketKey, bytes] = {}
        #: Per bound, the frames ignored because it was reached.
        self.ignored: dict[Bound, int] = dict.fromkeys(Bound, 0)
        self._packet_callbacks: list[PacketCallback] = []
        self._connected_once = False
        self._lost = False
        self._unsubscribers: list[CALLBACK_TYPE] = []
        self.hub_device_id: str | None = None
        #: With more than one entry of the integration, this entry's title: the names of its
        #: VBus devices end with it, so that two controllers of one kind can be told apart
        #: (in the Energy and action pickers, say). Decided when the entry is set up.
        self.device_label: str | None = None
        self.values: ValuesManager

    # -- options --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the connection is up (since setup, or since it came back after a loss)."""
        return not self._lost

    @property
    def min_interval(self) -> float:
        """Minimum seconds between two state writes of one entity (0: on every change)."""
        return float(self.config_entry.options.get(CONF_MIN_INTERVAL, DEFAULT_MIN_INTERVAL))

    @property
    def unique_prefix(self) -> str:
        """Prefix of the unique IDs of this entry's entities and devices."""
        return self.config_entry.unique_id or self.config_entry.entry_id

    # -- lifecycle ------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Connect and wait for data; raise what Home Assistant expects when that fails."""
        entries = [
            entry
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            if entry.source != SOURCE_IGNORE and entry.disabled_by is None
        ]
        self.device_label = self.config_entry.title if len(entries) > 1 else None
        self._unsubscribers += [
            self.session.subscribe(self._handle_frame),
            self.session.add_state_listener(self._handle_state),
            async_track_time_interval(self.hass, self._check_stale, STALE_CHECK_INTERVAL),
            # Not async_listen_once: removing a listener that already ran is an error.
            self.hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, self._handle_hass_stop),
        ]
        self.session.start(self._spawn)
        try:
            async with asyncio.timeout(SETUP_TIMEOUT):
                await self.session.wait_connected()
        except AuthenticationError as err:
            await self.async_shutdown()
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except (VBusError, TimeoutError) as err:
            # A port that opened but stays silent has no error of its own: it sent no data.
            reason = str(self.session.last_error or err) or f"no VBus data in {SETUP_TIMEOUT:g} s"
            await self.async_shutdown()
            if is_configuration_error(err):  # via tag or channel rejected: retrying won't help
                raise ConfigEntryError(
                    translation_domain=DOMAIN,
                    translation_key="configuration_rejected",
                    translation_placeholders={"error": self.session.config.redact(str(err))},
                ) from err
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": reason},
            ) from err

    def _spawn(self, coroutine: object, name: str) -> asyncio.Task[None]:
        return self.config_entry.async_create_background_task(
            self.hass,
            coroutine,  # type: ignore[arg-type]
            name,
        )

    async def _handle_hass_stop(self, _event: Event) -> None:
        await self.session.stop()

    async def async_shutdown(self) -> None:
        """Stop the session and every timer and listener."""
        while self._unsubscribers:
            self._unsubscribers.pop()()
        await self.session.stop()
        for bound in Bound:  # a reload starts counting afresh
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(bound))
        await super().async_shutdown()

    @property
    def where(self) -> str:
        """What log lines name the device by: its host, or its serial port."""
        config = self.session.config
        return config.serial_port or config.host

    async def _async_update_data(self) -> None:
        """Nothing to poll: data is pushed."""

    # -- connection state -------------------------------------------------------------------

    @callback
    def _handle_state(self, state: SessionState, reason: BaseException | None) -> None:
        host = self.where
        if state == SessionState.CONNECTED:
            if self._lost:
                LOGGER.info("Connection to %s restored", host)
            self._lost = False
            self._connected_once = True
            self.async_set_updated_data(None)
        elif state in (SessionState.DISCONNECTED, SessionState.FAILED) and self._connected_once:
            if not self._lost:
                LOGGER.info("Lost connection to %s: %s", host, reason)
                self._lost = True
                self.last_update_success = False
                self.async_update_listeners()
            if isinstance(reason, AuthenticationError):  # the password was changed
                self.config_entry.async_start_reauth(self.hass)

    # -- packets ----------------------------------------------------------------------------

    @callback
    def async_add_packet_callback(self, packet_callback: PacketCallback) -> CALLBACK_TYPE:
        """Call ``packet_callback`` for every known packet kind now and every new one later."""
        self._packet_callbacks.append(packet_callback)
        for packet in list(self.packets.values()):
            packet_callback(packet)
        return lambda: self._packet_callbacks.remove(packet_callback)

    @callback
    def _handle_frame(self, frame: Frame) -> None:
        if not isinstance(frame, Packet):
            return  # datagrams: parameterization
        key = PacketKey(frame.channel, frame.destination, frame.source, frame.command)
        now = self._clock()
        packet = self.packets.get(key)
        if packet is None:
            self._add_packet(key, frame, now)
            return
        elapsed = now - packet.last_seen
        packet.interval = (
            elapsed if packet.interval is None else 0.8 * packet.interval + 0.2 * elapsed
        )
        packet.last_seen = now
        if not packet.available:
            packet.available = True
            LOGGER.info("%s sends data again", self._describe(key))
            for listener in list(packet.availability_listeners):
                listener()
        if frame.frame_data == packet.frame_data:
            return
        values = packet.decoder.decode(frame.frame_data)
        old_values = packet.values
        packet.frame_data = frame.frame_data
        packet.values = values
        for index, listeners in packet.field_listeners.items():
            if values[index] != old_values[index]:
                for listener in list(listeners):
                    listener()

    def _add_packet(self, key: PacketKey, frame: Packet, now: float) -> None:
        decoder = self.spec.decoder_for(frame)
        if decoder is None:
            if is_block_packet(frame):
                return  # block-type packets repeat the controller's data
            if key in self.unknown_packets or len(self.unknown_packets) < MAX_UNKNOWN_PACKETS:
                self.unknown_packets[key] = frame.frame_data
            else:
                self._ignore(Bound.UNKNOWN_PACKETS, key)
            return
        bound = self._bound_reached(key, decoder)
        if bound is not None:
            self._ignore(bound, key)
            return
        packet = PacketState(key, decoder, frame.frame_data, decoder.decode(frame.frame_data), now)
        self.packets[key] = packet
        for packet_callback in list(self._packet_callbacks):
            packet_callback(packet)

    def _bound_reached(self, key: PacketKey, decoder: PacketDecoder) -> Bound | None:
        """The bound that admitting a new kind of packet would exceed, if any."""
        packets = self.packets
        if len(packets) >= MAX_PACKET_KINDS:
            return Bound.PACKET_KINDS
        devices = {(known.channel, known.source) for known in packets}
        if (key.channel, key.source) not in devices and len(devices) >= MAX_DEVICES:
            return Bound.DEVICES
        fields = sum(len(packet.decoder.fields) for packet in packets.values())
        if fields + len(decoder.fields) > MAX_ENTITIES:
            return Bound.ENTITIES
        return None

    def _ignore(self, bound: Bound, key: PacketKey) -> None:
        """Count a frame ``bound`` keeps out; the first time, warn and raise a repair issue."""
        self.ignored[bound] += 1
        if self.ignored[bound] > 1:
            return
        LOGGER.warning(
            "%s reached its limit of %d %s, so it ignores new ones such as %s. A faulty or "
            "foreign device on the bus, or interference, may be sending invalid addresses",
            self.name,
            bound.limit,
            _IGNORED_WHAT[bound],
            self._describe(key),
        )
        _async_create_entry_issue(
            self.hass,
            self.config_entry,
            self._issue_id(bound),
            translation_key=bound.issue_key,
            placeholders={"entry": self.config_entry.title, "limit": str(bound.limit)},
        )

    def _issue_id(self, bound: Bound) -> str:
        return f"{bound.issue_key}_{self.config_entry.entry_id}"

    @callback
    def _check_stale(self, _now: object = None) -> None:
        now = self._clock()
        for packet in self.packets.values():
            limit = max(STALE_MINIMUM, STALE_FACTOR * (packet.interval or 0.0))
            if packet.available and now - packet.last_seen > limit:
                packet.available = False
                LOGGER.info("%s stopped sending data", self._describe(packet.key))
                for listener in list(packet.availability_listeners):
                    listener()

    def _describe(self, key: PacketKey) -> str:
        name = self.spec.device_name(key.source, key.destination, "en")
        return f"{name} (channel {key.channel}, {key.packet_id})"


class ValuesCoordinator(DataUpdateCoordinator[dict[str, int]]):
    """The catalog values (raw, by value id) of one controller."""

    config_entry: VBusConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: VBusConfigEntry,
        engine: ParameterEngine,
        catalog: ControllerCatalog,
        key: PacketKey,
    ) -> None:
        """Read and write ``catalog``'s values of the controller that sends ``key`` packets."""
        minutes = float(entry.options.get(CONF_REFRESH_INTERVAL, DEFAULT_REFRESH_INTERVAL))
        #: How often the values are read while they are known.
        self.refresh_interval = timedelta(minutes=minutes)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{catalog.name} values",
            update_interval=self.refresh_interval,
        )
        self.engine = engine
        self.catalog = catalog
        self.key = key
        #: Catalog values the controller does not know (at the last read).
        self.missing: set[str] = set()
        #: Those of them it knew before: what the ``values_missing`` repair issue lists.
        self.gone: set[str] = set()
        #: Every value was read since the last invalidation (connection, value list, restart).
        self.current = False
        #: Values the controller confirmed since then (read, or a write acknowledged); not those
        #: whose last write may or may not have reached it.
        self.confirmed: set[str] = set()
        #: Raw values requested by writes still waiting, and how many wait, per value id.
        self.pending: dict[str, int] = {}
        self._waiting: dict[str, int] = {}

    @property
    def controller(self) -> int:
        """The controller's VBus address."""
        return self.key.source

    async def _async_update_data(self) -> dict[str, int]:
        """Read every catalog value, and the values their conditions name, in one bus session."""
        values = self.catalog.values
        conditions = self.catalog.condition_values
        reads = [(v.value_id, v.id_hash) for v in values]
        reads += [(c.value_id, c.id_hash) for c in conditions]
        results = await asyncio.gather(
            *(self.engine.get(self.controller, id_hash=id_hash) for _, id_hash in reads),
            return_exceptions=True,
        )
        data: dict[str, int] = {}
        missing: set[str] = set()
        catalog_ids = {value.value_id for value in values}
        for (value_id, _), result in zip(reads, results, strict=True):
            if isinstance(result, ValueResult):
                data[value_id] = result.value
            elif isinstance(result, (UnknownValueError, ValueRejectedError)):
                if value_id in catalog_ids:  # a condition value may simply not exist
                    missing.add(value_id)
            elif isinstance(result, BaseException):
                # Unknown values keep their entities unavailable: try again soon, not in 10 min.
                if not self.current:
                    self.update_interval = min(REREAD_RETRY, self.refresh_interval)
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="read_failed",
                    translation_placeholders={"error": str(result)},
                ) from result
        self._report_missing(missing)
        self.current = True
        self.confirmed = set(data)
        self.update_interval = self.refresh_interval
        return data

    @callback
    def async_invalidate(self) -> None:
        """The values may have changed behind our back: unknown (unavailable) until re-read."""
        if self.current or self.confirmed:
            self.current = False
            self.confirmed.clear()
            self.async_update_listeners()

    @callback
    def async_reread(self) -> None:
        """Read every value again now (in the background; repeated requests are debounced)."""
        self.config_entry.async_create_background_task(
            self.hass, self.async_request_refresh(), f"resol_vbus re-read {self.controller:04X}"
        )

    def known(self, value: CatalogValue) -> bool:
        """Whether ``value`` shows what the controller holds (confirmed, current)."""
        return (
            value.value_id in self.confirmed
            and value.value_id not in self.missing
            and self.raw(value) is not None
        )

    def _report_missing(self, missing: set[str]) -> None:
        """Keep the repair issue in line with the values the controller had and no longer has.

        A value missing from the first read is one this firmware never had: no issue. One that
        disappears later is listed until the controller knows it again (or the entry unloads).
        """
        newly_gone = missing - self.missing if self.data else set()
        gone = (self.gone | newly_gone) & missing
        self.missing = missing
        if gone == self.gone:
            return
        self.gone = gone
        if not gone:
            ir.async_delete_issue(self.hass, DOMAIN, self._missing_issue_id)
            return
        _async_create_entry_issue(
            self.hass,
            self.config_entry,
            self._missing_issue_id,
            translation_key="values_missing",
            placeholders={
                "controller": self.catalog.name,
                "values": ", ".join(sorted(gone)),
                "entry": self.config_entry.title,
            },
        )

    @property
    def _missing_issue_id(self) -> str:
        return f"values_missing_{self.config_entry.entry_id}_{self.controller:04X}"

    async def async_shutdown(self) -> None:
        """Stop reading; the repair issue about missing values ends with the entry (or device)."""
        await super().async_shutdown()
        ir.async_delete_issue(self.hass, DOMAIN, self._missing_issue_id)

    def raw(self, value: CatalogValue) -> int | None:
        """The value's last known raw value."""
        return (self.data or {}).get(value.value_id)

    def applies(self, value: CatalogValue) -> bool:
        """Whether ``value`` has an effect in the controller's configuration, as last read."""
        return self.catalog.applies(value, self.data or {})

    async def async_write(self, value: CatalogValue, raw: int) -> ValueResult | None:
        """Write ``raw`` (validated); show the acknowledgement; ``None`` if nothing to write.

        Nothing is written when the controller confirmed this value already and no other write
        to it waits. Until the acknowledgement the entity keeps the confirmed value and shows
        ``raw`` as pending.
        """
        value_id = value.value_id
        try:
            raw = value.validate_raw(raw)
        except CatalogError as err:
            raise invalid_value(self.label(value), err) from err
        old = self.raw(value)
        if self.known(value) and old == raw and value_id not in self.pending:
            return None
        manager: ValuesManager = self.config_entry.runtime_data.values
        rate_key = f"{self.controller:04X}:{value_id}"
        manager.check_rate(rate_key, self.label(value))
        self.pending[value_id] = raw
        self._waiting[value_id] = self._waiting.get(value_id, 0) + 1
        self.async_update_listeners()
        try:
            result = await self.engine.set(
                self.controller,
                raw,
                id_hash=value.id_hash,
                minimum=value.raw_minimum,
                maximum=value.raw_maximum,
            )
        except VBusError as err:
            self._stop_waiting(value_id)
            if not isinstance(err, _OUTCOME_KNOWN):
                self._async_unconfirmed(value)
            self.async_update_listeners()
            raise operation_failed(err, self.label(value), "write_failed") from err
        except BaseException:  # cancelled: the caller gave up (the write may still be made)
            self._stop_waiting(value_id)
            self.async_update_listeners()
            raise
        self._stop_waiting(value_id)
        manager.count_write(rate_key)
        LOGGER.info(
            "Changed %s of %s from %s to %s", value_id, self.catalog.name, old, result.value
        )
        self._async_confirm(value_id, result.value)  # one state: the new value, not pending
        return result

    def _stop_waiting(self, value_id: str) -> None:
        self._waiting[value_id] -= 1
        if not self._waiting[value_id]:
            del self._waiting[value_id]
            self.pending.pop(value_id, None)

    @callback
    def _async_unconfirmed(self, value: CatalogValue) -> None:
        """The write was sent but not acknowledged: unknown until read again."""
        self.confirmed.discard(value.value_id)
        self.config_entry.async_create_background_task(
            self.hass, self._async_read_one(value), f"resol_vbus read {value.value_id}"
        )

    async def _async_read_one(self, value: CatalogValue) -> None:
        try:
            result = await self.engine.get(self.controller, id_hash=value.id_hash)
        except VBusError as err:
            LOGGER.debug("Could not read %s again: %s", value.value_id, err)
            return  # it stays unknown until the next complete read
        self._async_confirm(value.value_id, result.value)

    @callback
    def async_confirm_index(self, result: ValueResult) -> None:
        """The controller confirmed ``result`` outside :meth:`async_write` (a write by index).

        If a catalog value has that index (as last looked up under the result's changeset), it
        shows the confirmed value: otherwise a later write of its old value would be skipped.
        """
        cache = self.engine.cache
        for value in self.catalog.values:
            if cache.get(self.controller, result.changeset, value.id_hash) == result.index:
                self._async_confirm(value.value_id, result.value)

    @callback
    def _async_confirm(self, value_id: str, raw: int) -> None:
        """The controller confirmed ``raw`` for ``value_id`` (an acknowledgement or a read)."""
        self.confirmed.add(value_id)
        self.async_set_updated_data({**(self.data or {}), value_id: raw})

    def label(self, value: CatalogValue) -> str:
        """What messages call ``value``: its name in Home Assistant's language."""
        return value.name(self.hass.config.language.partition("-")[0])


type ControllerCallback = Callable[[ValuesCoordinator], None]


def _discard(listeners: list[Callable[[], None]], listener: Callable[[], None]) -> None:
    if listener in listeners:
        listeners.remove(listener)


class ValuesManager:
    """Finds the controllers the catalog knows and keeps one coordinator per controller."""

    def __init__(self, hass: HomeAssistant, entry: VBusConfigEntry) -> None:
        """Create the manager; :meth:`async_setup` loads the index cache."""
        self.hass = hass
        self.entry = entry
        self.cache = StoredIndexCache(hass, entry.entry_id)
        coordinator: VBusCoordinator = entry.runtime_data
        self.engine = ParameterEngine(coordinator.session, cache=self.cache, timing=ENGINE_TIMING)
        self.controllers: dict[int, ValuesCoordinator] = {}
        self._callbacks: list[ControllerCallback] = []
        self._detecting: set[int] = set()
        self._writes: dict[str, deque[float]] = {}
        self._connected = True

    def _recent_writes(self, key: str) -> deque[float]:
        now = time.monotonic()
        recent = self._writes.setdefault(key, deque())
        while recent and now - recent[0] > 60:  # noqa: PLR2004 - per minute
            recent.popleft()
        return recent

    def check_rate(self, key: str, label: str) -> None:
        """Refuse a write when the controller acknowledged too many writes of ``key`` lately.

        Only writes count (:meth:`count_write`): requests merged into one write or skipped do
        not, so a slider's steps cost the writes the controller made, not the clicks.
        """
        limit = int(self.entry.options.get(CONF_WRITE_LIMIT, DEFAULT_WRITE_LIMIT))
        if len(self._recent_writes(key)) >= limit:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="write_rate_limited",
                translation_placeholders={"value": label, "limit": str(limit)},
            )

    def count_write(self, key: str) -> None:
        """The controller acknowledged a write of ``key``."""
        self._recent_writes(key).append(time.monotonic())

    async def async_setup(self) -> None:
        """Load the cache and the catalog (file I/O, off the event loop); watch the bus."""
        await self.cache.async_load()
        await self.hass.async_add_executor_job(catalogs)
        coordinator: VBusCoordinator = self.entry.runtime_data
        self.entry.async_on_unload(coordinator.async_add_packet_callback(self._packet_seen))
        self.entry.async_on_unload(coordinator.session.add_state_listener(self._session_state))
        self.entry.async_on_unload(self.engine.add_changeset_listener(self._changeset_read))
        self.entry.async_on_unload(self.engine.add_limit_listener(self._limit_reached))

    @callback
    def _limit_reached(self, limit: EngineLimit) -> None:
        """The bus made the engine reach a bound (it warned once): a repair issue until unload."""
        _async_create_entry_issue(
            self.hass,
            self.entry,
            self._issue_id(limit),
            translation_key=f"too_many_{limit.value}",
            placeholders={"entry": self.entry.title, "limit": str(limit.limit)},
        )

    def _issue_id(self, limit: EngineLimit) -> str:
        return f"too_many_{limit.value}_{self.entry.entry_id}"

    @callback
    def _session_state(self, state: SessionState, _reason: BaseException | None) -> None:
        """Values are unknown while disconnected and read again when the connection is back."""
        if state == SessionState.CONNECTED:
            if not self._connected:
                self._connected = True
                for values in self.controllers.values():
                    values.async_reread()
        elif state != SessionState.CONNECTING:
            self._connected = False
            for values in self.controllers.values():
                values.async_invalidate()

    @callback
    def _changeset_read(self, controller: int, old: int | None, new: int) -> None:
        """A new value list (firmware update, new configuration): read everything again."""
        values = self.controllers.get(controller)
        if values is not None and old is not None and old != new:
            LOGGER.info("The value list of %s changed; reading its values again", values.name)
            values.async_invalidate()
            values.async_reread()

    @callback
    def _packet_availability(self, address: int, packet: PacketState) -> None:
        """A controller that stopped sending may have been restarted: read again when it sends."""
        values = self.controllers.get(address)
        if values is None:
            return
        if packet.available:
            values.async_reread()
        else:
            values.async_invalidate()

    async def async_shutdown(self) -> None:
        """Fail what is still queued and release the bus; a reload starts counting afresh."""
        await self.engine.close()
        for limit in EngineLimit:
            ir.async_delete_issue(self.hass, DOMAIN, self._issue_id(limit))

    async def async_forget(self, address: int) -> None:
        """The user removed the controller at ``address``: stop reading its values."""
        values = self.controllers.pop(address, None)
        if values is not None:
            await values.async_shutdown()

    @callback
    def async_add_controller_callback(
        self, controller_callback: ControllerCallback
    ) -> CALLBACK_TYPE:
        """Call ``controller_callback`` for every controller now and later."""
        self._callbacks.append(controller_callback)
        for values in list(self.controllers.values()):
            controller_callback(values)
        return lambda: self._callbacks.remove(controller_callback)

    @callback
    def _packet_seen(self, packet: PacketState) -> None:
        address = packet.key.source
        if address in self.controllers or address in self._detecting:
            return
        if not any(catalog.address == address for catalog in catalogs()):
            return
        self._detecting.add(address)
        listener = functools.partial(self._packet_availability, address, packet)
        packet.availability_listeners.append(listener)
        self.entry.async_on_unload(lambda: _discard(packet.availability_listeners, listener))
        self.entry.async_create_background_task(
            self.hass, self._async_add_controller(packet.key), f"resol_vbus detect {address:04X}"
        )

    async def _async_add_controller(self, key: PacketKey) -> None:
        catalog = await self._detect_catalog(key.source)
        if catalog is None:
            return  # stays "detecting": no new attempt for each packet
        values = ValuesCoordinator(self.hass, self.entry, self.engine, catalog, key)
        # Read first: whether a setting has an effect decides whether its entity starts enabled.
        # Only then is the controller listed, so that a platform that registers its callback
        # meanwhile creates the entities once, after the read, like the others.
        await values.async_refresh()
        self.controllers[key.source] = values
        self._detecting.discard(key.source)  # if the user removes it, it can come back
        for controller_callback in list(self._callbacks):
            controller_callback(values)

    async def _detect_catalog(self, address: int) -> ControllerCatalog | None:
        """The catalog for ``address``; for several firmware versions, the one that answers.

        A value that only one version's list has is looked up by hash; the first version whose
        value the controller knows wins, else the values all versions share.
        """
        versioned = [c for c in catalogs() if c.address == address and c.major_version]
        if len(versioned) > 1:
            for catalog in sorted(versioned, key=lambda c: -(c.major_version or 0)):
                others = {v.value_id for c in versioned if c is not catalog for v in c.values}
                unique = [v for v in catalog.values if v.value_id not in others]
                if not unique:
                    continue
                try:
                    await self.engine.lookup(address, unique[0].id_hash)
                except VBusError:
                    continue
                return catalog
        return catalog_for(address)
