"""Frame codec: every test vector of the protocol reference round-trips byte-exactly."""

from __future__ import annotations

import json

import pytest

from aiovbus.protocol import (
    Datagram,
    Packet,
    Telegram,
    checksum,
    crc7,
    decode_frame,
    frame_length,
    septet_decode,
    septet_encode,
)

from .conftest import reference_file

REFERENCE_PACKET = bytes.fromhex(
    "aa100021771000011135"
    "02032e02004a" "760104010003" "7b0078000507" "02013822041e" "170116010050"
    "460500000034" "01000000007e" "646400000037" "00000000007f" "00000000007f" "01000000007e"
    "0e0109000067" "06010a00016d" "68010a00000c" "0e0109000067" "010e01230448" "5d070c0f017f"
)  # fmt: skip
REFERENCE_PAYLOAD = bytes.fromhex(
    "02032e0276010401fb00f8000201b822170116014605000001000000646400000000000000000000"
    "010000000e01090086010a0068010a000e010900010e8123dd070c0f"
)

# (wire, dst, src, cmd, p16, p32): protocol reference §6.2 = parameterization reference §7.
DATAGRAMS = [
    ("AA 00 00 11 7E 20 00 05 00 00 00 00 00 00 00 4B", 0x0000, 0x7E11, 0x0500, 0, 0),
    ("AA 11 7E 20 00 20 00 03 00 00 00 00 00 00 00 2D", 0x7E11, 0x0020, 0x0300, 0, 0),
    ("AA 20 00 11 7E 20 00 01 00 00 3C 5A 34 27 0C 32", 0x0020, 0x7E11, 0x0100, 0, 0x2734DABC),
    ("AA 11 7E 20 00 20 00 11 00 00 19 6A 04 2D 18 53", 0x7E11, 0x0020, 0x1100, 0, 0x2D84EA19),
    ("AA 20 00 11 7E 20 01 11 39 07 19 6A 04 2D 19 11", 0x0020, 0x7E11, 0x1101, 0x07B9, 0x2D84EA19),
    ("AA 11 7E 20 00 20 00 02 39 07 02 00 00 00 01 6B", 0x7E11, 0x0020, 0x0200, 0x07B9, 2),
    ("AA 20 00 11 7E 20 00 01 39 07 02 00 00 00 01 6C", 0x0020, 0x7E11, 0x0100, 0x07B9, 2),
    ("AA 11 7E 20 00 20 00 03 39 07 00 00 00 00 01 6C", 0x7E11, 0x0020, 0x0300, 0x07B9, 0),
    ("AA 11 7E 20 00 20 00 06 00 00 00 00 00 00 00 2A", 0x7E11, 0x0020, 0x0600, 0, 0),
    ("aa000021772000050000000000000042", 0x0000, 0x7721, 0x0500, 0, 0),
]


def test_septet_example() -> None:
    assert septet_encode(bytes.fromhex("e803f401")) == (bytes.fromhex("68037401"), 0x05)
    assert septet_decode(bytes.fromhex("68037401"), 0x05) == bytes.fromhex("e803f401")
    assert septet_decode(b"\x01\x02", 0) == b"\x01\x02"


def test_checksums() -> None:
    assert checksum(bytes.fromhex("1000217710000111")) == 0x35
    assert crc7(b"123456789") == 0x75
    table_start = bytes(crc7(bytes([i])) for i in range(16))
    assert table_start == bytes.fromhex("0009121b242d363f48415a536c657e77")


def test_reference_packet_round_trip() -> None:
    packet = decode_frame(REFERENCE_PACKET)
    assert packet == Packet(0x0010, 0x7721, 0x0100, REFERENCE_PAYLOAD)
    assert isinstance(packet, Packet)
    assert packet.frame_count == 17
    assert packet.encode() == REFERENCE_PACKET
    assert packet.packet_id == "00_0010_7721_10_0100"


def test_specification_example_packet() -> None:
    wire = bytes.fromhex("aa11441066100002012107040f000065")
    packet = decode_frame(wire, channel=2)
    assert packet == Packet(0x4411, 0x6610, 0x0200, bytes.fromhex("07040f00"), channel=2)
    assert packet.encode() == wire
    assert packet.header_id == "02_4411_6610_10"


@pytest.mark.parametrize(("wire", "dst", "src", "cmd", "p16", "p32"), DATAGRAMS)
def test_datagram_vectors(wire: str, dst: int, src: int, cmd: int, p16: int, p32: int) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    datagram = Datagram(dst, src, cmd, p16, p32)
    assert datagram.encode() == raw
    assert decode_frame(raw) == datagram


def test_datagram_signed_value_and_ids() -> None:
    datagram = Datagram(0x7E11, 0x0020, 0x0200, 0x1234, -5)
    assert decode_frame(datagram.encode()) == datagram
    assert datagram.datagram_id == "00_7E11_0020_20_0200_0000"
    assert Datagram(0x0000, 0x7E11, 0x0900, 6392, 42).datagram_id == "00_0000_7E11_20_0900_18F8"


def test_telegram_vectors() -> None:
    request = bytes.fromhex("AA11207177300432")
    assert decode_frame(request) == Telegram(0x2011, 0x7771, 0x04)
    assert Telegram(0x2011, 0x7771, 0x04).encode() == request
    response = bytes.fromhex("AA7177112030251160182B040000000454")
    telegram = Telegram(0x7771, 0x2011, 0x05, bytes.fromhex("6018ab04000000"))
    assert telegram.command_byte == 0x25
    assert telegram.frame_count == 1
    assert telegram.encode() == response
    assert decode_frame(response) == telegram
    assert Telegram(0x2011, 0x7771, 0x04).telegram_id == "00_2011_7771_30_04"


def test_addresses_are_masked_on_the_wire() -> None:
    wire = Packet(0xFFFF, 0x8080, 0x0100).encode()
    assert wire[1:5] == bytes((0x7F, 0x7F, 0x00, 0x00))
    assert wire[1:].isascii()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Packet(0x10000, 0, 0), "destination"),
        (lambda: Packet(0, -1, 0), "source"),
        (lambda: Packet(0, 0, 0x100, b"123"), "multiple of 4"),
        (lambda: Packet(0, 0, 0x100, bytes(512)), "multiple of 4"),
        (lambda: Datagram(0, 0, 0x100, 0x10000), "param16"),
        (lambda: Datagram(0, 0, 0x100, 0, 0x80000000), "param32"),
        (lambda: Telegram(0, 0, 0x20), "telegram command"),
        (lambda: Telegram(0, 0, 1, bytes(8)), "0, 7, 14 or 21"),
        (lambda: Telegram(0, 0, 1, bytes(28)), "0, 7, 14 or 21"),
    ],
)
def test_invalid_frames_are_rejected(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()


def _corrupt(wire: bytes, index: int, value: int) -> bytes:
    out = bytearray(wire)
    out[index] = value
    return bytes(out)


@pytest.mark.parametrize(
    "wire",
    [
        _corrupt(REFERENCE_PACKET, 9, 0x36),  # header checksum
        _corrupt(REFERENCE_PACKET, 15, 0x4B),  # first frame checksum
        REFERENCE_PACKET[:-1],  # too short
        REFERENCE_PACKET + b"\x00",  # too long
        _corrupt(REFERENCE_PACKET, 12, 0x80),  # a byte with bit 7 set
        _corrupt(bytes.fromhex(DATAGRAMS[0][0].replace(" ", "")), 15, 0x4C),
        _corrupt(bytes.fromhex("AA11207177300432"), 7, 0x33),
        _corrupt(bytes.fromhex("AA7177112030251160182B040000000454"), 16, 0x55),
        Packet(0x10, 0x20, 0x100).encode()[:5] + b"\x00\x00\x01\x00\x00",  # version 0.0
        b"\x00" + REFERENCE_PACKET[1:],  # no SYNC
        b"\xaa\x10",
    ],
)
def test_decode_frame_rejects_invalid_frames(wire: bytes) -> None:
    assert decode_frame(wire) is None


def test_protocol_3_1_is_framed_but_rejected() -> None:
    wire = bytearray(Telegram(0x2011, 0x7771, 0x04).encode())
    wire[5] = 0x31
    wire[7] = checksum(wire[1:7])
    assert frame_length(bytes(wire)) == 8
    assert decode_frame(bytes(wire)) is None


def test_frame_length() -> None:
    assert frame_length(b"\xaa\x10\x00\x21\x77") is None
    assert frame_length(REFERENCE_PACKET[:8]) is None
    assert frame_length(REFERENCE_PACKET[:9]) == 10 + 6 * 17
    assert frame_length(bytes.fromhex("aa0000217720")) == 16
    assert frame_length(bytes.fromhex("aa112071773004")) == 8
    assert frame_length(bytes.fromhex("aa71771120302511")) == 17
    assert frame_length(bytes.fromhex("aa711771203025")[:6]) is None
    assert frame_length(bytes.fromhex("aa1000217740")) == 0


def test_golden_packets_round_trip() -> None:
    golden = json.loads(reference_file("golden", "20140214-first-headerset.json").read_text())
    assert len(golden["packets"]) == 16
    for item in golden["packets"]:
        packet = Packet(
            item["destination"],
            item["source"],
            item["command"],
            bytes.fromhex(item["frame_data_hex"]),
            item["channel"],
        )
        assert packet.packet_id == item["id"]
        assert packet.frame_count == item["frame_count"]
        assert packet.encode().hex() == item["live_hex"]
        assert decode_frame(bytes.fromhex(item["live_hex"]), item["channel"]) == packet
