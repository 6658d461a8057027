"""VBus recordings (``*.vbus``): reader and writer.

A recording is a sequence of records, each with a 14-byte header: ``A5``, a type whose high
nibble equals its low nibble, the record length twice (u16) and a u64 millisecond timestamp.
Type ``44`` starts a header set (and resets the channel to 0), ``77`` sets the channel, ``66``
(and legacy ``33``) holds a packet, datagram or telegram, ``88`` raw live bytes, ``99`` a
comment. A record is accepted only when the next offset is the end of the data or also starts a
valid record; otherwise the reader advances one byte and resynchronises.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .protocol import (
    VERSION_DATAGRAM,
    VERSION_PACKET,
    VERSION_TELEGRAM,
    Datagram,
    Frame,
    Packet,
    Telegram,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

RECORD_MARK: Final = 0xA5
TYPE_HEADER_SET: Final = 0x44
TYPE_CHANNEL: Final = 0x77
TYPE_FRAME: Final = 0x66
TYPE_LEGACY_PACKET: Final = 0x33
TYPE_RAW: Final = 0x88
TYPE_COMMENT: Final = 0x99

_HEADER: Final = struct.Struct("<BBHHQ")
_FRAME: Final = struct.Struct("<6H")
_DATAGRAM: Final = struct.Struct("<Hi")
_MAX_RECORD: Final = 0xFFFF


@dataclass(frozen=True, slots=True)
class HeaderSetStart:
    """Start of a header set (a snapshot of all packets at one moment)."""

    timestamp: int


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """A frame from the recording, with its channel set and its time in ms since 1970."""

    timestamp: int
    frame: Frame


@dataclass(frozen=True, slots=True)
class RawData:
    """Raw live bytes captured between ``timestamp`` and ``end_timestamp``."""

    timestamp: int
    end_timestamp: int
    channel: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Comment:
    """A text comment."""

    timestamp: int
    text: str


type RecordingItem = HeaderSetStart | RecordedFrame | RawData | Comment


def _record_at(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Return (type, length, timestamp) when a valid record header starts at ``offset``."""
    if offset + _HEADER.size > len(data) or data[offset] != RECORD_MARK:
        return None
    _mark, kind, length, length2, timestamp = _HEADER.unpack_from(data, offset)
    if kind >> 4 != kind & 0x0F or length != length2 or length < _HEADER.size:
        return None
    if offset + length > len(data):
        return None
    return kind, length, timestamp


def _frame(kind: int, body: bytes, channel: int) -> Frame | None:
    if len(body) < _FRAME.size:
        return None
    dst, src, version, command, length, _info = _FRAME.unpack_from(body)
    payload = body[_FRAME.size : _FRAME.size + length]
    if len(payload) != length:
        return None
    major = version >> 4
    if major == VERSION_PACKET >> 4 or kind == TYPE_LEGACY_PACKET:
        return Packet(dst, src, command, payload[: 4 * min(length // 4, 127)], channel)
    if major == VERSION_DATAGRAM >> 4 and length >= _DATAGRAM.size:
        value_id, value = _DATAGRAM.unpack_from(payload)
        return Datagram(dst, src, command, value_id, value, channel)
    if major == VERSION_TELEGRAM >> 4:
        return Telegram(dst, src, command & 0x1F, payload[: 7 * min(length // 7, 3)], channel)
    return None


def read_recording(data: bytes) -> Iterator[RecordingItem]:
    """Yield the items of a recording in file order; unreadable records are skipped."""
    offset = 0
    channel = 0
    size = len(data)
    while offset < size:
        record = _record_at(data, offset)
        if record is None or (
            offset + record[1] < size and not _record_at(data, offset + record[1])
        ):
            offset += 1
            continue
        kind, length, timestamp = record
        body = data[offset + _HEADER.size : offset + length]
        offset += length
        if kind == TYPE_HEADER_SET:
            channel = 0
            yield HeaderSetStart(timestamp)
        elif kind == TYPE_CHANNEL and len(body) >= 1:
            channel = body[0]
        elif kind in (TYPE_FRAME, TYPE_LEGACY_PACKET):
            frame = _frame(kind, body, channel)
            if frame is not None:
                yield RecordedFrame(timestamp, frame)
        elif kind == TYPE_RAW and len(body) >= 8:
            yield RawData(timestamp, int.from_bytes(body[:8], "little"), channel, body[8:])
        elif kind == TYPE_COMMENT:
            yield Comment(timestamp, body.decode("utf-8", "replace"))


def is_recording(data: bytes) -> bool:
    """Whether ``data`` looks like a recording (starts with a valid record header)."""
    return _record_at(data, 0) is not None


def _record(kind: int, timestamp: int, body: bytes = b"") -> bytes:
    length = _HEADER.size + len(body)
    if length > _MAX_RECORD:
        msg = f"record of {length} bytes is longer than a recording allows"
        raise ValueError(msg)
    return _HEADER.pack(RECORD_MARK, kind, length, length, timestamp) + body


def _frame_body(frame: Frame) -> bytes:
    if isinstance(frame, Packet):
        version, command, payload = 0x10, frame.command, frame.frame_data
    elif isinstance(frame, Datagram):
        version, command = 0x20, frame.command
        payload = _DATAGRAM.pack(frame.param16, frame.param32)
    else:
        version, command, payload = 0x30, frame.command, frame.frame_data
    header = _FRAME.pack(frame.destination, frame.source, version, command, len(payload), 0)
    return header + payload


def write_recording(items: Iterable[RecordingItem]) -> bytes:
    """Encode ``items`` as a recording; channel records are written where the channel changes."""
    out = bytearray()
    channel = 0
    for item in items:
        if isinstance(item, HeaderSetStart):
            out += _record(TYPE_HEADER_SET, item.timestamp)
            channel = 0
            continue
        if isinstance(item, Comment):
            out += _record(TYPE_COMMENT, item.timestamp, item.text.encode("utf-8"))
            continue
        wanted = item.channel if isinstance(item, RawData) else item.frame.channel
        if wanted != channel:
            out += _record(TYPE_CHANNEL, 0, wanted.to_bytes(2, "little"))
            channel = wanted
        if isinstance(item, RawData):
            body = item.end_timestamp.to_bytes(8, "little") + item.data
            out += _record(TYPE_RAW, item.timestamp, body)
        else:
            out += _record(TYPE_FRAME, item.timestamp, _frame_body(item.frame))
    return bytes(out)
