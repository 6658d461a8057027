"""Block-type packets: protocol 1.0 packets to destination 0x0015 ("Standard info").

Their payload is not described by a VSF packet template but by a list of sections, each a 4-byte
header (frame count, type, two reserved bytes) followed by ``4 × frames`` bytes of elements.

A packet with that header that a VSF template matches is decoded by the template, as the
reference library does: the Tuxhorn BHKW's template (source 0x105F, destination 0x0015) and the
templates whose destination mask is 0x0000 (sources 0x112E, 0x401x, 0x442x, 0x651x, 0x652x and
0x665x, command 0x0100). Callers look the template up first; :func:`is_block_packet` only tells
the header.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .protocol import Packet

BLOCK_DESTINATION: Final = 0x0015
BLOCK_COMMAND: Final = 0x0100


class SectionType(IntEnum):
    """Known section types."""

    TEMPERATURES = 0x01
    HEAT_QUANTITIES = 0x05
    RELAY_SPEEDS = 0x08
    SMART_DISPLAY = 0x0A
    ERROR_MASK = 0x0B
    WARNING_MASK = 0x0C
    STATUS_MASK = 0x0D
    SEGMENT_MASK = 0x0E


# type -> (element size, decoder of one element)
_ELEMENTS: Final[dict[int, tuple[int, str]]] = {
    SectionType.TEMPERATURES: (2, "temperature"),
    SectionType.HEAT_QUANTITIES: (4, "u32"),
    SectionType.RELAY_SPEEDS: (1, "u8"),
    SectionType.SMART_DISPLAY: (8, "smart"),
    SectionType.ERROR_MASK: (4, "u32"),
    SectionType.WARNING_MASK: (4, "u32"),
    SectionType.STATUS_MASK: (4, "u32"),
    SectionType.SEGMENT_MASK: (1, "u8"),
}


def _temperature(data: bytes) -> float:
    return int.from_bytes(data[:2], "little", signed=True) * 10**-1


def _element(kind: str, data: bytes) -> tuple[float | int, ...]:
    if kind == "temperature":
        return (_temperature(data),)
    if kind == "smart":
        return (
            _temperature(data[0:2]),
            _temperature(data[2:4]),
            int.from_bytes(data[4:8], "little"),
        )
    return (int.from_bytes(data, "little"),)


@dataclass(frozen=True, slots=True)
class BlockSection:
    """One section of a block-type packet."""

    packet_id: str
    channel: int
    destination: int
    frames: int
    type: int
    data: bytes
    values: tuple[float | int, ...]

    @property
    def count(self) -> int:
        """Number of elements (0 for unknown section types)."""
        size = _ELEMENTS.get(self.type, (0, ""))[0]
        return len(self.data) // size if size else 0

    @property
    def section_id(self) -> str:
        """Reference-style section id, e.g. ``01_0015_7E11_10_0100_02_0A_1``."""
        return f"{self.packet_id}_{self.frames:02X}_{self.type:02X}_{self.count}"

    @property
    def surrogate_packet_id(self) -> str:
        """Reference-style surrogate packet id, e.g. ``01_8015_0D9F_10_2C47``."""
        return _surrogate_packet_id(self.channel, self.destination, self.section_id)


@lru_cache(maxsize=256)  # a bus has a few sections; a stream repeats them every second
def _surrogate_packet_id(channel: int, destination: int, section_id: str) -> str:
    digest = hashlib.sha1(section_id.encode(), usedforsecurity=False).hexdigest().upper()
    return f"{channel:02X}_{destination | 0x8000:04X}_{digest[0:4]}_10_{digest[4:8]}"


def is_block_packet(packet: Packet) -> bool:
    """Whether ``packet`` has the header of a block-type packet (a template takes precedence)."""
    return packet.destination == BLOCK_DESTINATION and packet.command == BLOCK_COMMAND


def decode_block_packet(packet: Packet) -> tuple[BlockSection, ...] | None:
    """Split a block-type packet into its sections.

    Returns ``None`` when the sections do not end exactly at the end of the payload (the
    reference library rejects such packets too).
    """
    payload = packet.frame_data
    sections: list[BlockSection] = []
    offset = 0
    while offset < len(payload):
        frames, section_type = payload[offset], payload[offset + 1]
        data = payload[offset + 4 : offset + 4 + 4 * frames]
        offset += 4 + 4 * frames
        if offset > len(payload):
            return None
        size, kind = _ELEMENTS.get(section_type, (0, ""))
        values: tuple[float | int, ...] = ()
        if size:
            values = tuple(
                value
                for start in range(0, len(data) - size + 1, size)
                for value in _element(kind, data[start : start + size])
            )
        sections.append(
            BlockSection(
                packet.packet_id,
                packet.channel,
                packet.destination,
                frames,
                section_type,
                data,
                values,
            )
        )
    return tuple(sections)
