"""Channel sources: what a VBus channel carries — a recording, a raw capture or fixed frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from ..errors import RecordingError
from ..protocol import LIVE_DESTINATION, SYNC, Packet, decode_frame, frame_length
from ..recording import HeaderSetStart, RawData, RecordedFrame, read_recording
from ..specification import Specification

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ..protocol import Frame

DL3_ADDRESS: Final = 0x0053
_AUTO: Final = "auto"


def _base_name(address: int) -> str:
    """Device name of ``address`` without the ``[Controller]``-style suffix."""
    return Specification.bundled().device_name(address, LIVE_DESTINATION).split(" [")[0]


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
    """Fixed frames: a deterministic bus for tests and examples.

    Sent once (a TCP client in data mode gets them when it attaches), or again every
    ``interval`` seconds, as a controller resends its packets: a serial port has no attach.
    """

    def __init__(
        self,
        *frames: Frame,
        controller: int | None = None,
        name: str | None = None,
        interval: float | None = None,
    ) -> None:
        """Send ``frames``; the controller defaults to the first packet's source."""
        packets = [frame for frame in frames if isinstance(frame, Packet)]
        address = controller if controller is not None else (packets[0].source if packets else None)
        super().__init__(name=name, controller_address=address)
        self.units = tuple(frame.encode() for frame in frames)
        self.interval = interval

    def cycles(self) -> Iterator[Cycle]:
        """A single cycle, or the same cycle every ``interval`` seconds."""
        yield Cycle(0.0, self.units)
        while self.interval is not None:
            yield Cycle(self.interval, self.units)


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
