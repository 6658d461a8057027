"""Tests for block-type packets (dst 0x0015, protocol reference §9)."""

from __future__ import annotations

import pytest

from aiovbus.blocktype import (
    BLOCK_COMMAND,
    BLOCK_DESTINATION,
    BlockSection,
    SectionType,
    decode_block_packet,
    is_block_packet,
)
from aiovbus.protocol import Packet, decode_frame

# §9 test vector: recording 20140214, first header set, src 7E11, 10 frames, channel 1.
LIVE = bytes.fromhex(
    "aa1500117e1000010a40020a0000007313007a00046e661c4c00032e010b0000007300000000007f"
    "04080000007300000064001b00000000007f00006464003700000000007f"
)
PAYLOAD = bytes.fromhex(
    "020a0000 1300fa00 e69c4c00 010b0000 00000000 04080000 00000064 00000000 00006464 00000000"
)
RELAY_SPEEDS = (0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 100, 100, 0, 0, 0, 0)


def _packet(payload: bytes, channel: int = 1) -> Packet:
    return Packet(BLOCK_DESTINATION, 0x7E11, BLOCK_COMMAND, payload, channel)


def _single(payload: bytes) -> BlockSection:
    sections = decode_block_packet(_packet(payload))
    assert sections is not None
    assert len(sections) == 1
    return sections[0]


def test_constants() -> None:
    assert (BLOCK_DESTINATION, BLOCK_COMMAND) == (0x0015, 0x0100)


def test_live_vector_decodes_to_the_payload() -> None:
    packet = decode_frame(LIVE, channel=1)
    assert packet == _packet(PAYLOAD)
    assert isinstance(packet, Packet)
    assert packet.packet_id == "01_0015_7E11_10_0100"
    assert is_block_packet(packet)


def test_vector_sections() -> None:
    sections = decode_block_packet(_packet(PAYLOAD))
    assert sections == (
        BlockSection(
            "01_0015_7E11_10_0100", 1, 0x0015, 2, 0x0A, bytes.fromhex("1300fa00e69c4c00"),
            (1.9000000000000001, 25.0, 5020902),
        ),
        BlockSection("01_0015_7E11_10_0100", 1, 0x0015, 1, 0x0B, bytes(4), (0,)),
        BlockSection(
            "01_0015_7E11_10_0100", 1, 0x0015, 4, 0x08,
            bytes.fromhex("00000064000000000000646400000000"), RELAY_SPEEDS,
        ),
    )  # fmt: skip


def test_vector_identifiers() -> None:
    sections = decode_block_packet(_packet(PAYLOAD))
    assert sections is not None
    assert [(s.section_id, s.surrogate_packet_id, s.count) for s in sections] == [
        ("01_0015_7E11_10_0100_02_0A_1", "01_8015_0D9F_10_2C47", 1),
        ("01_0015_7E11_10_0100_01_0B_1", "01_8015_EEDB_10_C6DF", 1),
        ("01_0015_7E11_10_0100_04_08_16", "01_8015_AD52_10_3E87", 16),
    ]


def test_vector_values_agree_with_the_doc() -> None:
    sections = decode_block_packet(_packet(PAYLOAD))
    assert sections is not None
    smart, errors, relays = sections
    collector, store, heat = smart.values
    assert collector == 1.9000000000000001
    assert store == 25.0
    assert heat == 5020902
    assert errors.values == (0,)
    assert [index + 1 for index, speed in enumerate(relays.values) if speed == 100] == [4, 11, 12]
    assert set(relays.values) == {0, 100}


def test_surrogate_id_uses_channel_and_destination() -> None:
    section = _single(bytes.fromhex("010b0000 00000000"))
    assert section.surrogate_packet_id == "01_8015_EEDB_10_C6DF"
    other = decode_block_packet(_packet(bytes.fromhex("010b0000 00000000"), channel=0))
    assert other is not None
    assert other[0].section_id == "00_0015_7E11_10_0100_01_0B_1"
    assert other[0].surrogate_packet_id.startswith("00_8015_")
    assert other[0].surrogate_packet_id != section.surrogate_packet_id


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (Packet(0x0015, 0x7E11, 0x0100), True),
        (Packet(0x0015, 0x1234, 0x0100), True),
        (Packet(0x0010, 0x7E11, 0x0100), False),
        (Packet(0x0015, 0x7E11, 0x0200), False),
        (Packet(0x8015, 0x7E11, 0x0100), False),
    ],
)
def test_is_block_packet(packet: Packet, expected: bool) -> None:  # noqa: FBT001
    assert is_block_packet(packet) is expected


def test_empty_payload_has_no_sections() -> None:
    assert decode_block_packet(_packet(b"")) == ()


@pytest.mark.parametrize(
    "payload",
    [
        # 2 frames announced, 1 present
        bytes.fromhex("020a0000 1300fa00"),
        # a valid first section, then one that runs past the end
        bytes.fromhex("010b0000 00000000 03080000 00000000"),
        # a header announcing frames with no data at all
        bytes.fromhex("01010000"),
    ],
)
def test_sections_not_ending_at_payload_end(payload: bytes) -> None:
    assert decode_block_packet(_packet(payload)) is None


def test_unknown_section_type_keeps_data_without_values() -> None:
    section = _single(bytes.fromhex("02420000 01020304 05060708"))
    assert section.type == 0x42
    assert section.frames == 2
    assert section.data == bytes(range(1, 9))
    assert section.values == ()
    assert section.count == 0
    assert section.section_id == "01_0015_7E11_10_0100_02_42_0"


def test_section_without_frames() -> None:
    section = _single(bytes.fromhex("00010000"))
    assert (section.data, section.values, section.count) == (b"", (), 0)
    assert section.section_id == "01_0015_7E11_10_0100_00_01_0"


@pytest.mark.parametrize(
    ("section_type", "data", "values"),
    [
        # i16 x 0.1 °C
        (SectionType.TEMPERATURES, "1300 fa00 38ff ecff", (1.9000000000000001, 25.0, -20.0, -2.0)),
        (SectionType.TEMPERATURES, "b82248dd", (888.8000000000001, -888.8000000000001)),
        # u32 Wh
        (SectionType.HEAT_QUANTITIES, "e69c4c00 ffffffff", (5020902, 0xFFFFFFFF)),
        # u8 %
        (SectionType.RELAY_SPEEDS, "00 32 64 ff", (0, 50, 100, 255)),
        # i16 collector x 0.1 °C, i16 store x 0.1 °C, u32 Wh
        (SectionType.SMART_DISPLAY, "1300fa00 e69c4c00", (1.9000000000000001, 25.0, 5020902)),
        (
            SectionType.SMART_DISPLAY,
            "ecff1027 01000000 38ff0000 00000080",
            (-2.0, 1000.0, 1, -20.0, 0.0, 0x80000000),
        ),
        # u32 masks
        (SectionType.ERROR_MASK, "01000080", (0x80000001,)),
        (SectionType.WARNING_MASK, "02000000 00010000", (2, 256)),
        (SectionType.STATUS_MASK, "ffffffff", (0xFFFFFFFF,)),
        # u8 segment mask
        (SectionType.SEGMENT_MASK, "01 02 80 ff", (1, 2, 0x80, 0xFF)),
    ],
)
def test_section_type_decoding(
    section_type: SectionType, data: str, values: tuple[float, ...]
) -> None:
    raw = bytes.fromhex(data)
    frames = len(raw) // 4
    section = _single(bytes((frames, section_type, 0, 0)) + raw)
    assert section.type == section_type
    assert section.frames == frames
    assert section.data == raw
    assert section.values == values
    element_values = 3 if section_type == SectionType.SMART_DISPLAY else 1
    assert section.count == len(values) // element_values


def test_every_section_type_is_covered() -> None:
    assert {int(kind) for kind in SectionType} == {0x01, 0x05, 0x08, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E}


def test_element_count_is_floored() -> None:
    # 3 frames = 12 bytes hold one 8-byte smart-display element; the rest stays in data.
    section = _single(bytes.fromhex("030a0000 1300fa00 e69c4c00 aaaaaaaa"))
    assert section.count == 1
    assert section.values == (1.9000000000000001, 25.0, 5020902)
    assert len(section.data) == 12
    assert section.section_id.endswith("_03_0A_1")
