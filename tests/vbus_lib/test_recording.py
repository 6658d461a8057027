"""Tests for VBus recordings (``*.vbus``, protocol reference §16)."""

from __future__ import annotations

import struct
from collections import Counter
from datetime import UTC, datetime

import pytest

from aiovbus.protocol import Datagram, Packet, Telegram
from aiovbus.recording import (
    Comment,
    HeaderSetStart,
    RawData,
    RecordedFrame,
    RecordingItem,
    is_recording,
    read_recording,
    write_recording,
)

from .conftest import RECORDINGS, reference_file


def _ms(*args: int) -> int:
    """Milliseconds since 1970 of a UTC time given as (y, m, d, H, M, S, ms)."""
    *date, millis = args
    return int(datetime(*date, tzinfo=UTC).timestamp()) * 1000 + millis


def _record(kind: int, timestamp: int, body: bytes = b"", length2: int | None = None) -> bytes:
    length = 14 + len(body)
    second = length if length2 is None else length2
    return struct.pack("<BBHHQ", 0xA5, kind, length, second, timestamp) + body


def _frame_body(dst: int, src: int, version: int, command: int, payload: bytes) -> bytes:
    return struct.pack("<6H", dst, src, version, command, len(payload), 0) + payload


def _read(data: bytes) -> list[RecordingItem]:
    return list(read_recording(data))


# -- §16.4 test vectors ---------------------------------------------------------------------

DATAGRAM_RECORD = bytes.fromhex("a566200020007c87ef5a5a0100000000117e2000000906000000f8182a000000")
DATAGRAM_ITEM = RecordedFrame(1487584331644, Datagram(0x0000, 0x7E11, 0x0900, 6392, 42))


def test_datagram_vector_reads() -> None:
    assert _read(DATAGRAM_RECORD) == [DATAGRAM_ITEM]


def test_datagram_vector_writes() -> None:
    assert write_recording([DATAGRAM_ITEM]) == DATAGRAM_RECORD


def test_header_set_vectors() -> None:
    assert _read(bytes.fromhex("a5440e000e00d757b12d44010000")) == [
        HeaderSetStart(_ms(2014, 2, 14, 0, 0, 0, 983))
    ]
    assert _read(bytes.fromhex("A5440E000E000063D6CA27010000")) == [
        HeaderSetStart(_ms(2010, 4, 4, 22, 0, 0, 0))
    ]
    assert write_recording([HeaderSetStart(1392336000983)]) == bytes.fromhex(
        "a5440e000e00d757b12d44010000"
    )


def test_packet_record_layout() -> None:
    packet = Packet(0x0010, 0x0053, 0x0100, bytes(range(44)))
    data = write_recording([RecordedFrame(0x01442DB15741, packet)])
    assert data[:26] == bytes.fromhex("a56646004600 4157b12d44010000 1000 5300 1000 0001 2c00 0000")
    assert data[26:] == bytes(range(44))
    assert _read(data) == [RecordedFrame(1392336000833, packet)]


def test_start_of_first_reference_recording(recording_bytes: bytes) -> None:
    assert recording_bytes[:14] == bytes.fromhex("a5440e000e00d757b12d44010000")
    assert recording_bytes[14:40] == bytes.fromhex(
        "a56646004600 4157b12d44010000 1000 5300 1000 0001 2c00 0000"
    )
    items = read_recording(recording_bytes)
    assert next(items) == HeaderSetStart(_ms(2014, 2, 14, 0, 0, 0, 983))
    first = next(items)
    assert isinstance(first, RecordedFrame)
    assert first.timestamp == _ms(2014, 2, 14, 0, 0, 0, 833)
    assert first.frame == Packet(0x0010, 0x0053, 0x0100, recording_bytes[40:84], channel=0)
    assert len(first.frame.frame_data) == 44


# -- the reference recordings (§16.5) -------------------------------------------------------

PER_SET = {
    # (channel, src, dst, command, frames): count per file
    (0, 0x0053, 0x0010, 0x0100, 11): 288,
    (1, 0x7E11, 0x0010, 0x0100, 25): 288,
    (1, 0x7E12, 0x0010, 0x0100, 15): 288,
    (1, 0x7E21, 0x0010, 0x0100, 1): 288,
    (1, 0x7E31, 0x0010, 0x0100, 4): 288,
    (1, 0x7E32, 0x0010, 0x0100, 4): 288,
    (1, 0x7E33, 0x0010, 0x0100, 4): 288,
    (1, 0x7E34, 0x0010, 0x0100, 4): 288,
    (1, 0x7E35, 0x0010, 0x0100, 4): 288,
    (1, 0x7E11, 0x0015, 0x0100, 10): 288,
    (1, 0x7E11, 0x6651, 0x0200, 14): 288,
    (1, 0x7E11, 0x6652, 0x0200, 14): 288,
    (1, 0x7E11, 0x6653, 0x0200, 14): 288,
    (1, 0x7E11, 0x6654, 0x0200, 14): 288,
    (1, 0x7E11, 0x6655, 0x0200, 14): 288,
    (1, 0x6651, 0x7E11, 0x0100, 6): 288,
}
GLITCH = (1, 0x7A01, 0x2450, 0x0000, 0)

RECORDING_FACTS = {
    # name: (size, packets, first set, last set, per-set table changes)
    RECORDINGS[0]: (
        310382,
        4607,
        _ms(2014, 2, 14, 0, 0, 0, 983),
        _ms(2014, 2, 14, 23, 55, 0, 804),
        {(1, 0x7E11, 0x6653, 0x0200, 14): 287},
    ),
    RECORDINGS[1]: (
        310490,
        4609,
        _ms(2014, 2, 15, 0, 0, 1, 77),
        _ms(2014, 2, 15, 23, 55, 0, 829),
        {GLITCH: 1},
    ),
    RECORDINGS[2]: (
        310464,
        4608,
        _ms(2014, 2, 16, 0, 0, 2, 271),
        _ms(2014, 2, 16, 23, 55, 0, 805),
        {},
    ),
}


def _header_sets(items: list[RecordingItem]) -> list[tuple[int, list[RecordedFrame]]]:
    sets: list[tuple[int, list[RecordedFrame]]] = []
    for item in items:
        if isinstance(item, HeaderSetStart):
            sets.append((item.timestamp, []))
        else:
            assert isinstance(item, RecordedFrame)
            sets[-1][1].append(item)
    return sets


@pytest.mark.parametrize("name", RECORDINGS)
def test_reference_recording_counts(name: str) -> None:
    size, packets, first, last, _ = RECORDING_FACTS[name]
    data = reference_file("recordings", name).read_bytes()
    assert len(data) == size
    assert is_recording(data)
    items = _read(data)
    assert Counter(type(item) for item in items) == {HeaderSetStart: 288, RecordedFrame: packets}
    sets = _header_sets(items)
    assert len(sets) == 288
    assert (sets[0][0], sets[-1][0]) == (first, last)
    assert all(isinstance(item.frame, Packet) for _, frames in sets for item in frames)


@pytest.mark.parametrize("name", RECORDINGS)
def test_reference_recording_packets_and_channels(name: str) -> None:
    changes = RECORDING_FACTS[name][4]
    items = _read(reference_file("recordings", name).read_bytes())
    seen = Counter(
        (f.channel, f.source, f.destination, f.command, len(f.frame_data) // 4)
        for item in items
        if isinstance(item, RecordedFrame) and isinstance(f := item.frame, Packet)
    )
    assert seen == PER_SET | changes


@pytest.mark.parametrize("name", RECORDINGS)
def test_reference_recording_dl3_packet_comes_first_on_channel_0(name: str) -> None:
    sets = _header_sets(_read(reference_file("recordings", name).read_bytes()))
    for _, frames in sets:
        assert frames[0].frame.source == 0x0053
        assert frames[0].frame.channel == 0
        assert {item.frame.channel for item in frames[1:]} == {1}


def test_20140214_set_without_6653() -> None:
    sets = _header_sets(_read(reference_file("recordings", RECORDINGS[0]).read_bytes()))
    sizes = Counter(len(frames) for _, frames in sets)
    assert sizes == {16: 287, 15: 1}
    short = [timestamp for timestamp, frames in sets if len(frames) == 15]
    assert short == [_ms(2014, 2, 14, 17, 55, 0, 804)]


def test_20140215_glitch_packet() -> None:
    items = _read(reference_file("recordings", RECORDINGS[1]).read_bytes())
    glitches = [
        item for item in items if isinstance(item, RecordedFrame) and item.frame.source == 0x7A01
    ]
    assert glitches == [
        RecordedFrame(_ms(2014, 2, 15, 17, 12, 3, 899), Packet(0x2450, 0x7A01, 0x0000, b"", 1))
    ]


@pytest.mark.parametrize("name", RECORDINGS)
def test_rewriting_a_reference_recording(name: str) -> None:
    data = reference_file("recordings", name).read_bytes()
    items = _read(data)
    written = write_recording(items)
    assert _read(written) == items
    # the writer's layout (channel records with timestamp 0, u16 channel) is the DL3's own
    assert written == data


# -- write -> read round trips --------------------------------------------------------------

ALL_ITEMS: list[RecordingItem] = [
    HeaderSetStart(1000),
    RecordedFrame(1001, Packet(0x0010, 0x0053, 0x0100, bytes(range(8)), channel=0)),
    RecordedFrame(1002, Packet(0x0010, 0x7E11, 0x0100, bytes(range(128, 132)) * 127, channel=1)),
    RecordedFrame(1003, Packet(0x2450, 0x7A01, 0x0000, b"", channel=1)),
    RecordedFrame(1004, Datagram(0x0000, 0x7E11, 0x0900, 6392, 42, channel=1)),
    RecordedFrame(1005, Datagram(0x7E11, 0x0020, 0x0200, 0xFFFF, -5, channel=1)),
    RecordedFrame(1006, Datagram(0x7E11, 0x0020, 0x0200, 0x1234, -0x80000000, channel=1)),
    RecordedFrame(1007, Telegram(0x2011, 0x7771, 0x05, bytes(range(0x80, 0x95)), channel=1)),
    RecordedFrame(1008, Telegram(0x2011, 0x7771, 0x1F, b"", channel=1)),
    RawData(1009, 1010, 2, bytes.fromhex("aa100053001000010b00")),
    RawData(1011, 1011, 2, b""),
    Comment(1012, "Heizung \u2600 W\u00e4rme"),
    Comment(1013, ""),
    RecordedFrame(1014, Packet(0x0010, 0x7E11, 0x0100, b"\xa5\x44\x0e\x00", channel=0)),
    HeaderSetStart(2000),
    RecordedFrame(2001, Packet(0x0010, 0x0053, 0x0100, b"", channel=0)),
    RecordedFrame(2002, Packet(0x0010, 0x7E11, 0x0100, b"", channel=3)),
]


def _kinds(data: bytes) -> list[tuple[int, int]]:
    """(type, timestamp) of each record, walking the lengths."""
    kinds = []
    offset = 0
    while offset < len(data):
        _mark, kind, length, _length2, timestamp = struct.unpack_from("<BBHHQ", data, offset)
        kinds.append((kind, timestamp))
        offset += length
    return kinds


def test_round_trip_of_every_item_type() -> None:
    data = write_recording(ALL_ITEMS)
    assert is_recording(data)
    assert _read(data) == ALL_ITEMS


def test_channel_records_only_where_the_channel_changes() -> None:
    data = write_recording(ALL_ITEMS)
    assert _kinds(data) == [
        (0x44, 1000),
        (0x66, 1001),
        (0x77, 0),  # channel 1
        (0x66, 1002),
        (0x66, 1003),
        (0x66, 1004),
        (0x66, 1005),
        (0x66, 1006),
        (0x66, 1007),
        (0x66, 1008),
        (0x77, 0),  # channel 2 for the raw data
        (0x88, 1009),
        (0x88, 1011),
        (0x99, 1012),
        (0x99, 1013),
        (0x77, 0),  # back to channel 0
        (0x66, 1014),
        (0x44, 2000),  # resets the channel to 0: no channel record for the next packet
        (0x66, 2001),
        (0x77, 0),  # channel 3
        (0x66, 2002),
    ]


def test_channel_record_layout() -> None:
    frame = RecordedFrame(5, Packet(0x0010, 0x7E11, 0x0100, b"", channel=1))
    data = write_recording([frame])
    assert data[:16] == bytes.fromhex("a5771000100000000000000000000100")
    assert _read(data) == [frame]


def test_header_set_resets_the_channel_when_reading() -> None:
    packet_body = _frame_body(0x0010, 0x7E11, 0x0010, 0x0100, b"")
    data = (
        _record(0x77, 0, b"\x05\x00")
        + _record(0x66, 1, packet_body)
        + _record(0x44, 2)
        + _record(0x66, 3, packet_body)
    )
    assert _read(data) == [
        RecordedFrame(1, Packet(0x0010, 0x7E11, 0x0100, b"", 5)),
        HeaderSetStart(2),
        RecordedFrame(3, Packet(0x0010, 0x7E11, 0x0100, b"", 0)),
    ]


def test_negative_param32_layout() -> None:
    item = RecordedFrame(7, Datagram(0x7E11, 0x0020, 0x0200, 0x1234, -5))
    data = write_recording([item])
    assert data[14:] == bytes.fromhex("117e 2000 2000 0002 0600 0000 3412 fbffffff")
    assert _read(data) == [item]


def test_telegram_layout() -> None:
    item = RecordedFrame(7, Telegram(0x2011, 0x7771, 0x05, bytes(range(7))))
    data = write_recording([item])
    assert data[14:] == bytes.fromhex("1120 7177 3000 0500 0700 0000 00010203040506")
    assert _read(data) == [item]


def test_raw_data_and_comment_layout() -> None:
    data = write_recording([RawData(1, 0x0102030405060708, 0, b"\xaa\x10"), Comment(2, "\u00e4")])
    assert data == (
        bytes.fromhex("a5881800180001000000 00000000 0807060504030201 aa10")
        + bytes.fromhex("a5991000100002000000 00000000 c3a4")
    )


def test_written_datagram_value_id_is_unsigned() -> None:
    # §19 #4: u16 in our own writer; a reference-written (signed) -1 reads as 0xFFFF.
    item = RecordedFrame(1, Datagram(0, 0x7E11, 0x0900, 0xFFFF, 0))
    assert write_recording([item])[26:28] == b"\xff\xff"
    body = struct.pack("<6HhI", 0, 0x7E11, 0x0020, 0x0900, 6, 0, -1, 0)
    assert _read(_record(0x66, 1, body)) == [item]


def test_empty_recording() -> None:
    assert write_recording([]) == b""
    assert _read(b"") == []


# -- legacy records and unusual bodies ------------------------------------------------------


def test_legacy_packet_record() -> None:
    body = _frame_body(0x0010, 0x4221, 0x0010, 0x0100, bytes(range(28)))
    data = _record(0x33, 1270418400000, body)
    assert _read(data) == [
        RecordedFrame(1270418400000, Packet(0x0010, 0x4221, 0x0100, bytes(range(28))))
    ]


def test_legacy_record_is_always_a_packet() -> None:
    body = _frame_body(0x0010, 0x4221, 0x0020, 0x0100, bytes(range(6)))
    assert _read(_record(0x33, 9, body)) == [
        RecordedFrame(9, Packet(0x0010, 0x4221, 0x0100, bytes(range(4))))
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # packet payloads are cut to whole frames, at most 127
        (
            _frame_body(0x10, 0x7E11, 0x0010, 0x0100, bytes(7)),
            Packet(0x10, 0x7E11, 0x0100, bytes(4)),
        ),
        (
            _frame_body(0x10, 0x7E11, 0x0010, 0x0100, bytes(range(256)) * 2),
            Packet(0x10, 0x7E11, 0x0100, (bytes(range(256)) * 2)[:508]),
        ),
        # minor versions count by their major version
        (
            _frame_body(0x10, 0x7E11, 0x0011, 0x0100, bytes(4)),
            Packet(0x10, 0x7E11, 0x0100, bytes(4)),
        ),
        # datagram: extra bytes after value id and value are ignored
        (
            _frame_body(0, 0x7E11, 0x0020, 0x0900, bytes.fromhex("f8182a000000ffff")),
            Datagram(0, 0x7E11, 0x0900, 6392, 42),
        ),
        # telegram: command in the low 5 bits, payload cut to whole 7-byte frames, at most 3
        (
            _frame_body(0x2011, 0x7771, 0x0030, 0x0025, bytes(range(30))),
            Telegram(0x2011, 0x7771, 0x05, bytes(range(21))),
        ),
        (
            _frame_body(0x2011, 0x7771, 0x0031, 0x0001, bytes(range(9))),
            Telegram(0x2011, 0x7771, 0x01, bytes(range(7))),
        ),
    ],
)
def test_frame_record_bodies(body: bytes, expected: Packet | Datagram | Telegram) -> None:
    assert _read(_record(0x66, 42, body)) == [RecordedFrame(42, expected)]


@pytest.mark.parametrize(
    "record",
    [
        # frame header shorter than 12 bytes
        _record(0x66, 1, bytes(11)),
        # data length larger than the data present
        _record(0x66, 1, struct.pack("<6H", 0x10, 0x7E11, 0x0010, 0x0100, 8, 0) + bytes(4)),
        # unknown protocol version
        _record(0x66, 1, _frame_body(0x10, 0x7E11, 0x0040, 0x0100, bytes(4))),
        _record(0x66, 1, _frame_body(0x10, 0x7E11, 0x0000, 0x0100, bytes(4))),
        # datagram with fewer than 6 data bytes
        _record(0x66, 1, _frame_body(0, 0x7E11, 0x0020, 0x0900, bytes(5))),
        # raw data without its 8-byte end timestamp
        _record(0x88, 1, bytes(7)),
        # channel record without a channel
        _record(0x77, 1),
        # unknown record types
        _record(0x55, 1, b"abc"),
        _record(0x00, 1),
        _record(0xFF, 1, bytes(4)),
    ],
)
def test_unusable_records_are_skipped(record: bytes) -> None:
    before = _record(0x44, 100)
    after = _record(0x66, 200, _frame_body(0x10, 0x7E11, 0x0010, 0x0100, b""))
    assert _read(before + record + after) == [
        HeaderSetStart(100),
        RecordedFrame(200, Packet(0x10, 0x7E11, 0x0100, b"", 0)),
    ]


def test_channel_record_uses_the_low_byte() -> None:
    data = _record(0x77, 0, b"\x02\x01") + _record(
        0x66, 1, _frame_body(0x10, 0x7E11, 0x0010, 0x0100, b"")
    )
    assert _read(data) == [RecordedFrame(1, Packet(0x10, 0x7E11, 0x0100, b"", 2))]


def test_raw_data_takes_the_current_channel() -> None:
    data = _record(0x77, 0, b"\x04\x00") + _record(0x88, 5, (6).to_bytes(8, "little") + b"xy")
    assert _read(data) == [RawData(5, 6, 4, b"xy")]


def test_comment_with_invalid_utf8_is_replaced() -> None:
    assert _read(_record(0x99, 3, b"ok \xff")) == [Comment(3, "ok \ufffd")]


# -- resynchronisation (§16.3 step 1) -------------------------------------------------------

A = _record(0x44, 1)
B = _record(0x66, 2, _frame_body(0x10, 0x7E11, 0x0010, 0x0100, bytes(4)))
C = _record(0x99, 3, b"c")
D = _record(0x44, 4)
A_ITEM = HeaderSetStart(1)
B_ITEM = RecordedFrame(2, Packet(0x10, 0x7E11, 0x0100, bytes(4)))
C_ITEM = Comment(3, "c")
D_ITEM = HeaderSetStart(4)


def test_clean_sequence() -> None:
    assert _read(A + B + C + D) == [A_ITEM, B_ITEM, C_ITEM, D_ITEM]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00",
        b"garbage",
        b"\xa5" * 20,
        # a record-like header whose type nibbles differ
        _record(0x45, 9),
        # a record-like header whose length is below 14
        struct.pack("<BBHHQ", 0xA5, 0x44, 13, 13, 9),
        # a record-like header whose two length fields disagree
        _record(0x44, 9, length2=15),
        # a record-like header longer than the remaining data
        struct.pack("<BBHHQ", 0xA5, 0x99, 0xFFFF, 0xFFFF, 9),
    ],
)
def test_resynchronises_over_garbage_between_records(garbage: bytes) -> None:
    # A record counts only when the next offset ends the data or starts a valid record, so
    # the record just before the garbage (B) is dropped as well.
    assert _read(A + B + garbage + C + D) == [A_ITEM, C_ITEM, D_ITEM]


def test_resynchronises_over_leading_garbage() -> None:
    assert _read(b"\x00\x01\x02\xa5" + A + B) == [A_ITEM, B_ITEM]


def test_trailing_garbage_drops_the_last_record() -> None:
    assert _read(A + B + b"\x00") == [A_ITEM]


def test_truncated_last_record() -> None:
    assert _read(A + B + C[:-1]) == [A_ITEM]


def test_record_with_disagreeing_lengths_is_skipped() -> None:
    # the second length of B is off by one: B is no record, so A (followed by it) is dropped too
    bad = bytearray(B)
    bad[4] += 1
    assert _read(A + bytes(bad) + C + D) == [C_ITEM, D_ITEM]


def test_record_hidden_in_garbage_needs_a_valid_successor() -> None:
    # a valid-looking record inside the garbage is accepted only when a record follows it
    assert _read(b"xx" + _record(0x99, 7, b"in") + C) == [Comment(7, "in"), C_ITEM]
    assert _read(b"xx" + _record(0x99, 7, b"in") + b"yy" + C) == [C_ITEM]


# -- is_recording ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (DATAGRAM_RECORD, True),
        (bytes.fromhex("a5440e000e00d757b12d44010000"), True),
        (A + b"trailing data", True),
        (_record(0x33, 0, bytes(12)), True),
        (b"", False),
        (bytes.fromhex("a5440e000e00d757b12d440100"), False),  # 13 bytes
        (b"\x00" + A, False),
        (_record(0x45, 0), False),
        (_record(0x44, 0, length2=15), False),
        (struct.pack("<BBHHQ", 0xA5, 0x44, 12, 12, 0), False),
        (struct.pack("<BBHHQ", 0xA5, 0x99, 20, 20, 0) + b"abc", False),
        (b"\xaa\x10\x00\x53\x00\x10\x00\x01\x0b\x00\x1f\x6f\x0f\x00", False),
    ],
)
def test_is_recording(data: bytes, expected: bool) -> None:  # noqa: FBT001
    assert is_recording(data) is expected


# -- limits ---------------------------------------------------------------------------------


def test_longest_record_is_written() -> None:
    data = write_recording([Comment(1, "x" * (0xFFFF - 14))])
    assert len(data) == 0xFFFF
    assert data[2:6] == b"\xff\xff\xff\xff"
    assert _read(data) == [Comment(1, "x" * (0xFFFF - 14))]


@pytest.mark.parametrize(
    ("item", "length"),
    [
        (Comment(1, "x" * (0xFFFF - 13)), 0x10000),
        (Comment(1, "\u00e4" * 40000), 80014),
        (RawData(1, 2, 0, bytes(0xFFFF - 22 + 1)), 0x10000),
    ],
)
def test_record_too_long_raises(item: RecordingItem, length: int) -> None:
    with pytest.raises(
        ValueError, match=f"^record of {length} bytes is longer than a recording allows$"
    ):
        write_recording([item])
