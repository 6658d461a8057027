"""VBus frame codec: protocol 1.0 packets, 2.0 datagrams and 3.0 telegrams.

Every frame starts with the SYNC byte ``0xAA``; no other byte on the wire may have bit 7 set.
Payload bytes travel in groups followed by a *septet* byte that carries their stripped bit 7.
All frame objects are immutable; ``encode()`` gives the exact wire bytes and
:func:`decode_frame` turns complete wire bytes back into a frame (or ``None``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

SYNC: Final = 0xAA

VERSION_PACKET: Final = 0x10
VERSION_DATAGRAM: Final = 0x20
VERSION_TELEGRAM: Final = 0x30

MAX_PACKET_FRAMES: Final = 127

# Datagram commands of the parameterization procedure (bus hand-over, reads, writes, look-ups).
CMD_ANSWER: Final = 0x0100
CMD_SET: Final = 0x0200
CMD_GET: Final = 0x0300
CMD_SET_SAVE: Final = 0x0400
CMD_OFFER: Final = 0x0500  # the controller offers the bus (to BROADCAST)
CMD_RELEASE: Final = 0x0600
CMD_GET_HASH: Final = 0x1000  # value-ID hash of an index
CMD_LOOKUP: Final = 0x1100  # index of a value-ID hash
CMD_LOOKUP_ANSWER: Final = 0x1101
CMD_NACK: Final = 0x4300
BROADCAST: Final = 0x0000  # destination of a bus offer
LIVE_DESTINATION: Final = 0x0010  # DFA: destination of the controllers' live data packets
DATAGRAM_LENGTH: Final = 16
MAX_TELEGRAM_FRAMES: Final = 3

_DATAGRAM_PARAMS: Final = struct.Struct("<Hi")


def checksum(data: bytes | bytearray | memoryview) -> int:
    """Return the VBus 7-bit complement checksum of ``data`` (protocol x.0)."""
    return (0x7F - sum(data)) & 0x7F


def _build_crc7_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x12) if crc & 0x80 else (crc << 1)
        table.append((crc & 0xFF) >> 1)
    return tuple(table)


_CRC7_TABLE: Final = _build_crc7_table()


def crc7(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-7 (polynomial x^7+x^3+1, MSB first) used by protocol x.1 frames."""
    crc = 0
    for byte in data:
        crc = _CRC7_TABLE[((crc << 1) ^ byte) & 0xFF]
    return crc


def septet_encode(group: bytes | bytearray | memoryview) -> tuple[bytes, int]:
    """Strip bit 7 of each byte of ``group`` and return the stripped bytes and the septet."""
    septet = 0
    out = bytearray(group)
    for index, byte in enumerate(out):
        if byte & 0x80:
            out[index] = byte & 0x7F
            septet |= 1 << index
    return bytes(out), septet


def septet_decode(group: bytes | bytearray | memoryview, septet: int) -> bytes:
    """Restore bit 7 of each byte of ``group`` from ``septet``."""
    if not septet:
        return bytes(group)
    out = bytearray(group)
    for index in range(len(out)):
        if septet & (1 << index):
            out[index] |= 0x80
    return bytes(out)


def _check_address(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        msg = f"{name} must be a 16-bit value, got {value!r}"
        raise ValueError(msg)


def _header(destination: int, source: int, version: int) -> bytearray:
    return bytearray(
        (
            SYNC,
            destination & 0x7F,
            (destination >> 8) & 0x7F,
            source & 0x7F,
            (source >> 8) & 0x7F,
            version,
        )
    )


def _encode_groups(out: bytearray, payload: bytes, size: int) -> None:
    """Append ``payload`` in septet groups of ``size`` bytes, each with its checksum."""
    for offset in range(0, len(payload), size):
        data, septet = septet_encode(payload[offset : offset + size])
        start = len(out)
        out += data
        out.append(septet)
        out.append(checksum(out[start:]))


_AND_7F: Final = bytes(value & 0x7F for value in range(256))
_LANE_SUMS: Final = {step: sum(1 << (16 * k) for k in range(step)) for step in (6, 9)}
_SEPTET_MASKS: Final = {
    size: tuple(
        bytes(0x80 if septet & (1 << bit) else 0 for bit in range(size)) for septet in range(128)
    )
    for size in (4, 7)
}
_GROUP_LAYOUTS: dict[tuple[int, int], struct.Struct] = {}
_HIGH_BITS: dict[tuple[int, bytes], int] = {}
_HIGH_BITS_LIMIT: Final = 4096


def _decode_groups(frame: bytes, start: int, count: int, size: int) -> bytes | None:
    """Check and decode ``count`` septet groups of ``size`` bytes starting at ``start``.

    Each group is ``size`` data bytes, a septet and a checksum. Instead of a Python loop per
    group the work is done on whole byte strings and big integers:

    * checksums: every group's byte sum must be 0x7F modulo 0x80. The bytes are spread into
      16-bit lanes and multiplied by ``sum(1 << 16k)``, which adds each group's bytes into the
      lane of its first byte (at most 9 x 0x7F per lane, so no carry reaches another lane);
    * payload: a struct layout picks the data bytes of all groups at once, and bit 7 is added
      back from a (cached) big-integer mask built from the septets; data bytes are < 0x80, so
      adding 0x80 sets bit 7 without any carry.
    """
    if not count:
        return b""
    step = size + 2
    region = frame[start : start + count * step]
    lanes = bytearray(2 * len(region))
    lanes[1::2] = region
    sums = (int.from_bytes(lanes) * _LANE_SUMS[step]).to_bytes(2 * (len(region) + step))
    if sums[2 * step + 1 :: 2 * step].translate(_AND_7F) != b"\x7f" * count:
        return None
    layout = _GROUP_LAYOUTS.get((count, size))
    if layout is None:
        layout = _GROUP_LAYOUTS[count, size] = struct.Struct("<" + f"{size}s2x" * count)
    payload = b"".join(layout.unpack(region))
    septets = region[size::step]
    if septets.strip(b"\x00"):
        high = _HIGH_BITS.get((size, septets))
        if high is None:
            if len(_HIGH_BITS) >= _HIGH_BITS_LIMIT:
                _HIGH_BITS.clear()
            masks = _SEPTET_MASKS[size]
            high = _HIGH_BITS[size, septets] = int.from_bytes(b"".join(masks[s] for s in septets))
        payload = (int.from_bytes(payload) + high).to_bytes(len(payload))
    return payload


@dataclass(frozen=True, slots=True)
class Packet:
    """A protocol 1.0 packet: ``frame_data`` is the decoded payload, 4 bytes per frame."""

    destination: int
    source: int
    command: int
    frame_data: bytes = b""
    channel: int = 0

    def __post_init__(self) -> None:
        """Validate addresses and payload length."""
        _check_address("destination", self.destination)
        _check_address("source", self.source)
        _check_address("command", self.command)
        if len(self.frame_data) % 4 or len(self.frame_data) > 4 * MAX_PACKET_FRAMES:
            msg = (
                f"frame data must be a multiple of 4 bytes, at most 508, got {len(self.frame_data)}"
            )
            raise ValueError(msg)

    @property
    def frame_count(self) -> int:
        """Number of 4-byte frames."""
        return len(self.frame_data) // 4

    @property
    def header_id(self) -> str:
        """Reference-style header id, e.g. ``01_0010_7E11_10``."""
        return f"{self.channel:02X}_{self.destination:04X}_{self.source:04X}_10"

    @property
    def packet_id(self) -> str:
        """Reference-style packet id, e.g. ``01_0010_7E11_10_0100``."""
        return f"{self.header_id}_{self.command:04X}"

    def encode(self) -> bytes:
        """Return the wire bytes."""
        out = _header(self.destination, self.source, VERSION_PACKET)
        out += bytes((self.command & 0x7F, (self.command >> 8) & 0x7F, self.frame_count))
        out.append(checksum(out[1:9]))
        _encode_groups(out, self.frame_data, 4)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Datagram:
    """A protocol 2.0 datagram with a 16-bit and a signed 32-bit parameter."""

    destination: int
    source: int
    command: int
    param16: int = 0
    param32: int = 0
    channel: int = 0

    def __post_init__(self) -> None:
        """Validate addresses and parameter ranges."""
        _check_address("destination", self.destination)
        _check_address("source", self.source)
        _check_address("command", self.command)
        _check_address("param16", self.param16)
        if not -0x80000000 <= self.param32 <= 0x7FFFFFFF:
            msg = f"param32 must be a signed 32-bit value, got {self.param32!r}"
            raise ValueError(msg)

    @property
    def header_id(self) -> str:
        """Reference-style header id, e.g. ``00_0000_7E11_20``."""
        return f"{self.channel:02X}_{self.destination:04X}_{self.source:04X}_20"

    @property
    def datagram_id(self) -> str:
        """Reference-style datagram id (info = param16 for command 0x0900, else 0)."""
        info = self.param16 if self.command == 0x0900 else 0
        return f"{self.header_id}_{self.command:04X}_{info:04X}"

    def encode(self) -> bytes:
        """Return the 16 wire bytes."""
        out = _header(self.destination, self.source, VERSION_DATAGRAM)
        out += bytes((self.command & 0x7F, (self.command >> 8) & 0x7F))
        data, septet = septet_encode(_DATAGRAM_PARAMS.pack(self.param16, self.param32))
        out += data
        out.append(septet)
        out.append(checksum(out[1:15]))
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Telegram:
    """A protocol 3.0 telegram: 5-bit command, 0 to 3 frames of 7 payload bytes."""

    destination: int
    source: int
    command: int
    frame_data: bytes = b""
    channel: int = 0

    def __post_init__(self) -> None:
        """Validate addresses, command and payload length."""
        _check_address("destination", self.destination)
        _check_address("source", self.source)
        if not 0 <= self.command <= 0x1F:
            msg = f"telegram command must be 0..0x1F, got {self.command!r}"
            raise ValueError(msg)
        if len(self.frame_data) % 7 or len(self.frame_data) > 7 * MAX_TELEGRAM_FRAMES:
            msg = f"frame data must be 0, 7, 14 or 21 bytes, got {len(self.frame_data)}"
            raise ValueError(msg)

    @property
    def frame_count(self) -> int:
        """Number of 7-byte frames."""
        return len(self.frame_data) // 7

    @property
    def command_byte(self) -> int:
        """The wire command byte: command number plus frame count in bits 5-6."""
        return self.command | (self.frame_count << 5)

    @property
    def header_id(self) -> str:
        """Reference-style header id, e.g. ``00_2011_7771_30``."""
        return f"{self.channel:02X}_{self.destination:04X}_{self.source:04X}_30"

    @property
    def telegram_id(self) -> str:
        """Reference-style telegram id, e.g. ``00_2011_7771_30_25`` (full command byte)."""
        return f"{self.header_id}_{self.command_byte:02X}"

    def encode(self) -> bytes:
        """Return the wire bytes."""
        out = _header(self.destination, self.source, VERSION_TELEGRAM)
        out.append(self.command_byte)
        out.append(checksum(out[1:7]))
        _encode_groups(out, self.frame_data, 7)
        return bytes(out)


type Frame = Packet | Datagram | Telegram


def frame_length(header: bytes | bytearray) -> int | None:
    """Return the total length of the frame whose first bytes are ``header``.

    ``header`` must start with SYNC; ``None`` means more bytes are needed to tell, ``0`` means
    the version byte is not one of the known major versions (the frame can never complete).
    """
    if len(header) < 6:
        return None
    major = header[5] >> 4
    if major == 1:
        return 10 + 6 * header[8] if len(header) > 8 else None
    if major == 2:
        return DATAGRAM_LENGTH
    if major == 3:
        return 8 + 9 * ((header[6] >> 5) & 3) if len(header) > 6 else None
    return 0


def decode_frame(frame: bytes, channel: int = 0) -> Frame | None:
    """Decode one complete frame (wire bytes, SYNC first).

    Returns ``None`` when the bytes are not a valid frame: wrong length, a byte with bit 7 set
    after SYNC, an unsupported version (only 1.0, 2.0 and 3.0 are accepted) or a bad checksum.
    """
    if len(frame) < 8 or frame[0] != SYNC or not frame[1:].isascii():
        return None
    if frame_length(frame) != len(frame):
        return None
    return decode_framed(frame, channel)


def decode_framed(frame: bytes, channel: int = 0) -> Frame | None:
    """Decode a frame already framed by :func:`frame_length` with no high byte after SYNC.

    Only the version and the checksums are checked here (the receiver's hot path).
    """
    destination = frame[1] | frame[2] << 8
    source = frame[3] | frame[4] << 8
    version = frame[5]
    if version == VERSION_PACKET:
        if sum(frame[1:10]) & 0x7F != 0x7F:
            return None
        payload = _decode_groups(frame, 10, frame[8], 4)
        if payload is None:
            return None
        return Packet(destination, source, frame[6] | frame[7] << 8, payload, channel)
    if version == VERSION_DATAGRAM:
        if sum(frame[1:16]) & 0x7F != 0x7F:
            return None
        param16, param32 = _DATAGRAM_PARAMS.unpack(septet_decode(frame[8:14], frame[14]))
        return Datagram(destination, source, frame[6] | frame[7] << 8, param16, param32, channel)
    if version == VERSION_TELEGRAM:
        if sum(frame[1:8]) & 0x7F != 0x7F:
            return None
        payload = _decode_groups(frame, 8, (frame[6] >> 5) & 3, 7)
        if payload is None:
            return None
        return Telegram(destination, source, frame[6] & 0x1F, payload, channel)
    return None
