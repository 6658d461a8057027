"""Push coordinator: owns the VBus session of a config entry and fans decoded values out.

VBus controllers resend their packets about every second, mostly unchanged. The coordinator
keeps the latest decoded values per packet and notifies only the entities whose field value
changed; Home Assistant's own listener mechanism (which notifies every entity) is used only for
connection-wide availability changes.

What the bus can make an entry create is bounded (:class:`Bound`): a faulty or foreign device,
or interference, that sends ever new addresses would otherwise mint devices and entities without
end (wildcard templates match whole address ranges). Beyond a bound new kinds are ignored and
counted; the first time, one warning is logged and a repair issue raised until the entry is
unloaded. Kinds already admitted keep updating.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
)
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util.ssl import client_context

from .const import (
    CONF_CHANNEL,
    CONF_LANGUAGE,
    CONF_MIN_INTERVAL,
    CONF_TLS,
    CONF_VIA_TAG,
    DEFAULT_MIN_INTERVAL,
    DOMAIN,
    LANGUAGE_AUTO,
    LANGUAGES,
    LOGGER,
)
from .vbus.blocktype import is_block_packet
from .vbus.errors import AuthenticationError, VBusError
from .vbus.protocol import Frame, Packet
from .vbus.session import CONFIGURATION_ERRORS, ConnectionConfig, SessionState, VBusSession

if TYPE_CHECKING:
    from .values import ValuesManager
    from .vbus.specification import PacketDecoder, Specification, Values

type VBusConfigEntry = ConfigEntry[VBusCoordinator]

SETUP_TIMEOUT: Final = 30.0
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
    return ConnectionConfig(
        host=data[CONF_HOST],
        port=data[CONF_PORT],
        password=data[CONF_PASSWORD],
        via_tag=data.get(CONF_VIA_TAG) or None,
        channel=data.get(CONF_CHANNEL) or None,
        # Home Assistant's shared client context: creating one loads certificates (blocking I/O).
        tls=client_context() if data.get(CONF_TLS) else False,
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
            name=f"RESOL VBus {self.session.config.host}",
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
        self.values: ValuesManager

    # -- options --------------------------------------------------------------------------

    @property
    def language(self) -> str:
        """Language of entity and device names."""
        wanted = self.config_entry.options.get(CONF_LANGUAGE, LANGUAGE_AUTO)
        if wanted == LANGUAGE_AUTO:
            wanted = self.hass.config.language.split("-")[0]
        return wanted if wanted in LANGUAGES else "en"

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
        except CONFIGURATION_ERRORS as err:  # via tag or channel rejected: retrying won't help
            await self.async_shutdown()
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="configuration_rejected",
                translation_placeholders={"error": self.session.config.redact(str(err))},
            ) from err
        except (VBusError, TimeoutError) as err:
            reason = self.session.last_error or err
            await self.async_shutdown()
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(reason)},
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

    async def _async_update_data(self) -> None:
        """Nothing to poll: data is pushed."""

    # -- connection state -------------------------------------------------------------------

    @callback
    def _handle_state(self, state: SessionState, reason: BaseException | None) -> None:
        host = self.session.config.host
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
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._issue_id(bound),
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=bound.issue_key,
            translation_placeholders={
                "entry": self.config_entry.title,
                "limit": str(bound.limit),
            },
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
