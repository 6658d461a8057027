"""An independent, deliberately simple model of the VBus framing rules (protocol reference §8).

The library's receiver and decoder are optimised (whole-buffer operations, caches); this model
follows the specification byte by byte instead, so that the fuzz targets can compare the two:

* a frame starts at SYNC (``0xAA``) and ends at the first byte with bit 7 set after it (which
  aborts it) or when its length is reached;
* its length follows from the version byte (protocol 1.0: ``10 + 6 × frame count``, 2.0: 16,
  3.0: ``8 + 9 × frame count``); other versions never complete;
* every checksummed group (header, each septet group) sums to ``0x7F`` modulo ``0x80``;
* payload bytes get bit 7 back from the septet byte of their group.
"""

from __future__ import annotations

import re

from aiovbus.protocol import Datagram, Frame, Packet, Telegram

SYNC = 0xAA
_HIGH = re.compile(rb"[\x80-\xff]")


def _checksum_ok(group: bytes) -> bool:
    """Whether ``group`` (data bytes followed by their checksum) has a valid 7-bit checksum."""
    return sum(group) % 0x80 == 0x7F


def _unseptet(data: bytes, septet: int) -> bytes:
    return bytes(byte | 0x80 if septet >> bit & 1 else byte for bit, byte in enumerate(data))


def _groups(body: bytes, start: int, count: int, size: int) -> bytes | None:
    payload = b""
    for group in range(count):
        offset = start + group * (size + 2)
        chunk = body[offset : offset + size + 2]
        if not _checksum_ok(chunk):
            return None
        payload += _unseptet(chunk[:size], chunk[size])
    return payload


def expected_length(body: bytes) -> int | None:
    """Length of the frame ``body`` (SYNC first) announces; ``None`` if unknown or too short."""
    if len(body) < 6:
        return None
    version = body[5]
    if version == 0x10:
        return 10 + 6 * body[8] if len(body) >= 9 else None
    if version == 0x20:
        return 16
    if version == 0x30:
        return 8 + 9 * (body[6] >> 5 & 3) if len(body) >= 7 else None
    return None


def decode(body: bytes, channel: int = 0) -> Frame | None:
    """Decode the frame at the start of ``body`` (SYNC followed by bytes < 0x80), if complete."""
    length = expected_length(body)
    if length is None or len(body) < length:
        return None
    destination = body[1] | body[2] << 8
    source = body[3] | body[4] << 8
    version = body[5]
    if version == 0x10:
        if not _checksum_ok(body[1:10]):
            return None
        payload = _groups(body, 10, body[8], 4)
        if payload is None:
            return None
        return Packet(destination, source, body[6] | body[7] << 8, payload, channel)
    if version == 0x20:
        if not _checksum_ok(body[1:16]):
            return None
        params = _unseptet(body[8:14], body[14])
        param32 = int.from_bytes(params[2:6], "little", signed=True)
        command = body[6] | body[7] << 8
        return Datagram(destination, source, command, params[0] | params[1] << 8, param32, channel)
    if not _checksum_ok(body[1:8]):
        return None
    payload = _groups(body, 8, body[6] >> 5 & 3, 7)
    if payload is None:
        return None
    return Telegram(destination, source, body[6] & 0x1F, payload, channel)


def frames_in(stream: bytes, channel: int = 0) -> list[tuple[int, Frame]]:
    """Every complete, valid frame in ``stream`` as (offset, frame), in stream order."""
    found = []
    start = stream.find(SYNC)
    while start >= 0:
        high = _HIGH.search(stream, start + 1)  # the byte that ends the frame's bytes
        end = high.start() if high else len(stream)
        frame = decode(stream[start:end], channel)
        if frame is not None:
            found.append((start, frame))
        start = stream.find(SYNC, start + 1)
    return found


def canonical(wire: bytes) -> bool:
    """Whether ``wire`` (a valid frame) has no septet bit set beyond its group's data bytes.

    The reference decoder ignores such bits, and so does the library; a frame that has them
    re-encodes to different (canonical) bytes.
    """
    version = wire[5]
    if version == 0x10:
        return all(wire[14 + 6 * group] < 0x10 for group in range(wire[8]))
    if version == 0x20:
        return wire[14] < 0x40
    return True  # protocol 3.0 groups use all 7 septet bits
