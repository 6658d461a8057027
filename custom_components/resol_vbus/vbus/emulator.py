"""A RESOL LAN device emulator: DL2, DL3, KM2, VBus/LAN, VBus.net or a raw gateway, over real TCP.

The emulator listens for VBus-over-TCP clients, speaks the text handshake of the chosen
:class:`Personality` and then streams the VBus of a channel: live packets from a
:class:`ChannelSource` (a recording, a raw capture or synthesized values) plus the datagrams of a
:class:`ControllerSimulator` that offers the bus and answers parameterization requests. It also
answers LAN discovery (UDP query and HTTP device information) when asked to, and injects faults
(:class:`Faults`) at the connection and at the controller level.

Handshake (lines end CR LF; the client may end them with LF only):

* every non-raw personality greets with a ``+HELLO`` line at once; commands are case-sensitive;
  errors look like ``-ERROR: "Error: Unknown command"``;
* ``CONNECT <via tag>`` exists only on VBus.net and must come before ``PASS``;
* ``CHANNELLIST`` / ``CHANNEL <n>`` exist only on the DL3 and on VBus.net (which relays whatever
  channels it is given); both need a successful ``PASS``, as ``DATA`` does;
* a rejected ``PASS`` keeps the connection open; ``QUIT`` answers ``+OK: Bye`` and closes;
* ``DATA`` answers ``+OK: Data incoming...`` and the same ``write()`` carries the channel's most
  recent live packets, so the first binary bytes arrive in the same TCP segment as the line.
  From then on, bytes flow both ways; the client's frames are relayed to the other clients of
  the channel (as on a shared bus, never echoed back) and its datagrams reach the controller;
* ``Personality.RAW`` has no handshake at all (a serial-to-LAN gateway).

Channels: a DL3 has VBus channels 1…6 (``CHANNELLIST`` lists the configured channels ≥ 1 with
their names) and channel 0, its own inputs (address ``0053``): when no source is given for channel
0, a synthetic DL3 source is added. ``CHANNEL 0`` is accepted and ``DATA`` without ``CHANNEL``
streams channel 0, as on a real DL3. Channel 0 of a DL3 has no bus master. Other personalities
have exactly one channel; by default every emulator gets ``{1: SyntheticSource(0x7E11)}``.

Timelines start when the first client of a channel enters data mode and then run on their own
(also without clients). While another device holds the bus the controller is silent: no live
packets and no offers; when it takes the bus back (``0600`` or ``bus_timeout`` seconds without a
datagram from the master addressed to it) the next live packets go out at once — they are the
confirmation clients wait for. A reboot (:meth:`Emulator.reboot`) restarts only the logger: the
controller behind it keeps its state, including a bus held by a client that was cut off.

Controller decisions where the references are silent: requests outside the 0.4 s offer window
or from a device that does not hold the bus are ignored; the answer to ``1100`` (look-up by hash)
is ``1101`` as in the DeltaSol MX 2.08 example (``lookup_answer_command`` = ``0x0100`` gives the
other documented form); an unknown hash gets no answer (the look-up times out, as reported for
controllers without hashes); an unknown index, and any sub-index ≠ 0, gets ``4300|sub`` with the
index; ``1000`` for a value without hash answers ``0100`` with ``p32 = 0``; index 0 (changeset)
is read-only: writing it answers the changeset; every other command is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import math
import re
import signal
import socket
import sys
import zlib
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Self

from .aio import cancel_and_wait, reset_connection
from .catalog import catalog_for
from .discovery import (
    HTTP_PORTS,
    DeviceInformation,
    DeviceInformationServer,
    DiscoveryResponder,
)
from .errors import EmulatorError, RecordingError
from .protocol import (
    BROADCAST,
    CMD_ANSWER,
    CMD_GET,
    CMD_GET_HASH,
    CMD_LOOKUP,
    CMD_LOOKUP_ANSWER,
    CMD_NACK,
    CMD_OFFER,
    CMD_RELEASE,
    CMD_SET,
    CMD_SET_SAVE,
    LIVE_DESTINATION,
    SYNC,
    Datagram,
    Packet,
    decode_frame,
    frame_length,
)
from .receiver import StreamReceiver
from .recording import HeaderSetStart, RawData, RecordedFrame, read_recording
from .session import DEFAULT_PASSWORD
from .specification import DATETIME_EPOCH, FieldType, Specification
from .valueid import value_id_hash

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from types import TracebackType
    from typing import TextIO

    from .protocol import Frame
    from .specification import FieldSpec, Value

_LOGGER = logging.getLogger(__name__)

DL3_ADDRESS: Final = 0x0053
MX_CHANGESET: Final = 0x2734DABC
_LINE_LIMIT: Final = 4096
_HIGH_WATER: Final = 1 << 20  # a client this far behind loses data, as on a real logger
_AUTO: Final = "auto"


class Personality(StrEnum):
    """Which device the emulator pretends to be."""

    LAN = "lan"
    DL2 = "dl2"
    DL3 = "dl3"
    VBUSNET = "vbusnet"
    KM2 = "km2"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class _Product:
    product: str
    serial: str
    version: str
    build: str
    features: tuple[str, ...]


# Serials: RESOL OUI 00:1E:66 except the KM2 (Dragino OUI A8:40:41, as reported for real KM2s);
# the raw gateway poses as a DL2 with serial 001E66000000 like the reference's serial-to-tcp.
_PRODUCTS: Final = {
    Personality.LAN: _Product("VBus/LAN", "001E66E7A00B", "1.4.0", "201507230915", ("vbus",)),
    Personality.DL2: _Product("DL2", "001E66E7A002", "2.2.0", "201404290926", ("vbus", "dl2")),
    Personality.DL3: _Product(
        "DL3", "001E66E7A003", "2.1.0", "201311280853", ("vbus", "dl2", "dl3")
    ),
    Personality.VBUSNET: _Product("VBus.net", "001E66E7A00C", "1.0.0", "201601010000", ("vbus",)),
    Personality.KM2: _Product("KM2", "A84041E7A00A", "1.3.1", "201910150800", ("vbus", "wifi")),
    Personality.RAW: _Product("DL2", "001E66000000", "2.2.0", "201404290926", ("vbus", "dl2")),
}


@dataclass
class Faults:
    """Faults to inject; mutable while the emulator runs, all off by default.

    Connection level (counted per connection from the start of data mode):

    * ``drop_after_bytes``: close the connection once N data bytes went out. The frame that
      contains byte N is still sent whole, unless ``cut_mid_frame`` is set: then exactly N bytes.
    * ``cut_mid_frame``: closes happen inside a frame — the drop above is exact, and a reboot or
      stop first sends the first half of a frame to clients in data mode.
    * ``silent``: nothing at all is sent (greeting, replies, data); the connection stays open.
    * ``corrupt_every``: bit 0 of every Nth data byte is flipped.
    * ``hard_close``: closes reset the connection (RST) instead of closing it (FIN).
    * ``refuse_password``, ``reject_channel``, ``reject_data``: answer that command with ``-ERROR``.

    Controller level: ``answer_delay`` (seconds), ``drop_answers`` (the next N answers are lost;
    counts down), ``duplicate_answers`` (every answer twice), ``never_offer_bus``,
    ``update_after_lookups`` (each of the next N index look-ups is followed by a firmware update:
    changeset + 1, every index + 1; counts down).
    """

    drop_after_bytes: int | None = None
    cut_mid_frame: bool = False
    silent: bool = False
    corrupt_every: int | None = None
    refuse_password: bool = False
    answer_delay: float = 0.0
    drop_answers: int = 0
    duplicate_answers: bool = False
    never_offer_bus: bool = False
    reject_channel: bool = False
    reject_data: bool = False
    hard_close: bool = False
    update_after_lookups: int = 0


class _Changes:
    """Lets coroutines wait until a condition on some state becomes true."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()


def _base_name(address: int) -> str:
    """Device name of ``address`` without the ``[Controller]``-style suffix."""
    return Specification.bundled().device_name(address, LIVE_DESTINATION).split(" [")[0]


# -- channel sources ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cycle:
    """One burst of bus traffic: wait ``delay`` seconds (at speed 1), then send ``units``.

    Each unit is one complete frame (or a run of raw bytes of a capture); faults that cut a
    connection "after a frame" count in units.
    """

    delay: float
    units: tuple[bytes, ...]


class ChannelSource(ABC):
    """What one VBus channel carries; :meth:`cycles` starts a fresh timeline on every call."""

    def __init__(self, *, name: str | None, controller_address: int | None) -> None:
        """Set the channel name (``None``: derived from the controller) and the bus master."""
        self._name = name
        self.controller_address = controller_address

    @property
    def name(self) -> str:
        """The name listed by ``CHANNELLIST``."""
        if self._name is None:
            address = self.controller_address
            self._name = "VBus" if address is None else _base_name(address)
        return self._name

    @abstractmethod
    def cycles(self) -> Iterator[Cycle]:
        """The bus traffic, cycle by cycle (may be endless)."""


def _detect_controller(frames: Iterable[Frame]) -> int | None:
    """The first source of a live packet to DFA that is not a logger (DL3 ``0053``)."""
    for frame in frames:
        if (
            isinstance(frame, Packet)
            and frame.destination == LIVE_DESTINATION
            and frame.source != DL3_ADDRESS
        ):
            return frame.source
    return None


class RecordingSource(ChannelSource):
    """Replays the frames of a ``.vbus`` recording, header set by header set.

    Sets are sent at the recording's pace divided by the emulator's speed, each set's frames
    back-to-back (raw-data records as they are). ``channel`` picks the frames recorded on one
    channel (``None``: all). With ``loop`` the recording starts over after the typical set
    interval. The controller (bus master) is detected from the packets unless given.
    """

    def __init__(
        self,
        data: bytes,
        *,
        loop: bool = True,
        channel: int | None = None,
        name: str | None = None,
        controller: int | Literal["auto"] | None = _AUTO,
    ) -> None:
        """Read the recording ``data``; raises :class:`RecordingError` without frames."""
        sets: list[tuple[int, list[bytes]]] = []
        frames: list[Frame] = []
        for item in read_recording(data):
            if isinstance(item, HeaderSetStart):
                sets.append((item.timestamp, []))
                continue
            if isinstance(item, RecordedFrame):
                if channel is not None and item.frame.channel != channel:
                    continue
                frames.append(item.frame)
                unit = item.frame.encode()
            elif isinstance(item, RawData) and channel in (None, item.channel):
                unit = item.data
            else:
                continue
            if not sets:
                sets.append((item.timestamp, []))
            sets[-1][1].append(unit)
        self._sets = [(time, tuple(units)) for time, units in sets if units]
        if not self._sets:
            where = "" if channel is None else f" on channel {channel}"
            msg = f"the recording has no frames{where}"
            raise RecordingError(msg)
        self.loop = loop
        self.frame_count = len(frames)
        address = _detect_controller(frames) if controller == _AUTO else controller
        super().__init__(name=name, controller_address=address)

    @staticmethod
    def channels_in(data: bytes) -> list[int]:
        """The channels that carry frames in the recording ``data``, ascending."""
        channels = {
            item.frame.channel for item in read_recording(data) if isinstance(item, RecordedFrame)
        }
        return sorted(channels)

    def cycles(self) -> Iterator[Cycle]:
        """One cycle per header set; the delay is the time since the previous set."""
        times = [time for time, _units in self._sets]
        gap = (times[1] - times[0]) / 1000 if len(times) > 1 else 1.0
        delay = 0.0
        while True:
            previous: int | None = None
            for time, units in self._sets:
                if previous is not None:
                    delay = max(time - previous, 0) / 1000
                yield Cycle(delay, units)
                previous = time
            if not self.loop:
                return
            delay = max(gap, 0.0)


def _split_capture(data: bytes) -> list[tuple[bytes, Frame | None]]:
    """Cut raw wire bytes into valid frames and the junk between them."""
    pieces: list[tuple[bytes, Frame | None]] = []
    junk_start = 0
    start = data.find(SYNC)
    while start >= 0:
        length = frame_length(data[start : start + 9]) or 0
        frame = decode_frame(data[start : start + length]) if length else None
        if frame is None:
            start = data.find(SYNC, start + 1)
            continue
        if junk_start < start:
            pieces.append((data[junk_start:start], None))
        pieces.append((data[start : start + length], frame))
        junk_start = start + length
        start = data.find(SYNC, junk_start)
    if junk_start < len(data):
        pieces.append((data[junk_start:], None))
    return pieces


class StaticSource(ChannelSource):
    """One burst of fixed frames, then silence: a deterministic bus for tests and examples."""

    def __init__(
        self, *frames: Frame, controller: int | None = None, name: str | None = None
    ) -> None:
        """Send ``frames`` once; the controller defaults to the first packet's source."""
        packets = [frame for frame in frames if isinstance(frame, Packet)]
        address = controller if controller is not None else (packets[0].source if packets else None)
        super().__init__(name=name, controller_address=address)
        self.units = tuple(frame.encode() for frame in frames)

    def cycles(self) -> Iterator[Cycle]:
        """A single cycle."""
        yield Cycle(0.0, self.units)


class LiveCaptureSource(ChannelSource):
    """Replays raw wire bytes (a capture of a live stream) byte for byte, junk included.

    The capture is cut into cycles where the first packet's header (destination, source,
    command) comes round again; one cycle is sent every ``interval`` seconds (at speed 1).
    """

    def __init__(
        self,
        data: bytes,
        *,
        loop: bool = True,
        interval: float = 1.0,
        name: str | None = None,
        controller: int | Literal["auto"] | None = _AUTO,
    ) -> None:
        """Split the capture ``data``; raises :class:`RecordingError` when it is empty."""
        if not data:
            msg = "the live capture is empty"
            raise RecordingError(msg)
        pieces = _split_capture(data)
        frames = [frame for _unit, frame in pieces if frame is not None]
        packets = [frame for frame in frames if isinstance(frame, Packet)]
        key = (packets[0].destination, packets[0].source, packets[0].command) if packets else None
        cycles: list[list[bytes]] = [[]]
        has_key = False  # the current cycle already has the first packet's header
        for unit, frame in pieces:
            is_key = (
                isinstance(frame, Packet)
                and (frame.destination, frame.source, frame.command) == key
            )
            if is_key and has_key:
                cycles.append([])
                has_key = False
            cycles[-1].append(unit)
            has_key = has_key or is_key
        self._cycles = [tuple(units) for units in cycles]
        self.loop = loop
        self.interval = interval
        address = _detect_controller(frames) if controller == _AUTO else controller
        super().__init__(name=name, controller_address=address)

    def cycles(self) -> Iterator[Cycle]:
        """The capture's cycles, ``interval`` apart."""
        delay = 0.0
        while True:
            for units in self._cycles:
                yield Cycle(delay, units)
                delay = self.interval
            if not self.loop:
                return


# Packets of a DeltaSol MX system and their frame counts as seen in the reference recordings:
# controller, modules, heating circuit 1 and two heat quantity meters.
_MX_SYSTEM: Final = ((0x7E11, 25), (0x7E12, 15), (0x7E21, 1), (0x7E31, 4), (0x7E32, 4))
_ACTIVE_TEMPERATURES: Final = 6
NO_SENSOR: Final = 888.8
_TEMPERATURE_BASES: Final = (45.0, 38.0, 52.0, 30.0, 41.0, 9.0)
_COUNTER_STARTS: Final = (5_020_902, 1_250, 19_108, 80_311)
_TAU: Final = 2 * math.pi


class _Simulation:
    """The physical state behind synthetic packets, advanced in simulated seconds."""

    def __init__(self, start: datetime) -> None:
        self.elapsed = 0.0
        wall = start.replace(tzinfo=None) - DATETIME_EPOCH.replace(tzinfo=None)
        self.clock = wall.total_seconds()
        self.energy = 0.0  # Wh since start
        self.volume = 0.0  # litres since start

    def advance(self, seconds: float) -> None:
        self.energy += self.power() * seconds / 3600
        self.volume += self.flow() * seconds / 3600
        self.elapsed += seconds
        self.clock += seconds

    def _wave(self, period: float, phase: float = 0.0) -> float:
        return math.sin(_TAU * self.elapsed / period + phase)

    def temperature(self, sensor: int, variant: int = 0) -> float:
        """Temperature ``sensor`` of a packet: drifting, or 888.8 (no sensor) after the sixth."""
        if sensor >= _ACTIVE_TEMPERATURES:
            return NO_SENSOR
        base = _TEMPERATURE_BASES[(sensor + variant) % _ACTIVE_TEMPERATURES] - 2 * variant
        return round(base + (2 + sensor % 3) * self._wave(240 + 60 * sensor, sensor + variant), 1)

    def pump(self) -> int:
        wave = self._wave(300, 0.8)
        return 0 if wave <= 0 else 30 + round(70 * wave)

    def power(self) -> int:
        return self.pump() * 35

    def flow(self) -> int:
        return self.pump() * 6

    def resistance(self, ordinal: int) -> float:
        """A PT1000 sensor at one of the simulated temperatures."""
        return round(1000 + 3.85 * self.temperature(ordinal % _ACTIVE_TEMPERATURES), 3)

    def relay(self, ordinal: int) -> int:
        """Relay 1 modulates the pump speed, relay 2 switches on and off, the others are off."""
        if ordinal == 0:
            return self.pump()
        return 100 if ordinal == 1 and self._wave(600, 1) > 0 else 0

    def heat(self, ordinal: int, variant: int = 0) -> int:
        """Heat quantity counters; meters of odd variants started half as high again."""
        start = _COUNTER_STARTS[ordinal % 4]
        return round(start + start // 2 * (variant % 2) + self.energy)

    def litres(self, ordinal: int) -> int:
        return round(_COUNTER_STARTS[ordinal % 4] // 10 + self.volume)

    def pressure(self) -> float:
        return round(2.49 + 0.05 * self._wave(120), 2)

    def irradiation(self) -> int:
        return max(0, round(800 * self._wave(900, 0.5)))

    def current(self) -> float:
        return round(12 + 8 * self._wave(180), 3)

    def clock_value(self, kind: str) -> int:
        """System date (seconds since 2001), time of day or week time (minutes)."""
        clock = int(self.clock)
        minutes = clock // 60 % 1440
        if kind == "DateTime":
            return clock
        if kind == "Time":
            return minutes
        return clock // 86400 % 7 * 1440 + minutes  # 2001-01-01 was a Monday

    def value(self, kind: str, ordinal: int, variant: int = 0) -> Value:
        """The current value of the ``ordinal``-th field of a kind (unit code or field type).

        Packets of one system use different ``variant`` numbers, so that a module's sensors do
        not repeat the controller's.
        """
        if kind in ("DateTime", "Time", "WeekTime"):
            return self.clock_value(kind)
        if kind == "DegreesCelsius":
            return self.temperature(ordinal, variant)
        if kind == "WattHours":
            return self.heat(ordinal, variant)
        series: dict[str, Callable[[int], Value]] = {
            "Ohms": self.resistance,
            "Percent": self.relay,
            "Liters": self.litres,
        }
        if kind in series:
            return series[kind](ordinal)
        first_only: dict[str, Callable[[], Value]] = {
            "Watts": self.power,
            "LitersPerHour": self.flow,
            "Bars": self.pressure,
            "WattsPerSquareMeter": self.irradiation,
            "Milliamperes": self.current,
        }
        return first_only[kind]() if kind in first_only and ordinal == 0 else 0


def _kind(spec_field: FieldSpec) -> str:
    if spec_field.type == FieldType.DATETIME:
        return "DateTime"
    if spec_field.type == FieldType.TIME:
        return "Time"
    if spec_field.type == FieldType.WEEKTIME:
        return "WeekTime"
    return spec_field.unit.code


class SyntheticSource(ChannelSource):
    """Synthesizes the live packets of a controller from the specification, once per interval.

    For ``0x7E11`` (DeltaSol MX) the system of the reference recordings is emulated: controller,
    modules, heating circuit 1 and two heat quantity meters, with their real frame counts. Any
    other address gets its controller packet (``0100`` to ``0010``) with every field of the
    template. Values move: the first six temperatures of a packet drift (further ones report the
    888.8 "no sensor" sentinel), relay 1 modulates its pump speed, power and flow follow it, heat
    quantities and volumes count up, the first pressure/irradiation/current sensors wave, and the
    system date advances with simulated time (local wall clock at ``start``, default now).
    """

    def __init__(
        self,
        address: int = 0x7E11,
        *,
        spec: Specification | None = None,
        name: str | None = None,
        interval: float = 1.0,
        start: datetime | None = None,
    ) -> None:
        """Prepare the packet layout; raises :class:`EmulatorError` for unknown controllers."""
        self.spec = spec or Specification.bundled()
        self.interval = interval
        self.start = start
        system = _MX_SYSTEM if address == 0x7E11 else ((address, 0),)
        self._layout: list[tuple[int, int, list[tuple[FieldSpec, str, int]]]] = []
        for source, frames in system:
            decoder = self.spec.decoder(LIVE_DESTINATION, source, 0x0100)
            if decoder is None:
                msg = f"the specification has no live packet for controller 0x{source:04X}"
                raise EmulatorError(msg)
            counts: dict[str, int] = {}
            fields: list[tuple[FieldSpec, str, int]] = []
            for spec_field in decoder.fields:
                kind = _kind(spec_field)
                fields.append((spec_field, kind, counts.get(kind, 0)))
                counts[kind] = counts.get(kind, 0) + 1
            size = max(spec_field.bytes_needed for spec_field in decoder.fields)
            self._layout.append((source, frames or -(-size // 4), fields))
        super().__init__(name=name, controller_address=address)

    def _packets(self, simulation: _Simulation) -> list[Packet]:
        """The packets for the current state of ``simulation``."""
        packets = []
        for variant, (source, frames, fields) in enumerate(self._layout):
            payload = bytearray(4 * frames)
            for spec_field, kind, ordinal in fields:
                value = simulation.value(kind, ordinal, variant)
                if value:
                    spec_field.encode_into(payload, value)
            packets.append(Packet(LIVE_DESTINATION, source, 0x0100, bytes(payload)))
        return packets

    def cycles(self) -> Iterator[Cycle]:
        """Endless cycles, ``interval`` simulated seconds apart."""
        simulation = _Simulation(self.start or datetime.now().astimezone())
        delay = 0.0
        while True:
            yield Cycle(delay, tuple(packet.encode() for packet in self._packets(simulation)))
            simulation.advance(self.interval)
            delay = self.interval


def _normalized(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def resolve_controller(text: str, spec: Specification | None = None) -> int:
    """The address of a controller given as hex (``7E11``, ``0x7E11``) or by name.

    Names match the specification's device names without case, spaces or punctuation, either in
    full (``"DeltaSol MX [Controller]"``) or without the bracketed part (``"DeltaSol MX"``, which
    prefers the controller over its modules).
    """
    with contextlib.suppress(ValueError):
        address = int(text, 16)
        if 0 <= address <= 0xFFFF:
            return address
    spec = spec or Specification.bundled()
    wanted = _normalized(text)
    candidates: list[tuple[int, int]] = []
    for index in range(spec.packet_template_count):
        template = spec.packet_template_at(index)
        if template.destination != LIVE_DESTINATION or template.command != 0x0100:
            continue
        name = spec.device_name(template.source, LIVE_DESTINATION)
        if _normalized(name) == wanted:
            return template.source
        base, bracket, _rest = name.partition(" [")
        if _normalized(base) == wanted:
            rank = 0 if not bracket or "controller" in name.casefold() else 1
            candidates.append((rank, template.source))
    if candidates:
        return min(candidates)[1]
    msg = f"unknown controller {text!r}: give a name such as 'DeltaSol MX' or an address like 7E11"
    raise EmulatorError(msg)


# -- parameter store ----------------------------------------------------------------------------


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


# -- controller ---------------------------------------------------------------------------------


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def _ignore_frames(_frames: tuple[bytes, ...]) -> None:
    """Default sink of a controller that is not attached to a bus."""


def _nothing() -> None:
    """Default release callback."""


class ControllerSimulator:
    """The bus master of a channel: offers the bus, hands it over and answers datagrams.

    ``send`` receives the frames the controller puts on the bus; ``on_release`` is called when
    it takes the bus back. Answers go to the requester's address with the controller as source.
    ``received`` keeps the last 1024 datagrams addressed to the controller, ``ignored`` counts
    those it did not act on (no bus, outside the offer window, another master).
    """

    def __init__(
        self,
        address: int,
        store: ParameterStore | None = None,
        *,
        offer_interval: float | None = 1.0,
        offer_window: float = 0.4,
        bus_timeout: float = 10.0,
        lookup_answer_command: int = CMD_LOOKUP_ANSWER,
        faults: Faults | None = None,
    ) -> None:
        """Create the controller at ``address`` (store: :meth:`ParameterStore.default_for`)."""
        self.address = address
        self.store = store if store is not None else ParameterStore.default_for(address)
        self.offer_interval = offer_interval
        self.offer_window = offer_window
        self.bus_timeout = bus_timeout
        self.lookup_answer_command = lookup_answer_command
        self.faults = faults if faults is not None else Faults()
        self.send: Callable[[tuple[bytes, ...]], None] = _ignore_frames
        self.on_release: Callable[[], None] = _nothing
        self.received: deque[Datagram] = deque(maxlen=1024)
        self.offers = 0
        self.withheld = 0  # offers not sent because of ``faults.never_offer_bus``
        self.ignored = 0
        self.received_total = 0
        self._master: int | None = None
        self._offered_at: float | None = None
        self._bus_free = asyncio.Event()
        self._bus_free.set()
        self._changes = _Changes()
        self._offer_task: asyncio.Task[None] | None = None
        self._release_timer: asyncio.TimerHandle | None = None
        self._delayed: set[asyncio.TimerHandle] = set()

    @property
    def master(self) -> int | None:
        """Address of the device holding the bus; ``None`` while the controller is master."""
        return self._master

    def start(self) -> None:
        """Start offering the bus every ``offer_interval`` seconds (needs a running loop)."""
        if self._offer_task is None and self.offer_interval is not None:
            self._offer_task = asyncio.get_running_loop().create_task(self._offer_loop())

    async def stop(self) -> None:
        """Stop offering; cancel the bus timeout and delayed answers."""
        task, self._offer_task = self._offer_task, None
        await cancel_and_wait(task)
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()

    async def _offer_loop(self) -> None:
        interval = self.offer_interval
        assert interval is not None  # noqa: S101 - checked by start()
        while True:
            await asyncio.sleep(interval)
            self.offer_bus()

    def offer_bus(self) -> bool:
        """Broadcast a bus offer now (if the controller is master); return whether it did."""
        if self._master is not None:
            return False
        if self.faults.never_offer_bus:
            self.withheld += 1
            self._changes.notify()
            return False
        self._offered_at = asyncio.get_running_loop().time()
        self.offers += 1
        self.send((Datagram(BROADCAST, self.address, CMD_OFFER).encode(),))
        self._changes.notify()
        return True

    def release_bus(self) -> None:
        """Take the bus back (as on ``0600`` or the timeout) and resume live packets."""
        if self._master is None:
            return
        self._master = None
        if self._release_timer is not None:
            self._release_timer.cancel()
            self._release_timer = None
        self._bus_free.set()
        self._changes.notify()
        self.on_release()

    async def wait_bus_free(self) -> None:
        """Wait until the controller is master."""
        await self._bus_free.wait()

    async def wait_for_master(self, master: int | None) -> None:
        """Wait until ``master`` holds the bus (``None``: until the controller has it back)."""
        await self._changes.wait_for(lambda: self._master == master)

    async def wait_for_offers(self, count: int) -> None:
        """Wait until ``count`` offers have been sent in total."""
        await self._changes.wait_for(lambda: self.offers >= count)

    async def wait_for_withheld(self, count: int) -> None:
        """Wait until ``never_offer_bus`` has held back ``count`` offers in total."""
        await self._changes.wait_for(lambda: self.withheld >= count)

    async def wait_for_received(self, count: int) -> None:
        """Wait until ``count`` datagrams addressed to the controller have arrived in total."""
        await self._changes.wait_for(lambda: self.received_total >= count)

    def receive(self, datagram: Datagram) -> None:
        """Handle a datagram seen on the bus."""
        if datagram.destination != self.address:
            return
        self.received.append(datagram)
        self.received_total += 1
        self._changes.notify()
        loop = asyncio.get_running_loop()
        if self._master is None:
            offered = self._offered_at
            if offered is None or loop.time() - offered > self.offer_window:
                self.ignored += 1
                return
            self._master = datagram.source
            self._offered_at = None
            self._bus_free.clear()
            self._changes.notify()
        elif datagram.source != self._master:
            self.ignored += 1
            return
        if self._release_timer is not None:
            self._release_timer.cancel()
        self._release_timer = loop.call_later(self.bus_timeout, self.release_bus)
        if datagram.command == CMD_RELEASE:
            self.release_bus()
            return
        answer = self._answer(datagram)
        if answer is not None:
            self._send_answer(answer)

    def _answer(self, request: Datagram) -> Datagram | None:
        store = self.store
        command, index, value = request.command, request.param16, request.param32
        base, sub = command & 0xFF80, command & 0x7F

        def reply(command: int, param16: int, param32: int) -> Datagram:
            return Datagram(request.source, self.address, command, param16, _signed32(param32))

        if base in (CMD_GET, CMD_SET, CMD_SET_SAVE):
            result = None
            if not sub:
                result = store.read(index) if base == CMD_GET else store.write(index, value)
            if result is None:
                return reply(CMD_NACK | sub, index, 0)
            return reply(CMD_ANSWER | sub, index, result)
        if command == CMD_GET_HASH:
            id_hash = store.hash_of(index)
            if id_hash is None:
                return reply(CMD_NACK, index, 0)
            return reply(CMD_ANSWER, index, id_hash)
        if command == CMD_LOOKUP:
            found = store.index_of(value)
            if found is None:
                return None
            if self.faults.update_after_lookups > 0:
                self.faults.update_after_lookups -= 1
                store.firmware_update((store.changeset + 1) & 0xFFFFFFFF, index_shift=1)
            return reply(self.lookup_answer_command, found, value)
        return None

    def _send_answer(self, answer: Datagram) -> None:
        faults = self.faults
        if faults.drop_answers > 0:
            faults.drop_answers -= 1
            return
        frames = (answer.encode(),) * (2 if faults.duplicate_answers else 1)
        if faults.answer_delay <= 0:
            self.send(frames)
            return

        def deliver() -> None:
            self._delayed.discard(handle)
            self.send(frames)

        handle = asyncio.get_running_loop().call_later(faults.answer_delay, deliver)
        self._delayed.add(handle)


# -- the server ---------------------------------------------------------------------------------


class _Channel:
    """One VBus channel at runtime: its source's timeline, its controller, its clients."""

    def __init__(
        self,
        emulator: Emulator,
        number: int,
        source: ChannelSource,
        controller: ControllerSimulator | None,
    ) -> None:
        self.emulator = emulator
        self.number = number
        self.source = source
        self.controller = controller
        self.clients: set[_Connection] = set()
        self.last_cycle: tuple[bytes, ...] = ()
        self._cycles: Iterator[Cycle] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        if controller is not None:
            controller.send = self.broadcast
            controller.on_release = self._wake.set

    def _bus_free(self) -> bool:
        return self.controller is None or self.controller.master is None

    def attach(self, client: _Connection, prefix: bytes) -> None:
        """Add a client in data mode; ``prefix`` goes out in the same write as current packets."""
        self.clients.add(client)
        if self._cycles is None:
            self._cycles = self.source.cycles()
            first = next(self._cycles, None)
            if first is not None:
                self.last_cycle = first.units
            self._task = asyncio.get_running_loop().create_task(self._pump())
            if self.controller is not None:
                self.controller.start()
        client.send(self.last_cycle if self._bus_free() else (), prefix)

    def detach(self, client: _Connection) -> None:
        self.clients.discard(client)

    def broadcast(self, units: tuple[bytes, ...], *, sender: _Connection | None = None) -> None:
        for client in list(self.clients):
            if client is not sender:
                client.send(units)

    def from_client(self, client: _Connection, frame: Frame) -> None:
        """A client put ``frame`` on the bus: others see it, the controller may act on it."""
        self.broadcast((frame.encode(),), sender=client)
        if isinstance(frame, Datagram) and self.controller is not None:
            self.controller.receive(frame)

    async def _pump(self) -> None:
        assert self._cycles is not None  # noqa: S101 - set by attach()
        for cycle in self._cycles:
            if cycle.delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cycle.delay / self.emulator.speed):
                        await self._wake.wait()
            if self.controller is not None:
                await self.controller.wait_bus_free()
            self._wake.clear()
            self.last_cycle = cycle.units
            self.broadcast(cycle.units)
            await asyncio.sleep(0)

    def partial_frame(self) -> bytes:
        """The first half of a frame, for closes that cut a frame."""
        frame = (
            self.last_cycle[0] if self.last_cycle else Packet(LIVE_DESTINATION, 0, 0x100).encode()
        )
        return frame[: max(1, len(frame) // 2)]

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.controller is not None:
            await self.controller.stop()


class _Outcome(StrEnum):
    CONTINUE = "continue"
    DATA = "data"
    QUIT = "quit"


def _error(text: str) -> str:
    return "-ERROR: " + json.dumps(f"Error: {text}")


class _Connection:
    """One client connection: the handshake, then data mode on a channel."""

    def __init__(
        self, emulator: Emulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.emulator = emulator
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.connected_via = False
        self.channel_number = emulator.default_channel
        self.channel: _Channel | None = None
        self.data_sent = 0
        self.closed = False

    # sending -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not self.closed and data and not self.emulator.faults.silent:
            self.writer.write(data)

    def line(self, text: str) -> None:
        self._write(text.encode("utf-8") + b"\r\n")

    def send(self, units: Sequence[bytes], prefix: bytes = b"") -> None:
        """Send data-mode ``units`` (after ``prefix``), applying the connection faults."""
        faults = self.emulator.faults
        if self.closed or faults.silent:
            return
        if self.writer.transport.get_write_buffer_size() > _HIGH_WATER:
            return
        out = bytearray(prefix)
        cut = False
        for unit in units:
            limit = faults.drop_after_bytes
            chunk = unit
            if limit is not None and self.data_sent + len(unit) >= limit:
                cut = True
                if faults.cut_mid_frame:
                    chunk = unit[: max(limit - self.data_sent, 0)]
            out += self._corrupted(chunk, faults.corrupt_every)
            if cut:
                break
        self._write(bytes(out))
        if cut:
            self.close(partial=False)

    def _corrupted(self, chunk: bytes, every: int | None) -> bytes:
        start = self.data_sent
        self.data_sent += len(chunk)
        if not every or every < 1:
            return chunk
        data = bytearray(chunk)
        for position in range(every - 1 - start % every, len(data), every):
            data[position] ^= 0x01
        return bytes(data)

    def close(self, *, partial: bool = True) -> None:
        """Close the connection (cutting a frame first when ``cut_mid_frame`` asks for it)."""
        if self.closed:
            return
        faults = self.emulator.faults
        if partial and faults.cut_mid_frame and self.channel is not None:
            self._write(self.channel.partial_frame())
        self.closed = True
        if faults.hard_close:
            reset_connection(self.writer)
        else:
            self.writer.close()

    # receiving ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client or a fault closes it."""
        if self.emulator.personality == Personality.RAW:
            await self._data_mode(b"")
            return
        self.line(f"+HELLO {self.emulator.greeting}")
        while not self.closed:
            try:
                raw = await self.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                self.line(_error("Line too long"))
                return
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            outcome = self._command(text)
            if outcome == _Outcome.DATA:
                await self._data_mode(b"+OK: Data incoming...\r\n")
                return
            if outcome == _Outcome.QUIT:
                await self.writer.drain()
                return

    async def _data_mode(self, prefix: bytes) -> None:
        channel = self.emulator._channels[self.channel_number]  # noqa: SLF001 - same module
        self.channel = channel
        channel.attach(self, prefix)
        receiver = StreamReceiver(self.channel_number)
        while data := await self.reader.read(65536):
            for frame in receiver.feed(data):
                channel.from_client(self, frame)

    def _command(self, line: str) -> _Outcome:
        word, _space, argument = line.partition(" ")
        if word not in self.emulator.commands:
            self.line(_error("Unknown command"))
            return _Outcome.CONTINUE
        if word in _NEED_PASSWORD and not self.authenticated:
            self.line(_error("Password required"))
            return _Outcome.CONTINUE
        handlers: dict[str, Callable[[str], _Outcome]] = {
            "CONNECT": self._connect,
            "PASS": self._pass,
            "CHANNELLIST": self._channel_list,
            "CHANNEL": self._channel,
            "DATA": self._data,
            "QUIT": self._quit,
        }
        return handlers[word](argument)

    def _connect(self, via_tag: str) -> _Outcome:
        self.connected_via = via_tag in self.emulator.via_tags
        if self.connected_via:
            self.line("+OK: Connection established")
        else:
            self.authenticated = False
            self.line(_error("Unknown via tag"))
        return _Outcome.CONTINUE

    def _pass(self, password: str) -> _Outcome:
        emulator = self.emulator
        if "CONNECT" in emulator.commands and not self.connected_via:
            self.line(_error("CONNECT to a device first"))
            return _Outcome.CONTINUE
        self.authenticated = password == emulator.password and not emulator.faults.refuse_password
        self.line("+OK: Password accepted" if self.authenticated else _error("Password rejected"))
        return _Outcome.CONTINUE

    def _channel_list(self, _argument: str) -> _Outcome:
        for number, name in self.emulator.channel_names.items():
            self.line(f"*{number}:{name}")
        self.line("+OK: Now you know my fellows...")
        return _Outcome.CONTINUE

    def _channel(self, argument: str) -> _Outcome:
        emulator = self.emulator
        if (
            emulator.faults.reject_channel
            or not argument.isdigit()
            or int(argument) not in emulator
        ):
            self.line(_error("Channel not available"))
            return _Outcome.CONTINUE
        self.channel_number = int(argument)
        self.line("+OK: Channel selected")
        return _Outcome.CONTINUE

    def _data(self, _argument: str) -> _Outcome:
        if self.emulator.faults.reject_data:
            self.line(_error("Data mode not available"))
            return _Outcome.CONTINUE
        return _Outcome.DATA

    def _quit(self, _argument: str) -> _Outcome:
        self.line("+OK: Bye")
        return _Outcome.QUIT


_COMMANDS: Final = frozenset({"PASS", "DATA", "QUIT"})
_CHANNEL_COMMANDS: Final = frozenset({"CHANNELLIST", "CHANNEL"})
_NEED_PASSWORD: Final = frozenset({"CHANNELLIST", "CHANNEL", "DATA"})


class Emulator:
    """A RESOL LAN device on a TCP port, with controllers behind it (see the module docs).

    ``channels`` maps VBus channel numbers (0…6) to sources; ``offer_interval`` (seconds,
    ``None`` = never), ``offer_window`` and ``bus_timeout`` configure every controller, ``speed``
    scales the sources' timelines. ``discovery_port`` / ``http_port`` (0 = any free port) switch
    on the LAN discovery responders, on ``host``.
    """

    def __init__(
        self,
        *,
        personality: Personality = Personality.DL2,
        password: str = DEFAULT_PASSWORD,
        via_tags: Sequence[str] = ("mylogger",),
        channels: Mapping[int, ChannelSource] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        offer_interval: float | None = 1.0,
        speed: float = 1.0,
        offer_window: float = 0.4,
        bus_timeout: float = 10.0,
        faults: Faults | None = None,
        serial: str | None = None,
        discovery_port: int | None = None,
        http_port: int | None = None,
    ) -> None:
        """Configure the device; nothing runs before :meth:`start`."""
        self.personality = Personality(personality)
        self.password = password
        self.via_tags = tuple(via_tags)
        self.host = host
        self.port = port
        self.speed = speed
        self.discovery_port = discovery_port
        self.http_port = http_port
        self._faults = faults if faults is not None else Faults()
        sources = dict(channels) if channels is not None else {1: SyntheticSource()}
        if self.personality == Personality.DL3 and 0 not in sources:
            sources[0] = SyntheticSource(DL3_ADDRESS, name="DL3")
        if not sources or any(not 0 <= number <= 6 for number in sources):
            msg = f"channels must be numbered 0..6, got {sorted(sources)}"
            raise ValueError(msg)
        if self.personality not in (Personality.DL3, Personality.VBUSNET) and len(sources) != 1:
            msg = f"a {self.personality.value} has exactly one channel, got {len(sources)}"
            raise ValueError(msg)
        self._channels: dict[int, _Channel] = {}
        for number, source in sorted(sources.items()):
            address = source.controller_address
            controller = None
            # No bus master on a DL3's channel 0 (its own inputs) or without a controller.
            if address is not None and not (self.personality == Personality.DL3 and number == 0):
                controller = ControllerSimulator(
                    address,
                    offer_interval=offer_interval,
                    offer_window=offer_window,
                    bus_timeout=bus_timeout,
                    faults=self._faults,
                )
            self._channels[number] = _Channel(self, number, source, controller)
        commands = set(_COMMANDS)
        if self.personality in (Personality.DL3, Personality.VBUSNET):
            commands |= _CHANNEL_COMMANDS
        if self.personality == Personality.VBUSNET:
            commands.add("CONNECT")
        self.commands = frozenset(commands)
        product = _PRODUCTS[self.personality]
        serial = serial or product.serial
        self.information = DeviceInformation(
            vendor="RESOL",
            product=product.product,
            serial=serial,
            version=product.version,
            build=product.build,
            name=f"{product.product}-{serial}",
            features=product.features,
        )
        if self.personality == Personality.VBUSNET:
            self.greeting = "This is VBus.net on behalf of all its devices, welcome, stranger!"
        else:
            self.greeting = f"This is {self.information.name}, at your service!"
        self.reboots = 0
        self._stopping = False
        self._server: asyncio.Server | None = None
        self._connections: dict[_Connection, asyncio.Task[None]] = {}
        self._changes = _Changes()
        self._responder: DiscoveryResponder | None = None
        self._http: DeviceInformationServer | None = None

    # configuration -----------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults in effect (shared by the connections and every controller)."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        for channel in self._channels.values():
            if channel.controller is not None:
                channel.controller.faults = faults

    @property
    def default_channel(self) -> int:
        """The channel ``DATA`` streams without ``CHANNEL``: 0 on a DL3, else the lowest."""
        return min(self._channels)

    @property
    def channel_names(self) -> dict[int, str]:
        """Names of the channels ≥ 1, as ``CHANNELLIST`` lists them."""
        return {n: channel.source.name for n, channel in self._channels.items() if n >= 1}

    def __contains__(self, channel: object) -> bool:
        """Whether the emulator has VBus channel ``channel``."""
        return channel in self._channels

    @property
    def controllers(self) -> dict[int, ControllerSimulator]:
        """The controllers by channel (channels without a bus master are left out)."""
        return {n: c.controller for n, c in self._channels.items() if c.controller is not None}

    def controller(self, channel: int = 1) -> ControllerSimulator:
        """The controller (bus master) of ``channel``; ``KeyError`` when it has none."""
        controller = self._channels[channel].controller
        if controller is None:
            msg = f"channel {channel} has no controller"
            raise KeyError(msg)
        return controller

    @property
    def connections(self) -> int:
        """Number of open client connections."""
        return len(self._connections)

    async def wait_connections(self, count: int) -> None:
        """Wait until exactly ``count`` client connections are open."""
        await self._changes.wait_for(lambda: len(self._connections) == count)

    # life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for clients (and discovery, when configured)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_LINE_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.discovery_port is not None:
            self._responder = await DiscoveryResponder.start(self.host, self.discovery_port)
            self.discovery_port = self._responder.port
        if self.http_port is not None:
            self._http = DeviceInformationServer(self.information)
            await self._http.start(self.host, self.http_port)
            self.http_port = self._http.port
        _LOGGER.debug("emulating %s on %s:%s", self.personality.value, self.host, self.port)

    async def stop(self) -> None:
        """Close every connection and server; stop all timelines. No task is left behind."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0)  # let connections accepted just now start (and see _stopping)
        await self._close_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for channel in self._channels.values():
            await channel.stop()
        if self._responder is not None:
            self._responder.close()
            self._responder = None
        if self._http is not None:
            await self._http.stop()
            self._http = None

    async def reboot(self, downtime: float = 0.0) -> None:
        """Reboot the logger: close every connection; refuse new ones for ``downtime`` seconds.

        New connections get a new ``+HELLO``. The controllers behind the logger keep running.
        """
        self.reboots += 1
        if downtime > 0 and self._server is not None:
            self._server.close()
            await self._close_connections()
            await self._server.wait_closed()
            await asyncio.sleep(downtime)
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, limit=_LINE_LIMIT
            )
        else:
            await self._close_connections()

    async def _close_connections(self) -> None:
        for connection in list(self._connections):
            connection.close()
        tasks = list(self._connections.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> Self:
        """Start; the emulator stops when the block ends."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        connection = _Connection(self, reader, writer)
        if self._stopping:
            connection.close(partial=False)
            return
        self._connections[connection] = task
        self._changes.notify()
        try:
            await connection.run()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if connection.channel is not None:
                connection.channel.detach(connection)
            connection.close(partial=False)
            del self._connections[connection]
            self._changes.notify()

    def describe(self) -> str:
        """The one-line banner of the ``emulate`` command."""
        if self.personality == Personality.RAW:
            access = "no handshake"
        elif self.password == DEFAULT_PASSWORD:
            access = f"password {DEFAULT_PASSWORD}"
        else:
            access = "custom password"  # never echo a password the user chose
        return f"emulating {self.personality.value} on {self.host}:{self.port} ({access})"


# -- command line -------------------------------------------------------------------------------


def _channels_from_args(
    args: argparse.Namespace, personality: Personality, store: ParameterStore | None
) -> dict[int, ChannelSource]:
    if args.recording:
        data = Path(args.recording).read_bytes()
        if personality == Personality.DL3:
            return {n: RecordingSource(data, channel=n) for n in RecordingSource.channels_in(data)}
        return {1: RecordingSource(data)}
    if args.live:
        return {1: LiveCaptureSource(Path(args.live).read_bytes())}
    if args.controller:
        return {1: SyntheticSource(resolve_controller(args.controller))}
    address = store.address if store is not None and store.address is not None else 0x7E11
    return {1: SyntheticSource(address)}


# The ``emulate`` command serves the device information where Home Assistant and ``discover`` look
# for it after port 80 (which needs root), unless that port is taken: then on any free port.
CLI_HTTP_PORT: Final = HTTP_PORTS[-1]


def cli_serial(personality: Personality, host: str, port: int) -> str:
    """The serial (MAC address) the ``emulate`` command reports unless ``--serial`` is given.

    The personality's vendor prefix, one byte of ``host`` (the last of an IP address) and the
    TCP ``port``: ``001E66011B8D`` for a DL3 on 127.0.0.1:7053. So every emulator listening on
    the same machine has a serial of its own, and with it a unique ID in Home Assistant.
    """
    try:
        host_byte = ipaddress.ip_address(host).packed[-1]
    except ValueError:  # a host name
        host_byte = zlib.crc32(host.encode()) & 0xFF
    return f"{_PRODUCTS[personality].serial[:6]}{host_byte:02X}{port & 0xFFFF:04X}"


def _bindable(host: str, port: int) -> int | None:
    """The port a server on ``host`` would get for ``port`` (0: any) now; ``None`` if taken."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as sock:
            # As asyncio's servers do: connections in TIME_WAIT do not keep a port taken.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            bound: int = sock.getsockname()[1]
    except OSError:
        return None
    return bound


def _http_port_option(text: str) -> int | Literal["auto"] | None:
    """``--http-port``: a port number, ``auto`` or ``off``."""
    if text == "auto":
        return "auto"
    return None if text == "off" else int(text)


def build_emulator(args: argparse.Namespace) -> Emulator:
    """The emulator the ``emulate`` options describe.

    Unless the options say otherwise, each one gets a serial of its own (:func:`cli_serial`; for
    ``--port 0`` a free port is chosen here, so the serial can name it) and serves its device
    information on :data:`CLI_HTTP_PORT` of its host, or on any free port when that is taken.
    """
    personality = Personality(args.personality)
    port = args.port or _bindable(args.host, 0) or 0
    http_port = args.http_port
    if http_port == "auto":
        http_port = CLI_HTTP_PORT if _bindable(args.host, CLI_HTTP_PORT) else 0
    store = None
    if args.values:
        store = ParameterStore.from_controller_values(Path(args.values).read_bytes())
    faults = Faults(**{knob.name: getattr(args, knob.name) for knob in dataclasses.fields(Faults)})
    emulator = Emulator(
        personality=personality,
        password=args.password,
        via_tags=args.via_tag or ("mylogger",),
        channels=_channels_from_args(args, personality, store),
        host=args.host,
        port=port,
        offer_interval=args.offer_interval if args.offer_interval > 0 else None,
        speed=args.speed,
        bus_timeout=args.bus_timeout,
        faults=faults,
        serial=args.serial or cli_serial(personality, args.host, port),
        discovery_port=args.discovery_port,
        http_port=http_port,
    )
    controllers = emulator.controllers
    if store is not None and controllers:
        controllers[min(controllers)].store = store
    return emulator


async def serve(emulator: Emulator, out: TextIO, stop: asyncio.Event | None = None) -> int:
    """Run ``emulator`` until ``stop`` is set or SIGINT/SIGTERM arrives; print where it listens."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with emulator:
            lines = [emulator.describe()]
            lines += [f"  channel {n}: {name}" for n, name in emulator.channel_names.items()]
            if emulator.discovery_port is not None:
                lines.append(f"  discovery: UDP {emulator.host}:{emulator.discovery_port}")
            if emulator.http_port is not None:
                lines.append(f"  device information: HTTP {emulator.host}:{emulator.http_port}")
            out.write("\n".join(lines) + "\n")
            out.flush()
            await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return 0


def _cmd_emulate(args: argparse.Namespace) -> int:
    emulator = build_emulator(args)
    if args.http_port == "auto" and emulator.http_port != CLI_HTTP_PORT:
        sys.stderr.write(
            f"note: port {CLI_HTTP_PORT} of {args.host} is taken, so the device information is"
            " served on another port, where Home Assistant and discover do not look (they try"
            f" {' and '.join(map(str, HTTP_PORTS))}): give each emulator a --host of its own"
            " (e.g. 127.0.0.2) for it to be found\n"
        )
    try:
        return asyncio.run(serve(emulator, sys.stdout))
    except KeyboardInterrupt:  # pragma: no cover - only where signal handlers are unavailable
        return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``emulate`` command."""
    parser = commands.add_parser(
        "emulate", help="emulate a RESOL LAN device (DL2, DL3, KM2, VBus/LAN, VBus.net, raw)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=7053, help="TCP port (0: any free port)")
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    parser.add_argument(
        "--personality", choices=[p.value for p in Personality], default=Personality.DL2.value
    )
    parser.add_argument(
        "--via-tag", action="append", metavar="TAG", help="VBus.net via tag (repeatable)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--recording", metavar="FILE", help="replay a .vbus recording")
    source.add_argument("--live", metavar="FILE", help="replay a raw live byte capture")
    source.add_argument(
        "--controller", metavar="NAME_OR_HEX", help="synthesize a controller (default DeltaSol MX)"
    )
    parser.add_argument(
        "--values", metavar="FILE", help="controller value list (controller-values JSON)"
    )
    parser.add_argument(
        "--offer-interval", type=float, default=1.0, help="seconds between bus offers (0: never)"
    )
    parser.add_argument("--bus-timeout", type=float, default=10.0, help="bus fallback, seconds")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--discovery-port", type=int, help="answer UDP discovery on this port")
    parser.add_argument(
        "--serial",
        metavar="HEX",
        help="serial number (MAC address) to report (default: vendor prefix, last byte of the"
        " host and the port, e.g. 001E66011B8D for 127.0.0.1:7053)",
    )
    parser.add_argument(
        "--http-port",
        type=_http_port_option,
        default="auto",
        metavar="PORT|auto|off",
        help=f"serve the device information on this port (default auto: {CLI_HTTP_PORT}, or any"
        " free port when that is taken)",
    )
    faults = parser.add_argument_group("faults (see Faults)")
    for knob in dataclasses.fields(Faults):  # one option per knob: --drop-after-bytes N, ...
        option = "--" + knob.name.replace("_", "-")
        if knob.type == "bool":
            faults.add_argument(option, action="store_true")
        else:
            number = float if knob.type == "float" else int
            faults.add_argument(option, type=number, default=knob.default, metavar="N")
    parser.set_defaults(handler=_cmd_emulate)
