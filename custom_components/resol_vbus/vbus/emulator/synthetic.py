"""Synthesized live packets: a controller (or a DeltaSol MX system) whose values move."""

from __future__ import annotations

import contextlib
import math
import re
from datetime import datetime
from typing import TYPE_CHECKING, Final

from ..errors import EmulatorError
from ..protocol import LIVE_DESTINATION, Packet
from ..specification import DATETIME_EPOCH, FieldType, Specification
from .sources import ChannelSource, Cycle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ..specification import FieldSpec, Value


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
