"""Stream receiver: the reference's junk accounting, splitting, resynchronisation, bounds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiovbus.protocol import (
    Datagram,
    Packet,
    Telegram,
    decode_frame,
)
from aiovbus.receiver import MAX_BUFFER, StreamReceiver

PACKET = Packet(0x0010, 0x7E11, 0x0100, bytes(range(0x70, 0x90)))
DATAGRAM = Datagram(0x0000, 0x7E11, 0x0500)
TELEGRAM = Telegram(0x7771, 0x2011, 0x05, bytes.fromhex("6018ab04000000"))
STREAM = PACKET.encode() + DATAGRAM.encode() + TELEGRAM.encode()


def test_all_frame_kinds_in_one_chunk() -> None:
    receiver = StreamReceiver(channel=3)
    frames = receiver.feed(STREAM)
    assert frames == [
        Packet(0x0010, 0x7E11, 0x0100, bytes(range(0x70, 0x90)), channel=3),
        Datagram(0x0000, 0x7E11, 0x0500, channel=3),
        Telegram(0x7771, 0x2011, 0x05, bytes.fromhex("6018ab04000000"), channel=3),
    ]
    assert receiver.stats.bytes == len(STREAM)
    assert receiver.stats.frames == 3
    assert receiver.stats.junk_bytes == 0
    assert receiver.buffered == 0


def test_split_at_every_position() -> None:
    for split in range(len(STREAM) + 1):
        receiver = StreamReceiver()
        frames = receiver.feed(STREAM[:split]) + receiver.feed(STREAM[split:])
        assert frames == [PACKET, DATAGRAM, TELEGRAM], split
        assert receiver.stats.junk_bytes == 0


def test_byte_by_byte() -> None:
    receiver = StreamReceiver()
    frames = [frame for byte in STREAM for frame in receiver.feed(bytes([byte]))]
    assert frames == [PACKET, DATAGRAM, TELEGRAM]


def test_2048_zero_bytes() -> None:
    receiver = StreamReceiver()
    assert receiver.feed(bytes(2048)) == []
    assert receiver.stats.junk_bytes == 1024
    assert receiver.buffered == 1024


def test_high_byte_before_sync_is_one_junk_byte() -> None:
    receiver = StreamReceiver()
    assert receiver.feed(b"\x80\xaa") == []
    assert receiver.stats.junk_bytes == 1
    assert receiver.buffered == 1


def test_truncated_datagram_then_sync() -> None:
    receiver = StreamReceiver()
    assert receiver.feed(DATAGRAM.encode()[:15] + b"\xaa") == []
    assert receiver.stats.junk_bytes == 15


def test_unknown_version_is_junk_at_next_sync() -> None:
    receiver = StreamReceiver()
    assert receiver.feed(bytes.fromhex("aa100021770000010056aa")) == []
    assert receiver.stats.junk_bytes == 10


def test_bad_checksums_are_junk_and_counted() -> None:
    for wire in (PACKET.encode(), DATAGRAM.encode(), TELEGRAM.encode()):
        bad = bytearray(wire)
        bad[-1] ^= 0x01
        receiver = StreamReceiver()
        assert receiver.feed(bytes(bad) + DATAGRAM.encode()) == [DATAGRAM]
        assert receiver.stats.junk_bytes == len(wire)
        assert receiver.stats.checksum_errors == 1


def test_protocol_3_1_is_junk_but_no_checksum_error() -> None:
    wire = bytearray(Telegram(0x2011, 0x7771, 0x04).encode())
    wire[5] = 0x31
    receiver = StreamReceiver()
    assert receiver.feed(bytes(wire) + DATAGRAM.encode()) == [DATAGRAM]
    assert receiver.stats.junk_bytes == 8
    assert receiver.stats.checksum_errors == 0


def test_high_byte_aborts_frame_in_progress() -> None:
    wire = bytearray(PACKET.encode())
    wire[20] = 0x81
    receiver = StreamReceiver()
    assert receiver.feed(bytes(wire) + DATAGRAM.encode()) == [DATAGRAM]
    assert receiver.stats.junk_bytes == len(wire)


def test_high_byte_in_incomplete_header_aborts() -> None:
    receiver = StreamReceiver()
    assert receiver.feed(b"\xaa\x10\x00\xff") == []
    assert receiver.feed(DATAGRAM.encode()) == [DATAGRAM]
    assert receiver.stats.junk_bytes == 4


def test_sync_inside_frame_restarts() -> None:
    receiver = StreamReceiver()
    assert receiver.feed(PACKET.encode()[:30] + STREAM) == [PACKET, DATAGRAM, TELEGRAM]
    assert receiver.stats.junk_bytes == 30


def test_frame_embedded_in_garbage_is_found() -> None:
    receiver = StreamReceiver()
    garbage = bytes(range(0x80, 0xA0)) + b"\x01\x02\x03"
    assert receiver.feed(garbage + PACKET.encode() + garbage) == [PACKET]
    assert receiver.stats.junk_bytes == len(garbage)
    assert receiver.buffered == len(garbage)


def test_reset_drops_partial_frame() -> None:
    receiver = StreamReceiver()
    receiver.feed(PACKET.encode()[:20])
    receiver.reset()
    assert receiver.buffered == 0
    assert receiver.feed(PACKET.encode()[20:]) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=64))
def test_random_bytes_never_raise_and_stay_bounded(data: bytes, chunk: int) -> None:
    receiver = StreamReceiver()
    for start in range(0, len(data), chunk):
        for frame in receiver.feed(data[start : start + chunk]):
            assert decode_frame(frame.encode()) == frame
        assert receiver.buffered <= MAX_BUFFER
    assert receiver.stats.bytes == len(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200), st.integers(min_value=1, max_value=50))
def test_valid_frame_in_garbage_is_found(before: bytes, after: bytes, chunk: int) -> None:
    """A frame is always found when the garbage before it cannot swallow it."""
    # Garbage may end in an unfinished frame; a SYNC of ours then restarts framing.
    stream = before + PACKET.encode() + after
    receiver = StreamReceiver()
    frames = []
    for start in range(0, len(stream), chunk):
        frames += receiver.feed(stream[start : start + chunk])
    assert PACKET in frames


def test_repeated_frames_are_returned_as_the_same_object() -> None:
    receiver = StreamReceiver()
    first = receiver.feed(PACKET.encode())
    second = receiver.feed(PACKET.encode())
    assert first == second == [PACKET]
    assert first[0] is second[0]
    changed = Packet(0x0010, 0x7E11, 0x0100, bytes(32))
    assert receiver.feed(changed.encode()) == [changed]


def test_remembered_frames_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr("aiovbus.receiver.MAX_REMEMBERED", 4)
    receiver = StreamReceiver()
    packets = [Packet(0x0010, source, 0x0100) for source in range(0x100, 0x10A)]
    assert receiver.feed(b"".join(p.encode() for p in packets)) == packets
    assert len(receiver._last) <= 4
